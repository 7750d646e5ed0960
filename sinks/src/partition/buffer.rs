//! Per-partition buffers across batches: Firehose's "each active partition buffers on its own".
//!
//! # Data flow
//!
//! ```text
//!  round (a batch cut from the log, transformed, one PartitionKeys per record)
//!    │  PartitionBuffers::add_round(round, cut_ms, flush_all)
//!    │    per record, in LSN order:
//!    │      keys → partition (the Prefix evaluated on the keys alone: its canonical form)
//!    │      no partition (a key missing, prefix unwritable)  → failed: partitioning-failed
//!    │      a new partition while `max_active` are open      → failed: activePartitionExceeded
//!    │      the partition would pass SizeInMBs               → that partition flushed first
//!    │      all buffers together would pass `memory_bytes`   → the largest one flushed first
//!    │    at the round's end, flushed: partitions whose oldest record is `interval_ms` old at
//!    │    `cut_ms`, those at SizeInMBs, and all of them when `flush_all`
//!    ▼
//!  RoundOutput { objects: one Batch per flushed partition, failed }
//! ```
//!
//! A flushed partition is a [`Batch`] holding only that partition's records (copied into one
//! buffer, [`Batch::contiguous`]) whose identity is `(first LSN, last LSN)` of those records:
//! delivered by the [`crate::ObjectSink`] it becomes one object under the partition's Prefix.
//! A partition is active from its first buffered record until it is flushed.
//!
//! # Buffer reuse
//!
//! A flushed partition's buffer goes to the sink inside its batch; a clone of it is kept as a
//! spare, and when the sink has dropped the batch (the spare is the buffer's only owner) the next
//! partition to open takes it back with its pages already faulted in. Fresh multi-MiB buffers per
//! object, page-faulted and zeroed by the kernel and grown by doubling, were the largest cost of
//! the partitioned path. Spares hold at most a quarter of `memory_bytes` beside the open
//! partitions' data (so a destination holds at most 1.25x `memory_bytes` of buffers), and are all
//! dropped when a round finds no partition open and brings no record (an idle destination keeps
//! no memory).
//!
//! # Determinism (what exactly-once rests on)
//!
//! Every decision is a pure function of the rounds given (their records, keys, `cut_ms` and
//! `flush_all`) and of the [`BufferRules`]: no clock is read here. So the same rounds, given again
//! from an empty state, flush the same partitions with the same records under the same
//! identities, hence the same object keys. The delivery worker keeps the rounds since the buffers
//! were last empty in its checkpoint and, after a restart, gives them again (see the engine's
//! `delivery` module). Two objects of one partition hold disjoint LSN ranges (a partition is never
//! cut between two records of one LSN), and two partitions differ in their evaluated Prefix, so
//! no two objects share a key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::failed::{FailedRecord, FailureDetail};
use crate::keys::S3Prefixes;
use crate::object::PartitionStats;
use crate::partition::{PartitionKeys, SharedKeys};
use crate::{Batch, BatchIdentity, Record};

/// When partitions are flushed, and how many may be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferRules {
    /// `BufferingHints.SizeInMBs` in bytes: a partition is flushed before it would pass it.
    pub size_bytes: u64,
    /// `BufferingHints.IntervalInSeconds` in ms: a partition whose oldest record is this old at a
    /// round's cut is flushed.
    pub interval_ms: u64,
    /// The most partitions open at once (`[delivery] max_active_partitions`).
    pub max_active: usize,
    /// The most bytes all open partitions hold together: past it the largest is flushed early
    /// (memory is bounded; Firehose's own limit is not published).
    pub memory_bytes: u64,
}

/// What a round flushed and failed.
#[derive(Debug, Default)]
pub struct RoundOutput {
    /// One batch per flushed partition, in flush order.
    pub objects: Vec<Batch>,
    /// Records without a partition (`partitioning-failed`) or over the active limit
    /// (`activePartitionExceeded`), in LSN order.
    pub failed: Vec<FailedRecord>,
}

