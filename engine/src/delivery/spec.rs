//! From a stream's registry record and the daemon's configuration to a [`DeliverySpec`]: the
//! sink (S3 through the `[s3]` endpoint, or the local object store `DIR/objects/<bucket>/`), the
//! error output, buffering, retries and retention.

use std::sync::Arc;
use std::time::Duration;

use hydrant_sinks::{
    Batch, BoxFuture, FailedRecord, FailureDetail, LocalStore, ObjectSink, ObjectSinkConfig,
    S3Config, S3Credentials, S3Store, Sink, SinkError,
};

use super::worker::{DeliverySpec, DeliveryStats, ErrorOutput, Retain, RetryPolicy};
use crate::api::destination::{Destination, DESTINATION_ID};
use crate::config::Config;
use crate::registry::StreamRecord;

/// Why a destination cannot be delivered to.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The destination's settings are invalid (validated at Create/Update, so only a registry
    /// written by another version or edited by hand gets here).
    #[error("stream {stream}: invalid destination: {message}")]
    Invalid {
        /// The stream.
        stream: String,
        /// What is wrong.
        message: String,
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

/// The error output of an S3-kind destination: Firehose's failed-record JSON, error-output type
/// `s3-failed` (hydrant's own: Firehose drops S3 data after its 24 hours), under the evaluated
/// ErrorOutputPrefix, always in the local object store: when the destination is S3, S3 is what
/// failed.
#[derive(Debug)]
struct LocalErrorOutput {
    sink: ObjectSink,
}

impl ErrorOutput for LocalErrorOutput {
    fn put_failed<'a>(
        &'a self,
        batch: &'a Batch,
        error: &'a SinkError,
        attempts: u32,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let now = hydrant_wal::now_ms();
            let code = error.error_code().into_owned();
            let message = error.to_string();
            let records: Vec<FailedRecord> = batch
                .records
                .iter()
                .map(|r| FailedRecord {
                    attempts_made: attempts,
                    arrival_timestamp_ms: r.arrival_ms,
                    error_code: code.clone(),
                    error_message: message.clone(),
                    attempt_ending_timestamp_ms: now,
                    raw_data: r.data.clone(),
                    detail: FailureDetail::S3Delivery,
                })
                .collect();
            let written = self
                .sink
                .put_error_output(
                    &batch.identity,
                    batch.stream_version,
                    batch.oldest_arrival_ms,
                    &records,
                )
                .await?;
            for d in &written {
                tracing::warn!(batch = %batch.identity, location = %d.location,
                    records = d.records, "batch written to the error output");
            }
            Ok(())
        })
    }
}

/// The delivery spec of a stream's destination.
///
/// # Errors
/// [`SpecError`] when the destination's settings are invalid or its store cannot be set up.
pub fn build_spec(
    config: &Config,
    rec: &StreamRecord,
    stats: Arc<DeliveryStats>,
) -> Result<DeliverySpec, SpecError> {
    let stream = rec.name.clone();
    let invalid = |message: String| SpecError::Invalid {
        stream: stream.clone(),
        message,
    };
    let store_err = |source: SinkError| SpecError::Store {
        stream: stream.clone(),
        source,
    };
    let Destination::ExtendedS3(c) = &rec.destination;
    let arn = c
        .bucket_arn
        .as_deref()
        .ok_or_else(|| invalid("no BucketARN".to_string()))?;
    let bucket = hydrant_sinks::keys::bucket_from_arn(arn).map_err(|e| invalid(e.to_string()))?;
    let object_config = ObjectSinkConfig::from_firehose(
        c.prefix.as_deref(),
        c.error_output_prefix.as_deref(),
        c.compression_format.as_deref(),
        c.file_extension.as_deref(),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let local = Arc::new(LocalStore::for_bucket(&config.data_dir, bucket).map_err(store_err)?);
    let sink: Arc<dyn Sink> = match &config.s3.endpoint {
        Some(_) => {
            let store = S3Store::new(&s3_config(config), bucket).map_err(store_err)?;
            Arc::new(ObjectSink::new(Arc::new(store), object_config.clone()))
        }
        None => Arc::new(ObjectSink::new(local.clone(), object_config.clone())),
    };
    let error_output = Arc::new(LocalErrorOutput {
        sink: ObjectSink::new(local, object_config),
    });
    let hints = c.buffering_hints.unwrap_or_default();
    let d = &config.delivery;
    Ok(DeliverySpec {
        stream: stream.clone(),
        incarnation: incarnation_id(rec.incarnation),
        destination_id: DESTINATION_ID.to_string(),
        stream_version: rec.version_id,
        buffer_bytes: u64::from(hints.size_in_mbs.unwrap_or(5).clamp(1, 128)) << 20,
        buffer_interval: Duration::from_secs(u64::from(
            hints.interval_in_seconds.unwrap_or(300).min(900),
        )),
        retry: RetryPolicy {
            window: Duration::from_secs(d.retry_seconds),
            backoff_initial: Duration::from_millis(d.backoff_initial_ms.max(1)),
            backoff_max: Duration::from_millis(d.backoff_max_ms.max(d.backoff_initial_ms).max(1)),
        },
        sink,
        error_output: Some(error_output),
        checkpoint_path: config.checkpoint_path(&rec.name, DESTINATION_ID),
        retain: Retain {
            time: Duration::from_secs(d.retain_delivered_seconds),
            bytes: d.retain_delivered_bytes,
        },
        stats,
    })
}
