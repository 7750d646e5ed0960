//! The on-disk format: segment header, frames, the sparse index block and the footer.
//!
//! Every structure is little-endian, carries a magic and a format version, and is covered by a
//! CRC32 (crc32fast, the IEEE polynomial). Encoders and decoders live side by side so that the
//! daemon, the CLI and the fuzzers share one parser.

use crate::ids::Lsn;

/// Byte alignment of every frame. A frame's length word sits at an 8-byte aligned offset, so it
/// never straddles a sector and cannot itself be torn.
pub const FRAME_ALIGN: u64 = 8;

/// Where frames start in a segment: the first page holds the segment header alone, so the data
/// region is page aligned.
pub const DATA_START: u64 = 4096;

/// Length of the segment header (the rest of the first page is zero).
pub const SEGMENT_HEADER_LEN: usize = 64;

/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 32;

/// Length of the length prefix before every record in a frame.
pub const RECORD_PREFIX_LEN: usize = 4;

/// Length of the footer at the very end of a sealed segment.
pub const FOOTER_LEN: u64 = 128;

/// Length of the index block header (before its entries).
pub const INDEX_HEADER_LEN: u64 = 16;

/// Length of one sparse index entry.
pub const INDEX_ENTRY_LEN: u64 = 16;

/// The frame, index and footer format version this build reads and writes (and the segment
/// header's first version).
pub const FORMAT_VERSION: u16 = 1;

/// The segment header version this build writes. Version 2 has the same bytes as version 1 and
/// says that the log's segments may differ in size (a young log's first segments are small and
/// grow, see [`crate::WalOptions::first_segment_bytes`]): each segment's own header gives its
/// size, and everything in it (data limit, index reserve, footer offset) follows from that.
/// Version 1 logs (every segment of one size) read and append as before; a build that knows only
/// version 1 refuses a version 2 segment (its writer took every segment to be of the configured
/// size) instead of appending past a small segment's end.
pub const SEGMENT_HEADER_VERSION: u16 = 2;

/// Smallest segment the log accepts: room for the header page, one small frame and the trailer.
pub const SEGMENT_BYTES_MIN: u64 = 8192;

/// The largest record a frame can hold (the record length prefix is a u32).
pub const RECORD_BYTES_MAX: usize = u32::MAX as usize;

const SEGMENT_MAGIC: [u8; 8] = *b"HYDRSEG\0";
const INDEX_MAGIC: [u8; 8] = *b"HYDRIDX\0";
const FOOTER_MAGIC: [u8; 8] = *b"HYDRFTR\0";
const FRAME_MAGIC: u16 = 0x5748; // "HW" little-endian
/// The frame version of frames without an annex: their bytes are those every earlier build
/// wrote, so a log that never held an annex stays readable by them.
const FRAME_VERSION: u8 = 1;
/// The frame version of frames with an annex ([`FRAME_FLAG_ANNEX`]). A build that knows only
/// version 1 reports such a frame as [`FrameFault::UnsupportedVersion`] instead of misreading it.
pub const FRAME_VERSION_ANNEX: u8 = 2;
/// Flag bit: the frame ends with an annex (see [`FrameHeader`]).
pub const FRAME_FLAG_ANNEX: u8 = 1;
/// Length of the annex length word at the end of a frame with an annex.
pub const ANNEX_LEN_LEN: usize = 4;

const _: () = assert!((FRAME_HEADER_LEN as u64).is_multiple_of(FRAME_ALIGN));
const _: () = assert!(DATA_START.is_multiple_of(4096));
const _: () = assert!(SEGMENT_HEADER_LEN as u64 <= DATA_START);
const _: () = assert!(FOOTER_LEN.is_multiple_of(FRAME_ALIGN));
const _: () = assert!(INDEX_HEADER_LEN.is_multiple_of(FRAME_ALIGN));

/// Rounds `n` up to the frame alignment.
#[must_use]
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

// ---------------------------------------------------------------------------------------------
// Segment header
// ---------------------------------------------------------------------------------------------