/// One open partition.
#[derive(Debug)]
struct Part {
    /// Its keys (the first record's; every record of the part evaluates to the same Prefix).
    keys: SharedKeys,
    /// Its records' bytes back to back.
    data: BytesMut,
    /// Per record: LSN, sub, arrival, end offset in `data`.
    records: Vec<(u64, u32, u64, usize)>,
    /// The earliest arrival among its records.
    oldest_ms: u64,
}

impl Part {
    fn last_lsn(&self) -> Option<u64> {
        self.records.last().map(|r| r.0)
    }
}

/// Where the records of one key set go in a round.
#[derive(Clone, Debug)]
enum Slot {
    /// The partition with this canonical prefix.
    Partition(Arc<str>),
    /// No partition: the error's code and message.
    Failed(&'static str, String),
}

/// The open partitions of one destination (see the module docs).
#[derive(Debug)]
pub struct PartitionBuffers {
    rules: BufferRules,
    prefixes: S3Prefixes,
    stats: Option<Arc<PartitionStats>>,
    /// Open partitions by opening order (a sequence number), so every walk is deterministic.
    parts: BTreeMap<u64, Part>,
    /// Sequence number of the open partition of each canonical prefix.
    open: HashMap<Arc<str>, u64>,
    next_seq: u64,
    /// Bytes held by all open partitions.
    bytes: u64,
    /// Buffers of flushed partitions, to be reused once their batch is dropped (see the module
    /// docs). Their capacities add up to `spare_bytes`.
    spares: Vec<(Bytes, u64)>,
    /// The sum of the spares' capacities. Invariant: `spare_bytes <= rules.memory_bytes / 4`.
    spare_bytes: u64,
}

/// The first capacity of a partition's buffer (it grows by doubling up to the size hint).
/// Small: with many partitions most hold little, and a large first buffer would cost a fresh
/// (transparent huge) page per partition; grown buffers are what the spares keep.
const FIRST_CAPACITY: usize = 64 << 10;
/// The largest first capacity of a partition reopened right after a flush for its size.
const HOT_CAPACITY_MAX: usize = 16 << 20;

/// The identity the canonical prefix is evaluated under: only the keys vary it.
fn canonical_identity() -> BatchIdentity {
    BatchIdentity {
        stream: String::new(),
        incarnation: String::new(),
        destination_id: String::new(),
        first_lsn: 0,
        last_lsn: 0,
    }
}

impl PartitionBuffers {
    /// Empty buffers for a destination whose Prefix is `prefixes` (partitioned).
    pub fn new(
        rules: BufferRules,
        prefixes: S3Prefixes,
        stats: Option<Arc<PartitionStats>>,
    ) -> PartitionBuffers {
        PartitionBuffers {
            rules,
            prefixes,
            stats,
            parts: BTreeMap::new(),
            open: HashMap::new(),
            next_seq: 0,
            bytes: 0,
            spares: Vec::new(),
            spare_bytes: 0,
        }
    }

    /// The rules.
    pub fn rules(&self) -> BufferRules {
        self.rules
    }

    /// Whether no partition is open (no record is held).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Partitions open now.
    pub fn active(&self) -> usize {
        self.parts.len()
    }

    /// Bytes of record data the open partitions hold together (bounded by
    /// [`BufferRules::memory_bytes`], give or take the records of one LSN).
    pub fn held_bytes(&self) -> u64 {
        self.bytes
    }

    /// When the earliest open partition is due by the interval (ms since the epoch).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.parts
            .values()
            .map(|p| p.oldest_ms.saturating_add(self.rules.interval_ms))
            .min()
    }

    /// Drops every open partition (a worker starting over from its checkpoint).
    pub fn clear(&mut self) {
        self.drop_spares();
        self.parts.clear();
        self.open.clear();
        self.bytes = 0;
        self.publish();
    }

