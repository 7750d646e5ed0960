//! The daemon's configuration: defaults, the TOML file, `HYDRANT_*` variables and flags.
//!
//! Precedence, highest first: a command-line flag, its `HYDRANT_*` environment variable (both
//! handled by clap in `main.rs`, and applied with [`Config::apply_overrides`]), the TOML file
//! given with `--config`, the built-in defaults below.
//!
//! ```toml
//! data_dir = "./hydrant-data"          # HYDRANT_DATA_DIR, --data-dir
//! objects_dir = "/mnt/objects"         # HYDRANT_OBJECTS_DIR, --objects-dir: the local object
//!                                      # store (default DIR/objects), e.g. on another disk
//! listen = "127.0.0.1:4573"            # HYDRANT_LISTEN, --listen
//! allow_public_unauthenticated = false # HYDRANT_ALLOW_PUBLIC_UNAUTHENTICATED
//! log_format = "human"                 # or "json"; HYDRANT_LOG_FORMAT, --log-format
//! region = "us-east-1"                 # used in ARNs and checked in SigV4 scopes
//! account_id = "000000000000"          # used in ARNs
//! streams_max = 50                     # Firehose's default per-region limit
//! worker_threads = 0                   # HYDRANT_WORKER_THREADS: API threads; 0 = CPUs - 1, at
//!                                      # least 1 (the WAL sync, segment and delivery threads
//!                                      # need a CPU of their own)
//!
//! [wal]
//! durability = "sync"                  # "sync" | "interval" | "none"
//! sync_interval_ms = 200               # for "interval"
//! segment_bytes = 67108864             # 64 MiB
//! stream_budget_bytes = 8589934592     # 8 GiB of segment files per stream
//! node_budget_bytes = 107374182400     # HYDRANT_NODE_BUDGET_BYTES: all streams together; the
//!                                      # streams' budgets must fit in it (CreateDeliveryStream
//!                                      # answers LimitExceededException otherwise). Unset: the
//!                                      # size of the data directory's file system; 0 = none
//!
//! [limits]                             # what a client may hold before it is authenticated
//! body_timeout_secs = 30               # HYDRANT_BODY_TIMEOUT_SECS: a request body must arrive
//! body_min_bytes_per_sec = 65536       # HYDRANT_BODY_MIN_BYTES_PER_SEC: within this time plus
//!                                      # its Content-Length at this rate, or the connection is
//!                                      # answered 408 and closed
//! body_memory_max_bytes = 268435456    # HYDRANT_BODY_MEMORY_MAX_BYTES: request bodies held at
//!                                      # once, all connections (a body waits for room, up to
//!                                      # its deadline, then 503); at least 8 MiB + 1 KiB
//! max_connections = 0                  # HYDRANT_MAX_CONNECTIONS: connections served at once
//!                                      # (more wait in the listen backlog); 0 = derived from
//!                                      # RLIMIT_NOFILE at start, leaving descriptors for WALs,
//!                                      # checkpoints and delivery ([`Config::connection_cap`])
//! metrics_token = "T"                  # HYDRANT_METRICS_TOKEN: /metrics wants
//!                                      # `Authorization: Bearer T`; unset with [auth] keys: a
//!                                      # SigV4 signature; unset without keys: loopback peers only
//! metrics_public = false               # HYDRANT_METRICS_PUBLIC: without keys or token, serve
//!                                      # /metrics to any peer
//!
//! [auth]                               # no keys: no authentication (loopback only)
//! keys = [{ access_key_id = "AKID", secret_access_key = "SECRET" }]
//!
//! [console]                            # the web console at /console/ (crate::console)
//! enabled = true                       # false: /console/ answers 404
//! password_hash = "pbkdf2-sha256$..."  # from `hydrantd --hash-console-password`; with it (or
//!                                      # [auth] keys) the console wants a login; without
//!                                      # either it answers loopback peers only, open
//!
//! [tls]                                # PEM files; both or neither
//! cert = "/etc/hydrant/cert.pem"
//! key = "/etc/hydrant/key.pem"
//!
//! [s3]                                 # no endpoint: S3 destinations write to the local object
//!                                      # store, objects_dir/<bucket>/<key>
//! endpoint = "http://127.0.0.1:9000"   # HYDRANT_S3_ENDPOINT, --s3-endpoint
//! region = "us-east-1"                 # HYDRANT_S3_REGION (signing region)
//! force_path_style = true              # HYDRANT_S3_FORCE_PATH_STYLE (most self-hosted servers)
//! access_key_id = "K"                  # HYDRANT_S3_ACCESS_KEY_ID; both absent: AWS_ACCESS_KEY_ID,
//! secret_access_key = "S"              # HYDRANT_S3_SECRET_ACCESS_KEY  AWS_SECRET_ACCESS_KEY, ...
//! max_attempts = 3                     # per request, the SDK's own retries included
//! attempt_timeout_secs = 120
//! server_side_encryption = "AES256"   # SSE-S3 asked for on every object write (PutObject,
//!                                      # CreateMultipartUpload); absent: nothing sent. A
//!                                      # destination's KMSEncryptionConfig (SSE-KMS with its key)
//!                                      # takes precedence; with no endpoint (the local store)
//!                                      # KMSEncryptionConfig is refused at create.
//!
//! [kinesis]                            # KinesisStreamAsSource streams: see
//! endpoint = "http://127.0.0.1:4567"   # crate::source::kinesis::config (HYDRANT_KINESIS_*)
//!
//! [kafka]                              # MSKAsSource streams: see crate::source::kafka::config
//! bootstrap_servers = "127.0.0.1:9092" # HYDRANT_KAFKA_BOOTSTRAP_SERVERS: for any cluster ARN
//! [kafka.clusters."arn:aws:kafka:us-east-1:000000000000:cluster/c/1"]
//! bootstrap_servers = "b-1:9092,b-2:9092"  # per MSKClusterARN; with security_protocol,
//!                                      # sasl_mechanism, sasl_username, sasl_password,
//!                                      # ssl_ca_location passed to librdkafka
//!
//! [delivery]
//! retry_seconds = 86400                # HYDRANT_DELIVERY_RETRY_SECONDS: how long a batch is
//!                                      # retried (Firehose's 24 h for S3) before the error output
//! backoff_initial_ms = 500             # exponential backoff with +-20 % jitter ...
//! backoff_max_ms = 30000               # ... capped here
//! http_backoff_initial_ms = 1000       # HTTP endpoints: Firehose's 1 s, doubling, +-15 % ...
//! http_backoff_max_ms = 120000         # ... capped at 2 minutes
//! retain_delivered_seconds = 3600      # HYDRANT_RETAIN_DELIVERED_SECONDS: replay window (time)
//! retain_delivered_bytes = 1073741824  # HYDRANT_RETAIN_DELIVERED_BYTES: replay window (bytes)
//! max_active_partitions = 500          # dynamic partitioning: partitions active at once per
//!                                      # stream (Firehose's quota: 500, raisable; 1 to 5000);
//!                                      # records of further partitions go to the error output
//!                                      # as activePartitionExceeded
//!
//! [lambda]                             # ProcessingConfiguration's Lambda processors
//! endpoint = "http://127.0.0.1:9001"   # a Lambda Invoke API (SigV4, service "lambda"), or ...
//! region = "us-east-1"
//! access_key_id = "K"                  # both absent: requests are not signed
//! secret_access_key = "S"
//! timeout_secs = 300                   # per invocation (Lambda's own limit is 5 minutes)
//! [lambda.functions]                   # ... a plain URL per LambdaArn (POST the event, JSON reply)
//! "arn:aws:lambda:us-east-1:000000000000:function:f" = "http://127.0.0.1:9002/f"
//!
//! [opensearch]                         # OpenSearch / Elasticsearch destinations
//! username = "u"                       # basic auth to the cluster, or ...
//! password = "p"
//! sigv4 = false                        # ... SigV4 (service "es") with the keys below
//! region = "us-east-1"
//! access_key_id = "K"
//! secret_access_key = "S"
//! allow_plain_http = false             # http:// to a non-loopback cluster
//! [opensearch.domains]                 # DomainARN -> cluster URL
//! "arn:aws:es:us-east-1:000000000000:domain/logs" = "http://127.0.0.1:9200"
//!
//! [catalog]                            # record format conversion's local catalog of tables
//! dir = "/etc/hydrant/catalog"         # HYDRANT_CATALOG_DIR, --catalog-dir; default DIR/catalog:
//!                                      # <database>/<table>.json (`hydrant catalog put|get|list`)
//!
//! [glue]                               # record format conversion's schemas from a Glue API
//! endpoint = "http://127.0.0.1:5000"   # HYDRANT_GLUE_ENDPOINT, --glue-endpoint; absent: the
//!                                      # local catalog ([catalog]) is used
//! region = "us-east-1"                 # signing region (default: the daemon's region)
//! access_key_id = "K"                  # both absent: requests are not signed
//! secret_access_key = "S"
//! timeout_secs = 30
//!
//! [http_endpoint]
//! allow_plain_http = false             # http:// to a non-loopback endpoint (loopback is allowed)
//!
//! [[streams]]                          # declared streams, created at start when missing
//! name = "default"
//! compression = "GZIP"
//! buffering_size_mbs = 5               # BufferingHints.SizeInMBs (1 to 128; default 5)
//! buffering_interval_seconds = 300     # BufferingHints.IntervalInSeconds (0 to 900; default 300)
//! error_output_prefix = "errors/!{firehose:error-output-type}/"
//! durability = "sync"                  # optional per-stream override of [wal]
//! budget_bytes = 1073741824            # optional per-stream override of [wal]
//! ```
//!
//! With no `--config`, the streams are the embedded default: one stream `default` (gzip, into
//! the local object store under the data directory, `DIR/objects/hydrant-local/`), buffering
//! 5 MiB or **5 seconds** (not Firehose's 300 s, so that a first `put-record` shows up quickly;
//! a declared stream without `buffering_interval_seconds` gets Firehose's 300 s).
//!
//! # Retention (`retain_delivered`)
//!
//! A WAL segment is deleted once the destination's cursor has passed all of it AND it falls out
//! of the replay window: delivered segments are kept while their newest record is younger than
//! `retain_delivered_seconds` (default 1 hour) and while the kept delivered segments total at
//! most `retain_delivered_bytes` (default 1 GiB, counted in whole segment files); the oldest go
//! first. `hydrant replay` can re-deliver what is kept. Undelivered segments are never deleted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hydrant_api::destination::{Destination, LOCAL_BUCKET_ARN};
use hydrant_api::model::{BufferingHints, ExtendedS3Config};
use hydrant_wal::Durability;
use serde::{Deserialize, Serialize};