/// The header at offset 0 of every segment.
///
/// ```text
/// Format (64 bytes, then zeros to DATA_START):
/// { magic "HYDRSEG\0" 8 | version u16 | reserved u16 | index_interval u32 | reserved u64 |
///   segment_bytes u64 | created_ms u64 | reserved [u8; 20] | crc32 u32 (over bytes 0..60) }
/// ```
///
/// The header is written and synced when the spare segment is prepared, before the segment has
/// a base LSN; the base LSN is the file's name (given by the rename that puts the spare into the
/// log) and is checked against the first frame and the footer. So a segment in the log always has
/// a durable header, and a missing or damaged one is damage, never a crash artefact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The LSN of the first record the segment holds (or will hold), from the file name; not
    /// stored in the header bytes.
    pub base_lsn: Lsn,
    /// The segment's full file length, fixed at creation.
    pub segment_bytes: u64,
    /// Data bytes between two sparse index entries.
    pub index_interval: u32,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// Why a header, index block or footer did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderFault {
    /// The magic is not there (zeros, garbage, or another kind of file).
    BadMagic,
    /// The checksum does not match.
    BadChecksum,
    /// The structure is intact but written by another format version.
    UnsupportedVersion(u16),
    /// A field is out of its valid range even though the checksum matches.
    BadField(&'static str),
}

impl SegmentHeader {
    /// Encodes the header into its 64 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&SEGMENT_HEADER_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.index_interval.to_le_bytes());
        b[24..32].copy_from_slice(&self.segment_bytes.to_le_bytes());
        b[32..40].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks the header of the segment whose name says it starts at `base_lsn`.
    ///
    /// # Errors
    /// A [`HeaderFault`] saying what is wrong.
    pub fn decode(b: &[u8], base_lsn: Lsn) -> Result<SegmentHeader, HeaderFault> {
        if b.len() < SEGMENT_HEADER_LEN || b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        if crc32fast::hash(&b[0..60]) != u32_at(b, 60) {
            return Err(HeaderFault::BadChecksum);
        }
        let version = u16_at(b, 8);
        if !(FORMAT_VERSION..=SEGMENT_HEADER_VERSION).contains(&version) {
            return Err(HeaderFault::UnsupportedVersion(version));
        }
        let header = SegmentHeader {
            index_interval: u32_at(b, 12),
            base_lsn,
            segment_bytes: u64_at(b, 24),
            created_ms: u64_at(b, 32),
        };
        if header.segment_bytes < SEGMENT_BYTES_MIN
            || !header.segment_bytes.is_multiple_of(FRAME_ALIGN)
        {
            return Err(HeaderFault::BadField("segment_bytes"));
        }
        if header.index_interval == 0 {
            return Err(HeaderFault::BadField("index_interval"));
        }
        Ok(header)
    }
}

// ---------------------------------------------------------------------------------------------
// Segment geometry
// ---------------------------------------------------------------------------------------------

/// Where things sit in a segment of a given size.
///
/// ```text
/// 0            DATA_START                      data_limit        index_reserve   S-FOOTER_LEN  S
/// | header pg  | frame | frame | ... | (zero)  | index block (sealed) ...         | footer      |
/// ```
/// Frames may end at most at `data_limit`; the space after it is reserved for the index block
/// (which is written right after the last frame when the segment is sealed) and the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// The segment's file length.
    pub segment_bytes: u64,
    /// Data bytes between two sparse index entries.
    pub index_interval: u32,
}

impl Geometry {
    /// The most sparse index entries a segment can need: one for the first frame and one per
    /// `index_interval` of data after it.
    #[must_use]
    pub fn index_entries_max(&self) -> u64 {
        (self.segment_bytes - DATA_START) / u64::from(self.index_interval) + 1
    }

    /// Bytes reserved at the end of the segment for the index block and the footer.
    #[must_use]
    pub fn trailer_reserve(&self) -> u64 {
        INDEX_HEADER_LEN + self.index_entries_max() * INDEX_ENTRY_LEN + FOOTER_LEN
    }

    /// The offset past which no frame may extend.
    #[must_use]
    pub fn data_limit(&self) -> u64 {
        self.segment_bytes.saturating_sub(self.trailer_reserve())
    }

