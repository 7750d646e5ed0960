//! Firehose's `ProcessingConfiguration`: record de-aggregation, Lambda-contract transforms and
//! `AppendDelimiterToRecord`, run on a batch before its destination sees it.
//!
//! # Processors
//!
//! | `Type` | parameters | what it does |
//! | --- | --- | --- |
//! | `RecordDeAggregation` | `SubRecordType` `JSON`, `DELIMITED` (+ `Delimiter`, base64), `KPL` | one record in, its sub-records out |
//! | `Lambda` | `LambdaArn`, `NumberOfRetries` (0..=300, 3), `BufferSizeInMBs` (0.2..=3, 1), `BufferIntervalInSeconds` (0..=900, 60), `RoleArn` (ignored) | Firehose's data-transformation contract |
//! | `AppendDelimiterToRecord` | `Delimiter` (base64, optional) | appends `\n` (or the delimiter) to every record |
//! | `MetadataExtraction` | `MetadataExtractionQuery` (jq object construction), `JsonParsingEngine` (`JQ-1.6`) | partition keys by jq ([`crate::partition::query`]) |
//!
//! `Decompression` and `CloudWatchLogProcessing` are refused at create time
//! ([`TransformConfigError::UnsupportedProcessorType`]). `KPL` is hydrant's extension: Firehose
//! itself de-aggregates KPL records only for Kinesis stream sources.
//!
//! # Order
//!
//! Whatever order the list gives, processors run as Firehose documents: de-aggregation first,
//! then the Lambda transform ("Deaggregation → Data Transformation via Lambda → Partitioning
//! Keys"), then `MetadataExtraction` (on the records the Lambda returned), then the delimiter,
//! which frames the records the destination receives.
//!
//! # Partition keys
//!
//! With dynamic partitioning on ([`Pipeline::with_partitioning`]) the processed batch carries
//! each record's [`PartitionKeys`] in [`Batch::partition_keys`]: the Lambda reply's
//! `metadata.partitionKeys` and the query's keys. A record whose keys cannot be had (a Lambda key
//! that is not a scalar, not JSON, the query failing or giving a null or non-scalar key) is a
//! `partitioning-failed` record ([`FailureDetail::Partitioning`], `rawData` the bytes the query
//! saw). The time spent in jq is counted in [`PipelineStats`].
//!
//! # Buffering
//!
//! The Lambda processor sends the batch in invocations of at most `BufferSizeInMBs` of record
//! data each (and under Lambda's 6 MB payload cap). `BufferIntervalInSeconds` is served by the
//! delivery buffer: the engine cuts batches by time anyway, and a batch is transformed as soon as
//! it is cut ([`Pipeline::lambda_buffer_interval`] gives the value for the engine to honour).
//!
//! # Records and identity
//!
//! The batch keeps its [`BatchIdentity`](crate::BatchIdentity); its records become the
//! transformed ones. A de-aggregated record's sub-records carry its LSN and `sub` 0, 1, ...; a
//! record the Lambda returns `Ok` keeps the `(lsn, sub)` of the record it came from. Record ids
//! and invocation ids are pure functions of the batch, so processing a batch again after a
//! crash sends the same invocations.
//!
//! # Failures
//!
//! Records that cannot be processed come back in [`Processed::failed`] as Firehose's
//! `processing-failed` records ([`FailureDetail::Processing`] with the function's ARN), their
//! `rawData` the bytes that went into the failing step. Codes are Firehose's:
//!
//! - the call fails (network, timeout, throttling, a 5xx, a function error): retried
//!   `NumberOfRetries` times with a short backoff (100 ms doubling, at most 2 s), then every
//!   record of that invocation is processing-failed with the last code: `Lambda.FunctionError`
//!   (the function raised), `Lambda.FunctionTimedOut`, `Lambda.InvokeLimitExceeded` (429),
//!   `Lambda.ConnectionFailed` (hydrant's: the endpoint could not be reached), or
//!   `Lambda.<ErrorType>` / `Lambda.Http<status>` for other service errors. Errors a retry cannot
//!   fix (`Lambda.ResourceNotFound`, `Lambda.InvokeAccessDenied`, other 4xx) are not retried.
//! - the reply breaks the contract: `Lambda.JsonProcessingException` (not JSON, a bad `result`,
//!   `Ok` without `data`, bad base64), `Lambda.DuplicatedRecordId`, `Lambda.MissingRecordId`:
//!   every record of the invocation is processing-failed at once, without retries (error
//!   objects captured from the service show `attemptsMade: 1` for these).
//! - a record the function returns as `ProcessingFailed`: `Lambda.ProcessingFailedStatus`,
//!   message `ProcessingFailed status set for record`, `attemptsMade` the invocation's attempt.
//!
//! De-aggregation failures use hydrant's codes: `DeAggregation.InvalidJson`,
//! `DeAggregation.TooManySubRecords` (over 500 sub-records, Firehose's cap),
//! `DeAggregation.KplChecksumMismatch`, `DeAggregation.KplDecodeFailed`. Their `lambdaARN` is the
//! pipeline's function, or empty without one.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use serde_json::Value;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::partition::{KeysProduced, MetadataQuery, PartitionKeys, SharedKeys};
use crate::{now_ms, Batch, FailedRecord, FailureDetail, Record, SinkError};

