//! `ProcessingConfiguration` against real Lambda stand-in functions: the tests' `LambdaServer`
//! (hydrant-tests) serves them over real sockets, through the Lambda Invoke API (SigV4 header
//! required) and as plain URLs, and records every invocation.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hydrant_sinks::transform::{LambdaSettings, Pipeline, Processed, TransformConfigError};
use hydrant_sinks::{Batch, BatchIdentity, ErrorOutputType, FailureDetail};
use hydrant_tests::lambda::{functions, FunctionReply, LambdaServer, Route};
use md5::{Digest as _, Md5};
use prost::Message as _;
use serde_json::{json, Value};

const STREAM_ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/orders";

fn identity(first_lsn: u64, last_lsn: u64) -> BatchIdentity {
    BatchIdentity {
        stream: "orders".into(),
        incarnation: "inc-1".into(),
        destination_id: "destinationId-000000000001".into(),
        first_lsn,
        last_lsn,
    }
}

/// A batch of records at LSNs 100, 101, ... with the given data.
fn batch(data: &[&[u8]]) -> Batch {
    common::batch(
        identity(100, 100 + data.len().max(1) as u64 - 1),
        1_700_000_000_000,
        1_700_000_000_000,
        data.iter().map(|d| Bytes::copy_from_slice(d)),
    )
}

fn data(processed: &Processed) -> Vec<String> {
    processed
        .batch
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect()
}

fn keys(processed: &Processed) -> Vec<(u64, u32)> {
    processed
        .batch
        .records
        .iter()
        .map(|r| (r.lsn, r.sub))
        .collect()
}

fn invoke_settings(server: &LambdaServer) -> LambdaSettings {
    LambdaSettings {
        invoke_endpoint: Some(server.invoke_endpoint()),
        region: "us-east-1".into(),
        credentials: Some(("AKIDHYDRANTTEST".into(), "hydrant-secret".into(), None)),
        function_urls: BTreeMap::new(),
        timeout: Duration::from_secs(10),
    }
}

fn url_settings(server: &LambdaServer, name: &str) -> LambdaSettings {
    LambdaSettings {
        invoke_endpoint: None,
        function_urls: BTreeMap::from([(LambdaServer::arn(name), server.url(name))]),
        timeout: Duration::from_secs(10),
        ..LambdaSettings::default()
    }
}

/// `ProcessingConfiguration` with one Lambda processor for function `name`, plus `extra`
/// parameters.
fn lambda_config(name: &str, extra: &[(&str, &str)]) -> Value {
    let mut parameters =
        vec![json!({"ParameterName": "LambdaArn", "ParameterValue": LambdaServer::arn(name)})];
    for (n, v) in extra {
        parameters.push(json!({"ParameterName": n, "ParameterValue": v}));
    }
    json!({"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": parameters}]})
}

fn pipeline(configuration: &Value, settings: &LambdaSettings) -> Pipeline {
    Pipeline::from_firehose(configuration, settings)
        .unwrap()
        .expect("an enabled configuration makes a pipeline")
}

