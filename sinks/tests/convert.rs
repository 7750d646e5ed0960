//! Record format conversion through the object sink, read back by readers hydrant did not write:
//! pyarrow and DuckDB (Python from `$HYDRANT_PYTHON`, else `<workspace>/.venv/bin/python`, with
//! `pip install pyarrow duckdb`; without them these tests fail, never skip).
//!
//! One table covers every Hive type (nested structs, arrays, maps, decimals, dates, binary),
//! nulls and missing keys, the timestamp formats, case-insensitive keys, dots to underscores and
//! a ColumnToJsonKeyMappings entry; records that do not convert come back failed with
//! Firehose's conversion-failure JSON.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use hydrant_sinks::convert::catalog::LocalCatalog;
use hydrant_sinks::convert::{Converter, DataCatalogTable, LocalTable, Settings};
use hydrant_sinks::partition::{KeysProduced, Limits, PartitionKeys};
use hydrant_sinks::{
    Batch, BatchIdentity, FailureDetail, LocalStore, ObjectSink, ObjectSinkConfig, Record, Sink,
};
use serde_json::{json, Value};

const ARRIVAL: u64 = 1_535_365_807_123; // 2018-08-27T10:30:07.123Z

fn python() -> PathBuf {
    let p = std::env::var_os("HYDRANT_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "no Python at {}: set HYDRANT_PYTHON to a venv with pyarrow and duckdb",
        p.display()
    );
    p
}

