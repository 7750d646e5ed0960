//! The PostgreSQL / Redshift destination (Firehose's `RedshiftDestinationConfiguration`): each
//! batch is loaded with `COPY ... FROM STDIN` over the PostgreSQL protocol, exactly once.
//!
//! # What a delivery does
//!
//! 1. With an intermediate store (the destination's `S3Configuration`), the batch is first
//!    written there as one object, named exactly as Firehose names it ([`ObjectSink`]). The rows
//!    are then loaded from the batch's own bytes, which are that object's uncompressed content:
//!    the object is the record of what was loaded and the source of the manifest written when
//!    the batch is given up, as in Firehose.
//! 2. In one transaction:
//!
//!    ```text
//!    SELECT next_lsn FROM hydrant_offsets WHERE (stream, incarnation, destination_id) = ...
//!        FOR UPDATE                                  -- serializes loaders of one destination
//!    records with lsn < next_lsn: loaded before      -- a resend after a crash skips them
//!    SAVEPOINT hydrant_copy
//!    COPY <table> (<columns>) FROM STDIN            -- the remaining rows, PostgreSQL text format
//!        a bad row (SQLSTATE class 22 / 23)?  ROLLBACK TO SAVEPOINT, drop that row, COPY again
//!    INSERT INTO hydrant_load_errors ...             -- the records of dropped rows (MAXERROR)
//!    UPDATE / INSERT hydrant_offsets SET next_lsn = last_lsn + 1
//!    COMMIT
//!    ```
//!
//! The rows and the position commit together, so a batch delivered twice loads its rows once,
//! and a batch overlapping one already loaded loads only the new records. [`Sink::committed_end`]
//! reads `next_lsn` (0 without a row: PostgreSQL's position is then "nothing loaded"). The records of rows dropped under `MAXERROR` are stored in
//! `hydrant_load_errors` in the same transaction, so a resend of a committed batch reports them
//! again instead of losing them.
//!
//! # Rows
//!
//! The batch's records concatenated are the file Redshift would `COPY` (see [`CopyCommand`] for
//! the formats). A row belongs to the record it starts in; that record's bytes are what the error
//! output gets for a bad row (one failed record per source record, however many of its rows were
//! bad).
//!
//! # Errors
//!
//! | what | code | retryable |
//! | --- | --- | --- |
//! | refused, reset, timed out | `Redshift.ConnectionFailed` | yes |
//! | wrong password, no such role | `Redshift.AuthenticationFailed` | no |
//! | no such database | `Redshift.DatabaseNotFound` | no |
//! | no such table / column | `Redshift.TableNotFound` / `Redshift.ColumnNotFound` | no |
//! | SQL syntax | `Redshift.SyntaxError` | no |
//! | permission denied | `Redshift.AccessDenied` | no |
//! | more bad rows than `MAXERROR` | `Redshift.DataLoadFailed` | no |
//! | too many connections, disk full, serialization failure, server shutting down | various | yes |
//!
//! # Portability
//!
//! Tested against PostgreSQL. The statements keep to what Redshift also has (no `ON CONFLICT`:
//! the position is updated, or inserted when absent), but the catalog query that reads the
//! table's columns uses PostgreSQL's `regclass` and `pg_type.typcategory`.

mod failure;
mod jdbc;
mod options;
mod rows;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls, Transaction};

pub use failure::RedshiftFailure;
pub use jdbc::{Dialect, JdbcUrl};
pub use options::{quote_identifier, CopyCommand, DataFormat, TableName, MAX_ERROR_LIMIT};

use crate::failed::{FailedRecord, FailureDetail};
use crate::object::ObjectSink;
use crate::store::{Body, PutObject};
use crate::{failed_records, now_ms, Batch, BoxFuture, Delivered, GiveUp, Record, Sink, SinkError};
use rows::{Column, LoadError, Rows};

/// The table holding each destination's position: `(stream, incarnation, destination_id)` →
/// `next_lsn`, committed with the rows.
pub const OFFSETS_TABLE: &str = "hydrant_offsets";

/// The table holding the records whose rows a committed load dropped under `MAXERROR`.
pub const LOAD_ERRORS_TABLE: &str = "hydrant_load_errors";

/// The error code of rows (and batches) that could not be loaded.
pub const DATA_LOAD_FAILED: &str = "Redshift.DataLoadFailed";

/// The default time allowed to connect (and authenticate).
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// The default `statement_timeout` of the loader's session.
pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// How long the client waits beyond `statement_timeout` before it gives up on the server.
const CLIENT_GRACE: Duration = Duration::from_secs(10);

