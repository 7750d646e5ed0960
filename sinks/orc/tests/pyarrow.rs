//! ORC files of this writer read back by a reader hydrant did not write: pyarrow's ORC reader
//! (Apache ORC's C++ library), Python from `$HYDRANT_PYTHON`, else `<workspace>/.venv/bin/python`
//! (`pip install pyarrow`; without it these tests fail, never skip).
//!
//! One schema covers every type hydrant's Hive mapping writes (boolean, the integers, float,
//! double, string, binary, date, timestamp, decimals, list, map, struct nested in struct and in
//! list), nulls at every level, each codec, both format versions, one stripe and many.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListBuilder, MapBuilder,
    StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use hydrant_orc::{Compression, FormatVersion, OrcFile, OrcOptions, Padding};
use serde_json::{json, Value};

fn python() -> PathBuf {
    let p = std::env::var_os("HYDRANT_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "no Python at {}: set HYDRANT_PYTHON to a venv with pyarrow",
        p.display()
    );
    p
}

/// Reads an ORC file with pyarrow: its facts, its column types and its rows as JSON
/// (timestamps as nanoseconds since the epoch, dates as days, decimals as text, binary as
/// lists of bytes, maps as lists of [key, value]).
const READ: &str = r#"
import json, sys, decimal
import pyarrow as pa, pyarrow.orc as orc, pyarrow.compute as pc
f = orc.ORCFile(sys.argv[1])
t = f.read()
def plain(v):
    if isinstance(v, decimal.Decimal): return str(v)
    if isinstance(v, bytes): return list(v)
    if isinstance(v, list): return [plain(x) for x in v]
    if isinstance(v, tuple): return [plain(x) for x in v]
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    return v
cols = {}
for field, col in zip(t.schema, t.columns):
    if pa.types.is_timestamp(field.type): col = pc.cast(col, pa.int64())
    elif pa.types.is_date32(field.type): col = pc.cast(col, pa.int32())
    cols[field.name] = [plain(v) for v in col.to_pylist()]
print(json.dumps({
    "rows": f.nrows, "stripes": f.nstripes, "compression": f.compression,
    "version": str(f.file_version), "row_index_stride": f.row_index_stride,
    "types": {field.name: str(field.type) for field in t.schema},
    "columns": cols,
}))
"#;

fn read(path: &Path) -> Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(READ)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyarrow failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn inner_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("zip", DataType::Int32, true),
    ])
}

fn point_fields() -> Fields {
    Fields::from(vec![Field::new("x", DataType::Int32, true)])
}

fn map_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int32, true),
            ])),
            false,
        )),
        false,
    )
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("flag", DataType::Boolean, true),
        Field::new("tiny", DataType::Int8, true),
        Field::new("small", DataType::Int16, true),
        Field::new("i", DataType::Int32, true),
        Field::new("id", DataType::Int64, true),
        Field::new("f", DataType::Float32, true),
        Field::new("d", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("raw", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("big", DataType::Decimal128(38, 6), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
        Field::new("attrs", map_type(), true),
        Field::new(
            "geo",
            DataType::Struct(Fields::from(vec![
                Field::new("inner", DataType::Struct(inner_struct_fields()), true),
                Field::new(
                    "points",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(point_fields()),
                        true,
                    ))),
                    true,
                ),
            ])),
            true,
        ),
        Field::new("level", DataType::Utf8, true),
    ]))
}