/// Runs `script` (which prints one JSON document) with `arg` as `sys.argv[1]`.
fn py(script: &str, arg: &Path) -> Value {
    let out = hydrant_tests::process::run_ok(
        Command::new(python()).arg("-c").arg(script).arg(arg),
        "python",
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

const COLUMNS: &[(&str, &str)] = &[
    ("id", "bigint"),
    ("name", "string"),
    ("small", "smallint"),
    ("tiny", "tinyint"),
    ("i", "int"),
    ("f", "float"),
    ("d", "double"),
    ("flag", "boolean"),
    ("price", "decimal(10,2)"),
    ("day", "date"),
    ("ts", "timestamp"),
    ("raw", "binary"),
    ("tags", "array<string>"),
    ("attrs", "map<string,int>"),
    (
        "geo",
        "struct<city:string,zip:int,loc:struct<lat:double,lon:double>>",
    ),
    ("user_id", "bigint"),
    ("event_time", "timestamp"),
];

fn catalog(dir: &Path) -> LocalCatalog {
    let catalog = LocalCatalog::new(dir.join("catalog"));
    let columns: Vec<Value> = COLUMNS
        .iter()
        .map(|(n, t)| json!({"Name": n, "Type": t}))
        .collect();
    catalog
        .put("lake", "events", &json!({"Columns": columns}))
        .unwrap();
    catalog
}

fn settings_as(extra_deserializer: Value, serializer: Value) -> Settings {
    Settings::from_firehose(&json!({
        "SchemaConfiguration": {"DatabaseName": "lake", "TableName": "events",
                                "Region": "eu-west-1", "CatalogId": "123456789012"},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": extra_deserializer}},
        "OutputFormatConfiguration": {"Serializer": serializer}
    }))
    .unwrap()
    .unwrap()
}

fn converting_sink(dir: &Path, config: ObjectSinkConfig) -> ObjectSink {
    converting_sink_as(
        dir,
        config,
        json!({"ParquetSerDe": {"Compression": "SNAPPY"}}),
    )
}

/// The sink of the `lake.events` table converting with `serializer`, objects ending in the
/// serializer's extension.
fn converting_sink_as(dir: &Path, config: ObjectSinkConfig, serializer: Value) -> ObjectSink {
    let settings = settings_as(
        json!({
            "ConvertDotsInJsonKeysToUnderscores": true,
            "ColumnToJsonKeyMappings": {"event_time": "eventTime"}
        }),
        serializer,
    );
    let extension = settings.output.extension().to_string();
    let table = DataCatalogTable::new(&settings, "000000000000", "us-east-1");
    let converter = Converter::new(
        settings,
        table,
        Arc::new(LocalTable {
            catalog: catalog(dir),
            database: "lake".into(),
            table: "events".into(),
        }),
    );
    let store = LocalStore::for_bucket(&dir.join("objects"), "bucket").unwrap();
    ObjectSink::new(Arc::new(store), config).with_conversion(converter, extension)
}

/// The local catalog under `dir` with the table `lake.<table>` described by `descriptor`.
fn lake_table(dir: &Path, table: &str, descriptor: Value) -> LocalCatalog {
    let catalog = LocalCatalog::new(dir.join("catalog"));
    catalog.put("lake", table, &descriptor).unwrap();
    catalog
}

/// An unpartitioned sink into the local store at `objects` that converts to Parquet with
/// `parquet_serde` (the ParquetSerDe member), table `lake.<table>` of `catalog`.
fn parquet_sink(
    catalog: LocalCatalog,
    table: &str,
    parquet_serde: Value,
    objects: &Path,
) -> ObjectSink {
    serializer_sink(
        catalog,
        table,
        json!({ "ParquetSerDe": parquet_serde }),
        objects,
    )
}

/// An unpartitioned sink into the local store at `objects` that converts with `serializer`
/// (`{"ParquetSerDe": ...}` or `{"OrcSerDe": ...}`), table `lake.<table>` of `catalog`.
fn serializer_sink(
    catalog: LocalCatalog,
    table: &str,
    serializer: Value,
    objects: &Path,
) -> ObjectSink {
    let settings = Settings::from_firehose(&json!({
        "SchemaConfiguration": {"DatabaseName": "lake", "TableName": table},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer}
    }))
    .unwrap()
    .unwrap();
    let extension = settings.output.extension().to_string();
    let named = DataCatalogTable::new(&settings, "000000000000", "us-east-1");
    let converter = Converter::new(
        settings,
        named,
        Arc::new(LocalTable {
            catalog,
            database: "lake".into(),
            table: table.into(),
        }),
    );
    let store = LocalStore::for_bucket(objects, "bucket").unwrap();
    ObjectSink::new(
        Arc::new(store),
        ObjectSinkConfig::from_firehose(None, None, None, None).unwrap(),
    )
    .with_conversion(converter, extension)
}

fn batch(records: &[&str]) -> Batch {
    Batch {
        identity: BatchIdentity {
            stream: "s".into(),
            incarnation: "inc".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 100,
            last_lsn: 100 + records.len() as u64 - 1,
        },
        stream_version: 1,
        oldest_arrival_ms: ARRIVAL,
        records: records
            .iter()
            .zip(100..)
            .map(|(data, lsn)| Record {
                lsn,
                sub: 0,
                arrival_ms: ARRIVAL,
                data: Bytes::copy_from_slice(data.as_bytes()),
            })
            .collect(),
        contiguous: None,
        partition_keys: Vec::new(),
    }
}

const GOOD: &[&str] = &[
    // Every column, keys in other cases, a dotted key, a mapped key, a key not in the schema.
    r#"{"ID": 1, "Name": "alpha", "small": -300, "tiny": 7, "i": 123456, "f": 1.5, "d": 2.25,
        "flag": true, "price": "12.345", "day": "2018-08-27", "ts": 1535365807123, "raw": "bin",
        "tags": ["a", "b"], "attrs": {"x": 1, "y": 2},
        "geo": {"City": "Oslo", "zip": "150", "loc": {"lat": 59.5, "lon": 10.75}},
        "User.Id": 42, "eventTime": "2018-08-27T10:30:07.123Z", "extra": "dropped"}"#,
    // Nulls, empty containers, missing keys; a Hive-style timestamp; numbers as strings.
    r#"{"id": "2", "name": null, "tags": [], "attrs": {}, "geo": null,
        "ts": "2018-08-27 10:30:07", "flag": "FALSE", "price": 7, "d": "0.5"}"#,
    // Two concatenated objects: two rows. Epoch seconds, fractional seconds, an ISO offset.
    r#"{"id": 3, "ts": 1535365807, "geo": {"loc": null}, "event_time": "ignored"}
       {"id": 4, "ts": "1535365807.5", "tags": [null, "c"], "eventTime": "2018-08-27T12:30:07+02:00"}"#,
];

const BAD: &[&str] = &[
    r#"{"id": "x"}"#,
    r#"{"id": 5"#,
    r#"[{"id": 6}]"#,
    r#"{"id": 7, "tiny": 300}"#,
    r#"{"id": 8, "tags": "not-an-array"}"#,
    r#"{"id": 9, "day": "someday"}"#,
];

const READ_PYARROW: &str = r#"
import json, sys, pyarrow as pa, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
def type_name(t):
    # pyarrow prints a map's Parquet group name beside it; the types are what matter here.
    if pa.types.is_map(t): return f"map<{t.key_type}, {t.item_type}>"
    return str(t)
