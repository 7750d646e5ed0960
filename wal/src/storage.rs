//! The storage seam: every file operation the WAL performs goes through [`Storage`] and
//! [`StorageFile`], so that tests can swap the real file system for [`crate::sim::SimDisk`], which
//! forgets unsynced writes on a simulated power loss.
//!
//! The contract each implementation keeps is the POSIX one the WAL relies on, no more:
//! - `write_at` data is visible to later reads at once, but durable only after `sync_data`
//!   on that file returns;
//! - a created, renamed or removed name is durable only after `sync_dir` on its directory;
//! - a [`Mapping`] shows the file's current contents, including writes made after it was created,
//!   for the file's length at mapping time; it stays valid after the file is removed.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet.
    CreateNew,
    /// Read and write; created when missing.
    Create,
}

/// A file system, as far as the WAL uses one.
pub trait Storage: Send + Sync + Debug {
    /// Creates a directory and its parents.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries of a directory (not paths), in no particular order.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Opens a file.
    ///
    /// # Errors
    /// The underlying I/O error (`NotFound`, `AlreadyExists`, ...).
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;

    /// Renames a file, replacing any file at `to`.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creations, renames, removals) durable.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Bytes free for the caller on the file system holding `dir`, when known.
    fn free_bytes(&self, dir: &Path) -> Option<u64>;

    /// Takes an exclusive advisory lock on `path` (created when missing), held until the returned
    /// guard is dropped.
    ///
    /// # Errors
    /// `WouldBlock` when another process holds it; the underlying I/O error.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>>;

    /// Takes a shared advisory lock on an existing `path`, waiting while someone holds it
    /// exclusively; held until the guard is dropped.
    ///
    /// # Errors
    /// `NotFound`; the underlying I/O error.
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>>;
}

/// An open file.
pub trait StorageFile: Send + Sync + Debug {
    /// The file's length.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn len(&self) -> io::Result<u64>;

    /// True when the file is empty.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// `UnexpectedEof` past the end; the underlying I/O error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`, growing the file when needed.
    ///
    /// # Errors
    /// The underlying I/O error; a failed write may have written a part of `buf`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Preallocates the file to `len` bytes with written zeros, so that later writes below `len`
    /// overwrite blocks in place: they never allocate, never meet a full disk, and their sync does
    /// not journal block allocation. Not durable until `sync_data`.
    ///
    /// # Errors
    /// `StorageFull` (ENOSPC) when the disk cannot hold the file; the underlying I/O error.
    fn preallocate(&self, len: u64) -> io::Result<()>;

    /// Sizes the file to `len` bytes with blocks reserved but not written (unwritten extents,
    /// `fallocate`): they read as zeros, later writes below `len` never meet a full disk, and
    /// nothing is written until the caller writes. The first sync after writing into such a
    /// block also commits its conversion to written (in the file system's journal). Not durable
    /// until `sync_data`. Where the file system cannot, the same as [`StorageFile::preallocate`]
    /// (the default: a simulated disk reads zeros either way).
    ///
    /// # Errors
    /// As [`StorageFile::preallocate`].
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.preallocate(len)
    }

    /// Makes `from..to` read as zeros, the file's length unchanged. Not durable until
    /// `sync_data`. The default writes zeros (1 MiB at a time); the real file system's
    /// implementation asks for `fallocate(FALLOC_FL_ZERO_RANGE)`, which turns the range into
    /// unwritten extents without writing (or reading) it: see "Reopening the tail" in
    /// [`crate::reopen`] for why that is as durable as written zeros.
    ///
    /// # Errors
    /// The underlying I/O error; a failed call may have zeroed a part of the range.
    fn zero_range(&self, from: u64, to: u64) -> io::Result<()> {
        write_zeros(from, to, |buf, at| self.write_at(buf, at))
    }

    /// The parts of `from..to` that may hold non-zero bytes, in order. A file system that
    /// tracks holes and unwritten extents (`SEEK_DATA`/`SEEK_HOLE`) leaves out ranges that read
    /// as zeros; that is the whole of their contract ("a hole reads as zeros"), and all callers
    /// rely on: a range left in may still read as zeros. Default: the whole range.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn data_ranges(&self, from: u64, to: u64) -> io::Result<Vec<(u64, u64)>> {
        Ok(if from < to {
            vec![(from, to)]
        } else {
            Vec::new()
        })
    }

    /// Makes every completed write to this file durable (fdatasync).
    ///
    /// # Errors
    /// The underlying I/O error. After a failed sync the state of the unsynced writes is unknown
    /// (the kernel may have dropped them), so callers must treat the file as lost.
    fn sync_data(&self) -> io::Result<()>;

    /// Maps the file read-only, for its length now.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn map(&self) -> io::Result<Arc<dyn Mapping>>;
}

