//! [`ObjectSink`]: the S3 / ExtendedS3 destination, on any [`ObjectStore`].
//!
//! A batch becomes one object: its records concatenated as they came (Firehose adds no
//! delimiter), compressed with the destination's codec, stored under
//! `<evaluated Prefix><stream>-<version>-<time>-<object id><extension>` (see [`crate::keys`]).
//! Failed records become error-output objects under the evaluated ErrorOutputPrefix, one per error
//! type, holding Firehose's failed-record JSON ([`crate::failed`]).
//!
//! Both object kinds have keys that are pure functions of the batch, so a retry after a crash
//! overwrites what the first attempt wrote.
//!
//! With dynamic partitioning ([`ObjectSinkConfig::partitioned`]) a batch becomes one object per
//! partition instead, each under its partition's evaluated Prefix; records without a partition
//! come back as [`Delivered::failed`] for the error output. See [`crate::partition`] for the
//! flow and the exactly-once argument.

pub mod keys;
pub mod local;
pub mod s3;
pub mod store;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;

use crate::calendar::Zone;
use crate::compress::{Compression, Encoder, ZipEntry};
use crate::convert::Converter;
use crate::failed::FailureDetail;
use crate::failed::{encode_failed_records, FailedRecord};
use crate::keys::{resolve_extension, ErrorOutputType, KeyError, S3Prefixes};
use crate::partition::{KeysProduced, Limits};
use crate::store::{Body, ObjectStore, PutObject};
use crate::{Batch, BatchIdentity, BoxFuture, Delivered, Sink, SinkError};

/// The naming and encoding settings of an S3-style destination, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSinkConfig {
    /// Prefix and ErrorOutputPrefix.
    pub prefixes: S3Prefixes,
    /// The codec.
    pub compression: Compression,
    /// The extension every object gets (the codec's, unless `FileExtension` overrides it).
    pub extension: String,
    /// Dynamic partitioning's limits, when the destination partitions (then `prefixes` is
    /// partitioned too).
    pub partitioning: Option<Limits>,
}

impl ObjectSinkConfig {
    /// Validates the Firehose fields of an S3 / ExtendedS3 destination (`Prefix`,
    /// `ErrorOutputPrefix`, `CompressionFormat`, `FileExtension`; `None` = not given).
    ///
    /// # Errors
    /// [`SinkError::Key`] or [`SinkError::Codec`] with the rule broken; the engine answers
    /// `InvalidArgumentException` with its message.
    pub fn from_firehose(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        compression_format: Option<&str>,
        file_extension: Option<&str>,
    ) -> Result<ObjectSinkConfig, SinkError> {
        let prefixes = S3Prefixes::new(prefix, error_output_prefix)?;
        Self::encoded(prefixes, compression_format, file_extension, None)
    }

    /// The settings from checked prefixes plus Firehose's CompressionFormat and FileExtension
    /// (shared by the unpartitioned and the partitioned constructors).
    fn encoded(
        prefixes: S3Prefixes,
        compression_format: Option<&str>,
        file_extension: Option<&str>,
        partitioning: Option<Limits>,
    ) -> Result<ObjectSinkConfig, SinkError> {
        let compression = match compression_format {
            Some(name) => Compression::from_firehose(name)?,
            None => Compression::Uncompressed,
        };
        let extension = resolve_extension(file_extension, compression)?;
        Ok(ObjectSinkConfig {
            prefixes,
            compression,
            extension,
            partitioning,
        })
    }

    /// As [`ObjectSinkConfig::from_firehose`] for a destination with dynamic partitioning:
    /// Prefix and ErrorOutputPrefix checked by [`S3Prefixes::partitioned`] against the keys the
    /// processors produce.
    ///
    /// # Errors
    /// [`SinkError::Key`] or [`SinkError::Codec`] with the rule broken.
    pub fn partitioned(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        compression_format: Option<&str>,
        file_extension: Option<&str>,
        produced: &KeysProduced,
        limits: Limits,
    ) -> Result<ObjectSinkConfig, SinkError> {
        let prefixes = S3Prefixes::partitioned(prefix, error_output_prefix, produced)?;
        Self::encoded(prefixes, compression_format, file_extension, Some(limits))
    }