meta = pq.ParquetFile(sys.argv[1]).metadata
def plain(v):
    if isinstance(v, bytes): return v.decode()
    if isinstance(v, list): return [plain(x) for x in v]
    if isinstance(v, tuple): return [plain(x) for x in v]
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)): return v
    return str(v)
print(json.dumps({
    "types": {f.name: type_name(f.type) for f in t.schema},
    "rows": [plain(r) for r in t.to_pylist()],
    "codec": meta.row_group(0).column(0).compression,
}))
"#;

const READ_DUCKDB: &str = r#"
import json, sys, duckdb
q = f"select count(*), sum(id), max(price)::varchar, max(ts)::varchar, \
      max(geo.loc.lat), sum(len(tags)), max(attrs['y']), max(event_time)::varchar \
      from read_parquet('{sys.argv[1]}')"
print(json.dumps(list(duckdb.sql(q).fetchall()[0])))
"#;

const READ_ORC: &str = r#"
import json, sys, pyarrow as pa, pyarrow.orc as orc
f = orc.ORCFile(sys.argv[1])
t = f.read()
def type_name(t):
    if pa.types.is_map(t): return f"map<{t.key_type}, {t.item_type}>"
    return str(t)
def plain(v):
    if isinstance(v, bytes): return v.decode()
    if isinstance(v, list): return [plain(x) for x in v]
    if isinstance(v, tuple): return [plain(x) for x in v]
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)): return v
    return str(v)
print(json.dumps({
    "types": {f.name: type_name(f.type) for f in t.schema},
    "rows": [plain(r) for r in t.to_pylist()],
    "codec": f.compression, "version": str(f.file_version),
}))
"#;

/// The same records as ORC (`OrcSerDe`, ZLIB, format 0.11), read back by pyarrow's ORC reader.
#[tokio::test]
async fn every_hive_type_reads_back_as_orc() {
    let dir = tempfile::tempdir().unwrap();
    let sink = converting_sink_as(
        dir.path(),
        ObjectSinkConfig::from_firehose(Some("p/"), None, None, None).unwrap(),
        json!({"OrcSerDe": {"Compression": "ZLIB", "FormatVersion": "V0_11"}}),
    );
    let mut records: Vec<&str> = GOOD.to_vec();
    records.extend(BAD);
    let b = batch(&records);
    let delivered = sink.deliver(&b).await.unwrap();
    assert!(delivered.target.ends_with(".orc"), "{}", delivered.target);
    assert_eq!(delivered.records, GOOD.len() as u64);
    assert_eq!(delivered.failed.len(), BAD.len());
    let path = dir.path().join("objects/bucket").join(&delivered.target);

    let read = py(READ_ORC, &path);
    assert_eq!(read["codec"], "ZLIB");
    assert_eq!(read["version"], "0.11");
    assert_eq!(
        read["types"],
        json!({
            "id": "int64", "name": "string", "small": "int16", "tiny": "int8", "i": "int32",
            "f": "float", "d": "double", "flag": "bool", "price": "decimal128(10, 2)",
            "day": "date32[day]", "ts": "timestamp[ns]", "raw": "binary",
            "tags": "list<item: string>", "attrs": "map<string, int32>",
            "geo": "struct<city: string, zip: int32, loc: struct<lat: double, lon: double>>",
            "user_id": "int64", "event_time": "timestamp[ns]"
        })
    );
    let rows = read["rows"].as_array().unwrap();
    assert_good_rows(rows);
}

/// The rows of [`GOOD`] as pyarrow reads them back from either format (Parquet or ORC).
fn assert_good_rows(rows: &[Value]) {
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        rows[0],
        json!({
            "id": 1, "name": "alpha", "small": -300, "tiny": 7, "i": 123456, "f": 1.5,
            "d": 2.25, "flag": true, "price": "12.35", "day": "2018-08-27",
            "ts": "2018-08-27 10:30:07.123000", "raw": "bin", "tags": ["a", "b"],
            "attrs": [["x", 1], ["y", 2]],
            "geo": {"city": "Oslo", "zip": 150, "loc": {"lat": 59.5, "lon": 10.75}},
            "user_id": 42, "event_time": "2018-08-27 10:30:07.123000"
        })
    );
    assert_eq!(
        rows[1],
        json!({
            "id": 2, "name": null, "small": null, "tiny": null, "i": null, "f": null,
            "d": 0.5, "flag": false, "price": "7.00", "day": null,
            "ts": "2018-08-27 10:30:07", "raw": null, "tags": [], "attrs": [],
            "geo": null, "user_id": null, "event_time": null
        })
    );
    assert_eq!(rows[2]["id"], 3);
    assert_eq!(
        rows[2]["geo"],
        json!({"city": null, "zip": null, "loc": null})
    );
    assert_eq!(rows[3]["ts"], "2018-08-27 10:30:07.500000");
    assert_eq!(rows[3]["tags"], json!([null, "c"]));
    assert_eq!(rows[3]["event_time"], "2018-08-27 10:30:07");
}

