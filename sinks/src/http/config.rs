//! The HTTP endpoint's configuration: [`HttpEndpointConfig`] (URL, name, access key, common
//! attributes, content encoding, timeout) and the rules `CreateDeliveryStream` and
//! `UpdateDestination` check it against ([`HttpEndpointConfig::validate`], [`HttpConfigError`]).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;

/// How long an endpoint has to answer, by default (Firehose's 3 minutes).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// `HttpEndpointUrl`: length 1 to 1000, pattern `https://.*`.
pub const URL_CHARS_MAX: usize = 1000;
/// `HttpEndpointName`: length 1 to 256, pattern `^(?!\s*$).+`.
pub const NAME_CHARS_MAX: usize = 256;
/// `HttpEndpointAccessKey`: length 0 to 4096, pattern `.*`.
pub const ACCESS_KEY_CHARS_MAX: usize = 4096;
/// `HttpEndpointCommonAttributesList`: 0 to 50 attributes.
pub const COMMON_ATTRIBUTES_MAX: usize = 50;
/// `HttpEndpointAttributeName`: length 1 to 256, pattern `^(?!\s*$).+`.
pub const ATTRIBUTE_NAME_CHARS_MAX: usize = 256;
/// `HttpEndpointAttributeValue`: length 0 to 1024, pattern `.*`.
pub const ATTRIBUTE_VALUE_CHARS_MAX: usize = 1024;

/// `ContentEncoding` of the request configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    /// `NONE` (the default): the body is sent as is, without a `Content-Encoding` header.
    #[default]
    None,
    /// `GZIP`: the body is gzipped and sent with `Content-Encoding: gzip`.
    Gzip,
}

impl ContentEncoding {
    /// The API value: `NONE` or `GZIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::None => "NONE",
            ContentEncoding::Gzip => "GZIP",
        }
    }

    /// Parses the API value (`NONE` or `GZIP`, exactly).
    pub fn from_api(value: &str) -> Option<ContentEncoding> {
        match value {
            "NONE" => Some(ContentEncoding::None),
            "GZIP" => Some(ContentEncoding::Gzip),
            _ => None,
        }
    }
}

/// The configuration of one HTTP endpoint destination.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpEndpointConfig {
    /// `EndpointConfiguration.Url`: where the batches are POSTed, path and query verbatim.
    pub url: String,
    /// `EndpointConfiguration.Name`: a label for logs.
    pub name: Option<String>,
    /// `EndpointConfiguration.AccessKey`: sent as `X-Amz-Firehose-Access-Key`.
    pub access_key: Option<String>,
    /// `RequestConfiguration.CommonAttributes` (name, value), in order: sent as
    /// `X-Amz-Firehose-Common-Attributes` when not empty.
    pub common_attributes: Vec<(String, String)>,
    /// `RequestConfiguration.ContentEncoding`.
    pub content_encoding: ContentEncoding,
    /// The stream's ARN, sent as `X-Amz-Firehose-Source-Arn`.
    pub source_arn: String,
    /// How long the endpoint has to answer one request ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// hydrant's own switch: allow plain `http://` to hosts that are not loopback. Off by default,
    /// since the access key and the data would cross the network in clear.
    pub allow_plain_http: bool,
}

impl fmt::Debug for HttpEndpointConfig {
    // The URL, access key and attributes are sensitive in Firehose's model: not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEndpointConfig")
            .field("name", &self.name)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("common_attributes", &self.common_attributes.len())
            .field("content_encoding", &self.content_encoding)
            .field("source_arn", &self.source_arn)
            .field("request_timeout", &self.request_timeout)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
    }
}

impl HttpEndpointConfig {
    /// A configuration for `url` with the defaults: no name, access key or common attributes,
    /// no content encoding, a 3-minute request timeout, https (or loopback http) only.
    pub fn new(url: impl Into<String>, source_arn: impl Into<String>) -> HttpEndpointConfig {
        HttpEndpointConfig {
            url: url.into(),
            name: None,
            access_key: None,
            common_attributes: Vec::new(),
            content_encoding: ContentEncoding::None,
            source_arn: source_arn.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            allow_plain_http: false,
        }
    }

