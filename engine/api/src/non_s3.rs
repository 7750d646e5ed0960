//! The destinations beside S3: Redshift (served by PostgreSQL or Redshift through `COPY ... FROM
//! STDIN`), Amazon OpenSearch Service and the legacy Elasticsearch destination, and HTTP
//! endpoints. Their configuration shapes (field names as botocore's service model), the
//! shape-level rules checked at create and update, and the descriptions DescribeDeliveryStream
//! returns. The rules that belong to a sink (CopyOptions, the JDBC URL, index names, endpoint
//! URLs, processors) are the sinks crate's own, called from [`crate::destination`] so one set of
//! rules serves both the API and delivery.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::model::{BufferingHints, ExtendedS3Config};
use crate::validate;

/// `RetryOptions` (`{"DurationInSeconds": n}`) of the Redshift, OpenSearch and HTTP endpoint
/// destinations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOptions {
    /// 0 to 7200 seconds.
    #[serde(rename = "DurationInSeconds", skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u32>,
}

/// `CopyCommand`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyCommand {
    /// The table (1 to 512 characters), `schema.table` allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_table_name: Option<String>,
    /// Comma-separated columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_table_columns: Option<String>,
    /// Redshift COPY parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_options: Option<String>,
}

/// `RedshiftDestinationConfiguration` (and, with `S3Update`/`S3BackupUpdate` renamed on the way
/// in, `RedshiftDestinationUpdate`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedshiftConfig {
    /// IAM role (kept; hydrant assumes no roles).
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `jdbc:redshift://host:port/db` or `jdbc:postgresql://host:port/db`.
    #[serde(rename = "ClusterJDBCURL", skip_serializing_if = "Option::is_none")]
    pub cluster_jdbc_url: Option<String>,
    /// Table, columns and COPY options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_command: Option<CopyCommand>,
    /// Database user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Database password (never described back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Retry window (default 3600 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// The intermediate objects (an S3DestinationConfiguration): also the error output.
    #[serde(rename = "S3Configuration", skip_serializing_if = "Option::is_none")]
    pub s3_configuration: Option<ExtendedS3Config>,
    /// Transformation processors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<Value>,
    /// Disabled | Enabled (source record backup).
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    /// The source record backup.
    #[serde(
        rename = "S3BackupConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_backup_configuration: Option<ExtendedS3Config>,
    /// Logging options (kept and described).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<Value>,
    /// Secrets Manager (not supported: refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_manager_configuration: Option<Value>,
}

/// `DocumentIdOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentIdOptions {
    /// FIREHOSE_DEFAULT | NO_DOCUMENT_ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_document_id_format: Option<String>,
}

/// `AmazonopensearchserviceDestinationConfiguration` and
/// `ElasticsearchDestinationConfiguration` (the same members).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenSearchConfig {
    /// IAM role (kept).
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The domain; mapped to a URL by the daemon's `[opensearch.domains]` table.
    #[serde(rename = "DomainARN", skip_serializing_if = "Option::is_none")]
    pub domain_arn: Option<String>,
    /// The cluster's URL (instead of DomainARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_endpoint: Option<String>,
    /// Index name (rotation suffix added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    /// Type name (Elasticsearch 6.x and older).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// NoRotation | OneHour | OneDay | OneWeek | OneMonth (default OneDay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_rotation_period: Option<String>,
    /// Buffering (1 to 100 MiB, 0 to 900 s; default 5 MiB, 300 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// Retry window (default 300 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// FailedDocumentsOnly (default) | AllDocuments; immutable after create.
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    /// The backup / error-output bucket.
    #[serde(rename = "S3Configuration", skip_serializing_if = "Option::is_none")]
    pub s3_configuration: Option<ExtendedS3Config>,
    /// Transformation processors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<Value>,
    /// Logging options (kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<Value>,
    /// VPC (kept, described back; hydrant connects to the endpoint as given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_configuration: Option<Value>,
    /// Document ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id_options: Option<DocumentIdOptions>,
}

/// `HttpEndpointConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpoint {
    /// The URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sent as `X-Amz-Firehose-Access-Key` (never described back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
}

/// One `CommonAttributes` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpAttribute {
    /// Key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<String>,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_value: Option<String>,
}

