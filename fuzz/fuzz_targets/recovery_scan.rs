//! Recovery on arbitrary segment images, and on real logs damaged and crashed at arbitrary
//! points, all on the simulated disk.
//!
//! The first input byte picks a mode:
//! - 0 `data`: a valid segment header, then the input as the data region (frames), zeros after.
//! - 1 `raw`: the input copied over the whole segment, header included.
//! - 2 `header`: a header with a valid CRC but input-chosen `segment_bytes`, `index_interval`
//!   and `base_lsn` (a header that lies about the geometry), then the input as data.
//! - 3 `log`: the input is a program: appends (waited on or not) into a real `Wal` with small
//!   segments, optionally a simulated power loss, then bytes flipped in any segment file.
//!
//! Then, for every mode, the checks of [`check_log`]: no panic anywhere (verify, the read-only
//! view, opening the live log, reading, appending, reopening); every failure a typed error;
//! the recovered log a dense prefix; what verify calls clean opens and reads without error; and
//! in `log` mode, every record read is byte for byte the one appended under that LSN, and with no
//! damage every acknowledged record is there.
#![no_main]

use std::path::{Path, PathBuf};

use hydrant_wal::format::{SegmentHeader, DATA_START};
use hydrant_wal::sim::SimDisk;
use hydrant_wal::storage::OpenMode;
use hydrant_wal::{Error, Lsn, Reader, Wal, WalOptions, WalView};
use libfuzzer_sys::fuzz_target;

const DIR: &str = "/wal";
/// Segment size of the single-image modes.
const IMAGE_BYTES: u64 = 64 * 1024;
/// Segment size of `log` mode: small, so that a few appends rotate and seal segments.
const LOG_SEGMENT_BYTES: u64 = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => image_mode(data_image(rest)),
        1 => image_mode(raw_image(rest)),
        2 => image_mode(lying_header_image(rest)),
        _ => log_mode(rest),
    }
});

fn options(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        index_interval_bytes: 4096,
        background_prepare: false,
        ..WalOptions::default()
    }
}

fn header(base: u64, segment_bytes: u64, index_interval: u32) -> [u8; 64] {
    SegmentHeader {
        base_lsn: Lsn(base),
        segment_bytes,
        index_interval,
        created_ms: 1,
    }
    .encode()
}

fn data_image(rest: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; IMAGE_BYTES as usize];
    image[..64].copy_from_slice(&header(0, IMAGE_BYTES, 4096));
    let room = IMAGE_BYTES as usize - DATA_START as usize;
    let n = rest.len().min(room);
    image[DATA_START as usize..DATA_START as usize + n].copy_from_slice(&rest[..n]);
    image
}

fn raw_image(rest: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; IMAGE_BYTES as usize];
    let n = rest.len().min(image.len());
    image[..n].copy_from_slice(&rest[..n]);
    image
}

fn lying_header_image(rest: &[u8]) -> Vec<u8> {
    if rest.len() < 13 {
        return raw_image(rest);
    }
    let segment_bytes = u64::from_le_bytes(rest[0..8].try_into().expect("8 bytes"));
    let index_interval = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    // Mostly base 0 (the name the file gets), sometimes another one.
    let base = u64::from(rest[12] & 0x0f);
    let mut image = data_image(&rest[13..]);
    image[..64].copy_from_slice(&header(base, segment_bytes, index_interval));
    image
}

/// Writes `image` as the log's only segment, durably, the way the WAL itself creates files.
fn disk_with_segment(image: &[u8]) -> SimDisk {
    let disk = SimDisk::new();
    let storage = disk.storage();
    let dir = Path::new(DIR);
    let path = dir.join("00000000000000000000.seg");
    let file = storage
        .open(&path, OpenMode::CreateNew)
        .expect("the simulated disk creates files");
    file.preallocate(image.len() as u64).expect("preallocate");
    file.write_at(image, 0).expect("write");
    file.sync_data().expect("sync");
    storage.sync_dir(dir).expect("sync dir");
    disk
}

fn image_mode(image: Vec<u8>) {
    let disk = disk_with_segment(&image);
    check_log(&disk, IMAGE_BYTES, None);
}

