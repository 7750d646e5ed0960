//! Checker of the power-cut test: reads the guest's serial logs (what the producer saw
//! acknowledged, per stream) and what was delivered, read out on the host: the local object
//! store of the stream `default` (read out of the guest's disk) and, with `--pg`, the rows of a
//! PostgreSQL stream's table (dumped from the host's PostgreSQL, one row a line). It checks that
//! every acknowledged record of each stream is delivered exactly once with its exact bytes.
//!
//! Only complete lines of a serial log count (a cut can end a log mid-line). Objects are gzip
//! (the embedded default stream); temporary files of the store (`.hydrant-tmp.*`, left by a cut
//! before their rename) are skipped. A PostgreSQL row is a record without its final newline (the
//! table has one text column; the stream's `COPY` format is delimited text, one row a line). A
//! delivered record that was never acknowledged is allowed (its reply was lost in a cut) but
//! counted; a delivered record whose bytes are not what its id says, or that is not a record at
//! all, is corruption. An acknowledgement for a stream that is not checked is an error.
//!
//! Prints one summary line per stream `stream=.. acked=.. delivered=.. lost=.. duplicated=..
//! unacked_delivered=.. corrupt=.. objects=..` (objects: files of the store, or 0 for rows).
//! Exit status: 0 when lost, duplicated and corrupt are all 0 in every stream (with
//! `--expect-loss`: 0 when every stream lost records, the outcome a broken build must show), 1
//! otherwise, 2 on a usage or I/O error.
//!
//! Usage: hydrant-powercut-check SERIAL_DIR OBJECTS_DIR [--pg STREAM ROWS_FILE] [--expect-loss]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use hydrant_tests::powercut::{parse_ack_line, parse_record, record_bytes, RecordKey};

/// The stream whose objects are in OBJECTS_DIR (the embedded default stream).
const OBJECTS_STREAM: &str = "default";

struct Args {
    serial_dir: PathBuf,
    objects_dir: PathBuf,
    pg: Option<(String, PathBuf)>,
    expect_loss: bool,
}

fn parse_args(args: &[String]) -> Option<Args> {
    let (serial_dir, objects_dir) = (args.get(1)?, args.get(2)?);
    let mut parsed = Args {
        serial_dir: serial_dir.into(),
        objects_dir: objects_dir.into(),
        pg: None,
        expect_loss: false,
    };
    let mut rest = args[3..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--expect-loss" => parsed.expect_loss = true,
            "--pg" => parsed.pg = Some((rest.next()?.clone(), rest.next()?.into())),
            _ => return None,
        }
    }
    Some(parsed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(args) = parse_args(&args) else {
        eprintln!(
            "usage: hydrant-powercut-check SERIAL_DIR OBJECTS_DIR [--pg STREAM ROWS_FILE] \
             [--expect-loss]"
        );
        std::process::exit(2);
    };
    match run(&args) {
        Ok(summaries) => {
            let mut ok = true;
            for (stream, s) in &summaries {
                println!(
                    "stream={stream} acked={} delivered={} lost={} duplicated={} \
                     unacked_delivered={} corrupt={} objects={}",
                    s.acked,
                    s.delivered,
                    s.lost,
                    s.duplicated,
                    s.unacked_delivered,
                    s.corrupt,
                    s.objects
                );
                ok &= if args.expect_loss {
                    s.lost > 0
                } else {
                    s.lost == 0 && s.duplicated == 0 && s.corrupt == 0 && s.acked > 0
                };
            }
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

/// The acknowledged records of one stream, and what was delivered of it so far.
#[derive(Default)]
struct Tally {
    acked: BTreeSet<RecordKey>,
    /// Delivered records: where each was first seen.
    seen: BTreeMap<RecordKey, String>,
    s: Summary,
}

impl Tally {
    /// One delivered record's bytes (newline included), found at `place`.
    fn delivered(&mut self, record: &[u8], place: &str, stream: &str) {
        match parse_record(record).filter(|k| record_bytes(k) == record) {
            None => {
                eprintln!(
                    "{stream}: {place}: not a record of this test: {:?}",
                    String::from_utf8_lossy(record)
                );
                self.s.corrupt += 1;
            }
            Some(k) => {
                self.s.delivered += 1;
                if let Some(first) = self.seen.insert(k.clone(), place.to_owned()) {
                    if self.s.duplicated < 10 {
                        eprintln!("{stream}: {k:?} delivered twice: in {first} and {place}");
                    }
                    self.s.duplicated += 1;
                } else if !self.acked.contains(&k) {
                    self.s.unacked_delivered += 1;
                }
            }
        }
    }

    /// The summary, once everything delivered was counted.
    fn finish(mut self, stream: &str) -> Summary {
        self.s.acked = self.acked.len();
        for k in &self.acked {
            if !self.seen.contains_key(k) {
                if self.s.lost < 10 {
                    eprintln!("{stream}: acknowledged, never delivered: {k:?}");
                }
                self.s.lost += 1;
            }
        }
        self.s
    }
}

fn run(args: &Args) -> std::io::Result<BTreeMap<String, Summary>> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    tallies.insert(OBJECTS_STREAM.to_owned(), Tally::default());
    if let Some((stream, _)) = &args.pg {
        tallies.insert(stream.clone(), Tally::default());
    }
    for path in files(&args.serial_dir)? {
        let text = std::fs::read(&path)?;
        let text = String::from_utf8_lossy(&text);
        // Complete lines only: whatever follows the last newline may be cut.
        let complete = text.rsplit_once('\n').map_or("", |(head, _)| head);
        for line in complete.lines() {
            let Some((stream, keys)) = parse_ack_line(line.trim_end_matches('\r')) else {
                continue;
            };
            let tally = tallies.get_mut(&stream).ok_or_else(|| {
                std::io::Error::other(format!(
                    "{}: an acknowledgement for stream {stream}, which is not checked",
                    path.display()
                ))
            })?;
            for key in keys {
                if !tally.acked.insert(key.clone()) {
                    eprintln!("{}: {stream} {key:?} acknowledged twice", path.display());
                }
            }
        }
    }

    let objects = tallies
        .get_mut(OBJECTS_STREAM)
        .ok_or_else(|| std::io::Error::other("no tally of the objects' stream"))?;
    for path in files(&args.objects_dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(".hydrant-tmp.")) {
            continue;
        }
        objects.s.objects += 1;
        let key = path
            .strip_prefix(&args.objects_dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut plain = Vec::new();
        if let Err(e) =
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut plain)
        {
            eprintln!("{key}: not a gzip object: {e}");
            objects.s.corrupt += 1;
            continue;
        }
        for record in plain.split_inclusive(|b| *b == b'\n') {
            objects.delivered(record, &key, OBJECTS_STREAM);
        }
    }

    if let Some((stream, rows_file)) = &args.pg {
        let rows = std::fs::read(rows_file)?;
        let tally = tallies
            .get_mut(stream)
            .ok_or_else(|| std::io::Error::other("no tally of the PostgreSQL stream"))?;
        for (i, row) in rows.split_inclusive(|b| *b == b'\n').enumerate() {
            let mut record = row.to_vec();
            if !record.ends_with(b"\n") {
                record.push(b'\n');
            }
            tally.delivered(&record, &format!("row {}", i + 1), stream);
        }
    }
    Ok(tallies
        .into_iter()
        .map(|(stream, t)| {
            let s = t.finish(&stream);
            (stream, s)
        })
        .collect())
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
