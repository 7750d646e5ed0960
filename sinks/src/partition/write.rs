//! Writing the objects a round of partition buffers flushed: several at once.
//!
//! # Data flow
//!
//! ```text
//!  RoundOutput::objects (one Batch per flushed partition, in flush order)
//!    │  first_attempts(sink, objects)
//!    │    objects[0] alone ─ crash point delivery::between_partitions
//!    │    objects[1..]: up to WRITES_IN_FLIGHT deliveries in flight, results taken in order,
//!    │    the crash point after each result but the last
//!    ▼
//!  one Result per object, in order: the caller retries the failed ones one by one
//! ```
//!
//! Each object's key is a pure function of its records (see [`super`]), so the order in which
//! objects land does not matter to exactly-once: after a crash the round is processed again and
//! every object is written again under its own key. Objects' writes overlap (an object store's
//! PUT, the local store's write and fsyncs, spend most of their time waiting), which is what a
//! round that flushes many partitions at once (hundreds at the held-round bound) needs. The
//! first object is written alone, so a crash at `delivery::between_partitions` still leaves a
//! round with at least one object written and others not, as the kill test wants; the point is
//! passed once per object but the last, as with writes one at a time.

use futures_util::stream::{FuturesOrdered, StreamExt as _};

use crate::{Batch, BoxFuture, Delivered, Sink, SinkError};

/// The most object deliveries of one round in flight at once.
pub const WRITES_IN_FLIGHT: usize = 16;

/// One delivery attempt of each object (see the module docs): one result per object, in the
/// objects' order. A boxed `Send` future, so that it can be spawned on a runtime (the delivery
/// worker writes a round's objects while it prepares the next round).
pub fn first_attempts<'a>(
    sink: &'a dyn Sink,
    objects: &'a [Batch],
) -> BoxFuture<'a, Vec<Result<Delivered, SinkError>>> {
    Box::pin(async move {
        let Some((first, rest)) = objects.split_first() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(objects.len());
        out.push(sink.deliver(first).await);
        if rest.is_empty() {
            return out;
        }
        // Up to WRITES_IN_FLIGHT at once, results in order (as `buffered`, whose closure would
        // keep the future from being `Send` for every lifetime, so not spawnable).
        let mut pending = rest.iter();
        let mut results = FuturesOrdered::new();
        for object in pending.by_ref().take(WRITES_IN_FLIGHT) {
            results.push_back(sink.deliver(object));
        }
        // Between two objects: one written (its result is in), the next possibly in flight.
        crate::crash::crash_point("delivery::between_partitions");
        while let Some(result) = results.next().await {
            out.push(result);
            if let Some(object) = pending.next() {
                results.push_back(sink.deliver(object));
            }
            if out.len() < objects.len() {
                crate::crash::crash_point("delivery::between_partitions");
            }
        }
        debug_assert_eq!(out.len(), objects.len());
        out
    })
}
