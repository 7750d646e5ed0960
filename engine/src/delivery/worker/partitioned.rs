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
//!  prepare_round: load → transform (Lambda, jq keys) → PartitionBuffers::add_round
//!  finish_round: backup copy
//!    → each flushed partition's batch to the ObjectSink (one object; up to 16 written at
//!      once, [`hydrant_sinks::partition::write`], on the runtime) ─┐
//!    → meanwhile, while the next rounds are already in the log    │ overlapped
//!      (a backlog): they are cut and prepared (`ahead`, up to      │
//!      AHEAD_MAX, until one flushes objects)                      ─┘
//!    → each object's result settled: retried for RetryOptions.DurationInSeconds from the
//!      cut, then its records to the error output
//!    → the round's failed records (not JSON, no key, activePartitionExceeded, transform
//!      failures) to the error output under the round's identity
//!    ▼
//!  commit: buffers were empty after this round → cursor = round end, held rounds dropped;
//!          else the round joins the held rounds (cursor unchanged)
//!    ▼
//!  the prepared rounds, in order, each recorded as the intent, then finished
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
//! Preparing the next rounds while this round's objects are written (`ahead`) keeps this: a
//! prepared round has been cut (its boundaries and cut time fixed) and given to the buffers, but
//! nothing of it is written, not even its backup copy, before it is recorded as the intent,
//! which happens only after the rounds before it are committed, with the same boundaries and
//! cut time.
//! So, as without the overlap, everything written for a round is a function of the held rounds
//! and the intent, all durable first. Whether this round left the buffers empty (which moves
//! the cursor) is taken right after its own `add_round`, before the next round is added; a
//! prepared round's position among the held rounds is what it will be once the rounds before it
//! are committed. A crash before a prepared round is recorded loses only memory: the restart
//! rebuilds the buffers from the checkpoint and cuts that round again (perhaps with other
//! boundaries), as if it had never been cut.
//!
//! Two cases are at least once, as without partitioning: a destination changed by
//! UpdateDestination while rounds are held (they are processed again under the new settings),
//! and an object whose retries ran out (its records are in the error output; processing its
//! round again after a crash may write the object after all).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hydrant_sinks::partition::write::first_attempts;
use hydrant_sinks::{Batch, BatchIdentity, Delivered, FailedRecord, SinkError};

use super::{crash_point, DeliveryError, Worker};
use crate::delivery::state::{DeliveryState, Held, Intent, HELD_ROUNDS_MAX};

/// The most rounds prepared ahead while a round's objects are written (their source batches stay
/// in memory until each is finished).
pub const AHEAD_MAX: usize = 16;