/// Row `r`'s value of each column, `None` for null: the expected JSON, as the reader script
/// renders it.
fn expected(r: i64) -> Vec<Value> {
    let null_if = |k: i64, v: Value| if r % k == 3 { Value::Null } else { v };
    let ts_micros = (r - 500) * 1_234_567_891 + r % 7; // before and after 1970 and 2015
    let price = (r - 40) * 12_345 % 10_000_000;
    let big: i128 = (i128::from(r) - 100) * 10_i128.pow(30) + i128::from(r);
    let decimal = |v: i128, scale: u32| {
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        let p = 10_u128.pow(scale);
        format!("{sign}{}.{:0w$}", a / p, a % p, w = scale as usize)
    };
    vec![
        null_if(5, json!(r % 3 == 0)),
        null_if(6, json!((r % 256 - 128) as i8)),
        null_if(7, json!((r * 37 % 65_536 - 32_768) as i16)),
        null_if(8, json!((r * 1_000_003) as i32)),
        null_if(
            9,
            json!(if r % 11 == 0 {
                i64::MIN + r
            } else {
                r * 1_000_000_007
            }),
        ),
        null_if(10, json!(r as f32 * 0.5 - 3.0)),
        // Exact in binary (serde_json parses decimal text only to within an ulp).
        null_if(11, json!(r as f64 / 8.0 - 1e12)),
        null_if(
            12,
            json!(format!("name-{r}-é{}", "x".repeat((r % 17) as usize))),
        ),
        null_if(
            13,
            json!((0..(r % 5)).map(|b| (b * 51 + r) % 256).collect::<Vec<_>>()),
        ),
        null_if(14, json!(r * 97 - 20_000)),
        null_if(15, json!(i128::from(ts_micros) * 1000)),
        null_if(16, json!(decimal(i128::from(price), 2))),
        null_if(17, json!(decimal(big, 6))),
        null_if(
            18,
            json!((0..(r % 4))
                .map(|k| if k == 2 {
                    Value::Null
                } else {
                    json!(r * 10 + k)
                })
                .collect::<Vec<_>>()),
        ),
        null_if(
            19,
            json!((0..(r % 3))
                .map(|k| json!([
                    format!("k{k}"),
                    if k == 1 { Value::Null } else { json!(r + k) }
                ]))
                .collect::<Vec<_>>()),
        ),
        null_if(
            20,
            json!({
                "inner": if r % 4 == 1 { Value::Null } else {
                    json!({"city": if r % 2 == 0 { Value::Null } else { json!(format!("c{r}")) },
                           "zip": r * 3})
                },
                "points": (0..(r % 3)).map(|k| json!({"x": r + k})).collect::<Vec<_>>(),
            }),
        ),
        // Few distinct values: a dictionary at the default threshold.
        null_if(
            21,
            json!(["debug", "info", "warn", "", "error"][(r % 5) as usize]),
        ),
    ]
}