/// Default API address: loopback, Firehose has no fixed port; 4573 is hydrant's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4573";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./hydrant-data";
/// Name of the stream the embedded default configuration declares.
pub const DEFAULT_STREAM: &str = "default";
/// BufferingHints.IntervalInSeconds of the embedded default stream (Firehose's default is 300).
pub const EMBEDDED_DEFAULT_INTERVAL_SECS: u32 = 5;

/// A configuration problem, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("config file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range or settings contradict each other.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Human,
    /// One JSON object per line (for journald and log shippers).
    Json,
}

/// A stream's durability mode as configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Acknowledge after `fdatasync` (group commit). The only durable mode; the default.
    #[default]
    Sync,
    /// Acknowledge after the write; sync every `sync_interval_ms`. Loses up to that window on
    /// power loss, nothing on a process crash.
    Interval,
    /// Acknowledge after the write; no promise about power loss.
    None,
}

impl DurabilityMode {
    /// Parses `sync`, `interval` or `none`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for anything else.
    pub fn parse(s: &str) -> Result<DurabilityMode, ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "sync" => Ok(DurabilityMode::Sync),
            "interval" => Ok(DurabilityMode::Interval),
            "none" => Ok(DurabilityMode::None),
            other => Err(ConfigError::Invalid(format!(
                "durability must be sync, interval or none, not {other:?}"
            ))),
        }
    }

    /// The WAL's durability for this mode.
    #[must_use]
    pub fn to_wal(self, sync_interval_ms: u64) -> Durability {
        match self {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Interval => Durability::Interval {
                every: Duration::from_millis(sync_interval_ms.max(1)),
            },
            DurabilityMode::None => Durability::None,
        }
    }
}

