//! A table of bad requests against the running daemon: each gets its Firehose error (type and
//! HTTP status), and none writes anything to the WAL.
#![allow(clippy::unwrap_used)]

mod common;

use common::{b64, call, post, Daemon};

const CT: &str = "application/x-amz-json-1.1";
const PRB: &str = "Firehose_20150804.PutRecordBatch";
const PR: &str = "Firehose_20150804.PutRecord";

fn batch(n: usize, data: &str) -> String {
    let recs = vec![format!(r#"{{"Data":"{data}"}}"#); n].join(",");
    format!(r#"{{"DeliveryStreamName":"default","Records":[{recs}]}}"#)
}

#[test]
fn bad_inputs_get_firehose_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let max_record = b64(&vec![b'r'; 1_024_000]);
    let over_record = b64(&vec![b'r'; 1_024_001]);
    let huge = vec![b'{'; 9 << 20];

    struct Case {
        what: &'static str,
        target: Option<&'static str>,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        status: u16,
        error: &'static str,
    }
    let case = |what, target, content_type, body: String, status, error| Case {
        what,
        target,
        content_type,
        body: body.into_bytes(),
        status,
        error,
    };
    let cases = vec![
        case("malformed JSON", Some(PRB), Some(CT), "{\"DeliveryStreamName\":".into(), 400, "SerializationException"),
        case("not an object", Some(PRB), Some(CT), "[1,2]".into(), 400, "SerializationException"),
        case("name of wrong type", Some(PRB), Some(CT), r#"{"DeliveryStreamName":5,"Records":[{"Data":"AA=="}]}"#.into(), 400, "SerializationException"),
        case("records of wrong type", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"default","Records":{"Data":"AA=="}}"#.into(), 400, "SerializationException"),
        case("data of wrong type", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"default","Records":[{"Data":12}]}"#.into(), 400, "SerializationException"),
        case("bad base64", Some(PRB), Some(CT), batch(2, "not base64!"), 400, "SerializationException"),
        case("bad base64 in PutRecord", Some(PR), Some(CT), r#"{"DeliveryStreamName":"default","Record":{"Data":"@@@"}}"#.into(), 400, "SerializationException"),
        case("oversize record", Some(PRB), Some(CT), batch(1, &over_record), 400, "InvalidArgumentException"),
        case("oversize batch (5 x 1,000 KiB)", Some(PRB), Some(CT), batch(5, &max_record), 400, "InvalidArgumentException"),
        case("501 records", Some(PRB), Some(CT), batch(501, "AA=="), 400, "InvalidArgumentException"),
        case("no records", Some(PRB), Some(CT), batch(0, "AA=="), 400, "InvalidArgumentException"),
        case("missing Records", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"default"}"#.into(), 400, "InvalidArgumentException"),
        case("missing Data", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"default","Records":[{}]}"#.into(), 400, "InvalidArgumentException"),
        case("missing name", Some(PRB), Some(CT), r#"{"Records":[{"Data":"AA=="}]}"#.into(), 400, "InvalidArgumentException"),
        case("bad name: slash", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"../x","Records":[{"Data":"AA=="}]}"#.into(), 400, "InvalidArgumentException"),
        case("bad name: 65 chars", Some(PRB), Some(CT), format!(r#"{{"DeliveryStreamName":"{}","Records":[{{"Data":"AA=="}}]}}"#, "a".repeat(65)), 400, "InvalidArgumentException"),
        case("bad name: empty", Some(PR), Some(CT), r#"{"DeliveryStreamName":"","Record":{"Data":"AA=="}}"#.into(), 400, "InvalidArgumentException"),
        case("bad name on create", Some("Firehose_20150804.CreateDeliveryStream"), Some(CT), r#"{"DeliveryStreamName":"a b","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::123456789012:role/r","BucketARN":"arn:aws:s3:::b"}}"#.into(), 400, "InvalidArgumentException"),
        case("create without destination", Some("Firehose_20150804.CreateDeliveryStream"), Some(CT), r#"{"DeliveryStreamName":"x"}"#.into(), 400, "InvalidArgumentException"),
        case("unknown stream", Some(PRB), Some(CT), r#"{"DeliveryStreamName":"nope","Records":[{"Data":"AA=="}]}"#.into(), 400, "ResourceNotFoundException"),
        case("unknown operation", Some("Firehose_20150804.GetRecords"), Some(CT), "{}".into(), 400, "UnknownOperationException"),
        case("other service's target", Some("Kinesis_20131202.PutRecord"), Some(CT), "{}".into(), 400, "UnknownOperationException"),
        case("missing X-Amz-Target", None, Some(CT), batch(1, "AA=="), 400, "UnknownOperationException"),
        case("wrong Content-Type", Some(PRB), Some("text/plain"), batch(1, "AA=="), 400, "SerializationException"),
        Case { what: "huge body", target: Some(PRB), content_type: Some(CT), body: huge, status: 400, error: "InvalidArgumentException" },
    ];
    for c in &cases {
        let (status, text) = post(d.addr, c.target, c.content_type, &c.body);
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: reply is not JSON ({e}): {text:?}", c.what));
        assert_eq!(v["__type"], c.error, "{}: {text}", c.what);
        assert_eq!(status, c.status, "{}: {text}", c.what);
        assert!(v["message"].is_string(), "{}: {text}", c.what);
    }
    // Missing Content-Type is tolerated (some producers omit it); this one is valid otherwise
    // but names an unknown stream.
    let (status, text) = post(
        d.addr,
        Some(PRB),
        None,
        br#"{"DeliveryStreamName":"nope","Records":[{"Data":"AA=="}]}"#,
    );
    assert_eq!(status, 400);
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    // Wrong method or path.
    let (status, text) = common::get(d.addr, "/").unwrap();
    assert_eq!(status, 400);
    assert!(text.contains("UnknownOperationException"), "{text}");
    // The daemon is still fine, and nothing reached the WAL.
    let (st, v) = call(d.addr, "ListDeliveryStreams", "{}");
    assert_eq!(st, 200);
    assert_eq!(v["DeliveryStreamNames"], serde_json::json!(["default"]));
    assert!(d.terminate().success());
    assert!(
        common::wal_records(&data, "default").is_empty(),
        "a rejected request writes nothing"
    );
    assert!(!data.join("streams/x").exists());
    assert!(!data.join("streams/a b").exists());
}