mod config;
mod deaggregate;
mod lambda;
mod source;

pub use config::TransformConfigError;
use config::{Spec, SubRecordType};
pub use deaggregate::{kpl_user_records, KplError, KplUserRecord, KPL_MAGIC};
pub use source::{
    KinesisRecordMetadata, KinesisSourceRecords, MskRecordMetadata, MskSourceRecords, SourceRecords,
};

/// The longest a Lambda invocation may take (Firehose's limit: 5 minutes).
pub const LAMBDA_TIMEOUT_MAX: Duration = Duration::from_secs(300);

/// How hydrant reaches Lambda functions.
#[derive(Clone)]
pub struct LambdaSettings {
    /// The Lambda Invoke API base URL (`https://lambda.us-east-1.amazonaws.com`, a local
    /// emulator): functions are called at `<endpoint>/2015-03-31/functions/<LambdaArn>/invocations`.
    /// `None`: only functions mapped in [`LambdaSettings::function_urls`] can be used.
    pub invoke_endpoint: Option<String>,
    /// The region: the event's `region` and the SigV4 signing region.
    pub region: String,
    /// `(access_key_id, secret_access_key, session_token)` to sign Invoke API calls with
    /// (SigV4, service `lambda`); `None` sends them unsigned.
    pub credentials: Option<(String, String, Option<String>)>,
    /// Functions served at plain URLs: `LambdaArn` → URL that takes the event as a POST body and
    /// answers with the reply. A mapped ARN is never called through the Invoke API.
    pub function_urls: BTreeMap<String, String>,
    /// The timeout of one invocation (capped at [`LAMBDA_TIMEOUT_MAX`]; zero means the cap).
    pub timeout: Duration,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        LambdaSettings {
            invoke_endpoint: None,
            region: "us-east-1".to_owned(),
            credentials: None,
            function_urls: BTreeMap::new(),
            timeout: LAMBDA_TIMEOUT_MAX,
        }
    }
}

impl fmt::Debug for LambdaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaSettings")
            .field("invoke_endpoint", &self.invoke_endpoint)
            .field("region", &self.region)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(key, _, _)| format!("{key}/<redacted>")),
            )
            .field("function_urls", &self.function_urls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A batch after processing.
#[derive(Clone, Debug)]
pub struct Processed {
    /// The batch, same identity, its records the transformed ones (possibly none).
    pub batch: Batch,
    /// The records that could not be processed, for the error output (`processing-failed`).
    pub failed: Vec<FailedRecord>,
}

/// One record's `metadata.partitionKeys` from the Lambda reply: `(name, value)` pairs, or the
/// name of a key whose value is not a scalar.
type LambdaKeys = Result<Vec<(String, String)>, String>;

/// Counters of a pipeline, for the engine's metrics.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Nanoseconds spent running the `MetadataExtractionQuery` (`hydrant_jq_processing_seconds`).
    pub jq_nanos: AtomicU64,
    /// Records the query ran on.
    pub jq_records: AtomicU64,
    /// Nanoseconds the last batch's query run took.
    pub jq_last_nanos: AtomicU64,
}

