//! An Apache ORC writer for Arrow arrays, written from the ORC v1 specification
//! (<https://orc.apache.org/specification/ORCv1/>) for hydrant's `OrcSerDe` output.
//!
//! No maintained Rust crate writes ORC with nested types, decimals, dates and timestamps, so
//! this crate does, with the smallest set of encodings every ORC reader takes: every column
//! DIRECT with run-length encoding version 1, STRING columns DICTIONARY instead in a stripe
//! where their distinct values are few enough (valid in file versions 0.11 and 0.12).
//!
//! ```text
//! "ORC"                                   3-byte header
//! stripe 0: streams (PRESENT, DATA, LENGTH, SECONDARY per column, compressed one by one)
//!           StripeFooter (streams, column encodings, writer time zone "UTC")
//! [zero padding to the next block, when EnablePadding says so]
//! stripe 1 ...
//! Metadata (per stripe, per column: number of values, has null)
//! Footer   (stripes, type tree, rows, file statistics, rowIndexStride 0: no row index)
//! PostScript (never compressed: footer and metadata lengths, codec, block size, version,
//!             "ORC")
//! 1 byte: the PostScript's length
//! ```
//!
//! Stripes are cut when the buffered streams of the rows written so far pass
//! [`OrcOptions::stripe_size_bytes`] (checked after each [`OrcFile::write`]). With
//! [`OrcOptions::padding`], a stripe that would cross a block boundary is moved to the next
//! block with zeros when they are within the tolerance, and otherwise cut early, at what is left
//! of the block, so that it fits (Firehose's `EnablePadding`; the cut is checked after each
//! write, so a stripe may still pass the boundary by up to one write's bytes). Not written: row
//! indexes, bloom filters, min/max statistics.
//!
//! - [`rle`]: byte, boolean and integer (version 1) run-length encodings, varints.
//! - [`column`]: one column's streams, by type; the type tree.
//! - [`dictionary`]: STRING columns' dictionary encoding, chosen per stripe.
//! - [`compress`]: NONE, ZLIB, SNAPPY with ORC's chunk headers.
//! - [`proto`]: the metadata messages (prost derive on hand-declared structs).

pub mod column;
pub mod compress;
pub mod dictionary;
pub mod proto;
pub mod rle;

use arrow_array::ArrayRef;
use arrow_schema::{DataType, SchemaRef};
use prost::Message;

use self::column::{ColumnWriter, Counts, StreamBytes};
pub use self::compress::{Compression, BLOCK_SIZE};

/// The file's first bytes, and the PostScript's `magic`.
pub const MAGIC: &[u8; 3] = b"ORC";

/// The dictionary threshold when not given: ORC's own writer's default
/// (`orc.dictionary.key.threshold`, 0.8).
pub const DICTIONARY_KEY_THRESHOLD_DEFAULT: f64 = 0.8;

/// `StripeSizeBytes` when not given (64 MiB, Firehose's default).
pub const STRIPE_SIZE_DEFAULT: u64 = 64 * 1024 * 1024;

/// The PostScript's `writerVersion`: ORC-135 (timestamp statistics in UTC), the newest fix
/// this writer's output is consistent with.
const WRITER_VERSION: u32 = 6;

/// An error of the writer.
#[derive(Debug, thiserror::Error)]
pub enum OrcError {
    /// A column's Arrow type has no ORC type in this writer.
    #[error("column {column}: the Arrow type {data_type} is not written as ORC")]
    UnsupportedType {
        /// The column (or field) name.
        column: String,
        /// Its type.
        data_type: DataType,
    },
    /// An array is not of its column's type.
    #[error("column {column}: an array of {given} where the schema says {expected}")]
    TypeMismatch {
        /// The column (or field) name.
        column: String,
        /// The schema's type.
        expected: DataType,
        /// The array's.
        given: DataType,
    },
    /// Not one array per column, or arrays of different lengths.
    #[error("the arrays do not fit the schema: {0}")]
    Shape(String),
    /// ZLIB failed.
    #[error("ZLIB compression: {0}")]
    Zlib(std::io::Error),
    /// SNAPPY failed.
    #[error("SNAPPY compression: {0}")]
    Snappy(snap::Error),
    /// An option out of its range.
    #[error("compression block size {0}: must be 1 to 8388607 bytes")]
    BlockSize(usize),
    /// The PostScript came out longer than its one length byte can say.
    #[error("the PostScript is {0} bytes, more than 255")]
    PostScriptTooLong(usize),
}

