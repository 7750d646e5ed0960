//! The operations hydrant serves, named as in the `X-Amz-Target` header.

use crate::errors::{ApiError, ErrorCode};

/// `X-Amz-Target` prefix of every Firehose operation.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// The operations of Firehose JSON 1.1 that hydrant knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// CreateDeliveryStream.
    CreateDeliveryStream,
    /// DescribeDeliveryStream.
    DescribeDeliveryStream,
    /// ListDeliveryStreams.
    ListDeliveryStreams,
    /// DeleteDeliveryStream.
    DeleteDeliveryStream,
    /// UpdateDestination.
    UpdateDestination,
    /// PutRecord.
    PutRecord,
    /// PutRecordBatch.
    PutRecordBatch,
    /// TagDeliveryStream.
    TagDeliveryStream,
    /// UntagDeliveryStream.
    UntagDeliveryStream,
    /// ListTagsForDeliveryStream.
    ListTagsForDeliveryStream,
    /// StartDeliveryStreamEncryption (refused: no server-side encryption).
    StartDeliveryStreamEncryption,
    /// StopDeliveryStreamEncryption (refused: no server-side encryption).
    StopDeliveryStreamEncryption,
}

impl Operation {
    /// Every operation, for metrics.
    pub const ALL: [Operation; 12] = [
        Operation::CreateDeliveryStream,
        Operation::DescribeDeliveryStream,
        Operation::ListDeliveryStreams,
        Operation::DeleteDeliveryStream,
        Operation::UpdateDestination,
        Operation::PutRecord,
        Operation::PutRecordBatch,
        Operation::TagDeliveryStream,
        Operation::UntagDeliveryStream,
        Operation::ListTagsForDeliveryStream,
        Operation::StartDeliveryStreamEncryption,
        Operation::StopDeliveryStreamEncryption,
    ];

    /// The operation's name as in `X-Amz-Target`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateDeliveryStream => "CreateDeliveryStream",
            Operation::DescribeDeliveryStream => "DescribeDeliveryStream",
            Operation::ListDeliveryStreams => "ListDeliveryStreams",
            Operation::DeleteDeliveryStream => "DeleteDeliveryStream",
            Operation::UpdateDestination => "UpdateDestination",
            Operation::PutRecord => "PutRecord",
            Operation::PutRecordBatch => "PutRecordBatch",
            Operation::TagDeliveryStream => "TagDeliveryStream",
            Operation::UntagDeliveryStream => "UntagDeliveryStream",
            Operation::ListTagsForDeliveryStream => "ListTagsForDeliveryStream",
            Operation::StartDeliveryStreamEncryption => "StartDeliveryStreamEncryption",
            Operation::StopDeliveryStreamEncryption => "StopDeliveryStreamEncryption",
        }
    }

    /// The operation an `X-Amz-Target` value names.
    ///
    /// # Errors
    /// UnknownOperationException.
    pub fn from_target(target: Option<&[u8]>) -> Result<Operation, ApiError> {
        let unknown = || ApiError::new(ErrorCode::UnknownOperation, "");
        let target = target.ok_or_else(unknown)?;
        let target = std::str::from_utf8(target).map_err(|_| unknown())?;
        let op = target.strip_prefix(TARGET_PREFIX).ok_or_else(unknown)?;
        Operation::ALL
            .into_iter()
            .find(|o| o.name() == op)
            .ok_or_else(unknown)
    }
}
