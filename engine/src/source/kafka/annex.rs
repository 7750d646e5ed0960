//! The annex a Kafka source writes into each of its WAL frames: each record's Kafka metadata
//! (topic, partition, offset, timestamp and its type, key, headers) and the read position of
//! every partition read so far.
//!
//! As for the Kinesis source ([`crate::source::kinesis::annex`]), the positions are the whole
//! map, not only this frame's partitions: the log's last durable frame then says how far every
//! partition was read, and frames are appended in the order the map changes, so the recovered
//! log's last frame holds exactly what is durable. A frame may hold records of several
//! partitions (one poll of the consumer); the records of one partition are in offset order.
//!
//! ```text
//! Format (little-endian; str = { len u16 | UTF-8 }; opt = { len u32 (u32::MAX: null) | bytes }):
//! { magic "KF" | version u8 = 1 | record_count u32 |
//!   { topic str | partition i32 | offset i64 | timestamp_ms i64 | timestamp_type u8 |
//!     key opt | header_count u32 | { name str | value opt }* header_count }* record_count |
//!   position_count u32 | { topic str | partition i32 | last_offset i64 }* position_count }
//! ```
//!
//! `timestamp_type`: 0 not available, 1 CreateTime, 2 LogAppendTime (Kafka's own numbering
//! plus one).

use std::collections::BTreeMap;

const MAGIC: [u8; 2] = *b"KF";
const VERSION: u8 = 1;
const NULL: u32 = u32::MAX;

/// A topic's partition: the key of a position (a consumer group of part 2 assigns these).
pub type TopicPartition = (String, i32);

/// A record's timestamp type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// No timestamp.
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker.
    LogAppendTime,
}

impl TimestampType {
    fn code(self) -> u8 {
        match self {
            TimestampType::NotAvailable => 0,
            TimestampType::CreateTime => 1,
            TimestampType::LogAppendTime => 2,
        }
    }

    fn of(code: u8) -> Option<TimestampType> {
        match code {
            0 => Some(TimestampType::NotAvailable),
            1 => Some(TimestampType::CreateTime),
            2 => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    /// Kafka's name (`CREATE_TIME`, `LOG_APPEND_TIME`, `NO_TIMESTAMP_TYPE`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::NotAvailable => "NO_TIMESTAMP_TYPE",
            TimestampType::CreateTime => "CREATE_TIME",
            TimestampType::LogAppendTime => "LOG_APPEND_TIME",
        }
    }
}

/// One record's Kafka metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp, ms since the epoch (-1: none).
    pub timestamp_ms: i64,
    /// What the timestamp is.
    pub timestamp_type: TimestampType,
    /// The record's key (`None`: a null key).
    pub key: Option<Vec<u8>>,
    /// The record's headers, in order (a value may be null).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A decoded annex.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Annex {
    /// One per record of the frame, in order.
    pub records: Vec<RecordMeta>,
    /// Every partition read so far -> the offset of the last record appended from it (this
    /// frame's included).
    pub positions: BTreeMap<TopicPartition, i64>,
}

