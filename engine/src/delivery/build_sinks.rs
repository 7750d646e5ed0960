//! The non-S3 sinks and transforms of the sinks crate, built from the API's configuration shapes
//! and the daemon's configuration: the Redshift (PostgreSQL), OpenSearch/Elasticsearch and HTTP
//! endpoint sinks, the ProcessingConfiguration pipeline, and [`check_destination`], which builds
//! them all without connecting anywhere to check a destination at create and update. Every
//! failure is a [`BuildError`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use hydrant_sinks::opensearch as oss;
use hydrant_sinks::postgres as pg;
use hydrant_sinks::{
    http, transform, Batch, BoxFuture, Compression, FailedRecord, ObjectSink, Sink, SinkError,
};
use serde_json::Value;

use super::worker::Transform;
use crate::api::destination::Destination;
use crate::api::non_s3::{HttpEndpointConfig, OpenSearchConfig, RedshiftConfig};
use crate::config::Config;

/// Why a destination's sinks (its object sinks among them) or transform cannot be built from
/// its configuration. Each is an `InvalidArgumentException` at CreateDeliveryStream and
/// UpdateDestination ([`check_destination`]) and a [`super::SpecError::Invalid`] when a worker
/// starts; the message names the member.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A member the destination needs is unset.
    #[error("{member} is required")]
    Missing {
        /// The member (`ClusterJDBCURL`, `CommonAttributes[2].AttributeName`, ...).
        member: Cow<'static, str>,
    },
    /// A DomainARN without an entry in the daemon's `[opensearch.domains]` table.
    #[error(
        "DomainARN {arn} is not mapped to a cluster URL (the daemon's [opensearch.domains] \
         table); give ClusterEndpoint instead"
    )]
    UnmappedDomain {
        /// The DomainARN.
        arn: String,
    },
    /// `RequestConfiguration.ContentEncoding` is neither NONE nor GZIP.
    #[error("RequestConfiguration.ContentEncoding {value:?}: NONE or GZIP")]
    ContentEncoding {
        /// The value given.
        value: String,
    },
    /// A Redshift setting breaks a rule (JDBC URL, COPY command, its compression).
    #[error(transparent)]
    Redshift(#[from] pg::PgConfigError),
    /// An unknown `CompressionFormat`.
    #[error(transparent)]
    Compression(#[from] hydrant_sinks::CodecError),
    /// The Redshift intermediate objects' prefixes break Firehose's rule 6.
    #[error("S3Configuration.{0}")]
    IntermediatePrefix(hydrant_sinks::KeyError),
    /// An OpenSearch / Elasticsearch setting breaks a rule.
    #[error(transparent)]
    OpenSearch(#[from] oss::OpenSearchConfigError),
    /// An HTTP endpoint setting breaks a rule.
    #[error(transparent)]
    HttpEndpoint(#[from] http::HttpConfigError),
    /// The ProcessingConfiguration breaks a rule, or names a Lambda function that cannot be
    /// reached.
    #[error(transparent)]
    Processing(#[from] transform::TransformConfigError),
    /// An S3 configuration without `BucketARN`.
    #[error("no BucketARN")]
    NoBucketArn,
    /// `BucketARN`, `Prefix` or `ErrorOutputPrefix` breaks Firehose's rules.
    #[error(transparent)]
    Key(#[from] hydrant_sinks::KeyError),
    /// `KMSEncryptionConfig` without an S3 endpoint: the local object store cannot apply it.
    #[error(
        "{member}EncryptionConfiguration.KMSEncryptionConfig is not supported by hydrant \
         without an S3 endpoint: objects go to the local object store, which cannot apply \
         KMS encryption (configure [s3] endpoint, or use NoEncryptionConfig)"
    )]
    KmsNeedsS3 {
        /// Where the configuration sits (`""`, `S3BackupConfiguration.`, ...).
        member: String,
    },
    /// The sink itself refused the configuration or could not build its client.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// `DataFormatConversionConfiguration` cannot be applied: its settings break a rule, or its
    /// table's schema cannot be read (the message names which).
    #[error(transparent)]
    Conversion(#[from] super::conversion::ConversionConfigError),
}

/// `value`, or [`BuildError::Missing`] naming `member`.
fn required<T>(value: Option<T>, member: &'static str) -> Result<T, BuildError> {
    value.ok_or_else(|| BuildError::missing(member))
}

impl BuildError {
    fn missing(member: impl Into<Cow<'static, str>>) -> BuildError {
        BuildError::Missing {
            member: member.into(),
        }
    }
}

/// The sinks crate's PostgreSQL / Redshift configuration of a destination (without its
/// intermediate store): the JDBC URL, the credentials, the COPY command and its options checked
/// against the intermediate objects' compression.
fn redshift_config(c: &RedshiftConfig) -> Result<pg::PostgresSinkConfig, BuildError> {
    let url = required(c.cluster_jdbc_url.as_deref(), "ClusterJDBCURL")?;
    let url = pg::JdbcUrl::parse(url)?;
    let copy = required(c.copy_command.as_ref(), "CopyCommand")?;
    let table = required(copy.data_table_name.as_deref(), "CopyCommand.DataTableName")?;
    let command = pg::CopyCommand::from_firehose(
        table,
        copy.data_table_columns.as_deref(),
        copy.copy_options.as_deref(),
    )?;
    let compression = match c
        .s3_configuration
        .as_ref()
        .and_then(|s| s.compression_format.as_deref())
    {
        Some(f) => Compression::from_firehose(f)?,
        None => Compression::Uncompressed,
    };
    command.check_compression(compression)?;
    Ok(pg::PostgresSinkConfig::new(
        url,
        c.username.clone().unwrap_or_default(),
        c.password.clone().unwrap_or_default(),
        command,
    ))
}

pub(super) fn redshift(
    c: &RedshiftConfig,
    intermediate: ObjectSink,
) -> Result<Arc<dyn Sink>, BuildError> {
    let mut config = redshift_config(c)?;
    config.intermediate = Some(Arc::new(intermediate));
    Ok(Arc::new(pg::PostgresSink::new(config)?))
}

/// The sinks crate's OpenSearch configuration of a destination: the endpoint (ClusterEndpoint,
/// or DomainARN through `[opensearch.domains]`), the index and its rotation, document ids, and
/// the cluster credentials of `[opensearch]`.
fn opensearch_config(
    config: &Config,
    c: &OpenSearchConfig,
    legacy: bool,
) -> Result<oss::OpenSearchConfig, BuildError> {
    let endpoint = match (&c.cluster_endpoint, &c.domain_arn) {
        (Some(e), _) => e.clone(),
        (None, Some(arn)) => config
            .opensearch
            .domains
            .get(arn)
            .cloned()
            .ok_or_else(|| BuildError::UnmappedDomain { arn: arn.clone() })?,
        (None, None) => return Err(BuildError::missing("DomainARN or ClusterEndpoint")),
    };
    let index = required(c.index_name.clone(), "IndexName")?;
    let mut o = oss::OpenSearchConfig::new(endpoint, index);
    let s = &config.opensearch;
    o.allow_insecure_http = s.allow_plain_http;
    o.type_name = c.type_name.clone().filter(|t| !t.is_empty());
    o.rotation = oss::IndexRotation::parse(c.index_rotation_period.as_deref().unwrap_or("OneDay"))?;
    o.flavor = if legacy {
        oss::Flavor::Elasticsearch
    } else {
        oss::Flavor::OpenSearch
    };
    if let Some(f) = c
        .document_id_options
        .as_ref()
        .and_then(|d| d.default_document_id_format.as_deref())
    {
        o.document_ids = oss::DocumentIdFormat::parse(f)?;
    }
    o.auth = if s.sigv4 {
        oss::ClusterAuth::SigV4 {
            region: s.region.clone().unwrap_or_else(|| config.region.clone()),
            access_key_id: s.access_key_id.clone().unwrap_or_default(),
            secret_access_key: s.secret_access_key.clone().unwrap_or_default(),
            session_token: None,
        }
    } else if let (Some(username), Some(password)) = (&s.username, &s.password) {
        oss::ClusterAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        }
    } else {
        oss::ClusterAuth::None
    };
    o.validate()?;
    Ok(o)
}

pub(super) fn opensearch(
    config: &Config,
    c: &OpenSearchConfig,
    legacy: bool,
) -> Result<Arc<dyn Sink>, BuildError> {
    let o = opensearch_config(config, c, legacy)?;
    Ok(Arc::new(oss::OpenSearchSink::new(o)?))
}

/// The sinks crate's HTTP endpoint configuration of a destination.
fn http_config(
    config: &Config,
    c: &HttpEndpointConfig,
    arn: &str,
) -> Result<http::HttpEndpointConfig, BuildError> {
    let e = required(c.endpoint_configuration.as_ref(), "EndpointConfiguration")?;
    let url = required(e.url.clone(), "EndpointConfiguration.Url")?;
    let mut h = http::HttpEndpointConfig::new(url, arn);
    h.name = e.name.clone();
    h.access_key = e.access_key.clone();
    h.allow_plain_http = config.http_endpoint.allow_plain_http;
    if let Some(r) = &c.request_configuration {
        if let Some(enc) = r.content_encoding.as_deref() {
            h.content_encoding = http::ContentEncoding::from_api(enc).ok_or_else(|| {
                BuildError::ContentEncoding {
                    value: enc.to_string(),
                }
            })?;
        }
        for (i, a) in r.common_attributes.iter().flatten().enumerate() {
            let name = a.attribute_name.clone().ok_or_else(|| {
                BuildError::missing(format!("CommonAttributes[{i}].AttributeName"))
            })?;
            h.common_attributes
                .push((name, a.attribute_value.clone().unwrap_or_default()));
        }
    }
    h.validate()?;
    Ok(h)
}

pub(super) fn http_endpoint(
    config: &Config,
    c: &HttpEndpointConfig,
    arn: &str,
) -> Result<Arc<dyn Sink>, BuildError> {
    let h = http_config(config, c, arn)?;
    Ok(Arc::new(http::HttpEndpointSink::new(h)?))
}

/// A ProcessingConfiguration pipeline as the worker's [`Transform`].
#[derive(Debug)]
struct PipelineTransform {
    pipeline: transform::Pipeline,
    stream_arn: String,
    source: Option<SourceEvents>,
}

/// Which outside source a stream reads, for its Lambda events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SourceKind {
    /// `KinesisStreamAsSource` ([`crate::source::kinesis::event`]).
    Kinesis,
    /// `MSKAsSource` ([`crate::source::kafka::event`]).
    Msk,
}

/// What a transform of a stream read from a Kinesis data stream or a Kafka topic needs to tell
/// its Lambda function where the records came from: the source's ARN, and the stream's log,
/// whose frames' annexes hold each record's source metadata.
#[derive(Debug, Clone)]
pub(super) struct SourceEvents {
    /// Which source.
    pub(super) kind: SourceKind,
    /// `sourceKinesisStreamArn` or `sourceMSKArn`.
    pub(super) arn: String,
    /// The delivery stream's WAL.
    pub(super) wal: Arc<hydrant_wal::Wal>,
}

impl Transform for PipelineTransform {
    fn process<'a>(
        &'a self,
        batch: Batch,
    ) -> BoxFuture<'a, Result<(Batch, Vec<FailedRecord>), SinkError>> {
        Box::pin(async move {
            let (first, last) = (batch.identity.first_lsn, batch.identity.last_lsn);
            let source = match &self.source {
                Some(s) if self.pipeline.lambda_arn().is_some() => Some(match s.kind {
                    SourceKind::Kinesis => transform::SourceRecords::Kinesis(
                        crate::source::kinesis::event::batch_metadata(&s.wal, first, last, &s.arn)
                            .map_err(|e| SinkError::Task(e.to_string()))?,
                    ),
                    SourceKind::Msk => transform::SourceRecords::Msk(
                        crate::source::kafka::event::batch_metadata(&s.wal, first, last, &s.arn)
                            .map_err(|e| SinkError::Task(e.to_string()))?,
                    ),
                }),
                _ => None,
            };
            let out = self
                .pipeline
                .process_with_source(batch, &self.stream_arn, source.as_ref())
                .await?;
            Ok((out.batch, out.failed))
        })
    }
}

