//! Every non-S3 destination through boto3 → hydrantd → the destination: a real PostgreSQL
//! (the Redshift destination, `COPY ... JSON 'auto'`), the OpenSearch `_bulk` stand-in, an HTTP
//! endpoint receiver behind a Lambda transform reached through the Lambda Invoke API (and one
//! reached by a plain URL), with DescribeDeliveryStream's shapes and the create-time refusals of
//! bad configurations (InvalidArgumentException), all sent by boto3 (tests/python/destinations.py).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::objects::files_under;
use common::{wait_for, Daemon};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

fn s3(bucket: &str) -> Value {
    json!({
        "RoleARN": ROLE,
        "BucketARN": format!("arn:aws:s3:::{bucket}"),
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
    })
}

#[test]
fn boto3_to_postgres_opensearch_and_http_endpoint_with_lambda() {
    let pg = hydrant_tests::pg::TestPostgres::start().unwrap();
    pg.create_database("ci").unwrap();
    pg.psql(
        "ci",
        "CREATE TABLE events (k text NOT NULL, n integer, note varchar(5))",
    );
    let bulk = hydrant_tests::bulk::BulkReceiver::start().unwrap();
    let receiver = hydrant_tests::http_receiver::HttpReceiver::start(
        hydrant_tests::http_receiver::ReceiverOptions {
            access_key: Some("receiver-key-1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let lambda = hydrant_tests::lambda::LambdaServer::start().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(&data, &format!(
            "[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\nhttp_backoff_initial_ms = 50\nhttp_backoff_max_ms = 500\n\n\
             [lambda]\nendpoint = \"{}\"\naccess_key_id = \"AKIDLAMBDA\"\n\
             secret_access_key = \"lambda-secret\"\n\n\
             [lambda.functions]\n\"{}\" = \"{}\"\n",
            lambda.invoke_endpoint(),
            hydrant_tests::lambda::LambdaServer::arn("append_suffix"),
            lambda.url("append_suffix"),
        ));
    let lambda_processing = |name: &str| {
        json!({"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn",
             "ParameterValue": hydrant_tests::lambda::LambdaServer::arn(name)},
            {"ParameterName": "NumberOfRetries", "ParameterValue": "2"}]}]})
    };
    let redshift = json!({
        "RoleARN": ROLE,
        "ClusterJDBCURL": pg.jdbc_url("ci"),
        "CopyCommand": {"DataTableName": "events", "DataTableColumns": "k,n,note",
                        "CopyOptions": "JSON 'auto' TRUNCATECOLUMNS"},
        "Username": "postgres",
        "Password": "password-1",
        "S3Configuration": s3("pg-intermediate"),
    });
    let opensearch = json!({
        "RoleARN": ROLE,
        "ClusterEndpoint": bulk.url(),
        "IndexName": "events",
        "IndexRotationPeriod": "OneDay",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "S3Configuration": s3("os-backup"),
    });
    let http = json!({
        "EndpointConfiguration": {"Url": receiver.url(), "Name": "receiver",
                                  "AccessKey": "receiver-key-1"},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "RequestConfiguration": {"ContentEncoding": "GZIP",
            "CommonAttributes": [{"AttributeName": "team", "AttributeValue": "data"}]},
        "ProcessingConfiguration": lambda_processing("uppercase"),
        "S3Configuration": s3("http-backup"),
    });
    let mut http_plain_url = http.clone();
    http_plain_url["ProcessingConfiguration"] = lambda_processing("append_suffix");

    let with = |base: &Value, path: &[&str], v: Value| {
        let mut c = base.clone();
        let mut slot = &mut c;
        for p in path {
            slot = &mut slot[*p];
        }
        *slot = v;
        c
    };
    let refuse = |why: &str, member: &str, config: Value| json!({"name": format!("bad-{}", why.len()), "member": member, "config": config, "why": why});
    let n = 120;
    let records = |tag: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!(r#"{{"k":"{tag}-{i}","n":{i},"note":"note-{i}"}}"#))
            .collect()
    };
    let plan = json!({
        "refuse": [
            refuse("unknown COPY option", "RedshiftDestinationConfiguration",
                with(&redshift, &["CopyCommand", "CopyOptions"], json!("JSON 'auto' MANIFEST"))),
            refuse("a jsonpaths file", "RedshiftDestinationConfiguration",
                with(&redshift, &["CopyCommand", "CopyOptions"], json!("JSON 's3://b/paths.json'"))),
            refuse("a MySQL JDBC URL", "RedshiftDestinationConfiguration",
                with(&redshift, &["ClusterJDBCURL"], json!("jdbc:mysql://127.0.0.1:3306/db"))),
            refuse("a Prefix with expressions for Redshift", "RedshiftDestinationConfiguration",
                with(&redshift, &["S3Configuration", "Prefix"], json!("p/!{timestamp:yyyy}/"))),
            refuse("ZIP for Redshift", "RedshiftDestinationConfiguration",
                with(&redshift, &["S3Configuration", "CompressionFormat"], json!("ZIP"))),
            refuse("an index rotation that does not exist", "AmazonopensearchserviceDestinationConfiguration",
                with(&opensearch, &["IndexRotationPeriod"], json!("OneYear"))),
            refuse("plain http to a remote endpoint", "HttpEndpointDestinationConfiguration",
                with(&http, &["EndpointConfiguration", "Url"], json!("http://example.com/in"))),
            refuse("an unsupported processor", "HttpEndpointDestinationConfiguration",
                with(&http, &["ProcessingConfiguration"], json!({"Enabled": true, "Processors": [
                    {"Type": "CloudWatchLogProcessing", "Parameters": [
                        {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]}))),
        ],
        "create": [
            {"name": "to-pg", "member": "RedshiftDestinationConfiguration", "config": redshift},
            {"name": "to-os", "member": "AmazonopensearchserviceDestinationConfiguration", "config": opensearch},
            {"name": "to-http", "member": "HttpEndpointDestinationConfiguration", "config": http},
            {"name": "to-http-url", "member": "HttpEndpointDestinationConfiguration", "config": http_plain_url},
        ],
        "put": [
            {"name": "to-pg", "records": records("pg")},
            {"name": "to-os", "records": records("os")},
            {"name": "to-http", "records": records("http")},
            {"name": "to-http-url", "records": records("url")},
        ],
    });
    let out = common::run_destinations_py(&daemon.endpoint(), &plan, tmp.path());
    assert_eq!(
        out["refused"].as_object().unwrap().len(),
        8,
        "{}",
        out["refused"]
    );
    for (why, message) in out["refused"].as_object().unwrap() {
        eprintln!("refused ({why}): {message}");
    }
    assert_eq!(out["acked"].as_array().unwrap().len(), 4 * n);

    // DescribeDeliveryStream: AWS's shapes, defaults filled in, secrets not returned.
    let d = &out["described"];
    let rs = &d["to-pg"]["Destinations"][0]["RedshiftDestinationDescription"];
    assert_eq!(rs["ClusterJDBCURL"], pg.jdbc_url("ci"));
    assert_eq!(rs["CopyCommand"]["DataTableName"], "events");
    assert_eq!(rs["Username"], "postgres");
    assert!(rs.get("Password").is_none(), "{rs}");
    assert_eq!(rs["RetryOptions"]["DurationInSeconds"], 3600);
    assert_eq!(
        rs["S3DestinationDescription"]["BucketARN"],
        "arn:aws:s3:::pg-intermediate"
    );
    let os = &d["to-os"]["Destinations"][0]["AmazonopensearchserviceDestinationDescription"];
    assert_eq!(os["IndexRotationPeriod"], "OneDay");
    assert_eq!(os["S3BackupMode"], "FailedDocumentsOnly");
    assert_eq!(os["RetryOptions"]["DurationInSeconds"], 300);
    assert_eq!(
        os["DocumentIdOptions"]["DefaultDocumentIdFormat"],
        "FIREHOSE_DEFAULT"
    );
    let he = &d["to-http"]["Destinations"][0]["HttpEndpointDestinationDescription"];
    assert_eq!(he["EndpointConfiguration"]["Url"], receiver.url());
    assert!(
        he["EndpointConfiguration"].get("AccessKey").is_none(),
        "{he}"
    );
    assert_eq!(he["RequestConfiguration"]["ContentEncoding"], "GZIP");
    assert_eq!(he["S3BackupMode"], "FailedDataOnly");

    // PostgreSQL: every row once, JSON keys mapped to columns, TRUNCATECOLUMNS applied.
    wait_for("PostgreSQL rows", &daemon, || {
        pg.psql("ci", "SELECT count(*) FROM events").trim() == n.to_string()
    });
    let rows = pg.psql("ci", "SELECT k, n, note FROM events ORDER BY n");
    let first = rows.lines().next().unwrap();
    assert_eq!(first, "pg-0|0|note-");
    let offsets = pg.psql(
        "ci",
        "SELECT next_lsn FROM hydrant_offsets WHERE stream = 'to-pg'",
    );
    assert_eq!(offsets.trim(), n.to_string(), "next_lsn after {n} records");
    // The intermediate objects, named as Firehose names them, in the local object store.
    let inter = data.join("objects/pg-intermediate");
    assert!(
        files_under(&inter).iter().any(|p| p.contains("to-pg-1-")),
        "no intermediate object under {}",
        inter.display()
    );

    // OpenSearch: one document per record, in the day's index.
    wait_for("OpenSearch documents", &daemon, || {
        bulk.documents().len() == n
    });
    let docs = bulk.documents();
    let day = docs.keys().next().unwrap().0.clone();
    assert!(
        day.starts_with("events-20") && day.len() == "events-2026-11-25".len(),
        "{day}"
    );
    let keys: BTreeSet<String> = docs
        .values()
        .map(|v| v["k"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), n);

    // HTTP endpoint: records upper-cased by the Lambda (Invoke API, signed), with the access
    // key and common attributes; the plain-URL function appended its suffix.
    wait_for("HTTP records", &daemon, || {
        receiver.records_accepted().len() == 2 * n
    });
    let accepted: Vec<String> = receiver
        .records_accepted()
        .iter()
        .map(|r| String::from_utf8(r.clone()).unwrap())
        .collect();
    assert_eq!(
        accepted
            .iter()
            .filter(|r| r.starts_with(r#"{"K":"HTTP-"#))
            .count(),
        n,
        "{:?}",
        &accepted[..3]
    );
    assert_eq!(
        accepted
            .iter()
            .filter(|r| r.starts_with(r#"{"k":"url-"#))
            .count(),
        n
    );
    let req = &receiver.requests()[0];
    assert_eq!(
        req.header("x-amz-firehose-access-key"),
        Some("receiver-key-1")
    );
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(
        req.common_attributes
            .as_ref()
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("data")
    );
    let invoked = lambda.invocations_of("uppercase");
    assert!(!invoked.is_empty());
    assert!(invoked[0]
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKIDLAMBDA/"));
    assert!(!lambda.invocations_of("append_suffix").is_empty());
}

/// ExtendedS3 with a Lambda transform and source-record backup: the transformed records in the
/// destination bucket, the untransformed ones in the backup bucket, and the records the function
/// marks ProcessingFailed in the error output as `processing-failed` JSON with `lambdaARN`.
#[test]
fn s3_destination_with_lambda_transform_backup_and_processing_failed() {
    let lambda = hydrant_tests::lambda::LambdaServer::start().unwrap();
    let arn = hydrant_tests::lambda::LambdaServer::arn("fail_marked");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(&data, &format!(
            "[delivery]\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\nhttp_backoff_initial_ms = 50\nhttp_backoff_max_ms = 500\n\n\
             [lambda.functions]\n\"{arn}\" = \"{}\"\n",
            lambda.url("fail_marked"),
        ));
    let config = json!({
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::main",
        "Prefix": "ok/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [
            {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]},
        "S3BackupMode": "Enabled",
        "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::backup",
                                  "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}},
    });
    let records: Vec<String> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                format!("FAIL-{i}")
            } else {
                format!("rec-{i}")
            }
        })
        .collect();
    let plan = json!({
        "create": [{"name": "s3x", "member": "ExtendedS3DestinationConfiguration", "config": config}],
        "put": [{"name": "s3x", "records": records}],
    });
    common::run_destinations_py(&daemon.endpoint(), &plan, tmp.path());
    let main = data.join("objects/main");
    let backup = data.join("objects/backup");
    let read_all = |root: &Path, prefix: &str| -> String {
        files_under(root)
            .iter()
            .filter(|p| p.contains(prefix))
            .map(|p| String::from_utf8(std::fs::read(p).unwrap()).unwrap())
            .collect::<Vec<_>>()
            .concat()
    };
    wait_for("transformed, backed-up and failed records", &daemon, || {
        read_all(&main, "/ok/").matches('\n').count() == 30
            && read_all(&backup, "s3x-").len() == records.iter().map(String::len).sum::<usize>()
            && read_all(&main, "/err/processing-failed/")
                .matches('\n')
                .count()
                == 10
    });
    let delivered = read_all(&main, "/ok/");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            delivered.contains(&format!("{r}\n")),
            i % 4 != 0,
            "record {r} in {delivered}"
        );
    }
    let failed: Vec<Value> = read_all(&main, "/err/processing-failed/")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failed.len(), 10);
    for f in &failed {
        assert_eq!(f["lambdaARN"], arn);
        assert!(
            f["errorCode"].as_str().unwrap().starts_with("Lambda."),
            "{f}"
        );
        let raw = common::objects::raw_data(f);
        assert!(raw.starts_with(b"FAIL-"), "{f}");
    }
    // The backup holds the source records as sent (no delimiter, not transformed).
    let backed = read_all(&backup, "s3x-");
    for r in &records {
        assert!(backed.contains(r.as_str()));
    }
}