/// WAL settings shared by every stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Default durability of streams.
    pub durability: DurabilityMode,
    /// Sync period for `interval` durability.
    pub sync_interval_ms: u64,
    /// Size of each segment file (a multiple of 4096, at least 8192; holds a 4 MiB batch only
    /// from about 4.2 MiB up).
    pub segment_bytes: u64,
    /// Segment bytes one stream may hold before intake answers ServiceUnavailableException.
    /// 0 = no per-stream budget.
    pub stream_budget_bytes: u64,
    /// Segment bytes all streams together may hold before intake answers
    /// ServiceUnavailableException; the per-stream budgets must fit in it. `None`: the size of
    /// the data directory's file system ([`Config::node_budget`]); 0 = no node budget.
    pub node_budget_bytes: Option<u64>,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            durability: DurabilityMode::Sync,
            sync_interval_ms: 200,
            segment_bytes: 64 << 20,
            stream_budget_bytes: 8 << 30,
            node_budget_bytes: None,
        }
    }
}

/// Limits on what a client holds before it is authenticated, and on `/metrics`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds a request body may take, plus its length at `body_min_bytes_per_sec`.
    pub body_timeout_secs: u64,
    /// The slowest average rate a body may arrive at, bytes per second.
    pub body_min_bytes_per_sec: u64,
    /// Request body bytes held at once across all connections.
    pub body_memory_max_bytes: u64,
    /// Connections served at once; 0: derived from RLIMIT_NOFILE ([`Config::connection_cap`]).
    pub max_connections: usize,
    /// Bearer token of `/metrics`.
    pub metrics_token: Option<String>,
    /// Without keys or token, serve `/metrics` to non-loopback peers too.
    pub metrics_public: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            body_timeout_secs: 30,
            body_min_bytes_per_sec: 64 << 10,
            body_memory_max_bytes: 256 << 20,
            max_connections: 0,
            metrics_token: None,
            metrics_public: false,
        }
    }
}

impl std::fmt::Debug for LimitsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitsConfig")
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field("body_min_bytes_per_sec", &self.body_min_bytes_per_sec)
            .field("body_memory_max_bytes", &self.body_memory_max_bytes)
            .field("max_connections", &self.max_connections)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("metrics_public", &self.metrics_public)
            .finish()
    }
}

/// Descriptors kept for everything but connections when `max_connections` is derived: the
/// registry, the runtime, logs and a margin...
pub const FD_RESERVE_BASE: u64 = 64;
/// ... plus this many per stream (`streams_max`): its WAL's segment files, checkpoint,
/// the delivery worker's object and temp files, its sink's connections.
pub const FD_RESERVE_PER_STREAM: u64 = 8;
/// The fewest connections a derived cap allows.
pub const CONNECTIONS_MIN: u64 = 16;

/// One access key accepted by SigV4 verification.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Authentication settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted keys. Empty: requests are not authenticated.
    pub keys: Vec<AccessKey>,
}

/// TLS settings: PEM certificate chain and private key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// `[s3]`: the S3-compatible service S3 destinations deliver to. Without `endpoint`, they write
/// to the local object store under the data directory instead.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Section {
    /// Endpoint URL (`http://127.0.0.1:9000`); `None`: the local object store.
    pub endpoint: Option<String>,
    /// Signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`).
    pub force_path_style: bool,
    /// Static access key id (with `secret_access_key`); absent: the `AWS_*` environment.
    pub access_key_id: Option<String>,
    /// Static secret.
    pub secret_access_key: Option<String>,
    /// Session token for temporary static credentials.
    pub session_token: Option<String>,
    /// Attempts per request, the SDK's own retries included.
    pub max_attempts: u32,
    /// Timeout of one attempt of one request, seconds.
    pub attempt_timeout_secs: u64,
    /// Connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// `"AES256"`: SSE-S3 on every object write; `None`: nothing sent.
    pub server_side_encryption: Option<String>,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            endpoint: None,
            region: "us-east-1".to_string(),
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            max_attempts: 3,
            attempt_timeout_secs: 120,
            connect_timeout_ms: 5000,
            server_side_encryption: None,
        }
    }
}

impl std::fmt::Debug for S3Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Section")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("max_attempts", &self.max_attempts)
            .field("attempt_timeout_secs", &self.attempt_timeout_secs)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("server_side_encryption", &self.server_side_encryption)
            .finish_non_exhaustive()
    }
}

