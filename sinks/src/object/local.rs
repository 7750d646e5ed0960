//! [`LocalStore`]: objects as files under a directory, the embedded default destination.
//!
//! An S3 or ExtendedS3 destination without an S3 endpoint writes here: object `key` of bucket
//! `b` is the file `ROOT/b/key` ([`LocalStore::for_bucket`]; the daemon's ROOT is `DIR/objects`
//! unless configured elsewhere), so the tree looks like what
//! `aws s3 sync` would download.
//!
//! # Durability protocol (one object)
//!
//! 1. Create the missing directories of the key one level at a time; after creating one, fsync its
//!    parent so the new entry survives a power loss. A directory that already existed is fsynced
//!    into its parent too, once per process, because the writer that created it may have crashed
//!    (or still be running) between its mkdir and its fsync.
//! 2. Write the body to `.hydrant-tmp.<pid>.<n>` in the object's directory (created exclusively),
//!    and fsync it.
//! 3. Rename it over the final name: atomic, so a reader sees the old object or the new one,
//!    never a part; the same key written again is replaced (an idempotent retry).
//! 4. fsync the directory, so the rename itself is durable before `put_object` returns.
//!
//! If any step fails, the temporary file is removed and the final name is untouched. A crash
//! can leave a temporary file behind: [`LocalStore::sweep_temp_files`] removes them at start-up,
//! and listings never show them. Keys that would leave the directory (`..`, a leading `/`) or use
//! the temporary names are refused ([`SinkError::InvalidKey`]); empty path segments (`a//b`)
//! collapse as the file system collapses them.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::LocalStep;
use crate::store::{Body, ObjectStore, PutObject};
use crate::{BoxFuture, SinkError};

/// Names starting with this are temporary files, never objects.
pub const TEMP_FILE_PREFIX: &str = ".hydrant-tmp.";
/// After this many remembered directories the memory of fsynced directories is dropped (and
/// rebuilt, one extra fsync per directory): a bound on memory for stores with many prefixes.
const DURABLE_DIRS_MAX: usize = 100_000;

/// A distinct temporary name per write in this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Objects as files under `root`.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Directories known to be durably linked into their parents by this process.
    durable_dirs: Arc<Mutex<HashSet<PathBuf>>>,
    /// A step to fail at, for tests of the failure paths.
    #[cfg(test)]
    fail_at: Option<LocalStep>,
}

