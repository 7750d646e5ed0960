//! The one way a Kinesis source writes to its stream's WAL: one frame per GetRecords batch,
//! with the batch's metadata and every shard's position in the frame's annex
//! ([`super::annex`]), and the position recovery that reads them back.
//!
//! Exactly once from shard to log:
//! - a shard is read from right after the position the log holds for it (the last durable
//!   frame's annex, recovered at start), so nothing in the log is read into it twice;
//! - the position advances in memory only together with the append that carries it (under one
//!   lock, so frames are appended in the order the map changes and each annex holds the whole
//!   map as of its frame); a record read but not durable when the process dies is in no
//!   durable frame, so the recovered position is before it and it is read again;
//! - the user records of one Kinesis record (a KPL aggregate's) go into one frame, so a
//!   Kinesis record is in the log whole or not at all, and a position (a Kinesis sequence
//!   number, resumed after) never falls inside an aggregate;
//! - the disk budget pauses the reader ([`hydrant_wal::Error::Full`] writes nothing): the
//!   same records are appended again once delivery has freed space.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hydrant_wal::{Lsn, LsnRange, Wal};

use super::annex::{Annex, AnnexError, RecordMeta};

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
    /// Every shard read so far -> the last sequence number appended from it. Invariant: equal
    /// to the annex map of the last frame appended (and, at start, of the last durable frame).
    positions: Mutex<BTreeMap<String, String>>,
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
    /// annex is not a Kinesis source's (the log holds records from another source).
    pub fn recover(wal: Arc<Wal>) -> Result<Appender, AppendError> {
        let positions = last_positions(&wal)?;
        Ok(Appender {
            wal,
            positions: Mutex::new(positions),
        })
    }

    /// The last sequence number of `shard` in the log.
    #[must_use]
    pub fn position(&self, shard: &str) -> Option<String> {
        self.lock().get(shard).cloned()
    }

    /// Every position (for tests and logs).
    #[must_use]
    pub fn positions(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one shard's batch and waits until it is durable: as one frame, or as several
    /// when it does not fit one (each frame's annex then carries the position of its own last
    /// record). While the disk budget refuses a frame, waits and tries again (`paused` is
    /// called at every refusal) until `stopped` says to give up.
    ///
    /// # Errors
    /// [`AppendError`].
    pub async fn append(
        &self,
        shard: &str,
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
        // The annex's fixed part: header, shard, both counts, and the position map with room
        // for this shard's entry.
        let str_len = |s: &str| 2 + s.len() as u64;
        let fixed = 3
            + str_len(shard)
            + 8
            + self
                .lock()
                .iter()
                .map(|(s, q)| str_len(s) + str_len(q))
                .sum::<u64>()
            + str_len(shard)
            + metas
                .iter()
                .map(|m| str_len(&m.sequence_number))
                .max()
                .unwrap_or(0)
            + ANNEX_LEN_WORD;
        let cost = |r: &Vec<u8>, m: &RecordMeta| {
            4 + r.len() as u64 + str_len(&m.sequence_number) + 4 + str_len(&m.partition_key) + 8
        };
        // Greedy cut: a chunk ends before the record that would make its frame too large, but
        // never inside one Kinesis record's user records (a KPL aggregate's, which share its
        // sequence number): the log holds a Kinesis record whole or not at all, so a position
        // is a sequence number and never a place inside an aggregate. One Kinesis record
        // always goes, alone if need be: one too large for any frame is the WAL's
        // FrameTooLarge.
        let mut bounds = Vec::new();
        let (mut start, mut bytes) = (0, fixed);
        // Where the current Kinesis record's user records begin, and the chunk's bytes then.
        let (mut group, mut bytes_before_group) = (0, fixed);
        for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
            let c = cost(r, m);
            let new_group = i == 0 || metas[i - 1].sequence_number != m.sequence_number;
            if new_group {
                (group, bytes_before_group) = (i, bytes);
            }
            if bytes + c > max {
                if new_group && i > start {
                    bounds.push((start, i));
                    (start, bytes, group, bytes_before_group) = (i, fixed, i, fixed);
                } else if !new_group && group > start {
                    bounds.push((start, group));
                    bytes = fixed + (bytes - bytes_before_group);
                    (start, bytes_before_group) = (group, fixed);
                }
            }
            bytes += c;
        }
        bounds.push((start, records.len()));
        debug_assert!(
            bounds
                .iter()
                .all(|&(s, _)| s == 0 || metas[s - 1].sequence_number != metas[s].sequence_number),
            "a frame begins inside a Kinesis record's user records"
        );
        let mut metas = metas.into_iter();
        for (s, e) in bounds {
            let chunk: Vec<RecordMeta> = metas.by_ref().take(e - s).collect();
            self.append_frame(shard, &records[s..e], chunk, stopped, paused)
                .await?;
        }
        Ok(())
    }

    /// Appends records as one frame (see [`Appender::append`]).
    async fn append_frame(
        &self,
        shard: &str,
        records: &[Vec<u8>],
        metas: Vec<RecordMeta>,
        stopped: &(dyn Fn() -> bool + Sync),
        paused: &(dyn Fn() + Sync),
    ) -> Result<LsnRange, AppendError> {
        debug_assert_eq!(records.len(), metas.len());
        let Some(last) = metas.last().map(|m| m.sequence_number.clone()) else {
            return Err(AppendError::Wal(hydrant_wal::Error::EmptyAppend));
        };
        let mut annex = Annex {
            shard: shard.to_string(),
            records: metas,
            positions: BTreeMap::new(),
        };
        loop {
            let attempt = {
                let mut positions = self.lock();
                annex.positions = positions.clone();
                annex.positions.insert(shard.to_string(), last.clone());
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
                    hydrant_sinks::crash::crash_point("kinesis::after_append");
                    return Ok(ticket.await?);
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
fn last_positions(wal: &Wal) -> Result<BTreeMap<String, String>, AppendError> {
    let durable = wal.durable_lsn();
    if durable == Lsn(0) {
        return Ok(BTreeMap::new());
    }
    if wal.first_lsn() >= durable {
        // Every segment was delivered and removed, the last one included: the positions are
        // gone with it. Reading starts again at the delivery start; say so loudly.
        tracing::error!(
            durable = durable.0,
            "the WAL holds no frame to recover the Kinesis positions from; shards are read again \
             from the delivery start"
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
    use hydrant_wal::WalOptions;

    fn meta(seq: u64, pk: &str) -> RecordMeta {
        RecordMeta {
            sequence_number: format!("4959{seq:020}"),
            subsequence_number: 0,
            partition_key: pk.to_string(),
            approximate_arrival_ms: 1_000 + seq,
        }
    }

    fn options() -> WalOptions {
        WalOptions {
            segment_bytes: 64 * 1024,
            first_segment_bytes: 64 * 1024,
            ..WalOptions::default()
        }
    }

    /// Positions come back from the log after a reopen, and a batch larger than a frame is cut
    /// into frames whose annexes each hold the position of their own last record.
    #[tokio::test]
    async fn positions_are_recovered_from_the_last_frame_and_big_batches_are_cut() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let never = || false;
        let nothing = || {};
        {
            let (wal, _) = Wal::open(dir.path(), options()).unwrap_or_else(|e| panic!("{e}"));
            let wal = Arc::new(wal);
            let a = Appender::recover(wal.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(a.positions().is_empty());
            a.append(
                "s-0",
                &[b"a".to_vec()],
                vec![meta(1, "x")],
                &never,
                &nothing,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            // 300 records of 1 KiB: more than one 64 KiB segment's frame.
            let big: Vec<Vec<u8>> = (0..300).map(|_| vec![b'z'; 1024]).collect();
            let metas: Vec<RecordMeta> = (10..310).map(|s| meta(s, "y")).collect();
            a.append("s-1", &big, metas, &never, &nothing)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut frames = 0;
            let mut r = wal.reader(Lsn(0)).unwrap_or_else(|e| panic!("{e}"));
            let mut last_seen = String::new();
            while let Some(f) = r.next_frame().unwrap_or_else(|e| panic!("{e}")) {
                frames += 1;
                let annex = Annex::decode(f.annex()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(annex.records.len(), f.len());
                let own_last = annex.records.last().map(|m| m.sequence_number.clone());
                assert_eq!(annex.positions.get(&annex.shard).cloned(), own_last);
                if annex.shard == "s-1" {
                    assert_eq!(
                        annex.positions.get("s-0"),
                        Some(&meta(1, "x").sequence_number)
                    );
                    last_seen = own_last.unwrap_or_default();
                }
            }
            assert!(frames > 2, "the big batch was not cut: {frames} frames");
            assert_eq!(last_seen, meta(309, "y").sequence_number);
            wal.close().unwrap_or_else(|e| panic!("{e}"));
        }
        let (wal, _) = Wal::open(dir.path(), options()).unwrap_or_else(|e| panic!("{e}"));
        let a = Appender::recover(Arc::new(wal)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.position("s-0"), Some(meta(1, "x").sequence_number));
        assert_eq!(a.position("s-1"), Some(meta(309, "y").sequence_number));
        assert_eq!(a.positions().len(), 2);
    }

    /// The user records of one KPL aggregate (one sequence number, sub-sequence numbers
    /// 0..10) are never cut across frames, though the batch is cut into many.
    #[tokio::test]
    async fn an_aggregate_s_user_records_share_one_frame() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (wal, _) = Wal::open(dir.path(), options()).unwrap_or_else(|e| panic!("{e}"));
        let wal = Arc::new(wal);
        let a = Appender::recover(wal.clone()).unwrap_or_else(|e| panic!("{e}"));
        let data: Vec<Vec<u8>> = (0..300).map(|_| vec![b'z'; 1000]).collect();
        let metas: Vec<RecordMeta> = (0..300u64)
            .map(|i| RecordMeta {
                subsequence_number: (i % 10) as u32,
                ..meta(i / 10, "k")
            })
            .collect();
        a.append("s-0", &data, metas, &|| false, &|| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut r = wal.reader(Lsn(0)).unwrap_or_else(|e| panic!("{e}"));
        let mut frames = 0;
        let mut seen = Vec::new();
        while let Some(f) = r.next_frame().unwrap_or_else(|e| panic!("{e}")) {
            frames += 1;
            let annex = Annex::decode(f.annex()).unwrap_or_else(|e| panic!("{e}"));
            // Whole aggregates only: each starts at sub-sequence 0 and ends at 9.
            assert_eq!(annex.records.len() % 10, 0, "frame {frames}");
            for (i, m) in annex.records.iter().enumerate() {
                assert_eq!(m.subsequence_number as usize, i % 10);
            }
            seen.extend(annex.records);
        }
        assert!(frames > 2, "the batch was not cut: {frames} frames");
        assert_eq!(seen.len(), 300);
    }
}