/// A read-only view of a file's bytes.
pub trait Mapping: Send + Sync + Debug {
    /// The mapped length.
    fn len(&self) -> usize;

    /// True when the mapping is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in `offset..offset + len`.
    ///
    /// Callers only read ranges whose writes completed before they learned of them (through a
    /// lock or an atomic with acquire ordering), so the bytes are stable while borrowed.
    ///
    /// # Panics
    /// When the range is outside the mapping.
    fn bytes(&self, offset: usize, len: usize) -> &[u8];

    /// A hint: `offset..offset + len` is about to be read (the kernel may start reading it
    /// ahead, in large requests). Never changes what is read. Default: nothing.
    fn will_need(&self, offset: usize, len: usize) {
        let _ = (offset, len);
    }

    /// A hint: `offset..offset + len` will not be read again soon. Its pages leave this
    /// process's resident set (they stay in the page cache, and a later read, through a slice
    /// borrowed before or after, maps them again); what is read never changes. Default: nothing.
    fn release(&self, offset: usize, len: usize) {
        let _ = (offset, len);
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdStorage;

impl StdStorage {
    /// A shared handle to the real file system.
    #[must_use]
    pub fn shared() -> Arc<dyn Storage> {
        Arc::new(StdStorage)
    }
}

#[derive(Debug)]
struct StdFile {
    file: File,
    path: PathBuf,
}

#[derive(Debug)]
struct StdMapping {
    map: memmap2::Mmap,
}

impl Storage for StdStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            OpenMode::Create => o.read(true).write(true).create(true),
        };
        let file = o.open(path)?;
        Ok(Arc::new(StdFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn free_bytes(&self, dir: &Path) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        (rc == 0).then(|| st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn Debug + Send + Sync>> {
        let file = File::open(path)?;
        file.lock_shared()?;
        Ok(Box::new(file))
    }
}

/// Writes zeros over `from..to` with `write` (1 MiB at a time).
fn write_zeros(
    from: u64,
    to: u64,
    mut write: impl FnMut(&[u8], u64) -> io::Result<()>,
) -> io::Result<()> {
    let zeros = vec![0u8; to.saturating_sub(from).min(1 << 20) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        write(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

impl StorageFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let off_len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        // Reserve the blocks first (contiguous extents, ENOSPC now rather than later) ...
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), 0, off_len) };
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // ... then write zeros over them: fallocated blocks are "unwritten" extents, and the first
        // sync after writing into one must journal its conversion, about twice the cost of an
        // in-place sync on ext4. Written blocks also leave the pages in the page cache, so the
        // append path's partial-page writes need no read from disk.
        let chunk = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(chunk.len() as u64) as usize;
            self.file.write_all_at(&chunk[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let off_len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        // Mode 0: allocate and extend the size. Unlike posix_fallocate, never emulated by
        // writing: a file system without fallocate says so and gets written zeros instead.
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, off_len) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => self.preallocate(len),
            _ => Err(e),
        }
    }

    fn zero_range(&self, from: u64, to: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if to <= from {
            return Ok(());
        }
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "file too large");
        let offset = libc::off_t::try_from(from).map_err(|_| too_large())?;
        let len = libc::off_t::try_from(to - from).map_err(|_| too_large())?;
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                offset,
                len,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // A file system without it: written zeros, as the default.
            Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
                write_zeros(from, to, |buf, at| self.file.write_all_at(buf, at))
            }
            _ => Err(e),
        }
    }

    fn data_ranges(&self, from: u64, to: u64) -> io::Result<Vec<(u64, u64)>> {
        use std::os::fd::AsRawFd;
        let whole = || {
            Ok(if from < to {
                vec![(from, to)]
            } else {
                Vec::new()
            })
        };
        let fd = self.file.as_raw_fd();
        let mut ranges = Vec::new();
        let mut at = from;
        while at < to {
            let Ok(pos) = libc::off_t::try_from(at) else {
                return whole();
            };
            // SAFETY: plain syscall on an open descriptor; the WAL reads and writes with
            // pread/pwrite, so moving the file offset changes nothing else.
            let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
            if data < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::ENXIO) => Ok(ranges), // no data from `at` to the end of the file
                    Some(libc::EINVAL | libc::EOPNOTSUPP) => whole(),
                    _ => Err(e),
                };
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
            if hole < 0 {
                return Err(io::Error::last_os_error());
            }
            let (data, hole) = (data as u64, hole as u64);
            if data >= to {
                break;
            }
            debug_assert!(hole > data, "SEEK_HOLE from data finds a later offset");
            ranges.push((data.max(from), hole.min(to)));
            at = hole.max(data + 1);
        }
        Ok(ranges)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn map(&self) -> io::Result<Arc<dyn Mapping>> {
        // SAFETY: the mapping is read-only. The WAL is the only writer of its files and only
        // reads ranges whose writes completed before the reader learned of them; other
        // processes (the `hydrant` CLI) open segments read-only. A file truncated under the map
        // by a third party would raise SIGBUS: segments are never truncated by hydrant.
        let map = unsafe { memmap2::MmapOptions::new().map(&self.file) }
            .map_err(|e| io::Error::new(e.kind(), format!("mmap {}: {e}", self.path.display())))?;
        Ok(Arc::new(StdMapping { map }))
    }
}

