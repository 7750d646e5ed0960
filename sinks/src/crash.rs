//! Named crash points for kill tests.
//!
//! `HYDRANT_CRASH_AT=<point>[:<n>]` in the environment makes the process kill itself with SIGKILL
//! the n-th time (default the first) it passes `<point>`. The engine names its own points
//! (`delivery::after_intent`, `delivery::after_send`, `delivery::after_error_output`); this
//! crate has one, `delivery::mid_upload`, in two places: inside [`crate::LocalStore`]'s write
//! after the temporary file is written and fsynced and before it is renamed over the object's
//! name (a crash there leaves a temporary file and no object), and in the S3 store's multipart
//! upload once its first part is uploaded and before the upload is completed (an incomplete
//! upload, no object; objects up to the multipart threshold go up in one PutObject). A second,
//! `delivery::between_partitions`, sits in [`crate::ObjectSink`]'s partitioned delivery between
//! two objects of one batch (a crash there leaves the batch half written). The variable is read
//! once; when it is unset a point costs one atomic load.
//!
//! This lives here rather than in the engine so that sinks can have crash points without
//! knowing the engine: both use [`crash_point`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "HYDRANT_CRASH_AT";

/// Parses `<point>[:<n>]` (n defaults to 1; an unparsable n counts as 1).
fn parse(v: &str) -> (String, u64) {
    match v.rsplit_once(':') {
        Some((p, n)) if !p.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            (p.to_owned(), n.parse().unwrap_or(1).max(1))
        }
        _ => (v.to_owned(), 1),
    }
}

/// Kills the process with SIGKILL when `HYDRANT_CRASH_AT` names `name` and this is its n-th pass.
pub fn crash_point(name: &str) {
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| std::env::var(CRASH_AT_ENV).ok().map(|v| parse(&v)));
    if let Some((point, n)) = target {
        if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            tracing::warn!(point = name, "crash point reached: SIGKILL");
            // SAFETY: plain syscalls on our own process.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn points_and_counts() {
        assert_eq!(
            parse("delivery::after_send"),
            ("delivery::after_send".into(), 1)
        );
        assert_eq!(
            parse("delivery::after_send:3"),
            ("delivery::after_send".into(), 3)
        );
        assert_eq!(
            parse("delivery::mid_upload:0"),
            ("delivery::mid_upload".into(), 1)
        );
    }
}
