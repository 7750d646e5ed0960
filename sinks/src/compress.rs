//! Object compression: Firehose's `CompressionFormat`s plus ZSTD, both ways.
//!
//! | `CompressionFormat` | extension | `Content-Encoding` | bytes |
//! | --- | --- | --- | --- |
//! | `UNCOMPRESSED` | (none) | (none) | the records, concatenated |
//! | `GZIP` | `.gz` | `gzip` | one gzip member (flate2) |
//! | `ZIP` | `.zip` | `zip` | a zip archive with one deflated entry |
//! | `Snappy` | `.snappy` | `snappy-java` | snappy-java's stream format (below) |
//! | `HADOOP_SNAPPY` | `.snappy` | `hadoop-snappy` | Hadoop's block format (below) |
//! | `ZSTD` (hydrant's own) | `.zst` | `zstd` | one zstd frame with a checksum |
//!
//! Records are compressed as they came: Firehose adds no delimiter, and neither does this module.
//!
//! # The two Snappy formats
//!
//! Objects that Firehose really delivered (captured and decoded by independent emulator projects)
//! show that `Snappy` is **not** the official Snappy framing format but snappy-java's
//! `SnappyOutputStream` format, and that `HADOOP_SNAPPY` objects end in `.snappy` too, although
//! the S3 object-name page tables `.hsnappy`: the two are told apart by `Content-Encoding` only.
//! hydrant follows the service. Both wrap raw Snappy blocks of at most 32 KiB of input:
//!
//! ```text
//! Snappy (snappy-java):
//!   header  { 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00 | version i32 BE = 1 | compatible i32 BE = 1 }
//!   blocks  { length i32 BE | raw snappy block }*
//!
//! HADOOP_SNAPPY (Hadoop BlockCompressorStream, io.compression.codec SnappyCodec):
//!   blocks  { uncompressed length u32 BE | { compressed length u32 BE | raw snappy chunk }+ }*
//!           the chunks of one block decompress to exactly its uncompressed length
//! ```
//!
//! Decompressing `Snappy` also accepts the official framing format (stream identifier
//! `0xff 0x06 0x00 0x00 sNaPpY`) and snappy-java's negative lengths (an uncompressed block), so
//! objects from either writer read back.

use std::fmt;
use std::io::{self, Cursor, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// The most bytes [`Compression::decompress`] produces before it gives up: a guard against
/// decompression bombs when reading objects back.
pub const DECOMPRESSED_BYTES_MAX: usize = 1 << 30;
/// Uncompressed bytes per Snappy block, in both Snappy formats (snappy-java's default block size).
pub const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;
/// The zstd level: zstd's default, a good speed / ratio balance for log data.
pub const ZSTD_LEVEL: i32 = 3;

/// snappy-java's stream header magic.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// snappy-java's header: magic, version, compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// The official Snappy framing format's stream identifier chunk.
const FRAMED_MAGIC: [u8; 10] = [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];

/// How an object is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `UNCOMPRESSED` (the default).
    #[default]
    Uncompressed,
    /// `GZIP`.
    Gzip,
    /// `ZIP`: one deflated entry.
    Zip,
    /// `Snappy`: snappy-java's stream format (see the module docs).
    Snappy,
    /// `HADOOP_SNAPPY`: Hadoop's block format (see the module docs).
    HadoopSnappy,
    /// `ZSTD`: hydrant's addition, not a Firehose value.
    Zstd,
}

impl Compression {
    /// Every codec.
    pub const ALL: [Compression; 6] = [
        Compression::Uncompressed,
        Compression::Gzip,
        Compression::Zip,
        Compression::Snappy,
        Compression::HadoopSnappy,
        Compression::Zstd,
    ];

    /// Parses a `CompressionFormat` value. Matching is exact, as Firehose's is: `SNAPPY` is not
    /// `Snappy`.
    ///
    /// # Errors
    /// [`CodecError::UnknownFormat`].
    pub fn from_firehose(name: &str) -> Result<Compression, CodecError> {
        Compression::ALL
            .into_iter()
            .find(|c| c.firehose_name() == name)
            .ok_or_else(|| CodecError::UnknownFormat(name.to_string()))
    }

