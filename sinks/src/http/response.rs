//! What an endpoint's answer means: only a conforming 200 is a success; everything else becomes
//! a [`SinkError`] with the Firehose error code ([`super::codes`]) of the module documentation's table.

use reqwest::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};

use super::failure::HttpFailure;
use crate::SinkError;

/// The largest response body read (1 MiB); a larger one fails the attempt.
pub const RESPONSE_BODY_BYTES_MAX: usize = 1 << 20;

/// The longest error message kept from a response (Firehose's `errorMessage` limit).
pub const ERROR_MESSAGE_CHARS_MAX: usize = 8192;

/// What a response means: `Ok` only for a conforming 200.
pub(super) fn check_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), SinkError> {
    if status != 200 {
        let detail = error_detail(body);
        return Err(SinkError::Destination {
            failure: HttpFailure::Status(status).into(),
            message: format!(
                "Received the following response from the endpoint destination. {status}: \
                 {detail}"
            ),
        });
    }
    conforming(headers, body, request_id).map_err(|reason| SinkError::Destination {
        failure: HttpFailure::InvalidResponse.into(),
        message: format!(
            "The response received from the endpoint is invalid ({reason}). Contact the owner \
             of the endpoint to resolve the issue."
        ),
    })
}

/// Why a 200 response does not conform, if it does not.
fn conforming(headers: &HeaderMap, body: &[u8], request_id: &str) -> Result<(), String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "Content-Type {:?} is not application/json",
            truncate(content_type, 100)
        ));
    }
    if let Some(encoding) = headers.get(CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err("the response has a Content-Encoding".into());
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    match object.get("requestId").and_then(serde_json::Value::as_str) {
        Some(id) if id == request_id => {}
        Some(id) => {
            return Err(format!(
                "requestId {:?} is not the request's {request_id:?}",
                truncate(id, 100)
            ))
        }
        None => return Err("requestId is missing".into()),
    }
    if !object
        .get("timestamp")
        .is_some_and(serde_json::Value::is_number)
    {
        return Err("timestamp is missing".into());
    }
    Ok(())
}

/// The `errorMessage` of an error response, else its body, at most
/// [`ERROR_MESSAGE_CHARS_MAX`] characters.
fn error_detail(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_owned));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    truncate(&text, ERROR_MESSAGE_CHARS_MAX).to_owned()
}

/// The first `max` characters of `text`.
fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use reqwest::header::HeaderValue;

    use super::*;
    use crate::http::codes;

    #[test]
    fn response_classification() {
        let json = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            h
        };
        let ok = br#"{"requestId":"r","timestamp":1}"#;
        assert!(check_response(200, &json("application/json"), ok, "r").is_ok());
        assert!(check_response(200, &json("application/json; charset=utf-8"), ok, "r").is_ok());
        let code = |status, headers: &HeaderMap, body: &[u8]| {
            let e = check_response(status, headers, body, "r").unwrap_err();
            (e.error_code().into_owned(), e.is_retryable())
        };
        let invalid = (codes::INVALID_RESPONSE.to_owned(), true);
        assert_eq!(code(200, &json("text/plain"), ok), invalid);
        assert_eq!(code(200, &HeaderMap::new(), ok), invalid);
        assert_eq!(code(200, &json("application/json"), b"{}"), invalid);
        assert_eq!(
            code(200, &json("application/json"), br#"{"requestId":"r"}"#),
            invalid
        );
        assert_eq!(
            code(
                200,
                &json("application/json"),
                br#"{"requestId":"q","timestamp":1}"#
            ),
            invalid
        );
        let mut gz = json("application/json");
        gz.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(code(200, &gz, ok), invalid);
        let exception = |retryable| (codes::DESTINATION_EXCEPTION.to_owned(), retryable);
        assert_eq!(code(413, &HeaderMap::new(), b""), exception(false));
        for status in [201, 204, 302, 400, 401, 404, 429, 500, 503] {
            assert_eq!(
                code(status, &HeaderMap::new(), b""),
                exception(true),
                "{status}"
            );
        }
        let e = check_response(
            503,
            &HeaderMap::new(),
            br#"{"requestId":"r","timestamp":1,"errorMessage":"slow down"}"#,
            "r",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "HttpEndpoint.DestinationException: Received the following response from the \
             endpoint destination. 503: slow down"
        );
        let long = vec![b'z'; 10_000];
        let e = check_response(500, &HeaderMap::new(), &long, "r").unwrap_err();
        let SinkError::Destination { message, .. } = e else {
            panic!("not a destination error")
        };
        assert!(message.ends_with(&"z".repeat(ERROR_MESSAGE_CHARS_MAX)));
        assert!(!message.ends_with(&"z".repeat(ERROR_MESSAGE_CHARS_MAX + 1)));
    }
}
