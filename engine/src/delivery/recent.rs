//! The latest delivery failures of a destination, for the console: failed attempts and records
//! filed in the error output, newest last, at most [`RECENT_MAX`] of them (a bounded ring: its
//! memory does not grow with the number of failures), each record's raw bytes cut to
//! [`RAW_BYTES_MAX`].
//!
//! The worker pushes; the console copies the ring when it renders a page. Nothing here is on the
//! path of a record that is delivered.

use std::collections::VecDeque;

/// Entries kept per destination.
pub const RECENT_MAX: usize = 20;
/// Bytes of a failed record's data kept for display.
pub const RAW_BYTES_MAX: usize = 2048;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// An attempt to deliver a batch failed (it is retried, or goes to the error output).
    Attempt,
    /// A record was written to the error output.
    ErrorOutput,
}

/// One failure.
#[derive(Clone, Debug)]
pub struct FailureEntry {
    /// When it happened, ms since the epoch.
    pub time_ms: u64,
    /// What failed.
    pub kind: FailureKind,
    /// Firehose's error code (`S3.PutObject`, `Lambda.FunctionError`, ...).
    pub code: String,
    /// The error message.
    pub message: String,
    /// The failed record's data (error-output entries only), cut to [`RAW_BYTES_MAX`].
    pub raw: Vec<u8>,
    /// The batch's records (attempts) or 1 (an error-output record).
    pub records: u64,
}

/// The ring and the times of the last success and failure.
#[derive(Debug, Default)]
pub struct RecentFailures {
    entries: VecDeque<FailureEntry>,
    /// When the last attempt succeeded (ms since the epoch, 0: none yet).
    pub last_ok_ms: u64,
    /// When the last attempt failed (ms since the epoch, 0: none yet).
    pub last_failed_ms: u64,
}

impl RecentFailures {
    /// Records a failure, dropping the oldest past [`RECENT_MAX`].
    pub fn push(&mut self, mut entry: FailureEntry) {
        entry.raw.truncate(RAW_BYTES_MAX);
        if entry.kind == FailureKind::Attempt {
            self.last_failed_ms = self.last_failed_ms.max(entry.time_ms);
        }
        if self.entries.len() == RECENT_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        debug_assert!(self.entries.len() <= RECENT_MAX);
    }

    /// Records a successful attempt.
    pub fn ok(&mut self, time_ms: u64) {
        self.last_ok_ms = self.last_ok_ms.max(time_ms);
    }

    /// The entries, newest first.
    #[must_use]
    pub fn newest_first(&self) -> Vec<FailureEntry> {
        self.entries.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_cuts_raw_data() {
        let mut r = RecentFailures::default();
        for i in 0..(RECENT_MAX as u64 + 5) {
            r.push(FailureEntry {
                time_ms: i,
                kind: FailureKind::ErrorOutput,
                code: format!("c{i}"),
                message: String::new(),
                raw: vec![b'x'; RAW_BYTES_MAX + 10],
                records: 1,
            });
        }
        let all = r.newest_first();
        assert_eq!(all.len(), RECENT_MAX);
        assert_eq!(all[0].time_ms, RECENT_MAX as u64 + 4);
        assert_eq!(all[RECENT_MAX - 1].time_ms, 5);
        assert!(all.iter().all(|e| e.raw.len() == RAW_BYTES_MAX));
        assert_eq!(r.last_failed_ms, 0, "error-output records are not attempts");
    }
}