    /// Checks that every key of these settings is writable ([`S3Prefixes::check_writable`]).
    ///
    /// # Errors
    /// [`KeyError::Unwritable`] naming Prefix or ErrorOutputPrefix.
    pub fn check_writable(&self) -> Result<(), SinkError> {
        Ok(self.prefixes.check_writable(&self.extension)?)
    }

    /// The same settings with timestamps evaluated in the `CustomTimeZone` named (`None` or
    /// empty: UTC).
    ///
    /// # Errors
    /// [`SinkError::Key`] ([`crate::KeyError::UnknownTimeZone`]) for a name that is no zone of
    /// the bundled IANA database.
    pub fn with_time_zone(mut self, custom_time_zone: Option<&str>) -> Result<Self, SinkError> {
        let zone = Zone::from_firehose(custom_time_zone).map_err(KeyError::from)?;
        self.prefixes = self.prefixes.with_time_zone(zone);
        Ok(self)
    }

    /// The same settings with another codec's default extension (no `FileExtension`).
    pub fn with_compression(prefixes: S3Prefixes, compression: Compression) -> ObjectSinkConfig {
        let extension = compression.default_extension().to_string();
        ObjectSinkConfig {
            prefixes,
            compression,
            extension,
            partitioning: None,
        }
    }
}

/// What dynamic partitioning did, for the engine's metrics.
#[derive(Debug, Default)]
pub struct PartitionStats {
    /// Partitions active now (buffering, object not yet delivered): `hydrant_partition_count`.
    pub partition_count: AtomicU64,
    /// Records sent to the error output as `activePartitionExceeded`:
    /// `hydrant_partition_count_exceeded_total`.
    pub exceeded_records: AtomicU64,
}

/// An S3-style destination: keys, codec and a store.
#[derive(Clone, Debug)]
pub struct ObjectSink {
    store: Arc<dyn ObjectStore>,
    config: ObjectSinkConfig,
    stats: Arc<PartitionStats>,
    /// Record format conversion: each object a Parquet file of the records that convert.
    converter: Option<Arc<Converter>>,
}

impl ObjectSink {
    /// A sink writing to `store` with `config`.
    pub fn new(store: Arc<dyn ObjectStore>, config: ObjectSinkConfig) -> ObjectSink {
        ObjectSink {
            store,
            config,
            stats: Arc::new(PartitionStats::default()),
            converter: None,
        }
    }

    /// The same sink converting every object's records with `converter` (see
    /// [`crate::convert`]): records that do not convert come back as [`Delivered::failed`].
    /// Its objects end in `extension` (`.parquet`, unless FileExtension says otherwise).
    pub fn with_conversion(mut self, converter: Converter, extension: String) -> ObjectSink {
        self.converter = Some(Arc::new(converter));
        self.config.extension = extension;
        self
    }

