//! `hydrant bench deliver --format parquet|orc`: record format conversion's cost and gain,
//! against the JSON path in the same run.
//!
//! In process, at the delivery seam (no daemon, no HTTP), as `--partitions` is: the same
//! batches of JSON access-log events of about 475 bytes (see [`record`]; 128 MiB each by
//! default, the batch size Firehose uses with conversion) go
//! through four [`ObjectSink`]s on a [`LocalStore`]: UNCOMPRESSED JSON (the reference path), GZIP
//! JSON (the size reference) and the columnar format with its two codecs (the schema from a
//! local catalog in the run's directory): Parquet SNAPPY (the ParquetSerDe default) and GZIP, or
//! ORC SNAPPY (the OrcSerDe default) and ZLIB. Figures: records/s and MB/s of JSON in for each,
//! and the bytes written. Goals (printed, not asserted): the first codec at least 0.5x the
//! UNCOMPRESSED path's records/s; its output at most 0.5x the GZIP JSON bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hydrant_sinks::convert::catalog::LocalCatalog;
use hydrant_sinks::convert::{Converter, DataCatalogTable, LocalTable, Settings};
use hydrant_sinks::{Batch, LocalStore, ObjectSink, ObjectSinkConfig, Sink};
use serde::Serialize;
use serde_json::json;

use crate::batch;
use crate::put::BenchHttpError;

/// Services, with how often each logs (weights), as a fleet's mix.
const SERVICES: [(&str, u64); 8] = [
    ("checkout", 20),
    ("cart", 18),
    ("catalog", 25),
    ("search", 15),
    ("payments", 8),
    ("auth", 7),
    ("shipping", 4),
    ("recommendations", 3),
];
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2"];
const PATHS: [(&str, &str); 10] = [
    ("GET", "/api/v1/products/{id}"),
    ("GET", "/api/v1/search"),
    ("GET", "/api/v1/cart"),
    ("POST", "/api/v1/cart/items"),
    ("DELETE", "/api/v1/cart/items/{id}"),
    ("POST", "/api/v1/checkout"),
    ("GET", "/api/v1/orders/{id}"),
    ("POST", "/api/v1/payments"),
    ("POST", "/api/v1/login"),
    ("GET", "/healthz"),
];
const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "okhttp/4.12.0",
];

/// The benchmark's table: one column per member of [`record`]'s events.
const COLUMNS: &str = r#"[
    {"Name": "ts", "Type": "timestamp"}, {"Name": "request_id", "Type": "string"},
    {"Name": "service", "Type": "string"}, {"Name": "region", "Type": "string"},
    {"Name": "host", "Type": "string"}, {"Name": "level", "Type": "string"},
    {"Name": "method", "Type": "string"}, {"Name": "path", "Type": "string"},
    {"Name": "status", "Type": "int"}, {"Name": "latency_ms", "Type": "double"},
    {"Name": "bytes_sent", "Type": "bigint"}, {"Name": "user_id", "Type": "bigint"},
    {"Name": "client_ip", "Type": "string"}, {"Name": "user_agent", "Type": "string"},
    {"Name": "message", "Type": "string"}]"#;

/// One path's figures.
#[derive(Debug, Serialize)]
struct Row {
    path: &'static str,
    records_per_s: f64,
    json_mb_per_s: f64,
    bytes_written: u64,
    /// The process's CPU time (user and system, all threads) per record.
    cpu_us_per_record: f64,
}

