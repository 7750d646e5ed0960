//! The annex a Kinesis source writes into each of its WAL frames: which shard the frame's
//! records came from, each record's Kinesis metadata, and the read position of every shard.
//!
//! The positions are the whole map (every shard read so far, with the last sequence number
//! appended from it), not only this frame's shard: the log's last frame then says how far the
//! source was read, even for a shard whose own last frame retention has deleted. Frames are
//! appended in the order the map changes (one lock, see [`super::appender`]) and the recovered
//! log is a prefix, so the last durable frame's map is exactly what is durable.
//!
//! ```text
//! Format (little-endian; str = { len u16 | UTF-8 bytes }):
//! { magic "KA" | version u8 = 2 | shard str | record_count u32 |
//!   { sequence_number str | subsequence_number u32 | partition_key str |
//!     approximate_arrival_ms u64 }* record_count |
//!   position_count u32 | { shard str | last_sequence_number str }* position_count }
//! ```
//!
//! Version 1 (written before KPL de-aggregation) has no `subsequence_number`; it is read as 0.
//!
//! A position is a Kinesis record's sequence number, never a user record's place inside a KPL
//! aggregate: the user records of one Kinesis record are appended in one frame
//! ([`super::appender`]), so the log holds all of them or none.

use std::collections::BTreeMap;

const MAGIC: [u8; 2] = *b"KA";
const VERSION: u8 = 2;
/// The version without sub-sequence numbers (still read).
const VERSION_1: u8 = 1;

/// One record's Kinesis metadata (Firehose's `kinesisRecordMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// `sequenceNumber`: the Kinesis record's (shared by the user records of a KPL aggregate).
    pub sequence_number: String,
    /// `subsequenceNumber`: the user record's index in its KPL aggregate; 0 when the Kinesis
    /// record is not aggregated.
    pub subsequence_number: u32,
    /// `partitionKey` (a KPL user record's own key).
    pub partition_key: String,
    /// `approximateArrivalTimestamp`, ms since the epoch.
    pub approximate_arrival_ms: u64,
}

/// A decoded annex.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Annex {
    /// The shard of the frame's records.
    pub shard: String,
    /// One per record of the frame, in order.
    pub records: Vec<RecordMeta>,
    /// Every shard read so far -> the last sequence number appended from it (this frame's
    /// included).
    pub positions: BTreeMap<String, String>,
}