/// What a `log` mode run appended, to check what recovery gives back.
struct Expected {
    /// Every record appended, by LSN.
    written: Vec<Vec<u8>>,
    /// Records below this LSN were acknowledged (their ticket's wait returned).
    acked: u64,
    /// True when bytes of the files were changed behind the log's back.
    damaged: bool,
}

/// The program: a sequence of ops.
/// - `0x00..=0xbf`: append a batch of `op % 4 + 1` records of `4 * next byte` bytes, and wait.
/// - `0xc0..=0xdf`: the same without waiting (the append may be lost in a power loss).
/// - `0xe0..=0xef`: flip bits: next bytes `file, offset lo, offset hi, mask`, applied at the end.
/// - `0xf0..=0xff`: end the program with a power loss seeded by the next byte (instead of a
///   clean close).
fn log_mode(program: &[u8]) {
    let disk = SimDisk::new();
    let dir = Path::new(DIR);
    let (wal, _) = Wal::open_with(disk.storage(), dir, options(LOG_SEGMENT_BYTES))
        .expect("an empty log opens");
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut acked = 0u64;
    let mut flips: Vec<[u8; 4]> = Vec::new();
    let mut crash: Option<u64> = None;
    let mut ops = program.iter().copied();
    let mut appends = 0;
    while let Some(op) = ops.next() {
        match op {
            0x00..=0xdf => {
                if appends == 64 {
                    continue;
                }
                appends += 1;
                let len = 4 * usize::from(ops.next().unwrap_or(0));
                let count = usize::from(op % 4) + 1;
                let first = written.len() as u64;
                let batch: Vec<Vec<u8>> = (0..count as u64)
                    .map(|i| record(first + i, len))
                    .collect();
                let ticket = wal.append(&batch).expect("appends within limits succeed");
                assert_eq!(ticket.range().start, Lsn(first), "LSNs are dense");
                written.extend(batch);
                if op < 0xc0 {
                    let range = ticket.wait().expect("sync on the simulated disk succeeds");
                    acked = acked.max(range.end.0);
                } else {
                    drop(ticket);
                }
            }
            0xe0..=0xef => {
                let mut f = [0u8; 4];
                for b in &mut f {
                    *b = ops.next().unwrap_or(0);
                }
                if f[3] != 0 {
                    flips.push(f);
                }
            }
            0xf0..=0xff => {
                crash = Some(u64::from(ops.next().unwrap_or(0)));
                break;
            }
        }
    }
    match crash {
        Some(seed) => {
            disk.crash(seed);
            drop(wal); // its handles are dead: the final sync fails, as in a dead process
        }
        None => {
            wal.close().expect("close syncs");
            acked = written.len() as u64;
            drop(wal);
        }
    }
    let files = segment_files(&disk);
    for [file, lo, hi, mask] in &flips {
        if files.is_empty() {
            break;
        }
        let path = &files[usize::from(*file) % files.len()];
        let len = disk.read_file(path).map_or(0, |b| b.len());
        if len == 0 {
            continue;
        }
        let offset = (usize::from(u16::from_le_bytes([*lo, *hi])) * 7) % len;
        let old = disk.read_file(path).expect("listed")[offset];
        disk.corrupt(path, offset as u64, &[old ^ mask])
            .expect("in bounds");
    }
    let expected = Expected {
        written,
        acked,
        damaged: !flips.is_empty(),
    };
    check_log(&disk, LOG_SEGMENT_BYTES, Some(&expected));
}

/// Record `lsn` of `len` bytes: its content says which LSN it is, so that a record served
/// under the wrong LSN cannot go unnoticed.
fn record(lsn: u64, len: usize) -> Vec<u8> {
    let tag = lsn.to_le_bytes();
    (0..len).map(|i| tag[i % 8] ^ (i as u8)).collect()
}