    /// The `CompressionFormat` value.
    pub fn firehose_name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
            Compression::Zip => "ZIP",
            Compression::Snappy => "Snappy",
            Compression::HadoopSnappy => "HADOOP_SNAPPY",
            Compression::Zstd => "ZSTD",
        }
    }

    /// The extension an object gets when no `FileExtension` is configured.
    pub fn default_extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            // The service writes .snappy for HADOOP_SNAPPY too, not the documented .hsnappy.
            Compression::Snappy | Compression::HadoopSnappy => ".snappy",
            Compression::Zstd => ".zst",
        }
    }

    /// The `Content-Encoding` Firehose sets on the S3 object, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::Uncompressed => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zip => Some("zip"),
            Compression::Snappy => Some("snappy-java"),
            Compression::HadoopSnappy => Some("hadoop-snappy"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// Compresses `data` in one go (a ZIP entry is named `data`).
    ///
    /// # Errors
    /// [`CodecError::Encode`] (only for an archive the zip format cannot hold).
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, CodecError> {
        let mut encoder = Encoder::new(
            self,
            &ZipEntry {
                name: "data",
                modified_ms: 0,
            },
        )?;
        encoder.write(data)?;
        encoder.finish()
    }

    /// Decompresses an object, producing at most [`DECOMPRESSED_BYTES_MAX`] bytes.
    ///
    /// # Errors
    /// [`CodecError::Corrupt`] or [`CodecError::TooLarge`].
    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.decompress_with_limit(data, DECOMPRESSED_BYTES_MAX)
    }

    /// Decompresses an object, producing at most `limit` bytes.
    ///
    /// # Errors
    /// [`CodecError::Corrupt`] or [`CodecError::TooLarge`].
    pub fn decompress_with_limit(self, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        let codec = self;
        let corrupt = |reason: String| CodecError::Corrupt { codec, reason };
        let out = match self {
            Compression::Uncompressed => data.to_vec(),
            Compression::Gzip => read_limited(self, MultiGzDecoder::new(data), limit)?,
            Compression::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(e.to_string()))?;
                read_limited(self, decoder, limit)?
            }
            Compression::Zip => unzip(data, limit)?,
            Compression::Snappy => {
                if data.starts_with(&FRAMED_MAGIC) {
                    read_limited(self, snap::read::FrameDecoder::new(data), limit)?
                } else {
                    xerial_decode(data, limit)?
                }
            }
            Compression::HadoopSnappy => hadoop_decode(data, limit)?,
        };
        if out.len() > limit {
            return Err(CodecError::TooLarge { codec: self, limit });
        }
        Ok(out)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.firehose_name())
    }
}

/// A compression failure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A `CompressionFormat` value that is not one of the six.
    #[error("unknown CompressionFormat {0:?}: expected UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY or ZSTD")]
    UnknownFormat(String),
    /// Compressing failed.
    #[error("{codec} compression failed: {source}")]
    Encode {
        /// The codec.
        codec: Compression,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The data is not valid for the codec.
    #[error("{codec} data is corrupt: {reason}")]
    Corrupt {
        /// The codec.
        codec: Compression,
        /// What is wrong.
        reason: String,
    },
    /// The data decompresses to more than the limit.
    #[error("{codec} data decompresses to more than {limit} bytes")]
    TooLarge {
        /// The codec.
        codec: Compression,
        /// The limit.
        limit: usize,
    },
}

/// The single entry of a ZIP object.
#[derive(Clone, Copy, Debug)]
pub struct ZipEntry<'a> {
    /// The entry's name. Firehose uses a random UUID; hydrant uses the object id so the archive is
    /// a pure function of the batch.
    pub name: &'a str,
    /// The entry's modification time (Unix epoch ms; the oldest record's arrival). Times outside
    /// zip's 1980..=2107 range are stored as 1980-01-01.
    pub modified_ms: u64,
}