/// Rows `from..to` as arrays of [`schema`], built from [`expected`].
fn arrays(from: i64, to: i64) -> Vec<ArrayRef> {
    let rows: Vec<Vec<Value>> = (from..to).map(expected).collect();
    let col = |c: usize| rows.iter().map(move |r| &r[c]);
    let mut flag = BooleanBuilder::new();
    col(0).for_each(|v| flag.append_option(v.as_bool()));
    let mut tiny = Int8Builder::new();
    col(1).for_each(|v| tiny.append_option(v.as_i64().map(|x| x as i8)));
    let mut small = Int16Builder::new();
    col(2).for_each(|v| small.append_option(v.as_i64().map(|x| x as i16)));
    let mut int = Int32Builder::new();
    col(3).for_each(|v| int.append_option(v.as_i64().map(|x| x as i32)));
    let mut id = Int64Builder::new();
    col(4).for_each(|v| id.append_option(v.as_i64()));
    let mut f = Float32Builder::new();
    col(5).for_each(|v| f.append_option(v.as_f64().map(|x| x as f32)));
    let mut d = Float64Builder::new();
    col(6).for_each(|v| d.append_option(v.as_f64()));
    let mut name = StringBuilder::new();
    col(7).for_each(|v| name.append_option(v.as_str()));
    let mut raw = BinaryBuilder::new();
    col(8).for_each(|v| {
        raw.append_option(v.as_array().map(|b| {
            b.iter()
                .map(|x| x.as_u64().unwrap() as u8)
                .collect::<Vec<u8>>()
        }))
    });
    let mut day = Date32Builder::new();
    col(9).for_each(|v| day.append_option(v.as_i64().map(|x| x as i32)));
    let mut ts = TimestampMicrosecondBuilder::new();
    col(10).for_each(|v| ts.append_option(v.as_i64().map(|ns| ns / 1000)));
    let unscaled = |v: &Value| {
        v.as_str()
            .map(|s| s.replace('.', "").parse::<i128>().unwrap())
    };
    let mut price = Decimal128Builder::new().with_data_type(DataType::Decimal128(10, 2));
    col(11).for_each(|v| price.append_option(unscaled(v)));
    let mut big = Decimal128Builder::new().with_data_type(DataType::Decimal128(38, 6));
    col(12).for_each(|v| big.append_option(unscaled(v)));
    let mut tags = ListBuilder::new(Int64Builder::new());
    for v in col(13) {
        match v.as_array() {
            Some(items) => {
                items
                    .iter()
                    .for_each(|x| tags.values().append_option(x.as_i64()));
                tags.append(true);
            }
            None => tags.append(false),
        }
    }
    let mut attrs = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    for v in col(14) {
        match v.as_array() {
            Some(entries) => {
                for e in entries {
                    attrs.keys().append_value(e[0].as_str().unwrap());
                    attrs
                        .values()
                        .append_option(e[1].as_i64().map(|x| x as i32));
                }
                attrs.append(true).unwrap();
            }
            None => attrs.append(false).unwrap(),
        }
    }
    let geo_type = schema().field(15).data_type().clone();
    let DataType::Struct(geo_fields) = geo_type else {
        unreachable!()
    };
    let mut geo = StructBuilder::from_fields(geo_fields, rows.len());
    for v in col(15) {
        let present = !v.is_null();
        {
            let inner = geo.field_builder::<StructBuilder>(0).unwrap();
            let i = &v["inner"];
            inner
                .field_builder::<StringBuilder>(0)
                .unwrap()
                .append_option(i["city"].as_str());
            inner
                .field_builder::<Int32Builder>(1)
                .unwrap()
                .append_option(i["zip"].as_i64().map(|x| x as i32));
            inner.append(!i.is_null());
        }
        {
            let points = geo
                .field_builder::<ListBuilder<Box<dyn arrow_array::builder::ArrayBuilder>>>(1)
                .unwrap();
            let p = v["points"].as_array();
            for x in p.into_iter().flatten() {
                let s = points
                    .values()
                    .as_any_mut()
                    .downcast_mut::<StructBuilder>()
                    .unwrap();
                s.field_builder::<Int32Builder>(0)
                    .unwrap()
                    .append_option(x["x"].as_i64().map(|x| x as i32));
                s.append(true);
            }
            points.append(p.is_some());
        }
        geo.append(present);
    }
    let mut level = StringBuilder::new();
    col(16).for_each(|v| level.append_option(v.as_str()));
    let out: Vec<ArrayRef> = vec![
        Arc::new(flag.finish()),
        Arc::new(tiny.finish()),
        Arc::new(small.finish()),
        Arc::new(int.finish()),
        Arc::new(id.finish()),
        Arc::new(f.finish()),
        Arc::new(d.finish()),
        Arc::new(name.finish()),
        Arc::new(raw.finish()),
        Arc::new(day.finish()),
        Arc::new(ts.finish()),
        Arc::new(price.finish()),
        Arc::new(big.finish()),
        Arc::new(tags.finish()),
        Arc::new(attrs.finish()),
        Arc::new(geo.finish()),
        Arc::new(level.finish()),
    ];
    for (a, field) in out.iter().zip(schema().fields()) {
        assert_eq!(a.data_type(), field.data_type(), "{}", field.name());
    }
    out
}

/// Writes rows `0..rows` in batches of `batch` with `options`, reads them back with pyarrow
/// and checks every value; returns pyarrow's facts about the file.
fn round_trip(name: &str, rows: i64, batch: i64, options: &OrcOptions) -> Value {
    let mut file = OrcFile::new(schema(), options).unwrap();
    let mut at = 0;
    while at < rows {
        let end = (at + batch).min(rows);
        file.write(arrays(at, end)).unwrap();
        at = end;
    }
    let bytes = file.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.orc"));
    std::fs::write(&path, &bytes).unwrap();
    let got = read(&path);
    assert_eq!(got["rows"], json!(rows), "{name}");
    let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
    for r in 0..rows {
        let want = expected(r);
        for (c, column) in names.iter().enumerate() {
            let have = &got["columns"][column][r as usize];
            assert_eq!(have, &want[c], "{name}: row {r}, column {column}");
        }
    }
    got
}

