//! The last hour of every stream, in memory, at 10-second resolution: what the stream page
//! charts.
//!
//! A sampler ([`History::tick`], once a second) reads every stream's counters
//! ([`StreamSnapshot`]) and keeps, per stream, the totals at the start of the current step and
//! the data-freshness readings of the step. When a step is over it becomes one [`Point`]
//! (rates from the differences of totals, freshness p50/p99 from the readings, WAL sync p99
//! from the difference of the latency counts) pushed on a ring of at most [`POINTS`]: memory per
//! stream is fixed, whatever the number of records. A stream gone (or re-created: another
//! incarnation) loses its series.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::metrics::LatencyCounts;

use super::snapshot::StreamSnapshot;

/// Length of a step, ms.
pub const STEP_MS: u64 = 10_000;
/// Points kept: one hour.
pub const POINTS: usize = 360;
/// Freshness readings of one step at most (one a second; more if ticked faster).
const READINGS_MAX: usize = 64;

/// One step of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// End of the step, ms since the epoch.
    pub t_ms: u64,
    /// Records accepted per second.
    pub incoming_records_per_s: f64,
    /// Bytes accepted per second.
    pub incoming_bytes_per_s: f64,
    /// Records delivered in the step.
    pub delivered_records: u64,
    /// Successful attempts / attempts in the step (`None`: no attempt).
    pub success: Option<f64>,
    /// Failed attempts in the step.
    pub failed_attempts: u64,
    /// Data freshness p50 and p99 over the step's readings, seconds.
    pub freshness_p50: f64,
    /// See `freshness_p50`.
    pub freshness_p99: f64,
    /// Undelivered records at the end of the step.
    pub backlog_records: u64,
    /// Undelivered bytes (estimate) at the end of the step.
    pub backlog_bytes: u64,
    /// Records written to the error output in the step.
    pub error_output_records: u64,
    /// Mean buffering time of the batches cut in the step, seconds (`None`: none cut).
    pub buffering_s: Option<f64>,
    /// WAL sync latency p99 in the step, seconds (`None`: no sync).
    pub wal_sync_p99_s: Option<f64>,
}

#[derive(Clone, Debug, Default)]
struct Totals {
    at_ms: u64,
    incoming_records: u64,
    incoming_bytes: u64,
    delivered: u64,
    ok: u64,
    failed: u64,
    error_output: u64,
    buffering_ms: u64,
    batches_cut: u64,
    sync: [u64; LatencyCounts::BUCKETS],
}

impl Totals {
    fn of(s: &StreamSnapshot, sync: [u64; LatencyCounts::BUCKETS], at_ms: u64) -> Totals {
        let d = &s.delivery;
        Totals {
            at_ms,
            incoming_records: s.incoming_records,
            incoming_bytes: s.incoming_bytes,
            delivered: d.records,
            ok: d.attempts_ok,
            failed: d.attempts_failed,
            error_output: d.error_output_records,
            buffering_ms: d.buffering_ms_total,
            batches_cut: d.batches_cut,
            sync,
        }
    }
}

#[derive(Debug)]
struct Series {
    incarnation: u64,
    start: Totals,
    freshness: Vec<f64>,
    points: VecDeque<Point>,
}

