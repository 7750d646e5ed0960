//! The OpenSearch / Elasticsearch sink against `hydrant_tests::bulk::BulkReceiver`, a real HTTP
//! server on 127.0.0.1 that follows the `_bulk` wire format of OpenSearch 2.x and
//! Elasticsearch 7.x (a stand-in: no OpenSearch installs on these machines).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hydrant_sinks::opensearch::{
    ClusterAuth, DocumentIdFormat, Flavor, IndexRotation, OpenSearchConfig, OpenSearchSink,
};
use hydrant_sinks::{Batch, BatchIdentity, ErrorOutputType, Record, Sink, SinkError};
use hydrant_tests::bulk::{BulkFlavor, BulkReceiver, ItemFailure, ItemMatcher};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// 2016-02-25T13:00:00Z, the guide's example instant.
const T0: u64 = 1_456_405_200_000;
const HOUR: u64 = 3_600_000;

fn identity(first: u64, last: u64) -> BatchIdentity {
    BatchIdentity {
        stream: "orders".into(),
        incarnation: "inc-1".into(),
        destination_id: "destinationId-000000000001".into(),
        first_lsn: first,
        last_lsn: last,
    }
}

/// A batch of `records` (data, arrival ms) at LSNs 100, 101, ...
fn batch(records: &[(&str, u64)]) -> Batch {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (data, arrival))| Record {
            lsn: 100 + i as u64,
            sub: 0,
            arrival_ms: *arrival,
            data: Bytes::copy_from_slice(data.as_bytes()),
        })
        .collect();
    Batch {
        identity: identity(100, 100 + records.len() as u64 - 1),
        stream_version: 1,
        contiguous: None,
        partition_keys: Vec::new(),
        oldest_arrival_ms: records.iter().map(|r| r.arrival_ms).min().unwrap_or(0),
        records,
    }
}

fn config(receiver: &BulkReceiver) -> OpenSearchConfig {
    let mut config = OpenSearchConfig::new(receiver.url(), "orders");
    config.rotation = IndexRotation::OneDay;
    config.request_timeout = Duration::from_secs(10);
    config
}

fn sink(config: OpenSearchConfig) -> OpenSearchSink {
    OpenSearchSink::new(config).unwrap()
}

fn code(error: &SinkError) -> String {
    error.error_code().into_owned()
}

/// The `(op, _index, _id)` of every action line of a recorded bulk body.
fn actions(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    text.lines()
        .step_by(2)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn bulk_requests(receiver: &BulkReceiver) -> Vec<hydrant_tests::bulk::RecordedRequest> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/_bulk"))
        .collect()
}

#[tokio::test]
async fn documents_land_once_by_id_and_a_resend_overwrites() {
    let receiver = BulkReceiver::start().unwrap();
    let b = batch(&[
        (r#"{"order":1}"#, T0),
        (r#"{"order":2}"#, T0 + 1),
        ("{\"order\":3}\n", T0 + 2),
    ]);
    let first = sink(config(&receiver));
    let delivered = first.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 3);
    assert!(delivered.failed.is_empty());
    assert_eq!(delivered.target, first.target(&b).unwrap());
    assert_eq!(delivered.data_bytes, b.data_bytes());

    let stored = receiver.stored();
    assert_eq!(stored.len(), 3);
    for (i, record) in b.records.iter().enumerate() {
        let id = first.document_id(&b, record).unwrap();
        let doc = &stored[&("orders-2016-02-25".to_owned(), id)];
        assert_eq!(doc.version, 1);
        assert_eq!(doc.source, serde_json::json!({ "order": i + 1 }));
    }

    // A crash before the engine recorded the delivery: a new process sends the batch again.
    let second = sink(config(&receiver));
    let again = second.deliver(&b).await.unwrap();
    assert_eq!(again.records, 3);
    let after = receiver.stored();
    assert_eq!(after.len(), 3, "a resend must not add documents");
    assert!(after.values().all(|d| d.version == 2), "{after:?}");
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );

    // The wire format: one request per delivery, NDJSON, an explicit index and id per action.
    let requests = bulk_requests(&receiver);
    assert_eq!(requests.len(), 2);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/_bulk");
    assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
    assert!(request.body.ends_with(b"\n"));
    assert_eq!(request.body.iter().filter(|b| **b == b'\n').count(), 6);
    for action in actions(&request.body) {
        let meta = &action["index"];
        assert_eq!(meta["_index"], "orders-2016-02-25");
        assert!(meta["_id"].is_string());
        assert!(meta.get("_type").is_none(), "no TypeName, no _type");
    }
    assert_eq!(delivered.wire_bytes, request.body.len() as u64);
}

