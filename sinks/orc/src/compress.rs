//! ORC's compression framing: a compressed stream (and every compressed metadata section) is a
//! sequence of chunks, each at most the compression block size of input, each behind a 3-byte
//! little-endian header `length * 2 + original`, where `original` (1) says the chunk is stored
//! as is because compressing did not make it smaller. `NONE` has no headers at all.
//!
//! ZLIB is raw deflate (RFC 1951, no zlib header); SNAPPY is raw snappy blocks (no framing).

use std::io::Write;

use crate::OrcError;

/// The compression block size hydrant writes (256 KiB, ORC's default).
pub const BLOCK_SIZE: usize = 256 * 1024;

/// The largest chunk a 3-byte header can describe (23 bits of length).
pub const MAX_CHUNK: usize = (1 << 23) - 1;

/// `OrcSerDe.Compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `NONE`.
    None,
    /// `ZLIB`: raw deflate.
    Zlib,
    /// `SNAPPY` (Firehose's default).
    Snappy,
}

impl Compression {
    /// From Firehose's name.
    pub fn from_firehose(name: &str) -> Option<Compression> {
        match name {
            "NONE" => Some(Compression::None),
            "ZLIB" => Some(Compression::Zlib),
            "SNAPPY" => Some(Compression::Snappy),
            _ => None,
        }
    }

    /// The PostScript's `CompressionKind`.
    pub(crate) fn kind(self) -> i32 {
        use crate::proto::compression_kind as k;
        match self {
            Compression::None => k::NONE,
            Compression::Zlib => k::ZLIB,
            Compression::Snappy => k::SNAPPY,
        }
    }
}

/// Appends `data` to `out` framed and compressed with `codec` in chunks of `block` bytes;
/// returns the bytes appended.
///
/// # Errors
/// The codec's error.
pub fn compress_into(
    out: &mut Vec<u8>,
    codec: Compression,
    block: usize,
    data: &[u8],
) -> Result<u64, OrcError> {
    debug_assert!(block > 0 && block <= MAX_CHUNK, "block size {block}");
    let start = out.len();
    if codec == Compression::None {
        out.extend_from_slice(data);
        return Ok((out.len() - start) as u64);
    }
    let mut scratch = Vec::new();
    for chunk in data.chunks(block) {
        scratch.clear();
        match codec {
            Compression::None => {}
            Compression::Zlib => {
                let mut e = flate2::write::DeflateEncoder::new(
                    std::mem::take(&mut scratch),
                    flate2::Compression::default(),
                );
                e.write_all(chunk).map_err(OrcError::Zlib)?;
                scratch = e.finish().map_err(OrcError::Zlib)?;
            }
            Compression::Snappy => {
                scratch.resize(snap::raw::max_compress_len(chunk.len()), 0);
                let n = snap::raw::Encoder::new()
                    .compress(chunk, &mut scratch)
                    .map_err(OrcError::Snappy)?;
                scratch.truncate(n);
            }
        }
        let (body, original) = if scratch.len() < chunk.len() {
            (&scratch[..], 0)
        } else {
            (chunk, 1)
        };
        let header = (body.len() << 1) | original;
        debug_assert!(body.len() <= MAX_CHUNK);
        out.extend_from_slice(&[header as u8, (header >> 8) as u8, (header >> 16) as u8]);
        out.extend_from_slice(body);
    }
    Ok((out.len() - start) as u64)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Reads the framing back, as the specification describes it.
    fn decompress(codec: Compression, mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let h = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
            let (len, original) = (h >> 1, h & 1 == 1);
            let body = &b[3..3 + len];
            if original {
                out.extend_from_slice(body);
            } else if codec == Compression::Zlib {
                flate2::read::DeflateDecoder::new(body)
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
            } else {
                out.extend(
                    snap::raw::Decoder::new()
                        .decompress_vec(body)
                        .unwrap_or_else(|e| panic!("{e}")),
                );
            }
            b = &b[3 + len..];
        }
        out
    }

    #[test]
    fn chunks_round_trip_and_incompressible_chunks_are_original() {
        let mut data: Vec<u8> = (0..600_000u32).map(|i| (i % 7) as u8).collect();
        // A tail no codec shrinks.
        let mut x = 0x1234_5678u32;
        data.extend((0..1000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        for codec in [Compression::Zlib, Compression::Snappy] {
            let mut out = Vec::new();
            let n =
                compress_into(&mut out, codec, BLOCK_SIZE, &data).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n as usize, out.len());
            assert!(out.len() < data.len() / 4, "{codec:?}: {}", out.len());
            assert_eq!(decompress(codec, &out), data);
            let mut out = Vec::new();
            compress_into(&mut out, codec, BLOCK_SIZE, &data[600_000..])
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out[0] & 1, 1, "{codec:?}: stored as original");
            assert_eq!(&out[3..], &data[600_000..]);
        }
        let mut out = Vec::new();
        compress_into(&mut out, Compression::None, BLOCK_SIZE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, data);
    }
}