/// Every stream's series.
#[derive(Debug, Default)]
pub struct History {
    series: Mutex<HashMap<String, Series>>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Data freshness of a snapshot at `now_ms`, seconds (0 when caught up).
#[must_use]
pub fn freshness_s(s: &StreamSnapshot, now_ms: u64) -> f64 {
    match s.delivery.oldest_undelivered_ms {
        0 => 0.0,
        t => now_ms.saturating_sub(t) as f64 / 1000.0,
    }
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Series>> {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one reading of every stream at `now_ms`; closes the steps that are over.
    /// `sync_counts` gives a stream's WAL sync latency counts.
    pub fn tick(
        &self,
        streams: &[StreamSnapshot],
        now_ms: u64,
        sync_counts: impl Fn(&str) -> Arc<LatencyCounts>,
    ) {
        let mut all = self.lock();
        all.retain(|name, _| streams.iter().any(|s| &s.name == name));
        for s in streams {
            let sync = sync_counts(&s.name).read();
            // A new series starts from zero, not from the counters' first reading: they count
            // from the stream's opening, and records taken before the first reading (a put
            // within a second of CreateDeliveryStream) belong to the first step.
            let fresh = || Series {
                incarnation: s.incarnation,
                start: Totals {
                    at_ms: now_ms,
                    ..Totals::default()
                },
                freshness: Vec::new(),
                points: VecDeque::new(),
            };
            let series = all.entry(s.name.clone()).or_insert_with(fresh);
            if series.incarnation != s.incarnation {
                *series = fresh();
            }
            if series.freshness.len() < READINGS_MAX {
                series.freshness.push(freshness_s(s, now_ms));
            }
            if now_ms.saturating_sub(series.start.at_ms) < STEP_MS {
                continue;
            }
            let end = Totals::of(s, sync, now_ms);
            let point = step(&series.start, &end, &mut series.freshness, s);
            if series.points.len() == POINTS {
                series.points.pop_front();
            }
            series.points.push_back(point);
            debug_assert!(series.points.len() <= POINTS);
            series.start = end;
            series.freshness.clear();
        }
    }

    /// A stream's points, oldest first.
    #[must_use]
    pub fn points(&self, name: &str) -> Vec<Point> {
        self.lock()
            .get(name)
            .map(|s| s.points.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Delivery attempts that failed in the last hour: those of the points kept, and those of
    /// the step in progress (from `now`, the stream's snapshot).
    #[must_use]
    pub fn failed_last_hour(&self, now: &StreamSnapshot) -> u64 {
        self.lock().get(&now.name).map_or(0, |s| {
            let current = now.delivery.attempts_failed.saturating_sub(s.start.failed);
            s.points.iter().map(|p| p.failed_attempts).sum::<u64>() + current
        })
    }
}

fn step(a: &Totals, b: &Totals, freshness: &mut [f64], s: &StreamSnapshot) -> Point {
    let secs = (b.at_ms.saturating_sub(a.at_ms) as f64 / 1000.0).max(0.001);
    let d = |x: u64, y: u64| y.saturating_sub(x);
    let ok = d(a.ok, b.ok);
    let failed = d(a.failed, b.failed);
    let cut = d(a.batches_cut, b.batches_cut);
    freshness.sort_by(f64::total_cmp);
    Point {
        t_ms: b.at_ms,
        incoming_records_per_s: d(a.incoming_records, b.incoming_records) as f64 / secs,
        incoming_bytes_per_s: d(a.incoming_bytes, b.incoming_bytes) as f64 / secs,
        delivered_records: d(a.delivered, b.delivered),
        success: (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64),
        failed_attempts: failed,
        freshness_p50: quantile(freshness, 0.5),
        freshness_p99: quantile(freshness, 0.99),
        backlog_records: s.durable_lsn.saturating_sub(s.delivery.cursor),
        backlog_bytes: s.backlog_bytes,
        error_output_records: d(a.error_output, b.error_output),
        buffering_s: (cut > 0)
            .then(|| d(a.buffering_ms, b.buffering_ms) as f64 / cut as f64 / 1000.0),
        wal_sync_p99_s: LatencyCounts::quantile(&a.sync, &b.sync, 0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::snapshot::DeliverySnapshot;
    use crate::registry::StreamStatus;

    fn snap(name: &str, incoming: u64, delivered: u64) -> StreamSnapshot {
        StreamSnapshot {
            name: name.into(),
            incarnation: 1,
            status: StreamStatus::Active,
            source: "Direct PUT".into(),
            failure: None,
            destination: serde_json::json!({}),
            tags: vec![],
            version_id: 1,
            incoming_records: incoming,
            incoming_bytes: incoming * 10,
            disk_bytes: 0,
            budget_bytes: None,
            durable_lsn: incoming,
            backlog_bytes: 0,
            delivery: DeliverySnapshot {
                records: delivered,
                cursor: delivered,
                ..DeliverySnapshot::default()
            },
        }
    }

    #[test]
    fn steps_of_ten_seconds_in_a_ring_of_an_hour() {
        let h = History::default();
        let counts = Arc::new(LatencyCounts::default());
        let c = |_: &str| counts.clone();
        let t0 = 1_000_000;
        for sec in 0..=(POINTS as u64 * 10 + 50) {
            h.tick(&[snap("a", sec * 5, sec * 4)], t0 + sec * 1000, c);
        }
        let p = h.points("a");
        assert_eq!(p.len(), POINTS, "bounded");
        let last = p.last().unwrap();
        assert!((last.incoming_records_per_s - 5.0).abs() < 1e-9, "{last:?}");
        assert_eq!(last.delivered_records, 40);
        assert_eq!(last.backlog_records, last.t_ms / 1000 - t0 / 1000);
        h.tick(&[], t0, c);
        assert!(h.points("a").is_empty(), "a deleted stream's series goes");
        // Records taken before the first reading of a new stream count in its first step.
        h.tick(&[snap("b", 70, 0)], t0, c);
        h.tick(&[snap("b", 70, 0)], t0 + STEP_MS, c);
        let p = h.points("b");
        assert_eq!(p.len(), 1);
        assert!((p[0].incoming_records_per_s - 7.0).abs() < 1e-9, "{p:?}");
    }
}
