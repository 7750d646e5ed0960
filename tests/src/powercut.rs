//! The record identity of the power-cut test (`tests/powercut/`), shared by its producer (which
//! runs inside the guest and prints what hydrantd acknowledged on the serial console) and its
//! checker (which runs on the host over the serial logs and the object store read out of the
//! guest's disk).
//!
//! A record is one line, `<tag>-t<thread>-b<batch>-i<index>:<padding>\n`: `tag` names the boot
//! (`c17`), the padding is a pure function of the identity, so the checker recomputes every
//! record's bytes from its id. The producer prints one line per acknowledged PutRecordBatch:
//! `ACK <stream> <tag> <thread> <batch> <n>` when all `n` records were accepted (indexes
//! `0..n`), or `ACKSOME <stream> <tag> <thread> <batch> <i>,<j>,...` naming the accepted indexes
//! when some failed. Each stream has its own producer threads (numbered from 0 per stream), so a
//! record's identity is unique within its stream.

use std::collections::BTreeSet;

/// One record's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    /// The boot that produced it (`c17`, `s3`): no two boots share a tag.
    pub tag: String,
    /// The producer thread.
    pub thread: u32,
    /// The thread's batch number, from 0 in each boot.
    pub batch: u64,
    /// The record's index in its batch.
    pub index: u32,
}

/// The bytes of the record `key`, newline included.
#[must_use]
pub fn record_bytes(key: &RecordKey) -> Vec<u8> {
    let mut v = format!("{}-t{}-b{}-i{}:", key.tag, key.thread, key.batch, key.index).into_bytes();
    let len = 8 + (key.batch * 37 + u64::from(key.index) * 11 + u64::from(key.thread) * 5) % 240;
    let mut x = key.batch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (u64::from(key.thread) << 32)
        ^ u64::from(key.index)
        ^ 0x2545_F491_4F6C_DD1D;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v.push(b'\n');
    v
}

/// The identity a record's bytes claim (`None` when they are not shaped as a record). The
/// caller compares the bytes with [`record_bytes`] of the result.
#[must_use]
pub fn parse_record(bytes: &[u8]) -> Option<RecordKey> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, _) = text.split_once(':')?;
    let mut parts = head.rsplitn(4, '-');
    let index = parts.next()?.strip_prefix('i')?.parse().ok()?;
    let batch = parts.next()?.strip_prefix('b')?.parse().ok()?;
    let thread = parts.next()?.strip_prefix('t')?.parse().ok()?;
    let tag = parts.next()?.to_owned();
    Some(RecordKey {
        tag,
        thread,
        batch,
        index,
    })
}

/// The stream and the records an acknowledgement line names (`None` for any other line, or one
/// cut short).
#[must_use]
pub fn parse_ack_line(line: &str) -> Option<(String, Vec<RecordKey>)> {
    let mut f = line.split(' ');
    let kind = f.next()?;
    let stream = f.next()?.to_owned();
    let tag = f.next()?.to_owned();
    let thread: u32 = f.next()?.parse().ok()?;
    let batch: u64 = f.next()?.parse().ok()?;
    let last = f.next()?;
    if f.next().is_some() || tag.is_empty() || stream.is_empty() {
        return None;
    }
    let indexes: BTreeSet<u32> = match kind {
        "ACK" => (0..last.parse::<u32>().ok()?).collect(),
        "ACKSOME" => last
            .split(',')
            .map(|i| i.parse().ok())
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let keys = indexes
        .into_iter()
        .map(|index| RecordKey {
            tag: tag.clone(),
            thread,
            batch,
            index,
        })
        .collect();
    Some((stream, keys))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_differ() {
        let k = RecordKey {
            tag: "c-1x".into(),
            thread: 3,
            batch: 77,
            index: 12,
        };
        let b = record_bytes(&k);
        assert!(b.ends_with(b"\n"));
        assert_eq!(parse_record(&b), Some(k.clone()));
        let other = RecordKey { index: 13, ..k };
        assert_ne!(record_bytes(&other), b);
        assert_eq!(parse_record(b"garbage\n"), None);
    }

    #[test]
    fn ack_lines() {
        let (stream, all) = parse_ack_line("ACK default c2 1 9 3").unwrap();
        assert_eq!(stream, "default");
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].index, 2);
        let (stream, some) = parse_ack_line("ACKSOME pg c2 1 9 0,4").unwrap();
        assert_eq!(stream, "pg");
        assert_eq!(some.iter().map(|k| k.index).collect::<Vec<_>>(), vec![0, 4]);
        assert_eq!(parse_ack_line("ACK default c2 1 9"), None);
        assert_eq!(parse_ack_line("ACK default c2 1 9 3 x"), None);
        assert_eq!(parse_ack_line("ACK c2 1 9 3"), None);
        assert_eq!(parse_ack_line("[ 1.0] ACK"), None);
    }
}
