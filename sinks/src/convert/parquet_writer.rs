//! `ParquetSerDe`: Arrow record batches written as one Parquet file, by the `parquet` crate.
//!
//! | ParquetSerDe member | applied as |
//! |---|---|
//! | `BlockSizeBytes` (>= 64 MiB, default 256 MiB) | the row group's size: a row group is cut when its encoded size passes it (and only then: no row count limit) |
//! | `PageSizeBytes` (>= 64 KiB, default 1 MiB) | the data page size limit |
//! | `Compression` (UNCOMPRESSED, GZIP, SNAPPY; default SNAPPY) | the column chunks' codec |
//! | `EnableDictionaryCompression` (default true, Parquet's own default) | dictionary encoding on or off; when on, a column whose first chunk shows that a dictionary does not pay is written plain, as parquet-mr falls back ([`super::dictionary`]) |
//! | `WriterVersion` (V1, V2; default V1) | the data page version and encodings |
//! | `MaxPaddingBytes` | only 0: the writer does not pad row groups to HDFS blocks |

use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use super::dictionary::dictionary_pays;
use super::shared_work;

use super::hive::HiveType;

/// The smallest `BlockSizeBytes` Firehose accepts (64 MiB).
pub const BLOCK_SIZE_MIN: u64 = 64 * 1024 * 1024;
/// `BlockSizeBytes` when not given (256 MiB).
pub const BLOCK_SIZE_DEFAULT: u64 = 256 * 1024 * 1024;
/// The smallest `PageSizeBytes` Firehose accepts (64 KiB).
pub const PAGE_SIZE_MIN: u64 = 64 * 1024;
/// `PageSizeBytes` when not given (1 MiB).
pub const PAGE_SIZE_DEFAULT: u64 = 1024 * 1024;

/// `ParquetSerDe.Compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParquetCompression {
    /// `UNCOMPRESSED`.
    Uncompressed,
    /// `GZIP`.
    Gzip,
    /// `SNAPPY` (the default).
    Snappy,
}

impl ParquetCompression {
    /// From Firehose's name.
    pub fn from_firehose(name: &str) -> Option<ParquetCompression> {
        match name {
            "UNCOMPRESSED" => Some(ParquetCompression::Uncompressed),
            "GZIP" => Some(ParquetCompression::Gzip),
            "SNAPPY" => Some(ParquetCompression::Snappy),
            _ => None,
        }
    }
}

/// The `ParquetSerDe` settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Row group size in bytes (`BlockSizeBytes`).
    pub block_size_bytes: u64,
    /// Data page size in bytes (`PageSizeBytes`).
    pub page_size_bytes: u64,
    /// The codec.
    pub compression: ParquetCompression,
    /// Dictionary encoding.
    pub dictionary: bool,
    /// `WriterVersion` V2.
    pub writer_v2: bool,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            block_size_bytes: BLOCK_SIZE_DEFAULT,
            page_size_bytes: PAGE_SIZE_DEFAULT,
            compression: ParquetCompression::Snappy,
            dictionary: true,
            writer_v2: false,
        }
    }
}

impl ParquetOptions {
    /// The writer's properties, with dictionary encoding off for the columns of `plain`.
    fn properties_with_plain(&self, plain: &[&str]) -> WriterProperties {
        let mut builder = self.properties().into_builder();
        for name in plain {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*name), false);
        }
        builder.build()
    }

    fn properties(&self) -> WriterProperties {
        let compression = match self.compression {
            ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
            ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
        };
        WriterProperties::builder()
            .set_compression(compression)
            .set_dictionary_enabled(self.dictionary)
            .set_data_page_size_limit(usize::try_from(self.page_size_bytes).unwrap_or(usize::MAX))
            // The crate's own ArrowWriter cuts row groups by these two; ParquetFile drives the
            // column writers itself and cuts by `block_size_bytes` the same way.
            .set_max_row_group_bytes(Some(
                usize::try_from(self.block_size_bytes.max(1)).unwrap_or(usize::MAX),
            ))
            // BlockSizeBytes alone cuts row groups (not also the crate's default of 1 Mi rows).
            .set_max_row_group_row_count(None)
            .set_writer_version(if self.writer_v2 {
                WriterVersion::PARQUET_2_0
            } else {
                WriterVersion::PARQUET_1_0
            })
            .set_created_by("hydrant (Firehose record format conversion)".into())
            .build()
    }
}

/// The Arrow schema of a table's columns (all nullable: a missing key is a null).
pub fn arrow_schema(columns: &[(String, HiveType)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, t)| Field::new(name, t.arrow_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// A Parquet file being written into memory, one chunk of rows at a time.
///
/// The columns of a chunk are encoded (dictionary, pages, compression) on this thread and
/// [`shared_work::helpers`] more, one column per thread at a time ([`shared_work::run`]), and
/// a row group's columns are closed the same way; the file's bytes are then appended in
/// column order, as one thread would write them.
#[derive(Debug)]
pub struct ParquetFile {
    schema: SchemaRef,
    options: ParquetOptions,
    /// `None` until the first chunk, which decides the columns written without a dictionary.
    file: Option<Writers>,
    helpers: usize,
}

/// The file's writer, and the row group being encoded.
struct Writers {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// The row group being encoded: one writer per leaf column, in the schema's order.
    row_group: Option<RowGroup>,
}

/// A row group being encoded.
///
/// # Invariant
/// Every column writer holds `rows` rows.
struct RowGroup {
    columns: Vec<ArrowColumnWriter>,
    rows: usize,
}

impl RowGroup {
    /// Encoded bytes so far (what the row group is cut by).
    fn bytes(&self) -> usize {
        self.columns
            .iter()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum()
    }
}

impl fmt::Debug for Writers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writers")
            .field("row_groups", &self.file.flushed_row_groups().len())
            .field("rows_in_progress", &self.row_group.as_ref().map(|g| g.rows))
            .finish_non_exhaustive()
    }
}

