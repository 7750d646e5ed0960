//! Delivery: one worker per (stream, destination) replays the stream's WAL from its cursor into a
//! sink, exactly once where the sink allows it.
//!
//! # The protocol, per batch
//!
//! 1. Read from the cursor up to the WAL's durable end, never past it (in every durability mode:
//!    a record a crash could still erase must not reach a sink, or its LSN would later name
//!    other bytes). Buffer by `SizeInMBs` (before compression) and `IntervalInSeconds` (counted
//!    from the oldest buffered record's arrival; 0 delivers as soon as records are durable).
//! 2. Record the batch as an intent (LSN range, oldest arrival, first-attempt time) in the
//!    destination's checkpoint file, fsynced.
//! 3. Deliver it. The sink derives everything it writes from the batch identity (stream,
//!    incarnation, destination id, first LSN, last LSN), so a resend overwrites.
//! 4. File the batch's failed records (those a transform failed, those the destination refused
//!    for good while taking the rest) in the error output, under keys derived from the batch
//!    identity, so a re-file replaces.
//! 5. Advance the cursor and clear the intent in one checkpoint write.
//!
//! A crash before 2 re-reads and re-batches (nothing was sent). A crash between 2 and 5 resends
//! the intent with the same boundaries: the same object key, replaced, never a second copy; the
//! same failed records, filed under the same keys. The intent is complete only at 5.
//!
//! # Dynamic partitioning
//!
//! A destination with `DynamicPartitioningConfiguration` keeps one buffer per partition across
//! batches ("rounds"): a round is cut as above (or, possibly empty, when an open partition is
//! due), recorded as the intent, processed (transform, partition buffers, the objects of the
//! partitions it flushes, its failed records), and then either moves the cursor past itself (no
//! partition holds a record any more) or joins the checkpoint's held rounds (the cursor stays at
//! the first record some partition may still hold). A restart processes the held rounds again
//! from empty buffers: the buffers decide only from the rounds and their recorded cut times, so
//! the same objects are written under the same keys. `worker/partitioned.rs` has the details;
//! `RetryOptions.DurationInSeconds` is the retry window of each partition's object.
//!
//! # Destinations that keep their own position (PostgreSQL)
//!
//! Such a sink commits its position with its data (`hydrant_offsets`), and a resend loads none
//! of what it holds. At start the worker reads that position and compares it with the one the
//! destination last confirmed (kept in the checkpoint, `state.rs`):
//! - a pending intent is resent even when the destination holds all of it: the load is a no-op
//!   that reports the batch's skipped rows again, and step 4 files them;
//! - past the cursor with no intent, the cursor moves there;
//! - behind what it confirmed (a restored backup, a failover that lost commits), delivery
//!   starts again from the destination's position when the WAL still holds that record, and
//!   otherwise stops with an error and `hydrant_destination_state` 3: records are never
//!   skipped silently.
//!
//! # Failure
//!
//! A failed attempt is retried with exponential backoff and jitter until the destination's retry
//! window (from the first attempt) is spent; then the batch goes to the error output and the
//! cursor moves on. If the error output fails too, it is retried: nothing acknowledged is dropped
//! silently, and every outcome is counted in [`DeliveryStats`]. While a sink is down, intake
//! continues into the WAL up to its disk budget.
//!
//! # Named crash points
//!
//! `HYDRANT_CRASH_AT=<point>[:<n>]` makes the daemon kill itself with SIGKILL the n-th time (default
//! the first) it passes `<point>`: `delivery::after_intent` (between intent and send),
//! `delivery::after_send` (between the sink's confirmation and the error output),
//! `delivery::between_partitions` (between two partition objects of one round),
//! `delivery::after_error_output` (failed records filed, the cursor not advanced), and the sinks
//! crate's `delivery::mid_upload` (the local store's temporary file written and fsynced, not yet
//! renamed). Kill tests use them; they cost one atomic load when unset.
//!
//! # Shutdown and configuration changes
//!
//! A stopped worker (SIGTERM, DeleteDeliveryStream, UpdateDestination) finishes an attempt in
//! progress; records still buffering are not flushed early (Firehose does not either): they stay
//! in the WAL and are delivered after the restart, so nothing is lost and batch boundaries stay
//! a matter of the buffering hints. UpdateDestination restarts the worker with the new settings;
//! a batch whose intent is pending at that moment is resent under the stream version it was
//! first sent with but with the new Prefix and codec (if its first attempt had landed under the
//! old prefix, that object stays too: at-least-once across a destination change, the one such
//! case).

mod batch_buffer;
mod build_sinks;
mod conversion;
pub mod recent;
mod spec;
mod state;
mod worker;

pub use build_sinks::{check_destination, BuildError};
pub use spec::{build_spec, incarnation_id, stream_arn, sweep_local_store, SpecError};

pub use state::{DeliveryState, Held, Intent, HELD_ROUNDS_MAX};
pub use worker::{
    crash_point, DeliveryError, DeliverySpec, DeliveryStats, DeliveryWorker, ErrorOutput,
    PartitioningSpec, Retain, RetryPolicy, Transform, STATE_DELIVERING, STATE_NOT_STARTED,
    STATE_STARTING, STATE_STOPPED_DESTINATION_AHEAD, STATE_STOPPED_DESTINATION_BEHIND,
    STATE_STOPPED_LOG,
};
