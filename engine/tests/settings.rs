//! Destination settings that change what delivery does, the daemon as a process:
//! `CustomTimeZone` names the objects' hour in that zone; `KMSEncryptionConfig` and
//! `[s3] server_side_encryption` put the encryption headers on every object write (seen by a
//! recording proxy in front of s3s-fs), `NoEncryptionConfig` sends none, and KMS without an S3
//! endpoint is refused; the hints of nested S3 configurations and the Lambda processor cut the
//! batch; `RetryOptions` ends the retries; `DomainARN` reaches its mapped cluster; an S3
//! destination's error output goes to its own bucket with its encryption.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::objects::object_files;
use common::s3s::S3sFs;
use common::{b64, call, wait_for, Daemon};

const ROLE: &str = "arn:aws:iam::123456789012:role/r";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn create(addr: SocketAddr, name: &str, member: &str, config: &serde_json::Value) -> (u16, String) {
    let body = serde_json::json!({"DeliveryStreamName": name, member: config});
    let (st, v) = call(addr, "CreateDeliveryStream", &body.to_string());
    if st == 200 {
        common::wait_active(addr, name);
    }
    (st, v.to_string())
}

/// Creates a stream that must be accepted.
fn created(addr: SocketAddr, name: &str, member: &str, config: &serde_json::Value) {
    let (st, v) = create(addr, name, member, config);
    assert_eq!(st, 200, "{v}");
}

/// Creates an ExtendedS3 stream that must be refused with an InvalidArgumentException whose
/// message holds each of `needles`.
fn refused(addr: SocketAddr, name: &str, config: &serde_json::Value, needles: &[&str]) {
    let (st, v) = create(addr, name, "ExtendedS3DestinationConfiguration", config);
    assert_eq!(st, 400, "{name}: {v}");
    assert!(v.contains("InvalidArgumentException"), "{v}");
    for needle in needles {
        assert!(v.contains(needle), "{needle:?} not in {v}");
    }
}

fn put(addr: SocketAddr, name: &str, data: &[u8]) {
    let (st, v) = call(
        addr,
        "PutRecord",
        &format!(
            r#"{{"DeliveryStreamName":"{name}","Record":{{"Data":"{}"}}}}"#,
            b64(data)
        ),
    );
    assert_eq!(st, 200, "{v}");
}

fn wait_objects(root: &Path, prefix: &str, n: usize) -> Vec<(String, PathBuf)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = object_files(root, prefix);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{n} objects {prefix}* under {}",
            root.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `yyyy/MM/dd/HH/` of now in `zone`.
fn hour_prefix(zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let t = jiff::Timestamp::now().to_zoned_datetime(tz);
    format!(
        "{:04}/{:02}/{:02}/{:02}/",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

#[test]
fn custom_time_zone_names_the_hour_in_that_zone_and_unknown_zones_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data, &[]);
    // Asia/Kathmandu is UTC+05:45: its hour differs from UTC's at every instant.
    let zone = "Asia/Kathmandu";
    let config = serde_json::json!({
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::zoned",
        "Prefix": "logs/", "CustomTimeZone": zone,
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
    });
    created(
        daemon.addr,
        "zoned",
        "ExtendedS3DestinationConfiguration",
        &config,
    );
    let before = hour_prefix(zone);
    put(daemon.addr, "zoned", b"in Kathmandu\n");
    let objects = wait_objects(&data.join("objects/zoned"), "zoned-", 1);
    let after = hour_prefix(zone);
    let key = &objects[0].0;
    assert!(
        key.starts_with(&format!("logs/{before}")) || key.starts_with(&format!("logs/{after}")),
        "{key}: expected logs/{before} (Kathmandu time)"
    );
    assert_ne!(
        before,
        hour_prefix("UTC"),
        "the zone's hour differs from UTC's"
    );

    for bad in ["Mars/Olympus_Mons", "EST5EDT+1", "Europe/Nowhere"] {
        let mut c = config.clone();
        c["CustomTimeZone"] = serde_json::json!(bad);
        refused(daemon.addr, "bad-zone", &c, &["CustomTimeZone"]);
    }
}

#[test]
fn kms_without_an_s3_endpoint_is_refused_naming_the_member() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &[]);
    let config = serde_json::json!({
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::local",
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": KMS_KEY}},
    });
    refused(
        daemon.addr,
        "kms-local",
        &config,
        &[
            "EncryptionConfiguration.KMSEncryptionConfig",
            "local object store",
        ],
    );
}