#[tokio::test]
async fn every_hive_type_reads_back_in_pyarrow_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let sink = converting_sink(
        dir.path(),
        ObjectSinkConfig::from_firehose(Some("p/"), None, None, None).unwrap(),
    );
    let mut records: Vec<&str> = GOOD.to_vec();
    records.extend(BAD);
    let b = batch(&records);
    let delivered = sink.deliver(&b).await.unwrap();
    assert!(
        delivered.target.ends_with(".parquet"),
        "{}",
        delivered.target
    );
    assert_eq!(delivered.records, GOOD.len() as u64);
    assert_eq!(delivered.failed.len(), BAD.len());
    let path = dir.path().join("objects/bucket").join(&delivered.target);

    let read = py(READ_PYARROW, &path);
    let expected_types = json!({
        "id": "int64", "name": "string", "small": "int16", "tiny": "int8", "i": "int32",
        "f": "float", "d": "double", "flag": "bool", "price": "decimal128(10, 2)",
        "day": "date32[day]", "ts": "timestamp[us]", "raw": "binary",
        "tags": "list<element: string>", "attrs": "map<string, int32>",
        "geo": "struct<city: string, zip: int32, loc: struct<lat: double, lon: double>>",
        "user_id": "int64", "event_time": "timestamp[us]"
    });
    assert_eq!(read["types"], expected_types);
    assert_eq!(read["codec"], "SNAPPY");
    let rows = read["rows"].as_array().unwrap();
    assert_good_rows(rows);
    assert_eq!(rows[2]["ts"], "2018-08-27 10:30:07");
    // "event_time" is mapped from "eventTime": its own name is not read.
    assert_eq!(rows[2]["event_time"], Value::Null);

    let duck = py(READ_DUCKDB, &path);
    assert_eq!(
        duck,
        json!([
            4,
            10,
            "12.35",
            "2018-08-27 10:30:07.5",
            59.5,
            4,
            2,
            "2018-08-27 10:30:07.123"
        ])
    );

    // The failures: Firehose's conversion-failure JSON, each naming its reason.
    for (f, raw) in delivered.failed.iter().zip(BAD) {
        assert_eq!(&f.raw_data[..], raw.as_bytes());
        assert!(matches!(f.detail, FailureDetail::FormatConversion { .. }));
    }
    let messages: Vec<&str> = delivered
        .failed
        .iter()
        .map(|f| f.error_message.as_str())
        .collect();
    assert!(messages[0].contains("column id"), "{messages:?}");
    assert!(messages[1].contains("malformed JSON"), "{messages:?}");
    assert!(messages[2].contains("array"), "{messages:?}");
    assert!(messages[3].contains("column tiny"), "{messages:?}");
    let filed = sink
        .put_error_output(&b.identity, 1, ARRIVAL, &delivered.failed)
        .await
        .unwrap();
    assert_eq!(filed.len(), 1);
    assert!(
        filed[0]
            .target
            .starts_with("p/format-conversion-failed/2018/08/27/10/"),
        "{}",
        filed[0].target
    );
    let body = sink.store().get_object(&filed[0].target).await.unwrap();
    let line = body.split(|b| *b == b'\n').next().unwrap();
    let first: Value = serde_json::from_slice(line).unwrap();
    // The members in Firehose's order, as written.
    let text = String::from_utf8(line.to_vec()).unwrap();
    let mut keys: Vec<(usize, &str)> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.as_str()))
        .collect();
    keys.sort();
    let keys: Vec<&str> = keys.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        keys,
        [
            "attemptsMade",
            "arrivalTimestamp",
            "ErrorCode",
            "ErrorMessage",
            "attemptEndingTimestamp",
            "rawData",
            "sequenceNumber",
            "subSequenceNumber",
            "dataCatalogTable"
        ]
    );
    assert_eq!(first["ErrorCode"], "DataFormatConversion.MalformedData");
    assert_eq!(first["sequenceNumber"], "103");
    assert_eq!(first["rawData"], "eyJpZCI6ICJ4In0=");
    assert_eq!(
        first["dataCatalogTable"],
        json!({"catalogId": "123456789012", "databaseName": "lake", "tableName": "events",
               "region": "eu-west-1", "versionId": "LATEST",
               "catalogArn": "arn:aws:glue:eu-west-1:123456789012:catalog"})
    );

    // A resend of the batch writes the same key with the same rows.
    let again = sink.deliver(&b).await.unwrap();
    assert_eq!(again.target, delivered.target);
    assert_eq!(py(READ_PYARROW, &path)["rows"], read["rows"]);
    assert_eq!(sink.store().list_keys("p/2018").await.unwrap().len(), 1);
}