#[tokio::test]
async fn index_names_follow_the_rotation_of_each_records_arrival() {
    let receiver = BulkReceiver::start().unwrap();
    let b = batch(&[
        (r#"{"n":1}"#, T0),
        (r#"{"n":2}"#, T0 + HOUR),
        (r#"{"n":3}"#, T0 + 3 * 24 * HOUR), // 2016-02-28, a Sunday: the next week
    ]);
    let expected: [(IndexRotation, [&str; 3]); 5] = [
        (IndexRotation::NoRotation, ["orders", "orders", "orders"]),
        (
            IndexRotation::OneHour,
            [
                "orders-2016-02-25-13",
                "orders-2016-02-25-14",
                "orders-2016-02-28-13",
            ],
        ),
        (
            IndexRotation::OneDay,
            [
                "orders-2016-02-25",
                "orders-2016-02-25",
                "orders-2016-02-28",
            ],
        ),
        (
            IndexRotation::OneWeek,
            ["orders-2016-w09", "orders-2016-w09", "orders-2016-w10"],
        ),
        (
            IndexRotation::OneMonth,
            ["orders-2016-02", "orders-2016-02", "orders-2016-02"],
        ),
    ];
    for (rotation, names) in &expected {
        let mut c = config(&receiver);
        c.rotation = *rotation;
        c.index_name = format!("{}-{}", "orders", rotation.as_str().to_lowercase());
        let s = sink(c);
        s.deliver(&b).await.unwrap();
        let sent = actions(&bulk_requests(&receiver).last().unwrap().body);
        let sent: Vec<String> = sent
            .iter()
            .map(|a| a["index"]["_index"].as_str().unwrap().to_owned())
            .collect();
        let base = format!("orders-{}", rotation.as_str().to_lowercase());
        let want: Vec<String> = names
            .iter()
            .map(|n| n.replacen("orders", &base, 1))
            .collect();
        assert_eq!(sent, want, "{rotation:?}");
        for (record, index) in b.records.iter().zip(&want) {
            let id = s.document_id(&b, record).unwrap();
            assert!(receiver.stored().contains_key(&(index.clone(), id)));
        }
    }
}

#[tokio::test]
async fn throttled_items_are_retried_alone() {
    let receiver = BulkReceiver::start().unwrap();
    receiver.fail_items(ItemFailure::throttled(
        ItemMatcher::SourceContains("\"slow\":true".into()),
        2,
    ));
    let b = batch(&[
        (r#"{"n":1}"#, T0),
        (r#"{"n":2,"slow":true}"#, T0),
        (r#"{"n":3}"#, T0),
        (r#"{"n":4,"slow":true}"#, T0),
        (r#"{"n":5}"#, T0),
    ]);
    let s = sink(config(&receiver));

    let first = s.deliver(&b).await.unwrap_err();
    assert!(first.is_retryable());
    assert_eq!(code(&first), "OS.DocumentsNotIndexed");
    assert!(first.to_string().contains("2 of 5"), "{first}");
    assert_eq!(receiver.documents().len(), 3);

    let second = s.deliver(&b).await.unwrap_err();
    assert!(second.is_retryable());
    let delivered = s.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 5);
    assert!(delivered.failed.is_empty());
    assert_eq!(receiver.documents().len(), 5);

    let requests = bulk_requests(&receiver);
    let counts: Vec<usize> = requests.iter().map(|r| r.items).collect();
    assert_eq!(
        counts,
        [5, 2, 2],
        "only the throttled documents are sent again"
    );
    let retried_ids: Vec<Value> = actions(&requests[1].body)
        .iter()
        .map(|a| a["index"]["_id"].clone())
        .collect();
    let slow_ids: Vec<Value> = [1, 3]
        .iter()
        .map(|&i| Value::String(s.document_id(&b, &b.records[i]).unwrap()))
        .collect();
    assert_eq!(retried_ids, slow_ids);
    assert!(receiver.stored().values().all(|d| d.version == 1));
}

#[tokio::test]
async fn permanent_item_failures_come_back_in_delivered_failed() {
    let receiver = BulkReceiver::start().unwrap();
    receiver.fail_items(ItemFailure::permanent_mapping_error(
        ItemMatcher::SourceContains("\"value\":\"x\"".into()),
    ));
    receiver.fail_items(ItemFailure::throttled(
        ItemMatcher::SourceContains("\"slow\"".into()),
        1,
    ));
    let b = batch(&[
        (r#"{"value":1}"#, T0),
        (r#"{"value":"x"}"#, T0 + 5),
        (r#"{"value":3,"slow":1}"#, T0),
    ]);
    let s = sink(config(&receiver));
    let retry = s.deliver(&b).await.unwrap_err();
    assert!(
        retry.is_retryable(),
        "the throttled document is still pending"
    );
    let delivered = s.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 2);
    assert_eq!(delivered.failed.len(), 1);
    // The permanently refused document was sent once only.
    assert_eq!(
        bulk_requests(&receiver)
            .iter()
            .map(|r| r.items)
            .collect::<Vec<_>>(),
        [3, 1]
    );

    let failed = &delivered.failed[0];
    assert_eq!(
        failed.error_output_type(),
        ErrorOutputType::AmazonOpenSearchServiceFailed
    );
    assert_eq!(failed.attempts_made, 2);
    let json: Value = serde_json::from_slice(&failed.to_json()).unwrap();
    assert_eq!(json["errorCode"], "400");
    let message: Value = serde_json::from_str(json["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(message["type"], "mapper_parsing_exception");
    assert_eq!(json["arrivalTimestamp"], T0 + 5);
    assert_eq!(
        json["rawData"],
        base64::engine::general_purpose::STANDARD.encode(r#"{"value":"x"}"#)
    );
    assert_eq!(
        json["esDocumentId"],
        s.document_id(&b, &b.records[1]).unwrap()
    );
    assert_eq!(json["esIndexName"], "orders-2016-02-25");
    assert!(json.get("esTypeName").is_none());
    assert_eq!(receiver.documents().len(), 2);
}

#[tokio::test]
async fn whole_request_failures_are_classified() {
    let receiver = BulkReceiver::start().unwrap();
    let b = batch(&[(r#"{"n":1}"#, T0), (r#"{"n":2}"#, T0)]);
    let s = sink(config(&receiver));

    receiver.fail_next_requests(1, 503);
    let e = s.deliver(&b).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(code(&e), "OS.ServiceException");
    assert!(e.to_string().contains("503"), "{e}");
    assert!(receiver.documents().is_empty());

    receiver.fail_next_requests(1, 429);
    let e = s.deliver(&b).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(code(&e), "OS.TooManyRequests");

    receiver.fail_next_requests(1, 403);
    let e = s.deliver(&b).await.unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(code(&e), "OS.AccessDenied");

    // Every whole-request failure resent the whole batch; then it goes through.
    let delivered = s.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 2);
    let counts: Vec<usize> = bulk_requests(&receiver).iter().map(|r| r.items).collect();
    assert_eq!(counts, [0, 0, 0, 2]);

    // Nothing listening: a connection failure, retryable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut c = OpenSearchConfig::new(format!("http://{closed}"), "orders");
    c.request_timeout = Duration::from_secs(5);
    let e = sink(c).deliver(&b).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(code(&e), "OS.ConnectionFailed");
}

#[tokio::test]
async fn basic_auth_is_sent_and_required() {
    let receiver = BulkReceiver::builder()
        .basic_auth("firehose", "s3cret")
        .start()
        .unwrap();
    let b = batch(&[(r#"{"n":1}"#, T0)]);

    let e = sink(config(&receiver)).deliver(&b).await.unwrap_err();
    assert_eq!(code(&e), "OS.AccessDenied");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("security_exception"), "{e}");

    let mut wrong = config(&receiver);
    wrong.auth = ClusterAuth::Basic {
        username: "firehose".into(),
        password: "nope".into(),
    };
    let e = sink(wrong).deliver(&b).await.unwrap_err();
    assert_eq!(code(&e), "OS.AccessDenied");

    let mut right = config(&receiver);
    right.auth = ClusterAuth::Basic {
        username: "firehose".into(),
        password: "s3cret".into(),
    };
    sink(right).deliver(&b).await.unwrap();
    assert_eq!(receiver.documents().len(), 1);
    let last = bulk_requests(&receiver).pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some("Basic ZmlyZWhvc2U6czNjcmV0")
    );
    assert_eq!(last.status, 200);
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn sigv4_signs_the_exact_body_for_service_es() {
    let receiver = BulkReceiver::start().unwrap();
    let mut c = config(&receiver);
    c.auth = ClusterAuth::SigV4 {
        region: "eu-west-1".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("session-token-1".into()),
    };
    let b = batch(&[(r#"{"n":1}"#, T0), (r#"{"n":2}"#, T0)]);
    sink(c).deliver(&b).await.unwrap();
    let request = bulk_requests(&receiver).pop().unwrap();

    let authorization = request.header("authorization").unwrap().to_owned();
    let amz_date = request.header("x-amz-date").unwrap().to_owned();
    let day = &amz_date[..8];
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{day}/eu-west-1/es/aws4_request, SignedHeaders="
    );
    assert!(authorization.starts_with(&prefix), "{authorization}");
    let (signed_headers, signature) = authorization[prefix.len()..]
        .split_once(", Signature=")
        .unwrap();
    assert_eq!(signature.len(), 64);
    let signed: Vec<&str> = signed_headers.split(';').collect();
    for name in ["content-type", "host", "x-amz-content-sha256", "x-amz-date"] {
        assert!(signed.contains(&name), "{signed_headers}");
    }
    let body_hash = hex(&Sha256::digest(&request.body));
    assert_eq!(
        request.header("x-amz-content-sha256"),
        Some(body_hash.as_str())
    );
    assert_eq!(
        request.header("x-amz-security-token"),
        Some("session-token-1")
    );

    // Recompute the signature from what arrived: it covers this exact body.
    let canonical_headers: String = signed
        .iter()
        .map(|name| format!("{name}:{}\n", request.header(name).unwrap().trim()))
        .collect();
    let canonical = format!("POST\n/_bulk\n\n{canonical_headers}\n{signed_headers}\n{body_hash}");
    let scope = format!("{day}/eu-west-1/es/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(
        b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        day.as_bytes(),
    );
    for part in ["eu-west-1", "es", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    assert_eq!(hex(&hmac_sha256(&key, to_sign.as_bytes())), signature);
}

#[tokio::test]
async fn no_document_id_lets_the_cluster_make_ids_and_may_duplicate() {
    let receiver = BulkReceiver::start().unwrap();
    let mut c = config(&receiver);
    c.document_ids = DocumentIdFormat::NoDocumentId;
    let b = batch(&[(r#"{"n":1}"#, T0), (r#"{"n":2}"#, T0)]);
    let s = sink(c);
    assert_eq!(s.document_id(&b, &b.records[0]), None);
    s.deliver(&b).await.unwrap();
    let request = bulk_requests(&receiver).pop().unwrap();
    assert!(actions(&request.body)
        .iter()
        .all(|a| a["index"].get("_id").is_none()));
    let ids: Vec<String> = receiver.documents().into_keys().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.len() == 20), "{ids:?}");

    // The documented cost: a resend (after a crash) indexes the records again.
    sink({
        let mut c = config(&receiver);
        c.document_ids = DocumentIdFormat::NoDocumentId;
        c
    })
    .deliver(&b)
    .await
    .unwrap();
    assert_eq!(receiver.documents().len(), 4);
}

#[tokio::test]
async fn records_that_are_not_json_objects_are_filed_not_sent() {
    let receiver = BulkReceiver::start().unwrap();
    let b = batch(&[
        ("not json", T0),
        (r#"{"ok":true}"#, T0),
        ("[1,2]", T0),
        ("{\n  \"pretty\": \"printed\"\n}\n", T0),
    ]);
    let s = sink(config(&receiver));
    let delivered = s.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 2);
    assert_eq!(delivered.failed.len(), 2);
    for failed in &delivered.failed {
        assert_eq!(failed.error_code, "OS.MalformedData");
    }
    assert_eq!(
        delivered.failed[0].raw_data,
        Bytes::from_static(b"not json")
    );
    assert_eq!(delivered.failed[1].raw_data, Bytes::from_static(b"[1,2]"));
    let documents = receiver.documents();
    assert_eq!(documents.len(), 2);
    assert!(documents
        .values()
        .any(|d| *d == serde_json::json!({ "pretty": "printed" })));
    let request = bulk_requests(&receiver).pop().unwrap();
    assert_eq!(request.items, 2);
    assert_eq!(request.status, 200);
}

#[tokio::test]
async fn give_up_files_only_the_documents_not_indexed() {
    let receiver = BulkReceiver::start().unwrap();
    receiver.fail_items(ItemFailure {
        times: None,
        ..ItemFailure::throttled(ItemMatcher::SourceContains("stuck".into()), 0)
    });
    let b = batch(&[
        (r#"{"n":1}"#, T0),
        (r#"{"n":2,"stuck":1}"#, T0 + 7),
        ("oops", T0),
    ]);
    let s = sink(config(&receiver));
    let e = s.deliver(&b).await.unwrap_err();
    assert!(e.is_retryable());
    let e = s.deliver(&b).await.unwrap_err();
    let filed = s.give_up(&b, &e, 2).await.unwrap();
    assert_eq!(filed.len(), 2, "the indexed document is not filed");
    assert_eq!(filed[0].error_code, "429");
    assert!(filed[0]
        .error_message
        .contains("rejected_execution_exception"));
    assert_eq!(filed[0].arrival_timestamp_ms, T0 + 7);
    assert_eq!(filed[0].attempts_made, 2);
    assert_eq!(filed[1].error_code, "OS.MalformedData");
    assert_eq!(receiver.documents().len(), 1);

    // Without state (a restart, or another batch in between): every record, with the error.
    let fresh = sink(config(&receiver));
    let all = fresh.give_up(&b, &e, 9).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.error_code == "OS.DocumentsNotIndexed"));
}

#[tokio::test]
async fn a_crash_mid_retry_resends_everything_without_duplicates() {
    let receiver = BulkReceiver::start().unwrap();
    receiver.fail_items(ItemFailure::throttled(ItemMatcher::EveryNth(2), 1));
    let records: Vec<(String, u64)> = (0..10)
        .map(|i| (format!("{{\"n\":{i}}}"), T0 + i))
        .collect();
    let refs: Vec<(&str, u64)> = records.iter().map(|(d, t)| (d.as_str(), *t)).collect();
    let b = batch(&refs);
    let before = sink(config(&receiver));
    assert!(before.deliver(&b).await.is_err());
    assert_eq!(receiver.documents().len(), 5);
    drop(before);
    let after = sink(config(&receiver));
    let delivered = after.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 10);
    let stored = receiver.stored();
    assert_eq!(stored.len(), 10);
    let updated = stored.values().filter(|d| d.version == 2).count();
    assert_eq!(
        updated, 5,
        "the five indexed before the crash were re-indexed"
    );
}

#[tokio::test]
async fn legacy_elasticsearch_with_a_type_name() {
    let receiver = BulkReceiver::builder()
        .flavor(BulkFlavor::Elasticsearch7)
        .start()
        .unwrap();
    receiver.fail_items(ItemFailure::permanent_mapping_error(ItemMatcher::Id(
        "never".into(),
    )));
    receiver.fail_items(ItemFailure::permanent_mapping_error(
        ItemMatcher::Predicate(std::sync::Arc::new(|v: &Value| v["n"] == 2)),
    ));
    let mut c = config(&receiver);
    c.flavor = Flavor::Elasticsearch;
    c.type_name = Some("order".into());
    c.rotation = IndexRotation::NoRotation;
    let s = sink(c);
    assert_eq!(s.kind(), "elasticsearch");
    let b = batch(&[(r#"{"n":1}"#, T0), (r#"{"n":2}"#, T0)]);
    let delivered = s.deliver(&b).await.unwrap();
    assert_eq!(delivered.records, 1);
    let stored = receiver.stored();
    assert!(stored
        .values()
        .all(|d| d.type_name.as_deref() == Some("order")));
    let request = bulk_requests(&receiver).pop().unwrap();
    assert!(actions(&request.body)
        .iter()
        .all(|a| a["index"]["_type"] == "order"));
    let failed = &delivered.failed[0];
    assert_eq!(
        failed.error_output_type(),
        ErrorOutputType::ElasticsearchFailed
    );
    let json: Value = serde_json::from_slice(&failed.to_json()).unwrap();
    assert_eq!(json["esTypeName"], "order");
    assert_eq!(json["esIndexName"], "orders");

    // An empty TypeName is not sent.
    let mut c = config(&receiver);
    c.type_name = Some(String::new());
    sink(c).deliver(&b).await.unwrap();
    let request = bulk_requests(&receiver).pop().unwrap();
    assert!(actions(&request.body)
        .iter()
        .all(|a| a["index"].get("_type").is_none()));
}

#[tokio::test]
async fn configuration_is_checked_at_construction() {
    let mut c = OpenSearchConfig::new("http://search.example:9200", "orders");
    assert!(matches!(
        OpenSearchSink::new(c.clone()),
        Err(SinkError::Config(_))
    ));
    c.allow_insecure_http = true;
    assert!(OpenSearchSink::new(c.clone()).is_ok());
    c.index_name = "i".repeat(81);
    assert!(OpenSearchSink::new(c).is_err());
}
