//! Record format conversion: JSON records into one Parquet or ORC file per object, with the table's
//! schema from a catalog (Firehose's `DataFormatConversionConfiguration`).
//!
//! ```text
//!  records of one object ─► direct::append_record     (fast path: a one-object record read
//!     (a batch, or one        │                         in one pass, each member typed as
//!      partition of it)       │                         parsed, straight into the builders)
//!                             │  declined ─► deserializer::rows + cell::cell (the row path:
//!                             │              concatenated objects; decides every failure)
//!                             │  a record that fails ─► FailedRecord (format-conversion-failed)
//!                             ▼
//!                         columns::Columns            (one builder per column; chunks of
//!                             │                         ROWS_PER_CHUNK rows or BYTES_PER_CHUNK)
//!                             │  more than one range of records: ranges typed on one thread
//!                             ▼  per CPU, chunks written in record order by the calling thread
//!                         columnar::ColumnarFile      (parquet_writer: row groups of
//!                             │                         BlockSizeBytes; orc_writer: stripes
//!                             ▼                         of StripeSizeBytes)
//!                         the object's body (key as without conversion, extension .parquet
//!                                            or .orc)
//! ```
//!
//! - [`settings`]: the API's structure, checked (one set of rules for create and delivery).
//! - [`hive`]: Hive type strings; [`catalog`]: the local catalog of table schemas.
//! - [`direct`] (fast path), [`deserializer`], [`timestamp`], [`cell`]: JSON to typed values.
//! - [`columns`], [`arrays`], [`columnar`] ([`parquet_writer`] with [`dictionary`],
//!   [`orc_writer`]): typed values to the file.
//!
//! Exactly-once: the converter is a pure function of the records and the schema, so a batch
//! resent after a crash writes the same rows under the same key (the bytes may differ only by
//! a schema changed in between). Memory: the column builders of one chunk, the Arrow arrays of that
//! chunk and of the chunks waiting for the writer ([`CHUNKS_IN_FLIGHT`] per reading thread at most), and the
//! encoded row group, which the writer holds until the file is finished.

pub mod arrays;
pub mod catalog;
pub mod cell;
pub mod columnar;
pub mod columns;
pub mod deserializer;
pub mod dictionary;
pub mod direct;
pub mod failure;
pub mod glue;
pub mod hive;
pub mod orc_writer;
pub mod parquet_writer;
pub mod settings;
pub mod shared_work;
pub mod timestamp;

use std::fmt;

use arrow_array::ArrayRef;
use std::sync::Arc;

use crate::failed::{FailedRecord, FailureDetail};
use crate::{Record, SinkError};

use self::catalog::LocalCatalog;
use self::cell::Cell;
use self::columnar::{ColumnarFile, WriterError};
use self::columns::Columns;
use self::deserializer::KeyMemo;
pub use self::failure::ConversionFailure;
use self::hive::HiveType;
use self::parquet_writer::arrow_schema;
pub use self::settings::Settings;

/// A column: its (lowercased) name and Hive type.
pub type Column = (String, HiveType);

/// Rows turned into Arrow arrays and handed to the writer at a time (at most).
pub const ROWS_PER_CHUNK: usize = 8192;

/// Bytes of column values held before they are handed to the writer (at most, give or take
/// one record): bounds a chunk of large records, and keeps a string chunk's offsets in `i32`.
pub const BYTES_PER_CHUNK: usize = 64 << 20;

/// Records a reading thread takes at a time (see [`Converter::convert_parallel`]).
pub const RECORDS_PER_RANGE: usize = ROWS_PER_CHUNK;

/// Chunks (and range ends) a reading thread has handed over and the writer not yet taken, at
/// most: with one, a thread that finished its range waited for the writer to reach it, and the
/// two CPUs were busy 70 % of the time (3 measured 0.27x to 0.35x the JSON path, 1 0.22x).
pub const CHUNKS_IN_FLIGHT: usize = 3;

/// The most threads that read one object's records.
const READING_THREADS_MAX: usize = 4;

/// What a reading thread hands the writer.
enum Piece {
    /// A chunk's arrays.
    Chunk(Vec<ArrayRef>),
    /// The end of the thread's current range: the writer goes on with the next range.
    RangeEnd,
}

/// Threads that read one object's records: one per CPU, at least one, at most
/// [`READING_THREADS_MAX`].
fn reading_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, READING_THREADS_MAX)
}