/// A write that asks for SSE-KMS with the test's key.
fn assert_kms(r: &hydrant_tests::recording_proxy::RecordedRequest) {
    assert_eq!(
        r.header("x-amz-server-side-encryption"),
        Some("aws:kms"),
        "{r:?}"
    );
    assert_eq!(
        r.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(KMS_KEY),
        "{r:?}"
    );
}

#[test]
fn encryption_headers_on_every_object_write() {
    let tmp = tempfile::tempdir().unwrap();
    let buckets = ["kms", "kms-backup", "plain", "sse"];
    let s3 = S3sFs::start(&tmp.path().join("s3"), &buckets);
    let proxy = hydrant_tests::recording_proxy::RecordingProxy::start(s3.addr()).unwrap();
    let config_for = |dir: &str, sse: &str| {
        let cfg = tmp.path().join(format!("{dir}.toml"));
        std::fs::write(
            &cfg,
            format!("{}{sse}", S3sFs::s3_section(&proxy.endpoint())),
        )
        .unwrap();
        cfg
    };
    let hints = serde_json::json!({"SizeInMBs": 1, "IntervalInSeconds": 0});
    let kms = serde_json::json!({"KMSEncryptionConfig": {"AWSKMSKeyARN": KMS_KEY}});
    {
        let cfg = config_for("a", "");
        let daemon = Daemon::start(&tmp.path().join("a"), &["--config", cfg.to_str().unwrap()]);
        let with_kms = serde_json::json!({
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::kms", "BufferingHints": hints,
            "EncryptionConfiguration": kms,
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::kms-backup",
                                      "BufferingHints": hints, "EncryptionConfiguration": kms},
        });
        created(
            daemon.addr,
            "kms",
            "ExtendedS3DestinationConfiguration",
            &with_kms,
        );
        let plain = serde_json::json!({
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::plain", "BufferingHints": hints,
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        });
        created(
            daemon.addr,
            "plain",
            "ExtendedS3DestinationConfiguration",
            &plain,
        );
        for i in 0..3 {
            put(daemon.addr, "kms", format!("secret {i}\n").as_bytes());
            wait_objects(&tmp.path().join("s3/kms"), "kms-", i + 1);
            put(daemon.addr, "plain", format!("open {i}\n").as_bytes());
            wait_objects(&tmp.path().join("s3/plain"), "plain-", i + 1);
        }
        wait_objects(&tmp.path().join("s3/kms-backup"), "kms-", 3);
    }
    {
        let cfg = config_for("b", "server_side_encryption = \"AES256\"\n");
        let daemon = Daemon::start(&tmp.path().join("b"), &["--config", cfg.to_str().unwrap()]);
        let sse = serde_json::json!({
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::sse", "BufferingHints": hints,
        });
        created(
            daemon.addr,
            "sse",
            "ExtendedS3DestinationConfiguration",
            &sse,
        );
        put(daemon.addr, "sse", b"sse-s3\n");
        wait_objects(&tmp.path().join("s3/sse"), "sse-", 1);
    }
    let writes: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" || (r.method == "POST" && r.target.contains("uploads")))
        .collect();
    let to = |bucket: &str| {
        writes
            .iter()
            .filter(|r| r.target.starts_with(&format!("/{bucket}/")))
            .collect::<Vec<_>>()
    };
    for bucket in ["kms", "kms-backup"] {
        let w = to(bucket);
        assert!(w.len() >= 3, "{bucket}: {} writes", w.len());
        for r in w {
            assert_kms(r);
        }
    }
    let plain = to("plain");
    assert!(plain.len() >= 3);
    for r in plain {
        assert!(
            !r.headers
                .iter()
                .any(|(n, _)| n.starts_with("x-amz-server-side-encryption")),
            "{r:?}"
        );
    }
    let sse = to("sse");
    assert!(!sse.is_empty());
    for r in sse {
        assert_eq!(
            r.header("x-amz-server-side-encryption"),
            Some("AES256"),
            "{r:?}"
        );
        assert_eq!(
            r.header("x-amz-server-side-encryption-aws-kms-key-id"),
            None
        );
    }
}

