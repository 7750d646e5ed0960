//! One shard's reader: GetShardIterator from the log's position (or the shard's start), then
//! GetRecords until the shard ends, each batch appended as one frame.
//!
//! Pacing, per shard: at most one GetRecords per [`READ_INTERVAL_MIN_MS`] (Kinesis's 5 reads/s),
//! and after a batch of B bytes none before B / 2 MB/s have passed (Kinesis's 2 MB/s); after a
//! call that found nothing, `poll_interval_ms`. Throttled calls back off exponentially (to 5 s).
//! Every call has a timeout and is retried on the same iterator (kinesalite never answers some
//! calls).
//!
//! KPL aggregates (records that start with the KPL magic and whose MD5 trailer matches) are
//! de-aggregated here, as Firehose does for a Kinesis source: each user record becomes a record
//! of the log with the aggregate's sequence number, its index as sub-sequence number and its own
//! partition key (`deaggregate` below). A record with the magic that is not a valid aggregate is
//! kept whole, as the KCL does.
//!
//! Trimmed data: a shard is resumed `AT_SEQUENCE_NUMBER` of its position (the last record the
//! log holds), not after it. Kinesis returns records in order and trims them in order, so the
//! first record read is the position's own record (skipped) while it is kept, and a later one
//! once retention has removed it: then every record between the two was trimmed before it
//! could be read. That is counted (`hydrant_kinesis_trimmed_total`) and logged with the range
//! ([`check_resume`]); a new iterator after an `ExpiredIteratorException` is checked the same
//! way.
//!
//! The delivery start: records whose approximate arrival is before the delivery stream's
//! creation are skipped. Reading starts at `TRIM_HORIZON` and filters, which is what
//! `AT_TIMESTAMP` does server-side, without kinesalite's hang on an `AT_TIMESTAMP` iterator of a
//! shard with no later record (a closed parent shard would block its children for ever).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use prometheus_client::metrics::counter::Counter;

use super::annex::{sequence_cmp, RecordMeta};
use super::appender::{AppendError, Appender};
use super::client::{classify, CallError};
use super::config::{KinesisSection, READ_INTERVAL_MIN_MS};
use super::metrics::{KinesisMetrics, ShardLabel};
use crate::metrics::StreamLabel;
use hydrant_sinks::transform::{kpl_user_records, KPL_MAGIC};

/// Kinesis's per-shard read throughput, bytes per second.
const SHARD_READ_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;
/// Records per GetRecords (Kinesis's maximum).
const GET_RECORDS_LIMIT: i32 = 10_000;
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a shard reader ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ShardEnd {
    /// The shard is closed and every record of it was read (its children may be read).
    Exhausted,
    /// The shard no longer exists (expired, or the stream was deleted).
    Gone,
    /// The source was stopped.
    Stopped,
    /// The WAL failed: the source cannot go on.
    Failed(String),
}

/// Everything one shard's reader needs.
#[derive(Debug)]
pub struct ShardReader {
    /// The client.
    pub client: Client,
    /// The Kinesis stream's name.
    pub stream_name: String,
    /// The shard.
    pub shard_id: String,
    /// The stream's writer.
    pub appender: Arc<Appender>,
    /// The delivery start (records arriving before it are skipped), ms since the epoch.
    pub start_ms: u64,
    /// Timings.
    pub section: KinesisSection,
    /// Metrics and the delivery stream's label.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The delivery stream.
    pub label: StreamLabel,
    /// Set to `true` to stop.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl ShardReader {
    fn kinesis(&self) -> &KinesisMetrics {
        &self.metrics.kinesis
    }

    fn counter(
        &self,
        f: fn(&KinesisMetrics) -> &prometheus_client::metrics::family::Family<StreamLabel, Counter>,
    ) -> Counter {
        f(self.kinesis()).get_or_create(&self.label).clone()
    }

    /// Sleeps `d` or until stopped; true when stopped.
    async fn pause(&mut self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        let stopped = tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        stopped || *self.stop.borrow()
    }

