//! Destination configurations: validation at create, merging on UpdateDestination, and the
//! descriptions DescribeDeliveryStream returns (defaults filled in as AWS fills them).
//!
//! Served: `ExtendedS3DestinationConfiguration` (and the deprecated `S3DestinationConfiguration`,
//! stored in the extended form), `RedshiftDestinationConfiguration`,
//! `AmazonopensearchserviceDestinationConfiguration`, `ElasticsearchDestinationConfiguration` and
//! `HttpEndpointDestinationConfiguration` (shapes in [`crate::non_s3`]). OpenSearch Serverless,
//! Splunk, Snowflake and Iceberg are refused with InvalidArgumentException naming them.
//!
//! The rules here are the shapes' and the object sinks' (from hydrant-sinks, so that the API and
//! delivery apply one set); the sinks' rules that depend on the daemon's configuration
//! (CopyOptions, the JDBC URL, endpoint URLs, index names, processors) are applied by the
//! engine at create and update (`delivery::check_destination`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::model::{
    BufferingHints, CreateDeliveryStreamInput, ExtendedS3Config, UpdateDestinationInput,
};
use crate::non_s3::{self, HttpEndpointConfig, OpenSearchConfig, RedshiftConfig};
use crate::validate;

/// The id of a stream's one destination (Firehose's own value).
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// A stream's destination, as stored in the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config")]
// One value per stream, made at create and update, never on the record path: the size of the
// unboxed S3 variant does not matter, and keeping it unboxed keeps its many uses plain.
#[allow(clippy::large_enum_variant)]
pub enum Destination {
    /// Amazon S3 (or the local object store, for the embedded default).
    ExtendedS3(ExtendedS3Config),
    /// Redshift, served by PostgreSQL or Redshift through COPY FROM STDIN.
    Redshift(Box<RedshiftConfig>),
    /// Amazon OpenSearch Service (`_bulk`).
    OpenSearch(Box<OpenSearchConfig>),
    /// The legacy Elasticsearch destination (`_bulk`; `elasticsearch-failed`).
    Elasticsearch(Box<OpenSearchConfig>),
    /// An HTTP endpoint.
    HttpEndpoint(Box<HttpEndpointConfig>),
}

/// What an UpdateDestination changes.
#[derive(Clone, Debug, PartialEq)]
pub enum DestinationUpdate {
    /// `ExtendedS3DestinationUpdate` or `S3DestinationUpdate`.
    ExtendedS3(Box<ExtendedS3Config>),
    /// `RedshiftDestinationUpdate`, as given.
    Redshift(Value),
    /// `AmazonopensearchserviceDestinationUpdate`, as given.
    OpenSearch(Value),
    /// `ElasticsearchDestinationUpdate`, as given.
    Elasticsearch(Value),
    /// `HttpEndpointDestinationUpdate`, as given.
    HttpEndpoint(Value),
}

/// Destination members of CreateDeliveryStream that hydrant does not serve, by name.
fn unsupported_create(i: &CreateDeliveryStreamInput) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (present, name) in [
        (
            i.amazon_open_search_serverless_destination_configuration
                .is_some(),
            "AmazonOpenSearchServerlessDestinationConfiguration",
        ),
        (
            i.splunk_destination_configuration.is_some(),
            "SplunkDestinationConfiguration",
        ),
        (
            i.snowflake_destination_configuration.is_some(),
            "SnowflakeDestinationConfiguration",
        ),
        (
            i.iceberg_destination_configuration.is_some(),
            "IcebergDestinationConfiguration",
        ),
    ] {
        if present {
            v.push(name);
        }
    }
    v
}

fn not_yet(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "{name} is not supported by hydrant (supported: ExtendedS3DestinationConfiguration, \
         S3DestinationConfiguration, RedshiftDestinationConfiguration, \
         AmazonopensearchserviceDestinationConfiguration, ElasticsearchDestinationConfiguration, \
         HttpEndpointDestinationConfiguration)"
    ))
}