/// `CloudWatchLoggingOptions`: the destination's delivery errors are logged with the group and
/// stream names as fields (`log_group`, `log_stream`), so journald or a log shipper can route
/// them; a destination without the option logs its errors without them.
#[test]
fn cloudwatch_logging_options_name_the_group_and_stream_on_delivery_errors() {
    let (receiver, _tmp, _data, daemon) = common::http_receiver_and_daemon();
    let addr: SocketAddr = daemon.addr;
    let config = |logging: serde_json::Value| {
        serde_json::json!({
            "EndpointConfiguration": {"Url": receiver.url()},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "CloudWatchLoggingOptions": logging,
            "S3Configuration": {
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::cw-errors",
            },
        })
    };
    let logged = serde_json::json!({
        "Enabled": true, "LogGroupName": "/aws/kinesisfirehose/cw-on", "LogStreamName": "DestinationDelivery",
    });
    created(
        addr,
        "cw-on",
        "HttpEndpointDestinationConfiguration",
        &config(logged),
    );
    created(
        addr,
        "cw-off",
        "HttpEndpointDestinationConfiguration",
        &config(serde_json::json!({"Enabled": false})),
    );

    for stream in ["cw-on", "cw-off"] {
        receiver.fail_next(1, 500, "try later");
        put(addr, stream, stream.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !receiver
            .records_accepted()
            .contains(&stream.as_bytes().to_vec())
        {
            assert!(Instant::now() < deadline, "{stream} never delivered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The log as a reader sees it: without the terminal colours the daemon may add.
    let log = strip_ansi(&daemon.log_text());
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("500"))
        .collect();
    let on: Vec<&&str> = failures.iter().filter(|l| l.contains("cw-on")).collect();
    let off: Vec<&&str> = failures.iter().filter(|l| l.contains("cw-off")).collect();
    assert!(!on.is_empty() && !off.is_empty(), "failures logged:\n{log}");
    for l in on {
        assert!(
            l.contains("log_group=\"/aws/kinesisfirehose/cw-on\"")
                || l.contains("log_group=/aws/kinesisfirehose/cw-on"),
            "{l}"
        );
        assert!(l.contains("DestinationDelivery"), "{l}");
    }
    for l in off {
        assert!(!l.contains("log_group"), "{l}");
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hints of what hydrant writes per batch cut the batch: a source-record backup's
/// `BufferingHints`, an HTTP endpoint's `S3Configuration.BufferingHints` and the Lambda
/// processor's `BufferIntervalInSeconds` (1 s each) deliver a record that the destination's own
/// hints (900 s) would hold for a quarter of an hour.
#[test]
fn nested_buffering_hints_cap_the_batch() {
    let lambda = hydrant_tests::lambda::LambdaServer::start().unwrap();
    let arn = hydrant_tests::lambda::LambdaServer::arn("uppercase");
    let receiver = hydrant_tests::http_receiver::HttpReceiver::start_default().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(
        &data,
        &format!(
            "[lambda.functions]\n\"{arn}\" = \"{}\"\n",
            lambda.url("uppercase")
        ),
    );
    let slow = serde_json::json!({"SizeInMBs": 128, "IntervalInSeconds": 900});
    let quick = serde_json::json!({"SizeInMBs": 1, "IntervalInSeconds": 1});
    let backup = serde_json::json!({
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::capped", "Prefix": "main/",
        "BufferingHints": slow, "S3BackupMode": "Enabled",
        "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::capped",
                                  "Prefix": "backup/", "BufferingHints": quick},
    });
    let with_lambda = serde_json::json!({
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::capped", "Prefix": "lambda/",
        "BufferingHints": slow,
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda",
            "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn},
                           {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "1"}]}]},
    });
    let http = serde_json::json!({
        "EndpointConfiguration": {"Url": receiver.url()},
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
        "S3BackupMode": "AllData",
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::capped-http",
                            "BufferingHints": quick},
    });
    for (name, member, config) in [
        ("cap-backup", "ExtendedS3DestinationConfiguration", &backup),
        (
            "cap-lambda",
            "ExtendedS3DestinationConfiguration",
            &with_lambda,
        ),
        ("cap-http", "HttpEndpointDestinationConfiguration", &http),
    ] {
        let (st, v) = create(daemon.addr, name, member, config);
        assert_eq!(st, 200, "{name}: {v}");
        put(daemon.addr, name, format!("{name}\n").as_bytes());
    }
    let root = data.join("objects/capped");
    wait_for("the backed-up and the transformed record", &daemon, || {
        let f = object_files(&root, "");
        let under = |p: &str| f.iter().any(|(key, _)| key.starts_with(p));
        under("main") && under("backup") && under("lambda")
    });
    wait_for("the HTTP endpoint's record", &daemon, || {
        receiver.records_accepted() == vec![b"cap-http\n".to_vec()]
    });
    // S3BackupMode AllData: the delivered record is in the S3Configuration bucket too.
    wait_for("the HTTP endpoint's backup", &daemon, || {
        object_files(&data.join("objects/capped-http"), "cap-http-")
            .iter()
            .any(|(_, p)| std::fs::read(p).unwrap() == b"cap-http\n")
    });
    let lambda_objects = object_files(&root.join("lambda"), "");
    let text = std::fs::read_to_string(&lambda_objects[0].1).unwrap();
    assert!(text.contains("CAP-LAMBDA"), "transformed: {text}");
}