    /// The partitioning counters (all zero for an unpartitioned destination).
    pub fn partition_stats(&self) -> &Arc<PartitionStats> {
        &self.stats
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &ObjectSinkConfig {
        &self.config
    }

    /// The key of `batch`'s data object.
    pub fn data_key(&self, batch: &Batch) -> String {
        self.config.prefixes.data_key(
            &batch.identity,
            batch.stream_version,
            batch.oldest_arrival_ms,
            &self.config.extension,
        )
    }

    /// The key of the error-output object of `error_type` for a batch
    /// ([`S3Prefixes::error_key`]: under the evaluated ErrorOutputPrefix, or Firehose's fixed
    /// error prefix when that key cannot be written).
    pub fn error_key(
        &self,
        identity: &BatchIdentity,
        error_type: ErrorOutputType,
        stream_version: u64,
        oldest_arrival_ms: u64,
    ) -> String {
        self.config.prefixes.error_key(
            identity,
            error_type,
            stream_version,
            oldest_arrival_ms,
            &self.config.extension,
        )
    }

    /// Compresses `chunks` into one object body, off the async workers. Uncompressed, the
    /// chunks are the body: no copy here, the store writes them in turn.
    async fn encode(
        &self,
        chunks: Vec<Bytes>,
        zip_name: String,
        modified_ms: u64,
    ) -> Result<Body, SinkError> {
        let compression = self.config.compression;
        if compression == Compression::Uncompressed {
            return Ok(Body::from_parts(chunks));
        }
        let encode = move || -> Result<Body, SinkError> {
            let entry = ZipEntry {
                name: &zip_name,
                modified_ms,
            };
            let mut encoder = Encoder::new(compression, &entry)?;
            for chunk in &chunks {
                encoder.write(chunk)?;
            }
            Ok(Body::from(encoder.finish()?))
        };
        tokio::task::spawn_blocking(encode)
            .await
            .map_err(|e| SinkError::Task(e.to_string()))?
    }

    async fn put(&self, key: &str, body: Body) -> Result<u64, SinkError> {
        let wire_bytes = body.len() as u64;
        let object = PutObject {
            body,
            content_encoding: self.config.compression.content_encoding(),
        };
        self.store.put_object(key, object).await?;
        Ok(wire_bytes)
    }

    /// Writes failed records to the error output: one object per error type, each holding one
    /// JSON document per record, compressed with the destination's codec, under the evaluated
    /// ErrorOutputPrefix. Idempotent per (batch, error type) like data objects.
    ///
    /// `identity`, `stream_version` and `oldest_arrival_ms` are those of the batch the records
    /// came from. No records, no objects.
    ///
    /// # Errors
    /// The first [`SinkError`]; objects of other error types may have been written already (a
    /// retry rewrites them under the same keys).
    pub async fn put_error_output(
        &self,
        identity: &BatchIdentity,
        stream_version: u64,
        oldest_arrival_ms: u64,
        records: &[FailedRecord],
    ) -> Result<Vec<Delivered>, SinkError> {
        let mut by_type: BTreeMap<&'static str, (ErrorOutputType, Vec<FailedRecord>)> =
            BTreeMap::new();
        for record in records {
            let error_type = record.error_output_type();
            by_type
                .entry(error_type.as_str())
                .or_insert_with(|| (error_type, Vec::new()))
                .1
                .push(record.clone());
        }
        let mut delivered = Vec::new();
        for (error_type, group) in by_type.into_values() {
            let key = self.error_key(identity, error_type, stream_version, oldest_arrival_ms);
            let json = Bytes::from(encode_failed_records(&group));
            let zip_name = identity.error_object_id(error_type);
            let body = self.encode(vec![json], zip_name, oldest_arrival_ms).await?;
            let wire_bytes = self.put(&key, body).await?;
            delivered.push(Delivered {
                location: self.store.location(&key),
                target: key,
                records: group.len() as u64,
                data_bytes: group.iter().map(|r| r.raw_data.len() as u64).sum(),
                wire_bytes,
                failed: Vec::new(),
            });
        }
        Ok(delivered)
    }
}

impl ObjectSink {
    /// Writes one object per partition of `batch`, every partition flushed at the batch's end
    /// ([`crate::partition::buffer::split_batch`]): at most `limits.max_active` partitions; the
    /// records of others, and records whose Prefix does not evaluate, come back as failed. The
    /// delivery worker buffers partitions across batches and gives this one partition's batch at
    /// a time; `hydrant replay` gives whole batches. A crash point,
    /// `delivery::between_partitions`, sits between two objects of a batch.
    async fn deliver_partitioned(
        &self,
        batch: &Batch,
        limits: Limits,
    ) -> Result<Delivered, SinkError> {
        let prefixes = &self.config.prefixes;
        let split = crate::partition::buffer::split_batch(batch, prefixes, limits.max_active, None);
        let mut delivered = Delivered {
            target: String::new(),
            location: String::new(),
            records: 0,
            data_bytes: 0,
            wire_bytes: 0,
            failed: split.failed,
        };
        for (n, part) in split.objects.iter().enumerate() {
            if n > 0 {
                crate::crash::crash_point("delivery::between_partitions");
            }
            let keys = part.partition_keys.first().map(|k| &**k);
            let prefix =
                keys.map(|k| prefixes.partition_prefix(&part.identity, part.oldest_arrival_ms, k));
            let prefix = match prefix {
                Some(Ok(prefix)) => prefix,
                // Named after the first record's arrival, an object's Prefix could still fail
                // when named after its oldest (a clock that went back): its records fail.
                other => {
                    let e = other.and_then(Result::err);
                    let ending_ms = crate::now_ms();
                    delivered.failed.extend(part.records.iter().map(|r| {
                        FailedRecord {
                            attempts_made: 1,
                            arrival_timestamp_ms: r.arrival_ms,
                            error_code: e
                                .as_ref()
                                .map_or("DynamicPartitioning.InvalidPrefix", |e| e.error_code())
                                .to_owned(),
                            error_message: e.as_ref().map(ToString::to_string).unwrap_or_default(),
                            attempt_ending_timestamp_ms: ending_ms,
                            raw_data: r.data.clone(),
                            detail: FailureDetail::Partitioning,
                        }
                    }));
                    continue;
                }
            };
            let key = S3Prefixes::partition_data_key(
                &prefix,
                &part.identity,
                part.stream_version,
                part.oldest_arrival_ms,
                &self.config.extension,
            );
            if let Some(converter) = &self.converter {
                let converted = convert(converter, part.records.clone()).await?;
                delivered.data_bytes += converted.data_bytes;
                delivered.records += converted.records;
                delivered.failed.extend(converted.failed);
                match converted.body {
                    Some(body) => delivered.wire_bytes += self.put(&key, Body::from(body)).await?,
                    None => continue,
                }
            } else {
                let chunks = match part.contiguous_data() {
                    Some(whole) => vec![whole],
                    None => part.records.iter().map(|r| r.data.clone()).collect(),
                };
                delivered.data_bytes += part.data_bytes();
                delivered.records += part.records.len() as u64;
                let body = self
                    .encode(chunks, part.identity.object_id(), part.oldest_arrival_ms)
                    .await?;
                delivered.wire_bytes += self.put(&key, body).await?;
            }
            if delivered.target.is_empty() {
                delivered.location = self.store.location(&key);
                delivered.target = key;
            }
        }
        Ok(delivered)
    }
}

/// Converts `records` off the async workers ([`Converter::convert`]).
async fn convert(
    converter: &Arc<Converter>,
    records: Vec<crate::Record>,
) -> Result<crate::convert::Converted, SinkError> {
    let converter = Arc::clone(converter);
    tokio::task::spawn_blocking(move || converter.convert(&records))
        .await
        .map_err(|e| SinkError::Task(e.to_string()))?
}

impl Sink for ObjectSink {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    fn target(&self, batch: &Batch) -> Result<String, SinkError> {
        Ok(self.data_key(batch))
    }

