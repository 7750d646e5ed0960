//! The Kinesis source under kill -9: boto3 puts records into a 4-shard kinesalite stream (one
//! shard split and two merged during the load) while hydrantd reads it into the local object
//! store and is killed, `HYDRANT_KILL_CYCLES` times (default 20, at least 20): at random moments
//! and at the named crash points `kinesis::after_append` (a batch written to the WAL, not yet
//! durable), `delivery::after_intent`, `delivery::mid_upload` and `delivery::after_send`. Then a
//! clean daemon drains, and every record put is in the objects exactly once, in order per
//! partition key: nothing read twice into the log, nothing skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kinesalite::Kinesalite;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const BUCKET: &str = "kkill";
const STREAM: &str = "kin-kill";

fn producer(k: &Kinesalite, hydrant: &str, plan: &Value, dir: &Path, tag: &str) -> Command {
    let plan_path = dir.join(format!("plan-{tag}.json"));
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let mut c = Command::new(common::python());
    c.arg(common::workspace().join("tests/python/kinesis_source.py"))
        .arg(hydrant)
        .arg(k.endpoint())
        .arg(&plan_path)
        .arg(dir.join(format!("out-{tag}.json")));
    c
}

fn delivered(data_dir: &Path, want: u64, settle: Duration) -> Vec<Value> {
    let root = data_dir.join("objects").join(BUCKET);
    let limit = Duration::from_secs(180);
    common::objects::json_lines_settled(&root, STREAM, want, limit, settle)
}

#[test]
fn every_kinesis_record_is_delivered_once_across_kill_cycles() {
    let cycles = common::kill_cycles("HYDRANT_KILL_CYCLES", 20, 20);
    let k = Kinesalite::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "streams = []\n[kinesis]\nendpoint = \"{}\"\naccess_key_id = \"K\"\n\
             secret_access_key = \"S\"\npoll_interval_ms = 200\ndiscovery_interval_ms = 500\n\
             call_timeout_ms = 2000\n",
            k.endpoint()
        ),
    )
    .unwrap();
    let base = json!({"stream": STREAM, "kinesis_stream": "ksrc", "keys": 200,
                      "reshard": true, "bucket": BUCKET});
    // Setup with a first daemon: the Kinesis stream, the delivery stream.
    {
        let (mut child, addr) = common::spawn_with_config(&data, &cfg, None).unwrap();
        let mut plan = base.clone();
        plan["phase"] = json!("setup");
        plan["records"] = json!(0);
        hydrant_tests::process::run_ok(
            &mut producer(&k, &format!("http://{addr}"), &plan, tmp.path(), "setup"),
            "the setup producer",
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    // The load, in the background, to kinesalite only.
    let records = 40_000u64;
    let mut plan = base.clone();
    plan["phase"] = json!("load");
    plan["records"] = json!(records);
    plan["pace_s"] = json!(0.25);
    let load = producer(&k, "http://127.0.0.1:1", &plan, tmp.path(), "load")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let points = [
        "kinesis::after_append",
        "delivery::after_intent",
        "delivery::mid_upload",
        "delivery::after_send",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
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
            Duration::from_millis(rng.gen_range(300..1500)),
            &mut fired,
            Some("the load may have ended, leaving nothing to read or deliver"),
        );
    }
    let load_out = load.wait_with_output().unwrap();
    assert!(
        load_out.status.success(),
        "{}",
        String::from_utf8_lossy(&load_out.stderr)
    );
    eprintln!("{cycles} kill cycles in {:?}: {fired:?}", started.elapsed());
    common::assert_fired(&fired, &points, 1);
    let sent: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out-load.json")).unwrap()).unwrap();
    assert_eq!(sent["sent"].as_u64(), Some(records));

    // A clean daemon drains.
    let (mut child, _addr) = common::spawn_with_config(&data, &cfg, None).unwrap();
    let got = delivered(&data, records, Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &got {
        assert!(r.get("before").is_none(), "a record from before the start");
        per_key
            .entry(r["k"].as_str().unwrap().to_string())
            .or_default()
            .push(r["i"].as_u64().unwrap());
    }
    let dupes_or_missing: Vec<String> = per_key
        .iter()
        .filter(|(key, seq)| {
            let want: Vec<u64> = (0..sent["per_key"][key.as_str()].as_u64().unwrap()).collect();
            **seq != want
        })
        .map(|(key, seq)| format!("{key}: {} delivered", seq.len()))
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
