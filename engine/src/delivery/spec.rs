//! From a stream's registry record and the daemon's configuration to a [`DeliverySpec`]: the
//! sink (S3 through the `[s3]` endpoint or the local object store `DIR/objects/<bucket>/`;
//! PostgreSQL/Redshift; OpenSearch; an HTTP endpoint), the transform, the backup copy, the error
//! output (the destination's S3 configuration; for S3 destinations the local store), buffering,
//! retries and retention.

use std::sync::Arc;
use std::time::Duration;

use hydrant_sinks::{
    Batch, BoxFuture, Compression, FailedRecord, LocalStore, ObjectSink, ObjectSinkConfig,
    ObjectStore, S3Config, S3Credentials, S3Store, ServerSideEncryption, Sink, SinkError,
};
use serde_json::Value;

use super::build_sinks::BuildError;
use super::worker::{
    DeliverySpec, DeliveryStats, ErrorOutput, PartitioningSpec, Retain, RetryPolicy,
};

/// The most bytes the open partitions of one destination hold together (at least one
/// `SizeInMBs`): past it the largest partition is written early.
const PARTITION_MEMORY_BYTES: u64 = 512 << 20;
use crate::api::destination::{Destination, DESTINATION_ID};
use crate::api::model::{BufferingHints, ExtendedS3Config};
use crate::api::non_s3::RetryOptions;
use crate::config::Config;
use crate::registry::StreamRecord;

/// Why a destination cannot be delivered to.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The destination's settings are invalid (validated at Create/Update, so only a registry
    /// written by another version or edited by hand gets here).
    #[error("stream {stream}: invalid destination: {reason}")]
    Invalid {
        /// The stream.
        stream: String,
        /// What is wrong.
        #[source]
        reason: Box<InvalidDestination>,
    },
    /// The store could not be set up (the local directory, or the S3 client).
    #[error("stream {stream}: {source}")]
    Store {
        /// The stream.
        stream: String,
        /// The sink's error.
        #[source]
        source: SinkError,
    },
}

/// The rule a stored destination breaks: what [`SpecError::Invalid`] carries.
#[derive(Debug, thiserror::Error)]
pub enum InvalidDestination {
    /// A destination that needs its nested `S3Configuration` has none.
    #[error("no S3Configuration")]
    NoS3Configuration,
    /// `S3BackupConfiguration` is not an S3 configuration.
    #[error("S3BackupConfiguration: {0}")]
    BackupConfiguration(serde_json::Error),
    /// The destination's sinks (its object sinks among them) or its processing pipeline
    /// cannot be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The incarnation as it appears in batch identities (and so object ids): 16 hex digits.
#[must_use]
pub fn incarnation_id(incarnation: u64) -> String {
    format!("{incarnation:016x}")
}

fn s3_config(config: &Config) -> S3Config {
    let s = &config.s3;
    let credentials = match (&s.access_key_id, &s.secret_access_key) {
        (Some(id), Some(secret)) => S3Credentials::Static {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: s.session_token.clone(),
        },
        _ => S3Credentials::Environment,
    };
    S3Config {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        force_path_style: s.force_path_style,
        credentials,
        max_attempts: s.max_attempts,
        connect_timeout: Duration::from_millis(s.connect_timeout_ms.max(1)),
        attempt_timeout: Duration::from_secs(s.attempt_timeout_secs.max(1)),
        ..S3Config::default()
    }
}

/// Removes temporary files a crash left in the local object store (`DIR/objects`). Run once at
/// start-up, before any worker starts.
///
/// # Errors
/// [`SinkError`] when the tree cannot be walked or a file removed.
pub fn sweep_local_store(config: &Config) -> Result<usize, SinkError> {
    LocalStore::new(config.local_store_dir())?.sweep_temp_files()
}

/// The error output: Firehose's failed-record JSON, one object per error-output type
/// (`processing-failed`, `http-endpoint-failed`, `AmazonOpenSearchService-failed`, hydrant's own
/// `s3-failed`, ...), under the evaluated ErrorOutputPrefix of the destination's S3
/// configuration: for an S3 destination that is the destination's own bucket with its
/// encryption, as in Firehose. Should the bucket fail the write (its retries spent), the failed
/// records go to `fallback`, the local object store, with a warning, so that a batch whose
/// delivery failed because S3 is down still reaches an error output and the cursor moves on.
#[derive(Debug)]
struct ObjectErrorOutput {
    sink: ObjectSink,
    fallback: Option<ObjectSink>,
}

impl ErrorOutput for ObjectErrorOutput {
    fn put_failed<'a>(
        &'a self,
        batch: &'a Batch,
        records: &'a [FailedRecord],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let put = |sink: &'a ObjectSink| {
                sink.put_error_output(
                    &batch.identity,
                    batch.stream_version,
                    batch.oldest_arrival_ms,
                    records,
                )
            };
            let written = match (put(&self.sink).await, &self.fallback) {
                (Ok(written), _) => written,
                (Err(error), Some(fallback)) => {
                    tracing::warn!(batch = %batch.identity, error = %error,
                        local = %fallback.store().location(""),
                        "the error output's bucket failed; writing to the local object store");
                    put(fallback).await?
                }
                (Err(error), None) => return Err(error),
            };
            for d in &written {
                tracing::warn!(batch = %batch.identity, location = %d.location,
                    records = d.records, "failed records written to the error output");
            }
            Ok(())
        })
    }
}