    /// Offset of the footer.
    #[must_use]
    pub fn footer_offset(&self) -> u64 {
        self.segment_bytes - FOOTER_LEN
    }

    /// The largest frame (header, records, padding) a segment of this geometry can hold.
    #[must_use]
    pub fn frame_bytes_max(&self) -> u64 {
        self.data_limit().saturating_sub(DATA_START)
    }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// The fixed part of a frame.
///
/// ```text
/// Format (32 bytes, then the records, then zero padding to 8 bytes):
/// { len u32 | crc32 u32 | magic u16 "HW" | version u8 | flags u8 | record_count u32 |
///   first_lsn u64 | arrival_ms u64 } { record_len u32 | record bytes }*
/// len   = 32 + sum(4 + record_len), excluding the padding; 0 marks the end of the log.
/// crc32 = CRC32 of bytes [0..4) ++ [8..len): every byte of the frame but the CRC itself.
///
/// Version 2 (flags bit 0 set, [`FRAME_FLAG_ANNEX`]) adds an annex after the records:
/// { records }* { annex bytes } { annex_len u32 }, and len counts them too. The annex is opaque
/// to the log (a source keeps its positions and per-record metadata there, see the engine's
/// `source::kinesis`); it is covered by the frame's CRC and is never a record. Version 1 frames
/// (flags 0) are written for every append without an annex and read as before.
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Length of header plus records, without padding.
    pub len: u32,
    /// The frame's checksum.
    pub crc: u32,
    /// Number of records in the frame (at least one).
    pub record_count: u32,
    /// LSN of the frame's first record.
    pub first_lsn: Lsn,
    /// Arrival time of the batch, milliseconds since the Unix epoch.
    pub arrival_ms: u64,
    /// Bytes of the annex (0 for a frame without one), not counting its length word.
    pub annex_len: u32,
}

impl FrameHeader {
    /// Bytes the annex takes at the end of the frame, its length word included (0 without one).
    #[must_use]
    pub fn annex_total(&self) -> usize {
        if self.annex_len == 0 {
            0
        } else {
            self.annex_len as usize + ANNEX_LEN_LEN
        }
    }

    /// The frame's length on disk, padding included.
    #[must_use]
    pub fn padded_len(&self) -> u64 {
        align_up(u64::from(self.len))
    }

    /// One past the LSN of the frame's last record.
    #[must_use]
    pub fn end_lsn(&self) -> Lsn {
        self.first_lsn.plus(u64::from(self.record_count))
    }
}

/// The encoded length of a frame holding records of these lengths, without padding.
#[must_use]
pub fn frame_len_for<I: IntoIterator<Item = usize>>(record_lens: I) -> u64 {
    FRAME_HEADER_LEN as u64
        + record_lens
            .into_iter()
            .map(|l| (RECORD_PREFIX_LEN + l) as u64)
            .sum::<u64>()
}

/// A frame being built: the header is left blank until the LSN is known, and the CRC of the
/// records is computed while encoding, outside any lock.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    payload_crc: crc32fast::Hasher,
    record_count: u32,
    /// Length of the annex pushed after the records (0: none; then no record may follow).
    annex_len: u32,
}