impl Destination {
    /// The destination of a CreateDeliveryStream request: exactly one must be given.
    ///
    /// # Errors
    /// InvalidArgumentException: none or several destinations, an unsupported type, or an
    /// invalid S3 configuration.
    pub fn from_create(i: &CreateDeliveryStreamInput) -> Result<Destination, ApiError> {
        let others = unsupported_create(i);
        let s3 = [
            i.extended_s3_destination_configuration.as_ref(),
            i.s3_destination_configuration.as_ref(),
        ];
        let served = [
            (
                "RedshiftDestinationConfiguration",
                i.redshift_destination_configuration.as_ref(),
            ),
            (
                "AmazonopensearchserviceDestinationConfiguration",
                i.amazonopensearchservice_destination_configuration.as_ref(),
            ),
            (
                "ElasticsearchDestinationConfiguration",
                i.elasticsearch_destination_configuration.as_ref(),
            ),
            (
                "HttpEndpointDestinationConfiguration",
                i.http_endpoint_destination_configuration.as_ref(),
            ),
        ];
        let count = others.len()
            + s3.iter().flatten().count()
            + served.iter().filter(|(_, v)| v.is_some()).count();
        if count == 0 {
            return Err(ApiError::invalid(
                "exactly one destination configuration is required (none given)",
            ));
        }
        if count > 1 {
            return Err(ApiError::invalid(
                "exactly one destination configuration is allowed (several given)",
            ));
        }
        if let Some(name) = others.first() {
            return Err(not_yet(name));
        }
        if let Some((name, Some(v))) = served.iter().find(|(_, v)| v.is_some()) {
            let d = Destination::parse_as(name, v)?;
            d.validate()?;
            return Ok(d);
        }
        let Some(config) = s3.into_iter().flatten().next() else {
            return Err(ApiError::invalid(
                "exactly one destination configuration is required",
            ));
        };
        if config.s3_backup_update.is_some() {
            return Err(ApiError::invalid(
                "S3BackupUpdate belongs to UpdateDestination; use S3BackupConfiguration",
            ));
        }
        validate_s3(config)?;
        Ok(Destination::ExtendedS3(config.clone()))
    }