fn local_io(step: LocalStep, path: &Path) -> impl FnOnce(io::Error) -> SinkError + '_ {
    move |source| SinkError::LocalIo {
        step,
        path: path.to_path_buf(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(local_io(LocalStep::SyncDir, dir))
}

impl LocalStore {
    /// A store whose objects live under `root` (object `k` is `root/k`). Creates `root`, durably,
    /// if it is missing.
    ///
    /// # Errors
    /// [`SinkError::LocalIo`] if `root` cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore, SinkError> {
        let root = root.into();
        create_root_durably(&root)?;
        Ok(LocalStore {
            root,
            durable_dirs: Arc::new(Mutex::new(HashSet::new())),
            #[cfg(test)]
            fail_at: None,
        })
    }

    /// The store of `bucket` under the local object store's root: `root/<bucket>`.
    ///
    /// # Errors
    /// [`SinkError::InvalidKey`] for a bucket name that is not one path segment, or
    /// [`SinkError::LocalIo`].
    pub fn for_bucket(root: &Path, bucket: &str) -> Result<LocalStore, SinkError> {
        if bucket.is_empty() || bucket == "." || bucket == ".." || bucket.contains(['/', '\0']) {
            return Err(SinkError::InvalidKey {
                key: bucket.to_string(),
                reason: "a bucket name must be one path segment",
            });
        }
        LocalStore::new(root.join(bucket))
    }

    /// The directory objects live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds (or will hold) `key`.
    ///
    /// # Errors
    /// [`SinkError::InvalidKey`] for keys this store refuses.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, SinkError> {
        let mut path = self.root.clone();
        for segment in key_segments(key)? {
            path.push(segment);
        }
        Ok(path)
    }

    /// Removes temporary files left by writes that a crash interrupted. Call it at start-up,
    /// before deliveries begin (a write in progress would lose its temporary file).
    ///
    /// # Errors
    /// [`SinkError::LocalIo`] if the tree cannot be walked or a file removed.
    pub fn sweep_temp_files(&self) -> Result<usize, SinkError> {
        let mut removed = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(local_io(LocalStep::List, &dir))?;
            for entry in entries {
                let entry = entry.map_err(local_io(LocalStep::List, &dir))?;
                let path = entry.path();
                let file_type = entry
                    .file_type()
                    .map_err(local_io(LocalStep::List, &path))?;
                if file_type.is_dir() {
                    stack.push(path);
                } else if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(TEMP_FILE_PREFIX)
                {
                    fs::remove_file(&path).map_err(local_io(LocalStep::Write, &path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Makes the next write fail at `step` (tests of the failure paths).
    #[cfg(test)]
    fn failing_at(mut self, step: LocalStep) -> LocalStore {
        self.fail_at = Some(step);
        self
    }

    /// Returns an injected failure at `step`, in tests; nothing otherwise.
    fn fault(&self, step: LocalStep, path: &Path) -> Result<(), SinkError> {
        #[cfg(test)]
        if self.fail_at == Some(step) {
            return Err(SinkError::LocalIo {
                step,
                path: path.to_path_buf(),
                source: io::Error::other("injected failure"),
            });
        }
        let _ = (step, path);
        Ok(())
    }

    /// Creates the directories from the root to `segments` (the key without its file name),
    /// each durably linked into its parent; returns the deepest.
    fn ensure_dirs(&self, segments: &[&str]) -> Result<PathBuf, SinkError> {
        let mut dir = self.root.clone();
        for segment in segments {
            let parent = dir.clone();
            dir.push(segment);
            let created = match fs::create_dir(&dir) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(local_io(LocalStep::CreateDir, &dir)(e)),
            };
            self.fault(LocalStep::CreateDir, &dir)?;
            let known = self
                .durable_dirs
                .lock()
                .map(|set| set.contains(&dir))
                .unwrap_or(false);
            if created || !known {
                fsync_dir(&parent)?;
                self.fault(LocalStep::SyncDir, &parent)?;
                if let Ok(mut set) = self.durable_dirs.lock() {
                    if set.len() >= DURABLE_DIRS_MAX {
                        set.clear();
                    }
                    set.insert(dir.clone());
                }
            }
        }
        Ok(dir)
    }

    /// The durability protocol of the module docs, blocking.
    fn put_blocking(&self, key: &str, body: &Body) -> Result<(), SinkError> {
        let segments = key_segments(key)?;
        let Some((file_name, dirs)) = segments.split_last() else {
            return Err(SinkError::InvalidKey {
                key: key.to_string(),
                reason: "empty key",
            });
        };
        let dir = self.ensure_dirs(dirs)?;
        let final_path = dir.join(file_name);
        let (temp_path, file) = create_temp_file(&dir)?;
        let result = self.write_temp_and_rename(file, &temp_path, &final_path, body);
        if result.is_err() {
            // Leave nothing behind: the final name was never touched unless the rename succeeded,
            // in which case the temporary name no longer exists and this is a no-op.
            let _ = fs::remove_file(&temp_path);
        }
        result?;
        fsync_dir(&dir)?;
        self.fault(LocalStep::SyncDir, &dir)
    }

    fn write_temp_and_rename(
        &self,
        mut file: File,
        temp_path: &Path,
        final_path: &Path,
        body: &Body,
    ) -> Result<(), SinkError> {
        write_body(&mut file, body).map_err(local_io(LocalStep::Write, temp_path))?;
        self.fault(LocalStep::Write, temp_path)?;
        file.sync_all()
            .map_err(local_io(LocalStep::SyncFile, temp_path))?;
        self.fault(LocalStep::SyncFile, temp_path)?;
        drop(file);
        // Kill tests: a crash between the durable temporary file and the rename.
        crate::crash::crash_point("delivery::mid_upload");
        self.fault(LocalStep::Rename, final_path)?;
        fs::rename(temp_path, final_path).map_err(local_io(LocalStep::Rename, final_path))
    }

    fn get_blocking(&self, key: &str) -> Result<Bytes, SinkError> {
        let path = self.path_of(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SinkError::NotFound {
                key: key.to_string(),
            }),
            Err(e) => Err(local_io(LocalStep::Read, &path)(e)),
        }
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        // Walk only below the deepest directory the prefix names in full.
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut start = self.root.clone();
        let mut start_key = String::new();
        for segment in dir_part.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." {
                return Ok(Vec::new());
            }
            start.push(segment);
            start_key.push_str(segment);
            start_key.push('/');
        }
        let mut keys = Vec::new();
        let mut stack = vec![(start, start_key)];
        while let Some((dir, dir_key)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(local_io(LocalStep::List, &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(local_io(LocalStep::List, &dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_FILE_PREFIX) {
                    continue;
                }
                let key = format!("{dir_key}{name}");
                let file_type = entry.file_type().map_err(local_io(LocalStep::List, &dir))?;
                if file_type.is_dir() {
                    stack.push((entry.path(), format!("{key}/")));
                } else if key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Creates a new temporary file in `dir`. A name can already exist only if an earlier process
/// with the same pid crashed mid-write; such a name is skipped (the sweep removes the file).
/// Bodies at least this large are written with `O_DIRECT` (see [`write_body`]).
const DIRECT_MIN: usize = 256 * 1024;
/// Alignment of `O_DIRECT` buffers, offsets and lengths: a page, which covers 512-byte and
/// 4 KiB logical blocks.
const DIRECT_ALIGN: usize = 4096;
/// Bytes staged per `O_DIRECT` write.
const DIRECT_CHUNK: usize = 1024 * 1024;
/// Most bytes per `O_DIRECT` write straight from an aligned body. Small enough that a WAL's
/// group commit on the same disk never queues behind much of it: with 16 MiB writes, P1 of
/// `hydrant bench put` saw fdatasync tails of 10-40 ms and 829-1,006 MB/s (p99 21-23 ms);
/// with 1 MiB, 979-1,129 MB/s (p99 9-11 ms), on 2026-11-26.
const DIRECT_WRITE_MAX: usize = 1024 * 1024;

/// Writes `body` as the whole content of the new, empty `file`.
///
/// Large bodies go around the page cache (`O_DIRECT`): an object is written once and rarely read
/// back, and filling fresh page-cache pages and writing them back cost far more CPU than the
/// direct write. Measured on this project's VMs with dd, 2 GB to a new file then fsync:
/// buffered 4.9 s of system CPU, direct 0.12 s; in `hydrant bench put`, buffered object writes
/// were a third of the daemon's CPU. A body in one page-aligned buffer (an uncompressed batch as
/// the delivery loader reads it) is written from that buffer, all its whole pages; anything else
/// is staged through an aligned buffer one chunk at a time. The last chunk is zero-padded to the
/// alignment and the file then cut back to the body's length. File systems that refuse
/// `O_DIRECT` (the flag or the first write answers `EINVAL`) get an ordinary buffered write.
/// Durability is the caller's fsync either way.
fn write_body(file: &mut File, body: &Body) -> io::Result<()> {
    if body.len() < DIRECT_MIN || !set_direct(file, true) {
        return write_buffered(file, body);
    }
    match write_direct(file, body) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // The file system took the flag but not the I/O: start over, buffered.
            if !set_direct(file, false) {
                return Err(e);
            }
            file.set_len(0)?;
            write_buffered(file, body)
        }
        Err(e) => Err(e),
    }
}

/// Writes `body` at offset 0 through the page cache.
fn write_buffered(file: &File, body: &Body) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut offset = 0u64;
    for part in body.parts() {
        file.write_all_at(part, offset)?;
        offset += part.len() as u64;
    }
    Ok(())
}

/// Turns `O_DIRECT` on or off for `file`. False when the kernel refused.
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows for the call; F_GETFL and F_SETFL
    // take and return plain integers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let want = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, want) == 0
    }
}

fn write_direct(file: &mut File, body: &Body) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    // A body in one page-aligned buffer (an uncompressed batch as the delivery loader reads
    // it) is written from where it is, all but its last partial page; the rest is staged.
    let mut written = 0usize;
    let mut parts = body.parts();
    let mut rest_of_first = None;
    if let [one] = parts {
        if one.as_ptr().align_offset(DIRECT_ALIGN) == 0 {
            let whole_pages = one.len() / DIRECT_ALIGN * DIRECT_ALIGN;
            let mut at = 0;
            while at < whole_pages {
                let n = (whole_pages - at).min(DIRECT_WRITE_MAX);
                file.write_all_at(&one[at..at + n], at as u64)?;
                at += n;
            }
            written = whole_pages;
            rest_of_first = Some(&one[whole_pages..]);
            parts = &[];
        }
    }
    let remaining = body.len() - written;
    if remaining == 0 {
        return Ok(());
    }
    let padded_len = body.len().next_multiple_of(DIRECT_ALIGN);
    let chunk = DIRECT_CHUNK.min(remaining.next_multiple_of(DIRECT_ALIGN));
    // An aligned window into a slightly larger ordinary allocation: no unsafe allocation.
    let mut staging = vec![0u8; chunk + DIRECT_ALIGN];
    let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
    let window = staging
        .get_mut(start..start + chunk)
        .ok_or_else(|| io::Error::other("no aligned window in the staging buffer"))?;
    // Fill the window from the parts in turn; write it whenever it is full, and at the end.
    let mut filled = 0usize;
    let mut offset = written as u64;
    let slices = rest_of_first
        .into_iter()
        .chain(parts.iter().map(|p| &p[..]));
    for part in slices {
        let mut rest = part;
        while !rest.is_empty() {
            let n = rest.len().min(chunk - filled);
            window[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            rest = &rest[n..];
            if filled == chunk {
                file.write_all_at(window, offset)?;
                offset += chunk as u64;
                filled = 0;
            }
        }
    }
    if filled > 0 {
        let write_len = filled.next_multiple_of(DIRECT_ALIGN);
        window[filled..write_len].fill(0);
        file.write_all_at(&window[..write_len], offset)?;
    }
    if padded_len != body.len() {
        file.set_len(body.len() as u64)?;
    }
    Ok(())
}

fn create_temp_file(dir: &Path) -> Result<(PathBuf, File), SinkError> {
    const ATTEMPTS_MAX: usize = 16;
    let mut attempt = 0;
    loop {
        let name = format!(
            "{TEMP_FILE_PREFIX}{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < ATTEMPTS_MAX => {
                attempt += 1;
            }
            Err(e) => return Err(local_io(LocalStep::Write, &path)(e)),
        }
    }
}

