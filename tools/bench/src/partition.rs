//! `hydrant bench deliver --partitions N[,N...]`: dynamic partitioning's cost, partitioned
//! against unpartitioned delivery of the same batches in the same run.
//!
//! In process, at the delivery seam (no daemon, no HTTP): batches of 1 KiB JSON records (5 MiB
//! each, the default buffering hint), their `customer_id` drawn from N values, go through what
//! the delivery worker runs for a partitioned ExtendedS3 destination: the `MetadataExtraction`
//! pipeline (`{customer_id: .customer_id}`), the partition buffers kept across batches
//! ([`PartitionBuffers`], 5 MiB per partition, the interval never reached in the run), and an
//! [`ObjectSink`] on a [`LocalStore`] writing each flushed partition as one object under
//! `customer_id=!{partitionKeyFromQuery:customer_id}/` (what is left is flushed at the end); the
//! same batches go through an unpartitioned sink (one object per batch). As the worker does
//! (`engine/src/delivery/worker/partitioned.rs`), a round's objects are written on the runtime
//! while the next batch goes through the pipeline and the buffers, and the round after waits for
//! them. Figures: record MB/s each way, their ratio, the jq cost per record (the pipeline's own
//! counter) and objects per batch, and where the partitioned run's time goes on this thread: the
//! pipeline, the buffers, and waiting for the previous round's writes (the writes' time not
//! hidden behind the next batch's processing). Goal (printed, not asserted): at 20 partitions, at
//! least 0.7 of unpartitioned.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hydrant_sinks::partition::write::first_attempts;
use hydrant_sinks::partition::{BufferRules, KeysProduced, Limits, PartitionBuffers};
use hydrant_sinks::transform::{LambdaSettings, Pipeline};
use hydrant_sinks::{
    Batch, Delivered, LocalStore, ObjectSink, ObjectSinkConfig, Record, Sink, SinkError,
};
use serde::Serialize;
use serde_json::json;

use crate::batch;

/// The worker's `AHEAD_MAX` (`engine/src/delivery/worker/partitioned.rs`): rounds processed
/// while a round's objects are written.
const AHEAD_MAX: usize = 16;
use crate::put::BenchHttpError;

const RECORD_BYTES: usize = 1024;
const BATCH_BYTES: usize = 5 << 20;
const QUERY: &str = "{customer_id: .customer_id}";

/// The figures of one partition count.
#[derive(Debug, Serialize)]
struct Row {
    partitions: usize,
    unpartitioned_mb_per_s: f64,
    partitioned_mb_per_s: f64,
    ratio: f64,
    jq_us_per_record: f64,
    objects_per_batch: f64,
    /// Shares of the partitioned run's time: the pipeline (jq included), of which jq, the
    /// partition buffers, waiting for the objects' writes (what the overlap does not hide).
    pipeline_share: f64,
    jq_share: f64,
    buffers_share: f64,
    writes_share: f64,
}

fn batches(partitions: usize, total_bytes: usize) -> Vec<Batch> {
    let per_batch = BATCH_BYTES / RECORD_BYTES;
    let count = total_bytes.div_ceil(BATCH_BYTES).max(1);
    let mut lsn = 0u64;
    (0..count)
        .map(|b| {
            let records: Vec<Record> = (0..per_batch)
                .map(|i| {
                    let head =
                        json!({"customer_id": format!("cust-{:04}", (i * 7919 + b) % partitions),
                                      "event_time": 1_700_000_000 + i, "msg": ""})
                        .to_string();
                    let mut line = head.into_bytes();
                    line.truncate(line.len() - 2);
                    line.resize(RECORD_BYTES - 3, b'x');
                    line.extend_from_slice(b"\"}\n");
                    lsn += 1;
                    batch::record(lsn, line)
                })
                .collect();
            batch::batch(records)
        })
        .collect()
}

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> BenchHttpError {
    move |source| BenchHttpError::Io { op, source }
}