/// A streaming compressor: write the records one after another, then [`Encoder::finish`].
pub struct Encoder {
    codec: Compression,
    inner: EncoderInner,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

enum EncoderInner {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
    Zip(Box<zip::ZipWriter<Cursor<Vec<u8>>>>),
    Snappy(Box<SnappyBlocks>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// Starts compressing with `codec`; `zip_entry` is used by ZIP only.
    ///
    /// # Errors
    /// [`CodecError::Encode`] if the codec cannot start (zstd out of memory, say).
    pub fn new(codec: Compression, zip_entry: &ZipEntry<'_>) -> Result<Encoder, CodecError> {
        let encode = |source: io::Error| CodecError::Encode { codec, source };
        let inner = match codec {
            Compression::Uncompressed => EncoderInner::Plain(Vec::new()),
            Compression::Gzip => {
                // flate2 writes mtime 0 and no name: the bytes depend on the data alone.
                EncoderInner::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::default()))
            }
            Compression::Zip => {
                let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .last_modified_time(zip_time(zip_entry.modified_ms));
                writer
                    .start_file(zip_entry.name, options)
                    .map_err(|e| encode(io::Error::other(e)))?;
                EncoderInner::Zip(Box::new(writer))
            }
            Compression::Snappy => {
                EncoderInner::Snappy(Box::new(SnappyBlocks::new(SnappyFraming::Xerial)))
            }
            Compression::HadoopSnappy => {
                EncoderInner::Snappy(Box::new(SnappyBlocks::new(SnappyFraming::Hadoop)))
            }
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(encode)?;
                // A checksum lets a reader tell a damaged object from a short one.
                encoder.include_checksum(true).map_err(encode)?;
                EncoderInner::Zstd(encoder)
            }
        };
        Ok(Encoder { codec, inner })
    }

    /// Appends `data` (one record, or any part of the stream).
    ///
    /// # Errors
    /// [`CodecError::Encode`].
    pub fn write(&mut self, data: &[u8]) -> Result<(), CodecError> {
        let codec = self.codec;
        let encode = |source: io::Error| CodecError::Encode { codec, source };
        match &mut self.inner {
            EncoderInner::Plain(out) => out.extend_from_slice(data),
            EncoderInner::Gzip(encoder) => encoder.write_all(data).map_err(encode)?,
            EncoderInner::Zip(writer) => writer.write_all(data).map_err(encode)?,
            EncoderInner::Snappy(blocks) => blocks.write(data).map_err(encode)?,
            EncoderInner::Zstd(encoder) => encoder.write_all(data).map_err(encode)?,
        }
        Ok(())
    }

    /// Finishes the stream and returns the compressed bytes.
    ///
    /// # Errors
    /// [`CodecError::Encode`].
    pub fn finish(self) -> Result<Vec<u8>, CodecError> {
        let codec = self.codec;
        let encode = |source: io::Error| CodecError::Encode { codec, source };
        match self.inner {
            EncoderInner::Plain(out) => Ok(out),
            EncoderInner::Gzip(encoder) => encoder.finish().map_err(encode),
            EncoderInner::Zip(writer) => writer
                .finish()
                .map(Cursor::into_inner)
                .map_err(|e| encode(io::Error::other(e))),
            EncoderInner::Snappy(blocks) => blocks.finish().map_err(encode),
            EncoderInner::Zstd(encoder) => encoder.finish().map_err(encode),
        }
    }
}