    /// An iterator at the shard's position (to be checked with [`check_resume`]: the
    /// position is returned as the second value) or at its trim horizon.
    async fn iterator(&mut self) -> Result<(Option<String>, Option<String>), CallError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream_name)
            .shard_id(&self.shard_id);
        let position = self.appender.position(&self.shard_id);
        req = match &position {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let timeout = Duration::from_millis(self.section.call_timeout_ms);
        match tokio::time::timeout(timeout, req.send()).await {
            Err(_) => Err(CallError::Other("GetShardIterator timed out".into())),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(out)) => Ok((out.shard_iterator().map(str::to_string), position)),
        }
    }

    /// Reads the shard to its end (or until stopped).
    pub async fn run(mut self) -> ShardEnd {
        let mut iterator: Option<String> = None;
        // The position the current iterator starts at, until the first record read has been
        // checked against it.
        let mut resume: Option<String> = None;
        let mut backoff = Duration::from_millis(READ_INTERVAL_MIN_MS);
        let mut next_read = Instant::now();
        let shard_label = ShardLabel {
            stream: self.label.stream.clone(),
            shard: self.shard_id.clone(),
        };
        let poll = Duration::from_millis(self.section.poll_interval_ms);
        let call_timeout = Duration::from_millis(self.section.call_timeout_ms);
        loop {
            if *self.stop.borrow() {
                return ShardEnd::Stopped;
            }
            let Some(it) = iterator.clone() else {
                match self.iterator().await {
                    Ok((Some(it), at)) => {
                        iterator = Some(it);
                        resume = at;
                        backoff = Duration::from_millis(READ_INTERVAL_MIN_MS);
                    }
                    Ok((None, _)) => return ShardEnd::Exhausted,
                    Err(CallError::NotFound(_)) => return ShardEnd::Gone,
                    Err(CallError::Throttled) => {
                        self.counter(|k| &k.throttled_get_shard_iterator).inc();
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        if self.pause(backoff).await {
                            return ShardEnd::Stopped;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(stream = %self.label.stream, shard = %self.shard_id, error = ?e, "GetShardIterator failed; retrying");
                        if self.pause(backoff.max(poll)).await {
                            return ShardEnd::Stopped;
                        }
                    }
                }
                continue;
            };
            let wait = next_read.saturating_duration_since(Instant::now());
            if !wait.is_zero() && self.pause(wait).await {
                return ShardEnd::Stopped;
            }
            next_read = Instant::now() + Duration::from_millis(READ_INTERVAL_MIN_MS);
            let call = self
                .client
                .get_records()
                .shard_iterator(&it)
                .limit(GET_RECORDS_LIMIT)
                .send();
            let out = match tokio::time::timeout(call_timeout, call).await {
                // kinesalite leaves some calls unanswered: the same iterator is asked again.
                Err(_) => continue,
                Ok(Err(e)) => {
                    match classify(&e) {
                        CallError::Throttled => {
                            self.counter(|k| &k.throttled_get_records).inc();
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                            next_read = Instant::now() + backoff;
                        }
                        CallError::ExpiredIterator => iterator = None,
                        CallError::NotFound(_) => return ShardEnd::Gone,
                        CallError::Other(m) => {
                            tracing::warn!(stream = %self.label.stream, shard = %self.shard_id, error = %m, "GetRecords failed; retrying");
                            next_read = Instant::now() + poll;
                        }
                    }
                    continue;
                }
                Ok(Ok(out)) => out,
            };
            backoff = Duration::from_millis(READ_INTERVAL_MIN_MS);
            if let Some(ms) = out.millis_behind_latest() {
                self.kinesis()
                    .millis_behind
                    .get_or_create(&shard_label)
                    .set(ms);
            }
            let mut records = out.records();
            if let (Some(at), Some(first)) = (&resume, records.first()) {
                match check_resume(at, first.sequence_number()) {
                    Resume::Kept => records = &records[1..],
                    Resume::Trimmed => {
                        self.counter(|k| &k.trimmed).inc();
                        tracing::error!(
                            stream = %self.label.stream, shard = %self.shard_id,
                            after = %at, before = %first.sequence_number(),
                            "Kinesis records were trimmed before they were read: the shard's \
                             retention passed; every record after sequence number {at} and \
                             before {} is lost",
                            first.sequence_number()
                        );
                    }
                }
                resume = None;
            }
            let mut data = Vec::with_capacity(records.len());
            let mut metas = Vec::with_capacity(records.len());
            let mut bytes = 0u64;
            let mut kinesis_records = 0u64;
            let mut from_aggregates = 0u64;
            for r in records {
                let arrival = r
                    .approximate_arrival_timestamp()
                    .and_then(|t| t.to_millis().ok())
                    .and_then(|t| u64::try_from(t).ok())
                    .unwrap_or(0);
                bytes += r.data().as_ref().len() as u64;
                if arrival < self.start_ms {
                    continue;
                }
                kinesis_records += 1;
                let partition_key = r.partition_key().unwrap_or_default();
                let users = match deaggregate(&self.label.stream, r.data().as_ref()) {
                    Some(users) => {
                        from_aggregates += users.len() as u64;
                        users
                    }
                    None => vec![(partition_key.to_string(), r.data().as_ref().to_vec())],
                };
                for (sub, (pk, d)) in users.into_iter().enumerate() {
                    data.push(d);
                    metas.push(RecordMeta {
                        sequence_number: r.sequence_number().to_string(),
                        subsequence_number: u32::try_from(sub).unwrap_or(u32::MAX),
                        partition_key: pk,
                        approximate_arrival_ms: arrival,
                    });
                }
            }
            let pace = Duration::from_millis(bytes * 1000 / SHARD_READ_BYTES_PER_SEC);
            next_read = next_read.max(Instant::now() + pace);
            if !data.is_empty() {
                let kept: u64 = data.iter().map(|d| d.len() as u64).sum();
                let stop = self.stop.clone();
                let pauses = self.counter(|k| &k.budget_pauses);
                let appended = self
                    .appender
                    .append(&self.shard_id, &data, metas, &|| *stop.borrow(), &|| {
                        pauses.inc();
                    })
                    .await;
                match appended {
                    Ok(()) => {
                        self.counter(|k| &k.read_records).inc_by(kinesis_records);
                        self.counter(|k| &k.read_bytes).inc_by(kept);
                        self.counter(|k| &k.deaggregated_records)
                            .inc_by(from_aggregates);
                    }
                    Err(AppendError::Stopped) => return ShardEnd::Stopped,
                    Err(e) => return ShardEnd::Failed(e.to_string()),
                }
            }
            match out.next_shard_iterator() {
                None => return ShardEnd::Exhausted,
                Some(next) => iterator = Some(next.to_string()),
            }
            if out.records().is_empty() {
                next_read = next_read.max(Instant::now() + poll);
            }
        }
    }
}

