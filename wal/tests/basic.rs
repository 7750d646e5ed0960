//! Appending, reading back, reopening, rotating, retention and budget on the real file system
//! and on the simulated disk.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use hydrant_wal::sim::SimDisk;
use hydrant_wal::{Error, Lsn, StdStorage, Storage, Wal, WalOptions, WalView};

fn small(background: bool) -> WalOptions {
    WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: background,
        ..WalOptions::default()
    }
}

fn record(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

fn read_all(wal: &Wal, from: Lsn) -> Vec<(Lsn, Vec<u8>)> {
    let mut r = wal.reader(from).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.extend(f.records().map(|(l, b)| (l, b.to_vec())));
    }
    out
}

fn scenario(storage: Arc<dyn Storage>, dir: &Path, background: bool) {
    let (wal, report) = Wal::open_with(storage.clone(), dir, small(background)).unwrap();
    assert_eq!(report.next_lsn, Lsn(0));
    let mut next = 0u64;
    for batch in 0..600u64 {
        let n = batch % 5 + 1;
        let recs: Vec<Vec<u8>> = (next..next + n).map(record).collect();
        let range = wal.append(&recs).unwrap().wait().unwrap();
        assert_eq!(range.start, Lsn(next));
        next += n;
    }
    assert_eq!(wal.durable_lsn(), Lsn(next));
    assert!(wal.segments().len() > 3, "small segments rotate");
    let all = read_all(&wal, Lsn(0));
    assert_eq!(all.len() as u64, next);
    for (l, b) in &all {
        assert_eq!(*b, record(l.0));
    }
    // Start mid-log, mid-frame.
    let mid = read_all(&wal, Lsn(next / 2 + 1));
    assert_eq!(mid.first().unwrap().0, Lsn(next / 2 + 1));
    assert_eq!(mid.len() as u64, next - (next / 2 + 1));
    wal.close().unwrap();
    drop(wal);

    let (wal, report) = Wal::open_with(storage.clone(), dir, small(background)).unwrap();
    assert_eq!(report.next_lsn, Lsn(next));
    assert_eq!(read_all(&wal, Lsn(0)).len() as u64, next);
    // Retention.
    let segs = wal.segments();
    let cut = segs[2].base_lsn;
    let removed = wal.truncate_before(cut).unwrap();
    assert_eq!(removed, 2);
    assert_eq!(wal.first_lsn(), cut);
    assert!(matches!(wal.reader(Lsn(0)), Err(Error::Truncated { .. })));
    assert_eq!(read_all(&wal, cut).len() as u64, next - cut.0);
    wal.close().unwrap();
    drop(wal);
    let view = WalView::open_with(storage, dir).unwrap();
    assert_eq!(view.first_lsn(), cut);
    assert_eq!(view.next_lsn(), Lsn(next));
    let mut r = view.reader(cut).unwrap();
    let mut n = 0;
    while let Some(f) = r.next_frame().unwrap() {
        n += f.len() as u64;
    }
    assert_eq!(n, next - cut.0);
}

#[test]
fn append_read_reopen_on_real_disk() {
    let tmp = tempfile::tempdir().unwrap();
    scenario(StdStorage::shared(), tmp.path(), true);
    let report = hydrant_wal::verify(&StdStorage, tmp.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn append_read_reopen_on_sim_disk() {
    let disk = SimDisk::new();
    scenario(disk.storage(), Path::new("/wal"), false);
}

#[test]
fn budget_refuses_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        budget_bytes: Some(3 * 16 * 1024),
        ..small(false)
    };
    let (wal, _) = Wal::open(tmp.path(), opts).unwrap();
    let rec = vec![7u8; 1000];
    let mut acked = 0u64;
    let err = loop {
        match wal.append(&[&rec]) {
            Ok(t) => {
                t.wait().unwrap();
                acked += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(wal.next_lsn(), Lsn(acked));
    // Space returns when retention deletes a segment.
    let second = wal.segments()[1].base_lsn;
    assert_eq!(wal.truncate_before(second).unwrap(), 1);
    wal.append(&[&rec]).unwrap().wait().unwrap();
    assert_eq!(wal.next_lsn(), Lsn(acked + 1));
}

#[test]
fn async_tickets_complete_without_a_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), small(true)).unwrap();
    let wal = Arc::new(wal);
    let tickets: Vec<_> = (0..50u64)
        .map(|i| wal.append(&[record(i)]).unwrap())
        .collect();
    // A minimal executor: block on each future with a thread-parking waker.
    for t in tickets {
        let range = block_on(t).unwrap();
        assert!(wal.durable_lsn() >= range.end);
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