fn start() -> LambdaServer {
    LambdaServer::start().expect("the Lambda test server starts")
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[tokio::test]
async fn uppercase_through_the_invoke_api_is_signed_for_lambda() {
    let server = start();
    let p = pipeline(&lambda_config("uppercase", &[]), &invoke_settings(&server));
    assert_eq!(
        p.lambda_arn(),
        Some(LambdaServer::arn("uppercase").as_str())
    );
    let input = batch(&[b"alpha", b"beta", b""]);
    let processed = p.process(input.clone(), STREAM_ARN).await.unwrap();

    assert_eq!(data(&processed), vec!["ALPHA", "BETA", ""]);
    assert_eq!(keys(&processed), vec![(100, 0), (101, 0), (102, 0)]);
    assert_eq!(processed.batch.identity, input.identity);
    assert_eq!(
        processed.batch.records[1].arrival_ms,
        input.records[1].arrival_ms
    );
    assert!(processed.failed.is_empty());

    let calls = server.invocations_of("uppercase");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.route, Route::InvokeApi);
    let authorization = call.header("authorization").unwrap();
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDHYDRANTTEST/"));
    assert!(
        authorization.contains("/us-east-1/lambda/aws4_request"),
        "{authorization}"
    );
    assert!(call.header("x-amz-date").is_some());
    assert_eq!(
        call.header("x-amz-invocation-type"),
        Some("RequestResponse")
    );
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.event["deliveryStreamArn"], STREAM_ARN);
    assert_eq!(call.event["region"], "us-east-1");
    assert!(is_uuid(call.event["invocationId"].as_str().unwrap()));
    let records = call.event["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0]["approximateArrivalTimestamp"],
        1_700_000_000_000u64
    );
    assert_eq!(records[1]["data"], "YmV0YQ==");
    assert_eq!(records[0]["recordId"], "000000000000000001000000000000");
}

#[tokio::test]
async fn invoke_api_without_credentials_is_refused_by_the_server_and_not_retried() {
    let server = start();
    let mut settings = invoke_settings(&server);
    settings.credentials = None;
    let p = pipeline(&lambda_config("uppercase", &[]), &settings);
    let processed = p.process(batch(&[b"a"]), STREAM_ARN).await.unwrap();
    assert!(processed.batch.records.is_empty());
    assert_eq!(processed.failed.len(), 1);
    assert_eq!(processed.failed[0].error_code, "Lambda.InvokeAccessDenied");
    assert_eq!(processed.failed[0].attempts_made, 1);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn uppercase_through_a_plain_url() {
    let server = start();
    let p = pipeline(
        &lambda_config("uppercase", &[]),
        &url_settings(&server, "uppercase"),
    );
    let processed = p
        .process(batch(&[b"one", b"two"]), STREAM_ARN)
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["ONE", "TWO"]);
    let calls = server.invocations_of("uppercase");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, Route::Url);
    assert_eq!(calls[0].header("authorization"), None);
}

#[tokio::test]
async fn dropped_records_are_removed() {
    let server = start();
    let p = pipeline(&lambda_config("drop_even", &[]), &invoke_settings(&server));
    let processed = p
        .process(batch(&[b"r0", b"r1", b"r2", b"r3", b"r4"]), STREAM_ARN)
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["r1", "r3"]);
    assert_eq!(keys(&processed), vec![(101, 0), (103, 0)]);
    assert!(processed.failed.is_empty());
}

#[tokio::test]
async fn processing_failed_records_become_failed_record_json() {
    let server = start();
    let p = pipeline(
        &lambda_config("fail_marked", &[]),
        &invoke_settings(&server),
    );
    let processed = p
        .process(
            batch(&[b"fine", b"please FAIL me", b"also fine"]),
            STREAM_ARN,
        )
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["fine", "also fine"]);
    assert_eq!(processed.failed.len(), 1);
    let failed = &processed.failed[0];
    assert_eq!(
        failed.error_output_type(),
        ErrorOutputType::ProcessingFailed
    );
    assert_eq!(
        failed.detail,
        FailureDetail::Processing {
            lambda_arn: LambdaServer::arn("fail_marked")
        }
    );
    let document: Value = serde_json::from_slice(&failed.to_json()).unwrap();
    assert_eq!(document["errorCode"], "Lambda.ProcessingFailedStatus");
    assert_eq!(
        document["errorMessage"],
        "ProcessingFailed status set for record"
    );
    assert_eq!(document["attemptsMade"], 1);
    assert_eq!(document["arrivalTimestamp"], 1_700_000_000_001u64);
    assert_eq!(document["rawData"], "cGxlYXNlIEZBSUwgbWU=");
    assert_eq!(document["lambdaARN"], LambdaServer::arn("fail_marked"));
}