/// HTTP endpoint failures through the daemon: 500s are retried (same request id) until the
/// receiver takes the batch; a 413 ends the retries at once and the batch goes to the error
/// output (`http-endpoint-failed` JSON in the S3Configuration bucket) instead of being dropped.
#[test]
fn http_endpoint_retries_then_files_a_413_in_the_error_output() {
    let (receiver, tmp, data, daemon) = common::http_receiver_and_daemon();
    receiver.fail_next(2, 500, "try later");
    let config = json!({
        "EndpointConfiguration": {"Url": receiver.url()},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "S3Configuration": s3("http-errors"),
    });
    let plan = json!({
        "create": [{"name": "h413", "member": "HttpEndpointDestinationConfiguration", "config": config}],
        "put": [{"name": "h413", "records": ["first"]}],
    });
    common::run_destinations_py(&daemon.endpoint(), &plan, tmp.path());
    wait_for("the retried batch", &daemon, || {
        receiver.records_accepted() == vec![b"first".to_vec()]
    });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "two 500s, then 200");
    assert!(requests
        .iter()
        .all(|r| r.request_id == requests[0].request_id));

    receiver.fail_next(1, 413, "too big");
    let plan = json!({"put": [{"name": "h413", "records": ["second"]}]});
    common::run_destinations_py(&daemon.endpoint(), &plan, tmp.path());
    let errors = data.join("objects/http-errors");
    wait_for("the error output", &daemon, || {
        files_under(&errors)
            .iter()
            .any(|p| p.contains("http-endpoint-failed"))
    });
    assert_eq!(receiver.requests().len(), 4, "a 413 is not retried");
    let file = files_under(&errors)
        .into_iter()
        .find(|p| p.contains("http-endpoint-failed"))
        .unwrap();
    let doc: Value = serde_json::from_str(
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(common::objects::raw_data(&doc), b"second");
    assert!(
        doc["errorCode"]
            .as_str()
            .unwrap()
            .starts_with("HttpEndpoint."),
        "{doc}"
    );
    assert!(
        doc.get("dataId").is_some() && doc.get("subsequenceNumber").is_some(),
        "{doc}"
    );
}
