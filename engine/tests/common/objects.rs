//! Reading delivered objects back: walk a bucket directory (the local object store or s3s-fs's
//! data directory), decompress, split records, and check exactly-once against acknowledged
//! record ids (one record per line, one LSN per record).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hydrant_sinks::Compression;

/// Every file under `root` (recursively), as display strings.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

/// Every object file under `root` whose file name starts with `name_prefix` (temporary files
/// and other servers' bookkeeping are skipped), with its key relative to `root`.
pub fn object_files(root: &Path, name_prefix: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with(name_prefix) {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((key, p));
            }
        }
    }
    out.sort();
    out
}

/// The newline-terminated records of each object (decompressed with `codec`), by key.
pub fn object_records(
    root: &Path,
    name_prefix: &str,
    codec: Compression,
) -> BTreeMap<String, Vec<Vec<u8>>> {
    read_objects(root, name_prefix, codec, false)
}

/// Waits (up to `limit`) until every acknowledged record of `acked` is in an object of `stream`
/// under `root` (decompressed with `codec`), then checks exactly-once ([`check_exactly_once`]);
/// the objects by key. While waiting, objects that do not decode yet are skipped (a server that
/// writes objects in place, such as s3s-fs, may show one half-written); the final read takes
/// every object.
pub fn wait_delivered(
    root: &Path,
    stream: &str,
    codec: Compression,
    acked: &BTreeMap<u64, Vec<u8>>,
    limit: std::time::Duration,
) -> BTreeMap<String, Vec<Vec<u8>>> {
    let deadline = std::time::Instant::now() + limit;
    let prefix = format!("{stream}-");
    loop {
        let lenient = read_objects(root, &prefix, codec, true);
        let n: usize = lenient.values().map(Vec::len).sum();
        if n >= acked.len() {
            let objects = object_records(root, &prefix, codec);
            check_exactly_once(&objects, acked, false);
            return objects;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stream}: {n} of {} records in {} after {limit:?}",
            acked.len(),
            root.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn read_objects(
    root: &Path,
    name_prefix: &str,
    codec: Compression,
    lenient: bool,
) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (key, path) in object_files(root, name_prefix) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let plain = match codec.decompress(&bytes) {
            Ok(p) => p,
            Err(_) if lenient => continue,
            Err(e) => panic!("{key}: cannot decompress with {codec}: {e}"),
        };
        if lenient && !plain.is_empty() && !plain.ends_with(b"\n") {
            continue;
        }
        assert!(
            plain.is_empty() || plain.ends_with(b"\n"),
            "{key}: records are cut: {:?}",
            String::from_utf8_lossy(&plain[plain.len().saturating_sub(80)..])
        );
        let records: Vec<Vec<u8>> = plain
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        out.insert(key, records);
    }
    out
}

/// Checks that every acknowledged record (LSN -> bytes) is delivered exactly once, that no
/// record appears twice anywhere, that each object holds consecutive LSNs in order and that
/// objects do not overlap. Records delivered but not acknowledged (the ack was lost in a kill)
/// are allowed when `unacked_ok`, once each. Returns (records checked, objects).
pub fn check_exactly_once(
    objects: &BTreeMap<String, Vec<Vec<u8>>>,
    acked: &BTreeMap<u64, Vec<u8>>,
    unacked_ok: bool,
) -> (usize, usize) {
    let by_bytes: BTreeMap<&[u8], u64> = acked.iter().map(|(l, b)| (b.as_slice(), *l)).collect();
    assert_eq!(by_bytes.len(), acked.len(), "test records must be unique");
    let mut seen: BTreeMap<Vec<u8>, &str> = BTreeMap::new();
    let mut ranges: Vec<(u64, u64, &str)> = Vec::new();
    for (key, records) in objects {
        // (position in the object, LSN) of each acknowledged record.
        let mut lsns: Vec<(usize, u64)> = Vec::new();
        for (at, r) in records.iter().enumerate() {
            if let Some(other) = seen.insert(r.clone(), key) {
                panic!(
                    "record {:?} delivered twice: in {other} and {key}",
                    String::from_utf8_lossy(r)
                );
            }
            match by_bytes.get(r.as_slice()) {
                Some(l) => lsns.push((at, *l)),
                None => assert!(
                    unacked_ok,
                    "{key}: record {:?} was never acknowledged",
                    String::from_utf8_lossy(r)
                ),
            }
        }
        // Consecutive LSNs: between two acknowledged records the LSNs advance by exactly the
        // number of records between them (the records in between are the unacknowledged ones,
        // whose LSNs the test does not know).
        for w in lsns.windows(2) {
            let ((a, la), (b, lb)) = (w[0], w[1]);
            assert!(
                lb > la && lb - la == (b - a) as u64,
                "{key}: LSN {la} at record {a} then LSN {lb} at record {b}: not consecutive"
            );
        }
        let lsns: Vec<u64> = lsns.into_iter().map(|(_, l)| l).collect();
        if let (Some(first), Some(last)) = (lsns.first(), lsns.last()) {
            ranges.push((*first, *last, key));
        }
    }
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "objects {} and {} overlap in LSNs",
            w[0].2,
            w[1].2
        );
    }
    assert_all_seen(acked, &seen);
    (acked.len(), objects.len())
}

/// Fails the test, naming the first LSNs, when an acknowledged record is not among the
/// delivered ones (`seen`, keyed by the record's bytes).
pub fn assert_all_seen<V>(acked: &BTreeMap<u64, Vec<u8>>, seen: &BTreeMap<Vec<u8>, V>) {
    let missing: Vec<u64> = acked
        .iter()
        .filter(|(_, b)| !seen.contains_key(b.as_slice()))
        .map(|(l, _)| *l)
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged records not delivered (first LSNs): {missing:?}"
    );
}

/// The JSON records (one per line) of the objects under `root` whose names start with
/// `name_prefix`, in delivery order: objects are written one after another by the destination's
/// one worker, so their modification times order them (a key's time part has only second
/// resolution).
pub fn json_lines_in_write_order(root: &Path, name_prefix: &str) -> Vec<serde_json::Value> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = object_files(root, name_prefix)
        .into_iter()
        .map(|(_, p)| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    files.sort();
    files.iter().flat_map(|(_, p)| json_lines(p)).collect()
}

/// The JSON documents of the file at `path`, one per non-empty line.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// [`json_lines_in_write_order`] once there are at least `want` records (or `limit` has
/// passed, polling every 500 ms), read again after `settle` more: anything delivered twice would
/// show by then.
pub fn json_lines_settled(
    root: &Path,
    name_prefix: &str,
    want: u64,
    limit: std::time::Duration,
    settle: std::time::Duration,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + limit;
    while (json_lines_in_write_order(root, name_prefix).len() as u64) < want
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(settle);
    json_lines_in_write_order(root, name_prefix)
}

/// The record bytes of a failed-record JSON entry of the error output (its `rawData`, base64).
pub fn raw_data(entry: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(entry["rawData"].as_str().unwrap())
        .unwrap()
}