/// Rows are sent to `COPY` in slices of about this many bytes.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Batches larger than this are encoded on a blocking thread, streaming into the first `COPY`.
const ENCODE_INLINE_BYTES_MAX: u64 = 256 * 1024;

/// Encoded chunks waiting for the `COPY` (a bound on memory and on how far the encoder runs
/// ahead).
const STREAM_CHUNKS_IN_FLIGHT: usize = 8;

/// A destination setting hydrant cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PgConfigError {
    /// `ClusterJDBCURL` is not a URL hydrant can connect to.
    #[error("ClusterJDBCURL {url:?}: {reason}")]
    JdbcUrl {
        /// The URL, without any parameters.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CopyCommand.DataTableName` is not a table name.
    #[error("CopyCommand.DataTableName {name:?}: {reason}")]
    TableName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CopyCommand.DataTableColumns` is not a list of column names.
    #[error("CopyCommand.DataTableColumns {columns:?}: {reason}")]
    Columns {
        /// The list given (shortened).
        columns: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CopyCommand.CopyOptions` holds an option hydrant does not implement.
    #[error("CopyCommand.CopyOptions: {option} is not supported: {reason}")]
    UnsupportedOption {
        /// The option, as written (uppercased keyword).
        option: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// `CopyCommand.CopyOptions` cannot be parsed, or its options contradict each other.
    #[error("CopyCommand.CopyOptions: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// `CopyOptions` and the intermediate `CompressionFormat` disagree, or the format cannot be
    /// loaded.
    #[error("CopyCommand.CopyOptions and S3Configuration.CompressionFormat: {reason}")]
    Compression {
        /// What is wrong.
        reason: String,
    },
}

/// Everything a [`PostgresSink`] needs.
#[derive(Clone)]
pub struct PostgresSinkConfig {
    /// The server and database.
    pub url: JdbcUrl,
    /// `Username`.
    pub username: String,
    /// `Password` (unused by servers with trust authentication).
    pub password: String,
    /// Where and how to load.
    pub copy: CopyCommand,
    /// The intermediate object store (`S3Configuration`): each batch is written there before it
    /// is loaded, and given-up batches get a manifest there. `None`: load only.
    pub intermediate: Option<Arc<ObjectSink>>,
    /// Time allowed to connect and authenticate.
    pub connect_timeout: Duration,
    /// The session's `statement_timeout`; the client waits this long plus a grace for any
    /// answer.
    pub statement_timeout: Duration,
}

impl PostgresSinkConfig {
    /// A configuration with the default timeouts and no intermediate store.
    pub fn new(
        url: JdbcUrl,
        username: impl Into<String>,
        password: impl Into<String>,
        copy: CopyCommand,
    ) -> PostgresSinkConfig {
        PostgresSinkConfig {
            url,
            username: username.into(),
            password: password.into(),
            copy,
            intermediate: None,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT_DEFAULT,
        }
    }
}

impl fmt::Debug for PostgresSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSinkConfig")
            .field("url", &self.url.to_string())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("copy", &self.copy)
            .field("intermediate", &self.intermediate.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// The PostgreSQL / Redshift destination. Holds one connection, opened on first use and
/// reopened after any failure; deliveries through one sink run one at a time.
pub struct PostgresSink {
    config: PostgresSinkConfig,
    client: tokio::sync::Mutex<Option<Client>>,
    tables_ready: AtomicBool,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn destination(failure: RedshiftFailure, message: String) -> SinkError {
    SinkError::Destination {
        failure: failure.into(),
        message,
    }
}

/// The code and class of a PostgreSQL error (by SQLSTATE), or of a transport failure.
pub fn classify(error: &tokio_postgres::Error, context: &str) -> SinkError {
    let Some(db) = error.as_db_error() else {
        return destination(
            RedshiftFailure::ConnectionFailed,
            format!("{context}: {error}"),
        );
    };
    let state = db.code().code();
    let failure = RedshiftFailure::from_sqlstate(state);
    let mut message = format!("{context}: {} (SQLSTATE {state})", db.message());
    if let Some(detail) = db.detail() {
        message.push_str(&format!("; {detail}"));
    }
    destination(failure, message)
}

fn timed_out(context: &str, limit: Duration) -> SinkError {
    destination(
        RedshiftFailure::ConnectionFailed,
        format!("{context}: no answer within {} s", limit.as_secs()),
    )
}

/// Where a `COPY` gets its data.
enum Chunks<'r> {
    /// Chunks streamed by the encoder as it works (the first attempt at a large batch).
    Live(tokio::sync::mpsc::Receiver<Bytes>),
    /// The rows `sent` of finished `rows`, runs of adjacent rows as one chunk.
    Kept {
        rows: &'r Rows,
        sent: &'r [usize],
        next: usize,
    },
}

impl Chunks<'_> {
    async fn next(&mut self) -> Option<Bytes> {
        match self {
            Chunks::Live(receiver) => receiver.recv().await,
            Chunks::Kept { rows, sent, next } => {
                let first = &rows.rows[*sent.get(*next)?];
                let mut range = first.range.clone();
                *next += 1;
                while let Some(&index) = sent.get(*next) {
                    let row = &rows.rows[index].range;
                    if row.start != range.end || range.len() >= COPY_CHUNK_BYTES {
                        break;
                    }
                    range.end = row.end;
                    *next += 1;
                }
                Some(rows.data.slice(range))
            }
        }
    }
}

/// Why a `COPY` attempt failed.
enum CopyFailure {
    /// PostgreSQL rejected one row (a data error with the line of the `COPY` stream it was on).
    Row {
        line: usize,
        column: Option<String>,
        reason: String,
    },
    /// Anything else.
    Other(SinkError),
}

/// The line and column of a `COPY` data error's context (`COPY t, line 3, column v: "x"`).
fn copy_error_position(where_: &str) -> Option<(usize, Option<String>)> {
    let at = where_.find(", line ")?;
    let rest = &where_[at + ", line ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let line = rest[..digits].parse::<usize>().ok()?;
    let column = rest[digits..].strip_prefix(", column ").map(|tail| {
        let end = tail.find(':').unwrap_or(tail.len());
        tail[..end].to_string()
    });
    Some((line, column))
}

/// `lsn` as the `bigint` the offsets table holds.
fn lsn_sql(lsn: u64) -> Result<i64, SinkError> {
    i64::try_from(lsn).map_err(|_| {
        destination(
            RedshiftFailure::InvalidPosition,
            format!("LSN {lsn} does not fit a bigint"),
        )
    })
}

/// The Redshift-style message of a record's load errors.
fn load_error_message(errors: &[&LoadError]) -> String {
    let mut message = String::new();
    if let Some(first) = errors.first() {
        message.push_str(&format!("Load error at line {}", first.line));
        if let Some(column) = &first.column {
            message.push_str(&format!(", column {column}"));
        }
        message.push_str(&format!(": {}", first.reason));
    }
    if errors.len() > 1 {
        message.push_str(&format!(
            " (and {} more bad rows starting in this record)",
            errors.len() - 1
        ));
    }
    message
}

/// The manifest of one object, as Redshift's `COPY ... MANIFEST` reads it.
fn manifest(url: &str) -> Vec<u8> {
    let entry = serde_json::json!({ "entries": [ { "url": url, "mandatory": true } ] });
    let mut body = entry.to_string().into_bytes();
    body.push(b'\n');
    body
}

impl PostgresSink {
    /// A sink for `config`. Connects lazily (on the first delivery).
    ///
    /// # Errors
    /// [`SinkError::Config`] when the timeouts are zero.
    pub fn new(config: PostgresSinkConfig) -> Result<PostgresSink, SinkError> {
        if config.connect_timeout.is_zero() || config.statement_timeout.is_zero() {
            return Err(SinkError::Config(
                "PostgreSQL connect and statement timeouts must be above zero".into(),
            ));
        }
        Ok(PostgresSink {
            config,
            client: tokio::sync::Mutex::new(None),
            tables_ready: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresSinkConfig {
        &self.config
    }

    /// The key of the manifest [`Sink::give_up`] writes for `batch` in the intermediate store:
    /// `errors/manifests/YYYY/MM/DD/HH/<stream>-<version>-<time>-<object id>` (time of the oldest
    /// record, as in the object's own name). `None` without an intermediate store.
    pub fn manifest_key(&self, batch: &Batch) -> Option<String> {
        let intermediate = self.config.intermediate.as_ref()?;
        let data_key = intermediate.data_key(batch);
        let name = data_key.rsplit('/').next().unwrap_or(&data_key);
        let id = batch.identity.object_id();
        let id_at = name.rfind(&id)?;
        let stem = &name[..id_at + id.len()];
        // `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>`: the time is the 19 characters before
        // the id's dash.
        let time = name.get(id_at.checked_sub(20)?..id_at - 1)?;
        Some(format!(
            "errors/manifests/{}/{}/{}/{}/{stem}",
            time.get(0..4)?,
            time.get(5..7)?,
            time.get(8..10)?,
            time.get(11..13)?
        ))
    }

    fn client_timeout(&self) -> Duration {
        self.config.statement_timeout + CLIENT_GRACE
    }

    /// Runs one client call with the client-side timeout, classifying its failure.
    async fn timed<T>(
        &self,
        context: &str,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SinkError> {
        let limit = self.client_timeout();
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(|e| classify(&e, context)),
            Err(_) => Err(timed_out(context, limit)),
        }
    }

    async fn connect(&self) -> Result<Client, SinkError> {
        let url = &self.config.url;
        let mut pg = tokio_postgres::Config::new();
        pg.host(url.host())
            .port(url.port())
            .dbname(url.database())
            .user(&self.config.username)
            .password(&self.config.password)
            .application_name("hydrant")
            .connect_timeout(self.config.connect_timeout);
        let context = format!("connecting to {url}");
        // The connect timeout bounds each TCP attempt; this bounds authentication as well.
        let limit = self.config.connect_timeout + CLIENT_GRACE;
        let (client, connection) = match tokio::time::timeout(limit, pg.connect(NoTls)).await {
            Ok(result) => result.map_err(|e| classify(&e, &context))?,
            Err(_) => return Err(timed_out(&context, limit)),
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        let millis = self.config.statement_timeout.as_millis();
        self.timed(
            "setting statement_timeout",
            client.batch_execute(&format!("SET statement_timeout = {millis}")),
        )
        .await?;
        Ok(client)
    }

    /// The sink's connection, opened if there is none (or it broke). A caller whose work on
    /// it fails sets the guard to `None`, so the next call starts on a fresh session.
    async fn connected(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, SinkError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            *guard = Some(self.connect().await?);
        }
        Ok(guard)
    }

    /// Creates `hydrant_offsets` and `hydrant_load_errors` if they are missing (once per sink).
    async fn ensure_tables(&self, client: &Client) -> Result<(), SinkError> {
        if self.tables_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (stream text, incarnation text, \
                 destination_id text, next_lsn bigint, \
                 PRIMARY KEY (stream, incarnation, destination_id))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {LOAD_ERRORS_TABLE} (stream text, incarnation text, \
                 destination_id text, lsn bigint, sub bigint, message text, \
                 PRIMARY KEY (stream, incarnation, destination_id, lsn, sub))"
            ),
        ];
        for statement in &statements {
            let limit = self.client_timeout();
            match tokio::time::timeout(limit, client.batch_execute(statement)).await {
                Ok(Ok(())) => {}
                // Two loaders creating the table at once: one wins, the other sees a duplicate.
                Ok(Err(e))
                    if e.code()
                        .is_some_and(|c| matches!(c.code(), "42P07" | "23505")) => {}
                Ok(Err(e)) => return Err(classify(&e, "creating the hydrant tables")),
                Err(_) => return Err(timed_out("creating the hydrant tables", limit)),
            }
        }
        self.tables_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The target columns: the `DataTableColumns` list, or every column of the table in order.
    async fn describe(&self, client: &Client) -> Result<Vec<Column>, SinkError> {
        let table = self.config.copy.table();
        let rows = self
            .timed(
                &format!("reading the columns of {table}"),
                client.query(
                    "SELECT a.attname::text, t.typcategory = 'S', \
                     CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 \
                     THEN a.atttypmod - 4 END \
                     FROM pg_catalog.pg_attribute a \
                     JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 \
                     AND NOT a.attisdropped ORDER BY a.attnum",
                    &[&table.quoted()],
                ),
            )
            .await?;
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            let read = |e: tokio_postgres::Error| classify(&e, "reading the catalog");
            let max: Option<i32> = row.try_get(2).map_err(read)?;
            all.push(Column {
                name: row.try_get(0).map_err(read)?,
                is_text: row.try_get(1).map_err(read)?,
                max_chars: max.and_then(|m| usize::try_from(m).ok()),
            });
        }
        let Some(wanted) = self.config.copy.columns() else {
            return Ok(all);
        };
        wanted
            .iter()
            .map(|name| {
                all.iter()
                    .find(|c| &c.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        destination(
                            RedshiftFailure::ColumnNotFound,
                            format!("column {name:?} of DataTableColumns is not in {table}"),
                        )
                    })
            })
            .collect()
    }

    /// One `COPY` of the chunks `source` yields; returns the bytes sent. A row PostgreSQL
    /// rejects comes back as [`CopyFailure::Row`] with its line in this `COPY`'s stream.
    async fn copy(
        &self,
        tx: &Transaction<'_>,
        statement: &str,
        mut source: Chunks<'_>,
    ) -> Result<u64, CopyFailure> {
        let send = async {
            let sink = tx.copy_in::<_, Bytes>(statement).await?;
            let mut sink = std::pin::pin!(sink);
            let mut bytes = 0u64;
            while let Some(chunk) = source.next().await {
                bytes += chunk.len() as u64;
                sink.feed(chunk).await?;
            }
            sink.as_mut().finish().await?;
            Ok::<u64, tokio_postgres::Error>(bytes)
        };
        let context = format!("COPY into {}", self.config.copy.table());
        let limit = self.client_timeout();
        let error = match tokio::time::timeout(limit, send).await {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(e)) => e,
            Err(_) => return Err(CopyFailure::Other(timed_out(&context, limit))),
        };
        if let Some(db) = error.as_db_error() {
            let class = &db.code().code()[..2];
            let position = db.where_().and_then(copy_error_position);
            if let (true, Some((line, column))) = (class == "22" || class == "23", position) {
                return Err(CopyFailure::Row {
                    line,
                    column,
                    reason: db.message().to_string(),
                });
            }
        }
        Err(CopyFailure::Other(classify(&error, &context)))
    }

    /// The failed records stored by the committed loads of `batch`'s records before
    /// `next_lsn`.
    async fn stored_failures(
        &self,
        tx: &Transaction<'_>,
        batch: &Batch,
        next_lsn: u64,
    ) -> Result<Vec<FailedRecord>, SinkError> {
        let id = &batch.identity;
        let rows = self
            .timed(
                "reading hydrant_load_errors",
                tx.query(
                    &format!(
                        "SELECT lsn, sub, message FROM {LOAD_ERRORS_TABLE} WHERE stream = $1 \
                         AND incarnation = $2 AND destination_id = $3 AND lsn >= $4 \
                         AND lsn < $5 ORDER BY lsn, sub"
                    ),
                    &[
                        &id.stream,
                        &id.incarnation,
                        &id.destination_id,
                        &lsn_sql(id.first_lsn)?,
                        &lsn_sql(next_lsn)?,
                    ],
                ),
            )
            .await?;
        let now = now_ms();
        let mut failed = Vec::new();
        for row in rows {
            let read = |e: tokio_postgres::Error| classify(&e, "reading hydrant_load_errors");
            let lsn: i64 = row.try_get(0).map_err(read)?;
            let sub: i64 = row.try_get(1).map_err(read)?;
            let message: String = row.try_get(2).map_err(read)?;
            let found = batch
                .records
                .iter()
                .find(|r| i64::try_from(r.lsn) == Ok(lsn) && i64::from(r.sub) == sub);
            if let Some(record) = found {
                failed.push(load_failure(record, message, now));
            }
        }
        Ok(failed)
    }

    /// Loads `batch` in one transaction (see the module docs).
    async fn load(&self, client: &mut Client, batch: &Batch) -> Result<Loaded, SinkError> {
        self.ensure_tables(client).await?;
        let columns = self.describe(client).await?;
        let id = &batch.identity;
        let tx = self.timed("BEGIN", client.transaction()).await?;
        let row = self
            .timed(
                "reading hydrant_offsets",
                tx.query_opt(
                    &format!(
                        "SELECT next_lsn FROM {OFFSETS_TABLE} WHERE stream = $1 AND \
                         incarnation = $2 AND destination_id = $3 FOR UPDATE"
                    ),
                    &[&id.stream, &id.incarnation, &id.destination_id],
                ),
            )
            .await?;
        let committed: Option<i64> = match &row {
            Some(row) => Some(
                row.try_get(0)
                    .map_err(|e| classify(&e, "reading hydrant_offsets"))?,
            ),
            None => None,
        };
        let next_lsn = committed.map_or(0, |n| u64::try_from(n).unwrap_or(0));
        let first_new = batch.records.partition_point(|r| r.lsn < next_lsn);
        let mut failed = Vec::new();
        if first_new > 0 {
            failed = self.stored_failures(&tx, batch, next_lsn).await?;
        }
        if first_new == batch.records.len() {
            self.timed("ROLLBACK", tx.rollback()).await?;
            return Ok(Loaded {
                records: 0,
                data_bytes: 0,
                wire_bytes: 0,
                failed,
            });
        }
        let statement = self
            .config
            .copy
            .copy_statement(&columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        let (errors, wire_bytes) = self
            .copy_rows(&tx, &statement, batch, first_new, columns)
            .await?;
        let new_failed = self.file_errors(&tx, batch, &errors).await?;
        let failed_records: usize = new_failed.len();
        let failed_bytes: u64 = new_failed.iter().map(|f| f.raw_data.len() as u64).sum();
        failed.extend(new_failed);
        let end = lsn_sql(id.last_lsn.saturating_add(1))?;
        let update = if committed.is_some() {
            format!(
                "UPDATE {OFFSETS_TABLE} SET next_lsn = $4 WHERE stream = $1 AND \
                 incarnation = $2 AND destination_id = $3"
            )
        } else {
            format!(
                "INSERT INTO {OFFSETS_TABLE} (stream, incarnation, destination_id, next_lsn) \
                 VALUES ($1, $2, $3, $4)"
            )
        };
        self.timed(
            "writing hydrant_offsets",
            tx.execute(
                &update,
                &[&id.stream, &id.incarnation, &id.destination_id, &end],
            ),
        )
        .await?;
        self.timed("COMMIT", tx.commit()).await?;
        let new_records = &batch.records[first_new..];
        let new_bytes: u64 = new_records.iter().map(|r| r.data.len() as u64).sum();
        Ok(Loaded {
            records: (new_records.len() - failed_records) as u64,
            data_bytes: new_bytes - failed_bytes,
            wire_bytes,
            failed,
        })
    }

    /// Encodes the batch's new rows and `COPY`s them, dropping the ones PostgreSQL rejects, up
    /// to `MAXERROR` errors in all; returns every load error (parse and server) in line order
    /// and the bytes sent by the successful `COPY`.
    ///
    /// A batch above [`ENCODE_INLINE_BYTES_MAX`] is encoded on a blocking thread that streams
    /// its rows into the first `COPY`; retries (after a rejected row) resend the kept rows.
    async fn copy_rows(
        &self,
        tx: &Transaction<'_>,
        statement: &str,
        batch: &Batch,
        first_new: usize,
        columns: Vec<Column>,
    ) -> Result<(Vec<LoadError>, u64), SinkError> {
        self.timed("SAVEPOINT", tx.batch_execute("SAVEPOINT hydrant_copy"))
            .await?;
        let (rows, first) = if batch.data_bytes() <= ENCODE_INLINE_BYTES_MAX {
            let rows = rows::encode(&batch.records, first_new, &self.config.copy, &columns, None);
            (rows, None)
        } else {
            let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
            let records = batch.records.clone();
            let command = self.config.copy.clone();
            let encoder = tokio::task::spawn_blocking(move || {
                rows::encode(&records, first_new, &command, &columns, Some(sender))
            });
            let first = self.copy(tx, statement, Chunks::Live(receiver)).await;
            let rows = encoder.await.map_err(|e| SinkError::Task(e.to_string()))?;
            (rows, Some(first))
        };
        let max_error = self.config.copy.max_error();
        let mut errors = rows.errors.clone();
        let over = |errors: &[LoadError]| {
            let mut sorted: Vec<&LoadError> = errors.iter().collect();
            sorted.sort_by_key(|e| e.line);
            destination(
                RedshiftFailure::DataLoadFailed,
                format!(
                    "{} bad rows, more than MAXERROR {max_error}: nothing loaded. {}",
                    errors.len(),
                    load_error_message(&sorted[..1])
                ),
            )
        };
        if errors.len() as u64 > max_error {
            return Err(over(&errors));
        }
        let mut excluded = vec![false; rows.rows.len()];
        let mut pending = first;
        loop {
            let sent: Vec<usize> = (0..rows.rows.len()).filter(|i| !excluded[*i]).collect();
            let result = match pending.take() {
                Some(result) => result,
                None if sent.is_empty() => break,
                None => {
                    let source = Chunks::Kept {
                        rows: &rows,
                        sent: &sent,
                        next: 0,
                    };
                    self.copy(tx, statement, source).await
                }
            };
            match result {
                Ok(bytes) => {
                    errors.sort_by_key(|e| e.line);
                    return Ok((errors, bytes));
                }
                Err(CopyFailure::Row {
                    line,
                    column,
                    reason,
                }) => {
                    let Some(&index) = line.checked_sub(1).and_then(|i| sent.get(i)) else {
                        return Err(destination(
                            RedshiftFailure::DataLoadFailed,
                            format!("COPY rejected line {line} of {}: {reason}", sent.len()),
                        ));
                    };
                    excluded[index] = true;
                    let row = &rows.rows[index];
                    errors.push(LoadError {
                        record: row.record,
                        line: row.line,
                        column,
                        reason,
                    });
                    if errors.len() as u64 > max_error {
                        return Err(over(&errors));
                    }
                    self.timed(
                        "ROLLBACK TO SAVEPOINT",
                        tx.batch_execute("ROLLBACK TO SAVEPOINT hydrant_copy"),
                    )
                    .await?;
                }
                Err(CopyFailure::Other(e)) => return Err(e),
            }
        }
        errors.sort_by_key(|e| e.line);
        Ok((errors, 0))
    }

    /// Turns load errors into failed records (one per source record) and stores them in
    /// `hydrant_load_errors` within the load's transaction.
    async fn file_errors(
        &self,
        tx: &Transaction<'_>,
        batch: &Batch,
        errors: &[LoadError],
    ) -> Result<Vec<FailedRecord>, SinkError> {
        let mut by_record: BTreeMap<usize, Vec<&LoadError>> = BTreeMap::new();
        for error in errors {
            by_record.entry(error.record).or_default().push(error);
        }
        if by_record.is_empty() {
            return Ok(Vec::new());
        }
        let insert = self
            .timed(
                "preparing the hydrant_load_errors insert",
                tx.prepare(&format!(
                    "INSERT INTO {LOAD_ERRORS_TABLE} (stream, incarnation, destination_id, lsn, \
                     sub, message) VALUES ($1, $2, $3, $4, $5, $6)"
                )),
            )
            .await?;
        let now = now_ms();
        let id = &batch.identity;
        let mut failed = Vec::with_capacity(by_record.len());
        for (index, errors) in by_record {
            let Some(record) = batch.records.get(index) else {
                continue;
            };
            let message = load_error_message(&errors);
            self.timed(
                "writing hydrant_load_errors",
                tx.execute(
                    &insert,
                    &[
                        &id.stream,
                        &id.incarnation,
                        &id.destination_id,
                        &lsn_sql(record.lsn)?,
                        &i64::from(record.sub),
                        &message,
                    ],
                ),
            )
            .await?;
            failed.push(load_failure(record, message, now));
        }
        Ok(failed)
    }

    async fn deliver_batch(&self, batch: &Batch) -> Result<Delivered, SinkError> {
        let target = self.target(batch)?;
        let location = match &self.config.intermediate {
            Some(intermediate) => {
                intermediate.deliver(batch).await?;
                intermediate.store().location(&target)
            }
            None => format!("{}/{}", self.config.url, self.config.copy.table()),
        };
        if batch.records.is_empty() {
            return Ok(Delivered {
                target,
                location,
                records: 0,
                data_bytes: 0,
                wire_bytes: 0,
                failed: Vec::new(),
            });
        }
        let mut guard = self.connected().await?;
        let Some(client) = guard.as_mut() else {
            return Err(SinkError::Task("PostgreSQL connection vanished".into()));
        };
        let result = self.load(client, batch).await;
        if result.is_err() {
            *guard = None;
        }
        let loaded = result?;
        Ok(Delivered {
            target,
            location,
            records: loaded.records,
            data_bytes: loaded.data_bytes,
            wire_bytes: loaded.wire_bytes,
            failed: loaded.failed,
        })
    }

    async fn give_up_batch(
        &self,
        batch: &Batch,
        error: &SinkError,
        attempts: u32,
    ) -> Result<Vec<FailedRecord>, SinkError> {
        let (Some(intermediate), Some(key)) = (&self.config.intermediate, self.manifest_key(batch))
        else {
            return Ok(failed_records(batch, error, attempts, |r| {
                self.failure_detail(batch, r)
            }));
        };
        if batch.records.is_empty() {
            return Ok(Vec::new());
        }
        // The object may never have been written (the store failed, or the first attempt died
        // before it): write it (again: same key, same bytes) so the manifest points at it.
        let written = intermediate.deliver(batch).await?;
        let url = intermediate.store().location(&written.target);
        let object = PutObject {
            body: Body::from(manifest(&url)),
            content_encoding: None,
        };
        intermediate.store().put_object(&key, object).await?;
        tracing::warn!(
            stream = %batch.identity.stream,
            manifest = %intermediate.store().location(&key),
            error = %error,
            "gave up loading a batch into {}; its manifest is in the intermediate store",
            self.config.copy.table()
        );
        Ok(Vec::new())
    }

    async fn read_committed_end(
        &self,
        client: &mut Client,
        stream: &str,
        incarnation: &str,
        destination_id: &str,
    ) -> Result<Option<u64>, SinkError> {
        let query = format!(
            "SELECT next_lsn FROM {OFFSETS_TABLE} WHERE stream = $1 AND incarnation = $2 AND \
             destination_id = $3"
        );
        let limit = self.client_timeout();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&stream, &incarnation, &destination_id];
        let call = client.query_opt(&query, &params);
        let row = match tokio::time::timeout(limit, call).await {
            Ok(Ok(row)) => row,
            // No table yet: nothing was ever loaded through hydrant here.
            Ok(Err(e)) if e.code().is_some_and(|c| c.code() == "42P01") => return Ok(Some(0)),
            Ok(Err(e)) => return Err(classify(&e, "reading hydrant_offsets")),
            Err(_) => return Err(timed_out("reading hydrant_offsets", limit)),
        };
        let Some(row) = row else {
            // No row: PostgreSQL holds nothing of this destination (it keeps a position all the
            // same: 0, so the engine can tell that commits it confirmed were lost).
            return Ok(Some(0));
        };
        let next: i64 = row
            .try_get(0)
            .map_err(|e| classify(&e, "reading hydrant_offsets"))?;
        Ok(Some(u64::try_from(next).unwrap_or(0)))
    }
}

/// What one load did.
struct Loaded {
    records: u64,
    data_bytes: u64,
    wire_bytes: u64,
    failed: Vec<FailedRecord>,
}

fn load_failure(record: &Record, message: String, now: u64) -> FailedRecord {
    FailedRecord {
        attempts_made: 1,
        arrival_timestamp_ms: record.arrival_ms,
        error_code: DATA_LOAD_FAILED.to_string(),
        error_message: message,
        attempt_ending_timestamp_ms: now,
        raw_data: record.data.clone(),
        detail: FailureDetail::Redshift,
    }
}

impl Sink for PostgresSink {
    /// `"redshift"` for `jdbc:redshift://` URLs, `"postgres"` for `jdbc:postgresql://`.
    fn kind(&self) -> &'static str {
        match self.config.url.dialect() {
            Dialect::Redshift => "redshift",
            Dialect::Postgresql => "postgres",
        }
    }

    /// The intermediate object's key, or the batch's request id without an intermediate store.
    fn target(&self, batch: &Batch) -> Result<String, SinkError> {
        Ok(match &self.config.intermediate {
            Some(intermediate) => intermediate.data_key(batch),
            None => batch.identity.request_id(),
        })
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Delivered, SinkError>> {
        Box::pin(self.deliver_batch(batch))
    }

    /// With an intermediate store: makes sure the batch's object is there, writes a manifest of
    /// it under `errors/manifests/` ([`PostgresSink::manifest_key`]) and returns no records, as
    /// Firehose does (the rows are in the object). Without one: every record, so nothing is
    /// dropped.
    fn give_up<'a>(&'a self, batch: &'a Batch, error: &'a SinkError, attempts: u32) -> GiveUp<'a> {
        Box::pin(self.give_up_batch(batch, error, attempts))
    }

    fn failure_detail(&self, _batch: &Batch, _record: &Record) -> FailureDetail {
        FailureDetail::Redshift
    }

    fn committed_end<'a>(
        &'a self,
        stream: &'a str,
        incarnation: &'a str,
        destination_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>, SinkError>> {
        Box::pin(async move {
            let mut guard = self.connected().await?;
            let Some(client) = guard.as_mut() else {
                return Err(SinkError::Task("PostgreSQL connection vanished".into()));
            };
            let result = self
                .read_committed_end(client, stream, incarnation, destination_id)
                .await;
            if result.is_err() {
                *guard = None;
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_error_context_is_parsed() {
        assert_eq!(
            copy_error_position("COPY events, line 3, column amount: \"x\""),
            Some((3, Some("amount".to_string())))
        );
        assert_eq!(
            copy_error_position("COPY events, line 12"),
            Some((12, None))
        );
        assert_eq!(copy_error_position("SQL statement"), None);
    }

    #[test]
    fn manifest_shape() {
        let body = manifest("s3://bucket/2024/01/02/03/s-1-2024-01-02-03-04-05-id");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(
            value["entries"][0]["url"],
            "s3://bucket/2024/01/02/03/s-1-2024-01-02-03-04-05-id"
        );
        assert_eq!(value["entries"][0]["mandatory"], true);
    }
}
