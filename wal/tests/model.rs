//! Model check of the log against simulated power loss.
//!
//! Random sequences of appends, waits (acknowledgements), retention, reads, clean reopens and
//! power losses (armed to strike at any storage operation, including inside a sync, a rotation,
//! the background preparation of the next segment, retention, or recovery itself) run against the
//! real `Wal` on a [`SimDisk`], with background preparation on as in production. After every
//! crash the log is reopened and checked against a reference model:
//!
//! 1. every acknowledged record is there, with its exact bytes;
//! 2. the recovered log is a prefix of what was appended (same bytes at every LSN), with dense LSNs;
//! 3. `verify` finds nothing wrong.
//!
//! Retention runs on its own thread, as the daemon's delivery does, held by the simulated disk
//! before each of its storage operations: an action starts it and lets it run a few operations,
//! and it stays held (mid-way between a rename and its directory sync, say) while later actions
//! append, rotate and sync, until a later retention action moves it on, or a clean reopen or a
//! power loss. Power losses strike at the n-th storage operation or at the n-th sync from the
//! moment they are armed, and keep unsynced sectors by one of the simulated disk's patterns,
//! including one that drops a run of sectors while keeping later ones.
//!
//! A sequence is drawn from one of four mixes: every kind of append and action (twice: once with
//! segments that grow from 8 KiB to 32 KiB, as a young log's do); uniform appends
//! only (one record that makes a frame of exactly one sector, so frames line up with sectors and
//! with a recycled file's old frames), with retention keeping up and fewer power losses so that
//! segments get recycled; and appends that fill a segment each (every append rotates) with
//! retention often held, so that a recycled file is reused as soon as retention lets it. The
//! uniform and rotating mixes exist because the holes they find need long exact sequences: with them, the default
//! 10,000 cases find both the old recycling order (a retired file reused before its rename was
//! durable) and a frame of an earlier run kept behind a dropped one, each within a few thousand
//! cases (the figures are in the commit that added them).
//!
//! Reproducibility: the test thread runs one action at a time and waits after each for the
//! preparation thread to be idle, and retention moves only when the test lets it, so the order of
//! storage operations (and hence where an armed power loss strikes) is a function of the actions.
//! Shrinking works, but a shrunk sequence can change which operation an armed crash hits.
//!
//! `HYDRANT_PROPTEST_CASES` sets the number of cases (default 10,000); a failing case prints its
//! minimal action sequence.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Lsn, ReadLimit, Ticket, Wal, WalOptions};

use proptest::prelude::*;

const SEGMENT_BYTES: u64 = 8192;

/// A record that makes a frame of exactly one sector (32 bytes of header, 4 of length prefix),
/// so that a power loss can drop one such frame whole and keep the next.
const UNIFORM_RECORD: u16 = 512 - 36;

#[derive(Clone, Debug)]
enum Action {
    /// Append a batch with these record lengths (the ticket is kept, not waited on).
    Append(Vec<u16>),
    /// Wait on every outstanding ticket: their records become acknowledged.
    Wait,
    /// Arm a power loss that strikes at the `after`-th storage operation from now, or with
    /// `at_sync` at the `after`-th sync from now (a power loss while the disk flushes).
    Crash { after: u8, seed: u64, at_sync: bool },
    /// Close and reopen cleanly.
    Reopen,
    /// Retention: drop segments below a point between the first and the durable LSN, on the
    /// retention thread, which then runs `ops` storage operations and stays held (255: runs to
    /// the end). If retention is already under way, it runs `ops` more instead.
    Truncate { frac: u8, ops: u8 },
    /// Read from a point between the first LSN and the durable end, and compare with the model.
    Read(u8),
}

fn crash() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (0u8..24, any::<u64>())
            .prop_map(|(after, seed)| Action::Crash { after, seed, at_sync: false }),
        1 => (0u8..3, any::<u64>())
            .prop_map(|(after, seed)| Action::Crash { after, seed, at_sync: true }),
    ]
}

fn truncate() -> impl Strategy<Value = Action> {
    (any::<u8>(), prop_oneof![1 => Just(255u8), 2 => 0u8..4])
        .prop_map(|(frac, ops)| Action::Truncate { frac, ops })
}

