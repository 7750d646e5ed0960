//! kill -9 under load: several clients send PutRecordBatch while the daemon is killed with
//! SIGKILL at random moments: `HYDRANT_KILL_CYCLES` times (default 20, as for the WAL's own kill
//! test, at least 10). After every kill the WAL is read back with the wal crate: every
//! acknowledged record is there, at the LSN its record id names, with its exact bytes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{try_put_batch, Daemon};
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 4;

type Acked = Arc<Mutex<BTreeMap<(u64, u64), Vec<u8>>>>;

fn client(
    addr: std::net::SocketAddr,
    id: usize,
    cycle: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64((cycle * 100 + id) as u64);
    let mut n = 0usize;
    let mut batch_no = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let count = rng.gen_range(1..=60);
        let records: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let pad = rng.gen_range(0..300);
                let mut r = format!("c{cycle}-k{id}-b{batch_no}-r{i}-").into_bytes();
                r.extend((0..pad).map(|_| rng.gen_range(0u8..=255)));
                r
            })
            .collect();
        batch_no += 1;
        // None: the daemon died mid-request or refused; nothing acknowledged.
        let Some(v) = try_put_batch(addr, "load", &records) else {
            continue;
        };
        // The daemon appends a batch whole or refuses it whole: a per-record failure is a bug
        // (and its acknowledged neighbours would otherwise go unchecked).
        assert_eq!(v["FailedPutCount"], 0, "per-record failures: {v}");
        let entries = v["RequestResponses"].as_array().unwrap();
        assert_eq!(entries.len(), records.len());
        let mut acked = acked.lock().unwrap();
        for (e, r) in entries.iter().zip(records) {
            let id = e["RecordId"].as_str().unwrap();
            let (inc, lsn) = hydrant_engine::record_id::decode(id).unwrap();
            assert!(
                acked.insert((inc, lsn.0), r).is_none(),
                "record id {id} given twice"
            );
            n += 1;
        }
    }
    n
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Small segments so that rotations (and seals) happen under the kills too.
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        "[wal]\nsegment_bytes = 1048576\n\n[[streams]]\nname = \"load\"\n",
    )
    .unwrap();
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut total_acked = 0;
    let cycles = common::kill_cycles("HYDRANT_KILL_CYCLES", 20, 10);
    for cycle in 0..cycles {
        let mut d = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (stop, acked, addr) = (stop.clone(), acked.clone(), d.addr);
                std::thread::spawn(move || client(addr, id, cycle, stop, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1200)));
        d.kill9();
        stop.store(true, Ordering::SeqCst);
        let this_cycle: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        total_acked += this_cycle;
        assert!(this_cycle > 0, "cycle {cycle}: no batch was acknowledged");

        let on_disk: BTreeMap<u64, Vec<u8>> =
            common::wal_records(&data, "load").into_iter().collect();
        let acked = acked.lock().unwrap();
        let incarnations: std::collections::BTreeSet<u64> = acked.keys().map(|k| k.0).collect();
        assert_eq!(incarnations.len(), 1, "one stream incarnation");
        for ((_, lsn), bytes) in acked.iter() {
            match on_disk.get(lsn) {
                Some(b) => assert_eq!(b, bytes, "cycle {cycle}: LSN {lsn} has other bytes"),
                None => panic!("cycle {cycle}: acknowledged LSN {lsn} is missing after kill -9"),
            }
        }
        eprintln!(
            "cycle {cycle}: {this_cycle} records acknowledged, {} in the WAL",
            on_disk.len()
        );
    }
    assert!(
        total_acked > 1000,
        "the load was too light to mean anything: {total_acked}"
    );
}
