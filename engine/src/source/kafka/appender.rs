//! The one way a Kafka source writes to its stream's WAL: one frame per batch of polled
//! records (cut into several when it does not fit one), with the records' metadata and every
//! partition's position in the frame's annex ([`super::annex`]), and the position recovery
//! that reads them back.
//!
//! Exactly once from partition to log (the Kinesis source's rules, with offsets):
//! - a partition is read from right after the offset the log holds for it (the last durable
//!   frame's annex, recovered at start), so nothing in the log is read into it twice;
//! - the positions advance in memory only together with the append that carries them (under
//!   one lock, so frames are appended in the order the map changes and each annex holds the
//!   whole map as of its frame); a record read but not durable when the process dies is in no
//!   durable frame, so the recovered position is before it and it is read again;
//! - a record at or before its partition's position is dropped before it is appended
//!   ([`Appender::is_new`]): the log never holds an offset twice, whatever the client delivers;
//! - the disk budget pauses the reader ([`hydrant_wal::Error::Full`] writes nothing): the same
//!   records are appended again once delivery has freed space.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hydrant_wal::{Lsn, Wal};

use super::annex::{self, Annex, AnnexError, RecordMeta, TopicPartition};

/// Why the source cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The WAL refused or failed the append (other than the budget, which pauses).
    #[error("the stream's WAL: {0}")]
    Wal(#[from] hydrant_wal::Error),
    /// The annex could not be encoded or the log's last annex could not be read.
    #[error(transparent)]
    Annex(#[from] AnnexError),
    /// The source was stopped while waiting for room.
    #[error("stopped")]
    Stopped,
}

/// The source's writer of its stream's WAL.
#[derive(Debug)]
pub struct Appender {
    wal: Arc<Wal>,
    /// Every partition read so far -> the offset of the last record appended from it.
    /// Invariant: equal to the annex map of the last frame appended (and, at start, of the last
    /// durable frame).
    positions: Mutex<BTreeMap<TopicPartition, i64>>,
}

/// Bytes of the annex length word at the end of a frame with an annex.
const ANNEX_LEN_WORD: u64 = hydrant_wal::format::ANNEX_LEN_LEN as u64;

/// How long an append refused by the disk budget waits before it tries again.
const BUDGET_PAUSE: Duration = Duration::from_millis(250);

impl Appender {
    /// Reads the positions back from the last durable frame of `wal`.
    ///
    /// # Errors
    /// [`AppendError::Wal`] when the last frame cannot be read, [`AppendError::Annex`] when its
    /// annex is not a Kafka source's (the log holds records from another source).
    pub fn recover(wal: Arc<Wal>) -> Result<Appender, AppendError> {
        let positions = last_positions(&wal)?;
        Ok(Appender {
            wal,
            positions: Mutex::new(positions),
        })
    }

    /// The offset of the last record of `tp` in the log.
    #[must_use]
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.lock().get(tp).copied()
    }

    /// Every position (for tests and logs).
    #[must_use]
    pub fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.lock().clone()
    }

    /// Whether the record at `offset` of `tp` is past the log's position (not yet appended).
    #[must_use]
    pub fn is_new(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.position(tp).is_none_or(|p| offset > p)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, i64>> {
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a batch and waits until it is durable: as one frame, or as several when it does
    /// not fit one. The records of one partition must come in offset order, each past its
    /// partition's position. While the disk budget refuses a frame, waits and tries again
    /// (`paused` is called at every refusal) until `stopped` says to give up.
    ///
    /// # Errors
    /// [`AppendError`].
    pub async fn append(
        &self,
        records: &[Vec<u8>],
        metas: Vec<RecordMeta>,
        stopped: &(dyn Fn() -> bool + Sync),
        paused: &(dyn Fn() + Sync),
    ) -> Result<(), AppendError> {
        debug_assert_eq!(records.len(), metas.len());
        if records.is_empty() {
            return Ok(());
        }
        let max = self.wal.batch_bytes_max();
        // The annex's fixed part: header, and the position map with room for every partition
        // of the batch (new ones included).
        let topic = metas[0].topic.clone();
        let fixed = {
            let positions = self.lock();
            let new = metas
                .iter()
                .map(|m| m.partition)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|p| !positions.contains_key(&(topic.clone(), *p)))
                .count();
            annex::HEADER_LEN + annex::positions_len(&positions, &topic, new) + ANNEX_LEN_WORD
        };
        // Greedy cut: a chunk ends before the record that would make its frame too large; one
        // record always goes, alone if need be (one too large for any frame is the WAL's
        // FrameTooLarge).
        let mut bounds = Vec::new();
        let (mut start, mut bytes) = (0, fixed);
        for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
            let c = 4 + r.len() as u64 + annex::record_len(m);
            if bytes + c > max && i > start {
                bounds.push((start, i));
                (start, bytes) = (i, fixed);
            }
            bytes += c;
        }
        bounds.push((start, records.len()));
        let mut metas = metas.into_iter();
        for (s, e) in bounds {
            let chunk: Vec<RecordMeta> = metas.by_ref().take(e - s).collect();
            self.append_frame(&records[s..e], chunk, stopped, paused)
                .await?;
        }
        Ok(())
    }

    /// Appends records as one frame (see [`Appender::append`]).
    async fn append_frame(
        &self,
        records: &[Vec<u8>],
        metas: Vec<RecordMeta>,
        stopped: &(dyn Fn() -> bool + Sync),
        paused: &(dyn Fn() + Sync),
    ) -> Result<(), AppendError> {
        debug_assert_eq!(records.len(), metas.len());
        let mut annex = Annex {
            records: metas,
            positions: BTreeMap::new(),
        };
        loop {
            let attempt = {
                let mut positions = self.lock();
                annex.positions = positions.clone();
                for m in &annex.records {
                    let tp = (m.topic.clone(), m.partition);
                    debug_assert!(
                        annex.positions.get(&tp).is_none_or(|&p| m.offset > p),
                        "offset {} of {tp:?} is not past the log's position",
                        m.offset
                    );
                    annex.positions.insert(tp, m.offset);
                }
                let bytes = annex.encode()?;
                let r = self
                    .wal
                    .append_with_annex(records, hydrant_wal::now_ms(), &bytes);
                if r.is_ok() {
                    *positions = std::mem::take(&mut annex.positions);
                }
                r
            };
            match attempt {
                Ok(ticket) => {
                    // Written, perhaps not durable: a kill here must cost a re-read, never a
                    // skip or a second copy.
                    hydrant_sinks::crash::crash_point("kafka::after_append");
                    ticket.await?;
                    return Ok(());
                }
                Err(hydrant_wal::Error::Full { .. } | hydrant_wal::Error::NoSpace { .. }) => {
                    paused();
                    if stopped() {
                        return Err(AppendError::Stopped);
                    }
                    tokio::time::sleep(BUDGET_PAUSE).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The positions in the annex of the log's last durable frame (empty for an empty log).
fn last_positions(wal: &Wal) -> Result<BTreeMap<TopicPartition, i64>, AppendError> {
    let durable = wal.durable_lsn();
    if durable == Lsn(0) {
        return Ok(BTreeMap::new());
    }
    if wal.first_lsn() >= durable {
        tracing::error!(
            durable = durable.0,
            "the WAL holds no frame to recover the Kafka positions from; partitions are read \
             again from the delivery start"
        );
        return Ok(BTreeMap::new());
    }
    let mut reader = wal.reader(Lsn(durable.0 - 1))?;
    match reader.next_frame()? {
        Some(frame) => Ok(Annex::decode(frame.annex())?.positions),
        None => Ok(BTreeMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kafka::annex::TimestampType;
    use hydrant_wal::WalOptions;

    fn meta(partition: i32, offset: i64) -> RecordMeta {
        RecordMeta {
            topic: "t".into(),
            partition,
            offset,
            timestamp_ms: 1_000 + offset,
            timestamp_type: TimestampType::CreateTime,
            key: Some(format!("k{offset}").into_bytes()),
            headers: vec![("h".into(), None)],
        }
    }

    fn options() -> WalOptions {
        WalOptions {
            segment_bytes: 64 * 1024,
            first_segment_bytes: 64 * 1024,
            ..WalOptions::default()
        }
    }

    /// Positions come back from the log after a reopen (every partition's, from the last frame
    /// alone), a batch larger than a frame is cut into frames whose annexes each hold the
    /// positions as of their own last record, and records at or before a position are not new.
    #[tokio::test]
    async fn positions_are_recovered_from_the_last_frame_and_big_batches_are_cut() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let never = || false;
        let nothing = || {};
        let tp = |p: i32| ("t".to_string(), p);
        {
            let (wal, _) = Wal::open(dir.path(), options()).unwrap_or_else(|e| panic!("{e}"));
            let wal = Arc::new(wal);
            let a = Appender::recover(wal.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(a.positions().is_empty());
            a.append(&[b"a".to_vec()], vec![meta(0, 7)], &never, &nothing)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // 300 records of 1 KiB over two partitions: more than one 64 KiB segment's frame.
            let big: Vec<Vec<u8>> = (0..300).map(|_| vec![b'z'; 1024]).collect();
            let metas: Vec<RecordMeta> = (0..300).map(|i| meta(1 + (i % 2) as i32, i)).collect();
            a.append(&big, metas, &never, &nothing)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut frames = 0;
            let mut r = wal.reader(Lsn(0)).unwrap_or_else(|e| panic!("{e}"));
            while let Some(f) = r.next_frame().unwrap_or_else(|e| panic!("{e}")) {
                frames += 1;
                let annex = Annex::decode(f.annex()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(annex.records.len(), f.len());
                for m in &annex.records {
                    assert!(annex.positions[&(m.topic.clone(), m.partition)] >= m.offset);
                }
                assert_eq!(annex.positions.get(&tp(0)), Some(&7));
            }
            assert!(frames > 2, "the big batch was not cut: {frames} frames");
            assert!(!a.is_new(&tp(1), 298) && a.is_new(&tp(1), 300) && a.is_new(&tp(9), 0));
            wal.close().unwrap_or_else(|e| panic!("{e}"));
        }
        let (wal, _) = Wal::open(dir.path(), options()).unwrap_or_else(|e| panic!("{e}"));
        let a = Appender::recover(Arc::new(wal)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.position(&tp(0)), Some(7));
        assert_eq!(a.position(&tp(1)), Some(298));
        assert_eq!(a.position(&tp(2)), Some(299));
        assert_eq!(a.positions().len(), 3);
    }
}