/// Appends of every shape, and every other action.
fn mixed_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => prop::collection::vec(prop_oneof![3 => 0u16..64, 2 => 64u16..900, 1 => 900u16..3000], 1..6)
            .prop_map(Action::Append),
        3 => Just(Action::Append(vec![UNIFORM_RECORD])),
        3 => Just(Action::Wait),
        3 => crash(),
        1 => Just(Action::Reopen),
        2 => truncate(),
        1 => any::<u8>().prop_map(Action::Read),
    ]
}

/// Uniform appends only, with retention keeping up and fewer power losses: segments get
/// recycled (a reopen starts without recycled files), and every recycled file's old frames line
/// up with the new ones, sector for sector.
fn uniform_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => Just(Action::Append(vec![UNIFORM_RECORD])),
        4 => Just(Action::Wait),
        1 => (0u8..3, any::<u64>())
            .prop_map(|(after, seed)| Action::Crash { after, seed, at_sync: true }),
        3 => truncate(),
        1 => any::<u8>().prop_map(Action::Read),
    ]
}

/// Appends that fill a segment each, so that every append rotates, with retention often held
/// mid-way: recycled files are reused as soon as retention lets them.
fn rotating_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Append(vec![3000])),
        3 => Just(Action::Wait),
        2 => crash(),
        3 => (any::<u8>(), prop_oneof![1 => Just(255u8), 3 => 0u8..3])
            .prop_map(|(frac, ops)| Action::Truncate { frac, ops }),
        1 => any::<u8>().prop_map(Action::Read),
    ]
}

/// A sequence of actions, and whether the log's segments grow (from 8 KiB to 32 KiB, with
/// frames larger than the next size skipping ahead and the empty first segment replaced when
/// the first frame does not fit) or all have one size.
fn actions() -> impl Strategy<Value = (bool, Vec<Action>)> {
    prop_oneof![
        1 => prop::collection::vec(mixed_action(), 1..40).prop_map(|a| (false, a)),
        2 => prop::collection::vec(uniform_action(), 1..100).prop_map(|a| (false, a)),
        2 => prop::collection::vec(rotating_action(), 1..40).prop_map(|a| (false, a)),
        1 => prop::collection::vec(mixed_action(), 1..40).prop_map(|a| (true, a)),
    ]
}

fn options(growing: bool) -> WalOptions {
    WalOptions {
        segment_bytes: if growing {
            4 * SEGMENT_BYTES
        } else {
            SEGMENT_BYTES
        },
        first_segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: 4096,
        background_prepare: true,
        ..WalOptions::default()
    }
}