    /// Writes the batch as one object. A batch without records writes nothing (Firehose writes no
    /// empty objects) and reports zero bytes.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Delivered, SinkError>> {
        Box::pin(async move {
            if let Some(limits) = self.config.partitioning {
                return self.deliver_partitioned(batch, limits).await;
            }
            let key = self.data_key(batch);
            let data_bytes = batch.data_bytes();
            let records = batch.records.len() as u64;
            let location = self.store.location(&key);
            if batch.records.is_empty() {
                return Ok(Delivered {
                    target: key,
                    location,
                    records,
                    data_bytes,
                    wire_bytes: 0,
                    failed: Vec::new(),
                });
            }
            if let Some(converter) = &self.converter {
                let converted = convert(converter, batch.records.clone()).await?;
                let wire_bytes = match converted.body {
                    Some(body) => self.put(&key, Body::from(body)).await?,
                    None => 0,
                };
                return Ok(Delivered {
                    target: key,
                    location,
                    records: converted.records,
                    data_bytes: converted.data_bytes,
                    wire_bytes,
                    failed: converted.failed,
                });
            }
            let chunks = match batch.contiguous_data() {
                Some(whole) => vec![whole],
                None => batch.records.iter().map(|r| r.data.clone()).collect(),
            };
            let zip_name = batch.identity.object_id();
            let body = self
                .encode(chunks, zip_name, batch.oldest_arrival_ms)
                .await?;
            let wire_bytes = self.put(&key, body).await?;
            Ok(Delivered {
                target: key,
                location,
                records,
                data_bytes,
                wire_bytes,
                failed: Vec::new(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyError;
    use crate::local::LocalStore;
    use crate::partition::PartitionKeys;
    use crate::Record;

    const ARRIVAL: u64 = 1_535_365_807_123; // 2018-08-27T10:30:07.123Z

    fn batch(first_lsn: u64, records: &[&'static [u8]]) -> Batch {
        Batch {
            identity: BatchIdentity {
                stream: "default".into(),
                incarnation: "inc-1".into(),
                destination_id: "destinationId-000000000001".into(),
                first_lsn,
                last_lsn: first_lsn + records.len() as u64 - 1,
            },
            stream_version: 1,
            contiguous: None,
            partition_keys: Vec::new(),
            oldest_arrival_ms: ARRIVAL,
            records: records
                .iter()
                .zip(first_lsn..)
                .map(|(data, lsn)| Record {
                    lsn,
                    sub: 0,
                    arrival_ms: ARRIVAL,
                    data: Bytes::from_static(data),
                })
                .collect(),
        }
    }

    fn local_sink(dir: &std::path::Path, compression: &str) -> ObjectSink {
        let store = LocalStore::for_bucket(&dir.join("objects"), "bucket")
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ObjectSinkConfig::from_firehose(None, None, Some(compression), None)
            .unwrap_or_else(|e| panic!("{e}"));
        ObjectSink::new(Arc::new(store), config)
    }

    #[tokio::test]
    async fn a_batch_becomes_one_object_and_a_resend_overwrites_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink: Arc<dyn Sink> = Arc::new(local_sink(dir.path(), "GZIP"));
        let b = batch(1, &[b"{\"a\":1}", b"{\"b\":2}\n", b"raw"]);
        let target = sink.target(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            target.starts_with("2018/08/27/10/default-1-2018-08-27-10-30-07-"),
            "{target}"
        );
        assert!(target.ends_with(".gz"));
        let first = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.target, target);
        assert_eq!((first.records, first.data_bytes), (3, 18));
        let second = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, second);
        let path = dir.path().join("objects/bucket").join(&target);
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(stored.len() as u64, first.wire_bytes);
        let plain = Compression::Gzip
            .decompress(&stored)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain, b"{\"a\":1}{\"b\":2}\nraw");
        let next = batch(4, &[b"x"]);
        let next_target = sink
            .deliver(&next)
            .await
            .map(|d| d.target)
            .unwrap_or_default();
        assert_ne!(next_target, target);
    }

    #[tokio::test]
    async fn every_codec_reads_back_with_its_extension() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for codec in Compression::ALL {
            let sink = local_sink(dir.path(), codec.firehose_name());
            let b = batch(10, &[b"one", b"two"]);
            let delivered = sink
                .deliver(&b)
                .await
                .unwrap_or_else(|e| panic!("{codec}: {e}"));
            assert!(delivered.target.ends_with(&format!(
                "{}{}",
                b.identity.object_id(),
                codec.default_extension()
            )));
            let stored = sink
                .store()
                .get_object(&delivered.target)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                codec.decompress(&stored).ok().as_deref(),
                Some(&b"onetwo"[..]),
                "{codec}"
            );
        }
    }

