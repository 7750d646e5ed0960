//! Corruption table: damage a closed log's bytes in one place, reopen, and check the outcome the
//! table states for that place. Every case then appends and reopens once more, so recovery leaves
//! a log that keeps working.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hydrant_wal::format::FOOTER_LEN;
use hydrant_wal::segment::segment_path;
use hydrant_wal::{Error, Lsn, Severity, StdStorage, Wal, WalOptions, WalView};

const SEGMENT_BYTES: u64 = 16 * 1024;

fn options() -> WalOptions {
    common::small_segments(SEGMENT_BYTES)
}

fn record(lsn: u64) -> Vec<u8> {
    format!("{lsn:08}:{}", "r".repeat((lsn * 7 % 200) as usize)).into_bytes()
}

#[derive(Clone, Debug)]
struct FrameLoc {
    path: PathBuf,
    offset: u64,
    first: Lsn,
    disk_bytes: u64,
}

struct Layout {
    frames: Vec<FrameLoc>,
    segments: Vec<(PathBuf, Lsn, bool)>,
    end: Lsn,
}

impl Layout {
    fn sealed(&self, i: usize) -> &PathBuf {
        &self.segments.iter().filter(|s| s.2).nth(i).unwrap().0
    }
    fn active(&self) -> &PathBuf {
        &self.segments.last().unwrap().0
    }
    fn frames_in(&self, path: &Path) -> Vec<FrameLoc> {
        self.frames
            .iter()
            .filter(|f| f.path == path)
            .cloned()
            .collect()
    }
}

/// Writes a log with at least three sealed segments and several frames in the active one.
fn build(dir: &Path) -> Layout {
    let (wal, _) = Wal::open(dir, options()).unwrap();
    let mut lsn = 0u64;
    for batch in 0..400u64 {
        let n = batch % 4 + 1;
        let recs: Vec<Vec<u8>> = (lsn..lsn + n).map(record).collect();
        wal.append(&recs).unwrap().wait().unwrap();
        lsn += n;
        let segs = wal.segments();
        if segs.len() >= 4 && segs.last().unwrap().frame_count >= 6 {
            break;
        }
    }
    wal.close().unwrap();
    drop(wal);
    let view = WalView::open(dir).unwrap();
    let segments = view
        .segments()
        .map(|s| (s.path.clone(), s.base_lsn, s.sealed))
        .collect();
    let mut r = view.reader(Lsn(0)).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        let (base, offset) = f.location();
        frames.push(FrameLoc {
            path: segment_path(dir, base),
            offset,
            first: f.first_lsn(),
            disk_bytes: f.disk_bytes(),
        });
    }
    Layout {
        frames,
        segments,
        end: Lsn(lsn),
    }
}

fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

fn flip_bit(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
}

/// What the table expects after the damage.
#[derive(Debug)]
enum Expect {
    /// The log opens and ends at `end` (everything below intact); `discarded` says whether
    /// recovery reports discarded bytes.
    Opens { end: Lsn, discarded: bool },
    /// The log opens (footers are trusted), but reading the damaged frame fails with `Corrupt`
    /// naming this segment and offset, and `verify` reports an error there.
    ReadFails { path: PathBuf, offset: u64 },
    /// Opening fails with this error code.
    OpenFails(&'static str),
    /// The log opens and reads from its start, and `verify` reports an error in this segment
    /// (a damaged index block: only positioning by index fails).
    VerifyFails { path: PathBuf },
}

struct Case {
    name: &'static str,
    damage: fn(&Path, &Layout) -> Expect,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "active: last frame's second half zeroed (a torn append)",
            damage: |_, l| {
                let f = l.frames_in(l.active()).last().cloned().unwrap();
                let half = f.disk_bytes / 2;
                poke(
                    &f.path,
                    f.offset + half,
                    &vec![0u8; (f.disk_bytes - half) as usize],
                );
                Expect::Opens {
                    end: f.first,
                    discarded: true,
                }
            },
        },
        Case {
            name: "active: one bit flipped in the last frame's payload",
            damage: |_, l| {
                let f = l.frames_in(l.active()).last().cloned().unwrap();
                flip_bit(&f.path, f.offset + f.disk_bytes - 9);
                Expect::Opens {
                    end: f.first,
                    discarded: true,
                }
            },
        },
        Case {
            name: "active: the last frame's length word zeroed",
            damage: |_, l| {
                let f = l.frames_in(l.active()).last().cloned().unwrap();
                poke(&f.path, f.offset, &[0u8; 4]);
                Expect::Opens {
                    end: f.first,
                    discarded: true,
                }
            },
        },
        Case {
            name: "active: garbage after the last frame (an unacknowledged write)",
            damage: |_, l| {
                let f = l.frames_in(l.active()).last().cloned().unwrap();
                poke(
                    &f.path,
                    f.offset + f.disk_bytes + 100,
                    b"garbage that is not a frame",
                );
                Expect::Opens {
                    end: l.end,
                    discarded: true,
                }
            },
        },
        Case {
            name: "active: a 512 B sector zeroed under the third frame (damage case J: cut there)",
            damage: |_, l| {
                let frames = l.frames_in(l.active());
                let f = frames[2].clone();
                let sector = (f.offset + 8) / 512 * 512;
                poke(&f.path, sector, &[0u8; 512]);
                // The frame holding the sector's first byte is where the log ends.
                let hit = frames
                    .iter()
                    .find(|x| x.offset + x.disk_bytes > sector)
                    .unwrap();
                Expect::Opens {
                    end: hit.first,
                    discarded: true,
                }
            },
        },
        Case {
            name: "sealed: one bit flipped in a middle frame",
            damage: |_, l| {
                let frames = l.frames_in(l.sealed(1));
                let f = frames[frames.len() / 2].clone();
                flip_bit(&f.path, f.offset + 40);
                Expect::ReadFails {
                    path: f.path,
                    offset: f.offset,
                }
            },
        },
        Case {
            name: "sealed: a 512 B sector zeroed in the middle",
            damage: |_, l| {
                let frames = l.frames_in(l.sealed(0));
                let mid = frames[frames.len() / 2].clone();
                let sector = mid.offset.div_ceil(512) * 512;
                poke(&mid.path, sector, &[0u8; 512]);
                let hit = frames
                    .iter()
                    .find(|x| x.offset + x.disk_bytes > sector)
                    .unwrap();
                Expect::ReadFails {
                    path: hit.path.clone(),
                    offset: hit.offset,
                }
            },
        },
        Case {
            name: "sealed: footer bit flipped (re-sealed from its frames on open)",
            damage: |_, l| {
                flip_bit(l.sealed(1), SEGMENT_BYTES - FOOTER_LEN + 20);
                Expect::Opens {
                    end: l.end,
                    discarded: false,
                }
            },
        },
        Case {
            name: "sealed: index block damaged",
            damage: |_, l| {
                let frames = l.frames_in(l.sealed(2));
                let last = frames.last().unwrap();
                flip_bit(&last.path, last.offset + last.disk_bytes + 12);
                Expect::VerifyFails {
                    path: last.path.clone(),
                }
            },
        },
        Case {
            name: "sealed: header checksum broken",
            damage: |_, l| {
                flip_bit(l.sealed(1), 20);
                Expect::OpenFails("bad_segment")
            },
        },
        Case {
            name: "sealed: header from a newer format version",
            damage: |_, l| {
                let path = l.sealed(0);
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .unwrap();
                let mut h = [0u8; 64];
                f.read_exact_at(&mut h, 0).unwrap();
                h[8] = 3; // the header version after SEGMENT_HEADER_VERSION (2)
                let crc = crc32fast::hash(&h[0..60]);
                h[60..64].copy_from_slice(&crc.to_le_bytes());
                f.write_all_at(&h, 0).unwrap();
                Expect::OpenFails("unsupported_version")
            },
        },
        Case {
            name: "a middle segment deleted",
            damage: |_, l| {
                std::fs::remove_file(l.sealed(1)).unwrap();
                Expect::OpenFails("segment_gap")
            },
        },
    ]
}