/// The store of an S3 configuration: S3 through the `[s3]` endpoint when one is configured
/// (unless `local_only`), else the local object store's `<bucket>/` ([`Config::local_store_dir`]).
fn store_for(
    config: &Config,
    bucket_arn: Option<&str>,
    encryption: Option<&Value>,
    local_only: bool,
) -> Result<Arc<dyn ObjectStore>, BuildError> {
    let arn = bucket_arn.ok_or(BuildError::NoBucketArn)?;
    let bucket = hydrant_sinks::keys::bucket_from_arn(arn)?;
    match (&config.s3.endpoint, local_only) {
        (Some(_), false) => Ok(Arc::new(
            S3Store::new(&s3_config(config), bucket)?
                .with_encryption(server_side_encryption(config, encryption)),
        )),
        _ => Ok(Arc::new(LocalStore::for_bucket(
            &config.local_store_dir(),
            bucket,
        )?)),
    }
}

/// The server-side encryption of an S3 configuration's object writes: its
/// `KMSEncryptionConfig.AWSKMSKeyARN` (SSE-KMS), else the daemon's `[s3] server_side_encryption`
/// (SSE-S3), else nothing. (`KMSEncryptionConfig` without an S3 endpoint is refused at create:
/// [`kms_needs_s3`].)
fn server_side_encryption(config: &Config, encryption: Option<&Value>) -> ServerSideEncryption {
    match kms_key(encryption) {
        Some(key_id) => ServerSideEncryption::Kms {
            key_id: key_id.to_string(),
        },
        None if config.s3.server_side_encryption.is_some() => ServerSideEncryption::Aes256,
        None => ServerSideEncryption::None,
    }
}

/// `EncryptionConfiguration.KMSEncryptionConfig.AWSKMSKeyARN`, when given.
fn kms_key(encryption: Option<&Value>) -> Option<&str> {
    encryption?
        .get("KMSEncryptionConfig")?
        .get("AWSKMSKeyARN")?
        .as_str()
}

/// KMS encryption needs an S3 service: the local object store (no `[s3] endpoint`) cannot apply
/// it, so it is refused, naming the member.
///
/// # Errors
/// The refusal's message.
pub fn kms_needs_s3(config: &Config, member: &str, c: &ExtendedS3Config) -> Result<(), BuildError> {
    let kms = c
        .encryption_configuration
        .as_ref()
        .is_some_and(|e| e.get("KMSEncryptionConfig").is_some());
    if kms && config.s3.endpoint.is_none() {
        return Err(BuildError::KmsNeedsS3 {
            member: member.to_string(),
        });
    }
    Ok(())
}

