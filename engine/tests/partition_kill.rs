//! Dynamic partitioning under kill -9: clients put JSON records of 8 partitions while the daemon
//! delivers a partitioned stream (jq key, local object store, 1 s buffers) and is killed
//! `HYDRANT_PARTITION_KILL_CYCLES` times (default 12, at least 10): between two objects of one
//! batch (`delivery::between_partitions`, so a batch is left half written), after a batch's
//! objects are all written and before the cursor moves (`delivery::after_send`), and at random
//! moments. Then a clean daemon drains the log, and every acknowledged record is found exactly
//! once across all objects, each in the object of its own partition, no temporary file left.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::objects::object_files;
use common::{KillRun, RecordAt};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

const STREAM: &str = "pkill";
const PARTITIONS: usize = 8;

/// A record of one of the partitions, with its unique id.
fn record(rng: &mut StdRng, at: &RecordAt) -> Vec<u8> {
    let k = rng.gen_range(0..PARTITIONS);
    let pad = "z".repeat(rng.gen_range(0..200));
    format!(
        "{}\n",
        json!({"k": format!("p{k}"), "id": at.key(), "pad": pad})
    )
    .into_bytes()
}

#[test]
fn kill_9_between_the_objects_of_a_partitioned_batch_delivers_every_record_once() {
    let (_tmp, data, cfg) = common::kill_dirs(common::KILL_DELIVERY_TOML);
    let cycles = common::kill_cycles("HYDRANT_PARTITION_KILL_CYCLES", 12, 10);
    common::set_up_with_daemon(&data, &cfg, |addr| {
        common::create_extended_s3(addr, STREAM, &common::partitioned_by_k("pbucket", 1))
    });
    let mut run = KillRun::new(&data, &cfg);
    // Two cycles in three at a crash point (between two objects of a batch twice as often as
    // after the send), the third at a random moment.
    let point = |cycle: usize| match cycle % 3 {
        0 => Some("delivery::between_partitions"),
        1 => Some(if cycle % 2 == 1 {
            "delivery::after_send"
        } else {
            "delivery::between_partitions"
        }),
        _ => None,
    };
    let acked = run.under_load(cycles, 23, 300..1500, point, STREAM, record);
    let fired = run.fired;
    common::assert_fired(&fired, &["delivery::between_partitions"], 4);

    assert!(acked.len() > 1000, "load too light: {}", acked.len());
    common::drain_and_stop(&data, &cfg, STREAM, Duration::from_secs(60));

    // Every record once, in its own partition's object; acknowledged ones all there.
    let root = data.join("objects/pbucket");
    let by_bytes: BTreeMap<&[u8], u64> = acked.iter().map(|(l, b)| (b.as_slice(), *l)).collect();
    let mut seen: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut objects = 0;
    for (key, path) in object_files(&root, &format!("{STREAM}-")) {
        assert!(key.starts_with("k=p"), "unexpected object {key}");
        objects += 1;
        let partition = key.split('/').next().unwrap().trim_start_matches("k=");
        let body = std::fs::read(&path).unwrap();
        assert!(body.ends_with(b"\n"), "{key}: records cut");
        let mut last_lsn = None;
        for record in body.split_inclusive(|b| *b == b'\n') {
            let v: Value = serde_json::from_slice(record).unwrap();
            assert_eq!(v["k"], partition, "{key}: record of another partition");
            if let Some(other) = seen.insert(record.to_vec(), key.clone()) {
                panic!("record delivered twice: in {other} and {key}");
            }
            // Within an object, records keep LSN order.
            if let Some(lsn) = by_bytes.get(record) {
                assert!(last_lsn < Some(*lsn), "{key}: records out of order");
                last_lsn = Some(*lsn);
            }
        }
    }
    common::objects::assert_all_seen(&acked, &seen);
    eprintln!(
        "{} acknowledged records exactly once in {objects} partition objects",
        acked.len()
    );
    assert!(objects >= PARTITIONS);
    let temps: Vec<_> = object_files(&root, ".hydrant-tmp.");
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
