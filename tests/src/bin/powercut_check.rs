//! Checker of the power-cut test: reads the guest's serial logs (what the producer saw
//! acknowledged) and the local object store read out of the guest's disk, and checks that every
//! acknowledged record is delivered exactly once with its exact bytes.
//!
//! Only complete lines of a serial log count (a cut can end a log mid-line). Objects are gzip
//! (the embedded default stream); temporary files of the store (`.hydrant-tmp.*`, left by a cut
//! before their rename) are skipped. A delivered record that was never acknowledged is allowed
//! (its reply was lost in a cut) but counted; a delivered record whose bytes are not what its id
//! says, or that is not a record at all, is corruption.
//!
//! Prints one summary line `acked=.. delivered=.. lost=.. duplicated=.. unacked_delivered=..
//! corrupt=.. objects=..`. Exit status: 0 when lost, duplicated and corrupt are all 0 (with
//! `--expect-loss`: 0 when lost is above 0, the outcome a broken build must show), 1 otherwise,
//! 2 on a usage or I/O error.
//!
//! Usage: hydrant-powercut-check SERIAL_DIR OBJECTS_DIR [--expect-loss]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use hydrant_tests::powercut::{parse_ack_line, parse_record, record_bytes, RecordKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let expect_loss = args.len() == 4 && args[3] == "--expect-loss";
    if !(args.len() == 3 || expect_loss) {
        eprintln!("usage: hydrant-powercut-check SERIAL_DIR OBJECTS_DIR [--expect-loss]");
        std::process::exit(2);
    }
    match run(Path::new(&args[1]), Path::new(&args[2])) {
        Ok(s) => {
            println!(
                "acked={} delivered={} lost={} duplicated={} unacked_delivered={} corrupt={} objects={}",
                s.acked, s.delivered, s.lost, s.duplicated, s.unacked_delivered, s.corrupt, s.objects
            );
            let ok = if expect_loss {
                s.lost > 0
            } else {
                s.lost == 0 && s.duplicated == 0 && s.corrupt == 0 && s.acked > 0
            };
            std::process::exit(if ok { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("hydrant-powercut-check: {e}");
            std::process::exit(2);
        }
    }
}

#[derive(Debug, Default)]
struct Summary {
    acked: usize,
    delivered: usize,
    lost: usize,
    duplicated: usize,
    unacked_delivered: usize,
    corrupt: usize,
    objects: usize,
}

fn run(serial_dir: &Path, objects_dir: &Path) -> std::io::Result<Summary> {
    let mut acked: BTreeSet<RecordKey> = BTreeSet::new();
    for path in files(serial_dir)? {
        let text = std::fs::read(&path)?;
        let text = String::from_utf8_lossy(&text);
        // Complete lines only: whatever follows the last newline may be cut.
        let complete = text.rsplit_once('\n').map_or("", |(head, _)| head);
        for line in complete.lines() {
            for key in parse_ack_line(line.trim_end_matches('\r')).unwrap_or_default() {
                if !acked.insert(key.clone()) {
                    eprintln!("{}: {key:?} acknowledged twice", path.display());
                }
            }
        }
    }
    let mut s = Summary {
        acked: acked.len(),
        ..Summary::default()
    };
    let mut seen: BTreeMap<RecordKey, String> = BTreeMap::new();
    for path in files(objects_dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(".hydrant-tmp.")) {
            continue;
        }
        s.objects += 1;
        let key = path
            .strip_prefix(objects_dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut plain = Vec::new();
        if let Err(e) =
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut plain)
        {
            eprintln!("{key}: not a gzip object: {e}");
            s.corrupt += 1;
            continue;
        }
        for record in plain.split_inclusive(|b| *b == b'\n') {
            match parse_record(record).filter(|k| record_bytes(k) == record) {
                None => {
                    eprintln!(
                        "{key}: not a record of this test: {:?}",
                        String::from_utf8_lossy(record)
                    );
                    s.corrupt += 1;
                }
                Some(k) => {
                    s.delivered += 1;
                    if let Some(first) = seen.insert(k.clone(), key.clone()) {
                        if s.duplicated < 10 {
                            eprintln!("{k:?} delivered twice: in {first} and {key}");
                        }
                        s.duplicated += 1;
                    } else if !acked.contains(&k) {
                        s.unacked_delivered += 1;
                    }
                }
            }
        }
    }
    for k in &acked {
        if !seen.contains_key(k) {
            if s.lost < 10 {
                eprintln!("acknowledged, never delivered: {k:?}");
            }
            s.lost += 1;
        }
    }
    Ok(s)
}

/// Every regular file under `root`, sorted.
fn files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