#[test]
fn every_type_reads_back_with_each_codec_and_version() {
    // Dictionary thresholds: 0 (every string DIRECT), the default (0.8: `level` and the map
    // keys in a dictionary, the distinct names DIRECT), 1 (every string in a dictionary).
    let cases = [
        (Compression::None, FormatVersion::V0_12, "NONE", 0.0),
        (Compression::Zlib, FormatVersion::V0_12, "ZLIB", 0.8),
        (Compression::Snappy, FormatVersion::V0_11, "SNAPPY", 1.0),
        (Compression::Snappy, FormatVersion::V0_12, "SNAPPY", 0.8),
    ];
    for (compression, version, codec, dictionary_key_threshold) in cases {
        let options = OrcOptions {
            compression,
            format_version: version,
            dictionary_key_threshold,
            ..OrcOptions::default()
        };
        let got = round_trip(codec, 1200, 1000, &options);
        assert_eq!(got["stripes"], json!(1), "{codec}");
        let want_codec = if codec == "NONE" {
            "UNCOMPRESSED"
        } else {
            codec
        };
        assert_eq!(got["compression"], json!(want_codec));
        let want_version = if version == FormatVersion::V0_11 {
            "0.11"
        } else {
            "0.12"
        };
        assert_eq!(got["version"], json!(want_version));
        assert_eq!(got["row_index_stride"], json!(0));
        assert_eq!(
            got["types"],
            json!({
                "flag": "bool", "tiny": "int8", "small": "int16", "i": "int32", "id": "int64",
                "f": "float", "d": "double", "name": "string", "raw": "binary",
                "day": "date32[day]", "ts": "timestamp[ns]", "price": "decimal128(10, 2)",
                "big": "decimal128(38, 6)", "tags": "list<item: int64>",
                "attrs": "map<string, int32>",
                "geo": "struct<inner: struct<city: string, zip: int32>, points: list<item: struct<x: int32>>>",
                "level": "string",
            }),
            "{codec}"
        );
    }
}

#[test]
fn stripes_are_cut_by_size() {
    for compression in [Compression::Zlib, Compression::Snappy, Compression::None] {
        let options = OrcOptions {
            compression,
            stripe_size_bytes: 16 * 1024,
            // A small block size: many chunks per stream.
            compression_block_size: 4096,
            ..OrcOptions::default()
        };
        let got = round_trip("stripes", 6000, 300, &options);
        let stripes = got["stripes"].as_u64().unwrap();
        assert!(stripes >= 5, "{compression:?}: {stripes} stripes");
    }
}

#[test]
fn padding_keeps_stripes_in_blocks_and_reads_back() {
    let options = OrcOptions {
        compression: Compression::None,
        stripe_size_bytes: 16 * 1024,
        padding: Some(Padding {
            block_size_bytes: 64 * 1024,
            tolerance: 1.0,
        }),
        ..OrcOptions::default()
    };
    let got = round_trip("padded", 6000, 300, &options);
    assert!(got["stripes"].as_u64().unwrap() >= 5);
}

#[test]
fn a_file_without_rows_reads_back() {
    let bytes = OrcFile::new(schema(), &OrcOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.orc");
    std::fs::write(&path, &bytes).unwrap();
    let got = read(&path);
    assert_eq!(got["rows"], json!(0));
    assert_eq!(got["stripes"], json!(0));
}

#[test]
fn sliced_arrays_write_their_own_rows() {
    // Arrays that are slices of larger ones (offsets not at 0, at every nesting level).
    let full = arrays(0, 400);
    let sliced: Vec<ArrayRef> = full.iter().map(|a| a.slice(100, 200)).collect();
    let mut file = OrcFile::new(schema(), &OrcOptions::default()).unwrap();
    file.write(sliced).unwrap();
    let bytes = file.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sliced.orc");
    std::fs::write(&path, &bytes).unwrap();
    let got = read(&path);
    assert_eq!(got["rows"], json!(200));
    for r in 0..200 {
        let want = expected(r + 100);
        assert_eq!(got["columns"]["tags"][r as usize], want[13], "row {r}");
        assert_eq!(got["columns"]["attrs"][r as usize], want[14], "row {r}");
        assert_eq!(got["columns"]["geo"][r as usize], want[15], "row {r}");
        assert_eq!(got["columns"]["ts"][r as usize], want[10], "row {r}");
    }
}