/// A batch of several ranges is read on several threads and written in record order: the rows
/// pyarrow reads are the good records in order, and the failures are the bad ones in order,
/// from every range (some ranges end on a bad record, one range is only a bad record).
#[tokio::test]
async fn a_batch_of_many_ranges_keeps_record_order() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = lake_table(
        dir.path(),
        "ordered",
        json!({"Columns": [{"Name": "n", "Type": "bigint"}, {"Name": "s", "Type": "string"}]}),
    );
    let range = hydrant_sinks::convert::RECORDS_PER_RANGE as u64;
    let count = 5 * range + 1;
    let bad = |n: u64| n.is_multiple_of(997) || n % range == range - 1 || n == count - 1;
    let texts: Vec<String> = (0..count)
        .map(|n| {
            if bad(n) {
                format!("{{\"n\": \"not a number {n}\"}}")
            } else {
                json!({"n": n, "s": format!("row {n}")}).to_string()
            }
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let sink = parquet_sink(catalog, "ordered", json!({}), &dir.path().join("objects"));
    let delivered = sink.deliver(&batch(&refs)).await.unwrap();
    let bad_ones: Vec<u64> = (0..count).filter(|&n| bad(n)).collect();
    let good: Vec<u64> = (0..count).filter(|&n| !bad(n)).collect();
    assert_eq!(delivered.records, good.len() as u64);
    let failed_lsns: Vec<u64> = delivered
        .failed
        .iter()
        .map(|f| match &f.detail {
            FailureDetail::FormatConversion {
                sequence_number, ..
            } => sequence_number.parse::<u64>().unwrap() - 100,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(failed_lsns, bad_ones);
    let path = dir.path().join("objects/bucket").join(&delivered.target);
    let got = py(
        r#"
import json, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"n": t.column("n").to_pylist(), "s": t.column("s").to_pylist()[:3]}))
"#,
        &path,
    );
    assert_eq!(got["n"], json!(good));
    assert_eq!(got["s"], json!(["row 1", "row 2", "row 3"]));
}

#[tokio::test]
async fn a_batch_of_only_bad_records_writes_no_object() {
    let dir = tempfile::tempdir().unwrap();
    let sink = converting_sink(
        dir.path(),
        ObjectSinkConfig::from_firehose(None, None, None, None).unwrap(),
    );
    let delivered = sink.deliver(&batch(BAD)).await.unwrap();
    assert_eq!((delivered.records, delivered.wire_bytes), (0, 0));
    assert_eq!(delivered.failed.len(), BAD.len());
    assert!(sink.store().list_keys("").await.unwrap().is_empty());
}