/// Runs function `name` on three records and returns the processed batch and the number of
/// invocations it took.
async fn run(server: &LambdaServer, name: &str, extra: &[(&str, &str)]) -> (Processed, usize) {
    let p = pipeline(&lambda_config(name, extra), &invoke_settings(server));
    let processed = p
        .process(batch(&[b"x", b"y", b"z"]), STREAM_ARN)
        .await
        .unwrap();
    (processed, server.invocations_of(name).len())
}

fn assert_all_failed(processed: &Processed, code: &str, attempts: u32) {
    assert!(
        processed.batch.records.is_empty(),
        "{:?}",
        processed.batch.records
    );
    assert_eq!(processed.failed.len(), 3);
    for (failed, raw) in processed.failed.iter().zip(["x", "y", "z"]) {
        assert_eq!(failed.error_code, code, "{}", failed.error_message);
        assert_eq!(failed.attempts_made, attempts);
        assert_eq!(failed.raw_data, raw.as_bytes());
    }
}

#[tokio::test]
async fn missing_record_id_fails_the_invocation_without_retries() {
    let server = start();
    let (processed, calls) = run(&server, "missing_id", &[]).await;
    assert_all_failed(&processed, "Lambda.MissingRecordId", 1);
    assert_eq!(calls, 1, "Firehose does not retry a reply that misses ids");
    assert!(processed.failed[0]
        .error_message
        .starts_with("One or more record Ids were not returned."));
}

