//! Firehose's error replies: `{"__type": "...", "message": "..."}` with the HTTP status.
//!
//! Every error is a client fault answered with HTTP 400, except ServiceUnavailableException
//! (a server fault: 503, which every SDK's standard retry retries) and InternalFailure (500).

use std::fmt;

/// The error codes hydrant answers with. The names are Firehose's (and AWS's generic ones for
/// authentication), exactly as they appear in `__type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A parameter is invalid: bad name, limits exceeded, unsupported configuration.
    InvalidArgument,
    /// The stream does not exist (or is not ACTIVE for a put).
    ResourceNotFound,
    /// The stream exists already, or is in a state that forbids the operation.
    ResourceInUse,
    /// A limit on streams or tags would be exceeded.
    LimitExceeded,
    /// `CurrentDeliveryStreamVersionId` is not the current version.
    ConcurrentModification,
    /// The disk budget is reached (or the daemon is starting or stopping): nothing was written,
    /// retry later.
    ServiceUnavailable,
    /// The `X-Amz-Target` names no Firehose operation (or is missing).
    UnknownOperation,
    /// The body is not valid JSON for the operation, or a blob is not valid base64.
    Serialization,
    /// SigV4: the access key id is not known.
    UnrecognizedClient,
    /// SigV4: the signature does not match, or the request time is more than 5 minutes off.
    InvalidSignature,
    /// SigV4: keys are configured and the request is not signed.
    MissingAuthenticationToken,
    /// SigV4: the Authorization header is malformed.
    IncompleteSignature,
    /// Something failed inside hydrant (a WAL I/O error); nothing was acknowledged.
    InternalFailure,
    /// The request body did not arrive within its deadline (HTTP 408; the connection is
    /// closed).
    RequestTimeout,
}

impl ErrorCode {
    /// The `__type` string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "InvalidArgumentException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::ConcurrentModification => "ConcurrentModificationException",
            ErrorCode::ServiceUnavailable => "ServiceUnavailableException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::InvalidSignature => "InvalidSignatureException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::InternalFailure => "InternalFailure",
            ErrorCode::RequestTimeout => "RequestTimeoutException",
        }
    }

    /// The HTTP status Firehose-compatible clients expect.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::InternalFailure => 500,
            ErrorCode::RequestTimeout => 408,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply: a code and a human message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The Firehose error code.
    pub code: ErrorCode,
    /// The message sent in `message`.
    pub message: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// InvalidArgumentException.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, message)
    }

    /// SerializationException.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Serialization, message)
    }

    /// ResourceNotFoundException for a stream.
    #[must_use]
    pub fn not_found(stream: &str, account: &str) -> ApiError {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Firehose {stream} under account {account} not found."),
        )
    }

    /// The compact JSON body.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            kind: &'a str,
            message: &'a str,
        }
        serde_json::to_vec(&Body {
            kind: self.code.as_str(),
            message: &self.message,
        })
        .unwrap_or_else(|_| b"{\"__type\":\"InternalFailure\"}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_compact_firehose_json() {
        let e = ApiError::invalid("bad \"x\"");
        assert_eq!(
            String::from_utf8(e.body()).expect("utf8"),
            r#"{"__type":"InvalidArgumentException","message":"bad \"x\""}"#
        );
        assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::ResourceNotFound.http_status(), 400);
    }
}
