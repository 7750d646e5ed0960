//! The Kafka (MSK) source under kill -9: an rdkafka producer writes 20,000 keyed records into a
//! 6-partition topic on tansu while hydrantd reads it into the local object store and is
//! killed, `HYDRANT_MSK_KILL_CYCLES` times (default 12, at least 10): at random moments and at
//! the named crash points `kafka::after_append` (a batch written to the WAL, not yet durable),
//! `delivery::after_intent`, `delivery::mid_upload` and `delivery::after_send`. Then a clean
//! daemon drains, and every record produced is in the objects exactly once, in order per key:
//! nothing read twice into the log, nothing skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tansu::{produce_with, Produce, Tansu};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const BUCKET: &str = "mkill";
const STREAM: &str = "msk-kill";
const ARN: &str = "arn:aws:kafka:us-east-1:123456789012:cluster/local/1";
const KEYS: usize = 120;

fn delivered(data_dir: &Path, want: u64, settle: Duration) -> Vec<Value> {
    let root = data_dir.join("objects").join(BUCKET);
    common::objects::json_lines_settled(&root, STREAM, want, Duration::from_secs(180), settle)
}

#[test]
fn every_kafka_record_is_delivered_once_across_kill_cycles() {
    let cycles = common::kill_cycles("HYDRANT_MSK_KILL_CYCLES", 12, 10);
    let t = Tansu::start();
    t.create_topic("korders", 6);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "streams = []\n[kafka]\nbootstrap_servers = \"{}\"\ndiscovery_interval_ms = 300\n",
            t.bootstrap()
        ),
    )
    .unwrap();
    // Setup with a first daemon: the delivery stream.
    {
        let (mut child, addr) = common::spawn_with_config(&data, &cfg, None).unwrap();
        hydrant_tests::process::run_ok(
            Command::new(common::python())
                .arg(common::workspace().join("tests/python/msk_source.py"))
                .arg(format!("http://{addr}"))
                .args(["create", STREAM, ARN, "korders", BUCKET]),
            "msk_source.py create",
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    // The load, in the background: 40 bursts of 500 records, 0.25 s apart.
    let records = 20_000u64;
    let bootstrap = t.bootstrap();
    let load = std::thread::spawn(move || {
        let p = {
            use rdkafka::config::ClientConfig;
            ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .create()
                .unwrap()
        };
        let mut next = vec![0u64; KEYS];
        let mut n = 0u64;
        while n < records {
            let burst: Vec<Produce> = (0..500)
                .map(|j| {
                    let k = ((n + j) as usize * 7919) % KEYS;
                    next[k] += 1;
                    Produce {
                        key: format!("k{k}"),
                        value: format!("{{\"k\":\"k{k}\",\"i\":{}}}\n", next[k] - 1).into_bytes(),
                        timestamp_ms: None,
                        headers: Vec::new(),
                    }
                })
                .collect();
            produce_with(&p, "korders", &burst);
            n += 500;
            std::thread::sleep(Duration::from_millis(250));
        }
        next
    });
    let points = [
        "kafka::after_append",
        "delivery::after_intent",
        "delivery::mid_upload",
        "delivery::after_send",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let mut fired: BTreeMap<&str, usize> = BTreeMap::new();
    let started = Instant::now();
    for cycle in 0..cycles {
        let crash = (cycle % 2 == 1).then(|| {
            let p = points[(cycle / 2) % points.len()];
            (p, format!("{p}:{}", rng.gen_range(1..=3)))
        });
        let Some((mut child, _addr)) =
            common::spawn_with_config(&data, &cfg, crash.as_ref().map(|c| c.1.as_str()))
        else {
            *fired.entry(crash.map_or("start-up", |c| c.0)).or_default() += 1;
            continue;
        };
        common::end_kill_cycle_with(
            &mut child,
            crash.map(|c| c.0),
            Duration::from_millis(rng.gen_range(300..1200)),
            &mut fired,
            Some("the load may have ended, leaving nothing to read or deliver"),
        );
    }
    let per_key_sent = load.join().unwrap();
    eprintln!("{cycles} kill cycles in {:?}: {fired:?}", started.elapsed());
    common::assert_fired(&fired, &points, 1);

    // A clean daemon drains.
    let (mut child, _addr) = common::spawn_with_config(&data, &cfg, None).unwrap();
    let got = delivered(&data, records, Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
    let mut per_key: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for r in &got {
        let k: usize = r["k"].as_str().unwrap()[1..].parse().unwrap();
        per_key.entry(k).or_default().push(r["i"].as_u64().unwrap());
    }
    let dupes_or_missing: Vec<String> = (0..KEYS)
        .filter(|k| {
            let want: Vec<u64> = (0..per_key_sent[*k]).collect();
            per_key.get(k) != Some(&want)
        })
        .map(|k| format!("k{k}: {} delivered", per_key.get(&k).map_or(0, Vec::len)))
        .take(5)
        .collect();
    assert!(
        dupes_or_missing.is_empty() && got.len() as u64 == records,
        "{} delivered of {records}; keys not each once in order: {dupes_or_missing:?}; log tail:\n{}",
        got.len(),
        &log[log.len().saturating_sub(6000)..]
    );
    eprintln!("{records} records delivered exactly once in key order after {cycles} kill cycles");
}