impl FrameBuf {
    /// Clears the buffer for a new frame, keeping its allocation.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(FRAME_HEADER_LEN, 0);
        self.payload_crc = crc32fast::Hasher::new();
        self.record_count = 0;
        self.annex_len = 0;
    }

    /// Reserves room for a frame of `frame_len` bytes, so encoding does not reallocate.
    pub fn reserve(&mut self, frame_len: usize) {
        let want = align_up(frame_len as u64) as usize;
        if self.buf.capacity() < want {
            self.buf.reserve(want - self.buf.len());
        }
    }

    /// Appends one record (its length prefix and bytes).
    ///
    /// # Panics
    /// When the record is longer than [`RECORD_BYTES_MAX`]; callers check limits first.
    pub fn push(&mut self, record: &[u8]) {
        debug_assert_eq!(self.annex_len, 0, "records go before the annex");
        let len = u32::try_from(record.len()).expect("record length checked by the caller");
        let prefix = len.to_le_bytes();
        self.payload_crc.update(&prefix);
        self.payload_crc.update(record);
        self.buf.extend_from_slice(&prefix);
        self.buf.extend_from_slice(record);
        self.record_count += 1;
    }

    /// Ends the frame with an annex (after every record). An empty annex is no annex.
    ///
    /// # Panics
    /// When the annex is longer than `u32::MAX`; callers check limits first.
    pub fn push_annex(&mut self, annex: &[u8]) {
        debug_assert_eq!(self.annex_len, 0, "one annex per frame");
        if annex.is_empty() {
            return;
        }
        let len = u32::try_from(annex.len()).expect("annex length checked by the caller");
        self.payload_crc.update(annex);
        self.payload_crc.update(&len.to_le_bytes());
        self.buf.extend_from_slice(annex);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.annex_len = len;
    }

    /// Number of records pushed so far.
    #[must_use]
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// Length of the frame without padding.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no record has been pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Fills in the header for the given position and pads the frame to the alignment. Returns
    /// the bytes to write. Cheap: the payload CRC is already computed and is combined with the
    /// header's.
    ///
    /// # Panics
    /// When the frame is empty or longer than `u32::MAX`; both are caller bugs.
    pub fn seal(&mut self, first_lsn: Lsn, arrival_ms: u64) -> &[u8] {
        assert!(self.record_count > 0, "a frame holds at least one record");
        let unpadded = self.buf.len();
        let len = u32::try_from(unpadded).expect("frame length checked by the caller");
        let h = &mut self.buf[..FRAME_HEADER_LEN];
        h[0..4].copy_from_slice(&len.to_le_bytes());
        h[8..10].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        if self.annex_len == 0 {
            h[10] = FRAME_VERSION;
            h[11] = 0;
        } else {
            h[10] = FRAME_VERSION_ANNEX;
            h[11] = FRAME_FLAG_ANNEX;
        }
        h[12..16].copy_from_slice(&self.record_count.to_le_bytes());
        h[16..24].copy_from_slice(&first_lsn.0.to_le_bytes());
        h[24..32].copy_from_slice(&arrival_ms.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h[0..4]);
        crc.update(&h[8..FRAME_HEADER_LEN]);
        crc.combine(&self.payload_crc);
        let crc = crc.finalize();
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let padded = align_up(unpadded as u64) as usize;
        self.buf.resize(padded, 0);
        // Pair assertion: what we are about to write decodes as what we meant to write.
        debug_assert!(matches!(
            decode_frame(&self.buf, 0),
            FrameDecode::Frame(f) if f.header.first_lsn == first_lsn
                && f.header.record_count == self.record_count
                && f.header.annex_len == self.annex_len
        ));
        &self.buf
    }
}

/// A frame decoded from bytes, borrowing them.
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    /// The frame's header.
    pub header: FrameHeader,
    /// The records area (length-prefixed records), already checked against the header.
    pub records: &'a [u8],
    /// The annex (empty for a frame without one).
    pub annex: &'a [u8],
}

impl<'a> FrameView<'a> {
    /// The records of the frame, in order.
    #[must_use]
    pub fn records(&self) -> RecordIter<'a> {
        RecordIter {
            rest: self.records,
            remaining: self.header.record_count,
        }
    }
}