#[tokio::test]
async fn partitions_get_one_parquet_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let config = ObjectSinkConfig::partitioned(
        Some("k=!{partitionKeyFromQuery:k}/"),
        Some("e/!{firehose:error-output-type}/"),
        None,
        None,
        &KeysProduced {
            query: vec!["k".into()],
            lambda: false,
        },
        Limits { max_active: 10 },
    )
    .unwrap();
    let sink = converting_sink(dir.path(), config);
    let mut b = batch(&[
        r#"{"id": 1}"#,
        r#"{"id": 2}"#,
        r#"{"id": "bad"}"#,
        r#"{"id": 4}"#,
    ]);
    b.partition_keys = ["a", "b", "a", "a"]
        .iter()
        .map(|k| {
            Arc::new(PartitionKeys {
                query: vec![("k".into(), (*k).into())],
                lambda: Vec::new(),
            })
        })
        .collect();
    let delivered = sink.deliver(&b).await.unwrap();
    assert_eq!((delivered.records, delivered.failed.len()), (3, 1));
    let mut keys = sink.store().list_keys("").await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ids = |key: &str| {
        let read = py(READ_PYARROW, &dir.path().join("objects/bucket").join(key));
        read["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(keys[0].starts_with("k=a/") && keys[0].ends_with(".parquet"));
    assert_eq!(ids(&keys[0]), vec![1, 4]);
    assert_eq!(ids(&keys[1]), vec![2]);
}

const READ_META: &str = r#"
import json, sys, pyarrow.parquet as pq
meta = pq.ParquetFile(sys.argv[1]).metadata
c = meta.row_group(0).column(0)
print(json.dumps({"codec": c.compression, "encodings": list(c.encodings),
                  "dictionary": c.has_dictionary_page, "version": meta.format_version,
                  "rows": meta.num_rows}))
"#;

/// Data pages of the first column chunk, counted by the parquet crate's own reader.
fn data_pages(path: &Path) -> usize {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let row_group = reader.get_row_group(0).unwrap();
    let pages = row_group.get_column_page_reader(0).unwrap();
    pages
        .map(|p| p.unwrap())
        .filter(|p| !matches!(p.page_type(), parquet::basic::PageType::DICTIONARY_PAGE))
        .count()
}

#[tokio::test]
async fn parquet_serde_settings_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = lake_table(
        dir.path(),
        "text",
        json!({"Columns": [{"Name": "s", "Type": "string"}]}),
    );
    // 20,000 rows of 59 bytes among 100 values: about 1.2 MB in the column, plain, and a
    // dictionary that pays.
    let records: Vec<String> = (0..20_000)
        .map(|i| json!({"s": format!("{:08}-{}", i % 100, "x".repeat(50))}).to_string())
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let b = batch(&refs);
    for (n, (serde, codec, dictionary, v2, page)) in [
        (json!({}), "SNAPPY", true, false, 1 << 20),
        (
            json!({"Compression": "UNCOMPRESSED", "EnableDictionaryCompression": false,
                   "PageSizeBytes": 65536, "WriterVersion": "V2"}),
            "UNCOMPRESSED",
            false,
            true,
            65536,
        ),
        (
            json!({"Compression": "GZIP", "WriterVersion": "V1", "BlockSizeBytes": 67108864}),
            "GZIP",
            true,
            false,
            1 << 20,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let sink = parquet_sink(
            catalog.clone(),
            "text",
            serde,
            &dir.path().join(format!("objects{n}")),
        );
        let delivered = sink.deliver(&b).await.unwrap();
        let path = dir
            .path()
            .join(format!("objects{n}/bucket"))
            .join(&delivered.target);
        let meta = py(READ_META, &path);
        assert_eq!(meta["rows"], 20_000);
        assert_eq!(meta["codec"], codec, "{meta}");
        assert_eq!(meta["dictionary"], dictionary, "{meta}");
        let encodings = meta["encodings"].to_string();
        assert_eq!(encodings.contains("DICTIONARY"), dictionary, "{meta}");
        assert_eq!(meta["version"] != "1.0", v2, "{meta}");
        let pages = data_pages(&path);
        if page == 65536 {
            assert!(pages >= 10, "{pages} pages of 64 KiB for ~1.2 MB");
        } else {
            assert!(pages <= 3, "{pages} pages of 1 MiB");
        }
    }
}

const READ_ENCODINGS: &str = r#"
import json, sys, pyarrow.parquet as pq
meta = pq.ParquetFile(sys.argv[1]).metadata
g = meta.row_group(0)
print(json.dumps({g.column(i).path_in_schema: {"encodings": list(g.column(i).encodings),
                                                "dictionary": g.column(i).has_dictionary_page}
                  for i in range(g.num_columns)}))
"#;

/// With `EnableDictionaryCompression` on (the default), a column whose dictionary would be as
/// large as its values (a unique id, a timestamp, a measured double) is written plain, as
/// parquet-mr falls back, and the columns of repeated values keep their dictionaries; pyarrow
/// reports each column chunk's encodings, and reads every value back.
#[tokio::test]
async fn columns_whose_dictionary_does_not_pay_are_written_plain() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = lake_table(
        dir.path(),
        "access",
        json!({"Columns": [
            {"Name": "request_id", "Type": "string"}, {"Name": "agent", "Type": "string"},
            {"Name": "ts", "Type": "timestamp"}, {"Name": "status", "Type": "int"},
            {"Name": "latency", "Type": "double"}]}),
    );
    let records: Vec<String> = (0..20_000u64)
        .map(|i| {
            let agent = ["curl/8.5.0", "okhttp/4.12.0", "Mozilla/5.0 (X11)"][(i % 3) as usize];
            let status = [200, 200, 404, 500][(i % 4) as usize];
            json!({"request_id": format!("4f1c{:08x}-{i:012x}", i * 2_654_435_761 % 4_294_967_291),
                   "agent": agent, "ts": 1_767_225_600_000 + i * 3, "status": status,
                   "latency": (i * 7919 % 250_000) as f64 / 1000.0 + 0.4})
            .to_string()
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let sink = parquet_sink(catalog, "access", json!({}), &dir.path().join("objects"));
    let delivered = sink.deliver(&batch(&refs)).await.unwrap();
    assert_eq!(delivered.records, 20_000);
    let path = dir.path().join("objects/bucket").join(&delivered.target);
    let meta = py(READ_ENCODINGS, &path);
    for (column, dictionary) in [
        ("request_id", false),
        ("agent", true),
        ("ts", false),
        ("status", true),
        ("latency", false),
    ] {
        assert_eq!(meta[column]["dictionary"], dictionary, "{column}: {meta}");
        let encodings = meta[column]["encodings"].to_string();
        assert_eq!(
            encodings.contains("DICTIONARY"),
            dictionary,
            "{column}: {meta}"
        );
    }
    let got = py(
        r#"
import json, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"rows": t.num_rows, "ids": len(set(t.column("request_id").to_pylist())),
                  "agents": sorted(set(t.column("agent").to_pylist())),
                  "status": sum(t.column("status").to_pylist())}))
"#,
        &path,
    );
    assert_eq!(got["rows"], 20_000);
    assert_eq!(got["ids"], 20_000);
    assert_eq!(
        got["agents"],
        json!(["Mozilla/5.0 (X11)", "curl/8.5.0", "okhttp/4.12.0"])
    );
    assert_eq!(got["status"], 5_000 * (200 + 200 + 404 + 500));
}

