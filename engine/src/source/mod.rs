//! Sources other than the Firehose API: readers that turn outside records into appends to a
//! stream's WAL, with their source positions kept in the log itself (a frame's annex), so that
//! everything right of the log (delivery, buffering, transforms, partitioning, retries, error
//! output) is the same code whatever the source.
//!
//! - [`kinesis`]: `KinesisStreamAsSource`, a Kinesis data stream read shard by shard.
//! - [`kafka`]: `MSKAsSource`, a Kafka topic read partition by partition.
//! - [`state`]: a source's failure, shown by DescribeDeliveryStream.

pub mod kafka;
pub mod kinesis;
pub mod state;