impl ParquetFile {
    /// A file of `schema` with `options`.
    ///
    /// # Errors
    /// The writer's error (a schema Parquet cannot hold).
    pub fn new(
        schema: SchemaRef,
        options: &ParquetOptions,
    ) -> Result<ParquetFile, parquet::errors::ParquetError> {
        // Checked now, so that a schema Parquet cannot hold fails here rather than at the
        // first chunk.
        Writers::new(&schema, options.properties())?;
        Ok(ParquetFile {
            schema,
            options: options.clone(),
            file: None,
            helpers: shared_work::helpers(),
        })
    }

    /// Appends rows: one array per column, in the schema's order.
    ///
    /// # Errors
    /// Arrow's or the writer's error.
    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), parquet::errors::ParquetError> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let writers = match &mut self.file {
            Some(w) => w,
            None => {
                let properties = if self.options.dictionary {
                    // The first chunk decides which columns keep their dictionary.
                    let plain: Vec<&str> = self
                        .schema
                        .fields()
                        .iter()
                        .zip(batch.columns())
                        .filter(|(_, array)| !dictionary_pays(array.as_ref()))
                        .map(|(field, _)| field.name().as_str())
                        .collect();
                    self.options.properties_with_plain(&plain)
                } else {
                    self.options.properties()
                };
                self.file.insert(Writers::new(&self.schema, properties)?)
            }
        };
        let limit = usize::try_from(self.options.block_size_bytes.max(1)).unwrap_or(usize::MAX);
        writers.write(&self.schema, batch, limit, self.helpers)
    }

    /// The finished file's bytes.
    ///
    /// # Errors
    /// The writer's error.
    pub fn finish(self) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let mut writers = match self.file {
            Some(w) => w,
            None => Writers::new(&self.schema, self.options.properties())?,
        };
        writers.flush(self.helpers)?;
        writers.file.into_inner()
    }
}

impl Writers {
    fn new(
        schema: &SchemaRef,
        properties: WriterProperties,
    ) -> Result<Writers, parquet::errors::ParquetError> {
        let (file, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))?
            .into_serialized_writer()?;
        Ok(Writers {
            file,
            factory,
            row_group: None,
        })
    }

    /// Encodes `batch` into row groups of about `limit` encoded bytes, as the parquet crate's
    /// own writer cuts them: a row group is closed once it holds `limit` bytes, and a batch
    /// that would take it past `limit` (at the rows' average size so far) is split there.
    fn write(
        &mut self,
        schema: &SchemaRef,
        mut rest: RecordBatch,
        limit: usize,
        helpers: usize,
    ) -> Result<(), parquet::errors::ParquetError> {
        while rest.num_rows() > 0 {
            let group = match &mut self.row_group {
                Some(g) => g,
                None => self.row_group.insert(RowGroup {
                    columns: self
                        .factory
                        .create_column_writers(self.file.flushed_row_groups().len())?,
                    rows: 0,
                }),
            };
            let mut take = rest.num_rows();
            let bytes = group.bytes();
            if let Some(row_bytes) = bytes.checked_div(group.rows) {
                // Rows that still fit, at the average size of those encoded so far.
                let fit = limit.saturating_sub(bytes) / row_bytes.max(1);
                if fit == 0 {
                    self.flush(helpers)?;
                    continue;
                }
                take = take.min(fit);
            }
            let now = rest.slice(0, take);
            rest = rest.slice(take, rest.num_rows() - take);
            let mut leaves = Vec::with_capacity(group.columns.len());
            for (field, column) in schema.fields().iter().zip(now.columns()) {
                leaves.extend(compute_leaves(field.as_ref(), column)?);
            }
            debug_assert_eq!(leaves.len(), group.columns.len(), "one writer per leaf");
            let work: Vec<_> = group.columns.iter_mut().zip(&leaves).collect();
            shared_work::run(work, helpers, |(writer, leaf)| writer.write(leaf))?;
            group.rows += take;
            if group.bytes() >= limit {
                self.flush(helpers)?;
            }
        }
        Ok(())
    }

    /// Closes the row group being encoded (its columns on several threads) and appends it to
    /// the file.
    fn flush(&mut self, helpers: usize) -> Result<(), parquet::errors::ParquetError> {
        let Some(group) = self.row_group.take() else {
            return Ok(());
        };
        let chunks = shared_work::run(group.columns, helpers, ArrowColumnWriter::close)?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BlockSizeBytes' smallest value is 64 MiB, more than a test writes: the row group limit
    /// is checked on the writer's properties (the Parquet crate cuts row groups by it).
    #[test]
    fn options_become_writer_properties() {
        let options = ParquetOptions {
            block_size_bytes: BLOCK_SIZE_MIN,
            page_size_bytes: PAGE_SIZE_MIN,
            compression: ParquetCompression::Gzip,
            dictionary: false,
            writer_v2: true,
        };
        let p = options.properties();
        assert_eq!(
            p.max_row_group_bytes(),
            Some(usize::try_from(BLOCK_SIZE_MIN).unwrap_or(usize::MAX))
        );
        assert_eq!(p.max_row_group_row_count(), None);
        assert_eq!(p.data_page_size_limit(), 65536);
        assert_eq!(p.writer_version(), WriterVersion::PARQUET_2_0);
        let column = ColumnPath::from("c");
        assert!(!p.dictionary_enabled(&column));
        assert!(matches!(p.compression(&column), Compression::GZIP(_)));
    }
}
