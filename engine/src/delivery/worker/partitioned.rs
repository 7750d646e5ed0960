//! The delivery worker's rounds for a destination with dynamic partitioning: each partition
//! buffers on its own across rounds ([`hydrant_sinks::partition::buffer`]), and the checkpoint
//! keeps the rounds whose records partitions may still hold, so a restart rebuilds them.
//!
//! # Data flow
//!
//! ```text
//!  next_batch: a round cut from the log (by the hints, or when an open partition is due:
//!  then possibly empty) → recorded as the intent (cut time in it)
//!    ▼
//!  process_round: load → backup copy → transform (Lambda, jq keys) → PartitionBuffers::add_round
//!    → each flushed partition's batch to the ObjectSink (one object; up to 16 written at
//!      once, [`hydrant_sinks::partition::write`]; each retried for
//!      RetryOptions.DurationInSeconds from the cut, then its records to the error output)
//!    → the round's failed records (not JSON, no key, activePartitionExceeded, transform
//!      failures) to the error output under the round's identity
//!    ▼
//!  commit: buffers empty → cursor = round end, held rounds dropped;
//!          else the round joins the held rounds (cursor unchanged)
//! ```
//!
//! # Why this is exactly-once
//!
//! The cursor only moves at a round after which no partition holds a record: every record below
//! it is in an object or in the error output, and the buffers are empty there. The held rounds
//! (boundaries, cut time, version) are durable before anything of theirs is written (each was an
//! intent first). After a crash the worker starts from empty buffers at the cursor and processes
//! the held rounds again, then the intent: [`hydrant_sinks::partition::PartitionBuffers`] decides
//! only from the rounds and their recorded cut times, so it flushes the same partitions with the
//! same records under the same identities, and every object written before the crash is written
//! again under its own key with the same bytes (an overwrite), never as a second copy. Error
//! output objects are keyed by the round's or the object's identity, so they are replaced alike.
//! The held rounds are bounded ([`HELD_ROUNDS_MAX`]): the round that would pass the bound
//! flushes every partition, which also bounds what a restart reads again.
//!
//! Two cases are at least once, as without partitioning: a destination changed by
//! UpdateDestination while rounds are held (they are processed again under the new settings),
//! and an object whose retries ran out (its records are in the error output; processing its
//! round again after a crash may write the object after all).

use std::sync::atomic::Ordering;

use hydrant_sinks::partition::write::first_attempts;
use hydrant_sinks::{Batch, BatchIdentity, FailedRecord};

use super::{crash_point, DeliveryError, Worker};
use crate::delivery::state::{DeliveryState, Held, Intent, HELD_ROUNDS_MAX};

/// Rounds cut only because a partition is due are at least this fraction of the interval apart
/// (so staggered partitions do not fill the held rounds at once).
const DUE_SPACING_DIVISOR: u64 = 32;

impl Worker {
    /// When the next round must be cut for an open partition that is due; `None` without
    /// partitioning or open partitions.
    pub(super) fn partition_due_ms(&self) -> Option<u64> {
        let due = self.buffers.as_ref()?.next_due_ms()?;
        let spacing = self.spec.buffer_interval.as_millis() as u64 / DUE_SPACING_DIVISOR;
        Some(due.max(self.last_cut_ms.saturating_add(spacing)))
    }

    /// At start: processes the held rounds of the checkpoint again, from empty buffers at the
    /// cursor, rewriting what they wrote. False when stopping first.
    pub(super) fn restore_partitions(&mut self) -> Result<bool, DeliveryError> {
        if let Some(b) = self.buffers.as_mut() {
            b.clear();
        }
        let held = self.state.held.clone();
        if !held.is_empty() {
            tracing::info!(stream = %self.spec.stream, rounds = held.len(),
                cursor = %self.state.cursor,
                "dynamic partitioning: processing the held rounds again to rebuild the partitions");
        }
        let mut first = self.state.cursor;
        for (position, h) in held.iter().enumerate() {
            let round = Intent {
                first,
                end: h.end,
                oldest_arrival_ms: h.oldest_arrival_ms,
                first_attempt_ms: h.cut_ms,
                attempts: 0,
                stream_version: h.stream_version,
            };
            if !self.process_round(round, position)? {
                return Ok(false);
            }
            first = h.end;
        }
        Ok(true)
    }

    /// Processes the intent's round and commits it.
    pub(super) fn send_round(&mut self, intent: Intent) -> Result<(), DeliveryError> {
        let position = self.state.held.len();
        if !self.process_round(intent, position)? {
            return Ok(());
        }
        crash_point("delivery::after_send");
        let empty = self.buffers.as_ref().is_none_or(|b| b.is_empty());
        let state = if empty {
            DeliveryState {
                cursor: intent.end,
                intent: None,
                held: Vec::new(),
                ..self.state.clone()
            }
        } else {
            let mut held = self.state.held.clone();
            held.push(Held {
                end: intent.end,
                cut_ms: intent.first_attempt_ms,
                oldest_arrival_ms: intent.oldest_arrival_ms,
                stream_version: self.round_version(&intent),
            });
            DeliveryState {
                intent: None,
                held,
                ..self.state.clone()
            }
        };
        debug_assert!(state.held.len() < HELD_ROUNDS_MAX);
        let cursor = state.cursor;
        self.save(state)?;
        self.stats.cursor.store(cursor.0, Ordering::Relaxed);
        match self.state.held.first() {
            Some(h) => self
                .stats
                .oldest_undelivered_ms
                .store(h.oldest_arrival_ms, Ordering::Relaxed),
            None if self.wal.durable_lsn() <= cursor => {
                self.stats.oldest_undelivered_ms.store(0, Ordering::Relaxed);
            }
            None => {}
        }
        self.retain(cursor);
        Ok(())
    }

