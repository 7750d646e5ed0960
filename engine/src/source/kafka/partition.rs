//! The partitions a Kafka reader owns: where each starts, and which of its records are
//! admitted into the log.
//!
//! A partition is owned from the moment it is assigned to the consumer (here: every partition
//! of the topic, found by metadata; in a fleet, those the group gives the node) until it is
//! revoked. Its start is decided once per assignment:
//! - the log holds a position for it (the offset of the last record appended,
//!   [`super::appender`]): right after that offset, every record admitted (no timestamp
//!   filter: the stream was already reading it);
//! - it does not: the first offset whose timestamp is at or after the start
//!   (`ReadFromTimestamp`, else the delivery stream's creation), asked of the broker
//!   (`offsets_for_times`); when the broker has none or cannot say, the partition's beginning.
//!   Either way the records are checked until the first one at or after the start: those
//!   before it are skipped (`hydrant_kafka_skipped_before_start_total`), and from it on every
//!   record is admitted, as Firehose reads a partition from that offset on (a later record with
//!   an older producer timestamp is still delivered).
//!
//! A record at or before the log's position is never admitted (the appender's own check): a
//! client that delivers an offset twice cannot put it in the log twice.

use std::collections::BTreeMap;

use super::annex::TopicPartition;
use super::appender::Appender;

/// Where a newly owned partition starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At this offset.
    At(i64),
    /// At the partition's beginning (its earliest retained offset).
    Beginning,
}

/// What to do with a record read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Append it.
    Yes,
    /// Already in the log (at or before the partition's position): drop it.
    Duplicate,
    /// Older than the start and no record at or after the start was read yet: skip it.
    BeforeStart,
}

/// One owned partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owned {
    /// Whether records are admitted without looking at their timestamps (the log holds a
    /// position, or a record at or after the start was admitted).
    started: bool,
}

/// The partitions one reader owns (see the module docs).
#[derive(Debug)]
pub struct Partitions {
    topic: String,
    start_ms: u64,
    owned: BTreeMap<i32, Owned>,
}

impl Partitions {
    /// No partition owned yet; records of `topic` before `start_ms` are skipped.
    #[must_use]
    pub fn new(topic: &str, start_ms: u64) -> Partitions {
        Partitions {
            topic: topic.to_string(),
            start_ms,
            owned: BTreeMap::new(),
        }
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partitions owned.
    pub fn owned(&self) -> impl Iterator<Item = i32> + '_ {
        self.owned.keys().copied()
    }

    /// Whether `partition` is owned.
    #[must_use]
    pub fn owns(&self, partition: i32) -> bool {
        self.owned.contains_key(&partition)
    }

    fn tp(&self, partition: i32) -> TopicPartition {
        (self.topic.clone(), partition)
    }

    /// Takes `partition` over and says where to read it from: right after the log's position,
    /// else `by_time` (the broker's first offset at or after the start, when it knows one),
    /// else the beginning.
    pub fn own(&mut self, appender: &Appender, partition: i32, by_time: Option<i64>) -> Start {
        match appender.position(&self.tp(partition)) {
            Some(last) => {
                self.owned.insert(partition, Owned { started: true });
                Start::At(last + 1)
            }
            None => {
                self.owned.insert(partition, Owned { started: false });
                by_time.map_or(Start::Beginning, Start::At)
            }
        }
    }

    /// Gives `partition` up (a fleet's revocation).
    pub fn release(&mut self, partition: i32) {
        self.owned.remove(&partition);
    }

    /// Whether the record at `offset` of `partition`, with timestamp `timestamp_ms` (`None`:
    /// none), goes into the log.
    pub fn admit(
        &mut self,
        appender: &Appender,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
    ) -> Admit {
        if !appender.is_new(&self.tp(partition), offset) {
            return Admit::Duplicate;
        }
        let start_ms = self.start_ms;
        let owned = self
            .owned
            .entry(partition)
            .or_insert(Owned { started: false });
        if !owned.started {
            let before = timestamp_ms.is_some_and(|t| t < 0 || (t as u64) < start_ms);
            if before {
                return Admit::BeforeStart;
            }
            owned.started = true;
        }
        Admit::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kafka::annex::{RecordMeta, TimestampType};
    use hydrant_wal::{Wal, WalOptions};
    use std::sync::Arc;

    /// A partition with a position resumes right after it and admits everything new; one
    /// without skips records before the start until the first at or after it, then admits
    /// every later record whatever its timestamp.
    #[tokio::test]
    async fn starts_and_admission() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (wal, _) =
            Wal::open(dir.path(), WalOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let a = Appender::recover(Arc::new(wal)).unwrap_or_else(|e| panic!("{e}"));
        let meta = RecordMeta {
            topic: "t".into(),
            partition: 0,
            offset: 41,
            timestamp_ms: 5,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            headers: Vec::new(),
        };
        a.append(&[b"x".to_vec()], vec![meta], &|| false, &|| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut p = Partitions::new("t", 1_000);
        assert_eq!(p.own(&a, 0, Some(3)), Start::At(42));
        assert_eq!(p.admit(&a, 0, 41, Some(2_000)), Admit::Duplicate);
        assert_eq!(p.admit(&a, 0, 42, Some(1)), Admit::Yes);
        assert_eq!(p.own(&a, 1, None), Start::Beginning);
        assert_eq!(p.own(&a, 2, Some(17)), Start::At(17));
        assert_eq!(p.admit(&a, 1, 0, Some(999)), Admit::BeforeStart);
        assert_eq!(p.admit(&a, 1, 1, Some(1_000)), Admit::Yes);
        assert_eq!(p.admit(&a, 1, 2, Some(3)), Admit::Yes);
        assert_eq!(p.admit(&a, 2, 17, None), Admit::Yes);
        assert_eq!(p.owned().collect::<Vec<_>>(), vec![0, 1, 2]);
        p.release(1);
        assert!(!p.owns(1));
    }
}
