//! The Kinesis client (aws-sdk-kinesis over rustls, SigV4) built from `[kinesis]`, and the
//! classification of its errors into what the reader does next.

use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::Client;

use super::config::KinesisSection;

/// Builds the client for a stream in `arn_region` (the ARN's region, unless `[kinesis] region`
/// says otherwise). No SDK retries: the reader retries every call itself, paced per shard.
///
/// # Errors
/// A message when no credentials are configured or in the environment.
pub fn build_client(section: &KinesisSection, arn_region: &str) -> Result<Client, String> {
    let credentials = match (&section.access_key_id, &section.secret_access_key) {
        (Some(k), Some(s)) => {
            Credentials::new(k, s, section.session_token.clone(), None, "hydrant-config")
        }
        _ => {
            let get = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
            match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(k), Some(s)) => {
                    Credentials::new(k, s, get("AWS_SESSION_TOKEN"), None, "environment")
                }
                _ => {
                    return Err("no Kinesis credentials: set [kinesis] access_key_id and \
                                secret_access_key, or AWS_ACCESS_KEY_ID and \
                                AWS_SECRET_ACCESS_KEY"
                        .to_string())
                }
            }
        }
    };
    let region = section
        .region
        .clone()
        .unwrap_or_else(|| arn_region.to_string());
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(section.call_timeout_ms))
        .operation_attempt_timeout(Duration::from_millis(section.call_timeout_ms))
        .operation_timeout(Duration::from_millis(section.call_timeout_ms))
        .build();
    let mut builder = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(endpoint) = &section.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(Client::from_conf(builder.build()))
}

/// What a failed call means for the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The stream or shard does not exist.
    NotFound(String),
    /// Throttled (`ProvisionedThroughputExceededException`, `LimitExceededException`).
    Throttled,
    /// The shard iterator expired: get a new one from the position.
    ExpiredIterator,
    /// Anything else (timeouts, connection errors, 5xx): retry after a pause.
    Other(String),
}

/// Classifies an SDK error.
pub fn classify<E, R>(e: &SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default();
    match code {
        "ResourceNotFoundException" => CallError::NotFound(message.to_string()),
        "ProvisionedThroughputExceededException" | "LimitExceededException" => CallError::Throttled,
        "ExpiredIteratorException" => CallError::ExpiredIterator,
        "" => CallError::Other(
            aws_sdk_kinesis::error::DisplayErrorContext(e)
                .to_string()
                .chars()
                .take(300)
                .collect(),
        ),
        other => CallError::Other(format!("{other}: {message}")),
    }
}
