//! `hydrant replay` over logs written with `hydrant_wal` directly: every record exactly once and
//! in LSN order, idempotent reruns, resumption after an interruption, dry runs, LSN and time
//! bounds, the stream's own destination.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::{hydrant, ok};
use hydrant_sinks::Compression;
use hydrant_wal::{Lsn, Wal, WalOptions};

const ARRIVAL_MS: u64 = 1_764_063_000_000; // 2025-11-25T09:30:00.000Z
const STREAM: &str = "orders";

/// Record `lsn`: a newline-terminated line that names its LSN, of varying length.
fn record(lsn: u64) -> Vec<u8> {
    format!("lsn={lsn:06} {}\n", "y".repeat((lsn * 37 % 300) as usize)).into_bytes()
}

/// Writes `frames` appends of 1 to 7 records into 16 KiB segments of
/// `data/streams/orders/wal`; frame `f` arrives at `ARRIVAL_MS + f * 1000`. Returns the LSN of
/// each frame's first record and the number of records.
fn build_log(data: &Path, frames: u64) -> (Vec<u64>, u64) {
    let dir = data.join("streams").join(STREAM).join("wal");
    let options = WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: false,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, options).unwrap();
    let mut next = 0;
    let mut starts = Vec::new();
    for f in 0..frames {
        let n = f % 7 + 1;
        let recs: Vec<Vec<u8>> = (next..next + n).map(record).collect();
        let range = wal
            .append_at(&recs, ARRIVAL_MS + f * 1000)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(range.start, Lsn(next));
        starts.push(next);
        next += n;
    }
    assert!(wal.segments().len() >= 3, "the test needs several segments");
    wal.close().unwrap();
    (starts, next)
}

/// Every object file under `dir` (relative key → bytes), temporary files excluded.
fn objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The LSNs found in the objects, each object's records in order, objects ordered by their
/// first LSN. Panics if an object is not in LSN order.
fn lsns_in(objects: &BTreeMap<String, Vec<u8>>, codec: Compression) -> Vec<u64> {
    let mut per_object: Vec<Vec<u64>> = Vec::new();
    for (key, body) in objects {
        let data = codec.decompress(body).unwrap();
        let mut lsns = Vec::new();
        for line in data.split_inclusive(|b| *b == b'\n') {
            let text = std::str::from_utf8(line).unwrap();
            let lsn: u64 = text[4..10].parse().unwrap();
            assert_eq!(
                line,
                record(lsn).as_slice(),
                "exact bytes of LSN {lsn} in {key}"
            );
            lsns.push(lsn);
        }
        assert!(
            lsns.windows(2).all(|w| w[0] + 1 == w[1]),
            "{key} in LSN order"
        );
        per_object.push(lsns);
    }
    per_object.sort();
    per_object.concat()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn replay(data: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--data-dir",
        s(data),
        "--stream",
        STREAM,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    hydrant(&args)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

#[test]
fn replays_every_record_once_in_order_and_reruns_are_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, total) = build_log(&data, 300);
    let out = tmp.path().join("out");

    let summary = json(&replay(
        &data,
        &["--to-dir", s(&out), "--batch-mib", "0.01", "--json"],
    ));
    assert_eq!(summary["records"], total);
    assert_eq!(summary["complete"], true);
    assert!(summary["batches"].as_u64().unwrap() > 5);
    let first = objects(&out);
    assert_eq!(first.len() as u64, summary["batches"].as_u64().unwrap());
    assert!(first.keys().all(|k| k.ends_with(".gz")), "GZIP by default");
    assert_eq!(
        lsns_in(&first, Compression::Gzip),
        (0..total).collect::<Vec<_>>()
    );

    // Run again: the checkpoint says everything is done.
    let again = json(&replay(
        &data,
        &["--to-dir", s(&out), "--batch-mib", "0.01", "--json"],
    ));
    assert_eq!(again["records"], 0);
    assert_same_objects(&objects(&out), &first);

    // --restart replays everything again onto the very same keys, with the same bytes.
    let restarted = json(&replay(
        &data,
        &[
            "--to-dir",
            s(&out),
            "--batch-mib",
            "0.01",
            "--json",
            "--restart",
        ],
    ));
    assert_eq!(restarted["records"], total);
    assert_same_objects(&objects(&out), &first);
}