/// The processors of one destination, ready to run on batches.
#[derive(Clone, Debug)]
pub struct Pipeline {
    deaggregation: Option<SubRecordType>,
    lambda: Option<lambda::Invoker>,
    lambda_buffer_interval: Option<Duration>,
    append_delimiter: Option<Bytes>,
    extraction: Option<MetadataQuery>,
    partitioning: bool,
    stats: Arc<PipelineStats>,
}

impl Pipeline {
    /// Checks a `ProcessingConfiguration` at create (or update) time: processor types,
    /// parameter names and value ranges. Does not check that the Lambda function is reachable
    /// ([`Pipeline::from_firehose`] does).
    ///
    /// # Errors
    /// [`TransformConfigError`], its message fit for an `InvalidArgumentException`.
    pub fn validate(processing_configuration: &Value) -> Result<(), TransformConfigError> {
        config::parse(processing_configuration).map(|_| ())
    }

    /// The partition keys the processors of a `ProcessingConfiguration` produce (for the
    /// create-time check of a partitioned Prefix): the query's key names, and whether a Lambda
    /// processor runs. Nothing when `Enabled` is not true.
    ///
    /// # Errors
    /// [`TransformConfigError`] when the configuration is invalid.
    pub fn keys_produced(
        processing_configuration: &Value,
    ) -> Result<KeysProduced, TransformConfigError> {
        let spec = config::parse(processing_configuration)?;
        if !spec.enabled {
            return Ok(KeysProduced::default());
        }
        Ok(KeysProduced {
            query: spec
                .metadata_extraction
                .map(|q| q.keys().to_vec())
                .unwrap_or_default(),
            lambda: spec.lambda.is_some(),
        })
    }