/// A zip timestamp for `ms`, or 1980-01-01 when zip cannot represent it.
fn zip_time(ms: u64) -> zip::DateTime {
    let t = crate::calendar::CivilTime::utc(ms);
    let fields = (
        u16::try_from(t.year),
        u8::try_from(t.month),
        u8::try_from(t.day),
        u8::try_from(t.hour),
        u8::try_from(t.minute),
        u8::try_from(t.second),
    );
    match fields {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SnappyFraming {
    Xerial,
    Hadoop,
}

/// Cuts the input into [`SNAPPY_BLOCK_BYTES`] blocks and frames each compressed block.
struct SnappyBlocks {
    framing: SnappyFraming,
    encoder: snap::raw::Encoder,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl SnappyBlocks {
    fn new(framing: SnappyFraming) -> SnappyBlocks {
        let mut out = Vec::new();
        if framing == SnappyFraming::Xerial {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
        }
        SnappyBlocks {
            framing,
            encoder: snap::raw::Encoder::new(),
            pending: Vec::with_capacity(SNAPPY_BLOCK_BYTES),
            out,
        }
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (SNAPPY_BLOCK_BYTES - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == SNAPPY_BLOCK_BYTES {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        debug_assert!(self.pending.len() <= SNAPPY_BLOCK_BYTES);
        let compressed = self
            .encoder
            .compress_vec(&self.pending)
            .map_err(io::Error::other)?;
        // Blocks are at most 32 KiB of input, so both lengths fit 31 bits.
        let raw_len = u32::try_from(self.pending.len()).map_err(io::Error::other)?;
        let compressed_len = u32::try_from(compressed.len()).map_err(io::Error::other)?;
        if self.framing == SnappyFraming::Hadoop {
            self.out.extend_from_slice(&raw_len.to_be_bytes());
        }
        self.out.extend_from_slice(&compressed_len.to_be_bytes());
        self.out.extend_from_slice(&compressed);
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<Vec<u8>> {
        self.flush_block()?;
        Ok(self.out)
    }
}

fn read_limited(
    codec: Compression,
    reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| CodecError::Corrupt {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { codec, limit });
    }
    Ok(out)
}

fn unzip(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Zip;
    let corrupt = |reason: String| CodecError::Corrupt { codec, reason };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(data)).map_err(|e| corrupt(e.to_string()))?;
    if archive.is_empty() {
        return Err(corrupt("the archive has no entry".to_string()));
    }
    // Firehose writes one entry; should an archive hold more, their contents follow each other.
    let mut out = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| corrupt(e.to_string()))?;
        let room = limit.saturating_sub(out.len());
        out.extend(read_limited(codec, entry, room)?);
    }
    Ok(out)
}

/// Reads a big-endian u32 at `at`, if the data holds one.
fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Decompresses one raw Snappy block, checking its declared size against what is left of `limit`.
fn raw_snappy(
    codec: Compression,
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, CodecError> {
    let corrupt = |reason: String| CodecError::Corrupt { codec, reason };
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
    if out.len().saturating_add(len) > limit {
        return Err(CodecError::TooLarge { codec, limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = decoder
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(e.to_string()))?;
    out.truncate(start + written);
    Ok(written)
}

fn xerial_decode(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Snappy;
    let corrupt = |reason: &str| CodecError::Corrupt {
        codec,
        reason: reason.to_string(),
    };
    if !data.starts_with(&XERIAL_MAGIC) || data.len() < XERIAL_HEADER_LEN {
        return Err(corrupt(
            "neither a snappy-java stream nor a Snappy framed stream",
        ));
    }
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut at = XERIAL_HEADER_LEN;
    while at < data.len() {
        // snappy-java reads concatenated streams: a header may follow a block.
        if data[at..].starts_with(&XERIAL_MAGIC) {
            at += XERIAL_HEADER_LEN;
            continue;
        }
        let length = be_u32(data, at).ok_or_else(|| corrupt("truncated block length"))?;
        at += 4;
        // The length is an i32: negative means a block stored uncompressed.
        let signed = i32::from_be_bytes(length.to_be_bytes());
        let stored = usize::try_from(signed.unsigned_abs()).map_err(|_| corrupt("block length"))?;
        let end = at.checked_add(stored).filter(|end| *end <= data.len());
        let block = &data[at..end.ok_or_else(|| corrupt("truncated block"))?];
        if signed < 0 {
            if out.len().saturating_add(block.len()) > limit {
                return Err(CodecError::TooLarge { codec, limit });
            }
            out.extend_from_slice(block);
        } else {
            raw_snappy(codec, &mut decoder, block, &mut out, limit)?;
        }
        at += stored;
    }
    Ok(out)
}

fn hadoop_decode(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::HadoopSnappy;
    let corrupt = |reason: &str| CodecError::Corrupt {
        codec,
        reason: reason.to_string(),
    };
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let block_len = be_u32(data, at).ok_or_else(|| corrupt("truncated block length"))?;
        at += 4;
        let block_len = usize::try_from(block_len).map_err(|_| corrupt("block length"))?;
        if out.len().saturating_add(block_len) > limit {
            return Err(CodecError::TooLarge { codec, limit });
        }
        let mut produced = 0usize;
        while produced < block_len {
            let chunk_len = be_u32(data, at).ok_or_else(|| corrupt("truncated chunk length"))?;
            at += 4;
            let chunk_len = usize::try_from(chunk_len).map_err(|_| corrupt("chunk length"))?;
            let end = at.checked_add(chunk_len).filter(|end| *end <= data.len());
            let chunk = &data[at..end.ok_or_else(|| corrupt("truncated chunk"))?];
            produced += raw_snappy(codec, &mut decoder, chunk, &mut out, limit)?;
            at += chunk_len;
        }
        if produced != block_len {
            return Err(corrupt(
                "a block's chunks decompress past its declared length",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Vec<u8>> {
        let mut records = vec![
            b"{\"a\":1}\n".to_vec(),
            Vec::new(),
            b"no delimiter".to_vec(),
        ];
        // Compressible and incompressible data across several Snappy blocks.
        records.push(b"abcdefgh".repeat(20_000));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        records.push(
            (0..100_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect(),
        );
        records
    }

    fn encode(codec: Compression, records: &[Vec<u8>]) -> Vec<u8> {
        let entry = ZipEntry {
            name: "3b1f0c9e-5a1d-8c44-9f3e-2b7d81c0a6e4",
            modified_ms: 1_535_365_807_123,
        };
        let mut encoder = Encoder::new(codec, &entry).unwrap_or_else(|e| panic!("{e}"));
        for record in records {
            encoder.write(record).unwrap_or_else(|e| panic!("{e}"));
        }
        encoder.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_codec_round_trips_records_without_delimiters() {
        let records = records();
        let plain: Vec<u8> = records.concat();
        for codec in Compression::ALL {
            let compressed = encode(codec, &records);
            let back = codec
                .decompress(&compressed)
                .unwrap_or_else(|e| panic!("{codec}: {e}"));
            assert_eq!(back, plain, "{codec}");
            // Empty input round-trips too.
            let empty = encode(codec, &[]);
            assert_eq!(
                codec
                    .decompress(&empty)
                    .unwrap_or_else(|e| panic!("{codec}: {e}")),
                b""
            );
            // A pure function of the input: a resend writes identical bytes.
            assert_eq!(
                compressed,
                encode(codec, &records),
                "{codec} is not deterministic"
            );
        }
    }

    #[test]
    fn names_extensions_and_encodings() {
        for codec in Compression::ALL {
            assert_eq!(
                Compression::from_firehose(codec.firehose_name()).ok(),
                Some(codec)
            );
        }
        assert!(Compression::from_firehose("SNAPPY").is_err());
        assert!(Compression::from_firehose("gzip").is_err());
        assert_eq!(Compression::HadoopSnappy.default_extension(), ".snappy");
        assert_eq!(Compression::Gzip.content_encoding(), Some("gzip"));
        assert_eq!(Compression::Uncompressed.content_encoding(), None);
    }

    #[test]
    fn gzip_is_readable_by_flate2s_plain_reader() {
        let compressed = encode(Compression::Gzip, &[b"hello ".to_vec(), b"world".to_vec()]);
        assert_eq!(&compressed[..2], &[0x1f, 0x8b]);
        let mut out = String::new();
        let read = flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut out);
        assert!(read.is_ok());
        assert_eq!(out, "hello world");
    }

    #[test]
    fn zip_holds_one_deflated_entry_named_by_the_object_id() {
        let compressed = encode(Compression::Zip, &[b"hello ".to_vec(), b"world".to_vec()]);
        let mut archive =
            zip::ZipArchive::new(Cursor::new(&compressed[..])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entry.name().ok().as_deref(),
            Some("3b1f0c9e-5a1d-8c44-9f3e-2b7d81c0a6e4")
        );
        assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
        let modified = entry.last_modified().unwrap_or_default();
        assert_eq!(
            (modified.year(), modified.month(), modified.day()),
            (2018, 8, 27)
        );
        let mut out = String::new();
        assert!(entry.read_to_string(&mut out).is_ok());
        assert_eq!(out, "hello world");
    }

    #[test]
    fn hadoop_snappy_layout() {
        let data = b"hadoop ".repeat(10_000); // 70,000 bytes: blocks of 32768, 32768, 4464
        let compressed = encode(Compression::HadoopSnappy, std::slice::from_ref(&data));
        let mut at = 0;
        let mut blocks = Vec::new();
        let mut decoder = snap::raw::Decoder::new();
        let mut out = Vec::new();
        while at < compressed.len() {
            let raw = be_u32(&compressed, at).unwrap_or_default() as usize;
            let chunk = be_u32(&compressed, at + 4).unwrap_or_default() as usize;
            let plain = decoder.decompress_vec(&compressed[at + 8..at + 8 + chunk]);
            let plain = plain.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(plain.len(), raw);
            out.extend(plain);
            blocks.push(raw);
            at += 8 + chunk;
        }
        assert_eq!(blocks, vec![32_768, 32_768, 4_464]);
        assert_eq!(out, data);
    }

    #[test]
    fn hadoop_snappy_reads_several_chunks_per_block() {
        // Hadoop splits a large write into several chunks under one block length.
        let data = b"0123456789".repeat(10_000);
        let mut encoder = snap::raw::Encoder::new();
        let mut framed = (data.len() as u32).to_be_bytes().to_vec();
        for piece in data.chunks(40_000) {
            let chunk = encoder.compress_vec(piece).unwrap_or_default();
            framed.extend((chunk.len() as u32).to_be_bytes());
            framed.extend(chunk);
        }
        assert_eq!(
            Compression::HadoopSnappy.decompress(&framed).ok(),
            Some(data)
        );
    }

    #[test]
    fn snappy_is_the_snappy_java_stream_format() {
        let data = b"snappy ".repeat(10_000);
        let compressed = encode(Compression::Snappy, std::slice::from_ref(&data));
        assert_eq!(&compressed[..8], &XERIAL_MAGIC);
        assert_eq!(&compressed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let first = be_u32(&compressed, 16).unwrap_or_default() as usize;
        let block = snap::raw::Decoder::new().decompress_vec(&compressed[20..20 + first]);
        assert_eq!(block.map(|b| b.len()).ok(), Some(SNAPPY_BLOCK_BYTES));
        // Uncompressed blocks (negative lengths) and concatenated streams read back too.
        let mut odd = compressed[..16].to_vec();
        odd.extend((-5i32).to_be_bytes());
        odd.extend(b"plain");
        odd.extend(&compressed);
        let mut expected = b"plain".to_vec();
        expected.extend(&data);
        assert_eq!(Compression::Snappy.decompress(&odd).ok(), Some(expected));
    }

    #[test]
    fn snappy_reads_the_official_framing_format() {
        let mut framed = Vec::new();
        {
            let mut writer = snap::write::FrameEncoder::new(&mut framed);
            assert!(writer.write_all(b"framed snappy").is_ok());
            assert!(writer.flush().is_ok());
        }
        assert_eq!(
            Compression::Snappy.decompress(&framed).ok(),
            Some(b"framed snappy".to_vec())
        );
    }

    #[test]
    fn corrupt_and_oversized_input_is_an_error_not_a_panic() {
        let data = b"x".repeat(100_000);
        for codec in Compression::ALL {
            let compressed = encode(codec, std::slice::from_ref(&data));
            if codec != Compression::Uncompressed {
                for cut in [1, compressed.len() / 2, compressed.len() - 1] {
                    let result = codec.decompress(&compressed[..cut]);
                    assert!(result.is_err(), "{codec} cut at {cut}");
                }
                let mut flipped = compressed.clone();
                let mid = flipped.len() / 2;
                flipped[mid] ^= 0xff;
                // Either detected or (for formats without checksums) decoded to something else.
                let _ = codec.decompress(&flipped);
            }
            assert!(
                matches!(
                    codec.decompress_with_limit(&compressed, 99_999),
                    Err(CodecError::TooLarge { .. })
                ),
                "{codec}"
            );
            assert_eq!(
                codec.decompress_with_limit(&compressed, 100_000).ok(),
                Some(data.clone())
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_records(
            records in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..5000), 0..20),
            codec_index in 0usize..6,
        ) {
            let codec = Compression::ALL[codec_index];
            let compressed = encode(codec, &records);
            proptest::prop_assert_eq!(codec.decompress(&compressed).ok(), Some(records.concat()));
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300), codec_index in 0usize..6) {
            let _ = Compression::ALL[codec_index].decompress_with_limit(&data, 1 << 20);
        }
    }
}
