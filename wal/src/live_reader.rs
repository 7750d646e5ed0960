//! The live log as a reader's source of segments.
//!
//! A [`crate::Reader`] of an open log asks this source, under the log's lock, for the segment
//! holding an LSN and for the current read limit inside it: the durable end by default, the end
//! of what is in the files for diagnostics. The active segment is read through the writer's own
//! map and in-memory index; sealed ones through their files (the footer's index once the seal is
//! durable). Each segment handed out carries the segment's hold, which keeps retention from
//! recycling the file while the reader may read it.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::DATA_START;
use crate::ids::Lsn;
use crate::reader::{ReadLimit, SegmentSource, SourceSegment};
use crate::storage::{Mapping, OpenMode, Storage};
use crate::writer::{lock_state, Shared};

/// The live log as a reader's source of segments.
#[derive(Debug)]
pub(crate) struct LiveSource {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limit: ReadLimit,
}

impl SegmentSource for LiveSource {
    fn storage(&self) -> &dyn Storage {
        self.shared.storage.as_ref()
    }

    fn locate(&self, lsn: Lsn) -> Result<Option<SourceSegment>> {
        let st = lock_state(&self.shared.state);
        let bound = match self.limit {
            ReadLimit::Durable => st.commit.durable,
            ReadLimit::Written => st.commit.flushed,
        };
        let first = st.sealed.front().map_or(st.active.base, |s| s.base);
        if lsn < first {
            return Err(Error::Truncated {
                requested: lsn,
                first,
            });
        }
        if lsn >= bound.lsn {
            if lsn > st.commit.written.lsn {
                return Err(Error::BeyondEnd {
                    requested: lsn,
                    end: st.commit.written.lsn,
                });
            }
            return Ok(None);
        }
        // The segment holding `lsn`: the last one whose base is at or below it.
        if lsn >= st.active.base {
            let a = &st.active;
            // `lsn < bound.lsn` and `lsn >= a.base`: the bound lies in the active segment.
            let limit_offset = if bound.segment == a.base {
                bound.offset
            } else {
                DATA_START
            };
            return Ok(Some(SourceSegment::Open {
                hold: a.hold.clone(),
                base: a.base,
                path: a.path.clone(),
                map: a.map.clone(),
                index: a.index.clone(),
                limit_offset,
            }));
        }
        let idx = st
            .sealed
            .partition_point(|s| s.base <= lsn)
            .saturating_sub(1);
        let s = &st.sealed[idx];
        if bound.segment == s.base {
            // The bound lies inside a segment that was sealed after the bound was published.
            return Ok(Some(SourceSegment::Open {
                hold: s.hold.clone(),
                base: s.base,
                path: s.path.clone(),
                map: self.map_sealed(&s.path)?,
                index: Vec::new(),
                limit_offset: bound.offset,
            }));
        }
        Ok(Some(SourceSegment::Sealed {
            hold: s.hold.clone(),
            base: s.base,
            path: s.path.clone(),
            data_end: s.data_end,
            index_count: if s.seal_durable {
                Some(s.index_count)
            } else {
                None
            },
        }))
    }

    fn refresh(&self, base: Lsn) -> Result<Option<(Lsn, u64, bool)>> {
        let st = lock_state(&self.shared.state);
        let bound = match self.limit {
            ReadLimit::Durable => st.commit.durable,
            ReadLimit::Written => st.commit.flushed,
        };
        if st.active.base == base {
            let off = if bound.segment == base {
                bound.offset
            } else {
                DATA_START
            };
            return Ok(Some((bound.lsn, off, false)));
        }
        // The segment was sealed (or deleted) since: its end is final once the bound passed it.
        match st.sealed.iter().find(|s| s.base == base) {
            Some(_) if bound.segment == base => Ok(Some((bound.lsn, bound.offset, false))),
            Some(s) => Ok(Some((s.end, s.data_end, true))),
            None => Ok(None),
        }
    }
}

impl LiveSource {
    fn map_sealed(&self, path: &Path) -> Result<Arc<dyn Mapping>> {
        let f = self
            .shared
            .storage
            .open(path, OpenMode::Read)
            .map_err(|e| Error::io("open", path, e))?;
        f.map().map_err(|e| Error::io("mmap", path, e))
    }
}
