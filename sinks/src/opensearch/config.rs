//! The destination's configuration and the rules `CreateDeliveryStream` checks.

use std::fmt;
use std::time::Duration;

use super::IndexRotation;

/// The longest `IndexName` (characters), as the API model says.
pub const INDEX_NAME_CHARS_MAX: usize = 80;
/// The longest `TypeName` (characters), as the API model says.
pub const TYPE_NAME_CHARS_MAX: usize = 100;
/// The longest `ClusterEndpoint` (characters), as the API model says.
pub const ENDPOINT_CHARS_MAX: usize = 512;
/// The default request timeout.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(120);
/// Which Firehose destination this is: decides the error-output type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Flavor {
    /// `AmazonopensearchserviceDestinationConfiguration`: failures go under
    /// `AmazonOpenSearchService-failed`.
    #[default]
    OpenSearch,
    /// The legacy `ElasticsearchDestinationConfiguration`: failures go under
    /// `elasticsearch-failed`.
    Elasticsearch,
}

/// `DocumentIdOptions.DefaultDocumentIdFormat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DocumentIdFormat {
    /// `FIREHOSE_DEFAULT`: hydrant sets a deterministic `_id` per record (resends re-index).
    #[default]
    FirehoseDefault,
    /// `NO_DOCUMENT_ID`: no `_id`; the cluster generates one (resends may duplicate).
    NoDocumentId,
}

impl DocumentIdFormat {
    /// Parses the API value (`FIREHOSE_DEFAULT`, `NO_DOCUMENT_ID`).
    ///
    /// # Errors
    /// [`OpenSearchConfigError::DocumentIdFormat`] for any other string.
    pub fn parse(value: &str) -> Result<DocumentIdFormat, OpenSearchConfigError> {
        match value {
            "FIREHOSE_DEFAULT" => Ok(DocumentIdFormat::FirehoseDefault),
            "NO_DOCUMENT_ID" => Ok(DocumentIdFormat::NoDocumentId),
            other => Err(OpenSearchConfigError::DocumentIdFormat(other.to_owned())),
        }
    }

    /// The API value.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentIdFormat::FirehoseDefault => "FIREHOSE_DEFAULT",
            DocumentIdFormat::NoDocumentId => "NO_DOCUMENT_ID",
        }
    }
}

/// How the sink authenticates to the cluster.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ClusterAuth {
    /// No authentication (an open cluster, or one behind a trusted network).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// AWS Signature Version 4 for service `es` (OpenSearch Service with IAM access).
    SigV4 {
        /// The signing region (`us-east-1`).
        region: String,
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
        /// The session token of temporary credentials.
        session_token: Option<String>,
    },
}

impl fmt::Debug for ClusterAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach logs.
        match self {
            ClusterAuth::None => f.write_str("None"),
            ClusterAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            ClusterAuth::SigV4 {
                region,
                access_key_id,
                session_token,
                ..
            } => f
                .debug_struct("SigV4")
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field(
                    "session_token",
                    &session_token.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
        }
    }
}

/// A configuration the destination refuses (the engine answers `InvalidArgumentException`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenSearchConfigError {
    /// `IndexName` is empty or longer than [`INDEX_NAME_CHARS_MAX`] characters.
    #[error("IndexName must be 1 to {INDEX_NAME_CHARS_MAX} characters, got {0}")]
    IndexNameLength(usize),
    /// `TypeName` is longer than [`TYPE_NAME_CHARS_MAX`] characters.
    #[error("TypeName must be at most {TYPE_NAME_CHARS_MAX} characters, got {0}")]
    TypeNameLength(usize),
    /// `ClusterEndpoint` cannot be used.
    #[error("ClusterEndpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Not one of the `IndexRotationPeriod` values.
    #[error(
        "IndexRotationPeriod {0:?} is not one of NoRotation, OneHour, OneDay, OneWeek, OneMonth"
    )]
    IndexRotation(String),
    /// Not one of the `DefaultDocumentIdFormat` values.
    #[error("DefaultDocumentIdFormat {0:?} is not one of FIREHOSE_DEFAULT, NO_DOCUMENT_ID")]
    DocumentIdFormat(String),
    /// SigV4 credentials or region are empty.
    #[error("SigV4 authentication needs a region, an access key id and a secret access key")]
    SigV4Incomplete,
    /// The request timeout is zero.
    #[error("the request timeout must be above zero")]
    ZeroTimeout,
}

