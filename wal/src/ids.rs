//! Newtypes for positions in the log.

use std::fmt;

/// A log sequence number: the position of one record in one log.
///
/// LSNs are dense and monotonic per log: the first record ever appended has `Lsn(0)`, and every
/// append of `n` records takes the next `n` numbers. An LSN is never reused, not even after a crash:
/// a record that was not durable when the process died is gone, and so is its LSN, because only
/// durable records ever leave the log (readers stop at the durable end).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The first LSN of every log.
    pub const ZERO: Lsn = Lsn(0);

    /// The LSN `n` records after this one.
    #[must_use]
    pub fn plus(self, n: u64) -> Lsn {
        Lsn(self.0.checked_add(n).expect("LSN space exhausted"))
    }

    /// The raw number.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({})", self.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The half-open range of LSNs `[start, end)` that one append took.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LsnRange {
    /// The LSN of the first record of the append.
    pub start: Lsn,
    /// One past the LSN of the last record.
    pub end: Lsn,
}

impl LsnRange {
    /// The number of records in the range.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }

    /// True when the range holds no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}
