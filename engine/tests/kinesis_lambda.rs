//! A Kinesis-source delivery stream with a Lambda transform and a PostgreSQL (Redshift)
//! destination, all real servers: kinesalite, the Lambda stand-in (`hydrant_tests::lambda`),
//! PostgreSQL, hydrantd as a process. boto3 puts plain records and one KPL aggregate (built here
//! from the format's spec: magic, protobuf `AggregatedRecord`, MD5 trailer) into a 2-shard
//! stream. Checked: every record, and every user record of the aggregate, is loaded into
//! PostgreSQL exactly once; the Lambda events carry `sourceKinesisStreamArn` and each record's
//! `kinesisRecordMetadata` (shard, partition key, arrival, sequence and sub-sequence numbers) as
//! Kinesis reported them to the producer; the aggregate's user records carry its sequence
//! number, their index as sub-sequence number and their own partition keys.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::kinesalite::Kinesalite;
use common::Daemon;
use hydrant_tests::lambda::LambdaServer;
use hydrant_tests::pg::TestPostgres;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";
const STREAM: &str = "kin-lambda";
const KSTREAM: &str = "klambda";
const PLAIN: usize = 60;
const USERS: usize = 4;

fn boto3(k: &Kinesalite) -> String {
    format!(
        "import boto3, json, hashlib, time\n\
         ks = boto3.client('kinesis', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='K', aws_secret_access_key='S')\n",
        k.endpoint()
    )
}

/// Creates the Kinesis stream; its ARN.
fn create_kinesis_stream(k: &Kinesalite) -> String {
    let script = format!(
        "{}ks.create_stream(StreamName='{KSTREAM}', ShardCount=2)\n\
         for _ in range(200):\n\
         \x20   d = ks.describe_stream_summary(StreamName='{KSTREAM}')['StreamDescriptionSummary']\n\
         \x20   if d['StreamStatus'] == 'ACTIVE': break\n\
         \x20   time.sleep(0.05)\n\
         print(json.dumps(d['StreamARN']))\n",
        boto3(k)
    );
    common::python_json("create the Kinesis stream", &script)
}

/// Puts the plain records and the aggregate; what Kinesis answered for each (user) record, by
/// its key `k`: `{seq, shard, pk, sub}`.
fn put_records(k: &Kinesalite) -> BTreeMap<String, Value> {
    let script = format!(
        "{}\
def varint(n):\n\
\x20   out = b''\n\
\x20   while True:\n\
\x20       b = n & 0x7F\n\
\x20       n >>= 7\n\
\x20       if n:\n\
\x20           out += bytes([b | 0x80])\n\
\x20       else:\n\
\x20           return out + bytes([b])\n\
def ld(tag, b): return varint(tag << 3 | 2) + varint(len(b)) + b\n\
def vi(tag, v): return varint(tag << 3) + varint(v)\n\
out = {{}}\n\
recs = [{{'Data': json.dumps({{'k': f'r{{i}}', 'n': i, 'pk': f'pk{{i % 5}}'}}) + '\\n', 'PartitionKey': f'pk{{i % 5}}'}} for i in range({PLAIN})]\n\
r = ks.put_records(StreamName='{KSTREAM}', Records=recs)\n\
assert r['FailedRecordCount'] == 0, r\n\
for rec, res in zip(recs, r['Records']):\n\
\x20   out[json.loads(rec['Data'])['k']] = {{'seq': res['SequenceNumber'], 'shard': res['ShardId'], 'pk': rec['PartitionKey'], 'sub': 0}}\n\
keys = ['agg-a', 'agg-b']\n\
users = [(j % 2, (json.dumps({{'k': f'a{{j}}', 'n': 1000 + j, 'pk': keys[j % 2]}}) + '\\n').encode()) for j in range({USERS})]\n\
msg = b''.join(ld(1, k.encode()) for k in keys)\n\
msg += b''.join(ld(3, vi(1, ki) + ld(3, d)) for ki, d in users)\n\
agg = bytes([0xF3, 0x89, 0x9A, 0xC2]) + msg + hashlib.md5(msg).digest()\n\
r = ks.put_record(StreamName='{KSTREAM}', Data=agg, PartitionKey='the-aggregate')\n\
for j, (ki, d) in enumerate(users):\n\
\x20   out[f'a{{j}}'] = {{'seq': r['SequenceNumber'], 'shard': r['ShardId'], 'pk': keys[ki], 'sub': j}}\n\
print(json.dumps(out))\n",
        boto3(k)
    );
    common::python_json("put the records", &script)
}