/// The destination's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSearchConfig {
    /// `ClusterEndpoint`: `https://host[:port][/path]`, without query, fragment or user info.
    pub endpoint: String,
    /// Allow plain `http` to a non-loopback host (a private network). Loopback `http` is always
    /// allowed.
    pub allow_insecure_http: bool,
    /// `IndexName` (1 to 80 characters); the rotation suffix is appended.
    pub index_name: String,
    /// `TypeName`: sent as `_type` only when set and not empty (Elasticsearch 6.x and earlier).
    pub type_name: Option<String>,
    /// `IndexRotationPeriod`.
    pub rotation: IndexRotation,
    /// OpenSearch Service or the legacy Elasticsearch destination.
    pub flavor: Flavor,
    /// `DocumentIdOptions.DefaultDocumentIdFormat`.
    pub document_ids: DocumentIdFormat,
    /// How to authenticate.
    pub auth: ClusterAuth,
    /// The whole-request timeout (connect, send, answer).
    pub request_timeout: Duration,
}

impl OpenSearchConfig {
    /// A configuration with Firehose's defaults: `OneDay` rotation, no type, OpenSearch,
    /// `FIREHOSE_DEFAULT` ids, no authentication, [`REQUEST_TIMEOUT_DEFAULT`].
    pub fn new(endpoint: impl Into<String>, index_name: impl Into<String>) -> OpenSearchConfig {
        OpenSearchConfig {
            endpoint: endpoint.into(),
            allow_insecure_http: false,
            index_name: index_name.into(),
            type_name: None,
            rotation: IndexRotation::default(),
            flavor: Flavor::default(),
            document_ids: DocumentIdFormat::default(),
            auth: ClusterAuth::None,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }

    /// Checks the configuration as `CreateDeliveryStream` / `UpdateDestination` would.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), OpenSearchConfigError> {
        validate_index_name(&self.index_name)?;
        if let Some(type_name) = &self.type_name {
            validate_type_name(type_name)?;
        }
        validate_endpoint(&self.endpoint, self.allow_insecure_http)?;
        if let ClusterAuth::SigV4 {
            region,
            access_key_id,
            secret_access_key,
            ..
        } = &self.auth
        {
            if region.is_empty() || access_key_id.is_empty() || secret_access_key.is_empty() {
                return Err(OpenSearchConfigError::SigV4Incomplete);
            }
        }
        if self.request_timeout.is_zero() {
            return Err(OpenSearchConfigError::ZeroTimeout);
        }
        Ok(())
    }

    /// The `_type` to send, if any.
    pub(crate) fn effective_type_name(&self) -> Option<&str> {
        self.type_name.as_deref().filter(|t| !t.is_empty())
    }
}

/// `IndexName`: 1 to [`INDEX_NAME_CHARS_MAX`] characters (the API model's pattern is `.*`).
/// The cluster's own rules (lowercase, no `\ / * ? " < > | , #` or space, no leading `_ - +`)
/// are left to it: a name it refuses fails each document with `400`, which goes to the error
/// output, as with Firehose.
///
/// # Errors
/// [`OpenSearchConfigError::IndexNameLength`].
pub fn validate_index_name(name: &str) -> Result<(), OpenSearchConfigError> {
    let chars = name.chars().count();
    if chars == 0 || chars > INDEX_NAME_CHARS_MAX {
        return Err(OpenSearchConfigError::IndexNameLength(chars));
    }
    Ok(())
}

