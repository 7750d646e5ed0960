//! How a request to an HTTP endpoint fails: [`HttpFailure`], one variant per failure the
//! engine acts on, and the Firehose error [`codes`] they report (users see these codes in the
//! error output's `errorCode` and in the metrics: they must not change).

use crate::error::{DestinationFailure, Failure};

/// The error codes this sink reports.
pub mod codes {
    /// The endpoint answered with a status other than 200.
    pub const DESTINATION_EXCEPTION: &str = "HttpEndpoint.DestinationException";
    /// The endpoint answered 200 with a body that does not conform.
    pub const INVALID_RESPONSE: &str = "HttpEndpoint.InvalidResponseFromDestination";
    /// No complete response within the request timeout.
    pub const REQUEST_TIMEOUT: &str = "HttpEndpoint.RequestTimeout";
    /// No connection could be made.
    pub const CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";
    /// The connection broke after it was made.
    pub const CONNECTION_RESET: &str = "HttpEndpoint.ConnectionReset";
    /// The response body was over 1 MiB.
    pub const RESPONSE_TOO_LARGE: &str = "HttpEndpoint.ResponseTooLarge";
}

/// A failed request to an HTTP endpoint (the message travels beside it in
/// [`crate::SinkError::Destination`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpFailure {
    /// The endpoint answered with this status, not 200. Retried, except 413: the endpoint will
    /// not take this request however often it is sent.
    Status(u16),
    /// The endpoint answered 200 with a response that does not conform. Retried.
    InvalidResponse,
    /// No complete response within the request timeout. Retried.
    RequestTimeout,
    /// No connection could be made (refused, DNS, TLS handshake). Retried.
    ConnectionFailed,
    /// The connection broke after it was made. Retried.
    ConnectionReset,
    /// The response body was over [`super::RESPONSE_BODY_BYTES_MAX`]. Retried.
    ResponseTooLarge,
}

impl Failure for HttpFailure {
    fn code_and_retry(self) -> (&'static str, bool) {
        match self {
            HttpFailure::Status(status) => (codes::DESTINATION_EXCEPTION, status != 413),
            HttpFailure::InvalidResponse => (codes::INVALID_RESPONSE, true),
            HttpFailure::RequestTimeout => (codes::REQUEST_TIMEOUT, true),
            HttpFailure::ConnectionFailed => (codes::CONNECTION_FAILED, true),
            HttpFailure::ConnectionReset => (codes::CONNECTION_RESET, true),
            HttpFailure::ResponseTooLarge => (codes::RESPONSE_TOO_LARGE, true),
        }
    }
}

impl From<HttpFailure> for DestinationFailure {
    fn from(failure: HttpFailure) -> DestinationFailure {
        DestinationFailure::HttpEndpoint(failure)
    }
}