/// `OrcSerDe.FormatVersion`: the version the PostScript states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatVersion {
    /// `V0_11` (Hive 0.11).
    V0_11,
    /// `V0_12` (Hive 0.12; Firehose's default).
    V0_12,
}

impl FormatVersion {
    fn numbers(self) -> Vec<u32> {
        match self {
            FormatVersion::V0_11 => vec![0, 11],
            FormatVersion::V0_12 => vec![0, 12],
        }
    }
}

/// Block padding (`EnablePadding` with `BlockSizeBytes` and `PaddingTolerance`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Padding {
    /// The file system block size the stripes are kept within (`BlockSizeBytes`).
    pub block_size_bytes: u64,
    /// The most zero bytes written to move a stripe to the next block, as a fraction of the
    /// stripe size (`PaddingTolerance`, Firehose's definition).
    pub tolerance: f64,
}

/// The writer's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct OrcOptions {
    /// The codec.
    pub compression: Compression,
    /// Input bytes per compression chunk (ORC's compression block size).
    pub compression_block_size: usize,
    /// A stripe is cut when its buffered streams pass this many bytes (`StripeSizeBytes`).
    pub stripe_size_bytes: u64,
    /// Block padding, when on.
    pub padding: Option<Padding>,
    /// The PostScript's version.
    pub format_version: FormatVersion,
    /// STRING columns are dictionary-encoded in a stripe where their distinct values are at
    /// most this fraction of their non-null values (`DictionaryKeyThreshold`; 0: never, 1:
    /// always).
    pub dictionary_key_threshold: f64,
}

impl Default for OrcOptions {
    fn default() -> Self {
        OrcOptions {
            compression: Compression::Snappy,
            compression_block_size: BLOCK_SIZE,
            stripe_size_bytes: STRIPE_SIZE_DEFAULT,
            padding: None,
            format_version: FormatVersion::V0_12,
            dictionary_key_threshold: DICTIONARY_KEY_THRESHOLD_DEFAULT,
        }
    }
}

/// An ORC file being written into memory, one set of column arrays at a time.
#[derive(Debug)]
pub struct OrcFile {
    options: OrcOptions,
    columns: Vec<ColumnWriter>,
    types: Vec<proto::Type>,
    /// The file so far: the header and the finished stripes.
    out: Vec<u8>,
    stripes: Vec<proto::StripeInformation>,
    stripe_stats: Vec<proto::StripeStatistics>,
    /// Rows in the current stripe, and in the file before it.
    stripe_rows: u64,
    rows: u64,
}

