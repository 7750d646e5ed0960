//! `verify` beside a live log: a writer appends with retention one segment behind it (delivered
//! segments retired and recycled as fast as they fill) while `verify` runs in a loop over the
//! same directory, as `hydrant wal verify` does beside a running `hydrantd`. Every report must
//! be clean: a segment retired under the scan is retention at work, not damage. Without the
//! readers' lock, a segment recycled (renamed away and rewritten as a later segment) during a
//! scan was reported as damaged or missing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hydrant_wal::{Lsn, Severity, StdStorage, Wal, WalOptions};

fn record(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "v".repeat((i % 113) as usize)).into_bytes()
}

#[test]
fn verify_in_a_loop_beside_a_live_writer_reports_no_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let options = WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, options).unwrap();
    let wal = Arc::new(wal);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (wal, stop) = (wal.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0u64;
            let mut retired = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Vec<u8>> = (next..next + 100).map(record).collect();
                let range = wal.append(&batch).unwrap().wait().unwrap();
                assert_eq!(range.start, Lsn(next));
                next = range.end.get();
                // Retention one segment behind the active one.
                let segments = wal.segments();
                if segments.len() > 2 {
                    retired += wal
                        .truncate_before(segments[segments.len() - 2].base_lsn)
                        .unwrap();
                }
            }
            (next, retired)
        })
    };
    let started = Instant::now();
    let mut runs = 0u64;
    let mut segments_checked = 0usize;
    while started.elapsed() < Duration::from_secs(5) {
        let report = hydrant_wal::verify(&StdStorage, &dir).unwrap();
        let errors: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        assert!(
            errors.is_empty(),
            "run {runs}: verify reported damage beside a live writer: {errors:?}"
        );
        segments_checked += report.segments;
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (written, retired) = writer.join().unwrap();
    eprintln!(
        "{runs} verify runs ({segments_checked} segments checked) beside {written} records \
         appended, {retired} segments retired"
    );
    assert!(runs >= 50, "only {runs} verify runs");
    assert!(
        retired >= 50,
        "only {retired} segments retired: retention did not race the scans"
    );
    wal.close().unwrap();
    drop(wal);
    let report = hydrant_wal::verify(&StdStorage, &dir).unwrap();
    assert!(report.is_clean(), "after close: {:?}", report.problems);
}
