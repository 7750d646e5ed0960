//! `KinesisStreamAsSource`: a delivery stream fed by a Kinesis data stream, exactly once from
//! shard to WAL.
//!
//! Data flow: [`KinesisSource::spawn`] starts one thread per delivery stream, which runs the
//! coordinator (`coordinate`) on the daemon's runtime. The coordinator recovers every shard's
//! position from the WAL's last frame ([`appender::Appender::recover`]), lists the shards
//! (ListShards, every `discovery_interval_ms`), and starts a [`shard::ShardReader`] per shard
//! whose parents (after a split or merge) are exhausted or gone, so per-partition-key order
//! holds across resharding. Each reader appends its GetRecords batches as frames whose annex
//! ([`annex`]) carries the records' Kinesis metadata and every shard's position. Delivery reads
//! the WAL as for DirectPut streams; only a Lambda transform reads the annexes back
//! ([`event`]) for its event's `kinesisRecordMetadata`.
//!
//! A Kinesis stream that does not exist (or cannot be listed) makes the source failed: the
//! description's `FailureDescription` says why and `hydrant_kinesis_source_failed` is 1, and
//! the coordinator keeps trying, so a stream created later is read from the delivery start.
//!
//! Files: [`config`] (`[kinesis]`), [`client`] (the SDK client, error classes), [`annex`] (the
//! frame annex format), [`appender`] (WAL appends and position recovery), [`shard`] (one shard's
//! reader, KPL de-aggregation, the trim check), [`event`] (the records' metadata for a Lambda
//! transform's event), [`metrics`].

pub mod annex;
pub mod appender;
pub mod client;
pub mod config;
pub mod event;
pub mod metrics;
pub mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hydrant_api::source::KinesisStreamSource;
use hydrant_wal::Wal;
use tokio::task::JoinHandle;

use self::appender::Appender;
use self::client::{build_client, classify, CallError};
use self::config::KinesisSection;
use self::shard::{ShardEnd, ShardReader};
use crate::metrics::{Metrics, StreamLabel};

pub use self::config::KinesisSection as Section;
pub use self::metrics::KinesisMetrics;

pub use crate::source::state::SourceState;

/// What a source needs from the engine.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The delivery stream.
    pub stream: String,
    /// The Kinesis stream to read.
    pub source: KinesisStreamSource,
    /// The delivery start (the delivery stream's creation), ms since the epoch.
    pub start_ms: u64,
    /// `[kinesis]`.
    pub section: KinesisSection,
}

/// A running source; [`KinesisSource::stop`] ends it.
#[derive(Debug)]
pub struct KinesisSource {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<SourceState>,
}

impl KinesisSource {
    /// Starts reading `spec.source` into `wal`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        wal: Arc<Wal>,
        spec: SourceSpec,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<KinesisSource> {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(SourceState::default());
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kinesis-{}", spec.stream))
            .spawn(move || runtime.block_on(coordinate(wal, spec, metrics, st, stop_rx)))?;
        Ok(KinesisSource {
            stop,
            thread: Some(thread),
            state,
        })
    }

    /// The shared state (failure).
    #[must_use]
    pub fn state(&self) -> Arc<SourceState> {
        self.state.clone()
    }

