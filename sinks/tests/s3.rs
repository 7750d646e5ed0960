//! The S3 store against a real S3-compatible server: s3s-fs 0.14.1, started by each test on a free
//! 127.0.0.1 port with its own data directory. s3s-fs checks SigV4 signatures and stores objects
//! as plain files (`<data dir>/<bucket>/<key>`), so every object is read back both ways.
//!
//! The binary comes from `$HYDRANT_S3S_FS`, else `<workspace>/target/tools/bin/s3s-fs`. Without
//! it these tests fail (never skip): install it with
//! `cargo install --locked s3s-fs@0.14.1 --features binary --root target/tools`.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hydrant_sinks::{
    Batch, BatchIdentity, Body, Compression, ObjectSink, ObjectSinkConfig, ObjectStore, PutObject,
    Record, S3Config, S3Credentials, S3Store, Sink, SinkError,
};

const ACCESS_KEY: &str = "hydrant-test-key";
const SECRET_KEY: &str = "hydrant-test-secret";
const BUCKET: &str = "hydrant-test";

/// A running s3s-fs; killed when dropped.
struct S3sFs {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // Bind, read the port, release it: s3s-fs binds it a moment later. Another process could
    // take it in between; the readiness wait below would then time out with a clear message.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl S3sFs {
    fn start() -> S3sFs {
        let binary = hydrant_tests::s3s::s3s_fs_binary();
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = S3sFs { child, port, data };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint()),
            region: "us-east-1".into(),
            force_path_style: true,
            credentials: S3Credentials::Static {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                session_token: None,
            },
            ..S3Config::default()
        }
    }

    /// A store on a freshly created bucket.
    async fn store(&self) -> S3Store {
        store_with(&self.config()).await
    }

    fn file(&self, key: &str) -> PathBuf {
        self.data.path().join(BUCKET).join(key)
    }
}

/// A store with `config` on a freshly created bucket.
async fn store_with(config: &S3Config) -> S3Store {
    let store = S3Store::new(config, BUCKET).unwrap();
    store
        .client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    store
}

fn object(body: impl Into<Bytes>, content_encoding: Option<&'static str>) -> PutObject {
    PutObject {
        body: Body::from(body.into()),
        content_encoding,
    }
}