/// Creates `root` and its missing ancestors, fsyncing each new directory into its parent.
fn create_root_durably(root: &Path) -> Result<(), SinkError> {
    let mut missing = Vec::new();
    let mut probe = root;
    while !probe.exists() {
        missing.push(probe.to_path_buf());
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
            _ => break,
        }
    }
    for dir in missing.iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(local_io(LocalStep::CreateDir, dir)(e)),
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    if !root.is_dir() {
        return Err(local_io(LocalStep::CreateDir, root)(io::Error::from(
            io::ErrorKind::NotADirectory,
        )));
    }
    Ok(())
}

/// Splits a key into path segments, refusing keys that would escape the root or hit the
/// temporary names.
fn key_segments(key: &str) -> Result<Vec<&str>, SinkError> {
    let invalid = |reason| {
        Err(SinkError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if let Some(reason) = crate::keys::key_problem(key) {
        return invalid(reason);
    }
    let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    Ok(segments)
}

fn task_error(e: tokio::task::JoinError) -> SinkError {
    SinkError::Task(e.to_string())
}

impl ObjectStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn put_object<'a>(
        &'a self,
        key: &'a str,
        object: PutObject,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            // fsync blocks for as long as the disk takes: keep it off the async workers.
            tokio::task::spawn_blocking(move || store.put_blocking(&key, &object.body))
                .await
                .map_err(task_error)?
        })
    }

    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, SinkError>> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.get_blocking(&key))
                .await
                .map_err(task_error)?
        })
    }

    fn list_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, SinkError>> {
        let store = self.clone();
        let prefix = prefix.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.list_blocking(&prefix))
                .await
                .map_err(task_error)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &LocalStore, key: &str, body: &'static [u8]) -> Result<(), SinkError> {
        store.put_blocking(key, &Body::from(body))
    }

    /// Puts `body` under `key` and reads it back.
    fn round_trip(store: &LocalStore, key: &str, body: &Body) -> Bytes {
        store
            .put_blocking(key, body)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        store.get_blocking(key).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `body` cut into parts of uneven sizes (1 byte up to a bit over a staging chunk), so part
    /// boundaries fall everywhere relative to the staging window and the alignment.
    fn uneven_parts(body: &[u8]) -> Body {
        let sizes = [1, 1000, 4095, 4097, DIRECT_CHUNK + 3, 17];
        let mut parts = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= body.len() {
                break;
            }
            let end = (at + size).min(body.len());
            parts.push(Bytes::copy_from_slice(&body[at..end]));
            at = end;
        }
        Body::from_parts(parts)
    }

    fn temp_files(root: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(TEMP_FILE_PREFIX)
                {
                    found.push(path);
                }
            }
        }
        found
    }

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalStore::for_bucket(&dir.path().join("objects"), "my-bucket")
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    /// A body in one page-aligned buffer, written from it without staging, comes back exact.
    #[test]
    fn aligned_bodies_written_from_their_buffer_read_back_exactly() {
        let (_dir, store) = store();
        for (i, size) in [
            DIRECT_MIN,
            DIRECT_MIN + 1,
            3 * DIRECT_CHUNK + 7,
            DIRECT_WRITE_MAX + DIRECT_ALIGN + 5,
        ]
        .into_iter()
        .enumerate()
        {
            let mut buf: Vec<u8> = vec![0; size + DIRECT_ALIGN];
            let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
            for (n, b) in buf[start..start + size].iter_mut().enumerate() {
                *b = (n * 7 + i) as u8;
            }
            let whole = Bytes::from(buf).slice(start..start + size);
            assert_eq!(whole.as_ptr().align_offset(DIRECT_ALIGN), 0);
            let back = round_trip(&store, &format!("aligned/{i}"), &Body::from(whole.clone()));
            assert_eq!(back.len(), size, "length of an aligned {size}-byte body");
            assert!(back == whole, "content of an aligned {size}-byte body");
        }
    }

    /// Bodies around the direct-write thresholds and alignments come back byte for byte, with
    /// exactly their length (the padded tail cut off).
    #[test]
    fn large_bodies_written_around_the_page_cache_read_back_exactly() {
        let (_dir, store) = store();
        let sizes = [
            DIRECT_MIN - 1,
            DIRECT_MIN,
            DIRECT_MIN + 1,
            DIRECT_CHUNK,
            DIRECT_CHUNK + DIRECT_ALIGN,
            3 * DIRECT_CHUNK + 7,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let body: Vec<u8> = (0..size).map(|n| (n * 31 + i) as u8).collect();
            let key = format!("big/{i}");
            let back = round_trip(&store, &key, &Body::from(body.clone()));
            assert_eq!(back.len(), size, "length of a {size}-byte body");
            assert!(back[..] == body[..], "content of a {size}-byte body");
            // The same bytes in many parts (an uncompressed batch's records).
            let back = round_trip(&store, &key, &uneven_parts(&body));
            assert!(
                back[..] == body[..],
                "content of a {size}-byte body in parts"
            );
            // Written again (a retry) over the same key: still exact.
            let back = round_trip(&store, &key, &uneven_parts(&body[..size / 2]));
            assert!(
                back[..] == body[..size / 2],
                "rewrite of a {size}-byte body"
            );
        }
    }

    #[test]
    fn objects_land_under_objects_bucket_key() {
        let (dir, store) = store();
        assert_eq!(store.root(), dir.path().join("objects/my-bucket"));
        put(
            &store,
            "2018/08/27/10/s-1-2018-08-27-10-30-07-id.gz",
            b"payload",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let path = dir
            .path()
            .join("objects/my-bucket/2018/08/27/10/s-1-2018-08-27-10-30-07-id.gz");
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&b"payload"[..]));
        assert!(temp_files(dir.path()).is_empty());
        // Every directory on the way was fsynced into its parent once, and is remembered.
        let durable = store.durable_dirs.lock().map(|s| s.len()).unwrap_or(0);
        assert_eq!(durable, 4);
    }

    #[test]
    fn the_same_key_is_overwritten_not_duplicated() {
        let (dir, store) = store();
        put(&store, "a/k", b"first attempt").unwrap_or_else(|e| panic!("{e}"));
        put(&store, "a/k", b"second").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.get_blocking("a/k").ok().as_deref(),
            Some(&b"second"[..])
        );
        let listed = store.list_blocking("").unwrap_or_default();
        assert_eq!(listed, vec!["a/k".to_string()]);
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_failure_at_any_step_leaves_no_partial_object() {
        for step in [
            LocalStep::CreateDir,
            LocalStep::Write,
            LocalStep::SyncFile,
            LocalStep::Rename,
        ] {
            let (dir, store) = store();
            let failing = store.clone().failing_at(step);
            let result = failing.put_blocking("x/y/k", &Body::from(&b"new content"[..]));
            assert!(result.is_err(), "{step}");
            assert!(
                !dir.path().join("objects/my-bucket/x/y/k").exists(),
                "{step}"
            );
            assert!(temp_files(dir.path()).is_empty(), "{step}");
            // An existing object is kept whole when a replacement fails.
            put(&store, "x/y/k", b"old content").unwrap_or_else(|e| panic!("{e}"));
            assert!(failing
                .put_blocking("x/y/k", &Body::from(&b"new content"[..]))
                .is_err());
            assert_eq!(
                store.get_blocking("x/y/k").ok().as_deref(),
                Some(&b"old content"[..]),
                "{step}"
            );
            assert!(temp_files(dir.path()).is_empty(), "{step}");
        }
    }

    #[test]
    fn a_failed_directory_fsync_fails_the_put() {
        let (_dir, store) = store();
        let failing = store.failing_at(LocalStep::SyncDir);
        let result = failing.put_blocking("k", &Body::from(&b"x"[..]));
        assert!(matches!(
            result,
            Err(SinkError::LocalIo {
                step: LocalStep::SyncDir,
                ..
            })
        ));
        assert!(result.is_err_and(|e| e.is_retryable()));
    }

    #[test]
    fn keys_that_escape_or_collide_are_refused() {
        let (dir, store) = store();
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a/",
            "a\0b",
            "a/.hydrant-tmp.1.2",
        ] {
            let result = put(&store, bad, b"x");
            assert!(
                matches!(result, Err(SinkError::InvalidKey { .. })),
                "{bad:?}"
            );
            assert!(!result.is_err_and(|e| e.is_retryable()));
        }
        assert!(!dir.path().join("objects/x").exists());
        // Empty segments collapse.
        put(&store, "a//b", b"x").unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.path().join("objects/my-bucket/a/b").is_file());
        assert!(LocalStore::for_bucket(dir.path(), "..").is_err());
        assert!(LocalStore::for_bucket(dir.path(), "a/b").is_err());
    }

    #[test]
    fn a_file_in_the_way_is_a_permanent_error() {
        let (_dir, store) = store();
        put(&store, "a", b"x").unwrap_or_else(|e| panic!("{e}"));
        let result = put(&store, "a/b", b"y");
        assert!(
            matches!(result, Err(SinkError::LocalIo { .. })),
            "{result:?}"
        );
        assert!(!result.is_err_and(|e| e.is_retryable()));
    }

    #[test]
    fn listing_and_reading() {
        let (_dir, store) = store();
        for key in [
            "2018/08/27/10/a",
            "2018/08/27/11/b",
            "2018/09/01/00/c",
            "other/d",
        ] {
            put(&store, key, b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            store.list_blocking("2018/08/").unwrap_or_default(),
            vec!["2018/08/27/10/a", "2018/08/27/11/b"]
        );
        assert_eq!(store.list_blocking("2018/0").unwrap_or_default().len(), 3);
        assert_eq!(
            store
                .list_blocking("2018/08/27/1")
                .unwrap_or_default()
                .len(),
            2
        );
        assert_eq!(
            store.list_blocking("ot").unwrap_or_default(),
            vec!["other/d"]
        );
        assert!(store.list_blocking("nope/").unwrap_or_default().is_empty());
        assert!(matches!(
            store.get_blocking("2018/zz"),
            Err(SinkError::NotFound { .. })
        ));
    }

    #[test]
    fn stale_temp_files_are_swept_and_never_listed() {
        let (dir, store) = store();
        put(&store, "a/k", b"x").unwrap_or_else(|e| panic!("{e}"));
        let stale = dir.path().join("objects/my-bucket/a/.hydrant-tmp.999.0");
        fs::write(&stale, b"half").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.list_blocking("").unwrap_or_default(), vec!["a/k"]);
        assert_eq!(store.sweep_temp_files().ok(), Some(1));
        assert!(!stale.exists());
        assert_eq!(store.sweep_temp_files().ok(), Some(0));
    }

    #[test]
    fn a_stale_temporary_name_is_skipped() {
        let (dir, store) = store();
        put(&store, "a/k", b"x").unwrap_or_else(|e| panic!("{e}"));
        // What a crashed process with our pid would have left: the next few counter values.
        let next = TEMP_COUNTER.load(Ordering::Relaxed);
        for n in next..next + 3 {
            let stale = dir.path().join(format!(
                "objects/my-bucket/a/{TEMP_FILE_PREFIX}{}.{n}",
                std::process::id()
            ));
            fs::write(stale, b"stale").unwrap_or_else(|e| panic!("{e}"));
        }
        put(&store, "a/k", b"y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.get_blocking("a/k").ok().as_deref(), Some(&b"y"[..]));
    }

    #[tokio::test]
    async fn through_the_object_store_trait() {
        let (_dir, store) = store();
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        let object = PutObject {
            body: Body::from(&b"async"[..]),
            content_encoding: None,
        };
        store
            .put_object("p/k", object)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.get_object("p/k").await.ok().as_deref(),
            Some(&b"async"[..])
        );
        assert_eq!(store.list_keys("p/").await.unwrap_or_default(), vec!["p/k"]);
        assert!(store.location("p/k").ends_with("objects/my-bucket/p/k"));
    }
}