    /// Checks the configuration against Firehose's rules (the botocore model's `HttpEndpointUrl`,
    /// `HttpEndpointName`, `HttpEndpointAccessKey`, `HttpEndpointCommonAttributesList`,
    /// `HttpEndpointAttributeName` and `HttpEndpointAttributeValue`) and hydrant's: what
    /// `CreateDeliveryStream` and `UpdateDestination` run before accepting it.
    ///
    /// Lengths count characters. `.` in the model's patterns matches any character but a line
    /// terminator, so none may contain one. On top of the model: the URL must parse and have a
    /// host; `http://` is accepted for loopback hosts, or any host with
    /// [`HttpEndpointConfig::allow_plain_http`]; attribute names are unique (they become the
    /// keys of one JSON object); the access key and the source ARN must be sendable as header
    /// values; the request timeout is above zero.
    ///
    /// # Errors
    /// The first rule broken, as an [`HttpConfigError`].
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        self.checked_url().map(|_| ())
    }

    /// [`HttpEndpointConfig::validate`], returning the parsed URL.
    pub(super) fn checked_url(&self) -> Result<reqwest::Url, HttpConfigError> {
        let url = validate_url(&self.url, self.allow_plain_http)?;
        if let Some(name) = &self.name {
            check_text(name, 1, NAME_CHARS_MAX, true)
                .map_err(|reason| HttpConfigError::Name { reason })?;
        }
        if let Some(key) = &self.access_key {
            check_text(key, 0, ACCESS_KEY_CHARS_MAX, false)
                .map_err(|reason| HttpConfigError::AccessKey { reason })?;
            if HeaderValue::from_bytes(key.as_bytes()).is_err() {
                return Err(HttpConfigError::AccessKey {
                    reason: "must not contain control characters",
                });
            }
        }
        validate_common_attributes(&self.common_attributes)?;
        if self.source_arn.is_empty() || HeaderValue::from_str(&self.source_arn).is_err() {
            return Err(HttpConfigError::SourceArn);
        }
        if self.request_timeout.is_zero() {
            return Err(HttpConfigError::RequestTimeout);
        }
        Ok(url)
    }
}

/// A rule of [`HttpEndpointConfig::validate`] that the configuration breaks. The messages name
/// the API member and never echo the (sensitive) values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    /// `Url` breaks the length or pattern rule, or is not a URL with a host.
    #[error("EndpointConfiguration.Url: {reason}")]
    Url {
        /// The rule broken.
        reason: Cow<'static, str>,
    },
    /// `Url` is plain `http://` to a host that is not loopback, and plain http is not allowed.
    #[error(
        "EndpointConfiguration.Url: plain http to a host that is not loopback is refused: \
         use https:// (or allow plain http)"
    )]
    PlainHttp,
    /// `Name` breaks its length or pattern rule.
    #[error("EndpointConfiguration.Name: {reason}")]
    Name {
        /// The rule broken.
        reason: &'static str,
    },
    /// `AccessKey` breaks its length or pattern rule, or cannot be sent as a header value.
    #[error("EndpointConfiguration.AccessKey: {reason}")]
    AccessKey {
        /// The rule broken.
        reason: &'static str,
    },
    /// More than 50 common attributes.
    #[error("RequestConfiguration.CommonAttributes: {count} attributes, at most 50 allowed")]
    TooManyAttributes {
        /// How many were given.
        count: usize,
    },
    /// An `AttributeName` breaks its length or pattern rule.
    #[error("RequestConfiguration.CommonAttributes[{index}].AttributeName: {reason}")]
    AttributeName {
        /// The attribute's position (from 0).
        index: usize,
        /// The rule broken.
        reason: &'static str,
    },
    /// An `AttributeValue` breaks its length or pattern rule.
    #[error("RequestConfiguration.CommonAttributes[{index}].AttributeValue: {reason}")]
    AttributeValue {
        /// The attribute's position (from 0).
        index: usize,
        /// The rule broken.
        reason: &'static str,
    },
    /// Two attributes have the same name.
    #[error(
        "RequestConfiguration.CommonAttributes[{index}].AttributeName: the same name appears \
         earlier in the list"
    )]
    DuplicateAttribute {
        /// The position (from 0) of the second one.
        index: usize,
    },
    /// The stream ARN is empty or cannot be sent as a header value.
    #[error("source ARN: must be a non-empty ASCII string")]
    SourceArn,
    /// The request timeout is zero.
    #[error("request timeout must be above zero")]
    RequestTimeout,
}