/// `HttpEndpointRequestConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpRequestConfiguration {
    /// NONE | GZIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// Sent as `X-Amz-Firehose-Common-Attributes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_attributes: Option<Vec<HttpAttribute>>,
}

/// `HttpEndpointDestinationConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpEndpointConfig {
    /// Where to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_configuration: Option<HttpEndpoint>,
    /// Buffering (1 to 64 MiB, 0 to 900 s; default 5 MiB, 300 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// Logging options (kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<Value>,
    /// Encoding and common attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_configuration: Option<HttpRequestConfiguration>,
    /// Transformation processors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<Value>,
    /// IAM role (kept).
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Retry window (default 300 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// FailedDataOnly (default) | AllData.
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    /// The backup / error-output bucket.
    #[serde(rename = "S3Configuration", skip_serializing_if = "Option::is_none")]
    pub s3_configuration: Option<ExtendedS3Config>,
    /// Secrets Manager (not supported: refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_manager_configuration: Option<Value>,
}

/// Parses a destination configuration given as JSON into its type: a wrong JSON type is a
/// SerializationException, as for every other member.
///
/// # Errors
/// SerializationException naming the member.
pub fn parse<T: serde::de::DeserializeOwned>(name: &str, v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(rename_updates(v.clone()))
        .map_err(|e| ApiError::serialization(format!("{name}: {e}")))
}

/// Update shapes name the nested S3 members `S3Update` and `S3BackupUpdate`; stored
/// configurations call them `S3Configuration` and `S3BackupConfiguration`.
fn rename_updates(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for (from, to) in [
            ("S3Update", "S3Configuration"),
            ("S3BackupUpdate", "S3BackupConfiguration"),
        ] {
            if let Some(x) = o.remove(from) {
                o.insert(to.to_string(), x);
            }
        }
    }
    v
}

fn retry_ok(r: Option<RetryOptions>) -> Result<(), ApiError> {
    match r.and_then(|r| r.duration_in_seconds) {
        Some(d) if d > 7200 => Err(ApiError::invalid(
            "RetryOptions.DurationInSeconds must be 0 to 7200",
        )),
        _ => Ok(()),
    }
}

fn role_ok(role: Option<&str>) -> Result<(), ApiError> {
    let role = role.ok_or_else(|| ApiError::invalid("RoleARN is required"))?;
    if validate::role_arn_ok(role) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "RoleARN {role:?} must match arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+"
        )))
    }
}

fn hints_in(h: Option<BufferingHints>, max_mb: u32) -> Result<(), ApiError> {
    let Some(h) = h else { return Ok(()) };
    if let Some(s) = h.size_in_mbs {
        if !(1..=max_mb).contains(&s) {
            return Err(ApiError::invalid(format!(
                "BufferingHints.SizeInMBs must be 1 to {max_mb}"
            )));
        }
    }
    if h.interval_in_seconds.is_some_and(|i| i > 900) {
        return Err(ApiError::invalid(
            "BufferingHints.IntervalInSeconds must be 0 to 900",
        ));
    }
    Ok(())
}

fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::invalid(format!(
            "{name} {v:?} must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn no_secrets(v: Option<&Value>) -> Result<(), ApiError> {
    match v {
        Some(s) if s.get("Enabled").and_then(Value::as_bool) != Some(false) => {
            Err(ApiError::invalid(
                "SecretsManagerConfiguration is not supported by hydrant: give the credential in \
                 the destination configuration",
            ))
        }
        _ => Ok(()),
    }
}

fn structure(name: &str, v: Option<&Value>) -> Result<(), ApiError> {
    if v.is_some_and(|v| !v.is_object()) {
        return Err(ApiError::serialization(format!(
            "{name} must be a structure"
        )));
    }
    Ok(())
}

/// Shape-level rules of a Redshift destination.
///
/// # Errors
/// InvalidArgumentException with the rule broken.
pub fn validate_redshift(c: &RedshiftConfig) -> Result<(), ApiError> {
    role_ok(c.role_arn.as_deref())?;
    let url = c
        .cluster_jdbc_url
        .as_deref()
        .ok_or_else(|| ApiError::invalid("ClusterJDBCURL is required"))?;
    if !url.starts_with("jdbc:redshift://") && !url.starts_with("jdbc:postgresql://") {
        return Err(ApiError::invalid(format!(
            "ClusterJDBCURL {url:?} must start with jdbc:redshift:// or jdbc:postgresql://"
        )));
    }
    let copy = c
        .copy_command
        .as_ref()
        .ok_or_else(|| ApiError::invalid("CopyCommand is required"))?;
    let table = copy
        .data_table_name
        .as_deref()
        .ok_or_else(|| ApiError::invalid("CopyCommand.DataTableName is required"))?;
    if !(1..=512).contains(&table.len()) {
        return Err(ApiError::invalid(
            "CopyCommand.DataTableName must be 1 to 512 characters",
        ));
    }
    no_secrets(c.secrets_manager_configuration.as_ref())?;
    if c.username.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("Username is required"));
    }
    if c.password.as_deref().is_none_or(|p| p.len() < 6) {
        return Err(ApiError::invalid(
            "Password is required (at least 6 characters)",
        ));
    }
    retry_ok(c.retry_options)?;
    let s3 = c
        .s3_configuration
        .as_ref()
        .ok_or_else(|| ApiError::invalid("S3Configuration is required"))?;
    // Firehose: the intermediate objects' Prefix takes no expressions, and COPY reads neither
    // ZIP nor Snappy.
    if s3.prefix.as_deref().is_some_and(|p| p.contains("!{")) {
        return Err(ApiError::invalid(
            "S3Configuration.Prefix of a Redshift destination cannot contain expressions (!{...})",
        ));
    }
    if let Some(f) = s3.compression_format.as_deref() {
        if matches!(f, "ZIP" | "Snappy" | "HADOOP_SNAPPY") {
            return Err(ApiError::invalid(format!(
                "CompressionFormat {f} is not supported for Redshift (COPY cannot read it)"
            )));
        }
    }
    one_of(
        "S3BackupMode",
        c.s3_backup_mode.as_deref(),
        &["Disabled", "Enabled"],
    )?;
    if c.s3_backup_mode.as_deref() == Some("Enabled") && c.s3_backup_configuration.is_none() {
        return Err(ApiError::invalid(
            "S3BackupMode Enabled needs S3BackupConfiguration",
        ));
    }
    structure(
        "ProcessingConfiguration",
        c.processing_configuration.as_ref(),
    )?;
    structure(
        "CloudWatchLoggingOptions",
        c.cloud_watch_logging_options.as_ref(),
    )?;
    Ok(())
}

/// Shape-level rules of an OpenSearch / Elasticsearch destination.
///
/// # Errors
/// InvalidArgumentException with the rule broken.
pub fn validate_opensearch(c: &OpenSearchConfig) -> Result<(), ApiError> {
    role_ok(c.role_arn.as_deref())?;
    match (&c.domain_arn, &c.cluster_endpoint) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give DomainARN or ClusterEndpoint, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "DomainARN or ClusterEndpoint is required",
            ))
        }
        _ => {}
    }
    let index = c
        .index_name
        .as_deref()
        .ok_or_else(|| ApiError::invalid("IndexName is required"))?;
    if !(1..=80).contains(&index.len()) {
        return Err(ApiError::invalid("IndexName must be 1 to 80 characters"));
    }
    if c.type_name.as_deref().is_some_and(|t| t.len() > 100) {
        return Err(ApiError::invalid("TypeName must be 0 to 100 characters"));
    }
    one_of(
        "IndexRotationPeriod",
        c.index_rotation_period.as_deref(),
        &["NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"],
    )?;
    hints_in(c.buffering_hints, 100)?;
    retry_ok(c.retry_options)?;
    one_of(
        "S3BackupMode",
        c.s3_backup_mode.as_deref(),
        &["FailedDocumentsOnly", "AllDocuments"],
    )?;
    if c.s3_configuration.is_none() {
        return Err(ApiError::invalid("S3Configuration is required"));
    }
    one_of(
        "DocumentIdOptions.DefaultDocumentIdFormat",
        c.document_id_options
            .as_ref()
            .and_then(|d| d.default_document_id_format.as_deref()),
        &["FIREHOSE_DEFAULT", "NO_DOCUMENT_ID"],
    )?;
    structure(
        "ProcessingConfiguration",
        c.processing_configuration.as_ref(),
    )?;
    structure("VpcConfiguration", c.vpc_configuration.as_ref())?;
    Ok(())
}