/// Asserts two object sets are equal: same keys, identical bytes (without printing the bytes).
fn assert_same_objects(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (key, bytes) in a {
        assert!(b[key] == *bytes, "{key}: bytes differ");
    }
}

#[test]
fn an_interrupted_replay_resumes_onto_the_same_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, total) = build_log(&data, 300);
    let out = tmp.path().join("out");
    let args = [
        "--to-dir",
        s(&out),
        "--batch-mib",
        "0.01",
        "--compression",
        "ZSTD",
        "--json",
    ];

    // Stop after 3 batches, as a killed run would have: checkpoint written, range not done.
    let mut first_run = args.to_vec();
    first_run.extend(["--stop-after-batches", "3"]);
    let stopped = json(&replay(&data, &first_run));
    assert_eq!(stopped["batches"], 3);
    assert_eq!(stopped["complete"], false);
    let resume_at = stopped["next_lsn"].as_u64().unwrap();

    let resumed = json(&replay(&data, &args));
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["start_lsn"], resume_at);
    assert_eq!(resumed["complete"], true);
    assert_eq!(
        stopped["records"].as_u64().unwrap() + resumed["records"].as_u64().unwrap(),
        total
    );
    let got = objects(&out);
    assert_eq!(
        lsns_in(&got, Compression::Zstd),
        (0..total).collect::<Vec<_>>()
    );

    // An uninterrupted run from the start cuts the very same batches: it rewrites every object
    // under its key with identical bytes and adds none.
    let mut whole = args.to_vec();
    whole.push("--restart");
    json(&replay(&data, &whole));
    assert_same_objects(&objects(&out), &got);
}

#[test]
fn to_lsn_midway_then_the_rest_yields_every_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, total) = build_log(&data, 200);
    let out = tmp.path().join("out");
    let mid = (total / 2).to_string();
    let a = json(&replay(
        &data,
        &["--to-dir", s(&out), "--to-lsn", &mid, "--json"],
    ));
    assert_eq!(a["records"].as_u64().unwrap(), total / 2);
    let b = json(&replay(&data, &["--to-dir", s(&out), "--json"]));
    assert_eq!(b["start_lsn"].as_u64().unwrap(), total / 2);
    assert_eq!(b["resumed"], true);
    let got = objects(&out);
    assert_eq!(
        lsns_in(&got, Compression::Gzip),
        (0..total).collect::<Vec<_>>()
    );
}

#[test]
fn dry_run_counts_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, total) = build_log(&data, 120);
    let out = tmp.path().join("out");
    let o = replay(
        &data,
        &["--to-dir", s(&out), "--dry-run", "--batch-mib", "0.01"],
    );
    let text = ok(&o);
    assert!(
        text.contains(&format!("would replay {total} records")),
        "{text}"
    );
    assert!(text.contains("nothing written"), "{text}");
    assert!(!out.exists(), "no destination directory");
    assert!(!data.join("replay").exists(), "no checkpoint");
    let bytes: u64 = (0..total).map(|l| record(l).len() as u64).sum();
    let j = json(&replay(
        &data,
        &["--to-dir", s(&out), "--dry-run", "--json"],
    ));
    assert_eq!(j["bytes"].as_u64().unwrap(), bytes);
    assert_eq!(j["dry_run"], true);
}

#[test]
fn lsn_and_time_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (starts, _) = build_log(&data, 200);

    let out = tmp.path().join("lsn");
    json(&replay(
        &data,
        &[
            "--to-dir",
            s(&out),
            "--from-lsn",
            "100",
            "--to-lsn",
            "250",
            "--json",
        ],
    ));
    assert_eq!(
        lsns_in(&objects(&out), Compression::Gzip),
        (100..250).collect::<Vec<_>>()
    );

    // Frames 50 to 120 (inclusive) arrived between these instants; frame 49 a second before.
    let out = tmp.path().join("time");
    let from = (ARRIVAL_MS + 50 * 1000).to_string();
    let to = "2025-11-25T09:32:00Z"; // ARRIVAL_MS + 120 s
    json(&replay(
        &data,
        &[
            "--to-dir",
            s(&out),
            "--from-time",
            &from,
            "--to-time",
            to,
            "--json",
        ],
    ));
    assert_eq!(
        lsns_in(&objects(&out), Compression::Gzip),
        (starts[50]..starts[121]).collect::<Vec<_>>()
    );
}

