//! Frame decoding on arbitrary bytes, and the frame encoder's round trip.
//!
//! Properties:
//! 1. `decode_frame` never panics nor reads out of bounds, at any offset, on any bytes.
//! 2. A frame it accepts is self-consistent: its records, with their 4-byte length prefixes and
//!    the 32-byte header, add up to exactly its length; it lies inside the input; it holds at
//!    least one record; its end LSN is its first plus its record count.
//! 3. `End` is returned only for a zero length word.
//! 4. What `FrameBuf` encodes decodes to the same header and records, wherever it sits in a
//!    buffer and whatever follows it, and any single flipped bit after the length word is
//!    detected (CRC32 catches every single-bit error).
#![no_main]

use hydrant_wal::format::{
    decode_frame, FrameBuf, FrameDecode, FRAME_ALIGN, FRAME_HEADER_LEN, RECORD_PREFIX_LEN,
};
use hydrant_wal::Lsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = data.len();
    for at in [0, 1, 4, 8, n / 2, n.saturating_sub(FRAME_HEADER_LEN), n, n + 1] {
        check_decoded(data, at);
    }
    round_trip(data);
});

fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

fn check_decoded(bytes: &[u8], at: usize) {
    match decode_frame(bytes, at) {
        FrameDecode::Frame(f) => {
            let h = f.header;
            let len = h.len as usize;
            assert!(len >= FRAME_HEADER_LEN);
            assert!(at + len <= bytes.len(), "a frame must lie inside the input");
            assert!(h.record_count > 0);
            let records_end = at + len - h.annex_total();
            assert_eq!(f.records, &bytes[at + FRAME_HEADER_LEN..records_end]);
            assert_eq!(f.annex.len(), h.annex_len as usize);
            let mut total = FRAME_HEADER_LEN;
            let mut count = 0u64;
            for r in f.records() {
                total += RECORD_PREFIX_LEN + r.len();
                count += 1;
            }
            assert_eq!(
                total + h.annex_total(),
                len,
                "records + prefixes + header + annex == len"
            );
            assert_eq!(count, u64::from(h.record_count));
            assert_eq!(h.end_lsn().0, h.first_lsn.0 + count);
            assert!(h.padded_len() >= len as u64 && h.padded_len() % FRAME_ALIGN == 0);
            assert!(h.padded_len() < len as u64 + FRAME_ALIGN);
        }
        FrameDecode::End => {
            assert_eq!(&bytes[at..at + 4], &[0, 0, 0, 0], "End only for a zero length word");
        }
        FrameDecode::Fault(_) => {}
    }
}

/// Input layout: first_lsn u64 | arrival_ms u64 | prefix_len u8 | flip u16 | records..., each
/// record a length byte then that many bytes (cut short at the end of the input).
fn round_trip(data: &[u8]) {
    if data.len() < 19 {
        return;
    }
    let (head, rest) = data.split_at(19);
    let mut records: Vec<&[u8]> = Vec::new();
    let mut r = rest;
    while let Some((&len, tail)) = r.split_first() {
        let len = (len as usize).min(tail.len());
        records.push(&tail[..len]);
        r = &tail[len..];
    }
    if records.is_empty() {
        return;
    }
    // Keep first + count inside the LSN space: the log never hands out LSNs past it (Lsn::plus
    // panics first), and the decoder rejects such frames by design.
    let first = Lsn(le_u64(&head[0..8]) % (u64::MAX - u64::from(u32::MAX)));
    let arrival_ms = le_u64(&head[8..16]);
    let prefix_len = usize::from(head[16]);
    let flip = usize::from(u16::from_le_bytes([head[17], head[18]]));

    let mut buf = FrameBuf::default();
    buf.reset();
    for rec in &records {
        buf.push(rec);
    }
    let unpadded = buf.len();
    let frame = buf.seal(first, arrival_ms).to_vec();
    assert_eq!(frame.len() % FRAME_ALIGN as usize, 0);

    // The frame between arbitrary bytes: the garbage before and after must not matter.
    let mut image = data[..prefix_len.min(data.len())].to_vec();
    let at = image.len();
    image.extend_from_slice(&frame);
    image.extend_from_slice(data);
    let FrameDecode::Frame(f) = decode_frame(&image, at) else {
        panic!("an encoded frame must decode");
    };
    assert_eq!(f.header.first_lsn, first);
    assert_eq!(f.header.arrival_ms, arrival_ms);
    assert_eq!(f.header.len as usize, unpadded);
    assert_eq!(f.header.padded_len() as usize, frame.len());
    assert_eq!(f.records().collect::<Vec<_>>(), records);
    check_decoded(&image, at);

    // One flipped bit past the length word (header fields, CRC, records) is always caught.
    let bit = flip % ((unpadded - 4) * 8);
    image[at + 4 + bit / 8] ^= 1 << (bit % 8);
    assert!(
        matches!(decode_frame(&image, at), FrameDecode::Fault(_)),
        "a single flipped bit must fail the frame"
    );
}
