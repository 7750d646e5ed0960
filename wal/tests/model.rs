//! Model check of the log against simulated power loss.
//!
//! Random sequences of appends, waits (acknowledgements), retention, reads, clean reopens and
//! power losses (armed to strike at any storage operation, including inside a sync, a rotation,
//! or recovery itself) run against the real `Wal` on a [`SimDisk`]. After every crash the log is
//! reopened and checked against a reference model:
//!
//! 1. every acknowledged record is there, with its exact bytes;
//! 2. the recovered log is a prefix of what was appended (same bytes at every LSN), with dense LSNs;
//! 3. `verify` finds nothing wrong.
//!
//! `HYDRANT_PROPTEST_CASES` sets the number of cases (default 10,000); a failing case prints its
//! minimal action sequence.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Lsn, ReadLimit, Ticket, Wal, WalOptions};

use proptest::prelude::*;

const SEGMENT_BYTES: u64 = 8192;

#[derive(Clone, Debug)]
enum Action {
    /// Append a batch with these record lengths (the ticket is kept, not waited on).
    Append(Vec<u16>),
    /// Wait on every outstanding ticket: their records become acknowledged.
    Wait,
    /// Arm a power loss that strikes at the `after`-th storage operation from now.
    Crash { after: u8, seed: u64 },
    /// Close and reopen cleanly.
    Reopen,
    /// Retention: drop segments below a point between the first and the durable LSN.
    Truncate(u8),
    /// Read from a point between the first LSN and the durable end, and compare with the model.
    Read(u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => prop::collection::vec(prop_oneof![3 => 0u16..64, 2 => 64u16..900, 1 => 900u16..3000], 1..6)
            .prop_map(Action::Append),
        3 => Just(Action::Wait),
        2 => (0u8..24, any::<u64>()).prop_map(|(after, seed)| Action::Crash { after, seed }),
        1 => Just(Action::Reopen),
        1 => any::<u8>().prop_map(Action::Truncate),
        1 => any::<u8>().prop_map(Action::Read),
    ]
}

fn options() -> WalOptions {
    WalOptions {
        segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: 4096,
        background_prepare: false,
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
    wal: Option<Wal>,
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
    fn new() -> Harness {
        let disk = SimDisk::new();
        let (wal, _) = Wal::open_with(disk.storage(), Path::new(DIR), options()).unwrap();
        Harness {
            disk,
            wal: Some(wal),
            model: Vec::new(),
            acked_end: 0,
            tickets: Vec::new(),
            life: 0,
            seen_crashes: 0,
        }
    }

    fn wal(&self) -> &Wal {
        self.wal.as_ref().unwrap()
    }

    /// If a crash fired, recover and check the model. Returns true when it did.
    fn after_step(&mut self) -> Result<(), TestCaseError> {
        if self.disk.crash_count() == self.seen_crashes {
            return Ok(());
        }
        self.tickets.clear();
        self.wal = None; // its handles are dead; dropping it joins its threads
                         // Reopen; a still-armed crash may strike recovery itself, so retry until it opens.
        let wal = loop {
            self.seen_crashes = self.disk.crash_count();
            match Wal::open_with(self.disk.storage(), Path::new(DIR), options()) {
                Ok((w, _)) => break w,
                Err(e) => {
                    prop_assert!(
                        self.disk.crash_count() > self.seen_crashes,
                        "recovery failed without a crash: {e}"
                    );
                }
            }
        };
        self.disk.disarm_crash();
        self.seen_crashes = self.disk.crash_count();
        self.check_recovered(&wal)?;
        self.wal = Some(wal);
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
            Action::Crash { after, seed } => {
                self.disk.arm_crash(u64::from(*after), *seed);
            }
            Action::Reopen => {
                self.tickets.clear();
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
                match Wal::open_with(self.disk.storage(), Path::new(DIR), options()) {
                    Ok((w, _)) => {
                        let end = w.next_lsn().0;
                        prop_assert_eq!(end, self.model.len() as u64, "clean reopen lost records");
                        self.wal = Some(w);
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
            Action::Truncate(frac) => {
                let wal = self.wal();
                let (first, durable) = (wal.first_lsn().0, wal.durable_lsn().0);
                let cut = first + (durable - first) * u64::from(*frac) / 255;
                match wal.truncate_before(Lsn(cut)) {
                    Ok(_) => {
                        let now_first = self.wal().first_lsn().0;
                        prop_assert!(
                            now_first <= cut.max(first),
                            "retention removed records at or above the cut"
                        );
                    }
                    Err(e) => prop_assert!(
                        self.disk.crash_count() > self.seen_crashes,
                        "truncate failed without a crash: {e}"
                    ),
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
    fn every_acknowledged_record_survives_power_loss(actions in prop::collection::vec(action(), 1..40)) {
        let mut h = Harness::new();
        for a in &actions {
            h.step(a)?;
        }
        // A final power loss with nothing armed: whatever was acknowledged survives.
        h.disk.crash(0xC0FFEE);
        h.after_step()?;
    }
}