#[test]
fn the_streams_own_destination_or_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (_, total) = build_log(&data, 60);

    let o = replay(&data, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--to-dir") && err.contains("stream.json"),
        "{err}"
    );

    let definition = serde_json::json!({
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::own-bucket",
            "Prefix": "raw/",
            "CompressionFormat": "Snappy"
        },
        "incarnation": "00000000deadbeef",
        "version_id": "3"
    });
    std::fs::write(
        data.join("streams").join(STREAM).join("stream.json"),
        definition.to_string(),
    )
    .unwrap();
    let j = json(&replay(&data, &["--json"]));
    assert_eq!(j["own_destination"], true);
    assert_eq!(j["records"], total);
    let got = objects(&data.join("objects").join("own-bucket"));
    assert!(!got.is_empty());
    for key in got.keys() {
        assert!(key.starts_with("raw/2025/11/25/09/"), "{key}");
        assert!(key.contains("orders-3-2025-11-25-09-"), "{key}");
        assert!(key.ends_with(".snappy"), "{key}");
    }
    assert_eq!(
        lsns_in(&got, Compression::Snappy),
        (0..total).collect::<Vec<_>>()
    );

    // A daemon run with --objects-dir keeps its local object store there; so does replay
    // (another place: a checkpoint of its own, so every record again).
    let moved = tmp.path().join("other-disk");
    let j = json(&replay(&data, &["--json", "--objects-dir", s(&moved)]));
    assert_eq!(j["records"], total);
    let again = objects(&moved.join("own-bucket"));
    assert_eq!(
        lsns_in(&again, Compression::Snappy),
        (0..total).collect::<Vec<_>>()
    );
    assert_eq!(objects(&data.join("objects").join("own-bucket")), got);
}

/// Replay beside a live log whose tail is written but not durable (`interval` durability with
/// an hour between syncs, the writer in this process): it delivers exactly the durable records,
/// never the unsynced ones (a power loss could still drop those and reuse their LSNs); once the
/// log syncs, the next run delivers the rest, each record once.
#[test]
fn replay_reads_only_to_the_durable_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = data.join("streams").join(STREAM).join("wal");
    let options = WalOptions {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 4096,
        background_prepare: false,
        durability: hydrant_wal::Durability::Interval {
            every: std::time::Duration::from_secs(3600),
        },
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, options).unwrap();
    // The log's sync thread, on its first pass, syncs whatever was written by then; let it
    // reach its hour-long wait first.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut next = 0;
    let mut append = |frames: u64| {
        for f in 0..frames {
            let recs: Vec<Vec<u8>> = (next..next + f % 5 + 1).map(record).collect();
            let range = wal
                .append_at(&recs, ARRIVAL_MS + next)
                .unwrap()
                .wait()
                .unwrap();
            next = range.end.get();
        }
        next
    };
    append(60);
    let durable = wal.sync().unwrap().get();
    // Written, acknowledged under `interval`, not synced: across rotations too.
    let written = append(120);
    assert_eq!(wal.durable_lsn().get(), durable);
    assert!(
        wal.segments().len() >= 3,
        "the unsynced tail spans segments"
    );
    let unsynced = wal
        .segments()
        .iter()
        .filter(|s| s.end_lsn.get() > durable)
        .count();
    assert!(unsynced >= 2, "{unsynced} segments hold unsynced records");

    let out = tmp.path().join("out");
    let args = ["--to-dir", s(&out), "--batch-mib", "0.01", "--json"];
    let summary = json(&replay(&data, &args));
    assert_eq!(summary["records"], durable, "{summary}");
    assert_eq!(
        lsns_in(&objects(&out), Compression::Gzip),
        (0..durable).collect::<Vec<_>>(),
        "only the durable records, {durable} of {written} written"
    );

    // The log syncs: the rest is durable now, and the next run (resuming) delivers it.
    assert_eq!(wal.sync().unwrap().get(), written);
    let rest = json(&replay(&data, &args));
    assert_eq!(rest["records"], written - durable, "{rest}");
    assert_eq!(
        lsns_in(&objects(&out), Compression::Gzip),
        (0..written).collect::<Vec<_>>()
    );
    wal.close().unwrap();
}

