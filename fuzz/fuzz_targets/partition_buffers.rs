//! Fuzzes dynamic partitioning's buffers ([`PartitionBuffers`]): arbitrary rules (size, interval,
//! active limit, memory bound) and arbitrary sequences of records (of six partitions, of none: a
//! missing key, or of an unwritable one; sub-records sharing an LSN), rounds (cut times) and
//! flushes (`flush_all`, and the worker's held-round bound) go through `add_round`, as the
//! delivery worker gives them. After every round it checks:
//!
//! - no record lost or duplicated: every record given is in exactly one object, in the failed
//!   records, or still held (the held count and bytes add up); at the end, after a final
//!   `flush_all`, every record is in exactly one object or failed record;
//! - an object holds only one partition's records, in `(lsn, sub)` order, its identity is its
//!   records' first and last LSN, its contiguous buffer (if any) is their bytes, its oldest arrival theirs;
//!   two objects of one partition never share an LSN, and no two objects share a key (a writable
//!   one);
//! - the bounds: at most `max_active` partitions open; the bytes held never pass the memory bound
//!   by more than the records of one LSN; an object passes `SizeInMBs` only by records of its last
//!   LSN; nothing due by the interval is left open at a round's cut; `flush_all` empties them;
//! - failures: only records without a partition fail as `partitioning-failed`, only records of
//!   further partitions while `max_active` are open as `activePartitionExceeded`;
//! - a restart (what exactly-once rests on): fresh buffers given the rounds since the buffers
//!   were last empty flush the same objects and fail the same records as the live ones did.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use hydrant_sinks::keys::key_problem;
use hydrant_sinks::partition::{BufferRules, KeysProduced, PartitionBuffers, PartitionKeys};
use hydrant_sinks::{Batch, BatchIdentity, FailureDetail, Record, S3Prefixes};
use libfuzzer_sys::fuzz_target;

/// Partition values: 0-4 plain, 5 escaped (`/`, a space, `=`, non-ASCII), 6 no key at all, 7 so
/// long that the evaluated Prefix is unwritable.
const PARTITIONS: usize = 8;
/// Partitions 0-5 have a writable Prefix.
const VALID: usize = 6;
const NO_KEY: usize = 6;
const UNWRITABLE: usize = 7;
/// The worker flushes every partition in the round that would hold this many rounds (its
/// `HELD_ROUNDS_MAX`, made small here).
const HELD_ROUNDS_MAX: usize = 8;

fn value(p: usize) -> Option<String> {
    match p {
        NO_KEY => None,
        UNWRITABLE => Some("x".repeat(1100)),
        5 => Some("a/ b=é".to_owned()),
        p => Some(format!("c{p}")),
    }
}

fn keys_of(p: usize) -> PartitionKeys {
    PartitionKeys {
        query: value(p)
            .map(|v| vec![("c".to_owned(), v)])
            .unwrap_or_default(),
        lambda: Vec::new(),
    }
}

/// A record's id, the first 8 bytes of its data: `(lsn, sub)`.
fn id(data: &[u8]) -> (u64, u32) {
    let lsn = u64::from_be_bytes([0, 0, data[0], data[1], data[2], data[3], data[4], data[5]]);
    let sub = u32::from(u16::from_be_bytes([data[6], data[7]]));
    (lsn, sub)
}

fn record(lsn: u64, sub: u32, arrival_ms: u64, filler: usize) -> Record {
    let mut data = lsn.to_be_bytes()[2..].to_vec();
    data.extend_from_slice(&(sub as u16).to_be_bytes());
    data.extend(std::iter::repeat_n(b'.', filler));
    Record {
        lsn,
        sub,
        arrival_ms,
        data: Bytes::from(data),
    }
}

/// What a round gave, comparable across runs (failed records without their wall-clock time).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    objects: Vec<(PartitionKeys, u64, u64, u64, Vec<(u64, u32, u64)>, Bytes)>,
    failed: Vec<(Bytes, String, FailureDetail)>,
}

