//! `hydrant bench deliver --dest postgres`: rows per second through the PostgreSQL / Redshift
//! sink beside a plain `COPY` of the same rows into the same server, in the same run.
//!
//! The rows are `--rows` pipe-delimited text lines of about 100 bytes, one per record, cut into
//! batches of at most 5 MiB as the engine cuts them with `BufferingHints.SizeInMBs = 5`. Two
//! methods load them, each into its own freshly truncated table:
//! - **plain COPY**: one `COPY <table> FROM STDIN WITH (DELIMITER '|')` per batch on one
//!   connection, the records' bytes sent as they are (PostgreSQL parses them);
//! - **sink**: `PostgresSink::deliver` per batch, one at a time as a delivery worker does
//!   (parse, re-encode, `hydrant_offsets` row, one transaction per batch).
//!
//! The methods run in the order copy, sink, sink, copy and each figure is the sum of its two
//! passes, so neither gains from going first. The goal (printed, not asserted) is a ratio of at
//! least 0.8. Without `--pg-url` the run starts its own throwaway cluster (the test harness's
//! [`TestPostgres`]; PostgreSQL binaries needed).

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use hydrant_sinks::postgres::{CopyCommand, JdbcUrl, PostgresSink, PostgresSinkConfig};
use hydrant_sinks::{Batch, BatchIdentity, Record, Sink};
use hydrant_tests::pg::TestPostgres;
use serde::Serialize;

use crate::put::BenchHttpError;

/// Batches are cut at this many bytes (`SizeInMBs = 5`).
const BATCH_BYTES_MAX: usize = 5 * 1024 * 1024;

const TABLE_COLUMNS: &str = "(id bigint, name text, amount numeric(12,2), at timestamptz)";

/// Row `i`: `id|name|amount|timestamp\n`, about 100 bytes.
fn row(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66;
    x ^= x >> 29;
    format!(
        "{i}|customer-{x:016x}-{:08}-account-holder|{}.{:02}|2024-03-{:02} {:02}:{:02}:{:02}+00\n",
        i % 100_000_000,
        x % 100_000,
        x % 100,
        1 + i % 28,
        i % 24,
        i % 60,
        (i / 60) % 60
    )
    .into_bytes()
}

/// The rows as the engine would batch them.
fn batches(rows: u64, incarnation: &str) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    let mut bytes = 0;
    let cut = |records: &mut Vec<Record>, batches: &mut Vec<Batch>| {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        batches.push(Batch {
            identity: BatchIdentity {
                stream: "hydrant-bench".into(),
                incarnation: incarnation.into(),
                destination_id: "destinationId-000000000001".into(),
                first_lsn: first.lsn,
                last_lsn: last.lsn,
            },
            stream_version: 1,
            contiguous: None,
            partition_keys: Vec::new(),
            oldest_arrival_ms: first.arrival_ms,
            records: std::mem::take(records),
        });
    };
    for i in 0..rows {
        let data = row(i);
        if bytes + data.len() > BATCH_BYTES_MAX {
            cut(&mut records, &mut batches);
            bytes = 0;
        }
        bytes += data.len();
        records.push(Record {
            lsn: i + 1,
            sub: 0,
            arrival_ms: 1_700_000_000_000,
            data: Bytes::from(data),
        });
    }
    cut(&mut records, &mut batches);
    batches
}

fn failed(what: &str) -> impl FnOnce(tokio_postgres::Error) -> BenchHttpError + '_ {
    move |e| BenchHttpError::Delivery(format!("{what}: {e}"))
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    rows: u64,
    batches: usize,
    row_bytes: u64,
    copy_rows_per_sec: f64,
    sink_rows_per_sec: f64,
    ratio: f64,
    goal_met: bool,
}

async fn plain_copy(
    client: &tokio_postgres::Client,
    table: &str,
    batches: &[Batch],
) -> Result<Duration, BenchHttpError> {
    let statement = format!("COPY {table} FROM STDIN WITH (DELIMITER '|')");
    let start = Instant::now();
    for batch in batches {
        let sink = client
            .copy_in::<_, Bytes>(&statement)
            .await
            .map_err(failed("plain COPY"))?;
        let mut sink = std::pin::pin!(sink);
        for record in &batch.records {
            sink.feed(record.data.clone())
                .await
                .map_err(failed("plain COPY"))?;
        }
        sink.as_mut().finish().await.map_err(failed("plain COPY"))?;
    }
    Ok(start.elapsed())
}

async fn through_sink(
    config: PostgresSinkConfig,
    batches: &[Batch],
) -> Result<Duration, BenchHttpError> {
    let sink = PostgresSink::new(config).map_err(|e| BenchHttpError::Delivery(e.to_string()))?;
    let start = Instant::now();
    for batch in batches {
        let delivered = sink
            .deliver(batch)
            .await
            .map_err(|e| BenchHttpError::Delivery(format!("PostgresSink: {e}")))?;
        if delivered.records != batch.records.len() as u64 {
            return Err(BenchHttpError::Delivery(format!(
                "PostgresSink loaded {} of {} records of {}",
                delivered.records,
                batch.records.len(),
                batch.identity
            )));
        }
    }
    Ok(start.elapsed())
}

