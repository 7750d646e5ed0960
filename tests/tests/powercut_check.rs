//! The power-cut checker (`hydrant-powercut-check`, run by `tests/powercut/run.sh` on what a QEMU
//! guest left) as a process, on inputs built here: a serial log acknowledging records of the
//! streams `default` and `pg`, gzip objects of the local store and a PostgreSQL rows dump. It
//! passes on exact delivery and fails on a dropped PostgreSQL row, a row loaded twice, a row with
//! wrong bytes, a lost object record, and an acknowledgement of a stream it was not asked to check;
//! `--expect-loss` passes only when every stream lost records.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use hydrant_tests::powercut::{record_bytes, RecordKey};

fn key(thread: u32, batch: u64, index: u32) -> RecordKey {
    RecordKey {
        tag: "c1".into(),
        thread,
        batch,
        index,
    }
}

/// Writes a serial log acknowledging batches 0 and 1 (3 records each) of thread 0 of `default`
/// and of `pg`, and an object holding `default`'s records; returns the pg rows, one a line.
fn setup(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("serial")).unwrap();
    std::fs::create_dir_all(dir.join("objects/2026/12")).unwrap();
    let log = "noise\nACK default c1 0 0 3\nACK pg c1 0 0 3\nACK default c1 0 1 3\n\
               ACKSOME pg c1 0 1 0,2\nACK default c1 0 2 3"; // the last line is cut: not counted
    std::fs::write(dir.join("serial/c1.log"), log).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for b in 0..2 {
        for i in 0..3 {
            gz.write_all(&record_bytes(&key(0, b, i))).unwrap();
        }
    }
    std::fs::write(dir.join("objects/2026/12/obj"), gz.finish().unwrap()).unwrap();
    // pg: batch 0 whole, batch 1 records 0 and 2 acknowledged, 1 delivered unacknowledged.
    (0..2)
        .flat_map(|b| (0..3).map(move |i| (b, i)))
        .map(|(b, i)| {
            let mut r = String::from_utf8(record_bytes(&key(0, b, i))).unwrap();
            r.pop();
            r
        })
        .collect()
}

fn check(dir: &Path, rows: &[String], extra: &[&str]) -> (i32, String) {
    std::fs::write(dir.join("rows.txt"), rows.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hydrant-powercut-check"))
        .arg(dir.join("serial"))
        .arg(dir.join("objects"))
        .arg("--pg")
        .arg("pg")
        .arg(dir.join("rows.txt"))
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn exact_delivery_passes_and_each_fault_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rows = setup(dir);

    let (code, text) = check(dir, &rows, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("stream=pg acked=5 delivered=6 lost=0 duplicated=0 unacked_delivered=1"),
        "{text}"
    );
    assert!(
        text.contains("stream=default acked=6 delivered=6 lost=0"),
        "{text}"
    );

    // A dropped row (an acknowledged record missing from the table).
    let mut dropped = rows.clone();
    dropped.remove(3); // batch 1 record 0, acknowledged
    let (code, text) = check(dir, &dropped, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("stream=pg acked=5 delivered=5 lost=1"),
        "{text}"
    );

    // A row loaded twice.
    let mut twice = rows.clone();
    twice.push(rows[0].clone());
    let (code, text) = check(dir, &twice, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("duplicated=1"), "{text}");

    // A row whose bytes are not its record's.
    let mut wrong = rows.clone();
    wrong[2].push('x');
    let (code, text) = check(dir, &wrong, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("corrupt=1"), "{text}");

    // --expect-loss: only a run where every stream lost records passes.
    let (code, text) = check(dir, &dropped, &["--expect-loss"]);
    assert_eq!(code, 1, "only pg lost: {text}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&record_bytes(&key(0, 0, 0))).unwrap();
    std::fs::write(dir.join("objects/2026/12/obj"), gz.finish().unwrap()).unwrap();
    let (code, text) = check(dir, &dropped, &["--expect-loss"]);
    assert_eq!(code, 0, "both lost: {text}");
    let (code, text) = check(dir, &rows, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("stream=default acked=6 delivered=1 lost=5"),
        "{text}"
    );

    // An acknowledgement of a stream that is not checked is an error, not ignored.
    std::fs::write(dir.join("serial/c2.log"), "ACK other c2 0 0 1\n").unwrap();
    let (code, text) = check(dir, &rows, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("stream other, which is not checked"),
        "{text}"
    );
}