#[tokio::test]
async fn duplicated_record_id_fails_the_invocation_without_retries() {
    let server = start();
    let (processed, calls) = run(&server, "duplicate_id", &[]).await;
    assert_all_failed(&processed, "Lambda.DuplicatedRecordId", 1);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn unparsable_reply_is_a_json_processing_exception() {
    let server = start();
    let (processed, calls) = run(&server, "bad_json", &[]).await;
    assert_all_failed(&processed, "Lambda.JsonProcessingException", 1);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn flaky_function_succeeds_after_retries_with_fresh_invocation_ids() {
    let server = start();
    server.register("flaky", functions::flaky(2));
    let (processed, calls) = run(&server, "flaky", &[]).await;
    assert!(processed.failed.is_empty(), "{:?}", processed.failed);
    assert_eq!(data(&processed), vec!["X", "Y", "Z"]);
    assert_eq!(calls, 3);
    let invocations = server.invocations_of("flaky");
    let ids: Vec<&Value> = invocations
        .iter()
        .map(|i| &i.event["invocationId"])
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    // The records are the same on every attempt.
    assert_eq!(invocations[0].records(), invocations[2].records());
}

#[tokio::test]
async fn function_errors_exhaust_the_retries() {
    let server = start();
    server.register("always_failing", functions::flaky(usize::MAX));
    let (processed, calls) = run(&server, "always_failing", &[("NumberOfRetries", "2")]).await;
    assert_all_failed(&processed, "Lambda.FunctionError", 3);
    assert_eq!(calls, 3);
    assert!(processed.failed[0]
        .error_message
        .contains("returned an error result"));
}

#[tokio::test]
async fn number_of_retries_zero_invokes_once() {
    let server = start();
    server.register("flaky", functions::flaky(1));
    let (processed, calls) = run(&server, "flaky", &[("NumberOfRetries", "0")]).await;
    assert_all_failed(&processed, "Lambda.FunctionError", 1);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn throttling_is_retried_then_invoke_limit_exceeded() {
    let server = start();
    server.register("throttled", |_| FunctionReply::throttled());
    let (processed, calls) = run(&server, "throttled", &[("NumberOfRetries", "1")]).await;
    assert_all_failed(&processed, "Lambda.InvokeLimitExceeded", 2);
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn unknown_function_is_resource_not_found_without_retries() {
    let server = start();
    let (processed, calls) = run(&server, "no_such_function", &[]).await;
    assert_all_failed(&processed, "Lambda.ResourceNotFound", 1);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_slow_function_times_out() {
    let server = start();
    server.register("slow", |event| {
        FunctionReply::Delayed(
            Duration::from_secs(3),
            Box::new(functions::uppercase(event)),
        )
    });
    let mut settings = invoke_settings(&server);
    settings.timeout = Duration::from_millis(300);
    let p = pipeline(
        &lambda_config("slow", &[("NumberOfRetries", "0")]),
        &settings,
    );
    let processed = p.process(batch(&[b"x"]), STREAM_ARN).await.unwrap();
    assert_eq!(processed.failed.len(), 1);
    assert_eq!(processed.failed[0].error_code, "Lambda.FunctionTimedOut");
}

#[tokio::test]
async fn record_and_invocation_ids_are_the_same_on_a_second_run() {
    let server = start();
    let config = lambda_config("uppercase", &[("BufferSizeInMBs", "0.2")]);
    let p = pipeline(&config, &invoke_settings(&server));
    let big = vec![b'q'; 80_000];
    let records: Vec<&[u8]> = (0..5).map(|_| big.as_slice()).collect();
    let input = batch(&records);

    let first = p.process(input.clone(), STREAM_ARN).await.unwrap();
    let first_calls = server.invocations();
    server.clear_invocations();
    // A new pipeline, as after a restart.
    let p = pipeline(&config, &invoke_settings(&server));
    let second = p.process(input.clone(), STREAM_ARN).await.unwrap();
    let second_calls = server.invocations();

    assert_eq!(first.batch.records, second.batch.records);
    assert_eq!(
        first_calls.len(),
        3,
        "80 KB records, 0.2 MB invocations: 2 + 2 + 1"
    );
    let ids = |calls: &[hydrant_tests::lambda::Invocation]| -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = calls
            .iter()
            .map(|c| {
                (
                    c.event["invocationId"].as_str().unwrap().to_owned(),
                    c.records().into_iter().map(|(id, _)| id).collect(),
                )
            })
            .collect();
        // Invocations run concurrently: compare them by their records, not arrival order.
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    };
    assert_eq!(ids(&first_calls), ids(&second_calls));
    let distinct: std::collections::BTreeSet<String> =
        ids(&first_calls).into_iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), 3);

    // Another batch (another identity) gets other invocation ids.
    let mut other = input.clone();
    other.identity.incarnation = "inc-2".into();
    server.clear_invocations();
    p.process(other, STREAM_ARN).await.unwrap();
    let other_ids: std::collections::BTreeSet<String> = server
        .invocations()
        .iter()
        .map(|c| c.event["invocationId"].as_str().unwrap().to_owned())
        .collect();
    assert!(other_ids.is_disjoint(&distinct));
}

#[tokio::test]
async fn invocations_are_cut_by_buffer_size() {
    let server = start();
    let p = pipeline(
        &lambda_config("uppercase", &[("BufferSizeInMBs", "0.2")]),
        &invoke_settings(&server),
    );
    assert_eq!(p.lambda_buffer_bytes(), Some(209_715));
    assert_eq!(p.lambda_buffer_interval(), Some(Duration::from_secs(60)));
    // 0.2 MB = 209,715 bytes: four 50,000-byte records fit, a fifth does not.
    let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 50_000]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let processed = p.process(batch(&refs), STREAM_ARN).await.unwrap();
    assert!(processed.failed.is_empty());
    let expected: Vec<String> = payloads
        .iter()
        .map(|d| String::from_utf8(d.to_ascii_uppercase()).unwrap())
        .collect();
    assert_eq!(
        data(&processed),
        expected,
        "order is kept across invocations"
    );
    let mut sizes: Vec<usize> = server
        .invocations_of("uppercase")
        .iter()
        .map(|c| c.records().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![2, 4, 4]);

    // With the default 1 MB the same batch is one invocation.
    server.clear_invocations();
    let p = pipeline(&lambda_config("uppercase", &[]), &invoke_settings(&server));
    p.process(batch(&refs), STREAM_ARN).await.unwrap();
    assert_eq!(server.invocations_of("uppercase").len(), 1);
}

#[tokio::test]
async fn append_delimiter_runs_after_the_lambda() {
    let server = start();
    let config = json!({"Enabled": true, "Processors": [
        {"Type": "AppendDelimiterToRecord"},
        {"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": LambdaServer::arn("append_suffix")}]},
    ]});
    let p = pipeline(&config, &invoke_settings(&server));
    let processed = p.process(batch(&[b"a", b"b"]), STREAM_ARN).await.unwrap();
    assert_eq!(data(&processed), vec!["a+lambda\n", "b+lambda\n"]);
    // The function saw the records without the delimiter.
    assert_eq!(
        server.invocations_of("append_suffix")[0].records()[0].1,
        b"a".to_vec()
    );
}