fn sink_err(e: impl std::fmt::Display) -> BenchHttpError {
    BenchHttpError::Delivery(format!("partition bench: {e}"))
}

/// Runs the partitioned / unpartitioned comparison for each count in `partitions`, writing
/// under `dir`.
///
/// # Errors
/// A [`BenchHttpError`] when the store or the runtime cannot be set up, or a delivery fails.
pub fn run(
    partitions: &[usize],
    dir: &std::path::Path,
    megabytes: usize,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), BenchHttpError> {
    if partitions.iter().any(|n| !(1..=5000).contains(n)) {
        return Err(BenchHttpError::InvalidArgument(
            "--partitions must be 1 to 5000".into(),
        ));
    }
    let runtime = crate::put::runtime(2)?;
    let root: PathBuf = dir.join(format!("partition-bench-{}", std::process::id()));
    let processing = json!({"Enabled": true, "Processors": [{"Type": "MetadataExtraction",
        "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": QUERY},
                       {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]});
    let pipeline = Pipeline::from_firehose(&processing, &LambdaSettings::default())
        .map_err(sink_err)?
        .ok_or_else(|| sink_err("no pipeline"))?
        .with_partitioning(true);
    let mut rows = Vec::new();
    for &n in partitions {
        let work = batches(n, megabytes << 20);
        let bytes: usize = work.iter().map(|b| b.data_bytes() as usize).sum();
        let store = |name: &str| -> Result<Arc<LocalStore>, BenchHttpError> {
            Ok(Arc::new(
                LocalStore::for_bucket(&root.join(format!("{n}-{name}")), "bench")
                    .map_err(sink_err)?,
            ))
        };
        let plain = ObjectSink::new(
            store("plain")?,
            ObjectSinkConfig::from_firehose(Some("plain/"), None, None, None).map_err(sink_err)?,
        );
        let partitioned = ObjectSink::new(
            store("partitioned")?,
            ObjectSinkConfig::partitioned(
                Some("customer_id=!{partitionKeyFromQuery:customer_id}/"),
                Some("errors/!{firehose:error-output-type}/"),
                None,
                None,
                &KeysProduced {
                    query: vec!["customer_id".into()],
                    lambda: false,
                },
                Limits { max_active: 5000 },
            )
            .map_err(sink_err)?,
        );
        let started = Instant::now();
        for b in &work {
            runtime.block_on(plain.deliver(b)).map_err(sink_err)?;
        }
        let plain_s = started.elapsed().as_secs_f64();
        let jq_before = pipeline.stats().jq_nanos.load(Ordering::Relaxed);
        let records_before = pipeline.stats().jq_records.load(Ordering::Relaxed);
        let mut buffers = PartitionBuffers::new(
            BufferRules {
                size_bytes: BATCH_BYTES as u64,
                interval_ms: u64::MAX,
                max_active: 5000,
                memory_bytes: 512 << 20,
            },
            partitioned.config().prefixes.clone(),
            None,
        );
        let started = Instant::now();
        let mut objects = 0u64;
        let (mut pipeline_s, mut buffers_s, mut writes_s) = (0f64, 0f64, 0f64);
        // The previous round's objects, being written while this round is processed.
        let mut in_flight: Option<tokio::task::JoinHandle<Vec<Result<Delivered, SinkError>>>> =
            None;
        let partitioned = Arc::new(partitioned);
        let mut ahead = 0usize;
        for (i, b) in work.iter().enumerate() {
            let stage = Instant::now();
            let processed = runtime
                .block_on(pipeline.process(b.clone(), "arn:aws:firehose:::deliverystream/bench"))
                .map_err(sink_err)?;
            pipeline_s += stage.elapsed().as_secs_f64();
            let stage = Instant::now();
            let last = i + 1 == work.len();
            let round = buffers.add_round(&processed.batch, 0, last);
            objects += round.objects.len() as u64;
            buffers_s += stage.elapsed().as_secs_f64();
            // As the worker prepares rounds ahead while a round's objects are written: a round
            // that flushes nothing does not wait for them, up to AHEAD_MAX rounds; a round that
            // flushes objects waits, then its objects are written on the runtime, several in
            // flight, while the next rounds are processed.
            let writing = in_flight.as_ref().is_some_and(|w| !w.is_finished());
            if round.objects.is_empty() && writing && ahead < AHEAD_MAX {
                ahead += 1;
                continue;
            }
            ahead = 0;
            let stage = Instant::now();
            if let Some(writes) = in_flight.take() {
                for result in runtime.block_on(writes).map_err(sink_err)? {
                    result.map_err(sink_err)?;
                }
            }
            writes_s += stage.elapsed().as_secs_f64();
            if round.objects.is_empty() {
                continue;
            }
            let sink = Arc::clone(&partitioned);
            let round_objects = round.objects;
            in_flight =
                Some(runtime.spawn(async move { first_attempts(&*sink, &round_objects).await }));
        }
        let stage = Instant::now();
        if let Some(writes) = in_flight.take() {
            for result in runtime.block_on(writes).map_err(sink_err)? {
                result.map_err(sink_err)?;
            }
        }
        writes_s += stage.elapsed().as_secs_f64();
        let part_s = started.elapsed().as_secs_f64();
        let jq_ns = pipeline.stats().jq_nanos.load(Ordering::Relaxed) - jq_before;
        let jq_records = pipeline.stats().jq_records.load(Ordering::Relaxed) - records_before;
        let mb = bytes as f64 / 1e6;
        let row = Row {
            partitions: n,
            unpartitioned_mb_per_s: mb / plain_s,
            partitioned_mb_per_s: mb / part_s,
            ratio: plain_s / part_s,
            jq_us_per_record: jq_ns as f64 / 1e3 / jq_records.max(1) as f64,
            objects_per_batch: objects as f64 / work.len() as f64,
            pipeline_share: pipeline_s / part_s,
            jq_share: jq_ns as f64 / 1e9 / part_s,
            buffers_share: buffers_s / part_s,
            writes_share: writes_s / part_s,
        };
        rows.push(row);
        let _ = std::fs::remove_dir_all(root.join(format!("{n}-plain")));
        let _ = std::fs::remove_dir_all(root.join(format!("{n}-partitioned")));
    }
    let _ = std::fs::remove_dir_all(&root);
    if json_out {
        return crate::put::write_json_report(out, &rows);
    }
    writeln!(
        out,
        "dynamic partitioning, in process ({megabytes} MB of 1 KiB JSON records per count, 5 MiB \
         batches, UNCOMPRESSED, local store under {}; jq {QUERY})",
        dir.display()
    )
    .map_err(io_err("write"))?;
    writeln!(
        out,
        "{:>10} {:>14} {:>14} {:>7} {:>12} {:>9}  {:<27} goal",
        "partitions",
        "plain MB/s",
        "partit. MB/s",
        "ratio",
        "jq us/rec",
        "objs/bat",
        "time: pipe(jq)/buf/wait %"
    )
    .map_err(io_err("write"))?;
    for r in &rows {
        let goal = if r.partitions == 20 {
            if r.ratio >= 0.7 {
                ">= 0.7x: met"
            } else {
                ">= 0.7x: NOT met"
            }
        } else {
            "-"
        };
        writeln!(
            out,
            "{:>10} {:>14.1} {:>14.1} {:>6.2}x {:>12.2} {:>9.1}  {:<27} {goal}",
            r.partitions,
            r.unpartitioned_mb_per_s,
            r.partitioned_mb_per_s,
            r.ratio,
            r.jq_us_per_record,
            r.objects_per_batch,
            format!(
                "{:.0}({:.0})/{:.0}/{:.0}",
                r.pipeline_share * 100.0,
                r.jq_share * 100.0,
                r.buffers_share * 100.0,
                r.writes_share * 100.0
            )
        )
        .map_err(io_err("write"))?;
    }
    Ok(())
}