/// An object sink for a nested S3 configuration (intermediate objects, backup, error output).
fn object_sink(
    config: &Config,
    c: &ExtendedS3Config,
    local_only: bool,
    redshift: bool,
) -> Result<ObjectSink, BuildError> {
    let store = store_for(
        config,
        c.bucket_arn.as_deref(),
        c.encryption_configuration.as_ref(),
        local_only,
    )?;
    let object_config = if redshift {
        let prefixes = hydrant_sinks::S3Prefixes::for_redshift(
            c.prefix.as_deref(),
            c.error_output_prefix.as_deref(),
        )?;
        let compression = match c.compression_format.as_deref() {
            Some(f) => Compression::from_firehose(f)?,
            None => Compression::Uncompressed,
        };
        ObjectSinkConfig::with_compression(prefixes, compression)
    } else if crate::api::partitioning::enabled(c) {
        // Dynamic partitioning: the Prefix checked against the keys the processors produce, at
        // most `[delivery] max_active_partitions` partitions active at once. (Its error output,
        // local_only, shares the templates and writes only under ErrorOutputPrefix.)
        let produced = match &c.processing_configuration {
            Some(p) => hydrant_sinks::transform::Pipeline::keys_produced(p)?,
            None => hydrant_sinks::partition::KeysProduced::default(),
        };
        let limits = hydrant_sinks::partition::Limits {
            max_active: config.delivery.max_active_partitions,
        };
        ObjectSinkConfig::partitioned(
            c.prefix.as_deref(),
            c.error_output_prefix.as_deref(),
            c.compression_format.as_deref(),
            c.file_extension.as_deref(),
            &produced,
            limits,
        )
        .and_then(|o| o.with_time_zone(c.custom_time_zone.as_deref()))?
    } else {
        ObjectSinkConfig::from_firehose(
            c.prefix.as_deref(),
            c.error_output_prefix.as_deref(),
            c.compression_format.as_deref(),
            c.file_extension.as_deref(),
        )
        .and_then(|o| o.with_time_zone(c.custom_time_zone.as_deref()))?
    };
    Ok(ObjectSink::new(store, object_config))
}

/// The source-record backup copy into `c`, when the destination's S3BackupMode asks for one.
fn backup_sink(
    config: &Config,
    c: Option<&ExtendedS3Config>,
) -> Result<Option<Arc<dyn Sink>>, BuildError> {
    match c {
        Some(c) => Ok(Some(Arc::new(object_sink(config, c, false, false)?))),
        None => Ok(None),
    }
}

fn hints(h: Option<BufferingHints>, default_mb: u32, max_mb: u32) -> (u64, Duration) {
    let h = h.unwrap_or_default();
    (
        u64::from(h.size_in_mbs.unwrap_or(default_mb).clamp(1, max_mb)) << 20,
        Duration::from_secs(u64::from(h.interval_in_seconds.unwrap_or(300).min(900))),
    )
}

/// The bounds that also cut a destination's batches: the `BufferingHints` of its nested S3
/// configurations that write objects per batch (the source-record backup when on; the
/// OpenSearch, Elasticsearch and HTTP endpoint `S3Configuration`, their backup and error output)
/// and the Lambda processor's `BufferIntervalInSeconds` when given. Firehose buffers each of
/// those by its own hints; hydrant writes them (and invokes the Lambda) per batch, so cutting
/// batches at the smallest bound keeps every bound: no backup object larger or later, no record
/// waiting longer for its Lambda, than configured.
fn batch_caps(d: &Destination, processing: Option<&Value>) -> Vec<(u64, Duration)> {
    let nested: Vec<Option<BufferingHints>> = match d {
        Destination::ExtendedS3(c) => match (&c.s3_backup_mode, &c.s3_backup_configuration) {
            (Some(m), Some(b)) if m == "Enabled" => vec![b
                .get("BufferingHints")
                .and_then(|h| serde_json::from_value(h.clone()).ok())],
            _ => vec![],
        },
        Destination::Redshift(c) => match (&c.s3_backup_mode, &c.s3_backup_configuration) {
            (Some(m), Some(b)) if m == "Enabled" => vec![b.buffering_hints],
            _ => vec![],
        },
        Destination::OpenSearch(c) | Destination::Elasticsearch(c) => {
            vec![c.s3_configuration.as_ref().and_then(|s| s.buffering_hints)]
        }
        Destination::HttpEndpoint(c) => {
            vec![c.s3_configuration.as_ref().and_then(|s| s.buffering_hints)]
        }
    };
    let mut caps: Vec<(u64, Duration)> = nested
        .into_iter()
        .flatten()
        .map(|h| hints(Some(h), 5, 128))
        .collect();
    if let Some(secs) = processing.and_then(lambda_interval) {
        caps.push((u64::MAX, Duration::from_secs(secs.min(900))));
    }
    caps
}