    /// Validates a destination (as Create and Update do).
    ///
    /// # Errors
    /// InvalidArgumentException with the rule broken.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !matches!(self, Destination::ExtendedS3(_)) {
            super::partitioning::refuse_metadata_extraction(self.processing_configuration())?;
        }
        match self {
            Destination::ExtendedS3(c) => validate_s3(c),
            Destination::Redshift(c) => {
                non_s3::validate_redshift(c)?;
                super::unsupported::refuse(self)?;
                nested_s3(c.s3_configuration.as_ref(), "S3Configuration")?;
                nested_s3(c.s3_backup_configuration.as_ref(), "S3BackupConfiguration")
            }
            Destination::OpenSearch(c) | Destination::Elasticsearch(c) => {
                non_s3::validate_opensearch(c)?;
                crate::unsupported::refuse(self)?;
                nested_s3(c.s3_configuration.as_ref(), "S3Configuration")
            }
            Destination::HttpEndpoint(c) => {
                non_s3::validate_http(c)?;
                nested_s3(c.s3_configuration.as_ref(), "S3Configuration")
            }
        }
    }

    /// Parses a served non-S3 destination configuration by its member name.
    fn parse_as(name: &str, v: &Value) -> Result<Destination, ApiError> {
        Ok(match name {
            "RedshiftDestinationConfiguration" | "RedshiftDestinationUpdate" => {
                Destination::Redshift(Box::new(non_s3::parse(name, v)?))
            }
            "AmazonopensearchserviceDestinationConfiguration"
            | "AmazonopensearchserviceDestinationUpdate" => {
                Destination::OpenSearch(Box::new(non_s3::parse(name, v)?))
            }
            "ElasticsearchDestinationConfiguration" | "ElasticsearchDestinationUpdate" => {
                Destination::Elasticsearch(Box::new(non_s3::parse(name, v)?))
            }
            _ => Destination::HttpEndpoint(Box::new(non_s3::parse(name, v)?)),
        })
    }

    /// The `ProcessingConfiguration` of the destination, if any.
    #[must_use]
    pub fn processing_configuration(&self) -> Option<&Value> {
        match self {
            Destination::ExtendedS3(c) => c.processing_configuration.as_ref(),
            Destination::Redshift(c) => c.processing_configuration.as_ref(),
            Destination::OpenSearch(c) | Destination::Elasticsearch(c) => {
                c.processing_configuration.as_ref()
            }
            Destination::HttpEndpoint(c) => c.processing_configuration.as_ref(),
        }
    }

    /// The type's name for messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Destination::ExtendedS3(_) => "ExtendedS3",
            Destination::Redshift(_) => "Redshift",
            Destination::OpenSearch(_) => "AmazonopensearchserviceDestination",
            Destination::Elasticsearch(_) => "Elasticsearch",
            Destination::HttpEndpoint(_) => "HttpEndpoint",
        }
    }

    /// Applies an update: the same type merges (members not given are kept), a different type
    /// replaces. The result is validated as a whole.
    ///
    /// # Errors
    /// InvalidArgumentException when the merged configuration is invalid.
    pub fn apply(&self, update: &DestinationUpdate) -> Result<Destination, ApiError> {
        match (self, update) {
            (Destination::ExtendedS3(current), DestinationUpdate::ExtendedS3(upd)) => {
                let mut merged = to_value(current);
                let mut upd = (**upd).clone();
                let backup_update = upd.s3_backup_update.take();
                merge(&mut merged, to_value(&upd));
                if let Some(b) = backup_update {
                    let slot = merged
                        .as_object_mut()
                        .map(|o| o.entry("S3BackupConfiguration").or_insert(json!({})));
                    if let Some(slot) = slot {
                        merge(slot, b);
                    }
                }
                let merged: ExtendedS3Config = serde_json::from_value(merged)
                    .map_err(|e| ApiError::invalid(format!("invalid update: {e}")))?;
                super::partitioning::check_update(current, &merged)?;
                if current.s3_backup_mode.as_deref() == Some("Enabled")
                    && merged.s3_backup_mode.as_deref() == Some("Disabled")
                {
                    return Err(ApiError::invalid(
                        "S3BackupMode cannot be disabled once enabled",
                    ));
                }
                validate_s3(&merged)?;
                Ok(Destination::ExtendedS3(merged))
            }
            (current, update) => {
                let (name, upd) = match update {
                    DestinationUpdate::ExtendedS3(c) => {
                        // Another type to S3: the update is the whole new configuration.
                        let d = Destination::ExtendedS3((**c).clone());
                        d.validate()?;
                        return Ok(d);
                    }
                    DestinationUpdate::Redshift(v) => ("RedshiftDestinationUpdate", v),
                    DestinationUpdate::OpenSearch(v) => {
                        ("AmazonopensearchserviceDestinationUpdate", v)
                    }
                    DestinationUpdate::Elasticsearch(v) => ("ElasticsearchDestinationUpdate", v),
                    DestinationUpdate::HttpEndpoint(v) => ("HttpEndpointDestinationUpdate", v),
                };
                let fresh = Destination::parse_as(name, upd)?;
                let merged = if std::mem::discriminant(&fresh) == std::mem::discriminant(current) {
                    let mut merged = current.config_value();
                    merge(&mut merged, fresh.config_value());
                    let merged = Destination::parse_as(name, &merged)?;
                    immutable_rules(current, &merged)?;
                    merged
                } else {
                    fresh
                };
                merged.validate()?;
                Ok(merged)
            }
        }
    }

    /// The stored configuration as JSON (the member layout of the Configuration shapes).
    fn config_value(&self) -> Value {
        match self {
            Destination::ExtendedS3(c) => to_value(c),
            Destination::Redshift(c) => to_value(c),
            Destination::OpenSearch(c) | Destination::Elasticsearch(c) => to_value(c),
            Destination::HttpEndpoint(c) => to_value(c),
        }
    }

    /// The `DestinationDescription` for DescribeDeliveryStream.
    #[must_use]
    pub fn description(&self) -> Value {
        match self {
            Destination::ExtendedS3(c) => {
                let hints = c.buffering_hints.unwrap_or_default();
                let hints = json!({
                    "SizeInMBs": hints.size_in_mbs.unwrap_or(
                        if crate::conversion::enabled(c) {
                            crate::conversion::SIZE_DEFAULT_MB
                        } else {
                            5
                        }
                    ),
                    "IntervalInSeconds": hints.interval_in_seconds.unwrap_or(300),
                });
                let encryption = c
                    .encryption_configuration
                    .clone()
                    .unwrap_or_else(|| json!({"NoEncryptionConfig": "NoEncryption"}));
                let logging = c
                    .cloud_watch_logging_options
                    .clone()
                    .unwrap_or_else(|| json!({"Enabled": false}));
                let compression = c
                    .compression_format
                    .clone()
                    .unwrap_or_else(|| "UNCOMPRESSED".to_string());
                let mut s3 = Map::new();
                s3.insert("RoleARN".into(), json!(c.role_arn));
                s3.insert("BucketARN".into(), json!(c.bucket_arn));
                if let Some(p) = &c.prefix {
                    s3.insert("Prefix".into(), json!(p));
                }
                if let Some(p) = &c.error_output_prefix {
                    s3.insert("ErrorOutputPrefix".into(), json!(p));
                }
                s3.insert("BufferingHints".into(), hints);
                s3.insert("CompressionFormat".into(), json!(compression));
                s3.insert("EncryptionConfiguration".into(), encryption);
                s3.insert("CloudWatchLoggingOptions".into(), logging);
                let mut ext = s3.clone();
                ext.insert(
                    "ProcessingConfiguration".into(),
                    c.processing_configuration
                        .clone()
                        .unwrap_or_else(|| json!({"Enabled": false, "Processors": []})),
                );
                ext.insert(
                    "S3BackupMode".into(),
                    json!(c
                        .s3_backup_mode
                        .clone()
                        .unwrap_or_else(|| "Disabled".into())),
                );
                if let Some(b) = &c.s3_backup_configuration {
                    ext.insert("S3BackupDescription".into(), backup_description(b));
                }
                for (k, v) in [
                    (
                        "DataFormatConversionConfiguration",
                        &c.data_format_conversion_configuration,
                    ),
                    (
                        "DynamicPartitioningConfiguration",
                        &c.dynamic_partitioning_configuration,
                    ),
                ] {
                    if let Some(v) = v {
                        ext.insert(k.into(), v.clone());
                    }
                }
                if let Some(e) = &c.file_extension {
                    ext.insert("FileExtension".into(), json!(e));
                }
                if let Some(z) = &c.custom_time_zone {
                    ext.insert("CustomTimeZone".into(), json!(z));
                }
                json!({
                    "DestinationId": DESTINATION_ID,
                    "S3DestinationDescription": Value::Object(s3),
                    "ExtendedS3DestinationDescription": Value::Object(ext),
                })
            }
            Destination::Redshift(c) => json!({
                "DestinationId": DESTINATION_ID,
                "RedshiftDestinationDescription": non_s3::redshift_description(c),
            }),
            Destination::OpenSearch(c) => json!({
                "DestinationId": DESTINATION_ID,
                "AmazonopensearchserviceDestinationDescription": non_s3::opensearch_description(c),
            }),
            Destination::Elasticsearch(c) => json!({
                "DestinationId": DESTINATION_ID,
                "ElasticsearchDestinationDescription": non_s3::opensearch_description(c),
            }),
            Destination::HttpEndpoint(c) => json!({
                "DestinationId": DESTINATION_ID,
                "HttpEndpointDestinationDescription": non_s3::http_description(c),
            }),
        }
    }
}

