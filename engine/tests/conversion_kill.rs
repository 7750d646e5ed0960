//! Record format conversion under kill -9: clients put JSON records (about 1 % of which do not
//! convert) while the daemon converts a stream to Parquet (local catalog, local object store,
//! 1 s buffers) and is killed `HYDRANT_CONVERSION_KILL_CYCLES` times (default 12, at least 10):
//! after a batch's Parquet object is written and before its failed records are filed
//! (`delivery::after_send`), after the error output is written and before the cursor moves
//! (`delivery::after_error_output`), and at random moments. Then a clean daemon drains the log,
//! and every acknowledged record is found exactly once: a good one as one row of one Parquet
//! object (read by pyarrow), a bad one as one `format-conversion-failed` entry. The same with
//! `OrcSerDe` (ORC objects read by pyarrow's ORC reader).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::objects::object_files;
use common::{KillRun, RecordAt};
use hydrant_sinks::convert::catalog::LocalCatalog;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

const STREAM: &str = "ckill";

/// A record with its unique id: `n` not a number for about 1 in 100.
fn record(rng: &mut StdRng, at: &RecordAt) -> Vec<u8> {
    let pad = "z".repeat(rng.gen_range(0..200));
    let v = if rng.gen_range(0..100) == 0 {
        json!({"id": at.key(), "n": "not a number", "pad": pad})
    } else {
        json!({"id": at.key(), "n": at.index, "pad": pad})
    };
    format!("{v}\n").into_bytes()
}

fn create_converting(addr: SocketAddr, serializer: &Value) {
    let config = json!({
        "RoleARN": "arn:aws:iam::123456789012:role/r",
        "BucketARN": "arn:aws:s3:::cbucket",
        "Prefix": "data/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
        "DataFormatConversionConfiguration": {
            "SchemaConfiguration": {"DatabaseName": "lake", "TableName": "kill"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": serializer}},
    });
    common::create_extended_s3(addr, STREAM, &config);
}

/// Every row's id, per object of `extension` (`parquet` or `orc`, read by pyarrow's reader of
/// that format).
fn object_ids(root: &std::path::Path, extension: &str) -> BTreeMap<String, Vec<String>> {
    let script = format!(
        "import glob, json, pyarrow.{extension} as reader\n\
         print(json.dumps({{p: reader.read_table(p).column('id').to_pylist() \
         for p in glob.glob('{}/data/**/*.{extension}', recursive=True)}}))\n",
        root.display()
    );
    common::python_json("pyarrow", &script)
}

#[test]
fn kill_9_during_conversion_files_every_record_once() {
    kill_cycles_with(&json!({"ParquetSerDe": {}}), "parquet");
}

#[test]
fn kill_9_during_orc_conversion_files_every_record_once() {
    kill_cycles_with(&json!({"OrcSerDe": {"Compression": "ZLIB"}}), "orc");
}

/// The kill -9 cycles with `serializer`, objects ending in `.{extension}`.
fn kill_cycles_with(serializer: &Value, extension: &str) {
    let (_tmp, data, cfg) = common::kill_dirs(common::KILL_DELIVERY_TOML);
    LocalCatalog::new(data.join("catalog"))
        .put(
            "lake",
            "kill",
            &json!({"Columns": [{"Name": "id", "Type": "string"}, {"Name": "n", "Type": "int"},
                                {"Name": "pad", "Type": "string"}]}),
        )
        .unwrap();
    let cycles = common::kill_cycles("HYDRANT_CONVERSION_KILL_CYCLES", 12, 10);
    common::set_up_with_daemon(&data, &cfg, |addr| create_converting(addr, serializer));
    let mut run = KillRun::new(&data, &cfg);
    let point = |cycle: usize| match cycle % 3 {
        0 => Some("delivery::after_send"),
        1 => Some("delivery::after_error_output"),
        _ => None,
    };
    let acked = run.under_load(cycles, 29, 300..1500, point, STREAM, record);
    let fired = run.fired;
    common::assert_fired(&fired, &["delivery::after_send"], 2);

    assert!(acked.len() > 1000, "load too light: {}", acked.len());
    common::drain_and_stop(&data, &cfg, STREAM, Duration::from_secs(90));

    let root = data.join("objects/cbucket");
    // Good records: one row each, across all objects.
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    let objects = object_ids(&root, extension);
    for (path, ids) in &objects {
        for id in ids {
            if let Some(other) = rows.insert(id.clone(), path.clone()) {
                panic!("row {id} twice: in {other} and {path}");
            }
        }
    }
    // Bad records: one failure entry each.
    let mut failed: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (key, path) in object_files(&root, &format!("{STREAM}-")) {
        if key.starts_with("data/") {
            assert!(key.ends_with(&format!(".{extension}")), "{key}");
            continue;
        }
        assert!(key.starts_with("errors/format-conversion-failed/"), "{key}");
        for f in common::objects::json_lines(&path) {
            let raw = common::objects::raw_data(&f);
            assert!(failed.insert(raw), "failure filed twice: {f}");
        }
    }
    let mut bad = 0;
    for (lsn, bytes) in &acked {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        let id = v["id"].as_str().unwrap();
        if v["n"].is_string() {
            bad += 1;
            assert!(failed.contains(bytes), "bad record {lsn} not filed");
            assert!(!rows.contains_key(id), "bad record {lsn} converted");
        } else {
            assert!(
                rows.contains_key(id),
                "acknowledged record {lsn} ({id}) not converted"
            );
            assert!(!failed.contains(bytes), "good record {lsn} filed as failed");
        }
    }
    eprintln!(
        "{} acknowledged records exactly once: {} rows in {} {extension} objects, {bad} failures",
        acked.len(),
        rows.len(),
        objects.len()
    );
    assert!(bad > 0, "no bad record was acknowledged");
    let temps: Vec<_> = object_files(&root, ".hydrant-tmp.");
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