/// The Lambda processor's `BufferIntervalInSeconds`, when given (and a number: the processor's
/// own validation refuses anything else at create).
fn lambda_interval(processing: &Value) -> Option<u64> {
    if processing.get("Enabled").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    processing
        .get("Processors")?
        .as_array()?
        .iter()
        .filter(|p| p.get("Type").and_then(Value::as_str) == Some("Lambda"))
        .flat_map(|p| {
            p.get("Parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|x| {
            x.get("ParameterName").and_then(Value::as_str) == Some("BufferIntervalInSeconds")
        })?
        .get("ParameterValue")?
        .as_str()?
        .parse()
        .ok()
}

fn window(r: Option<RetryOptions>, default_secs: u32) -> Duration {
    Duration::from_secs(u64::from(
        r.and_then(|r| r.duration_in_seconds)
            .unwrap_or(default_secs)
            .min(7200),
    ))
}

/// The delivery stream's ARN, as Firehose names it (Lambda events and HTTP headers carry it).
#[must_use]
pub fn stream_arn(config: &Config, stream: &str) -> String {
    format!(
        "arn:aws:firehose:{}:{}:deliverystream/{stream}",
        config.region, config.account_id
    )
}

/// What differs between destination types in a spec.
struct Parts {
    sink: Arc<dyn Sink>,
    error_output: ObjectSink,
    /// Where the error output goes when `error_output` fails (S3 destinations with an endpoint).
    error_fallback: Option<ObjectSink>,
    backup: Option<Arc<dyn Sink>>,
    processing: Option<Value>,
    buffer_bytes: u64,
    buffer_interval: Duration,
    retry: RetryPolicy,
    /// A partitioned S3 destination's partition counters and Prefix.
    partitioning: Option<(
        Arc<hydrant_sinks::object::PartitionStats>,
        hydrant_sinks::S3Prefixes,
    )>,
}

impl Parts {
    /// The parts of a destination beside S3: its error output and backup go to its nested
    /// `S3Configuration` ([`nested_outputs`]), with no fallback and no partitions.
    fn beside_s3(
        sink: Arc<dyn Sink>,
        (error_output, backup): (ObjectSink, Option<Arc<dyn Sink>>),
        processing: Option<&Value>,
        (buffer_bytes, buffer_interval): (u64, Duration),
        retry: RetryPolicy,
    ) -> Parts {
        Parts {
            sink,
            error_output,
            error_fallback: None,
            backup,
            processing: processing.cloned(),
            buffer_bytes,
            buffer_interval,
            retry,
            partitioning: None,
        }
    }
}

/// The error output of a destination beside S3 (an object sink into its nested
/// `S3Configuration`, which it must have) and its backup copy into `backup`, when given.
fn nested_outputs(
    config: &Config,
    s3: Option<&ExtendedS3Config>,
    redshift: bool,
    backup: Option<&ExtendedS3Config>,
) -> Result<(ObjectSink, Option<Arc<dyn Sink>>), InvalidDestination> {
    let s3 = s3.ok_or(InvalidDestination::NoS3Configuration)?;
    let error_output = object_sink(config, s3, false, redshift)?;
    Ok((error_output, backup_sink(config, backup)?))
}

/// The sink, error output, backup, buffering and retries of `destination`.
fn parts(
    config: &Config,
    destination: &Destination,
    stream: &str,
    s3_retry: RetryPolicy,
    partitioned: bool,
) -> Result<Parts, InvalidDestination> {
    Ok(match destination {
        Destination::ExtendedS3(c) => {
            let mut primary = object_sink(config, c, false, false)?;
            // Record format conversion: the primary's objects become Parquet files.
            if let Some((converter, extension)) =
                super::conversion::converter(config, c, false).map_err(BuildError::from)?
            {
                primary = primary.with_conversion(converter, extension);
            }
            let partitioning = partitioned.then(|| {
                (
                    Arc::clone(primary.partition_stats()),
                    primary.config().prefixes.clone(),
                )
            });
            // Firehose's error output of an S3 destination is the same bucket, encrypted alike;
            // the local store takes what the bucket cannot (S3 down past the retry window).
            let error_output = object_sink(config, c, false, false)?;
            let error_fallback = match config.s3.endpoint {
                Some(_) => Some(object_sink(config, c, true, false)?),
                None => None,
            };
            let backup_config = match (c.s3_backup_mode.as_deref(), &c.s3_backup_configuration) {
                (Some("Enabled"), Some(b)) => Some(
                    serde_json::from_value::<ExtendedS3Config>(b.clone())
                        .map_err(InvalidDestination::BackupConfiguration)?,
                ),
                _ => None,
            };
            let backup = backup_sink(config, backup_config.as_ref())?;
            // With conversion the size hint defaults to 128 MB (Firehose's rule).
            let default_mb = if crate::api::conversion::enabled(c) {
                crate::api::conversion::SIZE_DEFAULT_MB
            } else {
                5
            };
            let (buffer_bytes, buffer_interval) = hints(c.buffering_hints, default_mb, 128);
            // A partitioned destination retries for its RetryOptions.DurationInSeconds.
            let retry = if partitioned {
                RetryPolicy {
                    window: Duration::from_secs(u64::from(
                        crate::api::partitioning::retry_seconds(c),
                    )),
                    ..s3_retry
                }
            } else {
                s3_retry
            };
            Parts {
                sink: Arc::new(primary),
                error_output,
                error_fallback,
                backup,
                processing: c.processing_configuration.clone(),
                buffer_bytes,
                buffer_interval,
                retry,
                partitioning,
            }
        }
        Destination::Redshift(c) => {
            let s3 = c
                .s3_configuration
                .as_ref()
                .ok_or(InvalidDestination::NoS3Configuration)?;
            let intermediate = object_sink(config, s3, false, true)?;
            let outputs = nested_outputs(
                config,
                Some(s3),
                true,
                c.s3_backup_configuration
                    .as_ref()
                    .filter(|_| c.s3_backup_mode.as_deref() == Some("Enabled")),
            )?;
            Parts::beside_s3(
                super::build_sinks::redshift(c, intermediate)?,
                outputs,
                c.processing_configuration.as_ref(),
                hints(s3.buffering_hints, 5, 128),
                // Firehose retries a failed COPY for the whole window, whatever the error (a
                // missing table or a failed load may be fixed by the operator meanwhile).
                RetryPolicy {
                    window: window(c.retry_options, 3600),
                    ..s3_retry
                },
            )
        }
        Destination::OpenSearch(c) | Destination::Elasticsearch(c) => {
            let legacy = matches!(destination, Destination::Elasticsearch(_));
            let s3 = c.s3_configuration.as_ref();
            let outputs = nested_outputs(
                config,
                s3,
                false,
                s3.filter(|_| c.s3_backup_mode.as_deref() == Some("AllDocuments")),
            )?;
            Parts::beside_s3(
                super::build_sinks::opensearch(config, c, legacy)?,
                outputs,
                c.processing_configuration.as_ref(),
                hints(c.buffering_hints, 5, 100),
                // Whole-request failures are retried for the window (credentials may be fixed);
                // documents the cluster refuses for good come back in `Delivered::failed`.
                RetryPolicy {
                    window: window(c.retry_options, 300),
                    ..s3_retry
                },
            )
        }
        Destination::HttpEndpoint(c) => {
            let s3 = c.s3_configuration.as_ref();
            let outputs = nested_outputs(
                config,
                s3,
                false,
                s3.filter(|_| c.s3_backup_mode.as_deref() == Some("AllData")),
            )?;
            let d = &config.delivery;
            Parts::beside_s3(
                super::build_sinks::http_endpoint(config, c, &stream_arn(config, stream))?,
                outputs,
                c.processing_configuration.as_ref(),
                hints(c.buffering_hints, 5, 64),
                // Firehose's HTTP endpoint policy: 1 s, doubling, ±15 %, at most 2 minutes
                // (`[delivery] http_backoff_*`).
                RetryPolicy {
                    window: window(c.retry_options, 300),
                    backoff_initial: Duration::from_millis(d.http_backoff_initial_ms.max(1)),
                    backoff_max: Duration::from_millis(
                        d.http_backoff_max_ms.max(d.http_backoff_initial_ms).max(1),
                    ),
                    jitter: 0.15,
                    permanent_is_final: true,
                },
            )
        }
    })
}

/// The delivery spec of a stream's destination.
///
/// # Errors
/// [`SpecError`] when the destination's settings are invalid or its store cannot be set up.
pub fn build_spec(
    config: &Config,
    rec: &StreamRecord,
    stats: Arc<DeliveryStats>,
    wal: &Arc<hydrant_wal::Wal>,
) -> Result<DeliverySpec, SpecError> {
    let stream = rec.name.clone();
    let invalid = |reason: InvalidDestination| SpecError::Invalid {
        stream: stream.clone(),
        reason: Box::new(reason),
    };
    let d = &config.delivery;
    let s3_retry = RetryPolicy {
        window: Duration::from_secs(d.retry_seconds),
        backoff_initial: Duration::from_millis(d.backoff_initial_ms.max(1)),
        backoff_max: Duration::from_millis(d.backoff_max_ms.max(d.backoff_initial_ms).max(1)),
        jitter: 0.2,
        permanent_is_final: false,
    };
    let partitioned = matches!(&rec.destination,
        Destination::ExtendedS3(c) if crate::api::partitioning::enabled(c));
    let parts = parts(config, &rec.destination, &stream, s3_retry, partitioned).map_err(invalid)?;
    let (transform, pipeline_stats) = match &parts.processing {
        Some(p) => {
            // From a Kinesis stream or a Kafka topic, the Lambda events carry the records'
            // source metadata.
            use super::build_sinks::{SourceEvents, SourceKind};
            let source = match (&rec.kinesis_source, &rec.msk_source) {
                (Some(k), _) => Some(SourceEvents {
                    kind: SourceKind::Kinesis,
                    arn: k.kinesis_stream_arn.clone(),
                    wal: Arc::clone(wal),
                }),
                (None, Some(m)) => Some(SourceEvents {
                    kind: SourceKind::Msk,
                    arn: m.cluster_arn.clone(),
                    wal: Arc::clone(wal),
                }),
                (None, None) => None,
            };
            match super::build_sinks::pipeline_of_source(
                config,
                p,
                &stream_arn(config, &stream),
                partitioned,
                source,
            )
            .map_err(|e| invalid(e.into()))?
            {
                Some((t, s)) => (Some(t), Some(s)),
                None => (None, None),
            }
        }
        None => (None, None),
    };
    let caps = batch_caps(&rec.destination, parts.processing.as_ref());
    let buffer_interval = caps
        .iter()
        .fold(parts.buffer_interval, |i, (_, c)| i.min(*c));
    stats.buffer_interval_ms.store(
        u64::try_from(buffer_interval.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    // Each partition buffers by the destination's own hints (a Lambda's smaller bounds cut the
    // rounds, not the partitions).
    let partition_stats = parts.partitioning.as_ref().map(|(s, _)| Arc::clone(s));
    let partitioning = match parts.partitioning {
        Some((partition_stats, prefixes)) => Some(PartitioningSpec {
            prefixes,
            rules: hydrant_sinks::partition::BufferRules {
                size_bytes: parts.buffer_bytes,
                interval_ms: u64::try_from(parts.buffer_interval.as_millis()).unwrap_or(u64::MAX),
                max_active: d.max_active_partitions,
                memory_bytes: PARTITION_MEMORY_BYTES.max(parts.buffer_bytes),
            },
            stats: partition_stats,
        }),
        None => None,
    };
    *stats
        .partitioning
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        partition_stats.map(|p| (p, pipeline_stats));
    Ok(DeliverySpec {
        stream: stream.clone(),
        incarnation: incarnation_id(rec.incarnation),
        destination_id: DESTINATION_ID.to_string(),
        stream_version: rec.version_id,
        buffer_bytes: caps.iter().fold(parts.buffer_bytes, |b, (c, _)| b.min(*c)),
        buffer_interval,
        retry: parts.retry,
        sink: parts.sink,
        error_output: Some(Arc::new(ObjectErrorOutput {
            sink: parts.error_output,
            fallback: parts.error_fallback,
        })),
        transform,
        backup: parts.backup,
        checkpoint_path: config.checkpoint_path(&rec.name, DESTINATION_ID),
        retain: Retain {
            time: Duration::from_secs(d.retain_delivered_seconds),
            bytes: d.retain_delivered_bytes,
        },
        stats,
        log_span: cloudwatch_span(&stream, &rec.destination),
        partitioning,
    })
}

/// `CloudWatchLoggingOptions{Enabled, LogGroupName, LogStreamName}` of a destination (and of its
/// nested S3 configurations), applied as Firehose applies them to its log: every event of the
/// destination's delivery, errors included, carries the names as fields (`log_group`,
/// `log_stream`; `s3_log_group`, `s3_log_stream` for `S3Configuration`; `backup_log_group`,
/// `backup_log_stream` for `S3BackupConfiguration`), so journald or a log shipper can route them
/// to that group and stream. Options with `Enabled` false or absent add nothing.
fn cloudwatch_span(stream: &str, d: &Destination) -> tracing::Span {
    let (own, s3, backup) = match d {
        Destination::ExtendedS3(c) => (
            c.cloud_watch_logging_options.clone(),
            None,
            c.s3_backup_configuration
                .as_ref()
                .and_then(|b| b.get("CloudWatchLoggingOptions").cloned()),
        ),
        Destination::Redshift(c) => (
            c.cloud_watch_logging_options.clone(),
            nested_logging(c.s3_configuration.as_ref()),
            nested_logging(c.s3_backup_configuration.as_ref()),
        ),
        Destination::OpenSearch(c) | Destination::Elasticsearch(c) => (
            c.cloud_watch_logging_options.clone(),
            nested_logging(c.s3_configuration.as_ref()),
            None,
        ),
        Destination::HttpEndpoint(c) => (
            c.cloud_watch_logging_options.clone(),
            nested_logging(c.s3_configuration.as_ref()),
            None,
        ),
    };
    let enabled = |o: &Option<Value>| -> Option<(String, String)> {
        let o = o.as_ref()?;
        if o.get("Enabled").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let name = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some((name("LogGroupName"), name("LogStreamName")))
    };
    let (own, s3, backup) = (enabled(&own), enabled(&s3), enabled(&backup));
    if own.is_none() && s3.is_none() && backup.is_none() {
        return tracing::Span::none();
    }
    let span = tracing::error_span!(
        "cloudwatch",
        stream,
        log_group = tracing::field::Empty,
        log_stream = tracing::field::Empty,
        s3_log_group = tracing::field::Empty,
        s3_log_stream = tracing::field::Empty,
        backup_log_group = tracing::field::Empty,
        backup_log_stream = tracing::field::Empty,
    );
    for (names, group, log_stream) in [
        (own, "log_group", "log_stream"),
        (s3, "s3_log_group", "s3_log_stream"),
        (backup, "backup_log_group", "backup_log_stream"),
    ] {
        if let Some((g, s)) = names {
            span.record(group, g.as_str());
            span.record(log_stream, s.as_str());
        }
    }
    span
}

fn nested_logging(c: Option<&ExtendedS3Config>) -> Option<Value> {
    c.and_then(|c| c.cloud_watch_logging_options.clone())
}
