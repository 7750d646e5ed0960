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

/// A storage wrapper that counts the bytes read from, and the maps made of, each file: opening a
/// log must read only headers and footers of sealed segments and map only the tail, so start-up
/// cost grows with the tail, not with the backlog.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Storage>,
    reads: Arc<std::sync::Mutex<std::collections::BTreeMap<std::path::PathBuf, (u64, u64)>>>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Arc<dyn hydrant_wal::storage::StorageFile>,
    path: std::path::PathBuf,
    reads: Arc<std::sync::Mutex<std::collections::BTreeMap<std::path::PathBuf, (u64, u64)>>>,
}

impl Storage for Counting {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(
        &self,
        path: &Path,
        mode: hydrant_wal::storage::OpenMode,
    ) -> std::io::Result<Arc<dyn hydrant_wal::storage::StorageFile>> {
        Ok(Arc::new(CountingFile {
            inner: self.inner.open(path, mode)?,
            path: path.to_path_buf(),
            reads: self.reads.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn free_bytes(&self, dir: &Path) -> Option<u64> {
        self.inner.free_bytes(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        self.inner.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        self.inner.lock_shared(path)
    }
}

impl hydrant_wal::storage::StorageFile for CountingFile {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.reads
            .lock()
            .unwrap()
            .entry(self.path.clone())
            .or_default()
            .0 += buf.len() as u64;
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn preallocate(&self, len: u64) -> std::io::Result<()> {
        self.inner.preallocate(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()
    }
    fn map(&self) -> std::io::Result<Arc<dyn hydrant_wal::storage::Mapping>> {
        self.reads
            .lock()
            .unwrap()
            .entry(self.path.clone())
            .or_default()
            .1 += 1;
        self.inner.map()
    }
}

#[test]
fn opening_reads_footers_not_the_backlog() {
    let disk = SimDisk::new();
    let dir = Path::new("/wal");
    let (wal, _) = Wal::open_with(disk.storage(), dir, small(false)).unwrap();
    for i in 0..3000u64 {
        wal.append(&[record(i)]).unwrap().wait().unwrap();
    }
    let segments = wal.segments();
    assert!(segments.len() > 8);
    let tail = segments.last().unwrap().path.clone();
    wal.close().unwrap();
    drop(wal);
    let reads = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let counting = Arc::new(Counting {
        inner: disk.storage(),
        reads: reads.clone(),
    });
    let (wal, report) = Wal::open_with(counting, dir, small(false)).unwrap();
    assert_eq!(report.sealed_segments, segments.len() - 1);
    assert_eq!(wal.next_lsn(), Lsn(3000));
    for (path, (bytes, maps)) in reads.lock().unwrap().iter() {
        if *path == tail {
            continue;
        }
        // Header (64 B) and footer (128 B), nothing else, and never a map.
        assert!(
            *bytes <= 192,
            "{}: read {bytes} bytes while opening",
            path.display()
        );
        assert_eq!(*maps, 0, "{}: mapped while opening", path.display());
    }
}

#[test]
fn a_reader_keeps_its_segment_after_retention_deletes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), small(false)).unwrap();
    for i in 0..2000u64 {
        wal.append(&[record(i)]).unwrap().wait().unwrap();
    }
    let segs = wal.segments();
    let mut r = wal.reader(Lsn(0)).unwrap();
    let first = r.next_frame().unwrap().unwrap().first_lsn();
    assert_eq!(first, Lsn(0));
    // Delete everything but the active segment while the reader sits in the first one.
    let removed = wal.truncate_before(segs.last().unwrap().base_lsn).unwrap();
    assert_eq!(removed, segs.len() - 1);
    assert!(!segs[0].path.exists(), "the file is gone");
    // The reader finishes the segment it holds, from its map, then finds the next one deleted.
    let mut next = Lsn(1);
    let err = loop {
        match r.next_frame() {
            Ok(Some(f)) => {
                for (lsn, bytes) in f.records() {
                    assert_eq!(lsn, next);
                    assert_eq!(bytes, &record(lsn.0)[..]);
                    next = next.plus(1);
                }
            }
            Ok(None) => panic!("reader ended in deleted territory"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        next, segs[1].base_lsn,
        "the held segment was read to its end"
    );
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn interval_and_none_acknowledge_after_the_write_and_sync_in_the_background() {
    for durability in [
        hydrant_wal::Durability::Interval {
            every: std::time::Duration::from_millis(20),
        },
        hydrant_wal::Durability::None,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            durability,
            ..small(true)
        };
        let (wal, _) = Wal::open(tmp.path(), opts).unwrap();
        let range = wal.append(&[record(0)]).unwrap().wait().unwrap();
        assert_eq!(range.end, Lsn(1));
        // Readers see only durable records: nothing until the background sync ran.
        let durable = wal.wait_durable_past(Lsn(0), std::time::Duration::from_secs(5));
        assert_eq!(
            durable,
            Lsn(1),
            "{durability:?}: background sync did not run"
        );
        let mut r = wal.reader(Lsn(0)).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().first_lsn(), Lsn(0));
    }
}

#[test]
fn a_failed_sync_poisons_the_log() {
    let disk = SimDisk::new();
    let (wal, _) = Wal::open_with(disk.storage(), Path::new("/wal"), small(false)).unwrap();
    wal.append(&[record(0)]).unwrap().wait().unwrap();
    disk.set_fail_syncs(true);
    let err = wal.append(&[record(1)]).unwrap().wait().unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    // Nothing more is accepted: the state of unsynced data is unknown after a failed fsync.
    assert!(matches!(
        wal.append(&[record(2)]),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(wal.durable_lsn(), Lsn(1));
    disk.set_fail_syncs(false);
    drop(wal);
    // Reopening recovers from what is on disk.
    let (wal, _) = Wal::open_with(disk.storage(), Path::new("/wal"), small(false)).unwrap();
    assert!(wal.next_lsn() >= Lsn(1));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_wal, _) = Wal::open(tmp.path(), small(false)).unwrap();
    let err = Wal::open(tmp.path(), small(false)).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}

#[test]
fn retired_segments_are_recycled_unless_someone_may_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (wal, _) = Wal::open(dir, small(false)).unwrap();
    let mut next = 0u64;
    let mut fill = |wal: &Wal, n: u64| {
        for _ in 0..n {
            wal.append(&[record(next)]).unwrap().wait().unwrap();
            next += 1;
        }
    };
    fill(&wal, 1500);
    let segs = wal.segments();
    let recycle = dir.join(hydrant_wal::segment::RECYCLE_NAME);
    // No reader: both retired segments are kept for reuse, as recycle.tmp and recycle.1.tmp.
    assert_eq!(wal.truncate_before(segs[2].base_lsn).unwrap(), 2);
    assert!(recycle.exists());
    assert!(dir.join("recycle.1.tmp").exists());
    assert!(!segs[0].path.exists() && !segs[1].path.exists());
    // The next rotation takes the recycled file (its old frames stay until overwritten).
    let before = wal.segments().len();
    while wal.segments().len() == before {
        fill(&wal, 10);
    }
    assert!(
        !recycle.exists(),
        "the recycled file became the new segment"
    );
    fill(&wal, 600);
    // Everything retained reads back, across the recycled segment.
    let first = wal.first_lsn();
    assert_eq!(read_all(&wal, first).len() as u64, next - first.0);
    // A reader in this process holds the next segment: it is deleted, not recycled.
    let segs = wal.segments();
    let mut r = wal.reader(segs[0].base_lsn).unwrap();
    let _ = r.next_frame().unwrap().unwrap();
    assert_eq!(wal.truncate_before(segs[1].base_lsn).unwrap(), 1);
    assert!(!recycle.exists());
    // A read-only view in "another process" (it holds the readers' lock) blocks recycling too.
    let view = WalView::open(dir).unwrap();
    assert_eq!(wal.truncate_before(segs[2].base_lsn).unwrap(), 1);
    assert!(!recycle.exists());
    drop(view);
    drop(r);
    wal.close().unwrap();
    drop(wal);
    let (wal, report) = Wal::open(dir, small(false)).unwrap();
    assert_eq!(wal.next_lsn(), Lsn(next));
    assert_eq!(
        report.discarded_bytes, 0,
        "old frames in a recycled file are not damage"
    );
    let first = wal.first_lsn();
    assert_eq!(read_all(&wal, first).len() as u64, next - first.0);
    drop(wal);
    let v = hydrant_wal::verify(&StdStorage, dir).unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

#[test]
fn close_completes_waiting_tickets_and_refuses_later_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), small(true)).unwrap();
    let wal = Arc::new(wal);
    let tickets: Vec<_> = (0..20u64)
        .map(|i| wal.append(&[record(i)]).unwrap())
        .collect();
    let closer = {
        let wal = wal.clone();
        std::thread::spawn(move || wal.close())
    };
    for t in tickets {
        // Each completes: the final sync of close() covers everything appended before it.
        let range = block_on(t).unwrap();
        assert!(range.end <= Lsn(20));
    }
    closer.join().unwrap().unwrap();
    assert!(matches!(wal.append(&[record(99)]), Err(Error::Closed)));
    assert_eq!(wal.durable_lsn(), Lsn(20));
}

/// At most four retired segments are kept for reuse; the rest are deleted, and a budget bounds
/// the kept ones together with the live segments and the spare.
#[test]
fn kept_recycled_segments_are_bounded() {
    let kept = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("recycle."))
            .count()
    };
    for (budget, want) in [(None, 4), (Some(5 * 16 * 1024), 2)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let options = WalOptions {
            budget_bytes: budget,
            ..small(false)
        };
        let (wal, _) = Wal::open(dir, options).unwrap();
        let mut i = 0u64;
        while wal.segments().len() < 8 {
            match wal.append(&[record(i)]).unwrap().wait() {
                Ok(_) => i += 1,
                Err(e) => panic!("{e}"),
            }
            if budget.is_some() && wal.segments().len() >= 3 {
                break;
            }
        }
        let end = wal.segments().last().unwrap().base_lsn;
        let retired = wal.truncate_before(end).unwrap();
        assert!(retired >= 2, "{retired} retired");
        assert_eq!(kept(dir), want.min(retired), "budget {budget:?}");
        let stats = wal.stats();
        if let Some(b) = budget {
            assert!(stats.disk_bytes <= b, "{} > {b}", stats.disk_bytes);
        }
        wal.close().unwrap();
    }
}