/// `[delivery]`: retries and the replay window (see the module docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// How long a batch is retried, from its first attempt, before it goes to the error output.
    /// Firehose retries S3 for 24 hours; so does hydrant by default.
    pub retry_seconds: u64,
    /// First backoff between attempts, ms (doubling, +-20 % jitter).
    pub backoff_initial_ms: u64,
    /// Largest backoff, ms.
    pub backoff_max_ms: u64,
    /// First backoff of HTTP endpoint destinations, ms (Firehose: 1 s, doubling, ±15 %).
    pub http_backoff_initial_ms: u64,
    /// Largest backoff of HTTP endpoint destinations, ms (Firehose: 2 minutes).
    pub http_backoff_max_ms: u64,
    /// Delivered records stay in the WAL (for `hydrant replay`) while younger than this.
    pub retain_delivered_seconds: u64,
    /// ... and while the delivered segments kept total at most this many bytes.
    pub retain_delivered_bytes: u64,
    /// Dynamic partitioning: the most partitions a stream has active at once (1 to 5000).
    pub max_active_partitions: usize,
}

/// Default of `max_active_partitions` (Firehose's quota; the sinks crate's
/// `partition::ACTIVE_PARTITIONS_DEFAULT`, which the light build cannot name).
pub const ACTIVE_PARTITIONS_DEFAULT: usize = 500;
/// Largest `max_active_partitions`.
pub const ACTIVE_PARTITIONS_MAX: usize = 5_000;

/// Default replay window, time: 1 hour.
pub const DEFAULT_RETAIN_DELIVERED_SECONDS: u64 = 3600;
/// Default replay window, bytes: 1 GiB.
pub const DEFAULT_RETAIN_DELIVERED_BYTES: u64 = 1 << 30;

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_seconds: 24 * 3600,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            http_backoff_initial_ms: 1_000,
            http_backoff_max_ms: 120_000,
            retain_delivered_seconds: DEFAULT_RETAIN_DELIVERED_SECONDS,
            retain_delivered_bytes: DEFAULT_RETAIN_DELIVERED_BYTES,
            max_active_partitions: ACTIVE_PARTITIONS_DEFAULT,
        }
    }
}

/// `[lambda]`: how Lambda processors are reached (see the module docs).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LambdaSection {
    /// Base URL of a Lambda Invoke API.
    pub endpoint: Option<String>,
    /// Signing region (default: the daemon's `region`).
    pub region: Option<String>,
    /// Access key for SigV4.
    pub access_key_id: Option<String>,
    /// Secret key for SigV4.
    pub secret_access_key: Option<String>,
    /// Per-invocation timeout, seconds (default 300).
    pub timeout_secs: Option<u64>,
    /// LambdaArn -> plain URL.
    pub functions: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for LambdaSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaSection")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("functions", &self.functions)
            .finish_non_exhaustive()
    }
}

/// `[opensearch]`: how OpenSearch / Elasticsearch clusters are reached.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenSearchSection {
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Sign requests with SigV4 (service `es`).
    pub sigv4: bool,
    /// Signing region (default: the daemon's `region`).
    pub region: Option<String>,
    /// Access key for SigV4.
    pub access_key_id: Option<String>,
    /// Secret key for SigV4.
    pub secret_access_key: Option<String>,
    /// Allow `http://` to a non-loopback cluster.
    pub allow_plain_http: bool,
    /// DomainARN -> cluster URL.
    pub domains: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for OpenSearchSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSearchSection")
            .field("username", &self.username)
            .field("sigv4", &self.sigv4)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// `[catalog]`: where record format conversion finds table schemas.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSection {
    /// The local catalog's directory; `None`: `data_dir/catalog`.
    pub dir: Option<PathBuf>,
}

/// `[glue]`: a Glue Data Catalog API for record format conversion's schemas.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlueSection {
    /// The endpoint URL; `None`: schemas come from the local catalog.
    pub endpoint: Option<String>,
    /// Signing region (default: the daemon's `region`).
    pub region: Option<String>,
    /// Access key for SigV4.
    pub access_key_id: Option<String>,
    /// Secret key for SigV4.
    pub secret_access_key: Option<String>,
    /// Per-request timeout, seconds (default 30).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for GlueSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlueSection")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// `[http_endpoint]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpEndpointSection {
    /// Allow `http://` to a non-loopback endpoint (Firehose allows https only).
    pub allow_plain_http: bool,
}

/// A stream declared in the configuration. It is created at start-up when the registry does not
/// have it; an existing stream keeps its registry definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream name (`[a-zA-Z0-9_.-]{1,64}`).
    pub name: String,
    /// CompressionFormat of the destination (default GZIP).
    #[serde(default)]
    pub compression: Option<String>,
    /// Destination bucket ARN; absent: the local object store under the data directory.
    #[serde(default)]
    pub bucket_arn: Option<String>,
    /// Object key prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// ErrorOutputPrefix.
    #[serde(default)]
    pub error_output_prefix: Option<String>,
    /// BufferingHints.SizeInMBs (default 5).
    #[serde(default)]
    pub buffering_size_mbs: Option<u32>,
    /// BufferingHints.IntervalInSeconds (default 300).
    #[serde(default)]
    pub buffering_interval_seconds: Option<u32>,
    /// Overrides `[wal] durability` for this stream.
    #[serde(default)]
    pub durability: Option<DurabilityMode>,
    /// Overrides `[wal] stream_budget_bytes` for this stream.
    #[serde(default)]
    pub budget_bytes: Option<u64>,
}

impl StreamConfig {
    /// The embedded default stream.
    #[must_use]
    pub fn embedded_default() -> StreamConfig {
        StreamConfig {
            name: DEFAULT_STREAM.to_string(),
            compression: Some("GZIP".to_string()),
            bucket_arn: None,
            prefix: None,
            error_output_prefix: None,
            buffering_size_mbs: Some(5),
            buffering_interval_seconds: Some(EMBEDDED_DEFAULT_INTERVAL_SECS),
            durability: None,
            budget_bytes: None,
        }
    }

