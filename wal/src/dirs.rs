//! Durable directory creation: `create_dir_all` whose new directories survive a power loss.
//!
//! A directory created by `mkdir` is a name in its parent; that name is durable only once the
//! parent is fsynced, and a name created inside the new directory only once the new directory
//! is. [`create_dir_all_durable`] finds the first ancestor that exists, creates the missing
//! chain below it through the [`Storage`] seam, then fsyncs every new directory and the
//! existing ancestor, deepest first: after it returns, a power loss keeps the whole chain.

use std::io;
use std::path::{Path, PathBuf};

use crate::storage::Storage;

/// Creates `dir` and its missing parents, and makes each of them durable (each new directory
/// fsynced, and the parent of the topmost new one). Returns the directories it created,
/// topmost first (empty when `dir` existed).
///
/// A directory is taken to exist when it can be listed. When an earlier call created the chain
/// but failed before its fsyncs, a retry sees it existing and does not fsync it again: callers
/// treat an error as fatal for what they were about to create ([`crate::Wal::open`] fails, the
/// engine's delivery worker does not start).
///
/// # Errors
/// The first I/O error of the creation or of an fsync.
pub fn create_dir_all_durable(storage: &dyn Storage, dir: &Path) -> io::Result<Vec<PathBuf>> {
    // Walk up to the first ancestor that exists; what lies below it is new.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    let mut existing = None;
    while let Some(d) = at {
        if d.as_os_str().is_empty() {
            // A relative path's top: the working directory, which exists.
            existing = Some(Path::new("."));
            break;
        }
        match storage.list(d) {
            Ok(_) => {
                existing = Some(d);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => return Err(e),
        }
        at = d.parent();
    }
    if missing.is_empty() {
        return Ok(missing);
    }
    storage.create_dir_all(dir)?;
    // Deepest first: each new directory holds the next one's name; then the existing ancestor,
    // which holds the topmost new name.
    for d in &missing {
        storage.sync_dir(d)?;
    }
    if let Some(parent) = existing {
        storage.sync_dir(parent)?;
    }
    missing.reverse();
    Ok(missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fmt;
    use std::sync::{Arc, Mutex};

    use crate::storage::{OpenMode, StdStorage, StorageFile};

    use super::*;

    /// The real file system, recording the directories it fsyncs and failing the n-th fsync
    /// when asked.
    #[derive(Default)]
    struct Recording {
        synced: Mutex<Vec<PathBuf>>,
        fail_sync: Option<usize>,
    }

    impl fmt::Debug for Recording {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Recording")
        }
    }

    impl Storage for Recording {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdStorage.create_dir_all(dir)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            StdStorage.list(dir)
        }
        fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
            StdStorage.open(path, mode)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            StdStorage.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            StdStorage.remove(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            let mut synced = self.synced.lock().unwrap();
            if self.fail_sync == Some(synced.len()) {
                return Err(io::Error::other("injected fsync failure"));
            }
            synced.push(dir.to_path_buf());
            drop(synced);
            StdStorage.sync_dir(dir)
        }
        fn free_bytes(&self, dir: &Path) -> Option<u64> {
            StdStorage.free_bytes(dir)
        }
        fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
            StdStorage.lock(path)
        }
        fn lock_shared(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
            StdStorage.lock_shared(path)
        }
    }

    #[test]
    fn fsyncs_every_new_directory_and_the_existing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir(root.join("streams")).unwrap();
        let dir = root.join("streams/s1/delivery");
        let storage = Recording::default();
        let created = create_dir_all_durable(&storage, &dir).unwrap();
        assert_eq!(created, vec![root.join("streams/s1"), dir.clone()]);
        assert!(dir.is_dir());
        assert_eq!(
            *storage.synced.lock().unwrap(),
            vec![dir.clone(), root.join("streams/s1"), root.join("streams")]
        );

        // Existing: nothing created, nothing fsynced.
        let again = Recording::default();
        assert!(create_dir_all_durable(&again, &dir).unwrap().is_empty());
        assert!(again.synced.lock().unwrap().is_empty());

        // One new level under an existing chain: that directory and its parent.
        let more = Recording::default();
        let leaf = dir.join("x");
        assert_eq!(
            create_dir_all_durable(&more, &leaf).unwrap(),
            vec![leaf.clone()]
        );
        assert_eq!(*more.synced.lock().unwrap(), vec![leaf, dir]);
    }

    #[test]
    fn a_failed_fsync_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let storage = Recording {
            fail_sync: Some(1),
            ..Recording::default()
        };
        let e = create_dir_all_durable(&storage, &dir).unwrap_err();
        assert_eq!(e.to_string(), "injected fsync failure");
        assert_eq!(*storage.synced.lock().unwrap(), vec![dir]);
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let storage = Recording::default();
        assert!(create_dir_all_durable(&storage, &tmp.path().join("f/d")).is_err());
        assert!(storage.synced.lock().unwrap().is_empty());
    }
}
