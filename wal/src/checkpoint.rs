//! Checkpoint files: small state (a delivery cursor and its in-flight intent) that must survive a
//! power loss, written through the same storage seam as the log so that the power-loss
//! simulation covers it.
//!
//! ```text
//! Format: two slots of 4096 bytes; each slot:
//! { magic "HYDRCKP\0" 8 | version u16 | reserved u16 | len u32 | seq u64 | crc32 u32 |
//!   reserved u32 } payload[len], then zeros
//! crc32 covers bytes 0..24 of the slot header and the payload.
//! ```
//!
//! Writes alternate between the slots, each followed by `fdatasync`: a write that a crash tears
//! damages only the slot being written, and the other slot still holds the previous checkpoint.
//! On open, the valid slot with the higher sequence number wins. So a checkpoint read back after
//! a crash is the last one whose [`CheckpointFile::write`] returned, or the one being written when
//! the power went (never garbage, never older than the last acknowledged write).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dirs::create_dir_all_durable;
use crate::error::{Error, Result};
use crate::format::FORMAT_VERSION;
use crate::storage::{OpenMode, Storage, StorageFile};

/// Bytes of one slot: one page, so that slots never share a sector or a page.
pub const SLOT_BYTES: usize = 4096;

const SLOT_HEADER_LEN: usize = 32;

/// The largest payload a checkpoint holds.
pub const CHECKPOINT_PAYLOAD_MAX: usize = SLOT_BYTES - SLOT_HEADER_LEN;

const MAGIC: [u8; 8] = *b"HYDRCKP\0";

/// A two-slot checkpoint file.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    file: Arc<dyn StorageFile>,
    seq: u64,
}

fn decode_slot(b: &[u8]) -> Option<(u64, &[u8])> {
    if b.len() < SLOT_HEADER_LEN || b[0..8] != MAGIC {
        return None;
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    let len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]) as usize;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[16..24]);
    let seq = u64::from_le_bytes(seq);
    let crc = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    if version != FORMAT_VERSION || len > CHECKPOINT_PAYLOAD_MAX {
        return None;
    }
    let payload = &b[SLOT_HEADER_LEN..SLOT_HEADER_LEN + len];
    let mut h = crc32fast::Hasher::new();
    h.update(&b[0..24]);
    h.update(payload);
    (h.finalize() == crc).then_some((seq, payload))
}

fn encode_slot(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; SLOT_BYTES];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b[16..24].copy_from_slice(&seq.to_le_bytes());
    b[SLOT_HEADER_LEN..SLOT_HEADER_LEN + payload.len()].copy_from_slice(payload);
    let mut h = crc32fast::Hasher::new();
    h.update(&b[0..24]);
    h.update(payload);
    let crc = h.finalize();
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