fn read_all(wal: &Wal) -> Result<Vec<(Lsn, Vec<u8>)>, Error> {
    let mut r = wal.reader(wal.first_lsn())?;
    let mut out = Vec::new();
    while let Some(f) = r.next_frame()? {
        out.extend(f.records().map(|(l, b)| (l, b.to_vec())));
    }
    Ok(out)
}

#[test]
fn corruption_table() {
    for case in cases() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let layout = build(dir);
        let expect = (case.damage)(dir, &layout);
        let name = case.name;
        match expect {
            Expect::Opens { end, discarded } => {
                let (wal, report) =
                    Wal::open(dir, options()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(wal.next_lsn(), end, "{name}");
                assert_eq!(report.discarded_bytes > 0, discarded, "{name}: {report:?}");
                let all = read_all(&wal).unwrap();
                assert_eq!(all.len() as u64, end.0, "{name}");
                for (l, b) in &all {
                    assert_eq!(*b, record(l.0), "{name}: LSN {l}");
                }
                let recs: Vec<Vec<u8>> = (end.0..end.0 + 10).map(record).collect();
                wal.append(&recs).unwrap().wait().unwrap();
                wal.close().unwrap();
                drop(wal);
                let (wal, _) = Wal::open(dir, options()).unwrap();
                assert_eq!(
                    wal.next_lsn(),
                    end.plus(10),
                    "{name}: after append and reopen"
                );
                assert_eq!(read_all(&wal).unwrap().len() as u64, end.0 + 10, "{name}");
                drop(wal);
                let v = hydrant_wal::verify(&StdStorage, dir).unwrap();
                assert!(v.problems.is_empty(), "{name}: {:?}", v.problems);
            }
            Expect::ReadFails { path, offset } => {
                let (wal, _) = Wal::open(dir, options()).unwrap_or_else(|e| panic!("{name}: {e}"));
                match read_all(&wal) {
                    Err(Error::Corrupt {
                        segment,
                        offset: at,
                        ..
                    }) => {
                        assert_eq!((segment, at), (path.clone(), offset), "{name}");
                    }
                    other => panic!("{name}: expected Corrupt, got {other:?}"),
                }
                drop(wal);
                let v = hydrant_wal::verify(&StdStorage, dir).unwrap();
                assert!(
                    v.problems.iter().any(|p| p.severity == Severity::Error
                        && p.segment == path
                        && p.offset == Some(offset)),
                    "{name}: {:?}",
                    v.problems
                );
            }
            Expect::OpenFails(code) => {
                let err = Wal::open(dir, options())
                    .err()
                    .unwrap_or_else(|| panic!("{name}: opened"));
                assert_eq!(err.error_code(), code, "{name}: {err}");
                let v = hydrant_wal::verify(&StdStorage, dir).unwrap();
                assert!(!v.is_clean(), "{name}: verify found nothing");
            }
            Expect::VerifyFails { path } => {
                let (wal, _) = Wal::open(dir, options()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(read_all(&wal).unwrap().len() as u64, layout.end.0, "{name}");
                drop(wal);
                let v = hydrant_wal::verify(&StdStorage, dir).unwrap();
                assert!(
                    v.problems
                        .iter()
                        .any(|p| p.severity == Severity::Error && p.segment == path),
                    "{name}: {:?}",
                    v.problems
                );
            }
        }
    }
}
