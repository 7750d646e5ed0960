//! The non-S3 sinks and transforms of the sinks crate, built from the API's configuration shapes
//! and the daemon's configuration. (Being wired: the sinks land on their branches.)

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
use crate::api::others::{HttpEndpointConfig, OpenSearchConfig, RedshiftConfig};
use crate::config::Config;

/// The sinks crate's PostgreSQL / Redshift configuration of a destination (without its
/// intermediate store): the JDBC URL, the credentials, the COPY command and its options checked
/// against the intermediate objects' compression.
fn redshift_config(c: &RedshiftConfig) -> Result<pg::PostgresSinkConfig, String> {
    let url = c
        .cluster_jdbc_url
        .as_deref()
        .ok_or("ClusterJDBCURL is required")?;
    let url = pg::JdbcUrl::parse(url).map_err(|e| e.to_string())?;
    let copy = c.copy_command.as_ref().ok_or("CopyCommand is required")?;
    let table = copy
        .data_table_name
        .as_deref()
        .ok_or("CopyCommand.DataTableName is required")?;
    let command = pg::CopyCommand::from_firehose(
        table,
        copy.data_table_columns.as_deref(),
        copy.copy_options.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let compression = match c
        .s3_configuration
        .as_ref()
        .and_then(|s| s.compression_format.as_deref())
    {
        Some(f) => Compression::from_firehose(f).map_err(|e| e.to_string())?,
        None => Compression::Uncompressed,
    };
    command
        .check_compression(compression)
        .map_err(|e| e.to_string())?;
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
) -> Result<Arc<dyn Sink>, String> {
    let mut config = redshift_config(c)?;
    config.intermediate = Some(Arc::new(intermediate));
    Ok(Arc::new(
        pg::PostgresSink::new(config).map_err(|e| e.to_string())?,
    ))
}

/// The sinks crate's OpenSearch configuration of a destination: the endpoint (ClusterEndpoint,
/// or DomainARN through `[opensearch.domains]`), the index and its rotation, document ids, and
/// the cluster credentials of `[opensearch]`.
fn opensearch_config(
    config: &Config,
    c: &OpenSearchConfig,
    legacy: bool,
) -> Result<oss::OpenSearchConfig, String> {
    let endpoint = match (&c.cluster_endpoint, &c.domain_arn) {
        (Some(e), _) => e.clone(),
        (None, Some(arn)) => config.opensearch.domains.get(arn).cloned().ok_or_else(|| {
            format!(
                "DomainARN {arn} is not mapped to a cluster URL (the daemon's \
                 [opensearch.domains] table); give ClusterEndpoint instead"
            )
        })?,
        (None, None) => return Err("DomainARN or ClusterEndpoint is required".into()),
    };
    let index = c.index_name.clone().ok_or("IndexName is required")?;
    let mut o = oss::OpenSearchConfig::new(endpoint, index);
    let s = &config.opensearch;
    o.allow_insecure_http = s.allow_plain_http;
    o.type_name = c.type_name.clone().filter(|t| !t.is_empty());
    o.rotation = oss::IndexRotation::parse(c.index_rotation_period.as_deref().unwrap_or("OneDay"))
        .map_err(|e| e.to_string())?;
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
        o.document_ids = oss::DocumentIdFormat::parse(f).map_err(|e| e.to_string())?;
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
    o.validate().map_err(|e| e.to_string())?;
    Ok(o)
}

pub(super) fn opensearch(
    config: &Config,
    c: &OpenSearchConfig,
    legacy: bool,
) -> Result<Arc<dyn Sink>, String> {
    let o = opensearch_config(config, c, legacy)?;
    Ok(Arc::new(
        oss::OpenSearchSink::new(o).map_err(|e| e.to_string())?,
    ))
}

/// The sinks crate's HTTP endpoint configuration of a destination.
fn http_config(
    config: &Config,
    c: &HttpEndpointConfig,
    arn: &str,
) -> Result<http::HttpEndpointConfig, String> {
    let e = c
        .endpoint_configuration
        .as_ref()
        .ok_or("EndpointConfiguration is required")?;
    let url = e
        .url
        .clone()
        .ok_or("EndpointConfiguration.Url is required")?;
    let mut h = http::HttpEndpointConfig::new(url, arn);
    h.name = e.name.clone();
    h.access_key = e.access_key.clone();
    h.allow_plain_http = config.http_endpoint.allow_plain_http;
    if let Some(r) = &c.request_configuration {
        if let Some(enc) = r.content_encoding.as_deref() {
            h.content_encoding = http::ContentEncoding::from_api(enc).ok_or_else(|| {
                format!("RequestConfiguration.ContentEncoding {enc:?}: NONE or GZIP")
            })?;
        }
        for (i, a) in r.common_attributes.iter().flatten().enumerate() {
            let name = a
                .attribute_name
                .clone()
                .ok_or_else(|| format!("CommonAttributes[{i}].AttributeName is required"))?;
            h.common_attributes
                .push((name, a.attribute_value.clone().unwrap_or_default()));
        }
    }
    h.validate().map_err(|e| e.to_string())?;
    Ok(h)
}

pub(super) fn http_endpoint(
    config: &Config,
    c: &HttpEndpointConfig,
    arn: &str,
) -> Result<Arc<dyn Sink>, String> {
    let h = http_config(config, c, arn)?;
    Ok(Arc::new(
        http::HttpEndpointSink::new(h).map_err(|e| e.to_string())?,
    ))
}

/// A ProcessingConfiguration pipeline as the worker's [`Transform`].
#[derive(Debug)]
struct PipelineTransform {
    pipeline: transform::Pipeline,
    stream_arn: String,
}

impl Transform for PipelineTransform {
    fn process<'a>(
        &'a self,
        batch: Batch,
    ) -> BoxFuture<'a, Result<(Batch, Vec<FailedRecord>), SinkError>> {
        Box::pin(async move {
            let out = self.pipeline.process(batch, &self.stream_arn).await?;
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
) -> Result<Option<Arc<dyn Transform>>, String> {
    transform::Pipeline::validate(p).map_err(|e| e.to_string())?;
    let pipeline = transform::Pipeline::from_firehose(p, &lambda_settings(config))
        .map_err(|e| e.to_string())?;
    Ok(pipeline.map(|pipeline| {
        Arc::new(PipelineTransform {
            pipeline,
            stream_arn: arn.to_string(),
        }) as Arc<dyn Transform>
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
pub fn check_destination(config: &Config, d: &Destination) -> Result<(), String> {
    let arn = "arn:aws:firehose:us-east-1:000000000000:deliverystream/check";
    let kms = super::spec::kms_needs_s3;
    let nested = |member: &str, c: Option<&crate::api::model::ExtendedS3Config>| match c {
        Some(c) => kms(config, member, c),
        None => Ok(()),
    };
    match d {
        Destination::ExtendedS3(c) => {
            kms(config, "", c)?;
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
            nested("S3BackupConfiguration.", c.s3_backup_configuration.as_ref())?;
        }
    }
    if let Some(p) = d.processing_configuration() {
        transform(config, p, arn)?;
    }
    Ok(())
}
