//! What the console reads of a stream at one moment: its record, its WAL's extent, its intake
//! counters and its destination's delivery counters. Taken by [`crate::Engine::console_snapshot`]
//! under the streams' read lock, from atomics and the WAL's state lock only: it never waits for
//! I/O.

use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::delivery::recent::FailureEntry;
use crate::delivery::DeliveryStats;
use crate::registry::StreamStatus;

/// One stream.
#[derive(Clone, Debug)]
pub struct StreamSnapshot {
    /// The name.
    pub name: String,
    /// The incarnation (a re-created stream of the same name has another).
    pub incarnation: u64,
    /// CREATING, ACTIVE, ...
    pub status: StreamStatus,
    /// Where the records come from: `Direct PUT`, or the Kinesis stream's ARN.
    pub source: String,
    /// Describe's `FailureDescription.Details`, when the stream has one (a failed create, a
    /// Kinesis stream that cannot be read).
    pub failure: Option<String>,
    /// The destination as Describe shows it (`...DestinationDescription`).
    pub destination: Value,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// The stream's `VersionId`.
    pub version_id: u64,
    /// Records accepted since the daemon started.
    pub incoming_records: u64,
    /// Record bytes accepted since the daemon started.
    pub incoming_bytes: u64,
    /// Bytes of WAL segment files.
    pub disk_bytes: u64,
    /// The stream's disk budget.
    pub budget_bytes: Option<u64>,
    /// One past the last durable LSN.
    pub durable_lsn: u64,
    /// Frame bytes at or past the destination's cursor, prorated within the segment holding the
    /// cursor (an estimate: frames carry a few bytes of framing).
    pub backlog_bytes: u64,
    /// The destination's counters.
    pub delivery: DeliverySnapshot,
}

/// A destination's counters, since the daemon started.
#[derive(Clone, Debug, Default)]
pub struct DeliverySnapshot {
    /// Records delivered.
    pub records: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Successful attempts.
    pub attempts_ok: u64,
    /// Failed attempts.
    pub attempts_failed: u64,
    /// Records in the error output.
    pub error_output_records: u64,
    /// Every LSN below is delivered.
    pub cursor: u64,
    /// Arrival (ms) of the oldest undelivered record, 0 when caught up.
    pub oldest_undelivered_ms: u64,
    /// `STATE_*` of the worker.
    pub state: u64,
    /// Sum of buffering times of batches cut, ms.
    pub buffering_ms_total: u64,
    /// Batches cut.
    pub batches_cut: u64,
    /// When the last attempt succeeded / failed (ms, 0: never).
    pub last_ok_ms: u64,
    /// See `last_ok_ms`.
    pub last_failed_ms: u64,
    /// The latest failures, newest first.
    pub recent: Vec<FailureEntry>,
}

impl DeliverySnapshot {
    /// Reads a worker's counters (the failure ring only when `with_recent`).
    #[must_use]
    pub fn read(stats: &DeliveryStats, with_recent: bool) -> DeliverySnapshot {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let recent = stats
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        DeliverySnapshot {
            records: load(&stats.records),
            bytes: load(&stats.bytes),
            attempts_ok: load(&stats.attempts_ok),
            attempts_failed: load(&stats.attempts_failed),
            error_output_records: load(&stats.error_output_records),
            cursor: load(&stats.cursor),
            oldest_undelivered_ms: load(&stats.oldest_undelivered_ms),
            state: load(&stats.state),
            buffering_ms_total: load(&stats.buffering_ms_total),
            batches_cut: load(&stats.batches_cut),
            last_ok_ms: recent.last_ok_ms,
            last_failed_ms: recent.last_failed_ms,
            recent: if with_recent {
                recent.newest_first()
            } else {
                Vec::new()
            },
        }
    }
}

