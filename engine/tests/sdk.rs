//! The daemon as a process, driven by the real Rust `aws-sdk-firehose` client: every
//! operation, the Firehose errors, a 500-record batch, SigV4 on and off.
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::operation::create_delivery_stream::builders::CreateDeliveryStreamFluentBuilder;
use aws_sdk_firehose::operation::describe_delivery_stream::builders::DescribeDeliveryStreamFluentBuilder;
use aws_sdk_firehose::operation::list_tags_for_delivery_stream::builders::ListTagsForDeliveryStreamFluentBuilder;
use aws_sdk_firehose::operation::put_record::builders::PutRecordFluentBuilder;
use aws_sdk_firehose::operation::put_record_batch::builders::PutRecordBatchFluentBuilder;
use aws_sdk_firehose::operation::tag_delivery_stream::builders::TagDeliveryStreamFluentBuilder;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, ExtendedS3DestinationConfiguration,
    ExtendedS3DestinationUpdate, Record, Tag,
};
use aws_sdk_firehose::Client;
use common::Daemon;

fn client(d: &Daemon, key: &str, secret: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let conf = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(d.endpoint())
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

fn s3_config(bucket: &str) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .build()
        .unwrap()
}

fn code<E, R>(
    r: Result<R, aws_sdk_firehose::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> String
where
    E: aws_sdk_firehose::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let e = r.expect_err("the call must fail");
    e.as_service_error()
        .and_then(|s| s.code().map(str::to_string))
        .or_else(|| {
            e.raw_response()
                .map(|r| format!("HTTP {}", r.status().as_u16()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

fn create(c: &Client, stream: &str, bucket: &str) -> CreateDeliveryStreamFluentBuilder {
    c.create_delivery_stream()
        .delivery_stream_name(stream)
        .extended_s3_destination_configuration(s3_config(bucket))
}

fn record(data: Vec<u8>) -> Record {
    Record::builder().data(Blob::new(data)).build().unwrap()
}

fn put(c: &Client, stream: &str, data: Vec<u8>) -> PutRecordFluentBuilder {
    c.put_record()
        .delivery_stream_name(stream)
        .record(record(data))
}

fn batch(c: &Client, stream: &str, records: Vec<Record>) -> PutRecordBatchFluentBuilder {
    c.put_record_batch()
        .delivery_stream_name(stream)
        .set_records(Some(records))
}

fn tag(c: &Client, stream: &str) -> TagDeliveryStreamFluentBuilder {
    c.tag_delivery_stream().delivery_stream_name(stream)
}

fn describe(c: &Client, stream: &str) -> DescribeDeliveryStreamFluentBuilder {
    c.describe_delivery_stream().delivery_stream_name(stream)
}

fn list_tags(c: &Client, stream: &str) -> ListTagsForDeliveryStreamFluentBuilder {
    c.list_tags_for_delivery_stream()
        .delivery_stream_name(stream)
}

async fn wait_active(c: &Client, name: &str) {
    for _ in 0..1500 {
        let d = describe(c, name).send().await.unwrap();
        let desc = d.delivery_stream_description().unwrap();
        if desc.delivery_stream_status().as_str() == "ACTIVE" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{name} never became ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_without_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut d = Daemon::start(&data, &[]);
    let c = client(&d, "any", "thing");

    // The embedded default stream exists.
    let l = c.list_delivery_streams().send().await.unwrap();
    assert_eq!(l.delivery_stream_names(), ["default"]);

    // Create, describe (CREATING then ACTIVE).
    let out = create(&c, "s1", "bucket-1")
        .tags(Tag::builder().key("team").value("data").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.delivery_stream_arn(),
        Some("arn:aws:firehose:us-east-1:000000000000:deliverystream/s1")
    );
    let desc = describe(&c, "s1").send().await.unwrap();
    let status = desc
        .delivery_stream_description()
        .unwrap()
        .delivery_stream_status()
        .as_str()
        .to_string();
    assert!(status == "CREATING" || status == "ACTIVE", "{status}");
    wait_active(&c, "s1").await;
    let desc = describe(&c, "s1").send().await.unwrap();
    let desc = desc.delivery_stream_description().unwrap();
    assert_eq!(desc.version_id(), "1");
    assert!(!desc.has_more_destinations());
    let dest = &desc.destinations()[0];
    assert_eq!(dest.destination_id(), "destinationId-000000000001");
    let ext = dest.extended_s3_destination_description().unwrap();
    assert_eq!(ext.bucket_arn(), "arn:aws:s3:::bucket-1");
    assert_eq!(ext.compression_format(), &CompressionFormat::Uncompressed);
    assert_eq!(ext.buffering_hints().unwrap().size_in_mbs(), Some(5));
    assert_eq!(
        ext.buffering_hints().unwrap().interval_in_seconds(),
        Some(300)
    );

    // Create again: ResourceInUseException.
    let r = create(&c, "s1", "bucket-1").send().await;
    assert_eq!(code(r), "ResourceInUseException");
    // A destination type hydrant does not serve: InvalidArgumentException naming it.
    let r = c
        .create_delivery_stream()
        .delivery_stream_name("s9")
        .splunk_destination_configuration(
            aws_sdk_firehose::types::SplunkDestinationConfiguration::builder()
                .hec_endpoint("https://splunk.example.invalid:8088")
                .hec_endpoint_type(aws_sdk_firehose::types::HecEndpointType::Raw)
                .hec_token("t")
                .s3_configuration(
                    aws_sdk_firehose::types::S3DestinationConfiguration::builder()
                        .role_arn("arn:aws:iam::123456789012:role/firehose")
                        .bucket_arn("arn:aws:s3:::b")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;
    let e = r.expect_err("Splunk is not served");
    let s = e.as_service_error().unwrap();
    use aws_sdk_firehose::error::ProvideErrorMetadata as _;
    assert_eq!(s.code(), Some("InvalidArgumentException"));
    assert!(
        s.message()
            .unwrap_or("")
            .contains("SplunkDestinationConfiguration"),
        "{:?}",
        s.message()
    );

    // PutRecord, PutRecordBatch (500 records).
    let r = put(&c, "s1", b"hello\n".to_vec()).send().await.unwrap();
    assert_eq!(r.record_id().len(), 32);
    assert_eq!(r.encrypted(), Some(false));
    let records: Vec<Record> = (0..500)
        .map(|i| record(format!("{{\"i\":{i}}}\n").into_bytes()))
        .collect();
    let r = batch(&c, "s1", records).send().await.unwrap();
    assert_eq!(r.failed_put_count(), 0);
    assert_eq!(r.request_responses().len(), 500);
    let ids: std::collections::BTreeSet<&str> = r
        .request_responses()
        .iter()
        .map(|e| {
            assert!(e.error_code().is_none());
            e.record_id().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 500, "record ids are unique");
    // 501 records: InvalidArgumentException.
    let records: Vec<Record> = (0..501).map(|_| record(b"x".to_vec())).collect();
    let r = batch(&c, "s1", records).send().await;
    assert_eq!(code(r), "InvalidArgumentException");
    // Oversize record.
    let r = put(&c, "s1", vec![b'x'; 1_024_001]).send().await;
    assert_eq!(code(r), "InvalidArgumentException");
    // Unknown stream.
    let r = put(&c, "nope", b"x".to_vec()).send().await;
    assert_eq!(code(r), "ResourceNotFoundException");
    let r = describe(&c, "nope").send().await;
    assert_eq!(code(r), "ResourceNotFoundException");

    // UpdateDestination: merge, version check.
    c.update_destination()
        .delivery_stream_name("s1")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder()
                .compression_format(CompressionFormat::Gzip)
                .buffering_hints(
                    BufferingHints::builder()
                        .size_in_mbs(64)
                        .interval_in_seconds(60)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let desc = describe(&c, "s1").send().await.unwrap();
    let desc = desc.delivery_stream_description().unwrap();
    assert_eq!(desc.version_id(), "2");
    let ext = desc.destinations()[0]
        .extended_s3_destination_description()
        .unwrap();
    assert_eq!(ext.compression_format(), &CompressionFormat::Gzip);
    assert_eq!(
        ext.bucket_arn(),
        "arn:aws:s3:::bucket-1",
        "merged, not replaced"
    );
    assert_eq!(ext.buffering_hints().unwrap().size_in_mbs(), Some(64));
    let r = c
        .update_destination()
        .delivery_stream_name("s1")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(ExtendedS3DestinationUpdate::builder().prefix("x/").build())
        .send()
        .await;
    assert_eq!(code(r), "ConcurrentModificationException");

    // Tags.
    tag(&c, "s1")
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .tags(
            Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = list_tags(&c, "s1").send().await.unwrap();
    let tags: Vec<(String, String)> = t
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        tags,
        vec![
            ("env".into(), "test".into()),
            ("team".into(), "platform".into())
        ]
    );
    assert!(!t.has_more_tags());
    let t = list_tags(&c, "s1").limit(1).send().await.unwrap();
    assert!(t.has_more_tags());
    c.untag_delivery_stream()
        .delivery_stream_name("s1")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let t = list_tags(&c, "s1").send().await.unwrap();
    assert_eq!(t.tags().len(), 1);
    let many: Vec<Tag> = (0..51)
        .map(|i| {
            Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap()
        })
        .collect();
    let r = tag(&c, "s1").set_tags(Some(many)).send().await;
    assert_eq!(code(r), "LimitExceededException");

    // List paging.
    for n in ["s2", "s3"] {
        create(&c, n, "b").send().await.unwrap();
    }
    let l = c.list_delivery_streams().limit(2).send().await.unwrap();
    assert_eq!(l.delivery_stream_names(), ["default", "s1"]);
    assert!(l.has_more_delivery_streams());
    let l = c
        .list_delivery_streams()
        .exclusive_start_delivery_stream_name("s1")
        .send()
        .await
        .unwrap();
    assert_eq!(l.delivery_stream_names(), ["s2", "s3"]);
    assert!(!l.has_more_delivery_streams());

    // Delete, then the name is free again with a new incarnation.
    wait_active(&c, "s2").await;
    let before = put(&c, "s2", b"a".to_vec()).send().await.unwrap();
    c.delete_delivery_stream()
        .delivery_stream_name("s2")
        .send()
        .await
        .unwrap();
    let r = c
        .delete_delivery_stream()
        .delivery_stream_name("s2")
        .send()
        .await;
    assert_eq!(code(r), "ResourceNotFoundException");
    assert!(
        !data.join("streams/s2").exists(),
        "the stream directory is removed"
    );
    create(&c, "s2", "b").send().await.unwrap();
    wait_active(&c, "s2").await;
    let after = put(&c, "s2", b"a".to_vec()).send().await.unwrap();
    assert_ne!(
        before.record_id(),
        after.record_id(),
        "unique across re-creation"
    );

    // Restart: definitions, versions and tags survive; records are in the WAL.
    assert!(d.terminate().success(), "SIGTERM exits 0");
    let d = Daemon::start(&data, &[]);
    let c = client(&d, "any", "thing");
    let desc = describe(&c, "s1").send().await.unwrap();
    assert_eq!(
        desc.delivery_stream_description().unwrap().version_id(),
        "2"
    );
    let t = list_tags(&c, "s1").send().await.unwrap();
    assert_eq!(t.tags().len(), 1);
    drop(d);
    let recs = common::wal_records(&data, "s1");
    assert_eq!(recs.len(), 501);
    assert_eq!(recs[0].1, b"hello\n");
    assert_eq!(recs[500].1, b"{\"i\":499}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        &tmp.path().join("data"),
        &[
            "--access-key-id",
            "AKIDHYDRANT",
            "--secret-access-key",
            "s3cr3t",
        ],
    );
    let good = client(&d, "AKIDHYDRANT", "s3cr3t");
    let l = good.list_delivery_streams().send().await.unwrap();
    assert_eq!(l.delivery_stream_names(), ["default"]);
    let r = good
        .put_record_batch()
        .delivery_stream_name("default")
        .records(record(b"signed\n".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.failed_put_count(), 0);
    let wrong_secret = client(&d, "AKIDHYDRANT", "nope");
    assert_eq!(
        code(wrong_secret.list_delivery_streams().send().await),
        "InvalidSignatureException"
    );
    let unknown = client(&d, "AKIDOTHER", "s3cr3t");
    assert_eq!(
        code(unknown.list_delivery_streams().send().await),
        "UnrecognizedClientException"
    );
    // Unsigned: MissingAuthenticationTokenException.
    let (st, v) = common::call(d.addr, "ListDeliveryStreams", "{}");
    assert_eq!(st, 400);
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");
}