/// Iterator over the records of a decoded frame.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> RecordIter<'a> {
    /// Iterates `count` records in a records area that [`decode_frame`] validated.
    pub(crate) fn new(rest: &'a [u8], remaining: u32) -> RecordIter<'a> {
        RecordIter { rest, remaining }
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // The frame was validated by `decode_frame`: every prefix is in bounds.
        let len = u32_at(self.rest, 0) as usize;
        let record = &self.rest[RECORD_PREFIX_LEN..RECORD_PREFIX_LEN + len];
        self.rest = &self.rest[RECORD_PREFIX_LEN + len..];
        self.remaining -= 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for RecordIter<'_> {}

/// Why the bytes at an offset are not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer bytes remain than a frame header or than the length word says.
    Short,
    /// The length word is below the header length.
    BadLength,
    /// The checksum does not match: a torn or corrupted write.
    BadChecksum,
    /// The checksum matches but the magic does not: not a frame.
    BadMagic,
    /// The checksum matches but the frame was written by another format version.
    UnsupportedVersion(u8),
    /// The checksum matches but the records do not add up to the frame length. Only a bug or
    /// deliberate forgery produces this.
    BadRecords,
}

/// The outcome of decoding at one offset.
#[derive(Clone, Copy, Debug)]
pub enum FrameDecode<'a> {
    /// A whole, valid frame.
    Frame(FrameView<'a>),
    /// A zero length word: preallocated space, the end of the written log.
    End,
    /// Not a valid frame.
    Fault(FrameFault),
}

/// Decodes the frame at `at` in `bytes`. Never reads out of bounds and never panics, whatever
/// the bytes are.
#[must_use]
pub fn decode_frame(bytes: &[u8], at: usize) -> FrameDecode<'_> {
    let Some(rest) = bytes.get(at..) else {
        return FrameDecode::Fault(FrameFault::Short);
    };
    if rest.len() < 4 {
        return FrameDecode::Fault(FrameFault::Short);
    }
    let len = u32_at(rest, 0) as usize;
    if len == 0 {
        return FrameDecode::End;
    }
    if len < FRAME_HEADER_LEN {
        return FrameDecode::Fault(FrameFault::BadLength);
    }
    if rest.len() < len {
        return FrameDecode::Fault(FrameFault::Short);
    }
    let frame = &rest[..len];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&frame[0..4]);
    crc.update(&frame[8..]);
    if crc.finalize() != u32_at(frame, 4) {
        return FrameDecode::Fault(FrameFault::BadChecksum);
    }
    if u16_at(frame, 8) != FRAME_MAGIC {
        return FrameDecode::Fault(FrameFault::BadMagic);
    }
    let body = &frame[FRAME_HEADER_LEN..];
    let (records, annex) = match (frame[10], frame[11]) {
        (FRAME_VERSION, 0) => (body, &body[..0]),
        (FRAME_VERSION_ANNEX, FRAME_FLAG_ANNEX) => {
            let Some(at) = body.len().checked_sub(ANNEX_LEN_LEN) else {
                return FrameDecode::Fault(FrameFault::BadRecords);
            };
            let annex_len = u32_at(body, at) as usize;
            if annex_len == 0 || annex_len > at {
                return FrameDecode::Fault(FrameFault::BadRecords);
            }
            (&body[..at - annex_len], &body[at - annex_len..at])
        }
        (FRAME_VERSION | FRAME_VERSION_ANNEX, _) => {
            return FrameDecode::Fault(FrameFault::BadRecords)
        }
        (v, _) => return FrameDecode::Fault(FrameFault::UnsupportedVersion(v)),
    };
    let header = FrameHeader {
        len: len as u32,
        crc: u32_at(frame, 4),
        record_count: u32_at(frame, 12),
        first_lsn: Lsn(u64_at(frame, 16)),
        arrival_ms: u64_at(frame, 24),
        annex_len: annex.len() as u32,
    };
    if header.record_count == 0 || !records_fit(records, header.record_count) {
        return FrameDecode::Fault(FrameFault::BadRecords);
    }
    if header
        .first_lsn
        .0
        .checked_add(u64::from(header.record_count))
        .is_none()
    {
        return FrameDecode::Fault(FrameFault::BadRecords);
    }
    FrameDecode::Frame(FrameView {
        header,
        records,
        annex,
    })
}

/// True when exactly `count` length-prefixed records fill `records`.
fn records_fit(records: &[u8], count: u32) -> bool {
    let mut at = 0usize;
    for _ in 0..count {
        if records.len() - at < RECORD_PREFIX_LEN {
            return false;
        }
        let len = u32_at(records, at) as usize;
        at += RECORD_PREFIX_LEN;
        if records.len() - at < len {
            return false;
        }
        at += len;
    }
    at == records.len()
}

// ---------------------------------------------------------------------------------------------
// Sparse index block and footer (written when a segment is sealed)
// ---------------------------------------------------------------------------------------------