/// The daemon's `[lambda]` section as the sinks crate's settings.
fn lambda_settings(config: &Config) -> transform::LambdaSettings {
    let l = &config.lambda;
    transform::LambdaSettings {
        invoke_endpoint: l.endpoint.clone(),
        region: l.region.clone().unwrap_or_else(|| config.region.clone()),
        credentials: match (&l.access_key_id, &l.secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), None)),
            _ => None,
        },
        function_urls: l.functions.clone(),
        timeout: Duration::from_secs(l.timeout_secs.unwrap_or(300)),
    }
}

/// The transform of a ProcessingConfiguration (`None` when disabled or empty). Lambda buffering:
/// `BufferSizeInMBs` cuts a batch into invocations; `BufferIntervalInSeconds` needs nothing of
/// its own, as the transformed records wait for the destination's buffering anyway.
pub(super) fn transform(
    config: &Config,
    p: &Value,
    arn: &str,
) -> Result<Option<Arc<dyn Transform>>, BuildError> {
    Ok(pipeline(config, p, arn, false)?.map(|(t, _)| t))
}

/// A transform and its pipeline's counters.
pub(super) type PipelineParts = (Arc<dyn Transform>, Arc<transform::PipelineStats>);

/// As [`transform`], attaching partition keys to the batches when `partitioning` (the
/// destination's DynamicPartitioningConfiguration is enabled); with the pipeline's counters.
pub(super) fn pipeline(
    config: &Config,
    p: &Value,
    arn: &str,
    partitioning: bool,
) -> Result<Option<PipelineParts>, BuildError> {
    pipeline_of_source(config, p, arn, partitioning, None)
}

