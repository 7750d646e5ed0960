//! [`S3Store`]: objects in an S3-compatible bucket, through aws-sdk-s3.
//!
//! The endpoint, region, addressing style and credentials come from [`S3Config`]; without an
//! endpoint the SDK resolves AWS's own for the region. Credentials are either given in the config
//! or read from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally
//! `AWS_SESSION_TOKEN`) when the store is built; hydrant does not pull in aws-config's provider
//! chain (profiles, IMDS, SSO), which keeps the dependency tree small.
//!
//! Objects up to [`S3Config::multipart_threshold_bytes`] go up in one `PutObject`; larger ones as a
//! multipart upload of [`S3Config::multipart_part_bytes`] parts, a few in flight at once. A failed
//! multipart upload is aborted, so no parts linger. A crash in the middle of one can still leave an
//! incomplete upload behind (S3 never shows it as an object); a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) reclaims those. Either way the object appears whole or not at
//! all, and a retry with the same key replaces it.
//!
//! Server-side encryption ([`ServerSideEncryption`]: SSE-S3 or SSE-KMS with a key id) is asked
//! for on every object write, PutObject and CreateMultipartUpload alike.
//!
//! TLS is rustls (aws-lc-rs) through the SDK's default HTTPS client; plain `http://` endpoints work
//! too (tests, a local MinIO).

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption as SdkSse,
};
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::store::{ObjectStore, PutObject, OBJECT_CONTENT_TYPE};
use crate::{BoxFuture, SinkError};

/// The smallest part S3 accepts (but for the last).
pub const MULTIPART_PART_BYTES_MIN: usize = 5 * 1024 * 1024;
/// The most parts one upload may have.
pub const MULTIPART_PARTS_MAX: usize = 10_000;

/// Where the credentials come from.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum S3Credentials {
    /// Read `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` when the store is
    /// built.
    #[default]
    Environment,
    /// Keys given in the configuration.
    Static {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
        /// A session token, for temporary credentials.
        session_token: Option<String>,
    },
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets into logs.
        match self {
            S3Credentials::Environment => f.write_str("Environment"),
            S3Credentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish_non_exhaustive(),
        }
    }
}

/// How to reach an S3-compatible service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// The endpoint URL (`http://127.0.0.1:9000`); `None` for AWS's own endpoint of the region.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted style
    /// (`bucket.endpoint/key`). Most self-hosted servers need it.
    pub force_path_style: bool,
    /// Where the credentials come from.
    pub credentials: S3Credentials,
    /// Objects larger than this go up as multipart uploads.
    pub multipart_threshold_bytes: usize,
    /// The size of each part but the last (at least [`MULTIPART_PART_BYTES_MIN`]; grown if an
    /// object would need more than [`MULTIPART_PARTS_MAX`] parts).
    pub multipart_part_bytes: usize,
    /// How many parts are uploaded at once.
    pub multipart_concurrency: usize,
    /// Attempts per request, the SDK's own retries included (the engine retries on top).
    pub max_attempts: u32,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one attempt of one request may take.
    pub attempt_timeout: Duration,
}

impl Default for S3Config {
    fn default() -> S3Config {
        S3Config {
            endpoint: None,
            region: "us-east-1".to_string(),
            force_path_style: false,
            credentials: S3Credentials::Environment,
            multipart_threshold_bytes: 16 * 1024 * 1024,
            multipart_part_bytes: 8 * 1024 * 1024,
            multipart_concurrency: 4,
            max_attempts: 3,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

/// Server-side encryption asked for on every object write (PutObject and
/// CreateMultipartUpload), as Firehose asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// Nothing sent (`NoEncryptionConfig`, and no `[s3] server_side_encryption`): the bucket's
    /// default applies.
    #[default]
    None,
    /// `x-amz-server-side-encryption: AES256` (SSE-S3; the daemon's
    /// `[s3] server_side_encryption = "AES256"`).
    Aes256,
    /// `x-amz-server-side-encryption: aws:kms` and
    /// `x-amz-server-side-encryption-aws-kms-key-id: <key>` (`KMSEncryptionConfig.AWSKMSKeyARN`).
    Kms {
        /// The key ARN.
        key_id: String,
    },
}

/// Objects in one S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    encryption: ServerSideEncryption,
    endpoint: Option<String>,
    multipart_threshold_bytes: usize,
    multipart_part_bytes: usize,
    multipart_concurrency: usize,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("encryption", &self.encryption)
            .field("endpoint", &self.endpoint)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .field("multipart_part_bytes", &self.multipart_part_bytes)
            .finish_non_exhaustive()
    }
}