/// One sparse index entry: the frame that starts at `offset` begins with `lsn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// First LSN of the frame.
    pub lsn: Lsn,
    /// Offset of the frame in the segment.
    pub offset: u64,
}

/// Encodes the index block.
///
/// ```text
/// Format: { magic "HYDRIDX\0" 8 | count u32 | crc32 u32 (over count and entries) }
///         { lsn u64 | offset u64 } * count
/// ```
#[must_use]
pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let count = u32::try_from(entries.len()).expect("index size bounded by the geometry");
    let mut b = Vec::with_capacity(INDEX_HEADER_LEN as usize + entries.len() * 16);
    b.extend_from_slice(&INDEX_MAGIC);
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&[0u8; 4]);
    for e in entries {
        b.extend_from_slice(&e.lsn.0.to_le_bytes());
        b.extend_from_slice(&e.offset.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[8..12]);
    crc.update(&b[16..]);
    let crc = crc.finalize();
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes an index block of `count` entries at the start of `b`.
///
/// # Errors
/// A [`HeaderFault`] when the block is missing, torn or does not hold `count` entries.
pub fn decode_index(b: &[u8], count: u32) -> Result<Vec<IndexEntry>, HeaderFault> {
    let need = INDEX_HEADER_LEN as usize + count as usize * INDEX_ENTRY_LEN as usize;
    if b.len() < need || b[0..8] != INDEX_MAGIC {
        return Err(HeaderFault::BadMagic);
    }
    if u32_at(b, 8) != count {
        return Err(HeaderFault::BadField("index count"));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[8..12]);
    crc.update(&b[16..need]);
    if crc.finalize() != u32_at(b, 12) {
        return Err(HeaderFault::BadChecksum);
    }
    Ok((0..count as usize)
        .map(|i| {
            let at = INDEX_HEADER_LEN as usize + i * INDEX_ENTRY_LEN as usize;
            IndexEntry {
                lsn: Lsn(u64_at(b, at)),
                offset: u64_at(b, at + 8),
            }
        })
        .collect())
}

/// The footer of a sealed segment: enough to open the log without reading any frame.
///
/// ```text
/// Format (128 bytes at segment_bytes - 128):
/// { magic "HYDRFTR\0" 8 | version u16 | reserved u16 | index_count u32 | base_lsn u64 |
///   end_lsn u64 | frame_count u64 | data_end u64 | first_arrival_ms u64 | last_arrival_ms u64 |
///   reserved [u8; 60] | crc32 u32 (over bytes 0..124) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// First LSN of the segment (equal to the header's).
    pub base_lsn: Lsn,
    /// One past the last LSN in the segment.
    pub end_lsn: Lsn,
    /// Number of frames.
    pub frame_count: u64,
    /// Offset one past the last frame (padding included); the index block starts here.
    pub data_end: u64,
    /// Number of entries in the index block.
    pub index_count: u32,
    /// Arrival time of the first frame (0 when the segment is empty).
    pub first_arrival_ms: u64,
    /// Arrival time of the last frame (0 when the segment is empty).
    pub last_arrival_ms: u64,
}