/// Frame bytes of `segments` at or past `cursor` (see [`StreamSnapshot::backlog_bytes`]).
#[must_use]
pub fn backlog_bytes(segments: &[hydrant_wal::SegmentInfo], cursor: u64) -> u64 {
    segments
        .iter()
        .map(|s| {
            let (base, end) = (s.base_lsn.0, s.end_lsn.0);
            if end <= cursor || end <= base {
                0
            } else if base >= cursor {
                s.data_bytes
            } else {
                let part = (end - cursor) as u128 * u128::from(s.data_bytes) / (end - base) as u128;
                u64::try_from(part).unwrap_or(u64::MAX)
            }
        })
        .sum()
}

/// What a stream is doing, in one word for the streams page: the registry's status, or for an
/// ACTIVE stream whose delivery stopped or whose last attempt failed, that.
#[must_use]
pub fn health(s: &StreamSnapshot) -> (&'static str, &'static str) {
    use crate::delivery::{STATE_DELIVERING, STATE_STARTING};
    match s.status {
        StreamStatus::Active => {
            if s.delivery.state == STATE_STARTING {
                ("ACTIVE · DELIVERY STARTING", "busy")
            } else if s.delivery.state != STATE_DELIVERING {
                ("ACTIVE · DELIVERY STOPPED", "bad")
            } else if s.delivery.last_failed_ms > s.delivery.last_ok_ms {
                ("ACTIVE · DELIVERY FAILING", "bad")
            } else {
                ("ACTIVE", "ok")
            }
        }
        StreamStatus::CreatingFailed => ("CREATING_FAILED", "bad"),
        other => (other.as_str(), "busy"),
    }
}

/// The destination in a few words: kind and target.
#[must_use]
pub fn destination_summary(d: &Value, local_store: bool) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    if let Some(x) = d
        .get("ExtendedS3DestinationDescription")
        .or_else(|| d.get("S3DestinationDescription"))
    {
        let bucket = s(&x["BucketARN"]);
        let bucket = bucket.trim_start_matches("arn:aws:s3:::");
        let kind = if local_store { "Local store" } else { "S3" };
        return (kind.into(), format!("s3://{bucket}/{}", s(&x["Prefix"])));
    }
    if let Some(x) = d.get("RedshiftDestinationDescription") {
        return (
            "Redshift (PostgreSQL)".into(),
            format!(
                "{} → {}",
                s(&x["ClusterJDBCURL"]),
                s(&x["CopyCommand"]["DataTableName"])
            ),
        );
    }
    for key in [
        "AmazonopensearchserviceDestinationDescription",
        "ElasticsearchDestinationDescription",
    ] {
        if let Some(x) = d.get(key) {
            let at = if x["ClusterEndpoint"].is_string() {
                s(&x["ClusterEndpoint"])
            } else {
                s(&x["DomainARN"])
            };
            return (
                "OpenSearch".into(),
                format!("{at} → {}", s(&x["IndexName"])),
            );
        }
    }
    if let Some(x) = d.get("HttpEndpointDestinationDescription") {
        return (
            "HTTP endpoint".into(),
            s(&x["EndpointConfiguration"]["Url"]),
        );
    }
    ("Other".into(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hydrant_wal::{Lsn, SegmentInfo};

    fn seg(base: u64, end: u64, bytes: u64) -> SegmentInfo {
        SegmentInfo {
            path: std::path::PathBuf::new(),
            base_lsn: Lsn(base),
            end_lsn: Lsn(end),
            sealed: true,
            frame_count: 1,
            data_bytes: bytes,
            file_bytes: bytes,
            first_arrival_ms: 0,
            last_arrival_ms: 0,
        }
    }

    #[test]
    fn backlog_counts_segments_past_the_cursor_and_part_of_the_one_holding_it() {
        let segs = [seg(0, 10, 1000), seg(10, 20, 1000), seg(20, 20, 0)];
        assert_eq!(backlog_bytes(&segs, 0), 2000);
        assert_eq!(backlog_bytes(&segs, 15), 500);
        assert_eq!(backlog_bytes(&segs, 20), 0);
    }
}