/// `RetryOptions.DurationInSeconds` ends the retries: an HTTP endpoint that answers 500 to
/// everything gets its record filed in the error output once the 1 s window is over (the
/// default window is 300 s).
#[test]
fn retry_options_end_the_retries_in_the_error_output() {
    let (receiver, _tmp, data, daemon) = common::http_receiver_and_daemon();
    receiver.fail_next(100_000, 500, "always down");
    let config = serde_json::json!({
        "EndpointConfiguration": {"Url": receiver.url()},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "RetryOptions": {"DurationInSeconds": 1},
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::retry-errors"},
    });
    created(
        daemon.addr,
        "retry-window",
        "HttpEndpointDestinationConfiguration",
        &config,
    );
    put(daemon.addr, "retry-window", b"never taken");
    let root = data.join("objects/retry-errors");
    wait_for("the error output", &daemon, || {
        object_files(&root, "")
            .iter()
            .any(|(key, _)| key.contains("http-endpoint-failed"))
    });
    assert!(receiver.requests().len() >= 2, "retried before giving up");
    assert!(receiver.records_accepted().is_empty());
}

/// `DomainARN` reaches the cluster the daemon's `[opensearch.domains]` maps it to; with
/// `S3BackupMode` `AllDocuments` the document is in the S3Configuration bucket too.
#[test]
fn domain_arn_reaches_the_mapped_cluster() {
    let bulk = hydrant_tests::bulk::BulkReceiver::start().unwrap();
    let domain = "arn:aws:es:us-east-1:123456789012:domain/mapped";
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(
        &data,
        &format!("[opensearch.domains]\n\"{domain}\" = \"{}\"\n", bulk.url()),
    );
    let config = serde_json::json!({
        "RoleARN": ROLE, "DomainARN": domain, "IndexName": "mapped",
        "IndexRotationPeriod": "NoRotation", "S3BackupMode": "AllDocuments",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::os-backup"},
    });
    created(
        daemon.addr,
        "by-domain",
        "AmazonopensearchserviceDestinationConfiguration",
        &config,
    );
    put(daemon.addr, "by-domain", br#"{"via":"domain"}"#);
    wait_for("the document", &daemon, || {
        bulk.documents()
            .iter()
            .any(|((index, _), doc)| index == "mapped" && doc["via"] == "domain")
    });
    wait_for("the AllDocuments backup", &daemon, || {
        object_files(&data.join("objects/os-backup"), "by-domain-")
            .iter()
            .any(|(_, p)| std::fs::read(p).unwrap() == br#"{"via":"domain"}"#)
    });
}

/// The error output of an S3 destination is its own bucket under ErrorOutputPrefix, with its
/// encryption, as in Firehose: records a Lambda fails land in s3s-fs (through a recording
/// proxy: every write there carries the KMS headers), nothing in the local store.
#[test]
fn s3_error_output_goes_to_the_bucket_with_its_encryption() {
    let lambda = hydrant_tests::lambda::LambdaServer::start().unwrap();
    let arn = hydrant_tests::lambda::LambdaServer::arn("fail_marked");
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&tmp.path().join("s3"), &["enc"]);
    let proxy = hydrant_tests::recording_proxy::RecordingProxy::start(s3.addr()).unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::with_config(
        &data,
        &format!(
            "{}\n[lambda.functions]\n\"{arn}\" = \"{}\"\n",
            S3sFs::s3_section(&proxy.endpoint()),
            lambda.url("fail_marked")
        ),
    );
    let config = serde_json::json!({
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::enc", "Prefix": "ok/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": KMS_KEY}},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda",
            "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn}]}]},
    });
    created(
        daemon.addr,
        "failing",
        "ExtendedS3DestinationConfiguration",
        &config,
    );
    put(daemon.addr, "failing", b"FAIL-1");
    put(daemon.addr, "failing", b"kept-2");
    let bucket = tmp.path().join("s3/enc");
    wait_for(
        "the processing-failed object in the bucket",
        &daemon,
        || !object_files(&bucket.join("err/processing-failed"), "failing-").is_empty(),
    );
    let (_, path) = &object_files(&bucket.join("err/processing-failed"), "failing-")[0];
    let doc: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["lambdaARN"], arn, "{doc}");
    let local = object_files(&data.join("objects"), "");
    assert!(
        local.is_empty(),
        "nothing goes to the local store: {local:?}"
    );
    let error_writes: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.target.starts_with("/enc/err/"))
        .collect();
    assert!(!error_writes.is_empty(), "the error output went through S3");
    for r in error_writes {
        assert_kms(&r);
    }
}
