//! The buffer a delivery worker reads each batch's records into: a page-aligned anonymous
//! mapping, kept by the worker and filled again for batch after batch.
//!
//! Why not the heap: a batch is up to the buffering hint (128 MiB) in one piece. Allocated for
//! every batch, its pages are either handed back to the kernel and faulted in zeroed for the next
//! (glibc) or kept by the allocator on its own terms, beside the next batch's (mimalloc held a
//! freed batch while the next was filled: up to two hints resident, issue 20's memory bound is
//! one). A mapping of the worker's own has neither cost: its pages stay resident and are written
//! over, and what the process holds for delivery is one batch, never more, whatever the backlog.
//!
//! Flow: [`BatchBuffers::fill`] takes the idle mapping (or maps one, when there is none or it is
//! too small), the loader copies the batch's records into it with [`Filling::push`], and
//! [`Filling::freeze`] turns it into a [`Bytes`] that the records are slices of. When the last
//! slice is dropped (the batch is delivered and forgotten), the mapping goes back to the worker
//! as its idle buffer; if the worker already has one (a batch outlived the next), the older one
//! is unmapped instead. So at most one idle mapping per worker, sized by its largest batch.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use memmap2::{MmapMut, MmapOptions};

/// A worker's idle mapping, shared with the buffers it lent (they bring it back on drop).
#[derive(Default, Clone)]
pub(crate) struct BatchBuffers {
    idle: Arc<Mutex<Option<MmapMut>>>,
}

impl BatchBuffers {
    /// A buffer for `len` bytes of record data: the idle mapping when it is large enough, else a
    /// new one (the idle one, too small, is unmapped).
    ///
    /// # Errors
    /// The kernel refused the mapping (out of address space or memory).
    pub(crate) fn fill(&self, len: usize) -> std::io::Result<Filling> {
        let reused = lock(&self.idle).take().filter(|m| m.len() >= len);
        let map = match reused {
            Some(map) => map,
            // A mapping of length 0 is refused by the kernel: map at least a page.
            None => MmapOptions::new().len(len.max(1)).map_anon()?,
        };
        Ok(Filling {
            map,
            len: 0,
            home: self.idle.clone(),
        })
    }

    /// Unmaps the idle buffer (if any): for a worker that stops or goes idle.
    pub(crate) fn release(&self) {
        drop(lock(&self.idle).take());
    }

    /// Bytes of the idle mapping (0 without one).
    #[cfg(test)]
    fn idle_len(&self) -> usize {
        lock(&self.idle).as_ref().map_or(0, |m| m.len())
    }
}

fn lock(m: &Mutex<Option<MmapMut>>) -> MutexGuard<'_, Option<MmapMut>> {
    // The guarded value is a plain Option that no panic can leave half-changed.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A mapping being filled with one batch's records.
///
/// # Invariant
/// `len <= map.len()`: the bytes `[..len]` are the records pushed so far, back to back.
pub(crate) struct Filling {
    map: MmapMut,
    len: usize,
    home: Arc<Mutex<Option<MmapMut>>>,
}

impl Filling {
    /// Appends `data`; returns its range in the buffer, or `None` when it does not fit (nothing
    /// is written then).
    pub(crate) fn push(&mut self, data: &[u8]) -> Option<(usize, usize)> {
        let start = self.len;
        let end = start.checked_add(data.len())?;
        self.map.get_mut(start..end)?.copy_from_slice(data);
        self.len = end;
        debug_assert!(self.len <= self.map.len());
        Some((start, end))
    }

    /// The records pushed so far as one [`Bytes`] (page-aligned at its start); the mapping
    /// returns to the worker once it and every slice of it are dropped.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(Lent {
            map: Some(self.map),
            len: self.len,
            home: self.home,
        })
    }
}

/// A filled mapping lent to a batch.
struct Lent {
    /// `Some` until dropped.
    map: Option<MmapMut>,
    len: usize,
    home: Arc<Mutex<Option<MmapMut>>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], |m| &m[..self.len])
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(map) = self.map.take() else { return };
        let mut idle = lock(&self.home);
        // Keep the larger of the two: the worker's batches will be that large again.
        if idle.as_ref().is_none_or(|i| i.len() < map.len()) {
            *idle = Some(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_is_dropped_and_is_reused() {
        let buffers = BatchBuffers::default();
        let mut f = buffers.fill(10_000).unwrap();
        assert_eq!(f.push(b"hello"), Some((0, 5)));
        assert_eq!(f.push(b" world"), Some((5, 11)));
        let whole = f.freeze();
        assert_eq!(&whole[..], b"hello world");
        assert_eq!(whole.as_ptr() as usize % 4096, 0, "page-aligned");
        let slice = whole.slice(6..11);
        let addr = whole.as_ptr();
        drop(whole);
        assert_eq!(buffers.idle_len(), 0, "a slice still holds it");
        assert_eq!(&slice[..], b"world");
        drop(slice);
        assert_eq!(buffers.idle_len(), 10_000);
        // The next batch that fits is written into the same pages.
        let mut f = buffers.fill(4_000).unwrap();
        f.push(b"again").unwrap();
        let again = f.freeze();
        assert_eq!(again.as_ptr(), addr);
        assert_eq!(&again[..], b"again");
        assert_eq!(buffers.idle_len(), 0);
    }

    #[test]
    fn a_larger_batch_maps_anew_and_at_most_one_idle_buffer_stays() {
        let buffers = BatchBuffers::default();
        let small = buffers.fill(100).unwrap().freeze();
        let large = buffers.fill(100_000).unwrap().freeze();
        drop(large);
        assert_eq!(buffers.idle_len(), 100_000);
        drop(small);
        assert_eq!(buffers.idle_len(), 100_000, "the smaller one is unmapped");
        let f = buffers.fill(200_000).unwrap();
        assert_eq!(
            buffers.idle_len(),
            0,
            "too small: unmapped, a new one taken"
        );
        drop(f);
        buffers.release();
        assert_eq!(buffers.idle_len(), 0);
    }

    #[test]
    fn a_push_past_the_end_writes_nothing() {
        let buffers = BatchBuffers::default();
        let mut f = buffers.fill(4096).unwrap();
        assert_eq!(f.push(&[1u8; 4000]), Some((0, 4000)));
        assert_eq!(f.push(&[2u8; 200]), None);
        assert_eq!(f.push(&[3u8; 96]), Some((4000, 4096)));
        let b = f.freeze();
        assert_eq!(b.len(), 4096);
        assert!(b[..4000].iter().all(|&x| x == 1) && b[4000..].iter().all(|&x| x == 3));
    }
}