    fn round_version(&self, intent: &Intent) -> u32 {
        match intent.stream_version {
            0 => self.version(),
            v => v,
        }
    }

    /// One round: its records through the backup, the transform and the partition buffers; the
    /// partitions it flushes to the sink; its failed records to the error output. `position`:
    /// its index among the held rounds (the last one permitted flushes every partition). False
    /// when stopping first (nothing is committed; a restart does the round again).
    fn process_round(&mut self, intent: Intent, position: usize) -> Result<bool, DeliveryError> {
        self.last_cut_ms = self.last_cut_ms.max(intent.first_attempt_ms);
        let version = u64::from(self.round_version(&intent));
        let source = if intent.end > intent.first {
            self.load(intent)?
        } else {
            Batch {
                identity: BatchIdentity {
                    stream: self.spec.stream.clone(),
                    incarnation: self.spec.incarnation.clone(),
                    destination_id: self.spec.destination_id.clone(),
                    first_lsn: intent.first.0,
                    last_lsn: intent.first.0,
                },
                stream_version: version,
                oldest_arrival_ms: intent.oldest_arrival_ms,
                records: Vec::new(),
                contiguous: None,
                partition_keys: Vec::new(),
            }
        };
        let mut attempt = 0u32;
        if !source.records.is_empty() {
            // The backup copy of the source records, retried until written: it is never dropped,
            // and the round waits for it.
            while let Err(e) = self.deliver_backup(&source) {
                attempt += 1;
                tracing::warn!(stream = %self.spec.stream, batch = %source.identity, error = %e,
                    "backup copy failed; retrying");
                if !self.sleep(self.spec.retry.backoff(attempt)) {
                    return Ok(false);
                }
            }
        }
        let (batch, mut failed) = match (self.spec.transform.clone(), source.records.is_empty()) {
            (Some(t), false) => loop {
                match self.runtime.block_on(t.process(source.clone())) {
                    Ok(out) => break out,
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!(stream = %self.spec.stream, batch = %source.identity,
                            error = %e, "transform failed; retrying");
                        if !self.sleep(self.spec.retry.backoff(attempt)) {
                            return Ok(false);
                        }
                    }
                }
            },
            _ => (source.clone(), Vec::new()),
        };
        let flush_all = position + 1 >= HELD_ROUNDS_MAX;
        let Some(buffers) = self.buffers.as_mut() else {
            return Ok(true);
        };
        let out = buffers.add_round(&batch, intent.first_attempt_ms, flush_all);
        failed.extend(out.failed);
        let deadline_ms = intent
            .first_attempt_ms
            .saturating_add(self.spec.retry.window.as_millis() as u64);
        // One attempt of every object, several in flight (`delivery::between_partitions` is
        // passed between them); then each in order is counted, or retried on its own.
        let first = self
            .runtime
            .block_on(first_attempts(&*self.spec.sink, &out.objects));
        for (object, first) in out.objects.iter().zip(first) {
            if !self.deliver_object(object, first, deadline_ms)? {
                return Ok(false);
            }
        }
        if !self.file_failed(&source, &failed) {
            return Ok(false);
        }
        if !failed.is_empty() {
            crash_point("delivery::after_error_output");
        }
        Ok(true)
    }

    /// Settles one partition's object given its first attempt's result: retries it until
    /// `deadline_ms`; then its records go to the error output under the object's identity.
    /// False when stopping first.
    fn deliver_object(
        &mut self,
        object: &Batch,
        first: Result<hydrant_sinks::Delivered, hydrant_sinks::SinkError>,
        deadline_ms: u64,
    ) -> Result<bool, DeliveryError> {
        let mut attempts = 0u32;
        let mut result = Some(first);
        loop {
            attempts += 1;
            let attempt = match result.take() {
                Some(first) => first,
                None => self.runtime.block_on(self.spec.sink.deliver(object)),
            };
            match attempt {
                Ok(delivered) => {
                    self.stats.count_delivered(&delivered);
                    tracing::debug!(stream = %self.spec.stream, batch = %object.identity,
                        location = %delivered.location, "partition delivered");
                    // A prefix that did not evaluate for the object's own time.
                    return Ok(self.file_failed(object, &delivered.failed));
                }
                Err(error) => {
                    self.stats.attempts_failed.fetch_add(1, Ordering::Relaxed);
                    if hydrant_wal::now_ms() >= deadline_ms {
                        tracing::warn!(stream = %self.spec.stream, batch = %object.identity,
                            error = %error, attempts,
                            "retries over (RetryOptions.DurationInSeconds): the partition's records go to the error output");
                        return Ok(self.give_up_object(object, &error, attempts));
                    }
                    tracing::warn!(stream = %self.spec.stream, batch = %object.identity,
                        error = %error, code = %error.error_code(), attempt = attempts,
                        "partition delivery failed; retrying");
                    if !self.sleep(self.spec.retry.backoff(attempts)) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    fn give_up_object(
        &mut self,
        object: &Batch,
        error: &hydrant_sinks::SinkError,
        attempts: u32,
    ) -> bool {
        let mut attempt = 0u32;
        let records: Vec<FailedRecord> = loop {
            attempt += 1;
            match self
                .runtime
                .block_on(self.spec.sink.give_up(object, error, attempts))
            {
                Ok(records) => break records,
                Err(e) => {
                    tracing::error!(stream = %self.spec.stream, batch = %object.identity,
                        error = %e, "the destination's failure output failed; retrying");
                    if !self.sleep(self.spec.retry.backoff(attempt)) {
                        return false;
                    }
                }
            }
        };
        self.file_failed(object, &records)
    }
}