/// Pseudo-random bytes, so multipart parts differ and compression cannot hide a mix-up.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    hydrant_tests::xorshift(seed | 1)
        .take(len)
        .map(|x| x.to_le_bytes()[3])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_read_back_through_s3_and_the_file_system() {
    let server = S3sFs::start();
    let store = server.store().await;
    let key = "2026/11/25/20/default-1-2026-11-25-20-30-07-id.gz";
    let body = Compression::Gzip.compress(b"{\"a\":1}{\"b\":2}").unwrap();
    store
        .put_object(key, object(body.clone(), Some("gzip")))
        .await
        .unwrap();

    assert_eq!(store.get_object(key).await.unwrap(), body);
    assert_eq!(std::fs::read(server.file(key)).unwrap(), body);
    let head = head(&store, key).await;
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("application/octet-stream"));
    assert_eq!(
        store.list_keys("2026/11/").await.unwrap(),
        vec![key.to_string()]
    );
    assert!(store.list_keys("2027/").await.unwrap().is_empty());
    assert_eq!(store.location(key), format!("s3://{BUCKET}/{key}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_go_up_as_multipart_uploads() {
    let server = S3sFs::start();
    let store = server.store().await;
    let config = server.config();
    // Three parts with the default settings: 8 + 8 + 4 MiB.
    let len = config.multipart_part_bytes * 2 + config.multipart_part_bytes / 2;
    assert!(len > config.multipart_threshold_bytes);
    let body = noise(len, 7);
    store
        .put_object("big/object", object(body.clone(), None))
        .await
        .unwrap();

    let back = store.get_object("big/object").await.unwrap();
    assert!(back == body, "multipart object differs after the read back");
    let on_disk = std::fs::read(server.file("big/object")).unwrap();
    assert!(on_disk == body, "multipart object differs on disk");

    // Overwriting a multipart object with a smaller single-part one replaces it whole.
    store
        .put_object("big/object", object(&b"small"[..], None))
        .await
        .unwrap();
    assert_eq!(&store.get_object("big/object").await.unwrap()[..], b"small");
    assert_eq!(store.list_keys("big/").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_is_overwritten_idempotently() {
    let server = S3sFs::start();
    let store = server.store().await;
    store
        .put_object("k", object(&b"first attempt"[..], None))
        .await
        .unwrap();
    store
        .put_object("k", object(&b"retry"[..], None))
        .await
        .unwrap();
    assert_eq!(&store.get_object("k").await.unwrap()[..], b"retry");
    assert_eq!(store.list_keys("").await.unwrap(), vec!["k".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_sink_on_s3_resends_to_the_same_key() {
    let server = S3sFs::start();
    let store: Arc<dyn ObjectStore> = Arc::new(server.store().await);
    let config = ObjectSinkConfig::from_firehose(
        Some("logs/!{timestamp:yyyy/MM/dd}/"),
        Some("errors/!{firehose:error-output-type}/"),
        Some("HADOOP_SNAPPY"),
        None,
    )
    .unwrap();
    let sink: Arc<dyn Sink> = Arc::new(ObjectSink::new(store.clone(), config));
    let arrival = 1_764_102_607_000; // 2025-11-25T20:30:07Z
    let batch = Batch {
        identity: BatchIdentity {
            stream: "clicks".into(),
            incarnation: "a1b2".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 41,
            last_lsn: 42,
        },
        stream_version: 2,
        contiguous: None,
        partition_keys: Vec::new(),
        oldest_arrival_ms: arrival,
        records: vec![
            Record {
                lsn: 41,
                sub: 0,
                arrival_ms: arrival,
                data: Bytes::from_static(b"one\n"),
            },
            Record {
                lsn: 42,
                sub: 0,
                arrival_ms: arrival + 10,
                data: Bytes::from_static(b"two\n"),
            },
        ],
    };
    let first = sink.deliver(&batch).await.unwrap();
    assert!(
        first
            .target
            .starts_with("logs/2025/11/25/clicks-2-2025-11-25-20-30-07-"),
        "{}",
        first.target
    );
    assert!(first.target.ends_with(".snappy"));
    let second = sink.deliver(&batch).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        store.list_keys("logs/").await.unwrap(),
        vec![first.target.clone()]
    );
    let stored = std::fs::read(server.file(&first.target)).unwrap();
    assert_eq!(
        Compression::HadoopSnappy.decompress(&stored).unwrap(),
        b"one\ntwo\n"
    );
    let head = store_head(&server, &first.target).await;
    assert_eq!(head.as_deref(), Some("hadoop-snappy"));
}

async fn store_head(server: &S3sFs, key: &str) -> Option<String> {
    let store = S3Store::new(&server.config(), BUCKET).unwrap();
    head(&store, key)
        .await
        .content_encoding()
        .map(str::to_string)
}

/// HeadObject of `key`.
async fn head(store: &S3Store, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    store
        .client()
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_a_permanent_signature_error() {
    let server = S3sFs::start();
    server.store().await;
    let config = S3Config {
        credentials: S3Credentials::Static {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: "not-the-secret".into(),
            session_token: None,
        },
        ..server.config()
    };
    let store = S3Store::new(&config, BUCKET).unwrap();
    let error = store
        .put_object("k", object(&b"x"[..], None))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SinkError::S3Service { code, status: 403, .. } if code == "SignatureDoesNotMatch"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(error.error_code(), "S3.SignatureDoesNotMatch");
    assert!(!server.file("k").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_permanent_error() {
    // s3s-fs creates a bucket's directory on PutObject and answers GetObject with NoSuchKey
    // instead of NoSuchBucket (real S3 and MinIO refuse both), so the missing bucket shows on
    // ListObjectsV2. The classification is the same code path for every operation.
    let server = S3sFs::start();
    let store = S3Store::new(&server.config(), "no-such-bucket").unwrap();
    let error = store.list_keys("").await.unwrap_err();
    assert!(
        matches!(&error, SinkError::S3Service { code, status: 404, .. } if code == "NoSuchBucket"),
        "{error:?}"
    );
    assert_eq!(error.error_code(), "S3.NoSuchBucket");
    assert!(!error.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_is_not_found() {
    let server = S3sFs::start();
    let store = server.store().await;
    let error = store.get_object("nothing/here").await.unwrap_err();
    assert!(matches!(error, SinkError::NotFound { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_retryable_error() {
    let mut server = S3sFs::start();
    let config = S3Config {
        max_attempts: 1,
        ..server.config()
    };
    let store = store_with(&config).await;
    store
        .put_object("before", object(&b"x"[..], None))
        .await
        .unwrap();

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let started = Instant::now();
    let error = store
        .put_object("after", object(&b"x"[..], None))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        matches!(
            error,
            SinkError::S3Unreachable { .. } | SinkError::S3Timeout { .. }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // Nothing ever listened on this port.
    let nowhere = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{}", free_port())),
        ..config
    };
    let error = S3Store::new(&nowhere, BUCKET)
        .unwrap()
        .put_object("k", object(&b"x"[..], None))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(error.error_code(), "S3.ConnectionFailed");
}