    fn publish(&self) {
        if let Some(stats) = &self.stats {
            stats
                .partition_count
                .store(self.parts.len() as u64, Ordering::Relaxed);
        }
    }

    /// Where records with `keys` go, for a record of `round` that arrived at `arrival_ms`.
    fn slot(&self, round: &BatchIdentity, arrival_ms: u64, keys: &PartitionKeys) -> Slot {
        // The prefix must evaluate to a writable key for this record (as any object of it will
        // be named after a time near its arrival), and its canonical form names the partition.
        if let Err(e) = self.prefixes.partition_prefix(round, arrival_ms, keys) {
            return Slot::Failed(e.error_code(), e.to_string());
        }
        match self
            .prefixes
            .partition_prefix(&canonical_identity(), 0, keys)
        {
            Ok(canonical) => Slot::Partition(Arc::from(canonical)),
            Err(e) => Slot::Failed(e.error_code(), e.to_string()),
        }
    }

    /// Adds a transformed round (its records with [`Batch::partition_keys`]) and flushes by the
    /// rules; `cut_ms` is when the round was cut (recorded with it, so a replay decides alike),
    /// `flush_all` empties every buffer at the round's end.
    pub fn add_round(&mut self, round: &Batch, cut_ms: u64, flush_all: bool) -> RoundOutput {
        debug_assert!(
            round.partition_keys.is_empty() || round.partition_keys.len() == round.records.len(),
            "one partition key set per record"
        );
        let mut out = RoundOutput::default();
        let none = PartitionKeys::default();
        let mut slots: HashMap<&PartitionKeys, Slot> = HashMap::new();
        // The previous record's key set and slot: records of one partition usually share one
        // key set allocation, which then needs no hashing.
        let mut previous: Option<(&SharedKeys, Slot)> = None;
        let mut exceeded = 0u64;
        let mut previous_lsn = None;
        for (i, record) in round.records.iter().enumerate() {
            let shared = round.partition_keys.get(i);
            let keys = shared.map_or(&none, |k| &**k);
            let slot = match (&previous, shared) {
                (Some((p, slot)), Some(s)) if Arc::ptr_eq(p, s) => slot.clone(),
                _ => {
                    let slot = slots
                        .entry(keys)
                        .or_insert_with(|| self.slot(&round.identity, record.arrival_ms, keys))
                        .clone();
                    previous = shared.map(|s| (s, slot.clone()));
                    slot
                }
            };
            let canonical = match slot {
                Slot::Partition(c) => c,
                Slot::Failed(code, message) => {
                    out.failed
                        .push(failed(record, code, message, FailureDetail::Partitioning));
                    continue;
                }
            };
            // The first record of an LSN that has a partition: a record of the same LSN that
            // failed before it must not skip the memory check.
            let new_lsn = previous_lsn != Some(record.lsn);
            previous_lsn = Some(record.lsn);
            let len = record.data.len() as u64;
            // Memory: at an LSN boundary, flush the largest partitions until this record fits.
            if new_lsn {
                while self.bytes + len > self.rules.memory_bytes && !self.parts.is_empty() {
                    let largest = self
                        .parts
                        .iter()
                        .max_by(|a, b| a.1.data.len().cmp(&b.1.data.len()).then(b.0.cmp(a.0)))
                        .map(|(seq, _)| *seq);
                    if let Some(seq) = largest {
                        out.objects.push(self.flush(seq, round));
                    }
                }
            }
            let seq = match self.open.get(&canonical) {
                Some(&seq) => {
                    let part = &self.parts[&seq];
                    let full = !part.data.is_empty()
                        && part.data.len() as u64 + len > self.rules.size_bytes
                        && part.last_lsn() != Some(record.lsn);
                    if full {
                        out.objects.push(self.flush(seq, round));
                        // Flushed for its size: it will likely fill again, so its new buffer
                        // is made that large at once instead of grown by doubling.
                        self.open_part(canonical, shared, keys, true)
                    } else {
                        seq
                    }
                }
                None if self.parts.len() >= self.rules.max_active => {
                    exceeded += 1;
                    out.failed.push(failed(
                        record,
                        "DynamicPartitioning.ActivePartitionExceeded",
                        format!(
                            "the record's partition would exceed the limit of {} active \
                             partitions",
                            self.rules.max_active
                        ),
                        FailureDetail::ActivePartitionExceeded,
                    ));
                    continue;
                }
                None => self.open_part(canonical, shared, keys, false),
            };
            let Some(part) = self.parts.get_mut(&seq) else {
                continue;
            };
            part.data.extend_from_slice(&record.data);
            part.records
                .push((record.lsn, record.sub, record.arrival_ms, part.data.len()));
            part.oldest_ms = part.oldest_ms.min(record.arrival_ms);
            self.bytes += len;
            debug_assert!(self.parts.len() <= self.rules.max_active);
        }
        let due: Vec<u64> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                flush_all
                    || p.oldest_ms.saturating_add(self.rules.interval_ms) <= cut_ms
                    || p.data.len() as u64 >= self.rules.size_bytes
            })
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            out.objects.push(self.flush(seq, round));
        }
        debug_assert!(!flush_all || self.parts.is_empty());
        if round.records.is_empty() && self.parts.is_empty() {
            self.drop_spares();
        }
        debug_assert_eq!(
            self.bytes,
            self.parts
                .values()
                .map(|p| p.data.len() as u64)
                .sum::<u64>()
        );
        if let Some(stats) = &self.stats {
            stats
                .exceeded_records
                .fetch_add(exceeded, Ordering::Relaxed);
        }
        self.publish();
        out
    }

    /// A batch whose records all have one key set (a flushed partition's batch, as the delivery
    /// worker gives the sink), split as `add_round(batch, 0, true)` on empty buffers splits it,
    /// without copying its records into a partition buffer again: one object of all its records,
    /// or all of them failed. `None` for any other batch.
    fn one_partition(&self, batch: &Batch) -> Option<RoundOutput> {
        debug_assert!(self.is_empty());
        let (keys, rest) = batch.partition_keys.split_first()?;
        let (first, _) = batch.records.split_first()?;
        let last = batch.records.last()?;
        let one_key_set = rest.len() + 1 == batch.records.len()
            && rest.iter().all(|k| Arc::ptr_eq(k, keys) || **k == **keys);
        let ordered = batch
            .records
            .windows(2)
            .all(|w| (w[0].lsn, w[0].sub) < (w[1].lsn, w[1].sub));
        if !one_key_set || !ordered || self.rules.max_active == 0 {
            return None;
        }
        let mut out = RoundOutput::default();
        match self.slot(&batch.identity, first.arrival_ms, keys) {
            Slot::Failed(code, message) => {
                out.failed = batch
                    .records
                    .iter()
                    .map(|r| failed(r, code, message.clone(), FailureDetail::Partitioning))
                    .collect();
            }
            Slot::Partition(_) => out.objects.push(Batch {
                identity: BatchIdentity {
                    first_lsn: first.lsn,
                    last_lsn: last.lsn,
                    ..batch.identity.clone()
                },
                stream_version: batch.stream_version,
                oldest_arrival_ms: batch.records.iter().map(|r| r.arrival_ms).min()?,
                records: batch.records.clone(),
                contiguous: batch.contiguous_data(),
                partition_keys: vec![Arc::clone(keys); batch.records.len()],
            }),
        }
        self.publish();
        Some(out)
    }

    /// A buffer for a partition that opens: a spare the sink no longer holds, or a new one
    /// (of the size hint when the partition is `hot`, at most [`HOT_CAPACITY_MAX`]).
    fn take_spare(&mut self, hot: bool) -> BytesMut {
        let Some(i) = self.spares.iter().position(|(b, _)| b.is_unique()) else {
            let size = usize::try_from(self.rules.size_bytes).unwrap_or(usize::MAX);
            let first = if hot {
                size.min(HOT_CAPACITY_MAX)
            } else {
                size.min(FIRST_CAPACITY)
            };
            return BytesMut::with_capacity(first);
        };
        let (spare, capacity) = self.spares.swap_remove(i);
        self.spare_bytes -= capacity;
        match spare.try_into_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            // Unreachable (the spare was unique and only this thread holds it), but harmless.
            Err(_) => BytesMut::new(),
        }
    }

    /// Keeps a clone of a flushed partition's buffer (of `capacity` bytes) while the spares stay
    /// within their bound.
    fn keep_spare(&mut self, whole: &Bytes, capacity: u64) {
        if capacity > 0 && self.spare_bytes + capacity <= self.rules.memory_bytes / 4 {
            self.spares.push((whole.clone(), capacity));
            self.spare_bytes += capacity;
        }
        debug_assert_eq!(
            self.spare_bytes,
            self.spares.iter().map(|(_, c)| c).sum::<u64>()
        );
        debug_assert!(self.spare_bytes <= self.rules.memory_bytes / 4);
    }

    /// Drops every spare (an idle destination, a restart).
    fn drop_spares(&mut self) {
        self.spares.clear();
        self.spare_bytes = 0;
    }

    fn open_part(
        &mut self,
        canonical: Arc<str>,
        shared: Option<&SharedKeys>,
        keys: &PartitionKeys,
        hot: bool,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let keys = shared.cloned().unwrap_or_else(|| Arc::new(keys.clone()));
        let data = self.take_spare(hot);
        self.parts.insert(
            seq,
            Part {
                keys,
                data,
                records: Vec::new(),
                oldest_ms: u64::MAX,
            },
        );
        self.open.insert(canonical, seq);
        seq
    }

    /// Closes partition `seq` into a batch of its records, named after them (`round` gives the
    /// stream's part of the identity and the version).
    fn flush(&mut self, seq: u64, round: &Batch) -> Batch {
        let Some(part) = self.parts.remove(&seq) else {
            debug_assert!(false, "flush of a partition not open");
            return Batch {
                identity: round.identity.clone(),
                stream_version: round.stream_version,
                oldest_arrival_ms: round.oldest_arrival_ms,
                records: Vec::new(),
                contiguous: None,
                partition_keys: Vec::new(),
            };
        };
        self.open.retain(|_, s| *s != seq);
        self.bytes -= part.data.len() as u64;
        let capacity = part.data.capacity() as u64;
        let whole = part.data.freeze();
        self.keep_spare(&whole, capacity);
        let mut start = 0;
        let records: Vec<Record> = part
            .records
            .iter()
            .map(|&(lsn, sub, arrival_ms, end)| {
                let data = whole.slice(start..end);
                start = end;
                Record {
                    lsn,
                    sub,
                    arrival_ms,
                    data,
                }
            })
            .collect();
        let first_lsn = records.first().map_or(0, |r| r.lsn);
        let last_lsn = records.last().map_or(0, |r| r.lsn);
        Batch {
            identity: BatchIdentity {
                first_lsn,
                last_lsn,
                ..round.identity.clone()
            },
            stream_version: round.stream_version,
            oldest_arrival_ms: part.oldest_ms,
            partition_keys: vec![part.keys; records.len()],
            records,
            contiguous: Some(whole),
        }
    }
}

