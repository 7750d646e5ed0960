//! Record format conversion end to end: a table in the local catalog (`DIR/catalog`), boto3
//! creates an ExtendedS3 stream with `DataFormatConversionConfiguration` (OpenX JSON SerDe in,
//! Parquet out), puts 10,000 records of which 1 % do not convert. DuckDB reads every Parquet
//! object: each good record is a row exactly once, with its values; the bad ones are each once
//! in `format-conversion-failed`, as Firehose's conversion-failure JSON. boto3 also sees the
//! create-time refusals (compression, buffering size, an ORC member not applied, a missing
//! table) and the described defaults. The same with `OrcSerDe` out, read back by pyarrow's ORC
//! reader.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::objects::object_files;
use common::Daemon;
use hydrant_sinks::convert::catalog::LocalCatalog;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";
const STREAM: &str = "events";
const RECORDS: usize = 10_000;

fn conversion() -> Value {
    json!({
        "SchemaConfiguration": {"DatabaseName": "lake", "TableName": "events", "RoleARN": ROLE},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}}
    })
}

fn stream_config() -> Value {
    json!({
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::lake",
        "Prefix": "data/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
        "DataFormatConversionConfiguration": conversion(),
    })
}

fn refusals() -> Vec<Value> {
    let with =
        |name: &str, change: &dyn Fn(&mut Value)| common::refusal(name, stream_config(), change);
    vec![
        with("compressed", &|c| c["CompressionFormat"] = json!("GZIP")),
        with("small-buffer", &|c| {
            c["BufferingHints"] = json!({"SizeInMBs": 5, "IntervalInSeconds": 60});
        }),
        with("orc-row-index", &|c| {
            c["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"] =
                json!({"OrcSerDe": {"RowIndexStride": 10000}});
        }),
        with("no-table", &|c| {
            c["DataFormatConversionConfiguration"]["SchemaConfiguration"]["TableName"] =
                json!("missing");
        }),
        with("bad-member", &|c| {
            c["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"]
                ["ParquetSerDe"]["MaxPaddingBytes"] = json!(1024);
        }),
    ]
}

/// Record `i`: good, or (every 100th) one that does not convert.
fn record(i: usize) -> String {
    if i % 100 == 37 {
        if i % 200 == 37 {
            format!("{{\"id\": \"not-a-number-{i}\"}}")
        } else {
            format!("{{\"id\": {i}, \"tags\": \"no list\"")
        }
    } else {
        json!({"Id": i, "name": format!("n{i}"), "amount": format!("{}.25", i),
               "ts": 1_700_000_000_000_u64 + i as u64, "tags": [format!("t{}", i % 3)]})
        .to_string()
    }
}

fn bad(i: usize) -> bool {
    i % 100 == 37
}