fn outcome(out: &hydrant_sinks::partition::RoundOutput) -> Outcome {
    Outcome {
        objects: out
            .objects
            .iter()
            .map(|o| {
                (
                    (*o.partition_keys[0]).clone(),
                    o.identity.first_lsn,
                    o.identity.last_lsn,
                    o.oldest_arrival_ms,
                    o.records
                        .iter()
                        .map(|r| (r.lsn, r.sub, r.arrival_ms))
                        .collect(),
                    Bytes::from(
                        o.records
                            .iter()
                            .flat_map(|r| r.data.to_vec())
                            .collect::<Vec<u8>>(),
                    ),
                )
            })
            .collect(),
        failed: out
            .failed
            .iter()
            .map(|f| (f.raw_data.clone(), f.error_code.clone(), f.detail.clone()))
            .collect(),
    }
}

struct Round {
    batch: Batch,
    cut_ms: u64,
    flush_all: bool,
}

fn batch(records: Vec<Record>, keys: Vec<Arc<PartitionKeys>>, next_lsn: u64) -> Batch {
    let first = records.first().map_or(next_lsn, |r| r.lsn);
    let last = records.last().map_or(next_lsn, |r| r.lsn);
    Batch {
        identity: BatchIdentity {
            stream: "fuzz".to_owned(),
            incarnation: "1".to_owned(),
            destination_id: "destinationId-000000000001".to_owned(),
            first_lsn: first,
            last_lsn: last,
        },
        stream_version: 1,
        oldest_arrival_ms: records.iter().map(|r| r.arrival_ms).min().unwrap_or(0),
        records,
        contiguous: None,
        partition_keys: keys,
    }
}

/// The checker's view of the run.
struct Checker {
    rules: BufferRules,
    prefixes: S3Prefixes,
    /// Records given and not yet out: id → (partition, bytes).
    held: HashMap<(u64, u32), (usize, u64)>,
    /// Records out (in an object or failed).
    out: HashSet<(u64, u32)>,
    /// Per partition, the last LSN of its last object.
    last_lsn: HashMap<PartitionKeys, u64>,
    /// Every object key written.
    object_keys: HashSet<String>,
    /// Bytes held before the round.
    held_before: u64,
}