/// As [`pipeline`], for a stream read from a Kinesis data stream or a Kafka topic when `source`
/// is given: its Lambda events carry the records' source metadata.
pub(super) fn pipeline_of_source(
    config: &Config,
    p: &Value,
    arn: &str,
    partitioning: bool,
    source: Option<SourceEvents>,
) -> Result<Option<PipelineParts>, BuildError> {
    transform::Pipeline::validate(p)?;
    let pipeline = transform::Pipeline::from_firehose(p, &lambda_settings(config))?;
    Ok(pipeline.map(|pipeline| {
        let pipeline = pipeline.with_partitioning(partitioning);
        let stats = Arc::clone(pipeline.stats());
        let t = Arc::new(PipelineTransform {
            pipeline,
            stream_arn: arn.to_string(),
            source,
        }) as Arc<dyn Transform>;
        (t, stats)
    }))
}

/// An ExtendedS3 destination's `S3BackupConfiguration` (kept as JSON) in the typed form.
fn parse_backup(v: Option<&Value>) -> Option<crate::api::model::ExtendedS3Config> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The sinks crate's rules for a destination under this daemon's configuration, checked at
/// CreateDeliveryStream and UpdateDestination: the sink and transform configurations are built
/// as delivery builds them (nothing is connected to).
///
/// # Errors
/// The rule broken, for InvalidArgumentException.
pub fn check_destination(config: &Config, d: &Destination) -> Result<(), BuildError> {
    let arn = "arn:aws:firehose:us-east-1:000000000000:deliverystream/check";
    fn kms(
        config: &Config,
        member: &str,
        c: &crate::api::model::ExtendedS3Config,
    ) -> Result<(), BuildError> {
        super::spec::kms_needs_s3(config, member, c)
    }
    let nested = |member: &str, c: Option<&crate::api::model::ExtendedS3Config>| match c {
        Some(c) => kms(config, member, c),
        None => Ok(()),
    };
    match d {
        Destination::ExtendedS3(c) => {
            kms(config, "", c)?;
            super::conversion::converter(config, c, true)?;
            nested(
                "S3BackupConfiguration.",
                parse_backup(c.s3_backup_configuration.as_ref()).as_ref(),
            )?;
        }
        Destination::HttpEndpoint(c) => {
            http_config(config, c, arn)?;
            nested("S3Configuration.", c.s3_configuration.as_ref())?;
        }
        Destination::OpenSearch(c) => {
            opensearch_config(config, c, false)?;
            nested("S3Configuration.", c.s3_configuration.as_ref())?;
        }
        Destination::Elasticsearch(c) => {
            opensearch_config(config, c, true)?;
            nested("S3Configuration.", c.s3_configuration.as_ref())?;
        }
        Destination::Redshift(c) => {
            redshift_config(c)?;
            nested("S3Configuration.", c.s3_configuration.as_ref())?;
            // The intermediate objects' prefixes, as delivery builds them (Firehose's rule 6:
            // no ErrorOutputPrefix, no expressions), so that a stream accepted here can start.
            if let Some(s3) = &c.s3_configuration {
                hydrant_sinks::S3Prefixes::for_redshift(
                    s3.prefix.as_deref(),
                    s3.error_output_prefix.as_deref(),
                )
                .map_err(BuildError::IntermediatePrefix)?;
            }
            nested("S3BackupConfiguration.", c.s3_backup_configuration.as_ref())?;
        }
    }
    if let Some(p) = d.processing_configuration() {
        transform(config, p, arn)?;
    }
    Ok(())
}