    #[tokio::test]
    async fn empty_batches_write_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink = local_sink(dir.path(), "UNCOMPRESSED");
        let mut b = batch(1, &[b"x"]);
        b.records.clear();
        let delivered = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(delivered.wire_bytes, 0);
        assert!(sink
            .store()
            .list_keys("")
            .await
            .unwrap_or_default()
            .is_empty());
    }

    #[test]
    fn unwritable_prefixes_are_found() {
        let bad = |prefix: Option<&str>, error: Option<&str>| {
            ObjectSinkConfig::from_firehose(prefix, error, None, None)
                .and_then(|c| c.check_writable())
                .is_err()
        };
        let long = format!("{}/", "a".repeat(256));
        for p in [
            "../x/",
            "/abs/",
            "a\0b/",
            "x/.hydrant-tmp.y/",
            "a/./b/",
            long.as_str(),
        ] {
            assert!(bad(Some(p), None), "{p:?}");
        }
        assert!(bad(
            Some("p/!{timestamp:yyyy}/"),
            Some("../!{firehose:error-output-type}/")
        ));
        // With an expression no timestamp is appended: the last segment of the Prefix carries
        // the object name, and 255 bytes with it is the limit.
        let error = Some("e/!{firehose:error-output-type}/");
        let tail = |n: usize| format!("p/{}-!{{timestamp:yyyy}}-", "a".repeat(n));
        assert!(bad(Some(&tail(150)), error));
        assert!(!bad(Some(&tail(20)), error));
        for p in ["ok/", "a/b-", "x..y/", ".hidden/"] {
            assert!(!bad(Some(p), None), "{p:?}");
        }
    }

