//! The durable mark: the log's durable end, published for readers in other processes.
//!
//! A reader outside the appending process (`hydrant replay`) cannot see the live log's durable
//! end, and the frames it finds in the tail are only *written*: under `interval` or `none`
//! durability, or before a group commit's `fdatasync` returns, they can still be lost to a power
//! loss, and their LSNs be given to other records afterwards. So the log publishes its durable
//! end in a small file, `DURABLE`, and [`crate::WalView::open_durable`] reads no further.
//!
//! ```text
//! DURABLE (32 bytes, rewritten in place at offset 0):
//!   { magic "HYDRDUR\0" 8 | version u16 | reserved u16 | reserved u32 | durable_lsn u64 |
//!     crc32 u32 | reserved u32 }        crc32 (IEEE) covers bytes 0..24
//! ```
//!
//! # Why a stale or torn mark is safe
//!
//! The log writes the mark only after the sync that made `durable_lsn` durable has returned,
//! and never writes a lower value than it wrote before (the writes are serialized by the group
//! commit: one sync at a time). So whatever version of the file a reader or a power loss leaves,
//! every record below its LSN was durable before that version was written: the mark is a lower
//! bound of the durable end, never more. The mark itself is not synced (it would cost a second
//! `fdatasync` per group commit): after a power loss it may be older than the log, which only
//! makes readers stop earlier until the log's next open publishes again. A torn or missing mark
//! fails its CRC and readers fall back to what footers vouch for (a sealed segment's footer is
//! written only once its frames are durable).
//!
//! The mark is written before the sync's waiters are woken, so every record acknowledged under
//! `sync` durability is below the published mark once its acknowledgement is seen, even when the
//! process is killed right after (the written file survives a process kill).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::ids::Lsn;
use crate::storage::{OpenMode, Storage, StorageFile};

/// Name of the durable mark file in a log directory.
pub const DURABLE_NAME: &str = "DURABLE";

const MAGIC: [u8; 8] = *b"HYDRDUR\0";
/// The mark's own format version (independent of the segments').
const MARK_VERSION: u16 = 1;
const MARK_LEN: usize = 32;

fn encode(lsn: Lsn) -> [u8; MARK_LEN] {
    let mut b = [0u8; MARK_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..10].copy_from_slice(&MARK_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&lsn.0.to_le_bytes());
    let crc = crc32fast::hash(&b[0..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8; MARK_LEN]) -> Option<Lsn> {
    if b[0..8] != MAGIC || u16::from_le_bytes([b[8], b[9]]) != MARK_VERSION {
        return None;
    }
    let crc = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    if crc32fast::hash(&b[0..24]) != crc {
        return None;
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&b[16..24]);
    Some(Lsn(u64::from_le_bytes(lsn)))
}

/// The writer's side: owned by the open log.
#[derive(Debug)]
pub(crate) struct DurableMark {
    path: PathBuf,
    file: Arc<dyn StorageFile>,
    /// The highest LSN written to the file by this log (the file only ever moves forward).
    published: Mutex<Option<Lsn>>,
}

impl DurableMark {
    /// Opens (creating when missing) the mark of the log in `dir`.
    pub(crate) fn open(storage: &dyn Storage, dir: &Path) -> Result<DurableMark> {
        let path = dir.join(DURABLE_NAME);
        let file = storage
            .open(&path, OpenMode::Create)
            .map_err(|e| Error::io("open", &path, e))?;
        Ok(DurableMark {
            path,
            file,
            published: Mutex::new(None),
        })
    }

    /// Publishes `durable`, which the caller has made durable. Lower values than one already
    /// published are ignored.
    ///
    /// # Errors
    /// [`Error::Io`] when the write failed. The mark is then stale (readers stop earlier), never
    /// ahead of the durable end, so callers may carry on.
    pub(crate) fn publish(&self, durable: Lsn) -> Result<()> {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if published.is_some_and(|p| durable <= p) {
            return Ok(());
        }
        self.file
            .write_at(&encode(durable), 0)
            .map_err(|e| Error::io("write", &self.path, e))?;
        *published = Some(durable);
        Ok(())
    }
}

/// Reads the durable mark of the log in `dir`: `None` when it is missing or does not decode (a
/// log written before the mark existed, or a mark torn by a power loss).
///
/// # Errors
/// [`Error::Io`] for an I/O error other than a missing file.
pub fn read_durable_mark(storage: &dyn Storage, dir: &Path) -> Result<Option<Lsn>> {
    let path = dir.join(DURABLE_NAME);
    let file = match storage.open(&path, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    // A read racing the log's rewrite of the mark can see a mix of two versions, which fails
    // the CRC: read again (a few times) before falling back.
    for _ in 0..8 {
        let mut b = [0u8; MARK_LEN];
        match file.read_at(&mut b, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        }
        if let Some(lsn) = decode(&b) {
            return Ok(Some(lsn));
        }
        std::thread::yield_now();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bit_flip_is_refused() {
        let b = encode(Lsn(731_022));
        assert_eq!(decode(&b), Some(Lsn(731_022)));
        for bit in 0..(28 * 8) {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&c), None, "bit {bit}");
        }
        assert_eq!(decode(&[0u8; MARK_LEN]), None);
    }
}
