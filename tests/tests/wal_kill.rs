//! kill -9 test of the WAL: a child process appends from several threads and prints every
//! acknowledged append; the test kills it at a random moment, reopens the log (recovery), checks
//! that every acknowledged record is there with its exact bytes at its LSN, that the log verifies,
//! and starts the next cycle on the same log. `HYDRANT_KILL_CYCLES` sets the number of cycles
//! (default 20).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use hydrant_tests::load_record;
use hydrant_wal::{Lsn, StdStorage, Wal, WalOptions};
use rand::Rng;

const SEGMENT_BYTES: u64 = 1 << 20;

#[test]
fn every_acknowledged_append_survives_kill_9() {
    let cycles: u32 = std::env::var("HYDRANT_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut rng = rand::thread_rng();
    // LSN → expected bytes of every acknowledged record, across all cycles.
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut total_lines = 0usize;
    for cycle in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hydrant-wal-load"))
            .arg(&dir)
            .arg("6")
            .arg(SEGMENT_BYTES.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            loop {
                buf.clear();
                match r.read_line(&mut buf) {
                    Ok(0) | Err(_) => break,
                    // Only complete lines count: the kill can cut the last one.
                    Ok(_) if buf.ends_with('\n') => lines.push(buf.trim_end().to_owned()),
                    Ok(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert_eq!(
            lines.first().map(String::as_str),
            Some("READY"),
            "cycle {cycle}: child did not start"
        );
        for line in &lines[1..] {
            let f: Vec<u64> = line
                .split(' ')
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            let (t, seq, start, end) = (f[0], f[1], f[2], f[3]);
            for (i, lsn) in (start..end).enumerate() {
                let prev = acked.insert(lsn, load_record(t, seq, i as u64));
                assert!(prev.is_none(), "LSN {lsn} acknowledged twice");
            }
        }
        total_lines += lines.len() - 1;

        let (wal, report) = Wal::open(
            &dir,
            WalOptions {
                segment_bytes: SEGMENT_BYTES,
                ..WalOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let mut found = 0usize;
        let mut r = wal.reader(wal.first_lsn()).unwrap();
        let mut next = wal.first_lsn();
        while let Some(frame) = r.next_frame().unwrap() {
            for (lsn, bytes) in frame.records() {
                assert_eq!(lsn, next, "LSNs dense");
                next = next.plus(1);
                if let Some(want) = acked.get(&lsn.0) {
                    assert_eq!(bytes, &want[..], "cycle {cycle}: LSN {lsn} bytes differ");
                    found += 1;
                }
            }
        }
        assert_eq!(
            found,
            acked.len(),
            "cycle {cycle}: acknowledged records missing (report {report:?})"
        );
        assert!(acked
            .keys()
            .next_back()
            .is_none_or(|l| Lsn(*l) < wal.next_lsn()));
        wal.close().unwrap();
        drop(wal);
        let v = hydrant_wal::verify(&StdStorage, &dir).unwrap();
        assert!(
            v.problems.is_empty(),
            "cycle {cycle}: verify: {:?}",
            v.problems
        );
    }
    eprintln!(
        "{cycles} kill cycles, {total_lines} acknowledged appends, {} records checked",
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "the load generator acknowledged too little to mean anything"
    );
}
