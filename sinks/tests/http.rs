//! The HTTP endpoint sink against a real HTTP server: hydrant-tests' [`HttpReceiver`], a strict
//! receiver of Firehose's HTTP endpoint protocol on a 127.0.0.1 port, with failure injection.
//! Every test checks the requests as the server received them on the socket.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hydrant_sinks::failed::FailureDetail;
use hydrant_sinks::http::{
    codes, plan_requests, ContentEncoding, HttpConfigError, HttpEndpointConfig, HttpEndpointSink,
    RECORDS_PER_REQUEST_MAX,
};
use hydrant_sinks::{Batch, BatchIdentity, Sink, SinkError};
use hydrant_tests::http_receiver::{HttpReceiver, RawReply, ReceivedRequest, ReceiverOptions};

const ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/orders";

fn batch_of(records: Vec<Vec<u8>>) -> Batch {
    let count = records.len() as u64;
    common::batch(
        BatchIdentity {
            stream: "orders".into(),
            incarnation: "7e1d".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 100,
            last_lsn: 100 + count.saturating_sub(1),
        },
        1_700_000_000_000,
        1_700_000_000_000,
        records.into_iter().map(Bytes::from),
    )
}

fn sample_batch() -> Batch {
    batch_of(vec![
        b"hello".to_vec(),
        b"{\"a\":1}\n".to_vec(),
        Vec::new(),
        (0..=255u8).collect(),
    ])
}

fn config(url: &str) -> HttpEndpointConfig {
    HttpEndpointConfig::new(url, ARN)
}

fn sink(config: HttpEndpointConfig) -> HttpEndpointSink {
    HttpEndpointSink::new(config).unwrap()
}

fn receiver() -> HttpReceiver {
    HttpReceiver::start_default().unwrap()
}

fn data(batch: &Batch) -> Vec<Vec<u8>> {
    batch.records.iter().map(|r| r.data.to_vec()).collect()
}

/// The one request the receiver got.
fn only_request(receiver: &HttpReceiver) -> ReceivedRequest {
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

fn destination_error(error: &SinkError) -> (&str, &str, bool) {
    match error {
        SinkError::Destination { failure, message } => {
            (failure.code(), message, failure.is_retryable())
        }
        other => panic!("not a destination error: {other:?}"),
    }
}

#[tokio::test]
async fn request_headers_and_body_are_exactly_the_protocol() {
    let receiver = receiver();
    let sink = sink(config(&format!(
        "{}ingest/v1?token=t%201&x=y",
        receiver.url()
    )));
    let batch = sample_batch();
    let before = hydrant_sinks::now_ms();
    let delivered = sink.deliver(&batch).await.unwrap();
    let after = hydrant_sinks::now_ms();

    let request = only_request(&receiver);
    assert_eq!(request.rejection, None);
    assert_eq!(request.status, 200);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path_and_query, "/ingest/v1?token=t%201&x=y");
    let request_id = batch.identity.request_id();
    assert_eq!(
        request.header("x-amz-firehose-protocol-version"),
        Some("1.0")
    );
    assert_eq!(
        request.header("x-amz-firehose-request-id"),
        Some(request_id.as_str())
    );
    assert_eq!(request.header("x-amz-firehose-source-arn"), Some(ARN));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("content-encoding"), None);
    assert_eq!(request.header("x-amz-firehose-access-key"), None);
    assert_eq!(request.header("x-amz-firehose-common-attributes"), None);
    assert_eq!(
        request.header("content-length"),
        Some(request.wire_bytes.to_string().as_str())
    );

    // The body, byte for byte (only the timestamp is the clock's).
    let timestamp = request.timestamp.unwrap();
    assert!(
        (before..=after).contains(&timestamp),
        "{before} <= {timestamp} <= {after}"
    );
    let expected = format!(
        "{{\"requestId\":\"{request_id}\",\"timestamp\":{timestamp},\"records\":[\
         {{\"data\":\"aGVsbG8=\"}},{{\"data\":\"eyJhIjoxfQo=\"}},{{\"data\":\"\"}},\
         {{\"data\":\"{}\"}}]}}",
        base64_of(&(0..=255u8).collect::<Vec<_>>())
    );
    assert_eq!(
        String::from_utf8(request.body.clone().unwrap()).unwrap(),
        expected
    );
    assert_eq!(request.records, data(&batch));

    assert_eq!(delivered.target, request_id);
    assert_eq!(sink.target(&batch).unwrap(), request_id);
    assert_eq!(delivered.records, 4);
    assert_eq!(delivered.data_bytes, batch.data_bytes());
    assert_eq!(delivered.wire_bytes, request.wire_bytes as u64);
    assert!(delivered.failed.is_empty());
    assert!(
        delivered.location.contains(&request_id),
        "{}",
        delivered.location
    );
    assert!(
        !delivered.location.contains("token"),
        "{}",
        delivered.location
    );
    assert_eq!(sink.kind(), "http_endpoint");
}