/// Builds an SDK client from `config`.
///
/// # Errors
/// [`SinkError::Config`] when the credentials are missing or the multipart settings are invalid.
pub fn build_client(config: &S3Config) -> Result<Client, SinkError> {
    let credentials = match &config.credentials {
        S3Credentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.clone(),
            None,
            "hydrant-config",
        ),
        S3Credentials::Environment => credentials_from_lookup(|name| std::env::var(name).ok())?,
    };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout)
        .operation_attempt_timeout(config.attempt_timeout)
        .build();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(config.force_path_style)
        .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
        .timeout_config(timeouts);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(Client::from_conf(builder.build()))
}

/// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, looked
/// up through `lookup` (the process environment, or a map in tests). Empty values count as unset.
fn credentials_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, SinkError> {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => Err(SinkError::Config(
            "no S3 credentials: set them in the configuration, or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY"
                .to_string(),
        )),
    }
}

impl S3Store {
    /// A store for `bucket`, with a client built from `config`.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the credentials are missing or the multipart settings invalid.
    pub fn new(config: &S3Config, bucket: &str) -> Result<S3Store, SinkError> {
        let client = build_client(config)?;
        S3Store::with_client(client, config, bucket)
    }

    /// A store for `bucket` that uses an existing client (for several buckets on one endpoint);
    /// only the multipart settings of `config` are used.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the multipart settings are invalid.
    pub fn with_client(
        client: Client,
        config: &S3Config,
        bucket: &str,
    ) -> Result<S3Store, SinkError> {
        if config.multipart_part_bytes < MULTIPART_PART_BYTES_MIN {
            return Err(SinkError::Config(format!(
                "multipart part size {} is below S3's minimum of {MULTIPART_PART_BYTES_MIN} bytes",
                config.multipart_part_bytes
            )));
        }
        if config.multipart_threshold_bytes < config.multipart_part_bytes {
            return Err(SinkError::Config(
                "the multipart threshold must be at least the part size".to_string(),
            ));
        }
        if bucket.is_empty() {
            return Err(SinkError::Config("empty bucket name".to_string()));
        }
        Ok(S3Store {
            client,
            bucket: bucket.to_string(),
            encryption: ServerSideEncryption::None,
            endpoint: config.endpoint.clone(),
            multipart_threshold_bytes: config.multipart_threshold_bytes,
            multipart_part_bytes: config.multipart_part_bytes,
            multipart_concurrency: config.multipart_concurrency.max(1),
        })
    }

    /// The same store, asking for `encryption` on every object write.
    #[must_use]
    pub fn with_encryption(mut self, encryption: ServerSideEncryption) -> S3Store {
        self.encryption = encryption;
        self
    }

