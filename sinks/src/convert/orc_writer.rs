//! `OrcSerDe`: Arrow arrays written as one ORC file, by hydrant's own writer (the `hydrant-orc`
//! crate: no maintained Rust crate writes ORC with structs, lists, maps and decimals).
//!
//! | OrcSerDe member | applied as |
//! |---|---|
//! | `StripeSizeBytes` (>= 8 MiB, default 64 MiB) | a stripe is cut when its buffered streams pass it |
//! | `BlockSizeBytes` (>= 64 MiB, default 256 MiB) | the block padding keeps stripes within (used only with `EnablePadding`, as Firehose) |
//! | `EnablePadding` (default false) | block padding on: a stripe that would cross a block boundary is moved to the next block with zeros when the zeros are within `PaddingTolerance`, else cut early to fit what is left of the block |
//! | `PaddingTolerance` (0 to 1, default 0.05) | the most padding, as a fraction of `StripeSizeBytes` (used only with `EnablePadding`, as Firehose) |
//! | `Compression` (NONE, ZLIB, SNAPPY; default SNAPPY) | the codec of every stream and of the metadata, in 256 KiB chunks |
//! | `FormatVersion` (V0_11, V0_12; default V0_12) | the PostScript's version (the encodings written are valid in both) |
//! | `RowIndexStride` | refused: the writer writes no row index (rowIndexStride 0) |
//! | `BloomFilterColumns` | refused unless empty: the writer writes no bloom filter |
//! | `BloomFilterFalsePositiveProbability` | refused: no bloom filter is written |
//! | `DictionaryKeyThreshold` (0 to 1; default 0.8, ORC's own writer's default, as Firehose documents none) | a string column is dictionary-encoded in a stripe where its distinct values are at most this fraction of its non-null values (0: never, 1: always) |

use arrow_array::ArrayRef;
use arrow_schema::SchemaRef;
use hydrant_orc::{OrcError, OrcFile as Writer, OrcOptions, Padding};

pub use hydrant_orc::{Compression as OrcCompression, FormatVersion};

/// The smallest `StripeSizeBytes` Firehose accepts (8 MiB).
pub const STRIPE_SIZE_MIN: u64 = 8 * 1024 * 1024;
/// `StripeSizeBytes` when not given (64 MiB).
pub const STRIPE_SIZE_DEFAULT: u64 = hydrant_orc::STRIPE_SIZE_DEFAULT;
/// The smallest `BlockSizeBytes` Firehose accepts (64 MiB).
pub const BLOCK_SIZE_MIN: u64 = 64 * 1024 * 1024;
/// `BlockSizeBytes` when not given (256 MiB).
pub const BLOCK_SIZE_DEFAULT: u64 = 256 * 1024 * 1024;
/// `PaddingTolerance` when not given (5 % of the stripe size).
pub const PADDING_TOLERANCE_DEFAULT: f64 = 0.05;

/// The `OrcSerDe` settings, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct OrcSettings {
    /// `StripeSizeBytes`.
    pub stripe_size_bytes: u64,
    /// `BlockSizeBytes`.
    pub block_size_bytes: u64,
    /// `EnablePadding`.
    pub enable_padding: bool,
    /// `PaddingTolerance`.
    ///
    /// # Invariant
    /// `0 <= padding_tolerance <= 1`.
    pub padding_tolerance: f64,
    /// `Compression`.
    pub compression: OrcCompression,
    /// `FormatVersion`.
    pub format_version: FormatVersion,
    /// `DictionaryKeyThreshold`.
    ///
    /// # Invariant
    /// `0 <= dictionary_key_threshold <= 1`.
    pub dictionary_key_threshold: f64,
}

impl Default for OrcSettings {
    fn default() -> Self {
        OrcSettings {
            stripe_size_bytes: STRIPE_SIZE_DEFAULT,
            block_size_bytes: BLOCK_SIZE_DEFAULT,
            enable_padding: false,
            padding_tolerance: PADDING_TOLERANCE_DEFAULT,
            compression: OrcCompression::Snappy,
            format_version: FormatVersion::V0_12,
            dictionary_key_threshold: hydrant_orc::DICTIONARY_KEY_THRESHOLD_DEFAULT,
        }
    }
}

impl OrcSettings {
    /// The writer's options.
    pub fn options(&self) -> OrcOptions {
        debug_assert!((0.0..=1.0).contains(&self.padding_tolerance));
        OrcOptions {
            compression: self.compression,
            compression_block_size: hydrant_orc::BLOCK_SIZE,
            stripe_size_bytes: self.stripe_size_bytes,
            padding: self.enable_padding.then_some(Padding {
                block_size_bytes: self.block_size_bytes,
                tolerance: self.padding_tolerance,
            }),
            format_version: self.format_version,
            dictionary_key_threshold: self.dictionary_key_threshold,
        }
    }
}

/// An ORC file being written into memory, one set of column arrays at a time.
#[derive(Debug)]
pub struct OrcFile {
    writer: Writer,
}

impl OrcFile {
    /// A file of `schema` with `settings`.
    ///
    /// # Errors
    /// The writer's error (a type it does not write).
    pub fn new(schema: SchemaRef, settings: &OrcSettings) -> Result<OrcFile, OrcError> {
        Ok(OrcFile {
            writer: Writer::new(schema, &settings.options())?,
        })
    }

    /// Appends rows: one array per column, in the schema's order.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), OrcError> {
        self.writer.write(columns)
    }

    /// The finished file's bytes.
    ///
    /// # Errors
    /// The writer's error.
    pub fn finish(self) -> Result<Vec<u8>, OrcError> {
        self.writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_writer_options() {
        let s = OrcSettings {
            stripe_size_bytes: STRIPE_SIZE_MIN,
            block_size_bytes: BLOCK_SIZE_MIN,
            enable_padding: true,
            padding_tolerance: 0.5,
            compression: OrcCompression::Zlib,
            format_version: FormatVersion::V0_11,
            dictionary_key_threshold: 0.25,
        };
        let o = s.options();
        assert_eq!(o.dictionary_key_threshold, 0.25);
        assert_eq!(o.stripe_size_bytes, STRIPE_SIZE_MIN);
        assert_eq!(
            o.padding,
            Some(Padding {
                block_size_bytes: BLOCK_SIZE_MIN,
                tolerance: 0.5
            })
        );
        assert_eq!(o.compression, OrcCompression::Zlib);
        assert_eq!(o.format_version, FormatVersion::V0_11);
        let off = OrcSettings::default().options();
        assert_eq!(off.padding, None);
        assert_eq!(off.compression, OrcCompression::Snappy);
        assert_eq!(off.dictionary_key_threshold, 0.8);
    }
}