/// Why an annex did not decode or encode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnexError {
    /// Not an annex of this source, or of a later version.
    #[error("not a Kafka source annex (magic or version)")]
    NotKafka,
    /// The bytes end early, a string is not UTF-8 or a value is out of range.
    #[error("damaged Kafka source annex at byte {0}")]
    Damaged(usize),
    /// A string or value is longer than the format allows.
    #[error("a Kafka value of {0} bytes does not fit the annex")]
    TooLong(usize),
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), AnnexError> {
    let len = u16::try_from(s.len()).map_err(|_| AnnexError::TooLong(s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) -> Result<(), AnnexError> {
    match b {
        None => out.extend_from_slice(&NULL.to_le_bytes()),
        Some(b) => {
            let len = u32::try_from(b.len())
                .ok()
                .filter(|&l| l != NULL)
                .ok_or(AnnexError::TooLong(b.len()))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<(), AnnexError> {
    let n = u32::try_from(n).map_err(|_| AnnexError::TooLong(n))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// The encoded size of one record's metadata (for cutting batches into frames).
#[must_use]
pub fn record_len(m: &RecordMeta) -> u64 {
    let opt = |b: &Option<Vec<u8>>| 4 + b.as_ref().map_or(0, Vec::len) as u64;
    2 + m.topic.len() as u64
        + 4
        + 8
        + 8
        + 1
        + opt(&m.key)
        + 4
        + m.headers
            .iter()
            .map(|(n, v)| 2 + n.len() as u64 + opt(v))
            .sum::<u64>()
}

/// The encoded size of a position map with `extra` more entries of `topic`.
#[must_use]
pub fn positions_len(positions: &BTreeMap<TopicPartition, i64>, topic: &str, extra: usize) -> u64 {
    let entry = |t: &str| 2 + t.len() as u64 + 4 + 8;
    4 + positions.keys().map(|(t, _)| entry(t)).sum::<u64>() + extra as u64 * entry(topic)
}

/// Bytes of the annex before its records: magic, version, record count.
pub const HEADER_LEN: u64 = 2 + 1 + 4;

impl Annex {
    /// Encodes the annex.
    ///
    /// # Errors
    /// [`AnnexError::TooLong`] for a topic or header name over 65,535 bytes or a key or header
    /// value of 4 GiB.
    pub fn encode(&self) -> Result<Vec<u8>, AnnexError> {
        let mut out = Vec::with_capacity(
            (HEADER_LEN + self.records.iter().map(record_len).sum::<u64>()) as usize + 64,
        );
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        put_count(&mut out, self.records.len())?;
        for r in &self.records {
            put_str(&mut out, &r.topic)?;
            out.extend_from_slice(&r.partition.to_le_bytes());
            out.extend_from_slice(&r.offset.to_le_bytes());
            out.extend_from_slice(&r.timestamp_ms.to_le_bytes());
            out.push(r.timestamp_type.code());
            put_opt(&mut out, r.key.as_deref())?;
            put_count(&mut out, r.headers.len())?;
            for (name, value) in &r.headers {
                put_str(&mut out, name)?;
                put_opt(&mut out, value.as_deref())?;
            }
        }
        put_count(&mut out, self.positions.len())?;
        for ((topic, partition), offset) in &self.positions {
            put_str(&mut out, topic)?;
            out.extend_from_slice(&partition.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        Ok(out)
    }

    /// Decodes an annex.
    ///
    /// # Errors
    /// [`AnnexError::NotKafka`] or [`AnnexError::Damaged`].
    pub fn decode(b: &[u8]) -> Result<Annex, AnnexError> {
        if b.len() < 3 || b[0..2] != MAGIC || b[2] != VERSION {
            return Err(AnnexError::NotKafka);
        }
        let mut r = Cursor { b, at: 3 };
        let n = r.u32()? as usize;
        let mut records = Vec::with_capacity(n.min(b.len() / 32));
        for _ in 0..n {
            let topic = r.str()?;
            let partition = r.i32()?;
            let offset = r.i64()?;
            let timestamp_ms = r.i64()?;
            let at = r.at;
            let timestamp_type = TimestampType::of(r.take(1)?[0]).ok_or(AnnexError::Damaged(at))?;
            let key = r.opt()?;
            let h = r.u32()? as usize;
            let mut headers = Vec::with_capacity(h.min(b.len() / 6));
            for _ in 0..h {
                let name = r.str()?;
                let value = r.opt()?;
                headers.push((name, value));
            }
            records.push(RecordMeta {
                topic,
                partition,
                offset,
                timestamp_ms,
                timestamp_type,
                key,
                headers,
            });
        }
        let m = r.u32()? as usize;
        let mut positions = BTreeMap::new();
        for _ in 0..m {
            let topic = r.str()?;
            let partition = r.i32()?;
            let offset = r.i64()?;
            positions.insert((topic, partition), offset);
        }
        if r.at != b.len() {
            return Err(AnnexError::Damaged(r.at));
        }
        Ok(Annex { records, positions })
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

    fn array<const N: usize>(&mut self) -> Result<[u8; N], AnnexError> {
        let mut w = [0u8; N];
        w.copy_from_slice(self.take(N)?);
        Ok(w)
    }

    fn u32(&mut self) -> Result<u32, AnnexError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, AnnexError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, AnnexError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn str(&mut self) -> Result<String, AnnexError> {
        let at = self.at;
        let len = u16::from_le_bytes(self.array()?) as usize;
        let s = self.take(len)?;
        String::from_utf8(s.to_vec()).map_err(|_| AnnexError::Damaged(at))
    }

    fn opt(&mut self) -> Result<Option<Vec<u8>>, AnnexError> {
        let len = self.u32()?;
        if len == NULL {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Annex {
        Annex {
            records: vec![
                RecordMeta {
                    topic: "orders".into(),
                    partition: 3,
                    offset: 41,
                    timestamp_ms: 1_700_000_000_123,
                    timestamp_type: TimestampType::CreateTime,
                    key: Some(b"k-\xff".to_vec()),
                    headers: vec![
                        ("trace".into(), Some(b"abc".to_vec())),
                        ("nothing".into(), None),
                    ],
                },
                RecordMeta {
                    topic: "orders".into(),
                    partition: 0,
                    offset: 0,
                    timestamp_ms: -1,
                    timestamp_type: TimestampType::NotAvailable,
                    key: None,
                    headers: Vec::new(),
                },
            ],
            positions: [
                (("orders".to_string(), 0), 0),
                (("orders".to_string(), 3), 41),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn round_trips_sizes_match_and_every_truncation_is_refused() {
        let a = sample();
        let bytes = a.encode().unwrap_or_default();
        assert_eq!(Annex::decode(&bytes), Ok(a.clone()));
        let predicted = HEADER_LEN
            + a.records.iter().map(record_len).sum::<u64>()
            + positions_len(&a.positions, "orders", 0);
        assert_eq!(predicted, bytes.len() as u64);
        for cut in 0..bytes.len() {
            assert!(Annex::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Annex::decode(&longer).is_err());
        assert_eq!(Annex::decode(b"KA\x02"), Err(AnnexError::NotKafka));
    }
}