/// Rules on the change itself: OpenSearch's S3BackupMode is immutable, Redshift's cannot go back
/// to Disabled.
fn immutable_rules(current: &Destination, merged: &Destination) -> Result<(), ApiError> {
    match (current, merged) {
        (Destination::OpenSearch(a), Destination::OpenSearch(b))
        | (Destination::Elasticsearch(a), Destination::Elasticsearch(b)) => {
            let mode = |c: &OpenSearchConfig| {
                c.s3_backup_mode
                    .clone()
                    .unwrap_or_else(|| "FailedDocumentsOnly".into())
            };
            if mode(a) != mode(b) {
                return Err(ApiError::invalid(
                    "S3BackupMode cannot be changed after the stream is created",
                ));
            }
        }
        (Destination::Redshift(a), Destination::Redshift(b))
            if a.s3_backup_mode.as_deref() == Some("Enabled")
                && b.s3_backup_mode.as_deref() != Some("Enabled") =>
        {
            return Err(ApiError::invalid(
                "S3BackupMode cannot be disabled once enabled",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The nested S3 configuration (intermediate objects, backup, error output) follows the S3 rules.
fn nested_s3(c: Option<&ExtendedS3Config>, name: &str) -> Result<(), ApiError> {
    match c {
        Some(c) => super::partitioning::refuse_nested(c, name)
            .and_then(|()| validate_s3(c))
            .map_err(|e| ApiError::invalid(format!("{name}: {}", e.message))),
        None => Ok(()),
    }
}

/// BucketARN of the embedded default, which delivery maps (with no S3 endpoint configured) to
/// `DIR/objects/hydrant-local/`.
pub const LOCAL_BUCKET_ARN: &str = "arn:aws:s3:::hydrant-local";

/// `data_dir/objects`: the daemon's local object store (where S3 destinations are written when
/// no S3 endpoint is configured) when its `objects_dir` is not set; replay writes there too.
#[must_use]
pub fn default_local_store_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("objects")
}

fn backup_description(b: &Value) -> Value {
    let mut d = b.as_object().cloned().unwrap_or_default();
    d.entry("BufferingHints")
        .or_insert(json!({"SizeInMBs": 5, "IntervalInSeconds": 300}));
    d.entry("CompressionFormat")
        .or_insert(json!("UNCOMPRESSED"));
    d.entry("EncryptionConfiguration")
        .or_insert(json!({"NoEncryptionConfig": "NoEncryption"}));
    d.entry("CloudWatchLoggingOptions")
        .or_insert(json!({"Enabled": false}));
    Value::Object(d)
}

impl DestinationUpdate {
    /// The update of an UpdateDestination request: exactly one must be given.
    ///
    /// # Errors
    /// InvalidArgumentException: none or several, or an unsupported type.
    pub fn from_update(i: &UpdateDestinationInput) -> Result<DestinationUpdate, ApiError> {
        let mut others = Vec::new();
        for (present, name) in [
            (
                i.amazon_open_search_serverless_destination_update.is_some(),
                "AmazonOpenSearchServerlessDestinationUpdate",
            ),
            (
                i.splunk_destination_update.is_some(),
                "SplunkDestinationUpdate",
            ),
            (
                i.snowflake_destination_update.is_some(),
                "SnowflakeDestinationUpdate",
            ),
            (
                i.iceberg_destination_update.is_some(),
                "IcebergDestinationUpdate",
            ),
        ] {
            if present {
                others.push(name);
            }
        }
        let s3 = [
            i.extended_s3_destination_update.as_ref(),
            i.s3_destination_update.as_ref(),
        ];
        let served = [
            i.redshift_destination_update
                .clone()
                .map(DestinationUpdate::Redshift),
            i.amazonopensearchservice_destination_update
                .clone()
                .map(DestinationUpdate::OpenSearch),
            i.elasticsearch_destination_update
                .clone()
                .map(DestinationUpdate::Elasticsearch),
            i.http_endpoint_destination_update
                .clone()
                .map(DestinationUpdate::HttpEndpoint),
        ];
        let count = others.len() + s3.iter().flatten().count() + served.iter().flatten().count();
        if count != 1 {
            return Err(ApiError::invalid(format!(
                "exactly one destination update is required ({count} given)"
            )));
        }
        if let Some(name) = others.first() {
            return Err(not_yet(name));
        }
        if let Some(u) = served.into_iter().flatten().next() {
            return Ok(u);
        }
        match s3.into_iter().flatten().next() {
            Some(u) => {
                if u.s3_backup_configuration.is_some() {
                    return Err(ApiError::invalid(
                        "S3BackupConfiguration belongs to CreateDeliveryStream; use S3BackupUpdate",
                    ));
                }
                Ok(DestinationUpdate::ExtendedS3(Box::new(u.clone())))
            }
            None => Err(ApiError::invalid(
                "exactly one destination update is required",
            )),
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Deep merge: objects merge member by member, anything else replaces.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn validate_s3(c: &ExtendedS3Config) -> Result<(), ApiError> {
    let role = c
        .role_arn
        .as_deref()
        .ok_or_else(|| ApiError::invalid("RoleARN is required"))?;
    if !validate::role_arn_ok(role) {
        return Err(ApiError::invalid(format!(
            "RoleARN {role:?} must match arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+"
        )));
    }
    let bucket = c
        .bucket_arn
        .as_deref()
        .ok_or_else(|| ApiError::invalid("BucketARN is required"))?;
    if !validate::bucket_arn_ok(bucket) {
        return Err(ApiError::invalid(format!(
            "BucketARN {bucket:?} must match arn:.*:s3:::[\\w\\.\\-]{{1,255}}"
        )));
    }
    if let Some(h) = c.buffering_hints {
        hints_ok(h)?;
    }
    // Prefix, ErrorOutputPrefix, CompressionFormat, FileExtension and the bucket: the sinks
    // crate's rules, the very ones delivery applies (one set of rules).
    object_sink_rules(c)?;
    if let Some(m) = &c.s3_backup_mode {
        if m != "Disabled" && m != "Enabled" {
            return Err(ApiError::invalid(format!(
                "S3BackupMode {m:?} must be Disabled or Enabled"
            )));
        }
        if m == "Enabled" && c.s3_backup_configuration.is_none() {
            return Err(ApiError::invalid(
                "S3BackupMode Enabled needs S3BackupConfiguration",
            ));
        }
    }
    if let Some(z) = &c.custom_time_zone {
        if z.len() > 50
            || !z
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'/' || b == b'_')
        {
            return Err(ApiError::invalid(format!(
                "CustomTimeZone {z:?} is not valid"
            )));
        }
    }
    for (name, v) in [
        ("EncryptionConfiguration", &c.encryption_configuration),
        ("CloudWatchLoggingOptions", &c.cloud_watch_logging_options),
        ("ProcessingConfiguration", &c.processing_configuration),
        ("S3BackupConfiguration", &c.s3_backup_configuration),
        (
            "DataFormatConversionConfiguration",
            &c.data_format_conversion_configuration,
        ),
        (
            "DynamicPartitioningConfiguration",
            &c.dynamic_partitioning_configuration,
        ),
    ] {
        if v.as_ref().is_some_and(|v| !v.is_object()) {
            return Err(ApiError::serialization(format!(
                "{name} must be a structure"
            )));
        }
    }
    crate::partitioning::validate(c)?;
    crate::conversion::validate(c)?;
    crate::unsupported::refuse_s3(c)
}

/// The sinks crate's validation of the object naming and encoding settings: the same rules
/// delivery applies, so a destination accepted here is one its sink can write.
fn object_sink_rules(c: &ExtendedS3Config) -> Result<(), ApiError> {
    if let Some(arn) = c.bucket_arn.as_deref() {
        hydrant_sinks::keys::bucket_from_arn(arn).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    let config = if super::partitioning::enabled(c) {
        let produced = match &c.processing_configuration {
            Some(p) => hydrant_sinks::transform::Pipeline::keys_produced(p)
                .map_err(|e| ApiError::invalid(e.to_string()))?,
            None => hydrant_sinks::partition::KeysProduced::default(),
        };
        hydrant_sinks::ObjectSinkConfig::partitioned(
            c.prefix.as_deref(),
            c.error_output_prefix.as_deref(),
            c.compression_format.as_deref(),
            c.file_extension.as_deref(),
            &produced,
            hydrant_sinks::partition::Limits::default(),
        )
    } else {
        hydrant_sinks::ObjectSinkConfig::from_firehose(
            c.prefix.as_deref(),
            c.error_output_prefix.as_deref(),
            c.compression_format.as_deref(),
            c.file_extension.as_deref(),
        )
    };
    config
        .and_then(|o| o.with_time_zone(c.custom_time_zone.as_deref()))
        .and_then(|config| config.check_writable())
        .map_err(|e| ApiError::invalid(e.to_string()))
}

fn hints_ok(h: BufferingHints) -> Result<(), ApiError> {
    match (h.size_in_mbs, h.interval_in_seconds) {
        (Some(s), Some(i)) => {
            if !(1..=128).contains(&s) {
                return Err(ApiError::invalid(
                    "BufferingHints.SizeInMBs must be 1 to 128",
                ));
            }
            if i > 900 {
                return Err(ApiError::invalid(
                    "BufferingHints.IntervalInSeconds must be 0 to 900",
                ));
            }
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(ApiError::invalid(
            "BufferingHints: SizeInMBs and IntervalInSeconds go together (set both or neither)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> ExtendedS3Config {
        ExtendedS3Config {
            role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
            bucket_arn: Some("arn:aws:s3:::b".into()),
            ..ExtendedS3Config::default()
        }
    }

    #[test]
    fn merge_keeps_unspecified_members() {
        let d = Destination::ExtendedS3(ExtendedS3Config {
            prefix: Some("p/".into()),
            buffering_hints: Some(BufferingHints {
                size_in_mbs: Some(1),
                interval_in_seconds: Some(60),
            }),
            ..s3()
        });
        let u = DestinationUpdate::ExtendedS3(Box::new(ExtendedS3Config {
            compression_format: Some("GZIP".into()),
            buffering_hints: Some(BufferingHints {
                size_in_mbs: Some(64),
                interval_in_seconds: None,
            }),
            ..ExtendedS3Config::default()
        }));
        let Destination::ExtendedS3(m) = d.apply(&u).expect("valid") else {
            panic!("not S3")
        };
        assert_eq!(m.prefix.as_deref(), Some("p/"));
        assert_eq!(m.compression_format.as_deref(), Some("GZIP"));
        assert_eq!(
            m.buffering_hints,
            Some(BufferingHints {
                size_in_mbs: Some(64),
                interval_in_seconds: Some(60)
            })
        );
    }

    #[test]
    fn description_fills_defaults() {
        let d = Destination::ExtendedS3(s3()).description();
        assert_eq!(d["DestinationId"], DESTINATION_ID);
        let e = &d["ExtendedS3DestinationDescription"];
        assert_eq!(e["BufferingHints"]["SizeInMBs"], 5);
        assert_eq!(e["CompressionFormat"], "UNCOMPRESSED");
        assert_eq!(
            e["EncryptionConfiguration"]["NoEncryptionConfig"],
            "NoEncryption"
        );
        assert_eq!(e["S3BackupMode"], "Disabled");
        assert_eq!(d["S3DestinationDescription"]["BucketARN"], "arn:aws:s3:::b");
    }

    #[test]
    fn naming_and_codec_rules_are_the_sinks_crates() {
        let ok = |c: ExtendedS3Config| Destination::ExtendedS3(c).validate();
        assert!(ok(ExtendedS3Config {
            compression_format: Some("ZSTD".into()),
            ..s3()
        })
        .is_ok());
        let e = ok(ExtendedS3Config {
            compression_format: Some("SNAPPY".into()),
            ..s3()
        })
        .expect_err("invalid");
        assert_eq!(e.code, crate::errors::ErrorCode::InvalidArgument);
        let e = ok(ExtendedS3Config {
            prefix: Some("p/!{timestamp:yyyy}/".into()),
            ..s3()
        })
        .expect_err("invalid");
        assert!(e.message.contains("ErrorOutputPrefix"), "{}", e.message);
        let e = ok(ExtendedS3Config {
            prefix: Some("p/".into()),
            error_output_prefix: Some("e/".into()),
            ..s3()
        })
        .expect_err("invalid");
        assert!(e.message.contains("error-output-type"), "{}", e.message);
        assert!(ok(ExtendedS3Config {
            file_extension: Some("json".into()),
            ..s3()
        })
        .is_err());
        assert!(ok(ExtendedS3Config {
            prefix: Some("p/!{timestamp:yyyy}/".into()),
            error_output_prefix: Some("e/!{firehose:error-output-type}/".into()),
            file_extension: Some(".json".into()),
            ..s3()
        })
        .is_ok());
    }

    fn http() -> Destination {
        Destination::parse_as(
            "HttpEndpointDestinationConfiguration",
            &json!({
                "EndpointConfiguration": {"Url": "https://in.example.com/x", "AccessKey": "k1"},
                "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 10},
                "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                                    "BucketARN": "arn:aws:s3:::b"},
            }),
        )
        .expect("valid")
    }

    #[test]
    fn http_update_merges_and_describes_without_the_access_key() {
        let d = http();
        d.validate().expect("valid");
        let u = DestinationUpdate::HttpEndpoint(json!({
            "EndpointConfiguration": {"Url": "https://other.example.com/y"},
            "S3Update": {"Prefix": "p/"},
        }));
        let m = d.apply(&u).expect("valid update");
        let Destination::HttpEndpoint(c) = &m else {
            panic!("not http")
        };
        let e = c.endpoint_configuration.as_ref().expect("endpoint");
        assert_eq!(e.url.as_deref(), Some("https://other.example.com/y"));
        assert_eq!(e.access_key.as_deref(), Some("k1"), "kept");
        assert_eq!(
            c.buffering_hints.and_then(|h| h.size_in_mbs),
            Some(2),
            "kept"
        );
        assert_eq!(
            c.s3_configuration
                .as_ref()
                .and_then(|s| s.prefix.as_deref()),
            Some("p/")
        );
        let desc = m.description();
        let h = &desc["HttpEndpointDestinationDescription"];
        assert!(h["EndpointConfiguration"].get("AccessKey").is_none());
        assert_eq!(h["RetryOptions"]["DurationInSeconds"], 300);
    }

    #[test]
    fn opensearch_backup_mode_is_immutable_and_types_can_change() {
        let os = Destination::parse_as(
            "AmazonopensearchserviceDestinationConfiguration",
            &json!({
                "RoleARN": "arn:aws:iam::123456789012:role/r",
                "ClusterEndpoint": "https://search.example.com",
                "IndexName": "i",
                "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                                    "BucketARN": "arn:aws:s3:::b"},
            }),
        )
        .expect("valid");
        os.validate().expect("valid");
        let e = os
            .apply(&DestinationUpdate::OpenSearch(
                json!({"S3BackupMode": "AllDocuments"}),
            ))
            .expect_err("immutable");
        assert!(e.message.contains("S3BackupMode"), "{}", e.message);
        let ok = os
            .apply(&DestinationUpdate::OpenSearch(
                json!({"IndexRotationPeriod": "OneHour"}),
            ))
            .expect("valid");
        assert_eq!(
            ok.description()["AmazonopensearchserviceDestinationDescription"]
                ["IndexRotationPeriod"],
            "OneHour"
        );
        // Another type replaces the destination (validated as a whole).
        let replaced = os
            .apply(&DestinationUpdate::ExtendedS3(Box::new(s3())))
            .expect("valid");
        assert!(matches!(replaced, Destination::ExtendedS3(_)));
        assert!(
            os.apply(&DestinationUpdate::HttpEndpoint(json!({
                "EndpointConfiguration": {"Url": "https://x"}
            })))
            .is_err(),
            "an HTTP destination needs its S3Configuration"
        );
    }

    #[test]
    fn redshift_shape_rules() {
        let base = json!({
            "RoleARN": "arn:aws:iam::123456789012:role/r",
            "ClusterJDBCURL": "jdbc:postgresql://127.0.0.1:5432/db",
            "CopyCommand": {"DataTableName": "t"},
            "Username": "u", "Password": "secret1",
            "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/r",
                                "BucketARN": "arn:aws:s3:::b"},
        });
        let parse = |v: &Value| {
            Destination::parse_as("RedshiftDestinationConfiguration", v).and_then(|d| {
                d.validate()?;
                Ok(d)
            })
        };
        parse(&base).expect("valid");
        for (path, value) in [
            ("Password", json!("short")),
            ("ClusterJDBCURL", json!("jdbc:mysql://h/db")),
            ("RetryOptions", json!({"DurationInSeconds": 7201})),
        ] {
            let mut v = base.clone();
            v[path] = value;
            assert!(parse(&v).is_err(), "{path}");
        }
        let mut v = base.clone();
        v["S3Configuration"]["CompressionFormat"] = json!("Snappy");
        assert!(parse(&v).is_err());
        let mut v = base;
        v["CopyCommand"] = json!(5);
        assert_eq!(
            parse(&v).expect_err("type").code,
            crate::errors::ErrorCode::Serialization
        );
    }
}