    /// Stops every shard reader and waits for them (an append in flight finishes or is
    /// abandoned before it is written; either way the log stays the truth).
    pub fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The coordinator (see the module docs).
async fn coordinate(
    wal: Arc<Wal>,
    spec: SourceSpec,
    metrics: Arc<Metrics>,
    state: Arc<SourceState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let label = StreamLabel {
        stream: spec.stream.clone(),
    };
    let failed = metrics.kinesis.source_failed.get_or_create(&label).clone();
    let fail = |why: String| {
        if state.failure().as_ref() != Some(&why) {
            tracing::error!(stream = %spec.stream, error = %why, "the Kinesis source cannot read");
        }
        failed.set(1);
        state.set(Some(why));
    };
    let appender = match Appender::recover(wal) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            fail(format!(
                "recovering the Kinesis positions from the WAL failed: {e}"
            ));
            return;
        }
    };
    tracing::info!(stream = %spec.stream, positions = ?appender.positions(), "Kinesis source starting");
    let client = match build_client(&spec.section, spec.source.region()) {
        Ok(c) => c,
        Err(e) => {
            fail(e);
            return;
        }
    };
    let stream_name = spec.source.stream_name().to_string();
    let interval = Duration::from_millis(spec.section.discovery_interval_ms);
    let call_timeout = Duration::from_millis(spec.section.call_timeout_ms);
    let mut running: BTreeMap<String, JoinHandle<ShardEnd>> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        // Reap finished readers.
        let finished: Vec<String> = running
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for shard in finished {
            let Some(h) = running.remove(&shard) else {
                continue;
            };
            match h.await {
                Ok(ShardEnd::Exhausted | ShardEnd::Gone) => {
                    tracing::info!(stream = %spec.stream, shard = %shard, "shard read to its end");
                    done.insert(shard);
                }
                Ok(ShardEnd::Stopped) => {}
                Ok(ShardEnd::Failed(e)) => {
                    fail(format!("appending to the stream's WAL failed: {e}"));
                    stop_all(running).await;
                    return;
                }
                Err(e) => {
                    tracing::error!(stream = %spec.stream, shard = %shard, error = %e, "shard reader panicked; restarting it")
                }
            }
        }
        match list_shards(&client, &stream_name, call_timeout).await {
            Ok(shards) => {
                if state.failure().is_some() {
                    tracing::info!(stream = %spec.stream, "the Kinesis stream is readable again");
                }
                state.set(None);
                failed.set(0);
                let listed: BTreeSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
                for s in &shards {
                    if running.contains_key(&s.id) || done.contains(&s.id) {
                        continue;
                    }
                    // Children wait for their parents: per-partition-key order across a split
                    // or merge.
                    let parents_done = s
                        .parents
                        .iter()
                        .filter(|p| listed.contains(p.as_str()))
                        .all(|p| done.contains(p));
                    if !parents_done {
                        continue;
                    }
                    let reader = ShardReader {
                        client: client.clone(),
                        stream_name: stream_name.clone(),
                        shard_id: s.id.clone(),
                        appender: appender.clone(),
                        start_ms: spec.start_ms,
                        section: spec.section.clone(),
                        metrics: metrics.clone(),
                        label: label.clone(),
                        stop: stop.clone(),
                    };
                    tracing::info!(stream = %spec.stream, shard = %s.id, from = ?appender.position(&s.id), "reading shard");
                    running.insert(s.id.clone(), tokio::spawn(reader.run()));
                }
            }
            Err(CallError::NotFound(m)) => fail(format!(
                "Kinesis stream {} was not found: {m}",
                spec.source.kinesis_stream_arn
            )),
            Err(CallError::Throttled) => {
                metrics
                    .kinesis
                    .throttled_describe_stream
                    .get_or_create(&label)
                    .inc();
            }
            Err(e) => fail(format!(
                "Kinesis stream {} cannot be listed: {e:?}",
                spec.source.kinesis_stream_arn
            )),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => {
                stop_all(running).await;
                return;
            }
        }
    }
}

async fn stop_all(running: BTreeMap<String, JoinHandle<ShardEnd>>) {
    for (_, h) in running {
        let _ = h.await;
    }
}

/// A shard as listed.
#[derive(Debug)]
struct ListedShard {
    id: String,
    /// `ParentShardId` and `AdjacentParentShardId`.
    parents: Vec<String>,
}

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    timeout: Duration,
) -> Result<Vec<ListedShard>, CallError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // With a NextToken, ListShards refuses the stream name.
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let page = match tokio::time::timeout(timeout, req.send()).await {
            Err(_) => return Err(CallError::Other("ListShards timed out".into())),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(p)) => p,
        };
        for s in page.shards() {
            out.push(ListedShard {
                id: s.shard_id().to_string(),
                parents: s
                    .parent_shard_id()
                    .into_iter()
                    .chain(s.adjacent_parent_shard_id())
                    .map(str::to_string)
                    .collect(),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}
