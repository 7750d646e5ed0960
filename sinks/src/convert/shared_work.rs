//! Work shared by the calling thread and helper threads: a list of independent items (a row
//! group's columns to encode or to close) taken one at a time by whichever thread is free.
//!
//! ```text
//!  items ──► queue ──► calling thread ─┐
//!              │                        ├─► results, in the items' order (or the first error)
//!              └─────► helper threads ──┘   (scoped: they end before `run` returns)
//! ```
//!
//! Used where one thread would otherwise do all of a step while the other CPUs wait: the
//! columnar writer encodes a chunk's columns, and closes a row group's, this way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Helper threads beside the caller: one per further CPU, at most [`HELPERS_MAX`].
pub fn helpers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .min(HELPERS_MAX)
}

/// The most helper threads one step takes.
pub const HELPERS_MAX: usize = 3;

/// Runs `work` on every item, on the calling thread and up to `helpers` more, each taking the
/// next item not yet taken; the results in the items' order.
///
/// # Errors
/// An error `work` returned (of the earliest item that failed); items not yet taken once one
/// failed are not worked on.
pub fn run<T, R, E>(
    items: Vec<T>,
    helpers: usize,
    work: impl Fn(T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Send,
    R: Send,
    E: Send,
{
    let count = items.len();
    let helpers = helpers.min(count.saturating_sub(1));
    let queue = Mutex::new(items.into_iter().enumerate());
    let failed = AtomicBool::new(false);
    // One thread's share: the items it took, with their places.
    let drain = || -> Vec<(usize, Result<R, E>)> {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            // A poisoned queue means another thread panicked: its join re-raises it.
            let next = match queue.lock() {
                Ok(mut q) => q.next(),
                Err(_) => None,
            };
            let Some((i, item)) = next else { break };
            let result = work(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let mut all: Vec<(usize, Result<R, E>)> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let mut started = Vec::with_capacity(helpers);
        for _ in 0..helpers {
            // A helper that cannot start leaves its share to the others.
            if let Ok(h) = std::thread::Builder::new()
                .name("hydrant-encode".into())
                .spawn_scoped(scope, drain)
            {
                started.push(h);
            }
        }
        all.extend(drain());
        for h in started {
            match h.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    let results: Vec<R> = all.into_iter().map(|(_, r)| r).collect::<Result<_, E>>()?;
    debug_assert_eq!(results.len(), count, "every item worked on");
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_thread_took_them() {
        for helpers in 0..4 {
            let items: Vec<u64> = (0..200).collect();
            let out = run(items, helpers, |i| -> Result<u64, ()> {
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                Ok(i * i)
            });
            assert_eq!(out, Ok((0..200).map(|i| i * i).collect::<Vec<_>>()));
        }
        assert_eq!(run(Vec::<u8>::new(), 2, |_| Ok::<_, ()>(())), Ok(vec![]));
    }

    #[test]
    fn an_error_is_returned() {
        let out = run(
            (0..50).collect(),
            2,
            |i: u32| if i == 17 { Err(i) } else { Ok(i) },
        );
        assert_eq!(out, Err(17));
    }
}