impl OrcFile {
    /// A file of `schema`'s columns (the root struct's fields) with `options`.
    ///
    /// # Errors
    /// [`OrcError::UnsupportedType`], [`OrcError::BlockSize`].
    pub fn new(schema: SchemaRef, options: &OrcOptions) -> Result<OrcFile, OrcError> {
        let block = options.compression_block_size;
        if block == 0 || block > compress::MAX_CHUNK {
            return Err(OrcError::BlockSize(block));
        }
        let mut types = vec![proto::Type {
            kind: Some(proto::kind::STRUCT),
            field_names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            ..Default::default()
        }];
        let mut next_id = 1;
        let mut columns = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let c = ColumnWriter::new(
                f.name(),
                f.data_type(),
                &mut next_id,
                &mut types,
                options.dictionary_key_threshold.clamp(0.0, 1.0),
            )?;
            types[0].subtypes.push(c.id());
            columns.push(c);
        }
        debug_assert_eq!(types.len(), next_id as usize, "one Type per column id");
        Ok(OrcFile {
            options: options.clone(),
            columns,
            types,
            out: MAGIC.to_vec(),
            stripes: Vec::new(),
            stripe_stats: Vec::new(),
            stripe_rows: 0,
            rows: 0,
        })
    }

    /// Appends rows: one array per column, in the schema's order, all of one length.
    ///
    /// # Errors
    /// [`OrcError::Shape`], [`OrcError::TypeMismatch`], or a codec's error (when a stripe is
    /// cut).
    pub fn write(&mut self, arrays: Vec<ArrayRef>) -> Result<(), OrcError> {
        if arrays.len() != self.columns.len() {
            return Err(OrcError::Shape(format!(
                "{} arrays for {} columns",
                arrays.len(),
                self.columns.len()
            )));
        }
        let Some(rows) = arrays.first().map(|a| a.len()) else {
            return Ok(());
        };
        if let Some(a) = arrays.iter().find(|a| a.len() != rows) {
            return Err(OrcError::Shape(format!(
                "arrays of {rows} and {} rows",
                a.len()
            )));
        }
        for (column, array) in self.columns.iter_mut().zip(&arrays) {
            column.write(array.as_ref(), &[(0, rows)])?;
        }
        self.stripe_rows += rows as u64;
        let buffered: usize = self.columns.iter().map(ColumnWriter::buffered).sum();
        if buffered as u64 >= self.stripe_limit() {
            self.finish_stripe()?;
        }
        Ok(())
    }

    /// Writes the current stripe, when it has rows.
    fn finish_stripe(&mut self) -> Result<(), OrcError> {
        if self.stripe_rows == 0 {
            return Ok(());
        }
        let mut streams: Vec<StreamBytes> = Vec::new();
        let mut counts = vec![Counts {
            values: self.stripe_rows,
            has_null: false,
        }];
        let mut encodings = vec![proto::ColumnEncoding {
            kind: Some(proto::ENCODING_DIRECT),
            dictionary_size: None,
        }];
        for c in &mut self.columns {
            c.finish_stripe(&mut streams, &mut counts, &mut encodings);
        }
        debug_assert_eq!(encodings.len(), self.types.len(), "an encoding per column");
        debug_assert_eq!(counts.len(), self.types.len(), "counts of every column");
        let (codec, block) = (
            self.options.compression,
            self.options.compression_block_size,
        );
        let mut stripe = Vec::new();
        let mut footer = proto::StripeFooter {
            writer_timezone: Some("UTC".into()),
            ..Default::default()
        };
        for s in &streams {
            let length = compress::compress_into(&mut stripe, codec, block, &s.bytes)?;
            footer.streams.push(proto::Stream {
                kind: Some(s.kind),
                column: Some(s.column),
                length: Some(length),
            });
        }
        drop(streams);
        let data_length = stripe.len() as u64;
        footer.columns = encodings;
        let footer_length =
            compress::compress_into(&mut stripe, codec, block, &footer.encode_to_vec())?;
        self.pad_for(stripe.len() as u64);
        self.stripes.push(proto::StripeInformation {
            offset: Some(self.out.len() as u64),
            index_length: Some(0),
            data_length: Some(data_length),
            footer_length: Some(footer_length),
            number_of_rows: Some(self.stripe_rows),
        });
        self.out.extend_from_slice(&stripe);
        self.stripe_stats.push(proto::StripeStatistics {
            col_stats: counts.into_iter().map(Counts::statistics).collect(),
        });
        self.rows += self.stripe_rows;
        self.stripe_rows = 0;
        Ok(())
    }

    /// The buffered bytes at which the current stripe is cut: the stripe size, or with padding
    /// on, what is left of the block when that is more than the padding allowed (a smaller
    /// stripe fills the block instead of zeros).
    fn stripe_limit(&self) -> u64 {
        let size = self.options.stripe_size_bytes;
        match self.options.padding {
            Some(p) if p.block_size_bytes > 0 => {
                let left = p.block_size_bytes - self.out.len() as u64 % p.block_size_bytes;
                if left > self.padding_allowed(p) {
                    size.min(left)
                } else {
                    size
                }
            }
            _ => size,
        }
    }

    /// The most zero bytes padding may write.
    fn padding_allowed(&self, p: Padding) -> u64 {
        (p.tolerance * self.options.stripe_size_bytes as f64) as u64
    }

    /// Block padding: zeros up to the next block when a stripe of `size` bytes would cross
    /// into it and the zeros are within the tolerance.
    fn pad_for(&mut self, size: u64) {
        let Some(p) = self.options.padding else {
            return;
        };
        if p.block_size_bytes == 0 {
            return;
        }
        let at = self.out.len() as u64;
        let left = p.block_size_bytes - at % p.block_size_bytes;
        let allowed = self.padding_allowed(p);
        if size > left && left < p.block_size_bytes && left <= allowed {
            self.out.resize(self.out.len() + left as usize, 0);
            debug_assert_eq!(self.out.len() as u64 % p.block_size_bytes, 0);
        }
    }

    /// The finished file's bytes.
    ///
    /// # Errors
    /// A codec's error, or [`OrcError::PostScriptTooLong`].
    pub fn finish(mut self) -> Result<Vec<u8>, OrcError> {
        self.finish_stripe()?;
        let (codec, block) = (
            self.options.compression,
            self.options.compression_block_size,
        );
        let content_length = self.out.len() as u64;
        let metadata = proto::Metadata {
            stripe_stats: std::mem::take(&mut self.stripe_stats),
        };
        let metadata_length =
            compress::compress_into(&mut self.out, codec, block, &metadata.encode_to_vec())?;
        let mut file_counts = vec![Counts {
            values: self.rows,
            has_null: false,
        }];
        for c in &self.columns {
            c.file_counts(&mut file_counts);
        }
        let footer = proto::Footer {
            header_length: Some(MAGIC.len() as u64),
            content_length: Some(content_length),
            stripes: std::mem::take(&mut self.stripes),
            types: std::mem::take(&mut self.types),
            number_of_rows: Some(self.rows),
            statistics: file_counts.into_iter().map(Counts::statistics).collect(),
            row_index_stride: Some(0),
            software_version: Some(format!("hydrant {}", env!("CARGO_PKG_VERSION"))),
        };
        let footer_length =
            compress::compress_into(&mut self.out, codec, block, &footer.encode_to_vec())?;
        let postscript = proto::PostScript {
            footer_length: Some(footer_length),
            compression: Some(codec.kind()),
            compression_block_size: Some(block as u64),
            version: self.options.format_version.numbers(),
            metadata_length: Some(metadata_length),
            writer_version: Some(WRITER_VERSION),
            magic: Some("ORC".into()),
        }
        .encode_to_vec();
        let length = u8::try_from(postscript.len())
            .map_err(|_| OrcError::PostScriptTooLong(postscript.len()))?;
        self.out.extend_from_slice(&postscript);
        self.out.push(length);
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{Field, Schema};

    use super::*;

    /// The stripes (start, end) of 240 writes of 50 random longs (about 350 bytes each).
    fn stripes(options: &OrcOptions) -> Vec<(u64, u64)> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let mut file = OrcFile::new(schema, options).unwrap_or_else(|e| panic!("{e}"));
        let mut x = 1u64;
        for _ in 0..240 {
            let values: Vec<i64> = (0..50)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 20) as i64
                })
                .collect();
            file.write(vec![Arc::new(Int64Array::from(values))])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        file.finish_stripe().unwrap_or_else(|e| panic!("{e}"));
        file.stripes
            .iter()
            .map(|s| {
                let start = s.offset.unwrap_or(0);
                let length = s.index_length.unwrap_or(0)
                    + s.data_length.unwrap_or(0)
                    + s.footer_length.unwrap_or(0);
                (start, start + length)
            })
            .collect()
    }

    /// With padding on, a stripe that would cross a block boundary is moved to the next block
    /// (zeros within the tolerance: 10 KiB blocks hold three 3 KiB stripes and 0.9 KiB is
    /// left) or cut early to fit (11 KiB blocks: 1.9 KiB left, more than the tolerance); without
    /// padding, stripes cross.
    #[test]
    fn padding_keeps_stripes_within_blocks() {
        let allowed = 1500;
        for (block, want_padded, want_cut) in [(10 * 1024, true, false), (11 * 1024, false, true)] {
            let mut options = OrcOptions {
                compression: Compression::None,
                stripe_size_bytes: 3000,
                padding: Some(Padding {
                    block_size_bytes: block,
                    tolerance: 0.5,
                }),
                ..OrcOptions::default()
            };
            let padded_file = stripes(&options);
            assert!(padded_file.len() >= 10, "{} stripes", padded_file.len());
            let (mut padded, mut cut_early) = (0, 0);
            let mut previous_end = MAGIC.len() as u64;
            for &(start, end) in &padded_file {
                if start != previous_end {
                    padded += 1;
                    assert_eq!(start % block, 0, "padding ends at a block");
                    assert!(start - previous_end <= allowed, "{previous_end}..{start}");
                }
                let boundary = (start / block + 1) * block;
                if end > boundary {
                    // Cut at the block's end, passed by at most one write (and the footer).
                    assert!(end - boundary < 600, "stripe {start}..{end} crosses");
                    assert!(end - start < 3000, "a stripe cut early");
                    cut_early += 1;
                }
                previous_end = end;
            }
            assert_eq!(padded > 0, want_padded, "{block}: {padded} padded");
            assert_eq!(cut_early > 0, want_cut, "{block}: {cut_early} cut early");
            options.padding = None;
            let crossing = stripes(&options)
                .iter()
                .filter(|(start, end)| start / block != (end - 1) / block)
                .count();
            assert!(crossing >= 3, "without padding {crossing} stripes cross");
        }
    }

    /// The stripe footers of a file written without compression, read back from its tail.
    fn stripe_footers(file: &[u8]) -> Vec<proto::StripeFooter> {
        let ps_len = usize::from(file[file.len() - 1]);
        let ps_at = file.len() - 1 - ps_len;
        let ps = proto::PostScript::decode(&file[ps_at..file.len() - 1])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ps.magic.as_deref(), Some("ORC"));
        let footer_len = ps.footer_length.unwrap_or(0) as usize;
        let footer = proto::Footer::decode(&file[ps_at - footer_len..ps_at])
            .unwrap_or_else(|e| panic!("{e}"));
        footer
            .stripes
            .iter()
            .map(|s| {
                let at = (s.offset.unwrap_or(0)
                    + s.index_length.unwrap_or(0)
                    + s.data_length.unwrap_or(0)) as usize;
                let end = at + s.footer_length.unwrap_or(0) as usize;
                proto::StripeFooter::decode(&file[at..end]).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    /// Per stripe, a STRING column of few distinct values is DICTIONARY and one of distinct
    /// values DIRECT, by the threshold.
    #[test]
    fn dictionary_encoding_is_chosen_per_column_by_the_threshold() {
        use arrow_array::StringArray;
        let schema = Arc::new(Schema::new(vec![
            Field::new("distinct", DataType::Utf8, true),
            Field::new("few", DataType::Utf8, true),
        ]));
        let write = |threshold: f64| {
            let options = OrcOptions {
                compression: Compression::None,
                dictionary_key_threshold: threshold,
                ..OrcOptions::default()
            };
            let mut file = OrcFile::new(schema.clone(), &options).unwrap_or_else(|e| panic!("{e}"));
            let distinct: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
            let few: Vec<&str> = (0..1000).map(|i| ["a", "b", "c"][i % 3]).collect();
            file.write(vec![
                Arc::new(StringArray::from(distinct)),
                Arc::new(StringArray::from(few)),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
            let bytes = file.finish().unwrap_or_else(|e| panic!("{e}"));
            let footers = stripe_footers(&bytes);
            assert_eq!(footers.len(), 1);
            footers[0]
                .columns
                .iter()
                .map(|c| (c.kind.unwrap_or(-1), c.dictionary_size))
                .collect::<Vec<_>>()
        };
        let (direct, dictionary) = (proto::ENCODING_DIRECT, proto::ENCODING_DICTIONARY);
        assert_eq!(
            write(0.8),
            [(direct, None), (direct, None), (dictionary, Some(3))]
        );
        assert_eq!(write(0.0), [(direct, None), (direct, None), (direct, None)]);
        assert_eq!(
            write(1.0),
            [
                (direct, None),
                (dictionary, Some(1000)),
                (dictionary, Some(3))
            ]
        );
    }

    /// Arrays that do not fit the schema, and options out of range, are typed errors.
    #[test]
    fn misfits_are_errors() {
        use arrow_array::Int32Array;
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let bad_block = OrcOptions {
            compression_block_size: 0,
            ..OrcOptions::default()
        };
        assert!(matches!(
            OrcFile::new(schema.clone(), &bad_block),
            Err(OrcError::BlockSize(0))
        ));
        let mut file =
            OrcFile::new(schema, &OrcOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let wrong = file.write(vec![Arc::new(Int32Array::from(vec![1]))]);
        assert!(
            matches!(wrong, Err(OrcError::TypeMismatch { .. })),
            "{wrong:?}"
        );
        let two = file.write(vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(Int64Array::from(vec![1])),
        ]);
        assert!(matches!(two, Err(OrcError::Shape(_))), "{two:?}");
        let unsupported = Arc::new(Schema::new(vec![Field::new(
            "u",
            DataType::LargeUtf8,
            true,
        )]));
        assert!(matches!(
            OrcFile::new(unsupported, &OrcOptions::default()),
            Err(OrcError::UnsupportedType { .. })
        ));
    }
}