/// Replay of a stream with dynamic partitioning (jq key `c`) to its own destination, in batches
/// of about 1 KiB: each object holds only its partition's records and is named as live
/// delivery names a partition's object, under the replay identity: `c=<value>/` (the Prefix on
/// its keys), then `<stream>-<version>-<oldest arrival>-<object id>` where the object id is that
/// of the identity (stream, incarnation, replay destination id, first LSN, last LSN) of the
/// object's own records. Records that are not JSON are in the error output as
/// `partitioning-failed`; every record is found once.
#[test]
fn a_partitioned_stream_replays_into_partition_objects_named_as_live_delivery_names_them() {
    use base64::Engine as _;
    use hydrant_sinks::BatchIdentity;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = data.join("streams").join(STREAM).join("wal");
    let (wal, _) = Wal::open(&dir, WalOptions::default()).unwrap();
    let line = |lsn: u64| -> Vec<u8> {
        if lsn % 17 == 5 {
            format!("not json {lsn}\n").into_bytes()
        } else {
            format!("{{\"c\":\"p{}\",\"lsn\":{lsn}}}\n", lsn % 4).into_bytes()
        }
    };
    // 40 frames of 3 records, frame f arriving at 09:30:f.
    for f in 0..40u64 {
        let recs: Vec<Vec<u8>> = (f * 3..f * 3 + 3).map(line).collect();
        wal.append_at(&recs, ARRIVAL_MS + f * 1000)
            .unwrap()
            .wait()
            .unwrap();
    }
    wal.close().unwrap();
    let total = 120u64;
    let definition = serde_json::json!({
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "c=!{partitionKeyFromQuery:c}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "CompressionFormat": "UNCOMPRESSED",
            "DynamicPartitioningConfiguration": {"Enabled": true},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}
        },
        "incarnation": "00000000deadbeef",
        "version_id": "3"
    });
    std::fs::write(
        data.join("streams").join(STREAM).join("stream.json"),
        definition.to_string(),
    )
    .unwrap();
    let j = json(&replay(&data, &["--json", "--batch-mib", "0.001"]));
    assert_eq!(j["records"], total);
    let destination_id = j["destination_id"].as_str().unwrap().to_owned();
    assert!(destination_id.starts_with("replay-"), "{destination_id}");

    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let mut data_objects = 0;
    for (key, body) in objects(&data.join("objects").join("lake")) {
        let text = String::from_utf8(body).unwrap();
        if let Some(rest) = key.strip_prefix("errors/") {
            assert!(rest.starts_with("partitioning-failed/"), "{key}");
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(v["rawData"].as_str().unwrap())
                    .unwrap();
                let raw = String::from_utf8(raw).unwrap();
                let lsn: u64 = raw["not json ".len()..].trim().parse().unwrap();
                assert!(seen.insert(lsn, key.clone()).is_none(), "{lsn} twice");
            }
            continue;
        }
        data_objects += 1;
        let partition = key.split('/').next().unwrap().trim_start_matches("c=");
        let lsns: Vec<u64> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["c"], partition, "{key}: a record of another partition");
                v["lsn"].as_u64().unwrap()
            })
            .collect();
        assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{key}: LSN order");
        for &lsn in &lsns {
            assert!(seen.insert(lsn, key.clone()).is_none(), "{lsn} twice");
        }
        // The key live delivery gives a partition's object, under the replay identity.
        let (first, last) = (lsns[0], lsns[lsns.len() - 1]);
        let identity = BatchIdentity {
            stream: STREAM.into(),
            incarnation: "00000000deadbeef".into(),
            destination_id: destination_id.clone(),
            first_lsn: first,
            last_lsn: last,
        };
        let oldest_second = first / 3;
        let want = format!(
            "c={partition}/{STREAM}-3-2025-11-25-09-30-{oldest_second:02}-{}",
            identity.object_id()
        );
        assert_eq!(key, want);
    }
    assert_eq!(seen.len() as u64, total, "every record once");
    // Batches of about 1 KiB: each partition has several objects.
    assert!(data_objects > 8, "{data_objects} objects");
}