const READ_ORC_META: &str = r#"
import json, sys, pyarrow.orc as orc
f = orc.ORCFile(sys.argv[1])
t = f.read()
s = t.column("s").to_pylist()
print(json.dumps({
    "rows": f.nrows, "stripes": f.nstripes, "codec": f.compression,
    "version": str(f.file_version), "distinct": len(set(s)),
    "first": s[0], "last": s[-1], "levels": sorted(set(t.column("level").to_pylist()))}))
"#;

/// OrcSerDe's members reach the file through the sink: Compression and FormatVersion as
/// pyarrow reports them, StripeSizeBytes as the stripe count (about 10 MB of strings: one
/// default 64 MiB stripe, or two of 8 MiB), DictionaryKeyThreshold as the size of a column of
/// four distinct values (uncompressed: 5 bytes a row DIRECT, a few bits in a dictionary).
#[tokio::test]
async fn orc_serde_settings_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = lake_table(
        dir.path(),
        "text",
        json!({"Columns": [{"Name": "s", "Type": "string"}, {"Name": "level", "Type": "string"}]}),
    );
    let levels = ["debug", "error", "info_", "warn_"];
    let records: Vec<String> = (0..150_000)
        .map(|i| {
            json!({"s": format!("{i:08}-{}", "x".repeat(60)), "level": levels[i % 4]}).to_string()
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let b = batch(&refs);
    let mut sizes = Vec::new();
    for (n, (serde, codec, version, stripes)) in [
        (json!({}), "SNAPPY", "0.12", 1),
        (
            json!({"Compression": "ZLIB", "FormatVersion": "V0_11", "StripeSizeBytes": 8_388_608}),
            "ZLIB",
            "0.11",
            2,
        ),
        (
            json!({"Compression": "NONE", "DictionaryKeyThreshold": 0}),
            "UNCOMPRESSED",
            "0.12",
            1,
        ),
        (
            json!({"Compression": "NONE", "DictionaryKeyThreshold": 0.8, "EnablePadding": true,
                   "BlockSizeBytes": 67_108_864, "PaddingTolerance": 0.05}),
            "UNCOMPRESSED",
            "0.12",
            1,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let sink = serializer_sink(
            catalog.clone(),
            "text",
            json!({ "OrcSerDe": serde }),
            &dir.path().join(format!("objects{n}")),
        );
        let delivered = sink.deliver(&b).await.unwrap();
        assert!(delivered.target.ends_with(".orc"), "{}", delivered.target);
        let path = dir
            .path()
            .join(format!("objects{n}/bucket"))
            .join(&delivered.target);
        let meta = py(READ_ORC_META, &path);
        assert_eq!(meta["rows"], 150_000, "{meta}");
        assert_eq!(meta["distinct"], 150_000, "{meta}");
        assert_eq!(meta["first"], format!("00000000-{}", "x".repeat(60)));
        assert_eq!(meta["last"], format!("00149999-{}", "x".repeat(60)));
        assert_eq!(meta["levels"], json!(levels));
        assert_eq!(meta["codec"], codec, "{meta}");
        assert_eq!(meta["version"], version, "{meta}");
        assert_eq!(meta["stripes"], stripes, "{meta}");
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    // 150,000 rows of 5 bytes DIRECT, against a run-length-encoded index into 4 values.
    assert!(
        sizes[3] + 600_000 < sizes[2],
        "dictionary {} bytes, direct {} bytes",
        sizes[3],
        sizes[2]
    );
}

const READ_ROW_GROUPS: &str = r#"
import json, sys, duckdb, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
meta = f.metadata
t = f.read()
n = t.column("n").to_pylist()
duck = duckdb.sql(f"select count(*), count(distinct n), sum(n), sum(length(s)) \
                    from read_parquet('{sys.argv[1]}')").fetchall()[0]
print(json.dumps({
    "row_groups": meta.num_row_groups,
    "group_rows": [meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
    "group_bytes": [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)],
    "pyarrow_rows": t.num_rows, "pyarrow_n_sum": sum(n), "pyarrow_distinct": len(set(n)),
    "duckdb": list(duck)}))
"#;

/// A batch of more than `BlockSizeBytes` (its smallest value, 64 MiB, as the API takes it) is
/// written as several row groups, and both readers find every row.
#[tokio::test]
async fn a_batch_larger_than_block_size_writes_several_row_groups() {
    const RECORDS: u64 = 80_000;
    const TEXT: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let catalog = lake_table(
        dir.path(),
        "blobs",
        json!({"Columns": [{"Name": "n", "Type": "bigint"}, {"Name": "s", "Type": "string"}]}),
    );
    // Hex text from a 64-bit generator: SNAPPY and dictionaries gain nothing on it, so the
    // encoded column is about as large as the text (~80 MB, more than one 64 MiB row group).
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let records: Vec<Record> = (0..RECORDS)
        .map(|n| {
            let mut s = String::with_capacity(TEXT);
            while s.len() < TEXT {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(&format!("{x:016x}"));
            }
            s.truncate(TEXT);
            Record {
                lsn: n + 1,
                sub: 0,
                arrival_ms: ARRIVAL,
                data: Bytes::from(json!({"n": n, "s": s}).to_string()),
            }
        })
        .collect();
    let b = Batch {
        identity: BatchIdentity {
            stream: "s".into(),
            incarnation: "inc".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 1,
            last_lsn: RECORDS,
        },
        stream_version: 1,
        oldest_arrival_ms: ARRIVAL,
        records,
        contiguous: None,
        partition_keys: Vec::new(),
    };
    let sink = parquet_sink(
        catalog,
        "blobs",
        json!({"BlockSizeBytes": 67_108_864}),
        &dir.path().join("objects"),
    );
    let delivered = sink.deliver(&b).await.unwrap();
    assert!(delivered.failed.is_empty());
    assert_eq!(delivered.records, RECORDS);
    let path = dir.path().join("objects/bucket").join(&delivered.target);
    let got = py(READ_ROW_GROUPS, &path);
    let groups = got["row_groups"].as_u64().unwrap();
    assert!(groups >= 2, "one 64 MiB row group for ~80 MB: {got}");
    let rows: Vec<u64> = got["group_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(rows.iter().sum::<u64>(), RECORDS, "{got}");
    // No row group but the last is cut before BlockSizeBytes (the writer's cut is by its
    // estimate of the encoded size, so allow it 10 % under the limit).
    for bytes in &got["group_bytes"].as_array().unwrap()[..rows.len() - 1] {
        let bytes = bytes.as_u64().unwrap();
        assert!((60_000_000..=72_000_000).contains(&bytes), "{got}");
    }
    let sum = RECORDS * (RECORDS - 1) / 2;
    assert_eq!(got["pyarrow_rows"], RECORDS);
    assert_eq!(got["pyarrow_distinct"], RECORDS);
    assert_eq!(got["pyarrow_n_sum"], sum);
    assert_eq!(
        got["duckdb"],
        json!([RECORDS, RECORDS, sum, RECORDS * TEXT as u64])
    );
}