impl Footer {
    /// Encodes the footer.
    #[must_use]
    pub fn encode(&self) -> [u8; FOOTER_LEN as usize] {
        let mut b = [0u8; FOOTER_LEN as usize];
        b[0..8].copy_from_slice(&FOOTER_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.index_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.base_lsn.0.to_le_bytes());
        b[24..32].copy_from_slice(&self.end_lsn.0.to_le_bytes());
        b[32..40].copy_from_slice(&self.frame_count.to_le_bytes());
        b[40..48].copy_from_slice(&self.data_end.to_le_bytes());
        b[48..56].copy_from_slice(&self.first_arrival_ms.to_le_bytes());
        b[56..64].copy_from_slice(&self.last_arrival_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[0..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a footer.
    ///
    /// # Errors
    /// A [`HeaderFault`] when there is no valid footer (an unsealed segment has zeros here).
    pub fn decode(b: &[u8]) -> Result<Footer, HeaderFault> {
        if b.len() < FOOTER_LEN as usize || b[0..8] != FOOTER_MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        if crc32fast::hash(&b[0..124]) != u32_at(b, 124) {
            return Err(HeaderFault::BadChecksum);
        }
        let version = u16_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderFault::UnsupportedVersion(version));
        }
        let footer = Footer {
            index_count: u32_at(b, 12),
            base_lsn: Lsn(u64_at(b, 16)),
            end_lsn: Lsn(u64_at(b, 24)),
            frame_count: u64_at(b, 32),
            data_end: u64_at(b, 40),
            first_arrival_ms: u64_at(b, 48),
            last_arrival_ms: u64_at(b, 56),
        };
        if footer.end_lsn < footer.base_lsn {
            return Err(HeaderFault::BadField("end_lsn"));
        }
        if footer.data_end < DATA_START || !footer.data_end.is_multiple_of(FRAME_ALIGN) {
            return Err(HeaderFault::BadField("data_end"));
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(records: &[&[u8]], lsn: u64) -> Vec<u8> {
        let mut f = FrameBuf::default();
        f.reset();
        for r in records {
            f.push(r);
        }
        f.seal(Lsn(lsn), 1234).to_vec()
    }

    #[test]
    fn frame_round_trips() {
        let bytes = frame(&[b"hello", b"", b"world!"], 42);
        assert_eq!(bytes.len() as u64 % FRAME_ALIGN, 0);
        let FrameDecode::Frame(f) = decode_frame(&bytes, 0) else {
            panic!("not a frame")
        };
        assert_eq!(f.header.first_lsn, Lsn(42));
        assert_eq!(f.header.end_lsn(), Lsn(45));
        assert_eq!(f.header.arrival_ms, 1234);
        let got: Vec<&[u8]> = f.records().collect();
        assert_eq!(got, vec![&b"hello"[..], b"", b"world!"]);
        assert_eq!(u64::from(f.header.len), frame_len_for([5, 0, 6]));
    }

    fn frame_with_annex(records: &[&[u8]], annex: &[u8], lsn: u64) -> Vec<u8> {
        let mut f = FrameBuf::default();
        f.reset();
        for r in records {
            f.push(r);
        }
        f.push_annex(annex);
        f.seal(Lsn(lsn), 1234).to_vec()
    }

    #[test]
    fn frame_with_annex_round_trips_and_keeps_records_apart() {
        let bytes = frame_with_annex(&[b"ab", b"", b"cde"], b"shard-1:seq", 10);
        assert_eq!(bytes[10], FRAME_VERSION_ANNEX);
        assert_eq!(bytes[11], FRAME_FLAG_ANNEX);
        let FrameDecode::Frame(f) = decode_frame(&bytes, 0) else {
            panic!("not a frame")
        };
        assert_eq!(f.annex, b"shard-1:seq");
        assert_eq!(f.header.annex_len, 11);
        assert_eq!(
            u64::from(f.header.len),
            frame_len_for([2, 0, 3]) + 11 + ANNEX_LEN_LEN as u64
        );
        let got: Vec<&[u8]> = f.records().collect();
        assert_eq!(got, vec![&b"ab"[..], b"", b"cde"]);
        // An empty annex writes a version 1 frame: the bytes earlier builds wrote.
        let plain = frame_with_annex(&[b"ab"], b"", 10);
        assert_eq!(plain, frame(&[b"ab"], 10));
        assert_eq!(plain[10], 1);
        assert_eq!(plain[11], 0);
    }

    /// A version 1 frame as the builds before the annex wrote it (bytes laid out by hand, not
    /// by this build's encoder) still reads, with no annex.
    #[test]
    fn old_format_frames_still_read() {
        let mut b = Vec::new();
        b.extend_from_slice(&(32u32 + 4 + 3).to_le_bytes());
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(&0x5748u16.to_le_bytes());
        b.push(1);
        b.push(0);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&77u64.to_le_bytes());
        b.extend_from_slice(&1234u64.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"xyz");
        let mut crc = crc32fast::Hasher::new();
        crc.update(&b[0..4]);
        crc.update(&b[8..]);
        let crc = crc.finalize();
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        b.resize(align_up(b.len() as u64) as usize, 0);
        // This build still writes exactly these bytes for a frame without an annex.
        assert_eq!(b, frame(&[b"xyz"], 77));
        let FrameDecode::Frame(f) = decode_frame(&b, 0) else {
            panic!("old frame not read")
        };
        assert_eq!(f.header.first_lsn, Lsn(77));
        assert!(f.annex.is_empty());
        assert_eq!(f.records().collect::<Vec<_>>(), vec![&b"xyz"[..]]);
    }

    #[test]
    fn every_single_bit_flip_of_a_frame_with_annex_is_detected() {
        let bytes = frame_with_annex(&[b"abc"], b"meta", 7);
        let len = u32_at(&bytes, 0) as usize;
        for bit in 0..len * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            if let FrameDecode::Frame(_) = decode_frame(&b, 0) {
                panic!("bit {bit} flip went unnoticed")
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = frame(&[b"abc", b"defgh"], 7);
        let len = u32_at(&bytes, 0) as usize;
        for bit in 0..len * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            match decode_frame(&b, 0) {
                FrameDecode::Frame(_) => panic!("bit {bit} flip went unnoticed"),
                FrameDecode::End | FrameDecode::Fault(_) => {}
            }
        }
    }

    #[test]
    fn zero_length_is_end_and_short_input_is_short() {
        assert!(matches!(decode_frame(&[0u8; 64], 0), FrameDecode::End));
        let bytes = frame(&[b"abc"], 0);
        assert!(matches!(
            decode_frame(&bytes[..bytes.len() - 8], 0),
            FrameDecode::Fault(FrameFault::Short)
        ));
        assert!(matches!(
            decode_frame(&bytes, bytes.len() + 100),
            FrameDecode::Fault(_)
        ));
    }

    #[test]
    fn header_footer_index_round_trip() {
        let h = SegmentHeader {
            base_lsn: Lsn(99),
            segment_bytes: 1 << 20,
            index_interval: 4096,
            created_ms: 5,
        };
        assert_eq!(SegmentHeader::decode(&h.encode(), Lsn(99)), Ok(h));
        let f = Footer {
            base_lsn: Lsn(99),
            end_lsn: Lsn(120),
            frame_count: 3,
            data_end: 8192,
            index_count: 2,
            first_arrival_ms: 1,
            last_arrival_ms: 2,
        };
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
        let mut bad = f.encode();
        bad[30] ^= 1;
        assert_eq!(Footer::decode(&bad), Err(HeaderFault::BadChecksum));
        let entries = vec![
            IndexEntry {
                lsn: Lsn(99),
                offset: 4096,
            },
            IndexEntry {
                lsn: Lsn(110),
                offset: 70000,
            },
        ];
        assert_eq!(decode_index(&encode_index(&entries), 2), Ok(entries));
    }

    #[test]
    fn headers_of_version_1_still_read_and_later_ones_do_not() {
        let h = SegmentHeader {
            base_lsn: Lsn(7),
            segment_bytes: 64 << 20,
            index_interval: 4096,
            created_ms: 5,
        };
        let with_version = |v: u16| {
            let mut b = h.encode();
            b[8..10].copy_from_slice(&v.to_le_bytes());
            let crc = crc32fast::hash(&b[0..60]);
            b[60..64].copy_from_slice(&crc.to_le_bytes());
            b
        };
        assert_eq!(u16_at(&h.encode(), 8), SEGMENT_HEADER_VERSION);
        assert_eq!(SegmentHeader::decode(&with_version(1), Lsn(7)), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&with_version(SEGMENT_HEADER_VERSION + 1), Lsn(7)),
            Err(HeaderFault::UnsupportedVersion(SEGMENT_HEADER_VERSION + 1))
        );
    }

    #[test]
    fn geometry_leaves_room_for_the_trailer() {
        let g = Geometry {
            segment_bytes: 64 << 20,
            index_interval: 64 << 10,
        };
        assert!(g.data_limit() > DATA_START);
        assert!(g.data_limit() + g.trailer_reserve() <= g.segment_bytes);
        let small = Geometry {
            segment_bytes: SEGMENT_BYTES_MIN,
            index_interval: 64 << 10,
        };
        assert!(small.frame_bytes_max() > 1024);
    }
}