impl HttpConfigError {
    /// The API member the error is about (`EndpointConfiguration.Url`, ...), for an
    /// `InvalidArgumentException` message.
    pub fn member(&self) -> &'static str {
        match self {
            HttpConfigError::Url { .. } | HttpConfigError::PlainHttp => "EndpointConfiguration.Url",
            HttpConfigError::Name { .. } => "EndpointConfiguration.Name",
            HttpConfigError::AccessKey { .. } => "EndpointConfiguration.AccessKey",
            HttpConfigError::TooManyAttributes { .. }
            | HttpConfigError::AttributeName { .. }
            | HttpConfigError::AttributeValue { .. }
            | HttpConfigError::DuplicateAttribute { .. } => "RequestConfiguration.CommonAttributes",
            HttpConfigError::SourceArn => "SourceArn",
            HttpConfigError::RequestTimeout => "RequestTimeout",
        }
    }
}

/// Java's line terminators: what `.` in the model's patterns does not match.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Java's `\s`.
fn is_pattern_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Length (in characters) and pattern (`.*`, or `^(?!\s*$).+` when `not_blank`).
fn check_text(
    value: &str,
    min_chars: usize,
    max_chars: usize,
    not_blank: bool,
) -> Result<(), &'static str> {
    let chars = value.chars().count();
    if chars < min_chars {
        return Err(if min_chars == 1 {
            "must not be empty"
        } else {
            "too short"
        });
    }
    if chars > max_chars {
        return Err(match max_chars {
            NAME_CHARS_MAX => "at most 256 characters",
            ACCESS_KEY_CHARS_MAX => "at most 4096 characters",
            ATTRIBUTE_VALUE_CHARS_MAX => "at most 1024 characters",
            _ => "too long",
        });
    }
    if value.chars().any(is_line_terminator) {
        return Err("must not contain a line break");
    }
    if not_blank && value.chars().all(is_pattern_space) {
        return Err("must not be only whitespace");
    }
    Ok(())
}

/// The URL rules: length 1 to 1000, `https://.*`, or `http://` where allowed; parses, has a host.
fn validate_url(url: &str, allow_plain_http: bool) -> Result<reqwest::Url, HttpConfigError> {
    let invalid = |reason: &'static str| HttpConfigError::Url {
        reason: Cow::Borrowed(reason),
    };
    let chars = url.chars().count();
    if chars == 0 {
        return Err(invalid("must not be empty"));
    }
    if chars > URL_CHARS_MAX {
        return Err(invalid("at most 1000 characters"));
    }
    if url.chars().any(is_line_terminator) {
        return Err(invalid("must not contain a line break"));
    }
    let plain = if url.starts_with("https://") {
        false
    } else if url.starts_with("http://") {
        true
    } else {
        return Err(invalid("must match the pattern https://.*"));
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| HttpConfigError::Url {
        reason: Cow::Owned(format!("not a valid URL: {e}")),
    })?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(invalid("has no host"));
    };
    if plain && !allow_plain_http && !is_loopback(host) {
        return Err(HttpConfigError::PlainHttp);
    }
    Ok(parsed)
}