#[tokio::test]
async fn append_delimiter_alone_and_with_a_custom_delimiter() {
    let settings = LambdaSettings::default();
    let newline = json!({"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord"}]});
    let p = pipeline(&newline, &settings);
    assert_eq!(p.lambda_arn(), None);
    let processed = p
        .process(batch(&[b"{\"a\":1}", b""]), STREAM_ARN)
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["{\"a\":1}\n", "\n"]);

    let custom = json!({"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord",
        "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "fHw="}]}]});
    let processed = pipeline(&custom, &settings)
        .process(batch(&[b"x"]), STREAM_ARN)
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["x||"]);
}

/// The KPL aggregated format, written independently of hydrant's decoder.
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<UserRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct UserRecord {
    #[prost(uint64, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, tag = "2")]
    explicit_hash_key_index: u64,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tag {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

fn kpl_aggregate(user_records: &[&[u8]]) -> Vec<u8> {
    let message = AggregatedRecord {
        partition_key_table: vec!["pk-a".into(), "pk-b".into()],
        explicit_hash_key_table: vec!["42".into()],
        records: user_records
            .iter()
            .enumerate()
            .map(|(i, d)| UserRecord {
                partition_key_index: (i % 2) as u64,
                explicit_hash_key_index: 0,
                data: d.to_vec(),
                tags: vec![Tag {
                    key: "n".into(),
                    value: i.to_string(),
                }],
            })
            .collect(),
    }
    .encode_to_vec();
    let mut out = vec![0xF3, 0x89, 0x9A, 0xC2];
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

fn deaggregation_config(sub_record_type: &str, lambda: Option<&str>) -> Value {
    let mut processors = vec![json!({"Type": "RecordDeAggregation", "Parameters": [
        {"ParameterName": "SubRecordType", "ParameterValue": sub_record_type}]})];
    if let Some(name) = lambda {
        processors.insert(
            0,
            json!({"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": LambdaServer::arn(name)}]}),
        );
    }
    json!({"Enabled": true, "Processors": processors})
}

#[tokio::test]
async fn kpl_records_are_deaggregated_before_the_lambda() {
    let server = start();
    let aggregated = kpl_aggregate(&[b"first", b"second", b"third"]);
    let mut corrupt = kpl_aggregate(&[b"lost"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    let p = pipeline(
        &deaggregation_config("KPL", Some("uppercase")),
        &invoke_settings(&server),
    );
    let processed = p
        .process(batch(&[&aggregated, b"plain", &corrupt]), STREAM_ARN)
        .await
        .unwrap();
    assert_eq!(data(&processed), vec!["FIRST", "SECOND", "THIRD", "PLAIN"]);
    assert_eq!(
        keys(&processed),
        vec![(100, 0), (100, 1), (100, 2), (101, 0)]
    );
    let calls = server.invocations_of("uppercase");
    assert_eq!(calls.len(), 1);
    let sent: Vec<(String, Vec<u8>)> = calls[0].records();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[1].0, "000000000000000001000000000001");
    assert_eq!(sent[1].1, b"second".to_vec());

    assert_eq!(processed.failed.len(), 1);
    let failed = &processed.failed[0];
    assert_eq!(failed.error_code, "DeAggregation.KplChecksumMismatch");
    assert_eq!(failed.raw_data, corrupt);
    assert_eq!(
        failed.error_output_type(),
        ErrorOutputType::ProcessingFailed
    );
}

#[tokio::test]
async fn json_records_are_deaggregated() {
    let config = json!({"Enabled": true, "Processors": [
        {"Type": "RecordDeAggregation", "Parameters": [
            {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
        {"Type": "AppendDelimiterToRecord"},
    ]});
    let p = pipeline(&config, &LambdaSettings::default());
    let processed = p
        .process(
            batch(&[
                b"{\"id\":1}{\"id\":2}\n{\"id\":3}\n",
                b"{\"id\":4}",
                b"[{\"id\":5}]",
            ]),
            STREAM_ARN,
        )
        .await
        .unwrap();
    assert_eq!(
        data(&processed),
        vec![
            "{\"id\":1}\n",
            "{\"id\":2}\n",
            "{\"id\":3}\n",
            "{\"id\":4}\n"
        ]
    );
    assert_eq!(
        keys(&processed),
        vec![(100, 0), (100, 1), (100, 2), (101, 0)]
    );
    assert_eq!(processed.failed.len(), 1);
    assert_eq!(processed.failed[0].error_code, "DeAggregation.InvalidJson");
    assert_eq!(processed.failed[0].raw_data, &b"[{\"id\":5}]"[..]);
}

#[test]
fn configurations_that_are_refused_or_make_no_pipeline() {
    let settings = LambdaSettings::default();
    assert!(Pipeline::from_firehose(
        &json!({"Enabled": false, "Processors": [
        {"Type": "AppendDelimiterToRecord"}]}),
        &settings
    )
    .unwrap()
    .is_none());
    assert!(Pipeline::from_firehose(
        &json!({"Processors": [{"Type": "AppendDelimiterToRecord"}]}),
        &settings
    )
    .unwrap()
    .is_none());
    assert!(
        Pipeline::from_firehose(&json!({"Enabled": true, "Processors": []}), &settings)
            .unwrap()
            .is_none()
    );

    // A Lambda with neither a URL nor an endpoint cannot be reached; validation alone passes.
    let config = lambda_config("uppercase", &[]);
    assert!(Pipeline::validate(&config).is_ok());
    assert!(matches!(
        Pipeline::from_firehose(&config, &settings),
        Err(TransformConfigError::UnreachableLambda { .. })
    ));

    for unsupported in ["Decompression", "CloudWatchLogProcessing"] {
        let e =
            Pipeline::validate(&json!({"Enabled": true, "Processors": [{"Type": unsupported}]}))
                .unwrap_err();
        assert!(e.to_string().contains(unsupported), "{e}");
    }
    for (name, value) in [
        ("NumberOfRetries", "301"),
        ("BufferSizeInMBs", "0.1"),
        ("BufferSizeInMBs", "4"),
        ("BufferIntervalInSeconds", "901"),
        ("SubRecordType", "JSON"),
        ("Nonsense", "1"),
    ] {
        assert!(
            Pipeline::validate(&lambda_config("uppercase", &[(name, value)])).is_err(),
            "{name}={value}"
        );
    }
    let e = Pipeline::validate(&deaggregation_config("XML", None)).unwrap_err();
    assert!(
        matches!(e, TransformConfigError::InvalidParameterValue { .. }),
        "{e}"
    );
    assert!(
        Pipeline::validate(&json!({"Enabled": true, "Processors": [{"Type": "Lambda",
        "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": "uppercase"}]}]}))
        .is_err()
    );
}