#[test]
fn lambda_events_carry_the_kinesis_metadata_and_postgres_gets_each_record_once() {
    let k = Kinesalite::start();
    let lambda = LambdaServer::start().unwrap();
    let function = "fail_marked"; // every record Ok and unchanged (none holds "FAIL")
    let lambda_arn = LambdaServer::arn(function);
    let pg = TestPostgres::start().unwrap();
    let db = "kinesis";
    pg.create_database(db).unwrap();
    pg.psql(db, "CREATE TABLE t (k text NOT NULL, n integer, pk text)");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = format!(
        "streams = []\n[kinesis]\nendpoint = \"{}\"\naccess_key_id = \"K\"\n\
         secret_access_key = \"S\"\npoll_interval_ms = 200\n\
         [lambda.functions]\n\"{lambda_arn}\" = \"{}\"\n",
        k.endpoint(),
        lambda.url(function)
    );
    let daemon = Daemon::with_config(&data, &cfg);
    let kinesis_arn = create_kinesis_stream(&k);
    let body = json!({
        "DeliveryStreamName": STREAM,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": kinesis_arn, "RoleARN": ROLE},
        "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE,
            "ClusterJDBCURL": pg.jdbc_url(db),
            "CopyCommand": {"DataTableName": "t", "DataTableColumns": "k,n,pk",
                            "CopyOptions": "JSON 'auto'"},
            "Username": "postgres",
            "Password": "not-checked",
            "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::klambda",
                                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda",
                "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": lambda_arn},
                               {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "1"}]}]},
        }
    });
    let (st, v) = common::call(daemon.addr, "CreateDeliveryStream", &body.to_string());
    assert_eq!(st, 200, "{v}");
    common::wait_active(daemon.addr, STREAM);
    let started_ms = jiff::Timestamp::now().as_millisecond();
    let sent = put_records(&k);
    let put_ms = jiff::Timestamp::now().as_millisecond();
    assert_eq!(sent.len(), PLAIN + USERS);

    let rows = || -> BTreeMap<String, (usize, String)> {
        let mut m: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for line in pg.psql(db, "SELECT k, pk FROM t").lines() {
            let (key, pk) = line.split_once('|').unwrap_or((line, ""));
            let e = m.entry(key.to_string()).or_default();
            e.0 += 1;
            e.1 = pk.to_string();
        }
        m
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while rows().len() < sent.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} rows loaded; log:\n{}",
            rows().len(),
            sent.len(),
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // A little longer: a record loaded twice would show now.
    std::thread::sleep(Duration::from_secs(3));
    let got = rows();
    let want: BTreeMap<String, (usize, String)> = sent
        .iter()
        .map(|(key, s)| (key.clone(), (1, s["pk"].as_str().unwrap().to_string())))
        .collect();
    assert_eq!(got, want, "each record once, with its own partition key");

    // The events: every record sent to the function once, each with its Kinesis metadata.
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    for inv in lambda.invocations_of(function) {
        assert_eq!(
            inv.event["sourceKinesisStreamArn"],
            kinesis_arn.as_str(),
            "{}",
            inv.event
        );
        for r in inv.event["records"].as_array().unwrap() {
            let meta = r["kinesisRecordMetadata"].clone();
            assert!(meta.is_object(), "no kinesisRecordMetadata: {r}");
            let data = base64_decode(r["data"].as_str().unwrap());
            let record: Value = serde_json::from_slice(&data).unwrap();
            let key = record["k"].as_str().unwrap().to_string();
            // Firehose gives the Kinesis arrival time as the record's too.
            assert_eq!(
                r["approximateArrivalTimestamp"], meta["approximateArrivalTimestamp"],
                "{r}"
            );
            // A resend after a failed invocation would repeat a record; none failed here.
            assert!(seen.insert(key, meta).is_none(), "a record sent twice: {r}");
        }
    }
    assert_eq!(seen.len(), sent.len());
    for (key, meta) in &seen {
        let s = &sent[key];
        assert_eq!(meta["shardId"], s["shard"], "{key}: {meta}");
        assert_eq!(meta["partitionKey"], s["pk"], "{key}: {meta}");
        assert_eq!(meta["sequenceNumber"], s["seq"], "{key}: {meta}");
        assert_eq!(meta["subsequenceNumber"], s["sub"], "{key}: {meta}");
        let arrival = meta["approximateArrivalTimestamp"].as_i64().unwrap();
        // Kinesis stamps whole seconds or milliseconds; within the put's window either way.
        assert!(
            arrival >= started_ms - 1000 && arrival <= put_ms,
            "{key}: arrival {arrival} outside [{started_ms}, {put_ms}]"
        );
    }
    // The aggregate's user records share its sequence number; sub-sequence numbers 0..USERS.
    let agg_seq = &sent["a0"]["seq"];
    let subs: Vec<u64> = (0..USERS)
        .map(|j| {
            let m = &seen[&format!("a{j}")];
            assert_eq!(&m["sequenceNumber"], agg_seq);
            m["subsequenceNumber"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(subs, (0..USERS as u64).collect::<Vec<_>>());
    let (_, metrics) = common::get(daemon.addr, "/metrics").unwrap();
    let value = |name: &str| -> Option<u64> {
        let series = format!("{name}{{stream=\"{STREAM}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
    };
    // Kinesis records read: the plain ones and the aggregate; user records out of it: USERS.
    assert_eq!(
        value("hydrant_kinesis_data_read_records_total"),
        Some(PLAIN as u64 + 1)
    );
    assert_eq!(
        value("hydrant_kinesis_deaggregated_records_total"),
        Some(USERS as u64)
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