/// Shape-level rules of an HTTP endpoint destination.
///
/// # Errors
/// InvalidArgumentException with the rule broken.
pub fn validate_http(c: &HttpEndpointConfig) -> Result<(), ApiError> {
    let e = c
        .endpoint_configuration
        .as_ref()
        .ok_or_else(|| ApiError::invalid("EndpointConfiguration is required"))?;
    if e.url.is_none() {
        return Err(ApiError::invalid("EndpointConfiguration.Url is required"));
    }
    if let Some(role) = c.role_arn.as_deref() {
        role_ok(Some(role))?;
    }
    hints_in(c.buffering_hints, 64)?;
    retry_ok(c.retry_options)?;
    one_of(
        "S3BackupMode",
        c.s3_backup_mode.as_deref(),
        &["FailedDataOnly", "AllData"],
    )?;
    one_of(
        "RequestConfiguration.ContentEncoding",
        c.request_configuration
            .as_ref()
            .and_then(|r| r.content_encoding.as_deref()),
        &["NONE", "GZIP"],
    )?;
    if c.s3_configuration.is_none() {
        return Err(ApiError::invalid("S3Configuration is required"));
    }
    no_secrets(c.secrets_manager_configuration.as_ref())?;
    structure(
        "ProcessingConfiguration",
        c.processing_configuration.as_ref(),
    )?;
    Ok(())
}

/// The nested `S3DestinationDescription` of an S3 configuration, defaults filled in.
#[must_use]
pub fn s3_description(c: &ExtendedS3Config) -> Value {
    let hints = c.buffering_hints.unwrap_or_default();
    let mut s3 = Map::new();
    s3.insert("RoleARN".into(), json!(c.role_arn));
    s3.insert("BucketARN".into(), json!(c.bucket_arn));
    if let Some(p) = &c.prefix {
        s3.insert("Prefix".into(), json!(p));
    }
    if let Some(p) = &c.error_output_prefix {
        s3.insert("ErrorOutputPrefix".into(), json!(p));
    }
    s3.insert(
        "BufferingHints".into(),
        json!({
            "SizeInMBs": hints.size_in_mbs.unwrap_or(5),
            "IntervalInSeconds": hints.interval_in_seconds.unwrap_or(300),
        }),
    );
    s3.insert(
        "CompressionFormat".into(),
        json!(c.compression_format.as_deref().unwrap_or("UNCOMPRESSED")),
    );
    s3.insert(
        "EncryptionConfiguration".into(),
        c.encryption_configuration
            .clone()
            .unwrap_or_else(|| json!({"NoEncryptionConfig": "NoEncryption"})),
    );
    s3.insert(
        "CloudWatchLoggingOptions".into(),
        c.cloud_watch_logging_options
            .clone()
            .unwrap_or_else(|| json!({"Enabled": false})),
    );
    Value::Object(s3)
}

fn processing(v: Option<&Value>) -> Value {
    v.cloned()
        .unwrap_or_else(|| json!({"Enabled": false, "Processors": []}))
}

fn logging(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or_else(|| json!({"Enabled": false}))
}

/// `RedshiftDestinationDescription` (the password is not returned, as AWS).
#[must_use]
pub fn redshift_description(c: &RedshiftConfig) -> Value {
    let mut d = Map::new();
    d.insert("RoleARN".into(), json!(c.role_arn));
    d.insert("ClusterJDBCURL".into(), json!(c.cluster_jdbc_url));
    d.insert("CopyCommand".into(), json!(c.copy_command));
    d.insert("Username".into(), json!(c.username));
    d.insert(
        "RetryOptions".into(),
        json!({"DurationInSeconds": c.retry_options.and_then(|r| r.duration_in_seconds).unwrap_or(3600)}),
    );
    if let Some(s3) = &c.s3_configuration {
        d.insert("S3DestinationDescription".into(), s3_description(s3));
    }
    d.insert(
        "ProcessingConfiguration".into(),
        processing(c.processing_configuration.as_ref()),
    );
    d.insert(
        "S3BackupMode".into(),
        json!(c.s3_backup_mode.as_deref().unwrap_or("Disabled")),
    );
    if let Some(b) = &c.s3_backup_configuration {
        d.insert("S3BackupDescription".into(), s3_description(b));
    }
    d.insert(
        "CloudWatchLoggingOptions".into(),
        logging(c.cloud_watch_logging_options.as_ref()),
    );
    Value::Object(d)
}