    /// The destination of a stream declared in the configuration (the embedded default is one):
    /// gzip unless configured, into the bucket configured or `hydrant-local` (the local object
    /// store when no S3 endpoint is configured).
    #[must_use]
    pub fn destination(&self) -> Destination {
        let buffering_hints = match (self.buffering_size_mbs, self.buffering_interval_seconds) {
            (None, None) => None,
            (size, interval) => Some(BufferingHints {
                size_in_mbs: Some(size.unwrap_or(5)),
                interval_in_seconds: Some(interval.unwrap_or(300)),
            }),
        };
        Destination::ExtendedS3(ExtendedS3Config {
            role_arn: Some("arn:aws:iam::000000000000:role/hydrant-local".to_string()),
            bucket_arn: Some(
                self.bucket_arn
                    .as_deref()
                    .unwrap_or(LOCAL_BUCKET_ARN)
                    .to_string(),
            ),
            prefix: self.prefix.clone(),
            error_output_prefix: self.error_output_prefix.clone(),
            compression_format: Some(self.compression.as_deref().unwrap_or("GZIP").to_string()),
            buffering_hints,
            ..ExtendedS3Config::default()
        })
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where streams, the registry and (unless `objects_dir` says otherwise) the local object
    /// store live.
    pub data_dir: PathBuf,
    /// The local object store's directory; `None`: `data_dir/objects`. On another disk, the
    /// objects delivered there do not take the WAL disk's write bandwidth.
    pub objects_dir: Option<PathBuf>,
    /// API address (HTTP, or HTTPS with `[tls]`).
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` without access keys.
    pub allow_public_unauthenticated: bool,
    /// Log line format.
    pub log_format: LogFormat,
    /// Region named in ARNs.
    pub region: String,
    /// Account id named in ARNs.
    pub account_id: String,
    /// Most streams at once (LimitExceededException past it).
    pub streams_max: usize,
    /// Seconds the daemon waits for in-flight requests on SIGTERM before closing anyway.
    pub shutdown_grace_secs: u64,
    /// Threads serving the API (the async runtime's workers). 0: one fewer than the CPUs, at
    /// least one ([`Config::api_threads`]).
    pub worker_threads: usize,
    /// WAL settings.
    pub wal: WalConfig,
    /// Limits on unauthenticated clients and `/metrics`.
    pub limits: LimitsConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// TLS.
    pub tls: TlsConfig,
    /// The S3 service of S3 destinations.
    pub s3: S3Section,
    /// Delivery retries and retention.
    pub delivery: DeliveryConfig,
    /// Lambda processors.
    pub lambda: LambdaSection,
    /// OpenSearch / Elasticsearch clusters.
    pub opensearch: OpenSearchSection,
    /// HTTP endpoint destinations.
    pub http_endpoint: HttpEndpointSection,
    /// Record format conversion's table schemas: the local catalog ...
    pub catalog: CatalogSection,
    /// ... or a Glue API.
    pub glue: GlueSection,
    /// The Kinesis service of `KinesisStreamAsSource` streams.
    pub kinesis: crate::source::kinesis::Section,
    /// The Kafka clusters of `MSKAsSource` streams.
    pub kafka: crate::source::kafka::Section,
    /// Declared streams.
    pub streams: Vec<StreamConfig>,
    /// The web console.
    pub console: crate::console::ConsoleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            objects_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 4573)),
            allow_public_unauthenticated: false,
            log_format: LogFormat::Human,
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            streams_max: 50,
            shutdown_grace_secs: 30,
            worker_threads: 0,
            wal: WalConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            s3: S3Section::default(),
            delivery: DeliveryConfig::default(),
            lambda: LambdaSection::default(),
            opensearch: OpenSearchSection::default(),
            http_endpoint: HttpEndpointSection::default(),
            catalog: CatalogSection::default(),
            glue: GlueSection::default(),
            kinesis: crate::source::kinesis::Section::default(),
            kafka: crate::source::kafka::Section::default(),
            streams: vec![StreamConfig::embedded_default()],
            console: crate::console::ConsoleConfig::default(),
        }
    }
}

/// Values from flags or `HYDRANT_*` variables; each `Some` overrides the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir` / `HYDRANT_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--objects-dir` / `HYDRANT_OBJECTS_DIR`.
    pub objects_dir: Option<PathBuf>,
    /// `--catalog-dir` / `HYDRANT_CATALOG_DIR`.
    pub catalog_dir: Option<PathBuf>,
    /// `--glue-endpoint` / `HYDRANT_GLUE_ENDPOINT`.
    pub glue_endpoint: Option<String>,
    /// `--listen` / `HYDRANT_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--allow-public-unauthenticated` / `HYDRANT_ALLOW_PUBLIC_UNAUTHENTICATED`.
    pub allow_public_unauthenticated: Option<bool>,
    /// `--log-format` / `HYDRANT_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--region` / `HYDRANT_REGION`.
    pub region: Option<String>,
    /// `--account-id` / `HYDRANT_ACCOUNT_ID`.
    pub account_id: Option<String>,
    /// `--streams-max` / `HYDRANT_STREAMS_MAX`.
    pub streams_max: Option<usize>,
    /// `--durability` / `HYDRANT_DURABILITY`.
    pub durability: Option<DurabilityMode>,
    /// `--sync-interval-ms` / `HYDRANT_SYNC_INTERVAL_MS`.
    pub sync_interval_ms: Option<u64>,
    /// `--segment-bytes` / `HYDRANT_SEGMENT_BYTES`.
    pub segment_bytes: Option<u64>,
    /// `--stream-budget-bytes` / `HYDRANT_STREAM_BUDGET_BYTES`.
    pub stream_budget_bytes: Option<u64>,
    /// `--node-budget-bytes` / `HYDRANT_NODE_BUDGET_BYTES`.
    pub node_budget_bytes: Option<u64>,
    /// `--body-timeout-secs` / `HYDRANT_BODY_TIMEOUT_SECS`.
    pub body_timeout_secs: Option<u64>,
    /// `--body-min-bytes-per-sec` / `HYDRANT_BODY_MIN_BYTES_PER_SEC`.
    pub body_min_bytes_per_sec: Option<u64>,
    /// `--body-memory-max-bytes` / `HYDRANT_BODY_MEMORY_MAX_BYTES`.
    pub body_memory_max_bytes: Option<u64>,
    /// `--max-connections` / `HYDRANT_MAX_CONNECTIONS`.
    pub max_connections: Option<usize>,
    /// `--metrics-token` / `HYDRANT_METRICS_TOKEN`.
    pub metrics_token: Option<String>,
    /// `--metrics-public` / `HYDRANT_METRICS_PUBLIC`.
    pub metrics_public: Option<bool>,
    /// `--access-key-id` / `HYDRANT_ACCESS_KEY_ID` (with the secret: adds one key).
    pub access_key_id: Option<String>,
    /// `--secret-access-key` / `HYDRANT_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `--tls-cert` / `HYDRANT_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `HYDRANT_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `--shutdown-grace-secs` / `HYDRANT_SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace_secs: Option<u64>,
    /// `--worker-threads` / `HYDRANT_WORKER_THREADS`.
    pub worker_threads: Option<usize>,
    /// `--s3-endpoint` / `HYDRANT_S3_ENDPOINT`.
    pub s3_endpoint: Option<String>,
    /// `--s3-region` / `HYDRANT_S3_REGION`.
    pub s3_region: Option<String>,
    /// `--s3-force-path-style` / `HYDRANT_S3_FORCE_PATH_STYLE`.
    pub s3_force_path_style: Option<bool>,
    /// `--s3-access-key-id` / `HYDRANT_S3_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// `--s3-secret-access-key` / `HYDRANT_S3_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<String>,
    /// `--delivery-retry-seconds` / `HYDRANT_DELIVERY_RETRY_SECONDS`.
    pub delivery_retry_seconds: Option<u64>,
    /// `--retain-delivered-seconds` / `HYDRANT_RETAIN_DELIVERED_SECONDS`.
    pub retain_delivered_seconds: Option<u64>,
    /// `--retain-delivered-bytes` / `HYDRANT_RETAIN_DELIVERED_BYTES`.
    pub retain_delivered_bytes: Option<u64>,
}

impl Config {
    /// Parses a TOML document.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with `path` for the message.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Applies flag and environment values over this configuration.
    pub fn apply_overrides(&mut self, o: Overrides) {
        if let Some(v) = o.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = o.objects_dir {
            self.objects_dir = Some(v);
        }
        if let Some(v) = o.catalog_dir {
            self.catalog.dir = Some(v);
        }
        if let Some(v) = o.glue_endpoint {
            self.glue.endpoint = Some(v);
        }
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if let Some(v) = o.allow_public_unauthenticated {
            self.allow_public_unauthenticated = v;
        }
        if let Some(v) = o.log_format {
            self.log_format = v;
        }
        if let Some(v) = o.region {
            self.region = v;
        }
        if let Some(v) = o.account_id {
            self.account_id = v;
        }
        if let Some(v) = o.streams_max {
            self.streams_max = v;
        }
        if let Some(v) = o.durability {
            self.wal.durability = v;
        }
        if let Some(v) = o.sync_interval_ms {
            self.wal.sync_interval_ms = v;
        }
        if let Some(v) = o.segment_bytes {
            self.wal.segment_bytes = v;
        }
        if let Some(v) = o.stream_budget_bytes {
            self.wal.stream_budget_bytes = v;
        }
        if let Some(v) = o.node_budget_bytes {
            self.wal.node_budget_bytes = Some(v);
        }
        if let Some(v) = o.body_timeout_secs {
            self.limits.body_timeout_secs = v;
        }
        if let Some(v) = o.body_min_bytes_per_sec {
            self.limits.body_min_bytes_per_sec = v;
        }
        if let Some(v) = o.body_memory_max_bytes {
            self.limits.body_memory_max_bytes = v;
        }
        if let Some(v) = o.max_connections {
            self.limits.max_connections = v;
        }
        if let Some(v) = o.metrics_token {
            self.limits.metrics_token = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = o.metrics_public {
            self.limits.metrics_public = v;
        }
        if let (Some(id), Some(secret)) = (o.access_key_id, o.secret_access_key) {
            self.auth.keys.push(AccessKey {
                access_key_id: id,
                secret_access_key: secret,
            });
        }
        if let Some(v) = o.tls_cert {
            self.tls.cert = Some(v);
        }
        if let Some(v) = o.tls_key {
            self.tls.key = Some(v);
        }
        if let Some(v) = o.shutdown_grace_secs {
            self.shutdown_grace_secs = v;
        }
        if let Some(v) = o.worker_threads {
            self.worker_threads = v;
        }
        if let Some(v) = o.s3_endpoint {
            self.s3.endpoint = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = o.s3_region {
            self.s3.region = v;
        }
        if let Some(v) = o.s3_force_path_style {
            self.s3.force_path_style = v;
        }
        if let Some(v) = o.s3_access_key_id {
            self.s3.access_key_id = Some(v);
        }
        if let Some(v) = o.s3_secret_access_key {
            self.s3.secret_access_key = Some(v);
        }
        if let Some(v) = o.delivery_retry_seconds {
            self.delivery.retry_seconds = v;
        }
        if let Some(v) = o.retain_delivered_seconds {
            self.delivery.retain_delivered_seconds = v;
        }
        if let Some(v) = o.retain_delivered_bytes {
            self.delivery.retain_delivered_bytes = v;
        }
    }

    /// The API's thread count: `worker_threads`, or with 0 one fewer than the CPUs (at least
    /// one). Measured on 2 vCPUs (`hydrant bench put`, 2026-11-26): one API thread served
    /// 62,773 to 65,875 PutRecords/s where two served 60,414 to 61,273, PutRecordBatch alike
    /// (581 against 605 MB/s, within run-to-run spread): the group-commit, segment-preparation
    /// and delivery threads want a CPU of their own, and more runnable threads than CPUs cost
    /// context switches.
    #[must_use]
    pub fn api_threads(&self) -> usize {
        if self.worker_threads > 0 {
            return self.worker_threads;
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        cpus.saturating_sub(1).max(1)
    }

    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(h) = &self.console.password_hash {
            if let Err(e) = crate::console::PasswordHash::parse(h) {
                return bad(e.to_string());
            }
        }
        if self.wal.segment_bytes < 8192 || !self.wal.segment_bytes.is_multiple_of(4096) {
            return bad(format!(
                "wal.segment_bytes must be a multiple of 4096 and at least 8192, not {}",
                self.wal.segment_bytes
            ));
        }
        if self.limits.body_timeout_secs == 0 || self.limits.body_min_bytes_per_sec == 0 {
            return bad(
                "limits.body_timeout_secs and limits.body_min_bytes_per_sec must be at least 1"
                    .to_string(),
            );
        }
        let body_max = hydrant_api::decode::BODY_BYTES_MAX as u64;
        if self.limits.body_memory_max_bytes < body_max + 1024 {
            return bad(format!(
                "limits.body_memory_max_bytes must be at least {} (one largest request body \
                 and 1 KiB), not {}",
                body_max + 1024,
                self.limits.body_memory_max_bytes
            ));
        }
        self.kinesis.validate().map_err(ConfigError::Invalid)?;
        self.kafka.validate().map_err(ConfigError::Invalid)?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert and tls.key go together".to_string());
        }
        if let Some(sse) = &self.s3.server_side_encryption {
            if sse != "AES256" {
                return bad(format!(
                    "s3.server_side_encryption must be \"AES256\" (SSE-KMS is set per destination \
                     with KMSEncryptionConfig), not {sse:?}"
                ));
            }
        }
        if !self.listen.ip().is_loopback()
            && self.auth.keys.is_empty()
            && !self.allow_public_unauthenticated
        {
            return bad(format!(
                "listening on {} (not loopback) without access keys needs \
                 --allow-public-unauthenticated (or configure [auth] keys)",
                self.listen
            ));
        }
        for k in &self.auth.keys {
            if k.access_key_id.is_empty() || k.secret_access_key.is_empty() {
                return bad("an access key needs a non-empty id and secret".to_string());
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.streams {
            if !hydrant_api::validate::stream_name_ok(&s.name) {
                return bad(format!(
                    "stream name {:?} must match [a-zA-Z0-9_.-]{{1,64}}",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return bad(format!("stream {:?} is declared twice", s.name));
            }
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return bad("s3.access_key_id and s3.secret_access_key go together".to_string());
        }
        if self.s3.max_attempts == 0 {
            return bad("s3.max_attempts must be at least 1".to_string());
        }
        if self.delivery.backoff_initial_ms == 0
            || self.delivery.backoff_max_ms < self.delivery.backoff_initial_ms
        {
            return bad(
                "delivery.backoff_initial_ms must be at least 1 and at most backoff_max_ms"
                    .to_string(),
            );
        }
        if !(1..=ACTIVE_PARTITIONS_MAX).contains(&self.delivery.max_active_partitions) {
            return bad(format!(
                "delivery.max_active_partitions must be 1 to {ACTIVE_PARTITIONS_MAX}"
            ));
        }
        for s in &self.streams {
            if s.buffering_size_mbs
                .is_some_and(|v| !(1..=128).contains(&v))
            {
                return bad(format!(
                    "stream {:?}: buffering_size_mbs must be 1 to 128",
                    s.name
                ));
            }
            if s.buffering_interval_seconds.is_some_and(|v| v > 900) {
                return bad(format!(
                    "stream {:?}: buffering_interval_seconds must be 0 to 900",
                    s.name
                ));
            }
        }
        for s in &self.streams {
            s.destination()
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("stream {:?}: {}", s.name, e.message)))?;
        }
        if self.streams.len() > self.streams_max {
            return bad(format!(
                "{} streams declared, streams_max is {}",
                self.streams.len(),
                self.streams_max
            ));
        }
        Ok(())
    }

    /// The most connections served at once: `limits.max_connections`, or with 0 the
    /// process's descriptor limit `nofile` less [`FD_RESERVE_BASE`] and
    /// [`FD_RESERVE_PER_STREAM`] per stream of `streams_max`, at least [`CONNECTIONS_MIN`].
    #[must_use]
    pub fn connection_cap(&self, nofile: u64) -> usize {
        if self.limits.max_connections > 0 {
            return self.limits.max_connections;
        }
        let reserve = FD_RESERVE_BASE + FD_RESERVE_PER_STREAM * self.streams_max as u64;
        usize::try_from(nofile.saturating_sub(reserve).max(CONNECTIONS_MIN)).unwrap_or(usize::MAX)
    }

    /// The node's disk budget (`None`: none): `wal.node_budget_bytes`, or unset the size of
    /// the file system holding `data_dir` (`fs_bytes`, found by the caller).
    #[must_use]
    pub fn node_budget(&self, fs_bytes: u64) -> Option<u64> {
        match self.wal.node_budget_bytes {
            Some(0) => None,
            Some(b) => Some(b),
            None => (fs_bytes > 0).then_some(fs_bytes),
        }
    }

    /// Checks that the declared streams' budgets fit in `wal.node_budget_bytes` (once the
    /// daemon resolved it; unset or 0: nothing to check).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming both figures.
    pub fn check_declared_budgets(&self) -> Result<(), ConfigError> {
        let node = self.wal.node_budget_bytes.unwrap_or(0);
        if node == 0 {
            return Ok(());
        }
        let total = self.streams.iter().try_fold(0u64, |sum, s| {
            self.stream_budget(&s.name).and_then(|b| sum.checked_add(b))
        });
        match total {
            Some(t) if t <= node => Ok(()),
            _ => Err(ConfigError::Invalid(format!(
                "the declared streams' disk budgets ({}) do not fit in wal.node_budget_bytes \
                 ({node}): give each stream a budget (wal.stream_budget_bytes, 0 is unlimited) that fits, or raise \
                 wal.node_budget_bytes (0: no node budget)",
                total.map_or_else(|| "unlimited".to_string(), |t| t.to_string())
            ))),
        }
    }

    /// The durability a stream gets.
    #[must_use]
    pub fn stream_durability(&self, name: &str) -> Durability {
        let mode = self
            .declared(name)
            .and_then(|s| s.durability)
            .unwrap_or(self.wal.durability);
        mode.to_wal(self.wal.sync_interval_ms)
    }

    /// The per-stream budget a stream gets (`None`: unlimited).
    #[must_use]
    pub fn stream_budget(&self, name: &str) -> Option<u64> {
        let b = self
            .declared(name)
            .and_then(|s| s.budget_bytes)
            .unwrap_or(self.wal.stream_budget_bytes);
        (b > 0).then_some(b)
    }

    /// The declared stream of this name, if any.
    #[must_use]
    pub fn declared(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// `DIR/streams`.
    #[must_use]
    pub fn streams_dir(&self) -> PathBuf {
        self.data_dir.join("streams")
    }

    /// `DIR/streams/<name>/wal`: the stream's log. `name` must be valid (the name pattern allows
    /// no `/`, and `.`/`..` are refused by [`hydrant_api::validate::stream_name_ok`]).
    #[must_use]
    pub fn wal_dir(&self, name: &str) -> PathBuf {
        self.streams_dir().join(name).join("wal")
    }

    /// The local catalog of record format conversion: `[catalog] dir`, else `DIR/catalog`.
    #[must_use]
    pub fn catalog_dir(&self) -> PathBuf {
        self.catalog
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("catalog"))
    }

    /// `DIR/registry`: the sled database.
    #[must_use]
    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("registry")
    }

    /// The local object store (`<it>/<bucket>/<key>`): `objects_dir`, else
    /// [`default_local_store_dir`].
    #[must_use]
    pub fn local_store_dir(&self) -> PathBuf {
        self.objects_dir
            .clone()
            .unwrap_or_else(|| default_local_store_dir(&self.data_dir))
    }

    /// `DIR/streams/<name>/delivery/<destination id>.ckpt`: a destination's cursor and intent
    /// (inside the stream's directory, so deleting the stream removes it).
    #[must_use]
    pub fn checkpoint_path(&self, name: &str, destination_id: &str) -> PathBuf {
        self.streams_dir()
            .join(name)
            .join("delivery")
            .join(format!("{destination_id}.ckpt"))
    }
}

/// `data_dir/objects`: the local object store when `objects_dir` is not set (defined in
/// hydrant-api beside [`LOCAL_BUCKET_ARN`], for the tools).
pub use hydrant_api::destination::default_local_store_dir;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_file() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.streams.len(), 1);
        c.validate().expect("defaults are valid");
        let c = Config::from_toml(
            "listen = \"127.0.0.1:1\"\n[wal]\ndurability = \"interval\"\n\
             [[streams]]\nname = \"a\"\nbudget_bytes = 9\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        assert_eq!(c.wal.durability, DurabilityMode::Interval);
        assert_eq!(c.stream_budget("a"), Some(9));
        assert_eq!(c.stream_budget("b"), Some(8 << 30));
        assert!(Config::from_toml("nope = 1", Path::new("x")).is_err());
    }