fn base64_of(bytes: &[u8]) -> String {
    // Independent of the sink's encoder: the standard alphabet with padding, by hand.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn gzip_access_key_and_common_attributes() {
    let receiver = HttpReceiver::start(ReceiverOptions {
        access_key: Some("key-Ωmega 1".into()),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let mut cfg = config(&receiver.url());
    cfg.content_encoding = ContentEncoding::Gzip;
    cfg.access_key = Some("key-Ωmega 1".into());
    cfg.common_attributes = vec![
        ("env".into(), "prod".into()),
        ("team \"x\"".into(), "ünïcode 😀, \\ and \"quotes\"".into()),
        ("empty".into(), String::new()),
    ];
    let sink = sink(cfg);
    let batch = sample_batch();
    sink.deliver(&batch).await.unwrap();

    let request = only_request(&receiver);
    assert_eq!(request.rejection, None);
    assert_eq!(request.status, 200);
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.records, data(&batch));
    // The wire bytes are gzip (magic 1f 8b), and smaller than the JSON they decode to.
    assert!(request.wire_bytes < request.body.as_ref().unwrap().len());
    let expected: BTreeMap<String, String> = [
        ("env", "prod"),
        ("team \"x\"", "ünïcode 😀, \\ and \"quotes\""),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(request.common_attributes, Some(expected));

    // Without the key the receiver answers 401: a retryable DestinationException.
    let mut keyless = config(&receiver.url());
    keyless.content_encoding = ContentEncoding::Gzip;
    let error = HttpEndpointSink::new(keyless)
        .unwrap()
        .deliver(&batch)
        .await
        .unwrap_err();
    let (code, message, retryable) = destination_error(&error);
    assert_eq!(code, codes::DESTINATION_EXCEPTION);
    assert!(retryable);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("missing or wrong access key"), "{message}");
}

#[tokio::test]
async fn a_gzip_body_is_smaller_than_its_records() {
    let receiver = receiver();
    let mut cfg = config(&receiver.url());
    cfg.content_encoding = ContentEncoding::Gzip;
    let batch = batch_of(
        (0..500)
            .map(|i| format!("record {i}\n").into_bytes())
            .collect(),
    );
    let delivered = sink(cfg).deliver(&batch).await.unwrap();
    let request = only_request(&receiver);
    assert_eq!(request.records, data(&batch));
    assert_eq!(delivered.wire_bytes, request.wire_bytes as u64);
    assert!(delivered.wire_bytes < delivered.data_bytes);
}

#[tokio::test]
async fn the_request_id_is_the_same_on_every_retry_and_in_a_new_sink() {
    let receiver = receiver();
    receiver.fail_next(2, 500, "try later");
    let batch = sample_batch();
    let first = sink(config(&receiver.url()));
    for _ in 0..2 {
        let error = first.deliver(&batch).await.unwrap_err();
        let (code, message, retryable) = destination_error(&error);
        assert_eq!(code, codes::DESTINATION_EXCEPTION);
        assert!(retryable);
        assert_eq!(
            message,
            "Received the following response from the endpoint destination. 500: try later"
        );
    }
    // A fresh sink (as after a crash) sends the same id.
    sink(config(&receiver.url())).deliver(&batch).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert_eq!(
        receiver.distinct_request_ids(),
        vec![batch.identity.request_id()]
    );
    assert!(requests.iter().all(|r| r.records == data(&batch)));
    assert_eq!(receiver.records_accepted(), data(&batch));
}

#[tokio::test]
async fn accepted_then_failed_is_a_duplicate_the_request_id_identifies() {
    let receiver = receiver();
    receiver.accept_then_fail_next(1, "crashed after storing");
    let batch = sample_batch();
    let sink = sink(config(&receiver.url()));
    assert!(sink.deliver(&batch).await.unwrap_err().is_retryable());
    sink.deliver(&batch).await.unwrap();
    // The endpoint processed the records twice, under one request id.
    assert_eq!(receiver.records_processed().len(), 2 * batch.records.len());
    assert_eq!(receiver.records_accepted(), data(&batch));
    assert_eq!(receiver.distinct_request_ids().len(), 1);
}

#[tokio::test]
async fn status_413_is_final_and_give_up_files_every_record() {
    let receiver = receiver();
    receiver.fail_next(1, 413, "too big for me");
    let batch = sample_batch();
    let sink = sink(config(&receiver.url()));
    let error = sink.deliver(&batch).await.unwrap_err();
    let (code, message, retryable) = destination_error(&error);
    assert_eq!(code, codes::DESTINATION_EXCEPTION);
    assert!(!retryable);
    assert!(message.ends_with("413: too big for me"), "{message}");

    let failed = sink.give_up(&batch, &error, 1).await.unwrap();
    assert_eq!(failed.len(), batch.records.len());
    for (record, failed) in batch.records.iter().zip(&failed) {
        assert_eq!(failed.raw_data, record.data);
        assert_eq!(failed.error_code, codes::DESTINATION_EXCEPTION);
        assert_eq!(failed.error_message, message);
        assert_eq!(failed.attempts_made, 1);
        assert_eq!(failed.arrival_timestamp_ms, record.arrival_ms);
        assert_eq!(
            failed.detail,
            FailureDetail::HttpEndpoint {
                subsequence_number: 0,
                data_id: format!("{}.0", record.lsn),
            }
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&failed[0].to_json()).unwrap();
    assert_eq!(json["dataId"], "100.0");
    assert_eq!(json["errorCode"], "HttpEndpoint.DestinationException");
}

#[tokio::test]
async fn any_status_but_200_is_retryable() {
    let receiver = receiver();
    let batch = sample_batch();
    let sink = sink(config(&receiver.url()));
    for status in [
        201u16, 202, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503,
    ] {
        let body = format!(
            "{{\"requestId\":\"{}\",\"timestamp\":1,\"errorMessage\":\"s{status}\"}}",
            batch.identity.request_id()
        );
        let mut raw = RawReply::json(status, body);
        if (300..400).contains(&status) {
            // A redirect to a URL that would accept: not followed.
            raw.headers.push(("location".into(), receiver.url()));
        }
        receiver.raw_next(1, &raw);
        let error = sink.deliver(&batch).await.unwrap_err();
        let (code, message, retryable) = destination_error(&error);
        assert_eq!(code, codes::DESTINATION_EXCEPTION, "{status}");
        assert!(retryable, "{status}");
        if status != 204 && !(300..400).contains(&status) {
            assert!(
                message.ends_with(&format!("{status}: s{status}")),
                "{message}"
            );
        } else {
            assert!(message.contains(&status.to_string()), "{message}");
        }
    }
    // Each status was one request: no redirect followed, no retry by the client.
    assert_eq!(receiver.requests().len(), 13);
}

#[tokio::test]
async fn non_conforming_200_responses_are_invalid() {
    let receiver = receiver();
    let batch = sample_batch();
    let id = batch.identity.request_id();
    let sink = sink(config(&receiver.url()));
    let cases = [
        RawReply::json(200, r#"{"requestId":"someone-else","timestamp":1}"#),
        RawReply::json(200, "OK"),
        RawReply::json(200, ""),
        RawReply::json(200, format!("{{\"requestId\":\"{id}\"}}")),
        RawReply::json(200, format!("[\"{id}\"]")),
        RawReply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("{{\"requestId\":\"{id}\",\"timestamp\":1}}").into_bytes(),
        },
    ];
    for raw in &cases {
        receiver.raw_next(1, raw);
        let error = sink.deliver(&batch).await.unwrap_err();
        let (code, _, retryable) = destination_error(&error);
        assert_eq!(code, codes::INVALID_RESPONSE, "{raw:?}");
        assert!(retryable);
    }
    // A conforming one, with a charset parameter, is a success.
    receiver.raw_next(
        1,
        &RawReply {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: format!("{{\"requestId\":\"{id}\",\"timestamp\":1}}").into_bytes(),
        },
    );
    sink.deliver(&batch).await.unwrap();
}

#[tokio::test]
async fn a_response_over_one_mebibyte_is_too_large() {
    let receiver = receiver();
    let batch = sample_batch();
    let sink = sink(config(&receiver.url()));
    let mut big = format!(
        "{{\"requestId\":\"{}\",\"timestamp\":1,\"pad\":\"",
        batch.identity.request_id()
    );
    big.push_str(&"p".repeat(1 << 20));
    big.push_str("\"}");
    receiver.raw_next(1, &RawReply::json(200, big.clone()));
    let error = sink.deliver(&batch).await.unwrap_err();
    let (code, _, retryable) = destination_error(&error);
    assert_eq!(code, codes::RESPONSE_TOO_LARGE);
    assert!(retryable);
    // Just under the limit is read and accepted.
    let fits = format!(
        "{{\"requestId\":\"{}\",\"timestamp\":1,\"pad\":\"{}\"}}",
        batch.identity.request_id(),
        "p".repeat((1 << 20) - 100)
    );
    receiver.raw_next(1, &RawReply::json(200, fits));
    sink.deliver(&batch).await.unwrap();
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let receiver = receiver();
    receiver.delay_next(1, Duration::from_secs(3));
    let mut cfg = config(&receiver.url());
    cfg.request_timeout = Duration::from_millis(500);
    let sink = sink(cfg);
    let batch = sample_batch();
    let started = Instant::now();
    let error = sink.deliver(&batch).await.unwrap_err();
    let elapsed = started.elapsed();
    let (code, _, retryable) = destination_error(&error);
    assert_eq!(code, codes::REQUEST_TIMEOUT);
    assert!(retryable);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // A delay under the timeout is fine.
    receiver.delay_next(1, Duration::from_millis(100));
    sink.deliver(&batch).await.unwrap();
}

#[tokio::test]
async fn a_server_that_is_down_is_a_connection_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = sink(config(&format!("http://127.0.0.1:{port}/")));
    let error = sink.deliver(&sample_batch()).await.unwrap_err();
    let (code, message, retryable) = destination_error(&error);
    assert_eq!(code, codes::CONNECTION_FAILED);
    assert!(retryable);
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_to_connect() {
    // The TLS handshake (rustls) fails against a server that speaks plain HTTP.
    let receiver = receiver();
    let url = format!("https://{}/", receiver.addr());
    let error = sink(config(&url))
        .deliver(&sample_batch())
        .await
        .unwrap_err();
    let (code, _, retryable) = destination_error(&error);
    assert_eq!(code, codes::CONNECTION_FAILED);
    assert!(retryable);
}

#[tokio::test]
async fn a_dropped_connection_is_a_reset() {
    let receiver = receiver();
    receiver.drop_next(1);
    let sink = sink(config(&receiver.url()));
    let batch = sample_batch();
    let error = sink.deliver(&batch).await.unwrap_err();
    let (code, _, retryable) = destination_error(&error);
    assert_eq!(code, codes::CONNECTION_RESET);
    assert!(retryable);
    sink.deliver(&batch).await.unwrap();
    assert_eq!(receiver.distinct_request_ids().len(), 1);
}

fn many(count: usize) -> Batch {
    batch_of((0..count).map(|i| format!("r{i}").into_bytes()).collect())
}

#[tokio::test]
async fn over_ten_thousand_records_go_as_several_requests_with_stable_ids() {
    let batch = many(25_000);
    let plan = plan_requests(&batch);
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0].request_id, batch.identity.request_id());

    let receiver = receiver();
    let delivered = sink(config(&receiver.url())).deliver(&batch).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(
        requests.iter().map(|r| r.records.len()).collect::<Vec<_>>(),
        [RECORDS_PER_REQUEST_MAX, RECORDS_PER_REQUEST_MAX, 5_000]
    );
    assert_eq!(
        receiver.distinct_request_ids(),
        plan.iter()
            .map(|p| p.request_id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(receiver.records_accepted(), data(&batch));
    assert_eq!(delivered.records, 25_000);
    assert_eq!(delivered.target, batch.identity.request_id());
    assert_eq!(
        delivered.wire_bytes,
        requests.iter().map(|r| r.wire_bytes as u64).sum::<u64>()
    );

    // Another process sends the same batch with the same ids.
    let again = HttpReceiver::start_default().unwrap();
    sink(config(&again.url())).deliver(&batch).await.unwrap();
    assert_eq!(
        again.distinct_request_ids(),
        receiver.distinct_request_ids()
    );
}

#[tokio::test]
async fn a_retry_resumes_at_the_part_that_failed() {
    let batch = many(25_000);
    let plan = plan_requests(&batch);
    let receiver = receiver();
    let sink = sink(config(&receiver.url()));
    // Part 0 is accepted, part 1 fails once.
    receiver.script(1, hydrant_tests::http_receiver::Reply::Accept);
    receiver.fail_next(1, 503, "busy");
    assert!(sink.deliver(&batch).await.unwrap_err().is_retryable());
    sink.deliver(&batch).await.unwrap();
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.request_id.clone().unwrap())
        .collect();
    let planned: Vec<&str> = plan.iter().map(|p| p.request_id.as_str()).collect();
    assert_eq!(ids, [planned[0], planned[1], planned[1], planned[2]]);
    assert_eq!(receiver.records_accepted(), data(&batch));
}

#[tokio::test]
async fn give_up_files_only_the_parts_not_accepted() {
    let batch = many(25_000);
    let receiver = receiver();
    let sink = sink(config(&receiver.url()));
    receiver.script(1, hydrant_tests::http_receiver::Reply::Accept);
    receiver.fail_next(1, 500, "down");
    let error = sink.deliver(&batch).await.unwrap_err();
    let failed = sink.give_up(&batch, &error, 3).await.unwrap();
    assert_eq!(failed.len(), 15_000);
    assert_eq!(failed[0].raw_data, batch.records[10_000].data);
    assert_eq!(
        failed[0].error_message,
        "Received the following response from the endpoint destination. 500: down"
    );
    // After give_up the batch is forgotten: delivering it again starts from part 0.
    sink.deliver(&batch).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[2].request_id, Some(batch.identity.request_id()));
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let receiver = receiver();
    let delivered = sink(config(&receiver.url()))
        .deliver(&batch_of(Vec::new()))
        .await
        .unwrap();
    assert_eq!(delivered.records, 0);
    assert!(receiver.requests().is_empty());
}

#[test]
fn plain_http_needs_a_loopback_host_or_the_switch() {
    assert_eq!(
        config("http://198.51.100.7/ingest").validate(),
        Err(HttpConfigError::PlainHttp)
    );
    assert!(matches!(
        HttpEndpointSink::new(config("http://example.com/")),
        Err(SinkError::Config(message)) if message.contains("plain http")
    ));
    let mut allowed = config("http://198.51.100.7/ingest");
    allowed.allow_plain_http = true;
    assert!(HttpEndpointSink::new(allowed).is_ok());
    assert!(HttpEndpointSink::new(config("http://127.0.0.1:1/")).is_ok());
    assert!(HttpEndpointSink::new(config("https://example.com/")).is_ok());
}

#[test]
fn plain_http_allowed_reaches_a_receiver_from_a_sync_test() {
    // The receiver runs its own runtime; a sync test drives the sink on a runtime of its own.
    let receiver = receiver();
    let url = receiver.url().replace("127.0.0.1", "localhost");
    let sink = sink(config(&url));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(sink.deliver(&sample_batch())).unwrap();
    assert_eq!(receiver.records_accepted(), data(&sample_batch()));
}