    /// The (sdk) encryption headers of an object write.
    fn sse(&self) -> (Option<SdkSse>, Option<String>) {
        match &self.encryption {
            ServerSideEncryption::None => (None, None),
            ServerSideEncryption::Aes256 => (Some(SdkSse::Aes256), None),
            ServerSideEncryption::Kms { key_id } => (Some(SdkSse::AwsKms), Some(key_id.clone())),
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_single(&self, key: &str, object: PutObject) -> Result<(), SinkError> {
        let (sse, kms_key) = self.sse();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .content_type(OBJECT_CONTENT_TYPE)
            .set_content_encoding(object.content_encoding.map(str::to_string))
            .body(ByteStream::from(object.body.to_bytes()))
            .send()
            .await
            .map_err(|e| map_sdk_error("PutObject", e))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str, object: PutObject) -> Result<(), SinkError> {
        let (sse, kms_key) = self.sse();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .content_type(OBJECT_CONTENT_TYPE)
            .set_content_encoding(object.content_encoding.map(str::to_string))
            // Part checksums travel with each part and are checked again on completion.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| map_sdk_error("CreateMultipartUpload", e))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(SinkError::S3Client {
                operation: "CreateMultipartUpload",
                message: "the response carried no upload id".to_string(),
            });
        };
        let result = self
            .upload_parts_and_complete(key, &upload_id, object.body.to_bytes())
            .await;
        if let Err(error) = &result {
            // Without the abort the parts would be stored (and billed) until a lifecycle rule
            // removes them. The abort's own failure changes nothing for the caller.
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(abort_error) = abort {
                tracing::warn!(
                    bucket = %self.bucket, key, upload_id, %error,
                    abort_error = %DisplayErrorContext(&abort_error),
                    "could not abort a failed multipart upload"
                );
            }
        }
        result
    }

    async fn upload_parts_and_complete(
        &self,
        key: &str,
        upload_id: &str,
        body: Bytes,
    ) -> Result<(), SinkError> {
        let part_bytes = self
            .multipart_part_bytes
            .max(body.len().div_ceil(MULTIPART_PARTS_MAX));
        let ranges: Vec<(i32, usize, usize)> = (0..body.len())
            .step_by(part_bytes)
            .zip(1i32..)
            .map(|(start, number)| (number, start, (start + part_bytes).min(body.len())))
            .collect();
        let mut pending = ranges.into_iter();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut parts = Vec::new();
        loop {
            while in_flight.len() < self.multipart_concurrency {
                let Some((number, start, end)) = pending.next() else {
                    break;
                };
                let request = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(body.slice(start..end)));
                in_flight.spawn(async move {
                    let output = request
                        .send()
                        .await
                        .map_err(|e| map_sdk_error("UploadPart", e))?;
                    Ok::<_, SinkError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(output.e_tag().map(str::to_string))
                            .set_checksum_crc32(output.checksum_crc32().map(str::to_string))
                            .build(),
                    )
                });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            // Dropping the set on the error path cancels the other parts.
            let part = joined.map_err(|e| SinkError::Task(e.to_string()))??;
            parts.push(part);
            if parts.len() == 1 {
                // A part is in S3, the upload is not complete: no object under the key yet.
                crate::crash::crash_point("delivery::mid_upload");
            }
        }
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map_sdk_error("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, SinkError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| match map_sdk_error("GetObject", e) {
                SinkError::S3Service { code, .. } if code == "NoSuchKey" => SinkError::NotFound {
                    key: key.to_string(),
                },
                other => other,
            })?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| SinkError::S3Unreachable {
                operation: "GetObject",
                message: e.to_string(),
            })?;
        Ok(body.into_bytes())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("ListObjectsV2", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Turns an SDK error into a classified [`SinkError`].
pub(crate) fn map_sdk_error<E>(operation: &'static str, error: SdkError<E>) -> SinkError
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let err = context.err();
            let code = err
                .code()
                .filter(|c| !c.is_empty())
                .map_or_else(|| format!("Http{status}"), str::to_string);
            SinkError::S3Service {
                operation,
                code,
                status,
                message: err.message().unwrap_or_default().to_string(),
                request_id: err.request_id().map(str::to_string),
            }
        }
        SdkError::TimeoutError(_) => SinkError::S3Timeout { operation, message },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            SinkError::S3Timeout { operation, message }
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => {
            // The request could not be sent as built (no credentials, a bad endpoint URL): the
            // configuration has to change before a retry can work.
            SinkError::Config(message)
        }
        SdkError::DispatchFailure(_) => SinkError::S3Unreachable { operation, message },
        SdkError::ConstructionFailure(_) => SinkError::Config(message),
        _ => SinkError::S3Client { operation, message },
    }
}

impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn put_object<'a>(
        &'a self,
        key: &'a str,
        object: PutObject,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if object.body.len() > self.multipart_threshold_bytes {
                self.put_multipart(key, object).await
            } else {
                self.put_single(key, object).await
            }
        })
    }

    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, SinkError>> {
        Box::pin(self.get(key))
    }

    fn list_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, SinkError>> {
        Box::pin(self.list(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = S3Config {
            credentials: S3Credentials::Static {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG".into(),
                session_token: Some("token-secret".into()),
            },
            ..S3Config::default()
        };
        let text = format!("{config:?}");
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("wJalrXUtnFEMI"));
        assert!(!text.contains("token-secret"));
    }

    #[test]
    fn environment_credentials() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let full = credentials_from_lookup(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]));
        let full = full.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.access_key_id(), "AKID");
        assert_eq!(full.secret_access_key(), "secret");
        assert_eq!(full.session_token(), Some("token"));
        let no_token = credentials_from_lookup(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]));
        assert_eq!(
            no_token
                .ok()
                .and_then(|c| c.session_token().map(str::to_string)),
            None
        );
        for missing in [
            &[("AWS_ACCESS_KEY_ID", "AKID")][..],
            &[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "")][..],
            &[][..],
        ] {
            assert!(matches!(
                credentials_from_lookup(env(missing)),
                Err(SinkError::Config(_))
            ));
        }
    }

    #[test]
    fn multipart_settings_are_checked() {
        let static_keys = S3Credentials::Static {
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        let base = S3Config {
            endpoint: Some("http://127.0.0.1:1".into()),
            credentials: static_keys,
            ..S3Config::default()
        };
        assert!(S3Store::new(&base, "b").is_ok());
        let small_parts = S3Config {
            multipart_part_bytes: 1024,
            ..base.clone()
        };
        assert!(matches!(
            S3Store::new(&small_parts, "b"),
            Err(SinkError::Config(_))
        ));
        let low_threshold = S3Config {
            multipart_threshold_bytes: 5 * 1024 * 1024,
            ..base.clone()
        };
        assert!(matches!(
            S3Store::new(&low_threshold, "b"),
            Err(SinkError::Config(_))
        ));
        assert!(matches!(S3Store::new(&base, ""), Err(SinkError::Config(_))));
    }
}