/// What the first record read from an iterator at a shard's position says.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// It is the position's own record: still kept, nothing was trimmed (skip it: the log
    /// holds it).
    Kept,
    /// It comes after the position: the position's record, and every record between it and
    /// this one, were trimmed unread.
    Trimmed,
}

/// Compares the first sequence number read from an `AT_SEQUENCE_NUMBER` iterator with the
/// position it was asked for (see the module docs).
#[must_use]
pub fn check_resume(position: &str, first_read: &str) -> Resume {
    match sequence_cmp(first_read, position) {
        std::cmp::Ordering::Equal => Resume::Kept,
        // Kinesis never returns an earlier record from an AT_SEQUENCE_NUMBER iterator; were it
        // to, skipping it would still be right, and nothing was trimmed.
        std::cmp::Ordering::Less => {
            debug_assert!(false, "Kinesis returned {first_read} before {position}");
            Resume::Kept
        }
        std::cmp::Ordering::Greater => Resume::Trimmed,
    }
}

/// The user records of a KPL aggregate, each with its own partition key; `None` when the
/// Kinesis record is not a (valid) aggregate and is kept whole.
fn deaggregate(stream: &str, data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if !data.starts_with(&KPL_MAGIC) {
        return None;
    }
    match kpl_user_records(&bytes::Bytes::copy_from_slice(data)) {
        Ok(None) => None,
        Ok(Some(users)) => Some(
            users
                .into_iter()
                .map(|u| (u.partition_key, u.data.to_vec()))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(stream = %stream, error = %e, "a record with the KPL magic is not a valid aggregate; kept whole");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trim check: the position's own record first is kept (skipped), anything later
    /// means the range between was trimmed; sequence numbers compare as numbers, not text.
    #[test]
    fn a_first_record_past_the_position_means_trimmed() {
        let p = "49590338271490256608559692538361571095921575989136588898";
        assert_eq!(check_resume(p, p), Resume::Kept);
        assert_eq!(
            check_resume(
                p,
                "49590338271490256608559692538361571095921575989136588899"
            ),
            Resume::Trimmed
        );
        assert_eq!(check_resume("99", "100"), Resume::Trimmed);
    }

    #[test]
    fn invalid_aggregates_are_kept_whole() {
        let mut fake = KPL_MAGIC.to_vec();
        fake.extend_from_slice(&[0u8; 20]);
        assert_eq!(deaggregate("s", &fake), None);
        assert_eq!(deaggregate("s", b"plain"), None);
    }
}