/// A round given to the partition buffers whose objects are not written yet.
#[derive(Debug)]
pub(super) struct Prepared {
    /// The round (as recorded, or to be recorded, as the intent).
    pub(super) intent: Intent,
    /// Its index among the held rounds when it is processed.
    position: usize,
    /// Its records as loaded (for the backup copy and the error output's identity).
    source: Batch,
    /// The partitions it flushed, one object each.
    objects: Vec<Batch>,
    /// Its failed records (transform, partitioning, active limit).
    failed: Vec<FailedRecord>,
    /// Whether no partition held a record right after this round.
    empty: bool,
}

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
            let Some(prepared) = self.prepare_round(round, position)? else {
                return Ok(false);
            };
            if !self.finish_round(&prepared, false)? {
                return Ok(false);
            }
            first = h.end;
        }
        Ok(true)
    }

    /// Processes the intent's round and commits it.
    pub(super) fn send_round(&mut self, intent: Intent) -> Result<(), DeliveryError> {
        let position = self.state.held.len();
        let prepared = match self.ahead.pop_front() {
            Some(p) if p.intent == intent && p.position == position => p,
            other => {
                if other.is_some() {
                    // Not reached (a prepared round is always the next intent); the buffers
                    // hold rounds that are not the intent's, so they are rebuilt.
                    debug_assert!(false, "a prepared round that is not the intent");
                    self.ahead.clear();
                    if !self.restore_partitions()? {
                        return Ok(());
                    }
                }
                match self.prepare_round(intent, position)? {
                    Some(p) => p,
                    None => return Ok(()),
                }
            }
        };
        if !self.finish_round(&prepared, true)? {
            return Ok(());
        }
        crash_point("delivery::after_send");
        let empty = prepared.empty;
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

    /// One round through the transform and the partition buffers: what it flushes, not yet
    /// written. `position`: its index among the held rounds (the last one permitted flushes
    /// every partition). `None` when stopping first (nothing is committed; a restart does the
    /// round again).
    fn prepare_round(
        &mut self,
        intent: Intent,
        position: usize,
    ) -> Result<Option<Prepared>, DeliveryError> {
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
        let (batch, mut failed) = match (self.spec.transform.clone(), source.records.is_empty()) {
            (Some(t), false) => loop {
                match self.runtime.block_on(t.process(source.clone())) {
                    Ok(out) => break out,
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!(stream = %self.spec.stream, batch = %source.identity,
                            error = %e, "transform failed; retrying");
                        if !self.sleep(self.spec.retry.backoff(attempt)) {
                            return Ok(None);
                        }
                    }
                }
            },
            _ => (source.clone(), Vec::new()),
        };
        let flush_all = position + 1 >= HELD_ROUNDS_MAX;
        let (objects, empty) = match self.buffers.as_mut() {
            Some(buffers) => {
                let out = buffers.add_round(&batch, intent.first_attempt_ms, flush_all);
                failed.extend(out.failed);
                (out.objects, buffers.is_empty())
            }
            None => (Vec::new(), true),
        };
        Ok(Some(Prepared {
            intent,
            position,
            source,
            objects,
            failed,
            empty,
        }))
    }

    /// Writes a prepared round (whose intent is recorded): the backup copy of its source
    /// records, its objects, its failed records. With `overlap`, the next round is cut and
    /// prepared while the objects are written, when it is already in the log (see the module
    /// docs). False when stopping first (nothing is committed; a restart does the round again).
    fn finish_round(&mut self, p: &Prepared, overlap: bool) -> Result<bool, DeliveryError> {
        let mut attempt = 0u32;
        if !p.source.records.is_empty() {
            // The backup copy of the source records, retried until written: it is never dropped,
            // and the round waits for it.
            while let Err(e) = self.deliver_backup(&p.source) {
                attempt += 1;
                tracing::warn!(stream = %self.spec.stream, batch = %p.source.identity, error = %e,
                    "backup copy failed; retrying");
                if !self.sleep(self.spec.retry.backoff(attempt)) {
                    return Ok(false);
                }
            }
        }
        let deadline_ms = p
            .intent
            .first_attempt_ms
            .saturating_add(self.spec.retry.window.as_millis() as u64);
        // One attempt of every object, several in flight (`delivery::between_partitions` is
        // passed between them), on the runtime while this thread prepares the next round; then
        // each in order is counted, or retried on its own.
        let sink = Arc::clone(&self.spec.sink);
        let objects = p.objects.clone();
        let writes = (!objects.is_empty()).then(|| {
            self.runtime
                .spawn(async move { first_attempts(&*sink, &objects).await })
        });
        if overlap && !self.prepare_ahead(p, writes.as_ref())? {
            return Ok(false);
        }
        let first: Vec<Result<Delivered, SinkError>> = match writes {
            None => Vec::new(),
            Some(writes) => match self.runtime.block_on(writes) {
                Ok(results) => results,
                // The task panicked or was cancelled: every object is retried on its own.
                Err(e) => p
                    .objects
                    .iter()
                    .map(|_| Err(SinkError::Task(e.to_string())))
                    .collect(),
            },
        };
        debug_assert_eq!(first.len(), p.objects.len());
        for (object, first) in p.objects.iter().zip(first) {
            if !self.deliver_object(object, first, deadline_ms)? {
                return Ok(false);
            }
        }
        if !self.file_failed(&p.source, &p.failed) {
            return Ok(false);
        }
        if !p.failed.is_empty() {
            crash_point("delivery::after_error_output");
        }
        Ok(true)
    }

    /// While `p`'s objects are being written: cuts the rounds after `p` (and after those
    /// already prepared) that the log already holds, and prepares them (kept in `ahead`, in
    /// order, until the rounds before them are committed). It stops when the writes are done,
    /// at a prepared round that flushed objects (those wait for the writes before them), or at
    /// [`AHEAD_MAX`] rounds. False when stopping first.
    fn prepare_ahead(
        &mut self,
        p: &Prepared,
        writes: Option<&tokio::task::JoinHandle<Vec<Result<Delivered, SinkError>>>>,
    ) -> Result<bool, DeliveryError> {
        loop {
            let writing = writes.is_some_and(|w| !w.is_finished());
            let last = self.ahead.back().unwrap_or(p);
            if !writing
                || self.ahead.len() >= AHEAD_MAX
                || (!self.ahead.is_empty() && !last.objects.is_empty())
            {
                return Ok(true);
            }
            let (end, empty, position) = (last.intent.end, last.empty, last.position);
            let Some(next) = self.cut_round(end, false)? else {
                return Ok(true);
            };
            // Its index among the held rounds once the rounds before it are committed.
            let position = if empty { 0 } else { position + 1 };
            match self.prepare_round(next, position)? {
                Some(prepared) => self.ahead.push_back(prepared),
                None => return Ok(false),
            }
        }
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
