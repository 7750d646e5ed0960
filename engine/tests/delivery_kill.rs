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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::objects::{check_exactly_once, object_records};
use common::try_put_batch;
use hydrant_sinks::Compression;
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 3;
const STREAM: &str = "kill";

type Acked = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

fn client(addr: SocketAddr, id: usize, cycle: usize, stop: Arc<AtomicBool>, acked: Acked) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64((cycle * 100 + id) as u64);
    let mut n = 0;
    let mut batch_no = 0;
    while !stop.load(Ordering::SeqCst) {
        let count = rng.gen_range(1..=40);
        let records: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let pad = "z".repeat(rng.gen_range(0..200));
                format!("c{cycle}-k{id}-b{batch_no}-r{i}-{pad}\n").into_bytes()
            })
            .collect();
        batch_no += 1;
        let Some(v) = try_put_batch(addr, STREAM, &records) else {
            continue;
        };
        let mut acked = acked.lock().unwrap();
        for (e, r) in v["RequestResponses"]
            .as_array()
            .unwrap()
            .iter()
            .zip(records)
        {
            let (_, lsn) =
                hydrant_engine::record_id::decode(e["RecordId"].as_str().unwrap()).unwrap();
            assert!(
                acked.insert(lsn.0, r).is_none(),
                "LSN {lsn} acknowledged twice"
            );
            n += 1;
        }
    }
    n
}

fn temp_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(".hydrant-tmp.") {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn kill_9_during_delivery_delivers_every_acknowledged_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wal]\nsegment_bytes = 1048576\n\n[[streams]]\nname = \"{STREAM}\"\n\
             compression = \"GZIP\"\nbuffering_size_mbs = 1\nbuffering_interval_seconds = 0\n"
        ),
    )
    .unwrap();
    let cycles: usize = std::env::var("HYDRANT_DELIVERY_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
        .max(20);
    let points = [
        "delivery::after_intent",
        "delivery::mid_upload",
        "delivery::after_send",
    ];
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut fired: BTreeMap<&str, usize> = BTreeMap::new();
    let started = Instant::now();
    for cycle in 0..cycles {
        // Every other cycle a named crash point (rotating), else a random-moment kill.
        let crash = (cycle % 2 == 1).then(|| {
            let p = points[(cycle / 2) % points.len()];
            (p, format!("{p}:{}", rng.gen_range(1..=3)))
        });
        let Some((mut child, addr)) =
            common::spawn_with_config(&data, &cfg, crash.as_ref().map(|c| c.1.as_str()))
        else {
            *fired.entry(crash.map_or("start-up", |c| c.0)).or_default() += 1;
            continue;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || client(addr, id, cycle, stop, acked))
            })
            .collect();
        common::end_kill_cycle(
            &mut child,
            crash.map(|c| c.0),
            Duration::from_millis(rng.gen_range(150..900)),
            &mut fired,
        );
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().unwrap();
        }
    }
    eprintln!(
        "{cycles} kill cycles in {:?}: {fired:?}, {} records acknowledged",
        started.elapsed(),
        acked.lock().unwrap().len()
    );
    for p in points {
        assert!(
            fired.get(p).copied().unwrap_or(0) >= 2,
            "crash point {p} fired too rarely: {fired:?}"
        );
    }

    // A clean daemon drains the backlog.
    let (mut child, addr) = common::spawn_with_config(&data, &cfg, None).expect("clean start");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 2000, "load too light: {}", acked.len());
    let root = data.join("objects/hydrant-local");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, metrics) = common::get(addr, "/metrics").unwrap();
        let drained = metrics.contains(&format!(
            "hydrant_delivery_backlog_records{{stream=\"{STREAM}\",destination=\"destinationId-000000000001\"}} 0"
        ));
        if drained {
            break;
        }
        assert!(Instant::now() < deadline, "backlog not drained");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let objects = object_records(&root, &format!("{STREAM}-"), Compression::Gzip);
    let (n, o) = check_exactly_once(&objects, &acked, true);
    eprintln!("{n} acknowledged records exactly once in {o} objects");
    let temps = temp_files(&root);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