/// Runs the PostgreSQL delivery benchmark.
///
/// # Errors
/// [`BenchHttpError`] when the server cannot be started or reached, or a load fails.
pub fn run(
    pg_url: Option<&str>,
    rows: u64,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), BenchHttpError> {
    if !(1_000..=100_000_000).contains(&rows) {
        return Err(BenchHttpError::InvalidArgument(
            "--rows must be in 1000..=100000000".into(),
        ));
    }
    let (cluster, url) = match pg_url {
        Some(url) => (None, url.to_string()),
        None => {
            eprintln!("bench deliver --dest postgres: starting a throwaway PostgreSQL cluster");
            let pg = TestPostgres::start().map_err(|e| BenchHttpError::Delivery(e.to_string()))?;
            pg.create_database("hydrant_bench")
                .map_err(|e| BenchHttpError::Delivery(e.to_string()))?;
            let url = pg.url("hydrant_bench");
            (Some(pg), url)
        }
    };
    let pg_config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| BenchHttpError::InvalidArgument(format!("--pg-url: {e}")))?;
    let host = match pg_config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => {
            return Err(BenchHttpError::InvalidArgument(
                "--pg-url needs a TCP host".into(),
            ))
        }
    };
    let port = pg_config.get_ports().first().copied().unwrap_or(5432);
    let database = pg_config.get_dbname().unwrap_or("postgres").to_string();
    let user = pg_config.get_user().unwrap_or("postgres").to_string();
    let password = pg_config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let jdbc = JdbcUrl::parse(&format!("jdbc:postgresql://{host}:{port}/{database}"))
        .map_err(|e| BenchHttpError::InvalidArgument(format!("--pg-url: {e}")))?;
    let runtime = crate::put::runtime(2)?;
    let run_id = format!("{:x}", hydrant_sinks::now_ms());
    let report = runtime.block_on(async {
        let (client, connection) = pg_config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(failed("connecting"))?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS hydrant_bench_copy, hydrant_bench_sink; \
                 CREATE TABLE hydrant_bench_copy {TABLE_COLUMNS}; \
                 CREATE TABLE hydrant_bench_sink {TABLE_COLUMNS}"
            ))
            .await
            .map_err(failed("creating the tables"))?;
        let mut copy_time = Duration::ZERO;
        let mut sink_time = Duration::ZERO;
        let mut sizes = (0, 0);
        for (pass, method) in ["copy", "sink", "sink", "copy"].into_iter().enumerate() {
            let batches = batches(rows, &format!("{run_id}-{pass}"));
            sizes = (
                batches.len(),
                batches.iter().map(Batch::data_bytes).sum::<u64>(),
            );
            let table = format!("hydrant_bench_{method}");
            client
                .batch_execute(&format!("TRUNCATE {table}"))
                .await
                .map_err(failed("TRUNCATE"))?;
            eprintln!(
                "bench deliver --dest postgres: pass {} ({method})",
                pass + 1
            );
            if method == "copy" {
                copy_time += plain_copy(&client, &table, &batches).await?;
            } else {
                let copy = CopyCommand::from_firehose(&table, None, None)
                    .map_err(|e| BenchHttpError::InvalidArgument(e.to_string()))?;
                let config = PostgresSinkConfig::new(jdbc.clone(), &user, &password, copy);
                sink_time += through_sink(config, &batches).await?;
            }
            let count = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(failed("counting"))?
                .try_get::<_, i64>(0)
                .map_err(failed("counting"))?;
            if count != i64::try_from(rows).unwrap_or(i64::MAX) {
                return Err(BenchHttpError::Delivery(format!(
                    "{table} holds {count} rows after pass {}, expected {rows}",
                    pass + 1
                )));
            }
        }
        let per_sec = |time: Duration| 2.0 * rows as f64 / time.as_secs_f64().max(1e-9);
        let (copy_rps, sink_rps) = (per_sec(copy_time), per_sec(sink_time));
        Ok::<Report, BenchHttpError>(Report {
            target: format!(
                "PostgreSQL at {host}:{port}/{database}{}",
                if cluster.is_some() {
                    " (throwaway cluster started by this run)"
                } else {
                    ""
                }
            ),
            rows,
            batches: sizes.0,
            row_bytes: sizes.1 / rows.max(1),
            copy_rows_per_sec: copy_rps,
            sink_rows_per_sec: sink_rps,
            ratio: sink_rps / copy_rps,
            goal_met: sink_rps / copy_rps >= 0.8,
        })
    })?;
    drop(cluster);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "hydrant bench deliver --dest postgres  {}; {} rows of ~{} B in {} batches of <= 5 MiB; \
         passes copy, sink, sink, copy",
        report.target, report.rows, report.row_bytes, report.batches
    )?;
    writeln!(
        out,
        "plain COPY     {:>12.0} rows/s",
        report.copy_rows_per_sec
    )?;
    writeln!(
        out,
        "PostgresSink   {:>12.0} rows/s",
        report.sink_rows_per_sec
    )?;
    writeln!(
        out,
        "ratio          {:>12.2}  (goal >= 0.8: {})",
        report.ratio,
        if report.goal_met { "met" } else { "NOT met" }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_pipe_lines_cut_into_five_mib_batches() {
        let r = row(7);
        assert_eq!(r.iter().filter(|b| **b == b'|').count(), 3);
        assert_eq!(r.last(), Some(&b'\n'));
        let b = batches(120_000, "x");
        assert!(b.len() >= 2);
        assert!(b.iter().all(|b| b.data_bytes() <= BATCH_BYTES_MAX as u64));
        assert_eq!(b.iter().map(|b| b.records.len()).sum::<usize>(), 120_000);
        assert_eq!(b[1].identity.first_lsn, b[0].identity.last_lsn + 1);
    }
}
