//! The Kafka metadata of a batch's records for a Lambda transform's event (`sourceMSKArn`,
//! `mskRecordMetadata`), read back from the annexes of the WAL frames that hold the batch: the
//! log itself says where each record came from, so a batch processed again after a restart
//! sends the same metadata. The shape is Firehose's for an MSK source:
//!
//! ```text
//! {"invocationId": "...", "deliveryStreamArn": "...", "sourceMSKArn": "arn:aws:kafka:...",
//!  "region": "us-east-1",
//!  "records": [{"recordId": "...", "approximateArrivalTimestamp": 1716369573887,
//!               "mskRecordMetadata": {"offset": "0", "partitionId": "1",
//!                                     "approximateArrivalTimestamp": 1716369573887},
//!               "kafkaRecordValue": "<base64>"}]}
//! ```
//!
//! `approximateArrivalTimestamp` is the record's Kafka timestamp (0 when it has none).

use std::collections::HashMap;

use hydrant_sinks::transform::{MskRecordMetadata, MskSourceRecords};
use hydrant_wal::{Lsn, Wal};

use super::annex::{Annex, AnnexError};

/// Why the metadata of a batch could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The WAL could not be read.
    #[error("reading the Kafka metadata from the WAL: {0}")]
    Wal(#[from] hydrant_wal::Error),
    /// A frame's annex is not a Kafka source's.
    #[error("a WAL frame's Kafka annex: {0}")]
    Annex(#[from] AnnexError),
    /// A frame's annex does not describe each of its records.
    #[error("the annex of the frame at LSN {0} has {1} records, the frame {2}")]
    Mismatch(u64, usize, usize),
}

/// The metadata of the records at LSNs `first..=last` of `wal`, for the cluster `cluster_arn`.
///
/// # Errors
/// [`EventError`].
pub fn batch_metadata(
    wal: &Wal,
    first: u64,
    last: u64,
    cluster_arn: &str,
) -> Result<MskSourceRecords, EventError> {
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
                MskRecordMetadata {
                    offset: m.offset.to_string(),
                    partition_id: m.partition.to_string(),
                    approximate_arrival_timestamp: u64::try_from(m.timestamp_ms).unwrap_or(0),
                },
            );
        }
        if frame.end_lsn().0 > last {
            break;
        }
    }
    Ok(MskSourceRecords {
        cluster_arn: cluster_arn.to_string(),
        records,
    })
}