    /// The same pipeline, attaching partition keys to the batches it processes when `on`
    /// (the destination's `DynamicPartitioningConfiguration` is enabled).
    #[must_use]
    pub fn with_partitioning(mut self, on: bool) -> Pipeline {
        self.partitioning = on;
        self
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> &Arc<PipelineStats> {
        &self.stats
    }

    /// Builds the pipeline of a `ProcessingConfiguration`: `None` when `Enabled` is false or
    /// absent, or no processor is listed.
    ///
    /// # Errors
    /// [`TransformConfigError`] when the configuration is invalid, or
    /// [`TransformConfigError::UnreachableLambda`] when the Lambda function has neither a URL in
    /// `settings.function_urls` nor an Invoke API endpoint to go through.
    pub fn from_firehose(
        processing_configuration: &Value,
        settings: &LambdaSettings,
    ) -> Result<Option<Pipeline>, TransformConfigError> {
        let spec: Spec = config::parse(processing_configuration)?;
        if !spec.is_active() {
            return Ok(None);
        }
        let lambda = match &spec.lambda {
            None => None,
            Some(l) => Some(invoker(l, settings)?),
        };
        Ok(Some(Pipeline {
            deaggregation: spec.deaggregation,
            lambda_buffer_interval: spec.lambda.as_ref().map(|l| l.buffer_interval),
            lambda,
            append_delimiter: spec.append_delimiter.map(Bytes::from),
            extraction: spec.metadata_extraction,
            partitioning: false,
            stats: Arc::new(PipelineStats::default()),
        }))
    }

    /// The Lambda processor's ARN, if there is one.
    pub fn lambda_arn(&self) -> Option<&str> {
        self.lambda.as_ref().map(|l| l.arn.as_str())
    }

    /// The Lambda processor's `BufferIntervalInSeconds` (default 60 s), if there is one: the
    /// engine may cap its delivery buffer interval with it.
    pub fn lambda_buffer_interval(&self) -> Option<Duration> {
        self.lambda_buffer_interval
    }

    /// The Lambda processor's `BufferSizeInMBs` in bytes (default 1 MB = 2^20 bytes), if there
    /// is one: the most record data one invocation carries.
    pub fn lambda_buffer_bytes(&self) -> Option<u64> {
        self.lambda.as_ref().map(|l| l.buffer_bytes)
    }

    /// Runs the processors on `batch` (see the module documentation for order, identity and
    /// failures). `delivery_stream_arn` goes into the Lambda event.
    ///
    /// # Errors
    /// Never for a function's failures (those are [`Processed::failed`] records); reserved for
    /// hydrant's own failures.
    // Not an `async fn`: the signature promises the engine a `Send` future, which an `async fn`
    // cannot state (and a change that broke it would then only fail in the engine).
    #[allow(clippy::manual_async_fn)]
    pub fn process<'a>(
        &'a self,
        batch: Batch,
        delivery_stream_arn: &'a str,
    ) -> impl Future<Output = Result<Processed, SinkError>> + Send + 'a {
        self.process_with_source(batch, delivery_stream_arn, None)
    }

    /// [`Pipeline::process`] for a batch read from a Kinesis data stream or a Kafka topic: the
    /// Lambda event carries the source's ARN and each record's metadata from `source`.
    ///
    /// # Errors
    /// As [`Pipeline::process`].
    #[allow(clippy::manual_async_fn)]
    pub fn process_with_source<'a>(
        &'a self,
        batch: Batch,
        delivery_stream_arn: &'a str,
        source: Option<&'a SourceRecords>,
    ) -> impl Future<Output = Result<Processed, SinkError>> + Send + 'a {
        async move {
            let mut batch = batch;
            // The records change below: the loader's buffer no longer holds them.
            batch.contiguous = None;
            let mut failed = Vec::new();
            if let Some(kind) = &self.deaggregation {
                batch.records =
                    self.deaggregate(kind, std::mem::take(&mut batch.records), &mut failed);
            }
            let mut lambda_keys = None;
            if let Some(invoker) = &self.lambda {
                let records = std::mem::take(&mut batch.records);
                let (records, keys) = self
                    .transform(
                        invoker,
                        &batch,
                        delivery_stream_arn,
                        source,
                        records,
                        &mut failed,
                    )
                    .await;
                batch.records = records;
                lambda_keys = Some(keys);
            }
            if self.partitioning {
                self.partition_keys(&mut batch, lambda_keys, &mut failed);
            }
            if let Some(delimiter) = &self.append_delimiter {
                for record in &mut batch.records {
                    let mut data = BytesMut::with_capacity(record.data.len() + delimiter.len());
                    data.extend_from_slice(&record.data);
                    data.extend_from_slice(delimiter);
                    record.data = data.freeze();
                }
            }
            Ok(Processed { batch, failed })
        }
    }

    /// Sets [`Batch::partition_keys`]: each record's Lambda keys and query keys; records
    /// without keys leave the batch as `partitioning-failed`. Synchronous: jaq's values stay on
    /// this thread.
    fn partition_keys(
        &self,
        batch: &mut Batch,
        lambda_keys: Option<Vec<LambdaKeys>>,
        failed: &mut Vec<FailedRecord>,
    ) {
        let records = std::mem::take(&mut batch.records);
        let query_keys = self.extraction.as_ref().map(|query| {
            let started = Instant::now();
            let out = query.extract_batch(records.iter().map(|r| &r.data[..]));
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stats.jq_nanos.fetch_add(nanos, Ordering::Relaxed);
            self.stats.jq_last_nanos.store(nanos, Ordering::Relaxed);
            self.stats
                .jq_records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            out
        });
        debug_assert!(query_keys.as_ref().is_none_or(|k| k.len() == records.len()));
        debug_assert!(lambda_keys
            .as_ref()
            .is_none_or(|k| k.len() == records.len()));
        let mut lambda_keys = lambda_keys.map(Vec::into_iter);
        let mut query_keys = query_keys.map(Vec::into_iter);
        // Records of one partition share one key set.
        let mut shared: HashMap<PartitionKeys, SharedKeys> = HashMap::new();
        let mut kept = Vec::with_capacity(records.len());
        let mut keys_of = Vec::with_capacity(records.len());
        let ending_ms = now_ms();
        for record in records {
            let lambda = lambda_keys.as_mut().and_then(Iterator::next);
            let query = query_keys.as_mut().and_then(Iterator::next);
            let keys = match (
                lambda.unwrap_or(Ok(Vec::new())),
                query.unwrap_or(Ok(Vec::new())),
            ) {
                (Ok(lambda), Ok(query)) => Ok(PartitionKeys { query, lambda }),
                (Err(name), _) => Err((
                    "DynamicPartitioning.InvalidPartitionKey",
                    format!("Lambda partition key {name:?} is not a string, number or boolean"),
                )),
                (_, Err(e)) => Err((e.error_code(), e.to_string())),
            };
            match keys {
                Ok(keys) => {
                    let keys = match shared.get(&keys) {
                        Some(k) => Arc::clone(k),
                        None => {
                            let k = Arc::new(keys.clone());
                            shared.insert(keys, Arc::clone(&k));
                            k
                        }
                    };
                    kept.push(record);
                    keys_of.push(keys);
                }
                Err((code, message)) => failed.push(FailedRecord {
                    attempts_made: 1,
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code: code.to_owned(),
                    error_message: message,
                    attempt_ending_timestamp_ms: ending_ms,
                    raw_data: record.data,
                    detail: FailureDetail::Partitioning,
                }),
            }
        }
        debug_assert_eq!(kept.len(), keys_of.len());
        batch.records = kept;
        batch.partition_keys = keys_of;
    }

    fn failure_detail(&self) -> FailureDetail {
        FailureDetail::Processing {
            lambda_arn: self.lambda_arn().unwrap_or_default().to_owned(),
        }
    }

    /// De-aggregates every record; sub-records of one LSN are numbered 0, 1, ... across all the
    /// records that carry it.
    fn deaggregate(
        &self,
        kind: &SubRecordType,
        records: Vec<Record>,
        failed: &mut Vec<FailedRecord>,
    ) -> Vec<Record> {
        let mut out = Vec::with_capacity(records.len());
        let mut current_lsn = None;
        let mut next_sub: u32 = 0;
        for record in records {
            if current_lsn != Some(record.lsn) {
                current_lsn = Some(record.lsn);
                next_sub = 0;
            }
            match deaggregate::split(kind, &record.data) {
                Ok(pieces) => {
                    for data in pieces {
                        out.push(Record {
                            lsn: record.lsn,
                            sub: next_sub,
                            arrival_ms: record.arrival_ms,
                            data,
                        });
                        next_sub = next_sub.saturating_add(1);
                    }
                }
                Err(e) => failed.push(FailedRecord {
                    attempts_made: 1,
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code: e.code.to_owned(),
                    error_message: e.message,
                    attempt_ending_timestamp_ms: now_ms(),
                    raw_data: record.data,
                    detail: self.failure_detail(),
                }),
            }
        }
        out
    }

    /// Sends `records` through the function, a few invocations at a time.
    async fn transform(
        &self,
        invoker: &lambda::Invoker,
        batch: &Batch,
        delivery_stream_arn: &str,
        source: Option<&SourceRecords>,
        records: Vec<Record>,
        failed: &mut Vec<FailedRecord>,
    ) -> (Vec<Record>, Vec<LambdaKeys>) {
        let ranges = lambda::chunks(&records, invoker.buffer_bytes);
        let identity = &batch.identity;
        let records_ref = &records;
        let outcomes: Vec<Vec<lambda::Outcome>> =
            futures_util::stream::iter(ranges.iter().cloned().enumerate().map(|(chunk, range)| {
                invoker.invoke_chunk(
                    identity,
                    delivery_stream_arn,
                    chunk,
                    &records_ref[range],
                    source,
                )
            }))
            .buffered(lambda::CONCURRENT_INVOCATIONS_MAX)
            .collect()
            .await;
        // Every chunk answers with one outcome per record it was given, failed chunks included.
        debug_assert_eq!(
            outcomes.iter().map(Vec::len).sum::<usize>(),
            records.len(),
            "one outcome per record"
        );
        let mut out = Vec::with_capacity(records.len());
        let mut keys = Vec::with_capacity(records.len());
        let ending_ms = now_ms();
        for (record, outcome) in records.into_iter().zip(outcomes.into_iter().flatten()) {
            match outcome {
                lambda::Outcome::Ok(data, partition_keys) => {
                    out.push(Record { data, ..record });
                    keys.push(partition_keys);
                }
                lambda::Outcome::Dropped => {}
                lambda::Outcome::Failed {
                    code,
                    message,
                    attempts,
                } => failed.push(FailedRecord {
                    attempts_made: attempts,
                    arrival_timestamp_ms: record.arrival_ms,
                    error_code: code.into_owned(),
                    error_message: message,
                    attempt_ending_timestamp_ms: ending_ms,
                    raw_data: record.data,
                    detail: FailureDetail::Processing {
                        lambda_arn: invoker.arn.clone(),
                    },
                }),
            }
        }
        (out, keys)
    }
}

