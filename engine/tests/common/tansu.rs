//! tansu (a Kafka-protocol broker from crates.io, its memory storage engine) as a child process
//! on 127.0.0.1, for the Kafka (MSK) source's tests, and an rdkafka producer for them.
//! Installed by tests/run-all.sh (`cargo install --locked --features dynostore tansu@0.6.0`
//! into a cache folder; `HYDRANT_TANSU` names the binary); missing, the test fails saying how to
//! install it.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A running tansu; killed on drop.
pub struct Tansu {
    child: Child,
    pub port: u16,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HYDRANT_TANSU") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("HYDRANT_TOOLS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hydrant-tools")
        });
    cache.join("tansu-0.6.0/bin/tansu")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One record to produce.
pub struct Produce {
    pub key: String,
    pub value: Vec<u8>,
    /// The record's CreateTime, ms (None: the producer's clock).
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<(String, String)>,
}

impl Tansu {
    pub fn start() -> Tansu {
        let bin = binary();
        assert!(
            bin.exists(),
            "tansu is not installed at {}: run `cargo install --locked --features dynostore \
             tansu@0.6.0 --root ~/.cache/hydrant-tools/tansu-0.6.0` (tests/run-all.sh does), or \
             set HYDRANT_TANSU",
            bin.display()
        );
        let port = super::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }

    /// `host:port`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .unwrap();
        let rt = runtime();
        let out = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .unwrap();
        for r in out {
            r.unwrap();
        }
    }

    /// An idempotent producer (acks=all: each record once, in order per partition).
    pub fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .unwrap()
    }

    /// Produces `records` to `topic` (partition by key hash) and waits until each is
    /// acknowledged; returns the partition of each.
    pub fn produce(&self, topic: &str, records: &[Produce]) -> Vec<i32> {
        let p = self.producer();
        produce_with(&p, topic, records)
    }
}

/// [`Tansu::produce`] with a producer made once.
pub fn produce_with(p: &FutureProducer, topic: &str, records: &[Produce]) -> Vec<i32> {
    let rt = runtime();
    rt.block_on(async {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut rec = FutureRecord::to(topic)
                .key(r.key.as_bytes())
                .payload(&r.value)
                .headers(headers);
            if let Some(ts) = r.timestamp_ms {
                rec = rec.timestamp(ts);
            }
            loop {
                match p.send_result(rec) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((e, back)) => {
                        assert!(
                            matches!(
                                e.rdkafka_error_code(),
                                Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                            ),
                            "{e}"
                        );
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        let mut partitions = Vec::with_capacity(pending.len());
        for f in pending {
            let d = f.await.unwrap().unwrap();
            partitions.push(d.partition);
        }
        partitions
    })
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
