//! A lean Firehose JSON 1.1 client for `hydrant put` and the HTTP benchmarks: hyper's pooled
//! HTTP/1.1 client (keep-alive), rustls with ring for `https://` endpoints (no OpenSSL), and
//! optional SigV4 signing with the `aws-sigv4` crate (the one the AWS SDK signs with, and the one
//! hydrantd verifies with).

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hydrant_api::decode::TARGET_PREFIX;
use hydrant_api::CONTENT_TYPE;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The default endpoint: hydrantd's default listen address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4573";

/// What a Firehose call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("invalid endpoint {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    InvalidEndpoint(String),
    /// TLS could not be set up (no usable root certificates, say).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The request could not be signed.
    #[error("SigV4 signing: {0}")]
    Sign(String),
    /// No answer: connection refused or reset, a timeout.
    #[error("{endpoint}: {message}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        message: String,
    },
    /// The service answered with a Firehose error.
    #[error("{code} (HTTP {status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `__type`, without any namespace (`ResourceNotFoundException`).
        code: String,
        /// `message`.
        message: String,
    },
    /// A 200 reply that is not the operation's output.
    #[error("unexpected reply to {operation}: {message}")]
    Decode {
        /// The operation.
        operation: String,
        /// What was wrong.
        message: String,
    },
}

impl ClientError {
    /// True when sending the same request again may succeed: no answer, a 5xx, or
    /// ServiceUnavailableException / throttling.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Api { status, code, .. } => {
                *status >= 500
                    || code == "ServiceUnavailableException"
                    || code == "ThrottlingException"
                    || code == "LimitExceededException"
            }
            _ => false,
        }
    }
}

/// SigV4 credentials and region.
#[derive(Clone)]
pub struct Signer {
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The region in the credential scope.
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A Firehose client for one endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct FirehoseClient {
    endpoint: String,
    uri: Uri,
    host: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    signer: Option<Arc<Signer>>,
}

impl FirehoseClient {
    /// A client for `endpoint` (`http://host:port` or `https://host:port`), keeping up to
    /// `max_idle` idle keep-alive connections.
    ///
    /// # Errors
    /// [`ClientError::InvalidEndpoint`]; [`ClientError::Tls`] when `https://` has no usable
    /// root certificates.
    pub fn new(
        endpoint: &str,
        signer: Option<Signer>,
        max_idle: usize,
    ) -> Result<FirehoseClient, ClientError> {
        let invalid = || ClientError::InvalidEndpoint(endpoint.to_string());
        let uri: Uri = endpoint.parse().map_err(|_| invalid())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().ok_or_else(invalid)?.to_string();
        // ring, chosen explicitly: hydrant-sinks' S3 client enables aws-lc-rs in the same rustls,
        // and with two providers compiled in rustls has no default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if https {
            builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| ClientError::Tls(e.to_string()))?
        } else {
            // Plain HTTP never uses the TLS config: no need to load the system's roots.
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::Tls(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.with_tls_config(config)
        };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        Ok(FirehoseClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            uri,
            host: authority,
            client,
            signer: signer.map(Arc::new),
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one operation with a raw JSON body; returns the 200 reply's body.
    ///
    /// # Errors
    /// [`ClientError::Transport`], [`ClientError::Api`] for any other status, or
    /// [`ClientError::Sign`].
    pub async fn call_raw(&self, operation: &str, body: Bytes) -> Result<Bytes, ClientError> {
        let target = format!("{TARGET_PREFIX}{operation}");
        let mut request = Request::builder()
            .method("POST")
            .uri(self.uri.clone())
            .header("host", &self.host)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target)
            .body(Full::new(body.clone()))
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        if let Some(signer) = &self.signer {
            self.sign(signer, &mut request, &target, &body)?;
        }
        self.send(request).await
    }

    /// GETs `path` of the endpoint (`/metrics`, `/health/ready`): the 200 reply's body.
    ///
    /// # Errors
    /// [`ClientError::Transport`], or [`ClientError::Api`] for any other status.
    pub async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        let request = format!("{}{path}", self.endpoint)
            .parse::<Uri>()
            .map_err(|e| e.to_string())
            .and_then(|uri| {
                Request::builder()
                    .method("GET")
                    .uri(uri)
                    .header("host", &self.host)
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| e.to_string())
            })
            .map_err(|message| ClientError::Transport {
                endpoint: self.endpoint.clone(),
                message,
            })?;
        self.send(request).await
    }

    /// Sends `request`; returns the 200 reply's body, or the error the reply carries.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Bytes, ClientError> {
        let transport = |e: &dyn std::fmt::Display| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        };
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| transport(&ErrorChain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        if status == StatusCode::OK {
            return Ok(body);
        }
        Err(api_error(status, &body))
    }

    /// Sends one operation and decodes its output.
    ///
    /// # Errors
    /// As [`FirehoseClient::call_raw`], and [`ClientError::Decode`].
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        operation: &str,
        input: &I,
    ) -> Result<O, ClientError> {
        let body = serde_json::to_vec(input).map_err(|e| ClientError::Decode {
            operation: operation.to_string(),
            message: e.to_string(),
        })?;
        let reply = self.call_raw(operation, Bytes::from(body)).await?;
        serde_json::from_slice(&reply).map_err(|e| ClientError::Decode {
            operation: operation.to_string(),
            message: e.to_string(),
        })
    }

    fn sign(
        &self,
        signer: &Signer,
        request: &mut Request<Full<Bytes>>,
        target: &str,
        body: &[u8],
    ) -> Result<(), ClientError> {
        let err = |e: &dyn std::fmt::Display| ClientError::Sign(e.to_string());
        let identity: Identity = Credentials::new(
            &signer.access_key,
            &signer.secret_key,
            None,
            None,
            "hydrant-cli",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&signer.region)
            .name("firehose")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| err(&e))?
            .into();
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let uri = self.uri.to_string();
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| err(&e))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| err(&e))?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// A Firehose error reply: `{"__type": "...", "message": "..."}`, namespace stripped as botocore
/// does; the status code stands in for a missing `__type`.
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let code = field("__type")
        .map(|t| {
            let t = t.rsplit('#').next().unwrap_or(&t).to_string();
            t.split(':').next().unwrap_or(&t).to_string()
        })
        .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    }
}

/// Displays an error with its sources (hyper's client errors say "client error (Connect)" and
/// keep the reason in the source).
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_lose_their_namespace() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"__type":"com.amazonaws.firehose#ResourceNotFoundException","message":"no"}"#,
        );
        assert!(
            matches!(&e, ClientError::Api { code, message, .. } if code == "ResourceNotFoundException" && message == "no")
        );
        assert!(!e.is_retryable());
        let e = api_error(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(matches!(&e, ClientError::Api { code, .. } if code == "HTTP503"));
        assert!(e.is_retryable());
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        assert!(FirehoseClient::new("ftp://x", None, 1).is_err());
        assert!(FirehoseClient::new("http://127.0.0.1:4573", None, 1).is_ok());
    }
}