/// splitmix64: the record generator's deterministic randomness.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Event `id`: an HTTP service's access-log event, as applications send them to Firehose
/// (about 600 bytes of JSON). Low-cardinality strings (service, region, host among 64, level,
/// method, path, user agent), a timestamp a few ms after the previous event's (ISO 8601), numbers
/// (status, mostly 200; latency; bytes; a user id among 100,000), and two high-entropy
/// strings: a random request id (a UUID) and a message that repeats fields with a variable id.
fn record(id: u64) -> Vec<u8> {
    let r = |salt: u64| mix(id.wrapping_mul(16).wrapping_add(salt));
    let pick = r(1) % 100;
    let (service, _) = SERVICES
        .iter()
        .scan(0, |acc, s| {
            *acc += s.1;
            Some((s, *acc))
        })
        .find(|(_, acc)| pick < *acc)
        .map_or(SERVICES[0], |(s, _)| *s);
    let (method, path) = PATHS[(r(2) % PATHS.len() as u64) as usize];
    let object = r(3) % 90_000 + 10_000;
    let status = match r(4) % 1000 {
        0..=899 => 200,
        900..=939 => 201,
        940..=969 => 404,
        970..=989 => 400,
        990..=996 => 500,
        _ => 503,
    };
    let level = match status {
        500.. => "ERROR",
        400.. => "WARN",
        _ if r(5) % 50 == 0 => "DEBUG",
        _ => "INFO",
    };
    let latency = (r(6) % 250_000) as f64 / 1000.0 + 0.4;
    let ms = 1_767_225_600_000 + id * 3 + r(7) % 3;
    let ts = jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let u = r(8);
    let request_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        u >> 32,
        (u >> 16) & 0xffff,
        u & 0xfff,
        r(9) & 0xfff,
        r(10) & 0xffff_ffff_ffff
    );
    let url = path.replace("{id}", &object.to_string());
    let v = json!({
        "ts": ts, "request_id": request_id, "service": service,
        "region": REGIONS[(r(11) % 4) as usize],
        "host": format!("ip-10-0-{}-{}", r(12) % 4, 10 + r(17) % 16),
        "level": level, "method": method, "path": path, "status": status,
        "latency_ms": latency, "bytes_sent": 200 + r(13) % 40_000,
        "user_id": r(14) % 100_000,
        "client_ip": format!("203.0.{}.{}", r(15) % 64, r(15) % 251),
        "user_agent": AGENTS[(r(16) % 6) as usize],
        "message": format!("{method} {url} {status} {latency:.1}ms service={service}")});
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The randomness [`record`] draws per event, in bits (the Shannon entropy of its choices; the
/// message only repeats other fields): on average, no lossless encoding of `n` events drawn so
/// is smaller than `n` times this, whatever its format and codec (a coder that knew the
/// generator could do better; none of the codecs here does). The size goal is judged against
/// it.
fn entropy_bits_per_record() -> f64 {
    let h = |weights: &[f64]| -> f64 {
        let total: f64 = weights.iter().sum();
        weights
            .iter()
            .map(|w| {
                let p = w / total;
                -p * p.log2()
            })
            .sum()
    };
    let uniform = |n: f64| n.log2();
    let paths_with_id = PATHS.iter().filter(|(_, p)| p.contains("{id}")).count() as f64;
    let service = h(&SERVICES.map(|(_, w)| w as f64));
    let path = uniform(PATHS.len() as f64);
    let object = paths_with_id / PATHS.len() as f64 * uniform(90_000.0);
    // Statuses per 1,000 (200, 201, 404, 400, 500, 503); DEBUG is one 2xx in 50.
    let status = h(&[900.0, 40.0, 30.0, 20.0, 7.0, 3.0]);
    let level = 0.94 * h(&[49.0, 1.0]);
    let latency = uniform(250_000.0);
    let ts = uniform(3.0);
    // The UUID: 60 bits of one draw (its bits 0-11, 16-31 and 32-63), 12 and 48 of two more.
    let request_id = 120.0;
    let region = uniform(REGIONS.len() as f64);
    let host = uniform(4.0 * 16.0);
    let bytes_sent = uniform(40_000.0);
    let user_id = uniform(100_000.0);
    // One draw modulo 64 and modulo 251 (coprime): 64 x 251 addresses.
    let client_ip = uniform(64.0 * 251.0);
    let agent = uniform(AGENTS.len() as f64);
    service
        + path
        + object
        + status
        + level
        + latency
        + ts
        + request_id
        + region
        + host
        + bytes_sent
        + user_id
        + client_ip
        + agent
}

fn batches(total_bytes: usize, batch_bytes: usize) -> Vec<Batch> {
    let mut lsn = 0u64;
    let mut out = Vec::new();
    while out.len() * batch_bytes < total_bytes.max(1) {
        let mut records = Vec::new();
        let mut size = 0;
        while size < batch_bytes {
            lsn += 1;
            let data = record(lsn);
            size += data.len();
            records.push(batch::record(lsn, data));
        }
        out.push(batch::batch(records));
    }
    out
}

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> BenchHttpError {
    move |source| BenchHttpError::Io { op, source }
}

fn sink_err(e: impl std::fmt::Display) -> BenchHttpError {
    BenchHttpError::Delivery(format!("format bench: {e}"))
}

/// A sink converting with `serializer` (`ParquetSerDe` or `OrcSerDe`) and its `codec`.
fn columnar_sink(root: &Path, serializer: &str, codec: &str) -> Result<ObjectSink, BenchHttpError> {
    let catalog = LocalCatalog::new(root.join("catalog"));
    let columns: serde_json::Value = serde_json::from_str(COLUMNS).map_err(sink_err)?;
    catalog
        .put("bench", "events", &json!({ "Columns": columns }))
        .map_err(sink_err)?;
    let settings = Settings::from_firehose(&json!({
        "SchemaConfiguration": {"DatabaseName": "bench", "TableName": "events"},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {serializer: {"Compression": codec}}}
    }))
    .map_err(sink_err)?
    .ok_or_else(|| sink_err("conversion disabled"))?;
    let extension = settings.output.extension().to_string();
    let table = DataCatalogTable::new(&settings, "000000000000", "us-east-1");
    let converter = Converter::new(
        settings,
        table,
        Arc::new(LocalTable {
            catalog,
            database: "bench".into(),
            table: "events".into(),
        }),
    );
    let store = LocalStore::for_bucket(&root.join(format!("{serializer}-{codec}")), "bench")
        .map_err(sink_err)?;
    Ok(ObjectSink::new(
        Arc::new(store),
        ObjectSinkConfig::from_firehose(None, None, None, None).map_err(sink_err)?,
    )
    .with_conversion(converter, extension))
}