fn failed(record: &Record, code: &str, message: String, detail: FailureDetail) -> FailedRecord {
    FailedRecord {
        attempts_made: 1,
        arrival_timestamp_ms: record.arrival_ms,
        error_code: code.to_owned(),
        error_message: message,
        attempt_ending_timestamp_ms: crate::now_ms(),
        raw_data: record.data.clone(),
        detail,
    }
}

/// A whole batch through fresh buffers, every partition flushed at its end: what delivering a
/// batch alone writes (an [`crate::ObjectSink`] given a batch, `hydrant replay`).
pub fn split_batch(
    batch: &Batch,
    prefixes: &S3Prefixes,
    max_active: usize,
    stats: Option<Arc<PartitionStats>>,
) -> RoundOutput {
    let rules = BufferRules {
        size_bytes: u64::MAX,
        interval_ms: u64::MAX,
        max_active,
        memory_bytes: u64::MAX,
    };
    let mut buffers = PartitionBuffers::new(rules, prefixes.clone(), stats);
    match buffers.one_partition(batch) {
        Some(out) => out,
        None => buffers.add_round(batch, 0, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::KeysProduced;
    use bytes::Bytes;

    fn prefixes() -> S3Prefixes {
        S3Prefixes::partitioned(
            Some("c=!{partitionKeyFromQuery:c}/"),
            Some("e/!{firehose:error-output-type}/"),
            &KeysProduced {
                query: vec!["c".into()],
                lambda: false,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A round of `(partition, bytes)` records from `first`, arrival `t0 + lsn` ms.
    fn round(first: u64, t0: u64, records: &[(&str, &str)]) -> Batch {
        let keys: Vec<SharedKeys> = records
            .iter()
            .map(|(c, _)| {
                Arc::new(PartitionKeys {
                    query: if c.is_empty() {
                        Vec::new()
                    } else {
                        vec![("c".into(), (*c).into())]
                    },
                    lambda: Vec::new(),
                })
            })
            .collect();
        Batch {
            identity: BatchIdentity {
                stream: "s".into(),
                incarnation: "i".into(),
                destination_id: "d".into(),
                first_lsn: first,
                last_lsn: first + records.len() as u64 - 1,
            },
            stream_version: 1,
            oldest_arrival_ms: t0 + first,
            records: records
                .iter()
                .zip(first..)
                .map(|((_, data), lsn)| Record {
                    lsn,
                    sub: 0,
                    arrival_ms: t0 + lsn,
                    data: Bytes::copy_from_slice(data.as_bytes()),
                })
                .collect(),
            contiguous: None,
            partition_keys: keys,
        }
    }

    fn rules(size: u64, interval: u64, max_active: usize) -> BufferRules {
        BufferRules {
            size_bytes: size,
            interval_ms: interval,
            max_active,
            memory_bytes: 1 << 30,
        }
    }

    fn summary(objects: &[Batch]) -> Vec<(String, u64, u64, String)> {
        objects
            .iter()
            .map(|b| {
                let c = b.partition_keys[0].query[0].1.clone();
                let data: Vec<u8> = b.records.iter().flat_map(|r| r.data.to_vec()).collect();
                (
                    c,
                    b.identity.first_lsn,
                    b.identity.last_lsn,
                    String::from_utf8_lossy(&data).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn partitions_buffer_across_rounds_until_due() {
        let mut b = PartitionBuffers::new(rules(1000, 100, 10), prefixes(), None);
        // Round 1 at t=50: nothing is 100 ms old yet.
        let out = b.add_round(&round(0, 0, &[("a", "a0"), ("b", "b1")]), 50, false);
        assert!(out.objects.is_empty() && out.failed.is_empty());
        assert_eq!(b.active(), 2);
        assert_eq!(b.next_due_ms(), Some(100));
        // Round 2 at t=100: a (oldest 0) and b (oldest 1) due at 100 and 101; a flushes with its
        // records of both rounds.
        let out = b.add_round(&round(2, 0, &[("a", "a2"), ("c", "c3")]), 100, false);
        assert_eq!(summary(&out.objects), [("a".into(), 0, 2, "a0a2".into())]);
        assert_eq!(b.active(), 2);
        let out = b.add_round(&round(4, 0, &[("b", "b4")]), 200, false);
        assert_eq!(
            summary(&out.objects),
            [
                ("b".into(), 1, 4, "b1b4".into()),
                ("c".into(), 3, 3, "c3".into())
            ]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn size_and_limit_and_failures() {
        let mut b = PartitionBuffers::new(rules(4, 1000, 2), prefixes(), None);
        let out = b.add_round(
            &round(
                0,
                0,
                &[
                    ("a", "aa"),
                    ("b", "bb"),
                    ("a", "aa"),
                    ("c", "cc"),
                    ("a", "aa"),
                    ("", "x"),
                ],
            ),
            0,
            false,
        );
        // a is flushed when a third record would pass 4 bytes; c finds two partitions open; the
        // record without a key fails.
        assert_eq!(summary(&out.objects), [("a".into(), 0, 2, "aaaa".into())]);
        let failed: Vec<(&[u8], &FailureDetail)> = out
            .failed
            .iter()
            .map(|f| (&f.raw_data[..], &f.detail))
            .collect();
        assert_eq!(
            failed,
            [
                (&b"cc"[..], &FailureDetail::ActivePartitionExceeded),
                (&b"x"[..], &FailureDetail::Partitioning)
            ]
        );
        assert_eq!(b.active(), 2);
        let out = b.add_round(&round(6, 0, &[("c", "cc")]), 0, true);
        // flush_all: b, a (in opening order) then c, which fit once... c still exceeds: a and
        // b were open while it came.
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.objects.len(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn the_same_rounds_give_the_same_objects() {
        let rounds = [
            (
                round(0, 0, &[("a", "1"), ("b", "2"), ("a", "3")]),
                10,
                false,
            ),
            (round(3, 0, &[("b", "4"), ("c", "5")]), 60, false),
            (round(5, 0, &[("a", "6")]), 120, false),
            (round(6, 0, &[("c", "7")]), 200, true),
        ];
        let run = || {
            let mut b = PartitionBuffers::new(rules(2, 100, 10), prefixes(), None);
            rounds
                .iter()
                .flat_map(|(r, t, all)| summary(&b.add_round(r, *t, *all).objects))
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        // Every record once, keys (partition, first, last) distinct.
        let all: String = first.iter().map(|o| o.3.clone()).collect();
        let mut chars: Vec<char> = all.chars().collect();
        chars.sort_unstable();
        assert_eq!(chars.iter().collect::<String>(), "1234567");
        let mut ids: Vec<_> = first.iter().map(|o| (&o.0, o.1, o.2)).collect();
        ids.dedup();
        assert_eq!(ids.len(), first.len());
    }

    #[test]
    fn a_batch_of_one_partition_splits_as_through_the_buffers() {
        let general = |batch: &Batch| {
            let rules = rules(u64::MAX, u64::MAX, 1);
            let mut r = rules;
            r.memory_bytes = u64::MAX;
            PartitionBuffers::new(r, prefixes(), None).add_round(batch, 0, true)
        };
        // One key set shared (a flushed partition), equal key sets apart, and no key at all.
        let mut shared = round(4, 7, &[("a", "x1"), ("a", "x22"), ("a", "x3")]);
        shared.records[1].arrival_ms = 1;
        let keys = Arc::clone(&shared.partition_keys[0]);
        shared.partition_keys = vec![keys; 3];
        let equal = round(9, 0, &[("b", "y"), ("b", "yy")]);
        let failing = round(1, 0, &[("", "z"), ("", "zz")]);
        for batch in [&shared, &equal, &failing] {
            let fast = split_batch(batch, &prefixes(), 1, None);
            let slow = general(batch);
            assert_eq!(summary(&fast.objects), summary(&slow.objects));
            for (f, s) in fast.objects.iter().zip(&slow.objects) {
                assert_eq!(f.identity, s.identity);
                assert_eq!(f.oldest_arrival_ms, s.oldest_arrival_ms);
                assert_eq!(f.partition_keys, s.partition_keys);
            }
            let failed = |o: &RoundOutput| -> Vec<(Bytes, String, String)> {
                o.failed
                    .iter()
                    .map(|f| {
                        (
                            f.raw_data.clone(),
                            f.error_code.clone(),
                            f.error_message.clone(),
                        )
                    })
                    .collect()
            };
            assert_eq!(failed(&fast), failed(&slow));
        }
        assert_eq!(
            split_batch(&shared, &prefixes(), 1, None).objects[0].oldest_arrival_ms,
            1
        );
        // Two partitions go the general way.
        let two = round(0, 0, &[("a", "1"), ("b", "2")]);
        assert_eq!(split_batch(&two, &prefixes(), 5, None).objects.len(), 2);
    }

    #[test]
    fn memory_bound_flushes_the_largest_first() {
        let mut r = rules(100, 1000, 10);
        r.memory_bytes = 5;
        let mut b = PartitionBuffers::new(r, prefixes(), None);
        let out = b.add_round(
            &round(0, 0, &[("a", "aaa"), ("b", "b"), ("c", "cc")]),
            0,
            false,
        );
        assert_eq!(summary(&out.objects), [("a".into(), 0, 0, "aaa".into())]);
        assert_eq!(b.active(), 2);
    }

    fn buffer_of(objects: &[Batch]) -> *const u8 {
        match objects {
            [object] => object
                .contiguous
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr()),
            _ => panic!("one object expected, got {}", objects.len()),
        }
    }

    #[test]
    fn a_flushed_buffer_is_reused_only_once_its_batch_is_dropped() {
        let mut b = PartitionBuffers::new(rules(8, 1000, 10), prefixes(), None);
        let first = b.add_round(&round(0, 0, &[("a", "aaaa"), ("a", "bbbb")]), 0, false);
        assert_eq!(
            summary(&first.objects),
            [("a".into(), 0, 1, "aaaabbbb".into())]
        );
        let first_buffer = buffer_of(&first.objects);
        // The sink still holds the first object: the next partition gets a buffer of its own.
        let second = b.add_round(&round(2, 0, &[("b", "cc")]), 0, true);
        assert_eq!(summary(&second.objects), [("b".into(), 2, 2, "cc".into())]);
        let second_buffer = buffer_of(&second.objects);
        assert_ne!(first_buffer, second_buffer);
        assert_eq!(
            summary(&first.objects),
            [("a".into(), 0, 1, "aaaabbbb".into())]
        );
        drop(first);
        drop(second);
        // Both are back: the next partition fills one of them, from its start.
        let third = b.add_round(&round(3, 0, &[("c", "dd")]), 0, true);
        assert_eq!(summary(&third.objects), [("c".into(), 3, 3, "dd".into())]);
        let third_buffer = buffer_of(&third.objects);
        assert!(third_buffer == first_buffer || third_buffer == second_buffer);
        drop(third);
        assert_eq!(b.spares.len(), 2);
        // A round without records and no partition open: an idle destination keeps no spare.
        let idle = b.add_round(&round(10, 0, &[]), 0, false);
        assert!(idle.objects.is_empty());
        assert!(b.spares.is_empty() && b.spare_bytes == 0);
    }

    #[test]
    fn spares_hold_at_most_a_quarter_of_the_memory_bound() {
        let mut r = rules(8, 1000, 10);
        r.memory_bytes = 40;
        let mut b = PartitionBuffers::new(r, prefixes(), None);
        let first = b.add_round(&round(0, 0, &[("a", "aaaa"), ("a", "bbbb")]), 0, false);
        assert_eq!(first.objects.len(), 1);
        assert_eq!(b.spares.len(), 1);
        assert!(b.spare_bytes >= 8 && b.spare_bytes <= 10);
        // A second 8-byte buffer would take the spares past 10 bytes: it is not kept.
        let second = b.add_round(&round(2, 0, &[("b", "cccc"), ("b", "dddd")]), 0, false);
        assert_eq!(second.objects.len(), 1);
        assert_eq!(b.spares.len(), 1);
        assert!(b.spare_bytes <= 10);
    }
}
