//! How a `_bulk` request to an OpenSearch / Elasticsearch cluster fails: [`OpenSearchFailure`],
//! one variant per Firehose error code the sink reports (users see them in the error output's
//! `errorCode` and in the metrics: they must not change).

use crate::error::{DestinationFailure, Failure};

/// A failed request to the cluster (the message travels beside it in
/// [`crate::SinkError::Destination`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenSearchFailure {
    /// `OS.InvalidResponse`: the cluster's answer cannot be read (not a bulk response, the wrong
    /// number of items, too large). Retried.
    InvalidResponse,
    /// `OS.SigningFailed`: the request could not be signed with SigV4. Final.
    SigningFailed,
    /// `OS.DocumentsNotIndexed`: some documents got a transient refusal (429, 5xx). Retried.
    DocumentsNotIndexed,
    /// `OS.RequestTimeout`: no answer in time, or HTTP 408. Retried.
    RequestTimeout,
    /// `OS.ConnectionFailed`: no connection could be made. Retried.
    ConnectionFailed,
    /// `OS.ConnectionReset`: the connection broke. Retried.
    ConnectionReset,
    /// `OS.AccessDenied`: HTTP 401 or 403. Final.
    AccessDenied,
    /// `OS.TooManyRequests`: HTTP 429. Retried.
    TooManyRequests,
    /// `OS.ServiceException`: HTTP 5xx. Retried.
    ServiceException,
    /// `OS.MalformedData`: HTTP 400. Final.
    MalformedData,
    /// `OS.ResourceNotFound`: HTTP 404. Final.
    ResourceNotFound,
    /// `OS.RequestEntityTooLarge`: HTTP 413. Final.
    RequestEntityTooLarge,
    /// `OS.InvalidRequest`: any other status. Final.
    InvalidRequest,
}

impl OpenSearchFailure {
    /// The failure a whole-request HTTP status (not 200) means.
    pub fn from_status(status: u16) -> OpenSearchFailure {
        match status {
            401 | 403 => OpenSearchFailure::AccessDenied,
            408 => OpenSearchFailure::RequestTimeout,
            429 => OpenSearchFailure::TooManyRequests,
            500..=599 => OpenSearchFailure::ServiceException,
            400 => OpenSearchFailure::MalformedData,
            404 => OpenSearchFailure::ResourceNotFound,
            413 => OpenSearchFailure::RequestEntityTooLarge,
            _ => OpenSearchFailure::InvalidRequest,
        }
    }
}

impl Failure for OpenSearchFailure {
    fn code_and_retry(self) -> (&'static str, bool) {
        match self {
            OpenSearchFailure::InvalidResponse => ("OS.InvalidResponse", true),
            OpenSearchFailure::SigningFailed => ("OS.SigningFailed", false),
            OpenSearchFailure::DocumentsNotIndexed => ("OS.DocumentsNotIndexed", true),
            OpenSearchFailure::RequestTimeout => ("OS.RequestTimeout", true),
            OpenSearchFailure::ConnectionFailed => ("OS.ConnectionFailed", true),
            OpenSearchFailure::ConnectionReset => ("OS.ConnectionReset", true),
            OpenSearchFailure::AccessDenied => ("OS.AccessDenied", false),
            OpenSearchFailure::TooManyRequests => ("OS.TooManyRequests", true),
            OpenSearchFailure::ServiceException => ("OS.ServiceException", true),
            OpenSearchFailure::MalformedData => ("OS.MalformedData", false),
            OpenSearchFailure::ResourceNotFound => ("OS.ResourceNotFound", false),
            OpenSearchFailure::RequestEntityTooLarge => ("OS.RequestEntityTooLarge", false),
            OpenSearchFailure::InvalidRequest => ("OS.InvalidRequest", false),
        }
    }
}

impl From<OpenSearchFailure> for DestinationFailure {
    fn from(failure: OpenSearchFailure) -> DestinationFailure {
        DestinationFailure::OpenSearch(failure)
    }
}