/// Runs the comparison with `megabytes` of records, writing under `dir`.
///
/// # Errors
/// A [`BenchHttpError`]: another format asked for, a store or the runtime not set up, a failed
/// delivery.
pub fn run(
    format: &str,
    dir: &Path,
    megabytes: usize,
    batch_megabytes: usize,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), BenchHttpError> {
    // The format's name, serializer and two codecs (the SerDe's default first).
    let (name, serializer, codecs) = match format {
        "parquet" => ("Parquet", "ParquetSerDe", ["SNAPPY", "GZIP"]),
        "orc" => ("ORC", "OrcSerDe", ["SNAPPY", "ZLIB"]),
        other => {
            return Err(BenchHttpError::InvalidArgument(format!(
                "--format {other:?}: parquet or orc"
            )))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_err("start the async runtime"))?;
    let root: PathBuf = dir.join(format!("format-bench-{}", std::process::id()));
    if !(1..=128).contains(&batch_megabytes) {
        return Err(BenchHttpError::InvalidArgument(
            "--format-batch-mb must be 1 to 128".into(),
        ));
    }
    let work = batches(megabytes << 20, batch_megabytes << 20);
    let records: u64 = work.iter().map(|b| b.records.len() as u64).sum();
    let bytes: u64 = work.iter().map(Batch::data_bytes).sum();
    let json_sink = |name: &str, codec: &str| -> Result<ObjectSink, BenchHttpError> {
        let store = LocalStore::for_bucket(&root.join(name), "bench").map_err(sink_err)?;
        Ok(ObjectSink::new(
            Arc::new(store),
            ObjectSinkConfig::from_firehose(None, None, Some(codec), None).map_err(sink_err)?,
        ))
    };
    let label = |codec: &str| -> &'static str {
        match (serializer, codec) {
            ("ParquetSerDe", "SNAPPY") => "Parquet SNAPPY",
            ("ParquetSerDe", _) => "Parquet GZIP",
            (_, "SNAPPY") => "ORC SNAPPY",
            _ => "ORC ZLIB",
        }
    };
    let paths: Vec<(&'static str, ObjectSink)> = vec![
        ("JSON UNCOMPRESSED", json_sink("plain", "UNCOMPRESSED")?),
        ("JSON GZIP", json_sink("gzip", "GZIP")?),
        (
            label(codecs[0]),
            columnar_sink(&root, serializer, codecs[0])?,
        ),
        (
            label(codecs[1]),
            columnar_sink(&root, serializer, codecs[1])?,
        ),
    ];
    let mut rows = Vec::new();
    let mut peak_rss = Vec::new();
    for (path, sink) in &paths {
        let (before, cpu_before) = usage();
        let started = Instant::now();
        let mut written = 0;
        for b in &work {
            let d = runtime.block_on(sink.deliver(b)).map_err(sink_err)?;
            if !d.failed.is_empty() {
                return Err(sink_err(format!(
                    "{path}: {} records failed",
                    d.failed.len()
                )));
            }
            written += d.wire_bytes;
        }
        let s = started.elapsed().as_secs_f64();
        let (after, cpu_after) = usage();
        peak_rss.push((*path, before, after));
        rows.push(Row {
            path,
            records_per_s: records as f64 / s,
            json_mb_per_s: bytes as f64 / 1e6 / s,
            bytes_written: written,
            cpu_us_per_record: (cpu_after - cpu_before) * 1e6 / records.max(1) as f64,
        });
    }
    let _ = std::fs::remove_dir_all(&root);
    if json_out {
        return crate::put::write_json_report(out, &rows);
    }
    writeln!(
        out,
        "record format conversion, in process ({records} JSON events of ~475 bytes, {:.0} MB, \
         {batch_megabytes} MiB batches, local store under {})",
        bytes as f64 / 1e6,
        dir.display()
    )
    .map_err(io_err("write"))?;
    writeln!(
        out,
        "{:<18} {:>12} {:>10} {:>14} {:>14}",
        "path", "records/s", "MB/s in", "bytes written", "CPU us/record"
    )
    .map_err(io_err("write"))?;
    for r in &rows {
        writeln!(
            out,
            "{:<18} {:>12.0} {:>10.1} {:>14} {:>14.2}",
            r.path, r.records_per_s, r.json_mb_per_s, r.bytes_written, r.cpu_us_per_record
        )
        .map_err(io_err("write"))?;
    }
    for (path, before, after) in &peak_rss {
        if after > before {
            writeln!(
                out,
                "{path}: peak RSS rose from {:.0} to {:.0} MB",
                *before as f64 / 1e6,
                *after as f64 / 1e6
            )
            .map_err(io_err("write"))?;
        }
    }
    let (plain, gzip, columnar) = (&rows[0], &rows[1], &rows[2]);
    let second = &rows[3];
    let speed = columnar.records_per_s / plain.records_per_s;
    let size = columnar.bytes_written as f64 / gzip.bytes_written.max(1) as f64;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    writeln!(
        out,
        "goal: {} >= 0.5x the UNCOMPRESSED JSON records/s: {speed:.2}x, {} ({}: {:.2}x)",
        columnar.path,
        verdict(speed >= 0.5),
        second.path,
        second.records_per_s / plain.records_per_s
    )
    .map_err(io_err("write"))?;
    // What the CPUs allow: records/s if every CPU did nothing but this path's work.
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let ceiling = cpus as f64 * 1e6 / columnar.cpu_us_per_record.max(f64::MIN_POSITIVE);
    writeln!(
        out,
        "CPU: {} takes {:.2} CPU-us per record, the UNCOMPRESSED JSON path {:.2}; at that cost \
         {cpus} fully busy CPUs convert at most {ceiling:.0} records/s, {:.2}x this run's JSON path \
         (the conversion ran its CPUs {:.0} % busy)",
        columnar.path,
        columnar.cpu_us_per_record,
        plain.cpu_us_per_record,
        ceiling / plain.records_per_s,
        100.0 * columnar.records_per_s / ceiling
    )
    .map_err(io_err("write"))?;
    writeln!(
        out,
        "goal: {name} output <= 0.5x the GZIP JSON bytes: {size:.2}x, {} ({}: {:.2}x)",
        verdict(size <= 0.5),
        second.path,
        second.bytes_written as f64 / gzip.bytes_written.max(1) as f64
    )
    .map_err(io_err("write"))?;
    let bound = entropy_bits_per_record() / 8.0;
    let per_record = |bytes: u64| bytes as f64 / records.max(1) as f64;
    writeln!(
        out,
        "bytes per event: GZIP JSON {:.1}, {} {:.1}, {} {:.1}; the goal {:.1}; the events' \
         entropy {bound:.1} (the floor, on average, of any lossless encoding of fields drawn \
         as these are: the goal is {:.2}x it)",
        per_record(gzip.bytes_written),
        columnar.path,
        per_record(columnar.bytes_written),
        second.path,
        per_record(second.bytes_written),
        per_record(gzip.bytes_written) / 2.0,
        per_record(gzip.bytes_written) / 2.0 / bound
    )
    .map_err(io_err("write"))?;
    Ok(())
}

/// The process's peak resident set so far (`getrusage`), in bytes: the batches themselves are
/// in it from the start, so a path's rise above it is what that path held at its peak.
/// The process's peak RSS (bytes) and CPU time so far (user and system, all threads, seconds).
fn usage() -> (u64, f64) {
    // SAFETY: getrusage writes one rusage into the zeroed value passed; no other memory.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is a valid `who`.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    if !ok {
        return (0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
    )
}