impl Mapping for StdMapping {
    fn len(&self) -> usize {
        self.map.len()
    }

    fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        &self.map[offset..offset + len]
    }

    fn will_need(&self, offset: usize, len: usize) {
        let len = len.min(self.map.len().saturating_sub(offset));
        if len > 0 {
            // A hint: a failure changes nothing but the speed.
            let _ = self
                .map
                .advise_range(memmap2::Advice::WillNeed, offset, len);
        }
    }

    fn release(&self, offset: usize, len: usize) {
        // Whole pages inside the range only: a page shared with bytes still in use stays.
        let page = 4096;
        let from = offset.next_multiple_of(page);
        let to = (offset + len).min(self.map.len()) / page * page;
        if to > from {
            // SAFETY: the mapping is a read-only shared map of a file: MADV_DONTNEED drops the
            // page table entries, and a later access maps the page cache's copy of the same
            // bytes again (it never reads zeros, as it would for a private anonymous map), so a
            // slice of the range another reader of the same map still holds stays valid and
            // reads the same bytes. A failure changes nothing but the memory.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Outside the ranges `data_ranges` gives, the file reads as zeros; every written byte is
    /// inside one (whether the file system leaves its unwritten extents out or not).
    #[test]
    fn data_ranges_cover_every_written_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let file = StdStorage.open(&path, OpenMode::CreateNew).unwrap();
        let len = 4u64 << 20;
        file.allocate(len).unwrap();
        for (at, n) in [(4096u64, 10_000usize), (1 << 20, 1), (3 << 20, 70_000)] {
            file.write_at(&vec![7u8; n], at).unwrap();
        }
        file.sync_data().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for (from, to) in [(0, len), (5000, len), (1 << 20, 2 << 20), (len, len)] {
            let ranges = file.data_ranges(from, to).unwrap();
            let mut at = from;
            for &(a, b) in &ranges {
                assert!(at <= a && a < b && b <= to, "{ranges:?} in {from}..{to}");
                assert!(bytes[at as usize..a as usize].iter().all(|x| *x == 0));
                at = b;
            }
            assert!(bytes[at as usize..to as usize].iter().all(|x| *x == 0));
            let written = bytes[from as usize..to as usize].iter().any(|x| *x != 0);
            assert!(!ranges.is_empty() || !written, "{from}..{to}");
        }
    }
}