/// Record bytes: a function of the LSN, the "life" of the log (bumped by every crash, so a
/// reused LSN gets different bytes) and the length.
fn content(lsn: u64, life: u64, len: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(len as usize);
    let mut x = lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ life.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

struct Harness {
    disk: SimDisk,
    /// Segments grow (see [`actions`]).
    growing: bool,
    wal: Option<Arc<Wal>>,
    /// The retention thread, if one runs (held by the disk or finished): its cut, the first LSN
    /// when it started, and its join handle.
    retention: Option<(u64, u64, JoinHandle<hydrant_wal::Result<usize>>)>,
    /// The bytes appended at each LSN (the recovered prefix, then newer appends).
    model: Vec<Vec<u8>>,
    /// Every LSN below this was acknowledged.
    acked_end: u64,
    tickets: Vec<Ticket>,
    life: u64,
    seen_crashes: u64,
}

const DIR: &str = "/streams/s/wal";

impl Harness {
    fn new(growing: bool) -> Harness {
        let disk = SimDisk::new();
        let (wal, _) = Wal::open_with(disk.storage(), Path::new(DIR), options(growing)).unwrap();
        wal.wait_background_idle();
        Harness {
            disk,
            growing,
            wal: Some(Arc::new(wal)),
            retention: None,
            model: Vec::new(),
            acked_end: 0,
            tickets: Vec::new(),
            life: 0,
            seen_crashes: 0,
        }
    }

    fn wal(&self) -> &Wal {
        self.wal.as_deref().unwrap()
    }

    /// Lets the retention thread, if any, run to its end, and checks what it did.
    fn finish_retention(&mut self) -> Result<(), TestCaseError> {
        let Some((cut, first, handle)) = self.retention.take() else {
            return Ok(());
        };
        self.disk.ungate();
        let result = handle.join().unwrap();
        if self.disk.crash_count() > self.seen_crashes {
            return Ok(()); // a dead machine's retention: whatever it says
        }
        match result {
            Ok(_) => {
                let now_first = self.wal().first_lsn().0;
                prop_assert!(
                    now_first <= cut.max(first),
                    "retention removed records at or above the cut"
                );
            }
            Err(e) => prop_assert!(false, "truncate failed without a crash: {e}"),
        }
        Ok(())
    }

    /// If a crash fired, recover and check the model; then wait for the background preparation
    /// to be idle, so that the next action starts from a settled state.
    fn after_step(&mut self) -> Result<(), TestCaseError> {
        if self.disk.crash_count() == self.seen_crashes {
            if let Some(w) = &self.wal {
                w.wait_background_idle();
            }
            if self.disk.crash_count() == self.seen_crashes {
                return Ok(());
            }
        }
        self.tickets.clear();
        self.finish_retention()?;
        self.wal = None; // its handles are dead; dropping it joins its threads
                         // Reopen; a still-armed crash may strike recovery itself, so retry until it opens.
        let wal = loop {
            self.seen_crashes = self.disk.crash_count();
            match Wal::open_with(self.disk.storage(), Path::new(DIR), options(self.growing)) {
                Ok((w, _)) => {
                    // The preparation thread it started may meet the armed crash too.
                    w.wait_background_idle();
                    if self.disk.crash_count() == self.seen_crashes {
                        break w;
                    }
                }
                Err(e) => {
                    prop_assert!(
                        self.disk.crash_count() > self.seen_crashes,
                        "recovery failed without a crash: {e}"
                    );
                }
            }
        };
        self.disk.disarm_crash();
        self.check_recovered(&wal)?;
        self.wal = Some(Arc::new(wal));
        self.life += 1;
        Ok(())
    }

    fn check_recovered(&mut self, wal: &Wal) -> Result<(), TestCaseError> {
        let end = wal.next_lsn().0;
        prop_assert!(
            end >= self.acked_end,
            "acknowledged records lost: end {end} < acked {}",
            self.acked_end
        );
        prop_assert!(
            end <= self.model.len() as u64,
            "log longer than what was appended"
        );
        prop_assert_eq!(wal.durable_lsn().0, end);
        let first = wal.first_lsn().0;
        let mut r = wal.reader(Lsn(first)).unwrap();
        let mut expect = first;
        while let Some(f) = r.next_frame().unwrap() {
            for (lsn, bytes) in f.records() {
                prop_assert_eq!(lsn.0, expect, "LSNs not dense");
                prop_assert!(
                    bytes == &self.model[lsn.0 as usize][..],
                    "bytes differ at LSN {}",
                    lsn.0
                );
                expect += 1;
            }
        }
        prop_assert_eq!(expect, end, "reader stopped early");
        let report = hydrant_wal::verify(self.disk.storage().as_ref(), Path::new(DIR)).unwrap();
        prop_assert!(
            report.problems.is_empty(),
            "verify after recovery: {:?}",
            report.problems
        );
        self.model.truncate(end as usize);
        Ok(())
    }

    fn step(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Append(lens) => {
                let next = self.wal().next_lsn().0;
                prop_assert_eq!(next, self.model.len() as u64);
                let records: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, len)| content(next + i as u64, self.life, *len))
                    .collect();
                match self.wal().append(&records) {
                    Ok(t) => {
                        prop_assert_eq!(t.range().start.0, next);
                        self.model.extend(records);
                        self.tickets.push(t);
                    }
                    Err(hydrant_wal::Error::FrameTooLarge { .. }) => {
                        // Refused whole: nothing written, the LSNs are not taken.
                        prop_assert_eq!(self.wal().next_lsn().0, next);
                    }
                    Err(e) => prop_assert!(
                        self.disk.crash_count() > self.seen_crashes,
                        "append failed without a crash: {e}"
                    ),
                }
            }
            Action::Wait => {
                for t in std::mem::take(&mut self.tickets) {
                    match t.wait() {
                        Ok(range) => self.acked_end = self.acked_end.max(range.end.0),
                        Err(e) => prop_assert!(
                            self.disk.crash_count() > self.seen_crashes,
                            "wait failed without a crash: {e}"
                        ),
                    }
                }
            }
            Action::Crash {
                after,
                seed,
                at_sync,
            } => {
                if *at_sync {
                    self.disk.arm_crash_at_sync(u64::from(*after), *seed);
                } else {
                    self.disk.arm_crash(u64::from(*after), *seed);
                }
            }
            Action::Reopen => {
                self.tickets.clear();
                self.finish_retention()?;
                if self.disk.crash_count() > self.seen_crashes {
                    return self.after_step();
                }
                let wal = self.wal.take().unwrap();
                let closed = wal.close();
                drop(wal);
                if closed.is_ok() {
                    // A clean close syncs everything written.
                    self.acked_end = self.model.len() as u64;
                }
                if self.disk.crash_count() > self.seen_crashes {
                    return self.after_step();
                }
                match Wal::open_with(self.disk.storage(), Path::new(DIR), options(self.growing)) {
                    Ok((w, _)) => {
                        let end = w.next_lsn().0;
                        prop_assert_eq!(
                            end,
                            self.model.len() as u64,
                            "a clean reopen recovered another end than what was appended"
                        );
                        self.wal = Some(Arc::new(w));
                    }
                    Err(e) => {
                        prop_assert!(
                            self.disk.crash_count() > self.seen_crashes,
                            "reopen failed: {e}"
                        );
                        return self.after_step();
                    }
                }
            }
            Action::Truncate { ops, .. } if self.retention.is_some() => {
                // Retention is under way: it goes on.
                if *ops == 255 || !self.disk.step_gated(u64::from(*ops)) {
                    self.finish_retention()?;
                }
            }
            Action::Truncate { frac, ops } => {
                let wal = self.wal.clone().unwrap();
                let (first, durable) = (wal.first_lsn().0, wal.durable_lsn().0);
                let cut = first + (durable - first) * u64::from(*frac) / 255;
                let (go, wait) = mpsc::channel::<()>();
                let disk = self.disk.clone();
                let handle = std::thread::spawn(move || {
                    let _ = wait.recv();
                    let result = wal.truncate_before(Lsn(cut));
                    drop(wal);
                    disk.ungate();
                    result
                });
                self.disk.gate_thread(handle.thread().id());
                go.send(()).unwrap();
                self.retention = Some((cut, first, handle));
                if *ops == 255 {
                    self.finish_retention()?;
                } else {
                    self.disk.step_gated(u64::from(*ops));
                }
            }
            Action::Read(frac) => {
                let wal = self.wal();
                let (first, durable) = (wal.first_lsn().0, wal.durable_lsn().0);
                let from = first + (durable - first) * u64::from(*frac) / 255;
                let mut r = wal
                    .reader_with_limit(Lsn(from), ReadLimit::Durable)
                    .unwrap();
                let mut expect = from;
                loop {
                    match r.next_frame() {
                        Ok(Some(f)) => {
                            for (lsn, bytes) in f.records() {
                                prop_assert_eq!(lsn.0, expect);
                                prop_assert!(bytes == &self.model[lsn.0 as usize][..]);
                                expect += 1;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            prop_assert!(false, "read failed: {e}");
                        }
                    }
                }
                prop_assert!(
                    expect >= durable,
                    "reader stopped before the durable end it saw"
                );
            }
        }
        self.after_step()
    }
}

fn cases() -> u32 {
    std::env::var("HYDRANT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_acknowledged_record_survives_power_loss((growing, actions) in actions()) {
        let mut h = Harness::new(growing);
        for a in &actions {
            h.step(a)?;
        }
        // A final power loss with nothing armed (retention perhaps held mid-way): whatever was
        // acknowledged survives.
        h.disk.crash(0xC0FFEE);
        h.after_step()?;
        h.finish_retention()?;
    }
}