    #[tokio::test]
    async fn unwritable_error_prefix_falls_back_to_the_fixed_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalStore::for_bucket(&dir.path().join("objects"), "bucket")
            .unwrap_or_else(|e| panic!("{e}"));
        // As a stream created before such prefixes were refused would have it.
        let config = ObjectSinkConfig::from_firehose(
            Some("p/!{timestamp:yyyy}/"),
            Some("../!{firehose:error-output-type}/"),
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sink = ObjectSink::new(Arc::new(store), config);
        let record = FailedRecord {
            attempts_made: 1,
            arrival_timestamp_ms: ARRIVAL,
            error_code: "S3.InvalidPrefix".into(),
            error_message: "unwritable".into(),
            attempt_ending_timestamp_ms: ARRIVAL + 5,
            raw_data: Bytes::from_static(b"x"),
            detail: FailureDetail::S3Delivery,
        };
        let identity = batch(1, &[b"x"]).identity;
        let delivered = sink
            .put_error_output(&identity, 2, ARRIVAL, &[record])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(delivered.len(), 1);
        assert!(
            delivered[0]
                .target
                .starts_with("s3-failed/2018/08/27/10/default-2-2018-08-27-10-30-07-"),
            "{}",
            delivered[0].target
        );
        assert!(!sink
            .store()
            .get_object(&delivered[0].target)
            .await
            .unwrap_or_default()
            .is_empty());
    }