/// `TypeName`: 0 to [`TYPE_NAME_CHARS_MAX`] characters.
///
/// # Errors
/// [`OpenSearchConfigError::TypeNameLength`].
pub fn validate_type_name(name: &str) -> Result<(), OpenSearchConfigError> {
    let chars = name.chars().count();
    if chars > TYPE_NAME_CHARS_MAX {
        return Err(OpenSearchConfigError::TypeNameLength(chars));
    }
    Ok(())
}

/// `ClusterEndpoint`: at most [`ENDPOINT_CHARS_MAX`] characters, `https` (the API model's
/// pattern is `https:.*`), or `http` to a loopback host (or any host when
/// `allow_insecure_http`); a host, no user info, query or fragment. Returns the `_bulk` URL.
///
/// # Errors
/// [`OpenSearchConfigError::Endpoint`].
pub fn validate_endpoint(
    endpoint: &str,
    allow_insecure_http: bool,
) -> Result<reqwest::Url, OpenSearchConfigError> {
    let refuse = |reason| OpenSearchConfigError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    if endpoint.is_empty() || endpoint.chars().count() > ENDPOINT_CHARS_MAX {
        return Err(refuse("must be 1 to 512 characters"));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|_| refuse("not a URL"))?;
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(refuse("has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !allow_insecure_http {
                return Err(refuse("plain http is allowed to loopback addresses only"));
            }
        }
        _ => return Err(refuse("the scheme must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "must not carry credentials (configure authentication instead)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must not have a query or fragment"));
    }
    let mut bulk = url.clone();
    let path = format!("{}/_bulk", url.path().trim_end_matches('/'));
    bulk.set_path(&path);
    Ok(bulk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rules() {
        let ok = |e: &str| validate_endpoint(e, false).map(|u| u.to_string());
        assert_eq!(
            ok("https://search-x.us-east-1.es.amazonaws.com")
                .ok()
                .as_deref(),
            Some("https://search-x.us-east-1.es.amazonaws.com/_bulk")
        );
        assert_eq!(
            ok("https://proxy.example/os/").ok().as_deref(),
            Some("https://proxy.example/os/_bulk")
        );
        assert!(ok("http://127.0.0.1:9200").is_ok());
        assert!(ok("http://[::1]:9200").is_ok());
        assert!(ok("http://localhost:9200").is_ok());
        assert!(ok("http://search.example:9200").is_err());
        assert!(validate_endpoint("http://search.example:9200", true).is_ok());
        assert!(ok("ftp://search.example").is_err());
        assert!(ok("https://user:pw@search.example").is_err());
        assert!(ok("https://search.example/?x=1").is_err());
        assert!(ok("search.example").is_err());
        assert!(ok("").is_err());
        assert!(ok(&format!("https://{}.example", "a".repeat(510))).is_err());
    }

    #[test]
    fn name_rules_and_api_values() {
        assert!(validate_index_name("").is_err());
        assert!(validate_index_name(&"i".repeat(80)).is_ok());
        assert!(validate_index_name(&"i".repeat(81)).is_err());
        assert!(validate_type_name("").is_ok());
        assert!(validate_type_name(&"t".repeat(101)).is_err());
        assert_eq!(
            DocumentIdFormat::parse("NO_DOCUMENT_ID").ok(),
            Some(DocumentIdFormat::NoDocumentId)
        );
        assert!(DocumentIdFormat::parse("no_document_id").is_err());
        let mut config = OpenSearchConfig::new("http://127.0.0.1:9200", "logs");
        assert_eq!(config.validate(), Ok(()));
        config.auth = ClusterAuth::SigV4 {
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        assert_eq!(
            config.validate(),
            Err(OpenSearchConfigError::SigV4Incomplete)
        );
        config.auth = ClusterAuth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