/// The error code of a record that does not convert.
pub const MALFORMED: &str = "DataFormatConversion.MalformedData";

/// The table a conversion reads its schema from, as the failure JSON's `dataCatalogTable`
/// names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataCatalogTable {
    /// `catalogId`: `CatalogId`, or the account id.
    pub catalog_id: String,
    /// `databaseName`.
    pub database_name: String,
    /// `tableName`.
    pub table_name: String,
    /// `region`: `Region`, or the daemon's region.
    pub region: String,
    /// `versionId`.
    pub version_id: String,
    /// `catalogArn`: `arn:aws:glue:<region>:<catalogId>:catalog`.
    pub catalog_arn: String,
}

impl DataCatalogTable {
    /// The table of `settings`, with `account` and `region` filling what they leave out.
    pub fn new(settings: &Settings, account: &str, region: &str) -> DataCatalogTable {
        let s = &settings.schema;
        let catalog_id = s.catalog_id.clone().unwrap_or_else(|| account.to_string());
        let region = s.region.clone().unwrap_or_else(|| region.to_string());
        DataCatalogTable {
            catalog_arn: format!("arn:aws:glue:{region}:{catalog_id}:catalog"),
            catalog_id,
            database_name: s.database.clone(),
            table_name: s.table.clone(),
            region,
            version_id: s.version_id.clone(),
        }
    }
}

/// Where a converter reads the table's columns (for every object: `VersionId` LATEST is
/// re-read, so a schema change applies from the next object on).
pub trait SchemaSource: Send + Sync + fmt::Debug {
    /// The table's columns.
    ///
    /// # Errors
    /// A retryable [`SinkError`] (code `DataFormatConversion.InvalidSchema`): the catalog
    /// cannot be read, the table is missing or invalid.
    fn columns(&self) -> Result<Vec<Column>, SinkError>;
}

/// A table of the local catalog.
#[derive(Clone, Debug)]
pub struct LocalTable {
    /// The catalog.
    pub catalog: LocalCatalog,
    /// The database.
    pub database: String,
    /// The table.
    pub table: String,
}

impl SchemaSource for LocalTable {
    fn columns(&self) -> Result<Vec<Column>, SinkError> {
        self.catalog
            .columns(&self.database, &self.table)
            .map_err(|e| invalid_schema(e.to_string()))
    }
}

/// The error of a schema that cannot be read (retryable: an operator can fix the catalog).
pub fn invalid_schema(message: String) -> SinkError {
    SinkError::Destination {
        failure: ConversionFailure::InvalidSchema.into(),
        message,
    }
}

/// A table as one object is converted with: its columns and the JSON key of each.
#[derive(Clone, Debug)]
pub struct Table {
    /// The columns, in the file's order.
    pub columns: Vec<Column>,
    /// Where the deserializer finds each column.
    pub keys: deserializer::KeyPlan,
}

/// What converting the records of one object gave.
#[derive(Debug, Default)]
pub struct Converted {
    /// The Parquet file; `None` when no record converted (no object is written).
    pub body: Option<Vec<u8>>,
    /// Records converted.
    pub records: u64,
    /// Their data bytes.
    pub data_bytes: u64,
    /// Rows written (a record of concatenated objects makes several).
    pub rows: u64,
    /// The records that did not convert, for the error output.
    pub failed: Vec<FailedRecord>,
}

/// A configured conversion.
#[derive(Clone, Debug)]
pub struct Converter {
    settings: Settings,
    table: Arc<DataCatalogTable>,
    schema: Arc<dyn SchemaSource>,
}