impl CheckpointFile {
    /// Opens the checkpoint at `path`, creating it (durably) when missing, and returns the newest
    /// valid payload, if any.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::BadSegment`] when the file exists but neither slot is valid and it
    /// is not all zeros (damage: refusing beats restarting delivery from zero).
    pub fn open(storage: &dyn Storage, path: &Path) -> Result<(CheckpointFile, Option<Vec<u8>>)> {
        let file = match storage.open(path, OpenMode::ReadWrite) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new("."));
                create_dir_all_durable(storage, dir)
                    .map_err(|e| Error::io("create directory", dir, e))?;
                let tmp = path.with_extension("tmp");
                let _ = storage.remove(&tmp);
                let f = storage
                    .open(&tmp, OpenMode::CreateNew)
                    .map_err(|e| Error::io("create", &tmp, e))?;
                f.preallocate(2 * SLOT_BYTES as u64)
                    .map_err(|e| Error::io("preallocate", &tmp, e))?;
                f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
                storage
                    .rename(&tmp, path)
                    .map_err(|e| Error::io("rename", &tmp, e))?;
                storage
                    .sync_dir(dir)
                    .map_err(|e| Error::io("fsync directory", dir, e))?;
                f
            }
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let mut buf = vec![0u8; 2 * SLOT_BYTES];
        let len = file.len().map_err(|e| Error::io("stat", path, e))?;
        if len < buf.len() as u64 {
            return Err(Error::BadSegment {
                segment: path.to_path_buf(),
                what: "checkpoint length",
                fault: crate::format::HeaderFault::BadField("shorter than two slots"),
            });
        }
        file.read_at(&mut buf, 0)
            .map_err(|e| Error::io("read", path, e))?;
        let a = decode_slot(&buf[..SLOT_BYTES]);
        let b = decode_slot(&buf[SLOT_BYTES..]);
        let newest = match (a, b) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (x, None) | (None, x) => x,
        };
        if newest.is_none() && buf.iter().any(|x| *x != 0) {
            // Both slots damaged: never written whole would leave one slot all zeros, and a torn
            // write damages only one slot. Only damage explains this.
            let either_zero = buf[..SLOT_BYTES].iter().all(|x| *x == 0)
                || buf[SLOT_BYTES..].iter().all(|x| *x == 0);
            if !either_zero {
                return Err(Error::BadSegment {
                    segment: path.to_path_buf(),
                    what: "checkpoint",
                    fault: crate::format::HeaderFault::BadChecksum,
                });
            }
        }
        let seq = newest.map_or(0, |n| n.0);
        let payload = newest.map(|n| n.1.to_vec());
        Ok((
            CheckpointFile {
                path: path.to_path_buf(),
                file,
                seq,
            },
            payload,
        ))
    }

    /// Writes a new checkpoint and makes it durable. When this returns `Ok`, a power loss can no
    /// longer bring back an older one.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::InvalidOptions`] when the payload exceeds
    /// [`CHECKPOINT_PAYLOAD_MAX`].
    pub fn write(&mut self, payload: &[u8]) -> Result<()> {
        if payload.len() > CHECKPOINT_PAYLOAD_MAX {
            return Err(Error::InvalidOptions(
                "checkpoint payload larger than a slot",
            ));
        }
        let seq = self.seq + 1;
        let slot = seq % 2;
        let bytes = encode_slot(seq, payload);
        self.file
            .write_at(&bytes, slot * SLOT_BYTES as u64)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))?;
        self.seq = seq;
        Ok(())
    }

    /// The sequence number of the last checkpoint written or read.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimDisk;

    #[test]
    fn survives_power_loss_at_every_operation() {
        let path = Path::new("/cp/delivery.ckpt");
        for seed in 0..300u64 {
            let disk = SimDisk::new();
            let (mut cp, none) = CheckpointFile::open(disk.storage().as_ref(), path).unwrap();
            assert!(none.is_none());
            let mut acked: Option<Vec<u8>> = None;
            let mut attempted: Option<Vec<u8>> = None;
            disk.arm_crash(seed % 23, seed);
            for i in 0..10u64 {
                let payload = format!("cursor={}", i * 1000 + seed).into_bytes();
                attempted = Some(payload.clone());
                if cp.write(&payload).is_err() {
                    break;
                }
                acked = Some(payload);
            }
            disk.disarm_crash();
            disk.crash(seed ^ 0xABCD);
            let (_, got) = CheckpointFile::open(disk.storage().as_ref(), path).unwrap();
            match (&acked, &got) {
                (None, _) => assert!(got.is_none() || got == attempted),
                (Some(a), Some(g)) => {
                    assert!(g == a || Some(g) == attempted.as_ref(), "seed {seed}")
                }
                (Some(_), None) => panic!("seed {seed}: acknowledged checkpoint lost"),
            }
        }
    }

    #[test]
    fn newest_slot_wins_and_damage_is_refused() {
        let disk = SimDisk::new();
        let path = Path::new("/cp/x.ckpt");
        let (mut cp, _) = CheckpointFile::open(disk.storage().as_ref(), path).unwrap();
        for i in 0..5u8 {
            cp.write(&[i; 10]).unwrap();
        }
        let (_, got) = CheckpointFile::open(disk.storage().as_ref(), path).unwrap();
        assert_eq!(got, Some(vec![4u8; 10]));
        // Damage the newest slot: the previous checkpoint is what remains.
        // Five writes: seq 5 ([4; 10]) sits in slot 1, seq 4 ([3; 10]) in slot 0.
        disk.corrupt(path, SLOT_BYTES as u64 + 40, &[0xFF]).unwrap();
        let (_, got) = CheckpointFile::open(disk.storage().as_ref(), path).unwrap();
        assert_eq!(got, Some(vec![3u8; 10]));
        disk.corrupt(path, 40, &[0xFF]).unwrap();
        assert!(CheckpointFile::open(disk.storage().as_ref(), path).is_err());
    }
}