    #[test]
    fn the_local_object_store_follows_objects_dir() {
        let mut c = Config::from_toml("data_dir = \"/d\"\n", Path::new("x.toml")).expect("parses");
        assert_eq!(c.local_store_dir(), Path::new("/d/objects"));
        let c2 = Config::from_toml("objects_dir = \"/o\"\n", Path::new("x.toml")).expect("parses");
        assert_eq!(c2.local_store_dir(), Path::new("/o"));
        c.apply_overrides(Overrides {
            objects_dir: Some(PathBuf::from("/flag")),
            ..Overrides::default()
        });
        assert_eq!(c.local_store_dir(), Path::new("/flag"));
    }

    #[test]
    fn public_listen_needs_keys_or_opt_in() {
        let mut c = Config {
            listen: "0.0.0.0:4573".parse().expect("addr"),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        c.allow_public_unauthenticated = true;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn limits_connection_cap_and_node_budget() {
        let mut c = Config::from_toml(
            "streams_max = 4\n[limits]\nbody_timeout_secs = 5\nmetrics_token = \"t\"\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        assert_eq!(c.limits.body_timeout_secs, 5);
        assert_eq!(c.limits.metrics_token.as_deref(), Some("t"));
        // 256 descriptors less 64 and 8 for each of 4 streams.
        assert_eq!(c.connection_cap(256), 160);
        assert_eq!(c.connection_cap(10), CONNECTIONS_MIN as usize);
        c.limits.max_connections = 7;
        assert_eq!(c.connection_cap(256), 7);
        assert_eq!(c.node_budget(100), Some(100));
        c.wal.node_budget_bytes = Some(0);
        assert_eq!(c.node_budget(100), None);
        c.wal.node_budget_bytes = Some(9 << 30);
        c.check_declared_budgets().expect("8 GiB fits in 9");
        c.wal.node_budget_bytes = Some(7 << 30);
        assert!(c.check_declared_budgets().is_err());
        c.limits.body_memory_max_bytes = 1 << 20;
        assert!(c.validate().is_err(), "no room for one largest body");
    }
}
