//! Delivery under kill -9: clients put records while the daemon delivers them (gzip, local
//! object store, interval 0, 1 MiB buffers) and is killed, at random moments and at the named
//! crash points `delivery::after_intent` (intent recorded, nothing sent),
//! `delivery::mid_upload` (the object's temporary file written and fsynced, not renamed) and
//! `delivery::after_send` (object written, cursor not advanced), `HYDRANT_DELIVERY_KILL_CYCLES`
//! times (default 24, at least 20). Then a clean daemon drains the log and every acknowledged
//! record is found exactly once across all objects, each object in LSN order, objects not
//! overlapping, no temporary file left.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::objects::{check_exactly_once, files_under, object_records};
use common::{KillRun, RecordAt};
use hydrant_sinks::Compression;
use rand::rngs::StdRng;
use rand::Rng;

const STREAM: &str = "kill";

/// A record: its unique name and up to 200 bytes of padding.
fn record(rng: &mut StdRng, at: &RecordAt) -> Vec<u8> {
    let pad = "z".repeat(rng.gen_range(0..200));
    format!("{}-{pad}\n", at.key()).into_bytes()
}

/// The local store's temporary files under `root` (`.hydrant-tmp.*`).
fn temp_files(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|p| {
            Path::new(p)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".hydrant-tmp."))
        })
        .collect()
}

#[test]
fn kill_9_during_delivery_delivers_every_acknowledged_record_once() {
    let (_tmp, data, cfg) = common::kill_dirs(&format!(
        "[wal]\nsegment_bytes = 1048576\n\n[[streams]]\nname = \"{STREAM}\"\n\
         compression = \"GZIP\"\nbuffering_size_mbs = 1\nbuffering_interval_seconds = 0\n"
    ));
    let cycles = common::kill_cycles("HYDRANT_DELIVERY_KILL_CYCLES", 24, 20);
    let points = [
        "delivery::after_intent",
        "delivery::mid_upload",
        "delivery::after_send",
    ];
    let mut run = KillRun::new(&data, &cfg);
    // Every other cycle a named crash point (rotating), else a random-moment kill.
    let point = |cycle: usize| (cycle % 2 == 1).then(|| points[(cycle / 2) % points.len()]);
    let acked = run.under_load(cycles, 11, 150..900, point, STREAM, record);
    let fired = run.fired;
    common::assert_fired(&fired, &points, 2);

    // A clean daemon drains the backlog.
    assert!(acked.len() > 2000, "load too light: {}", acked.len());
    common::drain_and_stop(&data, &cfg, STREAM, Duration::from_secs(60));
    let root = data.join("objects/hydrant-local");
    let objects = object_records(&root, &format!("{STREAM}-"), Compression::Gzip);
    let (n, o) = check_exactly_once(&objects, &acked, true);
    eprintln!("{n} acknowledged records exactly once in {o} objects");
    let temps = temp_files(&root);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