/// Why an annex did not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnexError {
    /// Not an annex of this source, or of a later version.
    #[error("not a Kinesis source annex (magic or version)")]
    NotKinesis,
    /// The bytes end early or a string is not UTF-8.
    #[error("damaged Kinesis source annex at byte {0}")]
    Damaged(usize),
    /// A string is longer than the format allows.
    #[error("a Kinesis value of {0} bytes does not fit the annex")]
    TooLong(usize),
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), AnnexError> {
    let len = u16::try_from(s.len()).map_err(|_| AnnexError::TooLong(s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<(), AnnexError> {
    let n = u32::try_from(n).map_err(|_| AnnexError::TooLong(n))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

impl Annex {
    /// Encodes the annex.
    ///
    /// # Errors
    /// [`AnnexError::TooLong`] for a string over 65,535 bytes (Kinesis's own limits are far
    /// below: 256-character partition keys, 128-digit sequence numbers).
    pub fn encode(&self) -> Result<Vec<u8>, AnnexError> {
        let mut out = Vec::with_capacity(64 + self.records.len() * 96);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        put_str(&mut out, &self.shard)?;
        put_count(&mut out, self.records.len())?;
        for r in &self.records {
            put_str(&mut out, &r.sequence_number)?;
            out.extend_from_slice(&r.subsequence_number.to_le_bytes());
            put_str(&mut out, &r.partition_key)?;
            out.extend_from_slice(&r.approximate_arrival_ms.to_le_bytes());
        }
        put_count(&mut out, self.positions.len())?;
        for (shard, seq) in &self.positions {
            put_str(&mut out, shard)?;
            put_str(&mut out, seq)?;
        }
        Ok(out)
    }

    /// Decodes an annex.
    ///
    /// # Errors
    /// [`AnnexError::NotKinesis`] or [`AnnexError::Damaged`].
    pub fn decode(b: &[u8]) -> Result<Annex, AnnexError> {
        if b.len() < 3 || b[0..2] != MAGIC || !matches!(b[2], VERSION | VERSION_1) {
            return Err(AnnexError::NotKinesis);
        }
        let version = b[2];
        let mut r = Cursor { b, at: 3 };
        let shard = r.str()?;
        let n = r.u32()? as usize;
        let mut records = Vec::with_capacity(n.min(b.len() / 10));
        for _ in 0..n {
            let sequence_number = r.str()?;
            let subsequence_number = if version == VERSION_1 { 0 } else { r.u32()? };
            let partition_key = r.str()?;
            let approximate_arrival_ms = r.u64()?;
            records.push(RecordMeta {
                sequence_number,
                subsequence_number,
                partition_key,
                approximate_arrival_ms,
            });
        }
        let m = r.u32()? as usize;
        let mut positions = BTreeMap::new();
        for _ in 0..m {
            let shard = r.str()?;
            let seq = r.str()?;
            positions.insert(shard, seq);
        }
        if r.at != b.len() {
            return Err(AnnexError::Damaged(r.at));
        }
        Ok(Annex {
            shard,
            records,
            positions,
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], AnnexError> {
        let end = self.at.checked_add(n).ok_or(AnnexError::Damaged(self.at))?;
        let s = self
            .b
            .get(self.at..end)
            .ok_or(AnnexError::Damaged(self.at))?;
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, AnnexError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Result<u64, AnnexError> {
        let s = self.take(8)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        Ok(u64::from_le_bytes(w))
    }

    fn str(&mut self) -> Result<String, AnnexError> {
        let at = self.at;
        let s = self.take(2)?;
        let len = u16::from_le_bytes([s[0], s[1]]) as usize;
        let s = self.take(len)?;
        String::from_utf8(s.to_vec()).map_err(|_| AnnexError::Damaged(at))
    }
}

/// Kinesis sequence numbers are decimal strings of up to 128 digits: compared as numbers.
#[must_use]
pub fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Annex {
        Annex {
            shard: "shardId-000000000003".into(),
            records: vec![
                RecordMeta {
                    sequence_number: "49590338271490256608559692538361571095921575989136588898"
                        .into(),
                    subsequence_number: 7,
                    partition_key: "pk-ü".into(),
                    approximate_arrival_ms: 1_700_000_000_123,
                },
                RecordMeta {
                    sequence_number: "49590338271490256608559692538361571095921575989136588899"
                        .into(),
                    subsequence_number: 0,
                    partition_key: String::new(),
                    approximate_arrival_ms: 0,
                },
            ],
            positions: [
                ("shardId-000000000001".to_string(), "7".to_string()),
                ("shardId-000000000003".to_string(), "9".to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn round_trips_and_every_truncation_is_refused() {
        let a = sample();
        let bytes = a.encode().unwrap_or_default();
        assert_eq!(Annex::decode(&bytes), Ok(a));
        for cut in 0..bytes.len() {
            assert!(Annex::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Annex::decode(&longer).is_err());
        assert_eq!(Annex::decode(b"XY\x01"), Err(AnnexError::NotKinesis));
    }

    /// A version 1 annex (before sub-sequence numbers) reads with every sub-sequence number 0.
    #[test]
    fn version_1_annexes_still_decode() {
        let mut v1 = MAGIC.to_vec();
        v1.push(VERSION_1);
        let s = |out: &mut Vec<u8>, v: &str| put_str(out, v).unwrap_or_default();
        s(&mut v1, "shardId-000000000000");
        v1.extend_from_slice(&1u32.to_le_bytes());
        s(&mut v1, "42");
        s(&mut v1, "pk");
        v1.extend_from_slice(&5u64.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        s(&mut v1, "shardId-000000000000");
        s(&mut v1, "42");
        let a = Annex::decode(&v1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.records,
            vec![RecordMeta {
                sequence_number: "42".into(),
                subsequence_number: 0,
                partition_key: "pk".into(),
                approximate_arrival_ms: 5,
            }]
        );
        assert_eq!(a.positions.get("shardId-000000000000"), Some(&"42".into()));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(sequence_cmp("9", "10"), Less);
        assert_eq!(sequence_cmp("10", "10"), Equal);
        assert_eq!(sequence_cmp("11", "10"), Greater);
    }
}
