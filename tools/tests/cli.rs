//! The `hydrant` binary against logs written by `hydrant_wal`: exit codes, and output exact
//! enough for scripts.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::hydrant;
use hydrant_wal::{Lsn, Wal, WalOptions};

const ARRIVAL_MS: u64 = 1_764_063_000_000; // 2025-11-25T09:30:00.000Z

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn record(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 23) as usize)).into_bytes()
}

/// Writes `batches` appends of 1 to 4 records into 16 KiB segments (so several are sealed),
/// batch `b` arriving at `ARRIVAL_MS + b`. Returns the number of records.
fn build_log(dir: &Path, batches: u64) -> u64 {
    let options = WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: false,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir, options).unwrap();
    let mut next = 0;
    for b in 0..batches {
        let n = b % 4 + 1;
        let recs: Vec<Vec<u8>> = (next..next + n).map(record).collect();
        let range = wal
            .append_at(&recs, ARRIVAL_MS + b)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(range.start, Lsn(next));
        next += n;
    }
    assert!(wal.segments().len() >= 3, "the test needs sealed segments");
    wal.close().unwrap();
    next
}

#[test]
fn verify_passes_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    build_log(tmp.path(), 300);
    let o = hydrant(&["wal", "verify", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 errors"), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with("clean"), "{}", stdout(&o));
}

#[test]
fn verify_names_the_segment_and_offset_of_a_damaged_frame() {
    let tmp = tempfile::tempdir().unwrap();
    build_log(tmp.path(), 300);
    // Flip a byte inside the first frame's records (the frame starts at 4096, its header is 32
    // bytes long) of the first segment, which is sealed.
    let seg = tmp.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[4096 + 40] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();

    let o = hydrant(&["wal", "verify", tmp.path().to_str().unwrap()]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ERROR"))
        .unwrap_or_else(|| panic!("no error line in {text}"));
    assert!(line.contains("00000000000000000000.seg"), "{line}");
    assert!(line.contains("offset 4096"), "{line}");
    assert!(line.contains("BadChecksum"), "{line}");

    let o = hydrant(&["wal", "verify", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clean"], false);
    let p = &v["problems"][0];
    assert_eq!(p["severity"], "error");
    assert_eq!(p["offset"], 4096);
    assert!(p["segment"]
        .as_str()
        .unwrap()
        .ends_with("00000000000000000000.seg"));
}

#[test]
fn verify_warns_about_a_torn_tail_and_still_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let records = build_log(tmp.path(), 300);
    // Bytes after the last frame of the active (last) segment: what a torn, never acknowledged
    // write leaves. Recovery cuts them; verify reports them as a warning only.
    let o = hydrant(&["wal", "stat", "--json", tmp.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = v["segment_list"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["sealed"], false);
    let tail = 4096 + last["data_bytes"].as_u64().unwrap();
    let seg = tmp.path().join(last["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[tail as usize..tail as usize + 16].copy_from_slice(&[0xab; 16]);
    std::fs::write(&seg, &bytes).unwrap();

    let o = hydrant(&["wal", "verify", tmp.path().to_str().unwrap()]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let line = text.lines().find(|l| l.starts_with("WARNING")).unwrap();
    assert!(line.contains(last["file"].as_str().unwrap()), "{line}");
    assert!(line.contains(&format!("offset {tail}")), "{line}");
    // The torn bytes are not records: the log still ends where it did.
    let o = hydrant(&["wal", "stat", "--json", tmp.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["next_lsn"], records);
}

#[test]
fn stat_counts_segments_records_and_arrivals() {
    let tmp = tempfile::tempdir().unwrap();
    let records = build_log(tmp.path(), 300);
    let segments = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();

    let o = hydrant(&["wal", "stat", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["segments"], segments);
    assert_eq!(v["sealed_segments"], segments - 1);
    assert_eq!(v["first_lsn"], 0);
    assert_eq!(v["next_lsn"], records);
    assert_eq!(v["records"], records);
    assert_eq!(v["frames"], 300);
    assert_eq!(v["oldest_arrival_ms"], ARRIVAL_MS);
    assert_eq!(v["newest_arrival_ms"], ARRIVAL_MS + 299);
    assert_eq!(v["oldest_arrival"], "2025-11-25T09:30:00.000Z");
    let list = v["segment_list"].as_array().unwrap();
    assert_eq!(list.len(), segments);
    let summed: u64 = list.iter().map(|s| s["records"].as_u64().unwrap()).sum();
    assert_eq!(summed, records);
    for pair in list.windows(2) {
        assert_eq!(pair[0]["end_lsn"], pair[1]["base_lsn"]);
    }

    let o = hydrant(&["wal", "stat", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains(&format!("LSNs            0 .. {records}")),
        "{text}"
    );
    assert!(text.contains("00000000000000000000.seg"), "{text}");
}

#[test]
fn dump_json_prints_exactly_the_requested_records() {
    let tmp = tempfile::tempdir().unwrap();
    let records = build_log(tmp.path(), 300);
    // Start mid-frame and cross segment boundaries.
    let (from, limit) = (101u64, 250u64);
    assert!(from + limit < records);
    let o = hydrant(&[
        "wal",
        "dump",
        "--json",
        "--from",
        &from.to_string(),
        "--limit",
        &limit.to_string(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, limit);
    for (i, v) in lines.iter().enumerate() {
        let lsn = from + i as u64;
        let want = record(lsn);
        assert_eq!(v["lsn"], lsn);
        assert_eq!(v["len"], want.len());
        assert_eq!(v["text"], std::str::from_utf8(&want).unwrap());
        let arrival = v["arrival_ms"].as_u64().unwrap();
        assert!((ARRIVAL_MS..ARRIVAL_MS + 300).contains(&arrival));
    }
    // LSN 0 is "record-0-": check the base64 field byte for byte once.
    let o = hydrant(&[
        "wal",
        "dump",
        "--json",
        "--limit",
        "1",
        tmp.path().to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["data_base64"], "cmVjb3JkLTAt");
    assert_eq!(v["arrival_ms"], ARRIVAL_MS);

    // The end of the log is an empty dump; past it is an error.
    let end = records.to_string();
    let o = hydrant(&["wal", "dump", "--from", &end, tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let past = (records + 1).to_string();
    let o = hydrant(&["wal", "dump", "--from", &past, tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error"));
}

#[test]
fn dump_shows_text_as_text_and_binary_as_base64() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    let batch: [&[u8]; 2] = [b"{\"a\":1}\n", &[0xff, 0x00]];
    wal.append_at(&batch, ARRIVAL_MS).unwrap().wait().unwrap();
    wal.close().unwrap();
    drop(wal);

    let o = hydrant(&["wal", "dump", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("2025-11-25T09:30:00.000Z"), "{text}");
    assert!(lines[0].ends_with("text {\"a\":1}\\n"), "{text}");
    assert!(lines[1].ends_with("base64 /wA="), "{text}");

    let o = hydrant(&["wal", "dump", "--json", tmp.path().to_str().unwrap()]);
    let v: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["text"], "{\"a\":1}\n");
    assert!(v[1].get("text").is_none());
    assert_eq!(v[1]["data_base64"], "/wA=");
}

#[test]
fn a_missing_log_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    for cmd in ["verify", "stat", "dump"] {
        let o = hydrant(&["wal", cmd, missing.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("hydrant: error:"), "{cmd}: {err}");
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["wal", "--help"],
        &["wal", "verify", "--help"],
        &["wal", "stat", "--help"],
        &["wal", "dump", "--help"],
        &["replay", "--help"],
        &["put", "--help"],
    ] {
        let o = hydrant(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
}