impl Checker {
    fn round(
        &mut self,
        buffers: &PartitionBuffers,
        round: &Round,
        out: &hydrant_sinks::partition::RoundOutput,
    ) {
        let partition_of: HashMap<(u64, u32), usize> = round
            .batch
            .records
            .iter()
            .map(|r| {
                let id = (r.lsn, r.sub);
                (id, self.held.get(&id).map_or(usize::MAX, |h| h.0))
            })
            .collect();
        // The bytes of the last LSN of the round that had a partition (the memory bound's
        // slack: the bound is checked at the first such record of each LSN).
        let placed = |r: &&Record| {
            let p = partition_of[&(r.lsn, r.sub)];
            p != NO_KEY && p != UNWRITABLE
        };
        let last_group: u64 = round
            .batch
            .records
            .iter()
            .filter(placed)
            .last()
            .map(|last| {
                round
                    .batch
                    .records
                    .iter()
                    .filter(placed)
                    .filter(|r| r.lsn == last.lsn)
                    .map(|r| r.data.len() as u64)
                    .sum()
            })
            .unwrap_or(0);
        let mut exceeded = 0usize;
        for f in &out.failed {
            let id = id(&f.raw_data);
            let (p, _) = self
                .held
                .remove(&id)
                .expect("a failed record given once and not out");
            assert!(self.out.insert(id), "record {id:?} out twice");
            assert!(
                partition_of.contains_key(&id),
                "a record of an earlier round failed"
            );
            match f.detail {
                FailureDetail::Partitioning => {
                    assert!(
                        p == NO_KEY || p == UNWRITABLE,
                        "partition {p} failed: {f:?}"
                    )
                }
                FailureDetail::ActivePartitionExceeded => {
                    assert!(p != NO_KEY && p != UNWRITABLE);
                    exceeded += 1;
                }
                ref other => panic!("unexpected failure {other:?}"),
            }
            assert!(f.error_code.starts_with("DynamicPartitioning."));
        }
        if self.rules.max_active >= VALID {
            assert_eq!(
                exceeded, 0,
                "activePartitionExceeded with room for every partition"
            );
        }
        for o in &out.objects {
            assert!(!o.records.is_empty(), "an empty object");
            assert_eq!(o.partition_keys.len(), o.records.len());
            let keys = &*o.partition_keys[0];
            assert!(
                o.partition_keys.iter().all(|k| **k == *keys),
                "two partitions in one object"
            );
            assert!(o
                .records
                .windows(2)
                .all(|w| (w[0].lsn, w[0].sub) < (w[1].lsn, w[1].sub)));
            assert_eq!(o.identity.first_lsn, o.records[0].lsn);
            assert_eq!(o.identity.last_lsn, o.records[o.records.len() - 1].lsn);
            assert_eq!(
                o.oldest_arrival_ms,
                o.records.iter().map(|r| r.arrival_ms).min().unwrap_or(0)
            );
            let whole: Vec<u8> = o.records.iter().flat_map(|r| r.data.to_vec()).collect();
            if let Some(contiguous) = &o.contiguous {
                assert_eq!(&contiguous[..], &whole[..], "contiguous bytes differ");
            }
            // SizeInMBs is passed only by records of the object's last LSN, after the first.
            let last = o.identity.last_lsn;
            let first_of_last = o.records.iter().position(|r| r.lsn == last).unwrap_or(0);
            let within: u64 = o.records[..=first_of_last]
                .iter()
                .map(|r| r.data.len() as u64)
                .sum();
            assert!(
                first_of_last == 0 || within <= self.rules.size_bytes,
                "object of {within} bytes before its last LSN's second record, size {}",
                self.rules.size_bytes
            );
            for r in &o.records {
                let id = (r.lsn, r.sub);
                let (p, bytes) = self
                    .held
                    .remove(&id)
                    .expect("an object's record given once and not out");
                assert!(self.out.insert(id), "record {id:?} out twice");
                assert_eq!(
                    *keys,
                    keys_of(p),
                    "record of partition {p} in another's object"
                );
                assert_eq!(bytes, r.data.len() as u64);
                assert_eq!(id, self::id(&r.data));
            }
            if let Some(previous) = self.last_lsn.insert(keys.clone(), last) {
                assert!(
                    previous < o.identity.first_lsn,
                    "two objects of one partition share an LSN"
                );
            }
            let prefix = self
                .prefixes
                .partition_prefix(&o.identity, o.oldest_arrival_ms, keys)
                .expect("an object's Prefix evaluates");
            let key =
                S3Prefixes::partition_data_key(&prefix, &o.identity, 1, o.oldest_arrival_ms, "");
            assert_eq!(key_problem(&key), None, "{key:?}");
            assert!(
                self.object_keys.insert(key.clone()),
                "two objects under {key}"
            );
        }
        // Accounting: what is not out is held.
        let held_bytes: u64 = self.held.values().map(|h| h.1).sum();
        assert_eq!(buffers.held_bytes(), held_bytes, "held bytes do not add up");
        assert_eq!(buffers.is_empty(), self.held.is_empty());
        assert!(buffers.active() <= self.rules.max_active);
        // A round that placed nothing cannot add to what is held.
        let bound = if last_group == 0 {
            self.held_before
        } else {
            self.rules.memory_bytes + last_group
        };
        assert!(
            buffers.held_bytes() <= bound,
            "{} bytes held, bound {bound} (memory {}, last LSN {last_group})",
            buffers.held_bytes(),
            self.rules.memory_bytes
        );
        self.held_before = buffers.held_bytes();
        if round.flush_all {
            assert!(buffers.is_empty(), "flush_all left partitions open");
        }
        if let Some(due) = buffers.next_due_ms() {
            assert!(
                due > round.cut_ms,
                "a partition due at {due} left open at {}",
                round.cut_ms
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let rules = BufferRules {
        size_bytes: 1 + u64::from(data[0] % 64),
        interval_ms: u64::from(data[1] % 50),
        max_active: 1 + usize::from(data[2] % 7),
        memory_bytes: if data[3] >= 200 {
            1 << 20
        } else {
            1 + u64::from(data[3] % 128)
        },
    };
    let prefixes = S3Prefixes::partitioned(
        Some("c=!{partitionKeyFromQuery:c}/"),
        Some("e/!{firehose:error-output-type}/"),
        &KeysProduced {
            query: vec!["c".to_owned()],
            lambda: false,
        },
    )
    .expect("a valid Prefix");
    let mut live = PartitionBuffers::new(rules, prefixes.clone(), None);
    let mut checker = Checker {
        rules,
        prefixes: prefixes.clone(),
        held: HashMap::new(),
        out: HashSet::new(),
        last_lsn: HashMap::new(),
        object_keys: HashSet::new(),
        held_before: 0,
    };
    // One shared key set per partition (records of one partition usually share one, as the
    // pipeline makes them), or a fresh one per record.
    let shared: Vec<Arc<PartitionKeys>> = (0..PARTITIONS).map(|p| Arc::new(keys_of(p))).collect();
    // The rounds since the buffers were last empty, with what they gave (a restart's input).
    let mut since_empty: Vec<(Round, Outcome)> = Vec::new();
    let mut given = 0usize;
    let mut next_lsn = 1u64;
    let mut clock = 1_700_000_000_000u64;
    let mut records: Vec<Record> = Vec::new();
    let mut keys = Vec::new();
    let mut ops = data[4..].chunks_exact(2).peekable();
    loop {
        let op = ops.next();
        let (end_round, flush_all, cut_after) = match op {
            Some(&[op, arg]) if op & 3 != 3 => {
                let p = usize::from(op >> 2) % PARTITIONS;
                // Sub-records of the previous record's LSN, or a new LSN.
                let (lsn, sub) = match records.last() {
                    Some(last) if op & 3 == 2 && last.sub < 1000 => {
                        let last: &Record = last;
                        (last.lsn, last.sub + 1)
                    }
                    _ => {
                        next_lsn += 1;
                        (next_lsn - 1, 0)
                    }
                };
                clock += u64::from(op >> 7);
                let r = record(lsn, sub, clock, usize::from(arg % 40));
                checker.held.insert((lsn, sub), (p, r.data.len() as u64));
                records.push(r);
                keys.push(if arg & 0x80 == 0 {
                    Arc::clone(&shared[p])
                } else {
                    Arc::new(keys_of(p))
                });
                given += 1;
                (false, false, 0)
            }
            Some(&[op, arg]) => (true, op & 0x1c == 0, u64::from(arg)),
            _ => (true, true, 0),
        };
        if !end_round {
            continue;
        }
        clock += cut_after;
        let flush_all = flush_all || since_empty.len() + 1 >= HELD_ROUNDS_MAX;
        let round = Round {
            batch: batch(
                std::mem::take(&mut records),
                std::mem::take(&mut keys),
                next_lsn,
            ),
            cut_ms: clock,
            flush_all,
        };
        let out = live.add_round(&round.batch, round.cut_ms, round.flush_all);
        checker.round(&live, &round, &out);
        since_empty.push((round, outcome(&out)));
        // A restart here: fresh buffers given the rounds since they were last empty.
        let mut restarted = PartitionBuffers::new(rules, prefixes.clone(), None);
        for (r, original) in &since_empty {
            let again = restarted.add_round(&r.batch, r.cut_ms, r.flush_all);
            assert_eq!(&outcome(&again), original, "a restart wrote other objects");
        }
        assert_eq!(restarted.held_bytes(), live.held_bytes());
        assert_eq!(restarted.active(), live.active());
        if live.is_empty() {
            since_empty.clear();
        }
        if op.is_none() {
            break;
        }
    }
    assert!(live.is_empty());
    assert!(
        checker.held.is_empty(),
        "records neither in an object nor failed"
    );
    assert_eq!(checker.out.len(), given);
});