/// The invoker of a Lambda processor under `settings`.
fn invoker(
    spec: &config::LambdaSpec,
    settings: &LambdaSettings,
) -> Result<lambda::Invoker, TransformConfigError> {
    let target = if let Some(url) = settings.function_urls.get(&spec.arn) {
        lambda::Target::Url(url.clone())
    } else if let Some(endpoint) = &settings.invoke_endpoint {
        lambda::Target::InvokeApi {
            url: lambda::invoke_url(endpoint, &spec.arn),
            credentials: settings.credentials.as_ref().map(|(key, secret, token)| {
                aws_credential_types::Credentials::new(
                    key,
                    secret,
                    token.clone(),
                    None,
                    "hydrant-lambda-settings",
                )
            }),
        }
    } else {
        return Err(TransformConfigError::UnreachableLambda {
            lambda_arn: spec.arn.clone(),
        });
    };
    let timeout = if settings.timeout.is_zero() {
        LAMBDA_TIMEOUT_MAX
    } else {
        settings.timeout.min(LAMBDA_TIMEOUT_MAX)
    };
    let client = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| TransformConfigError::HttpClient {
            message: e.to_string(),
        })?;
    Ok(lambda::Invoker {
        arn: spec.arn.clone(),
        target,
        retries: spec.retries,
        buffer_bytes: spec.buffer_bytes,
        region: settings.region.clone(),
        timeout,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchIdentity;
    use serde_json::json;

    #[tokio::test]
    async fn metadata_extraction_attaches_keys_before_the_delimiter() {
        let config = json!({"Enabled": true, "Processors": [
            {"Type": "AppendDelimiterToRecord"},
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c, y: .t | strftime(\"%Y\")}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]});
        let pipeline = Pipeline::from_firehose(&config, &LambdaSettings::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no pipeline"))
            .with_partitioning(true);
        let data: [&'static [u8]; 4] = [
            br#"{"c":"a","t":1565382027}"#,
            b"oops",
            br#"{"c":"b","t":0}"#,
            br#"{"c":"a","t":1565382027}"#,
        ];
        let batch = Batch {
            identity: BatchIdentity {
                stream: "s".into(),
                incarnation: "i".into(),
                destination_id: "d".into(),
                first_lsn: 1,
                last_lsn: 4,
            },
            stream_version: 1,
            oldest_arrival_ms: 0,
            records: data
                .iter()
                .zip(1u64..)
                .map(|(d, lsn)| Record {
                    lsn,
                    sub: 0,
                    arrival_ms: 0,
                    data: Bytes::from_static(d),
                })
                .collect(),
            contiguous: None,
            partition_keys: Vec::new(),
        };
        let out = pipeline
            .process(batch, "arn")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.batch.records.len(), 3);
        assert_eq!(out.batch.partition_keys.len(), 3);
        // The delimiter comes after extraction.
        assert!(out.batch.records.iter().all(|r| r.data.ends_with(b"\n")));
        let keys: Vec<Vec<(String, String)>> = out
            .batch
            .partition_keys
            .iter()
            .map(|k| k.query.clone())
            .collect();
        assert_eq!(
            keys[0],
            vec![("c".into(), "a".into()), ("y".into(), "2019".into())]
        );
        assert_eq!(
            keys[1],
            vec![("c".into(), "b".into()), ("y".into(), "1970".into())]
        );
        // Records of one partition share their keys.
        assert!(Arc::ptr_eq(
            &out.batch.partition_keys[0],
            &out.batch.partition_keys[2]
        ));
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].detail, FailureDetail::Partitioning);
        assert_eq!(
            out.failed[0].error_code,
            "DynamicPartitioning.NonJsonRecord"
        );
        assert_eq!(out.failed[0].raw_data, Bytes::from_static(b"oops"));
        assert_eq!(pipeline.stats().jq_records.load(Ordering::Relaxed), 4);
    }
}
