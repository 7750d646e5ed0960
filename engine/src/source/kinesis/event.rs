//! The Kinesis metadata of a batch's records for a Lambda transform's event
//! (`sourceKinesisStreamArn`, `kinesisRecordMetadata`), read back from the annexes of the WAL
//! frames that hold the batch: the log itself says where each record came from, so a batch
//! processed again after a restart sends the same metadata.
//!
//! Data flow: the delivery worker hands the transform a batch (an LSN range of the log, not yet
//! delivered, so still held); [`batch_metadata`] reads the range's frames and maps each LSN to
//! its annex entry ([`super::annex`]); the sinks' Lambda processor puts them in the event.

use std::collections::HashMap;

use hydrant_sinks::transform::{KinesisRecordMetadata, KinesisSourceRecords};
use hydrant_wal::{Lsn, Wal};

use super::annex::{Annex, AnnexError};

/// Why the metadata of a batch could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The WAL could not be read.
    #[error("reading the Kinesis metadata from the WAL: {0}")]
    Wal(#[from] hydrant_wal::Error),
    /// A frame's annex is not a Kinesis source's.
    #[error("a WAL frame's Kinesis annex: {0}")]
    Annex(#[from] AnnexError),
    /// A frame's annex does not describe each of its records.
    #[error("the annex of the frame at LSN {0} has {1} records, the frame {2}")]
    Mismatch(u64, usize, usize),
}

/// The metadata of the records at LSNs `first..=last` of `wal`, for `stream_arn`.
///
/// # Errors
/// [`EventError`].
pub fn batch_metadata(
    wal: &Wal,
    first: u64,
    last: u64,
    stream_arn: &str,
) -> Result<KinesisSourceRecords, EventError> {
    let mut records = HashMap::new();
    let mut reader = wal.reader(Lsn(first))?;
    while let Some(frame) = reader.next_frame()? {
        let frame_first = frame.first_lsn().0;
        if frame_first > last {
            break;
        }
        let annex = Annex::decode(frame.annex())?;
        let count = (frame.end_lsn().0 - frame_first) as usize;
        if annex.records.len() != count {
            return Err(EventError::Mismatch(
                frame_first,
                annex.records.len(),
                count,
            ));
        }
        for (lsn, _) in frame.records() {
            if lsn.0 > last {
                break;
            }
            let m = &annex.records[(lsn.0 - frame_first) as usize];
            records.insert(
                lsn.0,
                KinesisRecordMetadata {
                    shard_id: annex.shard.clone(),
                    partition_key: m.partition_key.clone(),
                    approximate_arrival_timestamp: m.approximate_arrival_ms,
                    sequence_number: m.sequence_number.clone(),
                    subsequence_number: u64::from(m.subsequence_number),
                },
            );
        }
        if frame.end_lsn().0 > last {
            break;
        }
    }
    Ok(KinesisSourceRecords {
        stream_arn: stream_arn.to_string(),
        records,
    })
}