fn segment_files(disk: &SimDisk) -> Vec<PathBuf> {
    let dir = Path::new(DIR);
    let mut names = disk.storage().list(dir).unwrap_or_default();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// The errors damage may legitimately produce. Anything else (an I/O error on a disk that has
/// none, a poisoned log, `Closed`) is a bug.
fn assert_typed_damage(e: &Error, context: &str) {
    assert!(
        matches!(
            e,
            Error::Corrupt { .. }
                | Error::BadSegment { .. }
                | Error::SegmentGap { .. }
                | Error::UnsupportedVersion { .. }
        ),
        "{context}: unexpected error kind: {e:?}"
    );
}

/// Reads every record from `reader`, checking LSNs are dense from `first`.
fn read_all(mut reader: Reader, first: Lsn) -> Result<Vec<(Lsn, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut next = first;
    while let Some(frame) = reader.next_frame()? {
        for (lsn, bytes) in frame.records() {
            assert_eq!(lsn, next, "LSNs are dense");
            next = lsn.plus(1);
            out.push((lsn, bytes.to_vec()));
        }
    }
    Ok(out)
}

fn check_log(disk: &SimDisk, segment_bytes: u64, expected: Option<&Expected>) {
    let dir = Path::new(DIR);
    let storage = disk.storage();

    let report = hydrant_wal::verify(storage.as_ref(), dir).expect("listing the directory works");
    let viewed = match WalView::open_with(storage.clone(), dir) {
        Ok(view) => {
            let first = view.first_lsn();
            assert!(first <= view.next_lsn());
            match view.reader(first).map(|r| read_all(r, first)) {
                Ok(Ok(records)) => {
                    assert_eq!(
                        records.len() as u64,
                        view.next_lsn().0 - first.0,
                        "the view reads what it announces"
                    );
                    Some(records)
                }
                Ok(Err(e)) | Err(e) => {
                    assert_typed_damage(&e, "reading the view");
                    assert!(!report.is_clean(), "verify was clean but the view read {e:?}");
                    None
                }
            }
        }
        Err(e) => {
            assert_typed_damage(&e, "opening the view");
            assert!(!report.is_clean(), "verify was clean but the view failed: {e:?}");
            None
        }
    };

    let (wal, _) = match Wal::open_with(storage.clone(), dir, options(segment_bytes)) {
        Ok(opened) => opened,
        Err(e) => {
            assert_typed_damage(&e, "opening the log");
            assert!(!report.is_clean(), "verify was clean but open failed: {e:?}");
            if let Some(x) = expected {
                assert!(x.damaged, "an undamaged log must open: {e:?}");
            }
            return;
        }
    };
    let first = wal.first_lsn();
    let recovered = match wal.reader(first).map(|r| read_all(r, first)) {
        Ok(Ok(records)) => records,
        Ok(Err(e)) | Err(e) => {
            assert_typed_damage(&e, "reading the log");
            assert!(!report.is_clean(), "verify was clean but reading failed: {e:?}");
            if let Some(x) = expected {
                assert!(x.damaged, "an undamaged log must read: {e:?}");
            }
            return;
        }
    };
    assert_eq!(recovered.len() as u64, wal.next_lsn().0 - first.0);
    if let Some(view) = &viewed {
        assert_eq!(view, &recovered, "the view and the log agree");
    }
    if let Some(x) = expected {
        assert_eq!(first, Lsn::ZERO);
        for (lsn, bytes) in &recovered {
            let want = x.written.get(lsn.0 as usize);
            assert_eq!(Some(bytes), want, "record {lsn} is what was appended");
        }
        if !x.damaged {
            assert!(
                recovered.len() as u64 >= x.acked,
                "acknowledged records survive: {} of {} acked",
                recovered.len(),
                x.acked
            );
        }
    }

    // The recovered log takes appends and keeps them across a reopen.
    let next = wal.next_lsn();
    let extra = b"appended after recovery".to_vec();
    let range = wal
        .append(&[&extra])
        .and_then(hydrant_wal::Ticket::wait)
        .expect("a recovered log takes appends");
    assert_eq!(range.start, next, "appends continue at the recovered end");
    wal.close().expect("close");
    drop(wal);
    let (wal, _) = Wal::open_with(storage, dir, options(segment_bytes)).expect("reopen");
    let again = read_all(wal.reader(first).expect("reader"), first).expect("read after reopen");
    assert_eq!(again.len(), recovered.len() + 1);
    assert_eq!(&again[..recovered.len()], &recovered[..]);
    assert_eq!(again[recovered.len()].1, extra);
}