/// A loopback address, `localhost` or a name under `.localhost` (RFC 6761).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn validate_common_attributes(attributes: &[(String, String)]) -> Result<(), HttpConfigError> {
    if attributes.len() > COMMON_ATTRIBUTES_MAX {
        return Err(HttpConfigError::TooManyAttributes {
            count: attributes.len(),
        });
    }
    for (index, (name, value)) in attributes.iter().enumerate() {
        check_text(name, 1, ATTRIBUTE_NAME_CHARS_MAX, true)
            .map_err(|reason| HttpConfigError::AttributeName { index, reason })?;
        check_text(value, 0, ATTRIBUTE_VALUE_CHARS_MAX, false)
            .map_err(|reason| HttpConfigError::AttributeValue { index, reason })?;
        if attributes[..index]
            .iter()
            .any(|(earlier, _)| earlier == name)
        {
            return Err(HttpConfigError::DuplicateAttribute { index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::http::testing::config;
    use crate::http::HttpEndpointSink;
    use crate::SinkError;

    #[test]
    fn url_rules() {
        assert!(config("https://example.com/ingest?x=1").validate().is_ok());
        assert!(config("https://example.com:8443").validate().is_ok());
        assert!(config("http://127.0.0.1:9/x").validate().is_ok());
        assert!(config("http://[::1]:9/x").validate().is_ok());
        assert!(config("http://localhost:9/x").validate().is_ok());
        assert!(config("http://a.localhost/").validate().is_ok());
        assert_eq!(
            config("http://example.com/").validate(),
            Err(HttpConfigError::PlainHttp)
        );
        assert_eq!(
            config("http://10.0.0.1/").validate(),
            Err(HttpConfigError::PlainHttp)
        );
        let mut allowed = config("http://example.com/");
        allowed.allow_plain_http = true;
        assert!(allowed.validate().is_ok());
        for bad in [
            "",
            "ftp://example.com",
            "HTTPS://example.com",
            "example.com",
            "https://exa\nmple.com",
            "https://",
        ] {
            let err = config(bad).validate().unwrap_err();
            assert!(matches!(err, HttpConfigError::Url { .. }), "{bad:?}: {err}");
            assert_eq!(err.member(), "EndpointConfiguration.Url");
        }
        let long = format!("https://example.com/{}", "a".repeat(URL_CHARS_MAX - 20));
        assert_eq!(long.len(), URL_CHARS_MAX);
        assert!(config(&long).validate().is_ok());
        let err = config(&format!("{long}a")).validate().unwrap_err();
        assert!(err.to_string().contains("1000"), "{err}");
    }

    #[test]
    fn name_and_access_key_rules() {
        let with = |name: Option<&str>, key: Option<&str>| {
            let mut c = config("https://e.com");
            c.name = name.map(str::to_owned);
            c.access_key = key.map(str::to_owned);
            c.validate()
        };
        assert!(with(Some("n"), Some("")).is_ok());
        assert!(with(Some(&"é".repeat(256)), Some(&"k".repeat(4096))).is_ok());
        assert!(matches!(
            with(Some(""), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some(" \t "), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some(&"n".repeat(257)), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(Some("a\nb"), None),
            Err(HttpConfigError::Name { .. })
        ));
        assert!(matches!(
            with(None, Some(&"k".repeat(4097))),
            Err(HttpConfigError::AccessKey { .. })
        ));
        assert!(matches!(
            with(None, Some("a\rb")),
            Err(HttpConfigError::AccessKey { .. })
        ));
        assert!(matches!(
            with(None, Some("a\u{1}b")),
            Err(HttpConfigError::AccessKey { .. })
        ));
        // The message never echoes the key.
        let err = with(None, Some("secret\n")).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn common_attribute_rules() {
        let with = |attributes: Vec<(String, String)>| {
            let mut c = config("https://e.com");
            c.common_attributes = attributes;
            c.validate()
        };
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let fifty: Vec<_> = (0..50).map(|i| pair(&format!("k{i}"), "")).collect();
        assert!(with(fifty.clone()).is_ok());
        let mut fifty_one = fifty;
        fifty_one.push(pair("k50", "v"));
        assert_eq!(
            with(fifty_one),
            Err(HttpConfigError::TooManyAttributes { count: 51 })
        );
        assert!(with(vec![pair(&"k".repeat(256), &"v".repeat(1024))]).is_ok());
        assert_eq!(
            with(vec![pair("a", "1"), pair(&"k".repeat(257), "")]),
            Err(HttpConfigError::AttributeName {
                index: 1,
                reason: "at most 256 characters"
            })
        );
        assert!(matches!(
            with(vec![pair("", "v")]),
            Err(HttpConfigError::AttributeName { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("  ", "v")]),
            Err(HttpConfigError::AttributeName { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("k", &"v".repeat(1025))]),
            Err(HttpConfigError::AttributeValue { index: 0, .. })
        ));
        assert!(matches!(
            with(vec![pair("k", "a\u{2028}b")]),
            Err(HttpConfigError::AttributeValue { index: 0, .. })
        ));
        assert_eq!(
            with(vec![pair("k", "1"), pair("j", "2"), pair("k", "3")]),
            Err(HttpConfigError::DuplicateAttribute { index: 2 })
        );
    }

    #[test]
    fn other_rules() {
        let mut c = config("https://e.com");
        c.request_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(HttpConfigError::RequestTimeout));
        let mut c = config("https://e.com");
        c.source_arn = String::new();
        assert_eq!(c.validate(), Err(HttpConfigError::SourceArn));
        assert!(matches!(
            HttpEndpointSink::new(config("http://example.com")),
            Err(SinkError::Config(_))
        ));
        assert_eq!(
            ContentEncoding::from_api("GZIP"),
            Some(ContentEncoding::Gzip)
        );
        assert_eq!(ContentEncoding::from_api("gzip"), None);
        assert_eq!(ContentEncoding::None.as_str(), "NONE");
    }
}