impl Converter {
    /// A converter of `settings`, reading its columns from `schema`.
    pub fn new(
        settings: Settings,
        table: DataCatalogTable,
        schema: Arc<dyn SchemaSource>,
    ) -> Converter {
        Converter {
            settings,
            table: Arc::new(table),
            schema,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The typed row(s) of one record, or why it does not convert.
    ///
    /// # Errors
    /// The reason, naming the column.
    pub fn rows(&self, table: &Table, data: &[u8]) -> Result<Vec<Vec<Cell>>, String> {
        let de = &self.settings.deserializer;
        deserializer::rows(data, de, &table.keys)?
            .into_iter()
            .map(|values| {
                debug_assert_eq!(values.len(), table.columns.len(), "one value per column");
                table
                    .columns
                    .iter()
                    .zip(values)
                    .map(|((name, ty), v)| {
                        cell::cell_owned(ty, v, de).map_err(|e| format!("column {name}: {e}"))
                    })
                    .collect()
            })
            .collect()
    }

    /// The table the next object is converted with: its columns, read now from the schema
    /// source, and where the deserializer finds each.
    ///
    /// # Errors
    /// As [`SchemaSource::columns`].
    pub fn table(&self) -> Result<Table, SinkError> {
        let columns = self.schema.columns()?;
        let keys = deserializer::KeyPlan::new(
            &self.settings.deserializer,
            columns.iter().map(|(name, _)| name.as_str()),
        );
        Ok(Table { columns, keys })
    }

    /// Converts `records` into one columnar file (blocking: call it off the async workers).
    ///
    /// Records of more than one range ([`RECORDS_PER_RANGE`]) are converted on several threads
    /// ([`Converter::convert_parallel`]); the file holds the same rows in the same order either
    /// way.
    ///
    /// # Errors
    /// [`SinkError`]: the schema cannot be read (retryable), or the writer failed.
    pub fn convert(&self, records: &[Record]) -> Result<Converted, SinkError> {
        let table = self.table()?;
        let file = ColumnarFile::new(arrow_schema(&table.columns), &self.settings.output)
            .map_err(writer_error)?;
        let ending_ms = crate::now_ms();
        let (out, file) = if records.len() <= RECORDS_PER_RANGE {
            let mut file = file;
            let mut out = Converted::default();
            self.read_chunks(&table, records, ending_ms, &mut out, |arrays| {
                file.write(arrays)
            })
            .map_err(writer_error)?;
            (out, file)
        } else {
            self.convert_parallel(&table, records, ending_ms, file)?
        };
        debug_assert_eq!(
            out.records + out.failed.len() as u64,
            records.len() as u64,
            "every record converted or failed"
        );
        let mut out = out;
        if out.records > 0 {
            out.body = Some(file.finish().map_err(writer_error)?);
        }
        Ok(out)
    }

    /// [`Converter::convert`] on several threads: the records are cut into ranges of
    /// [`RECORDS_PER_RANGE`], which [`reading_threads`] threads take in turn (thread `t` reads
    /// ranges `t`, `t + n`, ...) into chunks, while this thread writes the chunks range by
    /// range, in record order (encoding and compressing them). Each reading thread hands its
    /// chunks over a channel of [`CHUNKS_IN_FLIGHT`], so memory holds at most, per reading
    /// thread, the chunk it types and that many waiting, and the chunk being written.
    ///
    /// No deadlock: the writer waits on the lowest range not yet written, whose thread is
    /// either typing it or waiting to hand it to the writer; every thread takes its ranges in
    /// ascending order.
    fn convert_parallel(
        &self,
        table: &Table,
        records: &[Record],
        ending_ms: u64,
        mut file: ColumnarFile,
    ) -> Result<(Converted, ColumnarFile), SinkError> {
        let ranges: Vec<&[Record]> = records.chunks(RECORDS_PER_RANGE).collect();
        let threads = reading_threads().min(ranges.len());
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
            .map(|_| std::sync::mpsc::sync_channel::<Piece>(CHUNKS_IN_FLIGHT))
            .unzip();
        std::thread::scope(|scope| {
            let mut readers = Vec::with_capacity(threads);
            for (t, tx) in senders.into_iter().enumerate() {
                let ranges = &ranges;
                let reader = std::thread::Builder::new()
                    .name("hydrant-convert".into())
                    .spawn_scoped(
                        scope,
                        move || -> Result<Vec<(usize, Converted)>, WriterError> {
                            let mut outs = Vec::new();
                            for k in (t..ranges.len()).step_by(threads) {
                                let mut out = Converted::default();
                                // A send fails only once the writer has stopped, on an error of
                                // its own or of another reading thread: its result says which.
                                self.read_chunks(
                                    table,
                                    ranges[k],
                                    ending_ms,
                                    &mut out,
                                    |arrays| {
                                        tx.send(Piece::Chunk(arrays))
                                            .map_err(|_| WriterError::Stopped)
                                    },
                                )?;
                                tx.send(Piece::RangeEnd).map_err(|_| WriterError::Stopped)?;
                                outs.push((k, out));
                            }
                            Ok(outs)
                        },
                    );
                match reader {
                    Ok(reader) => readers.push(reader),
                    // The threads started so far stop at their first send (no receiver).
                    Err(e) => {
                        return Err(SinkError::Destination {
                            failure: ConversionFailure::WriterFailed.into(),
                            message: format!("start a conversion thread: {e}"),
                        })
                    }
                }
            }
            let mut written = Ok(());
            'ranges: for k in 0..ranges.len() {
                loop {
                    match receivers[k % threads].recv() {
                        Ok(Piece::Chunk(arrays)) => {
                            if let Err(e) = file.write(arrays) {
                                written = Err(e);
                                break 'ranges;
                            }
                        }
                        Ok(Piece::RangeEnd) => break,
                        // That thread stopped on an error, which its join gives.
                        Err(_) => break 'ranges,
                    }
                }
            }
            drop(receivers);
            let mut parts = Vec::with_capacity(ranges.len());
            let mut read = Ok(());
            for reader in readers {
                match reader.join() {
                    Ok(Ok(outs)) => parts.extend(outs),
                    Ok(Err(e)) if read.is_ok() && !matches!(e, WriterError::Stopped) => {
                        read = Err(e);
                    }
                    Ok(Err(_)) => {}
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            written.map_err(writer_error)?;
            read.map_err(writer_error)?;
            debug_assert_eq!(parts.len(), ranges.len(), "every range read and written");
            parts.sort_unstable_by_key(|(k, _)| *k);
            let mut out = Converted::default();
            for (_, part) in parts {
                out.records += part.records;
                out.data_bytes += part.data_bytes;
                out.rows += part.rows;
                out.failed.extend(part.failed);
            }
            Ok((out, file))
        })
    }

    /// Reads `records` into chunks of at most [`ROWS_PER_CHUNK`] rows or [`BYTES_PER_CHUNK`]
    /// bytes, handing each chunk's arrays to `write` in record order; counts into `out` and
    /// keeps each record that does not convert there.
    fn read_chunks(
        &self,
        table: &Table,
        records: &[Record],
        ending_ms: u64,
        out: &mut Converted,
        mut write: impl FnMut(Vec<ArrayRef>) -> Result<(), WriterError>,
    ) -> Result<(), WriterError> {
        let mut chunk = Columns::new(&table.columns);
        let mut memo = KeyMemo::default();
        for record in records {
            match self.append(table, &record.data, &mut memo, &mut chunk) {
                Ok(rows) => {
                    out.records += 1;
                    out.data_bytes += record.data.len() as u64;
                    out.rows += rows as u64;
                }
                Err(message) => out.failed.push(self.failure(record, message, ending_ms)),
            }
            if chunk.rows() >= ROWS_PER_CHUNK || chunk.bytes() >= BYTES_PER_CHUNK {
                write(chunk.finish()?)?;
            }
        }
        if !chunk.is_empty() {
            write(chunk.finish()?)?;
        }
        Ok(())
    }

    /// Appends the rows of one record to `chunk`: by the fast path ([`direct`]) when it takes
    /// the record, else by the row path ([`Converter::rows`]), which decides failures. `memo`
    /// is the calling thread's memo of `table`'s key lookups.
    ///
    /// # Errors
    /// Why the record does not convert (`chunk` is left as it was).
    pub fn append(
        &self,
        table: &Table,
        data: &[u8],
        memo: &mut KeyMemo,
        chunk: &mut Columns,
    ) -> Result<usize, String> {
        let mark = chunk.mark();
        if let Ok(rows) =
            direct::append_record(data, &self.settings.deserializer, &table.keys, memo, chunk)
        {
            return Ok(rows);
        }
        chunk.truncate(mark);
        let rows = self.rows(table, data)?;
        let count = rows.len();
        for row in rows {
            for (i, cell) in row.into_iter().enumerate() {
                chunk.push_cell(i, cell);
            }
            chunk.end_row();
        }
        Ok(count)
    }

    fn failure(&self, record: &Record, message: String, ending_ms: u64) -> FailedRecord {
        FailedRecord {
            attempts_made: 1,
            arrival_timestamp_ms: record.arrival_ms,
            error_code: MALFORMED.into(),
            error_message: message,
            attempt_ending_timestamp_ms: ending_ms,
            raw_data: record.data.clone(),
            detail: FailureDetail::FormatConversion {
                sequence_number: record.lsn.to_string(),
                sub_sequence_number: u64::from(record.sub),
                table: Arc::clone(&self.table),
            },
        }
    }
}

/// A writer's error as the sink reports it.
fn writer_error(e: WriterError) -> SinkError {
    SinkError::Destination {
        failure: ConversionFailure::WriterFailed.into(),
        message: e.to_string(),
    }
}