fn error_lines(root: &Path) -> Vec<Value> {
    object_files(root, &format!("{STREAM}-"))
        .iter()
        .filter(|(k, _)| k.starts_with("errors/"))
        .flat_map(|(k, p)| {
            assert!(k.starts_with("errors/format-conversion-failed/"), "{k}");
            let text = String::from_utf8(std::fs::read(p).unwrap()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits (up to 120 s) until the error output under `root` holds `bad_count` failures and the
/// converted files, read by `rows`, hold `good` rows.
fn wait_for_conversion(
    daemon: &Daemon,
    root: &Path,
    bad_count: usize,
    good: usize,
    rows: impl Fn(&Path) -> usize,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let errors = error_lines(root).len();
        let rows = if errors == bad_count { rows(root) } else { 0 };
        if errors == bad_count && rows == good {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converted in time ({errors} errors, {rows} rows); log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// DuckDB over every Parquet object: (id, name, amount as text, ts as text, tags[1]) rows.
fn duckdb_rows(root: &Path) -> Vec<(i64, String, String, String, String)> {
    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql(\"select id, name, amount::varchar, ts::varchar, tags[1] \
         from read_parquet('{}/data/**/*.parquet') order by id\").fetchall()\n\
         print(json.dumps(rows))\n",
        root.display()
    );
    common::python_json("duckdb", &script)
}

fn columns() -> Value {
    json!([
        {"Name": "id", "Type": "bigint"},
        {"Name": "name", "Type": "string"},
        {"Name": "amount", "Type": "decimal(12,2)"},
        {"Name": "ts", "Type": "timestamp"},
        {"Name": "tags", "Type": "array<string>"}])
}

const DELIVERY: &str = "[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\n";

#[test]
fn boto3_converts_json_to_parquet_with_the_local_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    LocalCatalog::new(data.join("catalog"))
        .put("lake", "events", &json!({ "Columns": columns() }))
        .unwrap();
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(&cfg, DELIVERY).unwrap();
    let daemon = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    converts_and_files_failures(
        &daemon,
        &data,
        tmp.path(),
        "lake.missing is not in the local catalog",
    );
}

/// moto's Glue server, killed on drop.
struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn boto3_converts_json_to_parquet_with_the_schema_from_moto_glue() {
    let tmp = tempfile::tempdir().unwrap();
    let python = common::python();
    let moto_server = python.with_file_name("moto_server");
    assert!(
        moto_server.exists(),
        "no moto_server beside {}: pip install 'moto[server]'",
        python.display()
    );
    let port = common::free_port();
    let _moto = Moto(
        Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The table, made by boto3's glue.create_table.
    let script = format!(
        "import boto3, json\n\
         g = boto3.client('glue', endpoint_url='{endpoint}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         g.create_database(DatabaseInput={{'Name': 'lake'}})\n\
         g.create_table(DatabaseName='lake', TableInput={{'Name': 'events', \
             'StorageDescriptor': {{'Columns': json.loads('{}')}}}})\n",
        columns()
    );
    common::python_run("glue.create_table", &script);
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(
        &cfg,
        format!(
            "{DELIVERY}\n[glue]\nendpoint = \"{endpoint}\"\naccess_key_id = \"testing\"\n\
             secret_access_key = \"testing\"\n"
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    // No local catalog at all: the schema can only have come from Glue.
    assert!(!data.join("catalog").exists());
    converts_and_files_failures(&daemon, &data, tmp.path(), "EntityNotFoundException");
}

/// Creates the stream (and sees the refusals, `missing_table` naming the table not found),
/// puts 10,000 records of which 1 % do not convert, and checks the Parquet objects and the
/// error output.
fn converts_and_files_failures(daemon: &Daemon, data: &Path, tmp: &Path, missing_table: &str) {
    let records: Vec<String> = (0..RECORDS).map(record).collect();
    let plan = json!({
        "refuse": refusals(),
        "create": [{"name": STREAM, "member": "ExtendedS3DestinationConfiguration",
                    "config": stream_config()}],
        "put": [{"name": STREAM, "records": records}],
    });
    let out = common::run_destinations_py(&daemon.endpoint(), &plan, &tmp.join("boto3"));
    let described =
        &out["described"][STREAM]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(described["DataFormatConversionConfiguration"], conversion());
    common::assert_refused(
        &out,
        refusals().len(),
        &[
            ("compressed", "must be UNCOMPRESSED"),
            ("small-buffer", "SizeInMBs must be at least 64"),
            (
                "orc-row-index",
                "OrcSerDe.RowIndexStride is not supported by hydrant",
            ),
            ("no-table", missing_table),
            ("bad-member", "MaxPaddingBytes is not supported by hydrant"),
        ],
    );

    let root = data.join("objects/lake");
    let bad_count = (0..RECORDS).filter(|i| bad(*i)).count();
    assert_eq!(bad_count, RECORDS / 100);
    wait_for_conversion(daemon, &root, bad_count, RECORDS - bad_count, |r| {
        duckdb_rows(r).len()
    });
    // Every good record once, with its values; no bad one among the rows.
    let rows = duckdb_rows(&root);
    let mut ids = BTreeSet::new();
    for (id, name, amount, ts, tag) in &rows {
        let i = usize::try_from(*id).unwrap();
        assert!(ids.insert(i), "row {i} twice");
        assert!(!bad(i), "bad record {i} converted");
        assert_eq!(name, &format!("n{i}"));
        assert_eq!(amount, &format!("{i}.25"));
        let expected = jiff::Timestamp::from_millisecond(1_700_000_000_000 + i as i64).unwrap();
        assert_eq!(ts, &expected.strftime("%Y-%m-%d %H:%M:%S%.f").to_string());
        assert_eq!(tag, &format!("t{}", i % 3));
    }
    assert_eq!(ids.len(), RECORDS - bad_count);
    for (key, _) in object_files(&root, &format!("{STREAM}-")) {
        assert!(
            key.starts_with("errors/") || (key.starts_with("data/") && key.ends_with(".parquet")),
            "{key}"
        );
    }
    // Every bad record once in format-conversion-failed.
    let mut failed = BTreeSet::new();
    for f in error_lines(&root) {
        assert_eq!(f["ErrorCode"], "DataFormatConversion.MalformedData", "{f}");
        assert_eq!(f["dataCatalogTable"]["tableName"], "events");
        assert_eq!(f["dataCatalogTable"]["databaseName"], "lake");
        let raw = common::objects::raw_data(&f);
        let i = (0..RECORDS)
            .find(|i| record(*i).as_bytes() == raw.as_slice())
            .unwrap_or_else(|| panic!("unknown raw data {f}"));
        assert!(bad(i), "good record {i} failed: {f}");
        assert!(failed.insert(i), "record {i} failed twice");
    }
    assert_eq!(failed.len(), bad_count);
}

/// pyarrow's ORC reader over every ORC object: (id, name, amount as text, ts in nanoseconds,
/// tags[0]) rows, by id.
fn pyarrow_orc_rows(root: &Path) -> Vec<(i64, String, String, i64, String)> {
    let script = format!(
        "import glob, json, pyarrow as pa, pyarrow.orc as orc, pyarrow.compute as pc\n\
         rows = []\n\
         for p in glob.glob('{}/data/**/*.orc', recursive=True):\n\
         \x20   t = orc.read_table(p)\n\
         \x20   assert str(t.schema.field('ts').type) == 'timestamp[ns]', t.schema\n\
         \x20   ids = t.column('id').to_pylist(); names = t.column('name').to_pylist()\n\
         \x20   amounts = [str(a) for a in t.column('amount').to_pylist()]\n\
         \x20   ts = pc.cast(t.column('ts'), pa.int64()).to_pylist()\n\
         \x20   tags = [l[0] for l in t.column('tags').to_pylist()]\n\
         \x20   rows += list(zip(ids, names, amounts, ts, tags))\n\
         print(json.dumps(sorted(rows)))\n",
        root.display()
    );
    common::python_json("pyarrow.orc", &script)
}

/// OrcSerDe (SNAPPY, padding on) through boto3 and the daemon: every good record once in the
/// `.orc` objects, read by pyarrow; the bad ones once in `format-conversion-failed`.
#[test]
fn boto3_converts_json_to_orc_with_the_local_catalog() {
    const ORC_RECORDS: usize = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    LocalCatalog::new(data.join("catalog"))
        .put("lake", "events", &json!({ "Columns": columns() }))
        .unwrap();
    let cfg = tmp.path().join("hydrant.toml");
    std::fs::write(&cfg, DELIVERY).unwrap();
    let daemon = Daemon::start(&data, &["--config", cfg.to_str().unwrap()]);
    let mut config = stream_config();
    let orc_serde = json!({"Compression": "SNAPPY", "EnablePadding": true,
                           "StripeSizeBytes": 8_388_608, "FormatVersion": "V0_12"});
    config["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"] =
        json!({ "OrcSerDe": orc_serde });
    let records: Vec<String> = (0..ORC_RECORDS).map(record).collect();
    let plan = json!({
        "create": [{"name": STREAM, "member": "ExtendedS3DestinationConfiguration",
                    "config": config}],
        "put": [{"name": STREAM, "records": records}],
    });
    let out = common::run_destinations_py(&daemon.endpoint(), &plan, &tmp.path().join("boto3"));
    let described =
        &out["described"][STREAM]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(
        described["DataFormatConversionConfiguration"]["OutputFormatConfiguration"],
        json!({"Serializer": {"OrcSerDe": orc_serde}})
    );

    let root = data.join("objects/lake");
    let bad_count = (0..ORC_RECORDS).filter(|i| bad(*i)).count();
    wait_for_conversion(&daemon, &root, bad_count, ORC_RECORDS - bad_count, |r| {
        pyarrow_orc_rows(r).len()
    });
    let mut ids = BTreeSet::new();
    for (id, name, amount, ts, tag) in pyarrow_orc_rows(&root) {
        let i = usize::try_from(id).unwrap();
        assert!(ids.insert(i), "row {i} twice");
        assert!(!bad(i), "bad record {i} converted");
        assert_eq!(name, format!("n{i}"));
        assert_eq!(amount, format!("{i}.25"));
        assert_eq!(ts, (1_700_000_000_000 + i as i64) * 1_000_000);
        assert_eq!(tag, format!("t{}", i % 3));
    }
    assert_eq!(ids.len(), ORC_RECORDS - bad_count);
    for (key, _) in object_files(&root, &format!("{STREAM}-")) {
        assert!(
            key.starts_with("errors/") || (key.starts_with("data/") && key.ends_with(".orc")),
            "{key}"
        );
    }
    let failed: BTreeSet<usize> = error_lines(&root)
        .iter()
        .map(|f| {
            let raw = common::objects::raw_data(f);
            (0..ORC_RECORDS)
                .find(|i| record(*i).as_bytes() == raw.as_slice())
                .unwrap_or_else(|| panic!("unknown raw data {f}"))
        })
        .collect();
    assert_eq!(failed, (0..ORC_RECORDS).filter(|i| bad(*i)).collect());
}