/// `AmazonopensearchserviceDestinationDescription` / `ElasticsearchDestinationDescription`.
#[must_use]
pub fn opensearch_description(c: &OpenSearchConfig) -> Value {
    let hints = c.buffering_hints.unwrap_or_default();
    let mut d = Map::new();
    d.insert("RoleARN".into(), json!(c.role_arn));
    if let Some(a) = &c.domain_arn {
        d.insert("DomainARN".into(), json!(a));
    }
    if let Some(e) = &c.cluster_endpoint {
        d.insert("ClusterEndpoint".into(), json!(e));
    }
    d.insert("IndexName".into(), json!(c.index_name));
    if let Some(t) = &c.type_name {
        d.insert("TypeName".into(), json!(t));
    }
    d.insert(
        "IndexRotationPeriod".into(),
        json!(c.index_rotation_period.as_deref().unwrap_or("OneDay")),
    );
    d.insert(
        "BufferingHints".into(),
        json!({
            "IntervalInSeconds": hints.interval_in_seconds.unwrap_or(300),
            "SizeInMBs": hints.size_in_mbs.unwrap_or(5),
        }),
    );
    d.insert(
        "RetryOptions".into(),
        json!({"DurationInSeconds": c.retry_options.and_then(|r| r.duration_in_seconds).unwrap_or(300)}),
    );
    d.insert(
        "S3BackupMode".into(),
        json!(c.s3_backup_mode.as_deref().unwrap_or("FailedDocumentsOnly")),
    );
    if let Some(s3) = &c.s3_configuration {
        d.insert("S3DestinationDescription".into(), s3_description(s3));
    }
    d.insert(
        "ProcessingConfiguration".into(),
        processing(c.processing_configuration.as_ref()),
    );
    d.insert(
        "CloudWatchLoggingOptions".into(),
        logging(c.cloud_watch_logging_options.as_ref()),
    );
    if let Some(v) = &c.vpc_configuration {
        d.insert("VpcConfigurationDescription".into(), v.clone());
    }
    d.insert(
        "DocumentIdOptions".into(),
        json!({"DefaultDocumentIdFormat": c.document_id_options.as_ref()
            .and_then(|o| o.default_document_id_format.as_deref()).unwrap_or("FIREHOSE_DEFAULT")}),
    );
    Value::Object(d)
}

/// `HttpEndpointDestinationDescription` (the access key is not returned, as AWS).
#[must_use]
pub fn http_description(c: &HttpEndpointConfig) -> Value {
    let hints = c.buffering_hints.unwrap_or_default();
    let mut d = Map::new();
    let mut endpoint = Map::new();
    if let Some(e) = &c.endpoint_configuration {
        endpoint.insert("Url".into(), json!(e.url));
        if let Some(n) = &e.name {
            endpoint.insert("Name".into(), json!(n));
        }
    }
    d.insert("EndpointConfiguration".into(), Value::Object(endpoint));
    d.insert(
        "BufferingHints".into(),
        json!({
            "SizeInMBs": hints.size_in_mbs.unwrap_or(5),
            "IntervalInSeconds": hints.interval_in_seconds.unwrap_or(300),
        }),
    );
    d.insert(
        "CloudWatchLoggingOptions".into(),
        logging(c.cloud_watch_logging_options.as_ref()),
    );
    let request = c.request_configuration.clone().unwrap_or_default();
    d.insert(
        "RequestConfiguration".into(),
        json!({
            "ContentEncoding": request.content_encoding.as_deref().unwrap_or("NONE"),
            "CommonAttributes": request.common_attributes.unwrap_or_default(),
        }),
    );
    d.insert(
        "ProcessingConfiguration".into(),
        processing(c.processing_configuration.as_ref()),
    );
    if let Some(r) = &c.role_arn {
        d.insert("RoleARN".into(), json!(r));
    }
    d.insert(
        "RetryOptions".into(),
        json!({"DurationInSeconds": c.retry_options.and_then(|r| r.duration_in_seconds).unwrap_or(300)}),
    );
    d.insert(
        "S3BackupMode".into(),
        json!(c.s3_backup_mode.as_deref().unwrap_or("FailedDataOnly")),
    );
    if let Some(s3) = &c.s3_configuration {
        d.insert("S3DestinationDescription".into(), s3_description(s3));
    }
    Value::Object(d)
}