    #[tokio::test]
    async fn error_output_one_object_per_type() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalStore::for_bucket(&dir.path().join("objects"), "bucket")
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ObjectSinkConfig::from_firehose(
            Some("data/!{timestamp:yyyy}/"),
            Some("errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"),
            None,
            Some(".json"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sink = ObjectSink::new(Arc::new(store), config);
        let failed = |detail: FailureDetail, data: &'static [u8]| FailedRecord {
            attempts_made: 1,
            arrival_timestamp_ms: ARRIVAL,
            error_code: "Lambda.FunctionError".into(),
            error_message: "boom".into(),
            attempt_ending_timestamp_ms: ARRIVAL + 5,
            raw_data: Bytes::from_static(data),
            detail,
        };
        let processing = FailureDetail::Processing {
            lambda_arn: "arn:aws:lambda:::f".into(),
        };
        let records = vec![
            failed(processing.clone(), b"a"),
            failed(FailureDetail::Decompression, b"b"),
            failed(processing, b"c"),
        ];
        let identity = batch(1, &[b"a", b"b", b"c"]).identity;
        let delivered = sink
            .put_error_output(&identity, 2, ARRIVAL, &records)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = delivered.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(keys.len(), 2);
        assert!(
            keys[0].starts_with("errors/decompression-failed/2018/08/27/default-2-"),
            "{keys:?}"
        );
        assert!(
            keys[1].starts_with("errors/processing-failed/2018/08/27/default-2-"),
            "{keys:?}"
        );
        assert!(keys.iter().all(|k| k.ends_with(".json")));
        assert_eq!(delivered[1].records, 2);
        let body = sink.store().get_object(keys[1]).await.unwrap_or_default();
        let lines: Vec<serde_json::Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap_or_default())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["rawData"], "YQ==");
        assert_eq!(lines[1]["rawData"], "Yw==");
        // A retry writes the same keys.
        let again = sink
            .put_error_output(&identity, 2, ARRIVAL, &records)
            .await
            .unwrap_or_default();
        assert_eq!(again, delivered);
        assert_eq!(
            sink.store()
                .list_keys("errors/")
                .await
                .unwrap_or_default()
                .len(),
            2
        );
    }

    fn partitioned_sink(dir: &std::path::Path, max_active: usize) -> ObjectSink {
        let store = LocalStore::for_bucket(&dir.join("objects"), "bucket")
            .unwrap_or_else(|e| panic!("{e}"));
        let config = ObjectSinkConfig::partitioned(
            Some("c=!{partitionKeyFromQuery:c}/"),
            Some("e/!{firehose:error-output-type}/"),
            None,
            None,
            &KeysProduced {
                query: vec!["c".into()],
                lambda: false,
            },
            Limits { max_active },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ObjectSink::new(Arc::new(store), config)
    }

    fn with_keys(mut b: Batch, values: &[&str]) -> Batch {
        b.partition_keys = values
            .iter()
            .map(|v| {
                Arc::new(PartitionKeys {
                    query: if v.is_empty() {
                        Vec::new()
                    } else {
                        vec![("c".into(), (*v).into())]
                    },
                    lambda: Vec::new(),
                })
            })
            .collect();
        b
    }

    #[tokio::test]
    async fn a_partitioned_batch_writes_one_object_per_partition_and_a_resend_overwrites() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink = partitioned_sink(dir.path(), 500);
        let b = with_keys(
            batch(1, &[b"a1\n", b"b1\n", b"a2\n", b"x\n", b"b2\n"]),
            &["a", "b", "a", "", "b"],
        );
        let first = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((first.records, first.failed.len()), (4, 1));
        assert_eq!(first.failed[0].detail, FailureDetail::Partitioning);
        assert_eq!(first.failed[0].raw_data, Bytes::from_static(b"x\n"));
        let mut keys = sink.store().list_keys("").await.unwrap_or_default();
        keys.sort();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys[0].starts_with("c=a/default-1-2018-08-27-10-30-07-"),
            "{keys:?}"
        );
        assert!(keys[1].starts_with("c=b/default-1-"), "{keys:?}");
        let a = sink.store().get_object(&keys[0]).await.unwrap_or_default();
        let bb = sink.store().get_object(&keys[1]).await.unwrap_or_default();
        assert_eq!(&a[..], b"a1\na2\n");
        assert_eq!(&bb[..], b"b1\nb2\n");
        // The same batch again: the same keys, the same bytes, nothing added.
        let second = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.records, first.records);
        let mut again = sink.store().list_keys("").await.unwrap_or_default();
        again.sort();
        assert_eq!(again, keys);
    }

    #[tokio::test]
    async fn partitions_over_the_limit_go_to_the_error_output() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink = partitioned_sink(dir.path(), 2);
        let b = with_keys(
            batch(1, &[b"1", b"2", b"3", b"4", b"5"]),
            &["a", "b", "c", "a", "c"],
        );
        let d = sink.deliver(&b).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.records, 3);
        let exceeded: Vec<&[u8]> = d
            .failed
            .iter()
            .inspect(|f| assert_eq!(f.detail, FailureDetail::ActivePartitionExceeded))
            .map(|f| &f.raw_data[..])
            .collect();
        assert_eq!(exceeded, vec![&b"3"[..], &b"5"[..]]);
        assert_eq!(
            sink.store().list_keys("").await.unwrap_or_default().len(),
            2
        );
        // Filed under the activePartitionExceeded error type.
        let filed = sink
            .put_error_output(&b.identity, 1, ARRIVAL, &d.failed)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            filed[0].target.starts_with("e/activePartitionExceeded/"),
            "{}",
            filed[0].target
        );
    }

    #[test]
    fn firehose_settings_are_validated() {
        assert!(matches!(
            ObjectSinkConfig::from_firehose(None, None, Some("SNAPPY"), None),
            Err(SinkError::Codec(_))
        ));
        assert!(matches!(
            ObjectSinkConfig::from_firehose(None, None, None, Some("gz")),
            Err(SinkError::Key(KeyError::InvalidFileExtension(_)))
        ));
        assert!(matches!(
            ObjectSinkConfig::from_firehose(Some("!{timestamp:yyyy}"), None, None, None),
            Err(SinkError::Key(KeyError::ErrorOutputPrefixRequired))
        ));
        let config = ObjectSinkConfig::from_firehose(None, None, Some("HADOOP_SNAPPY"), Some(""))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.extension, ".snappy");
    }
}
