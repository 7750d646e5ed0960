//! SigV4 verification of incoming requests against the configured access keys.
//!
//! No canonicalization is written here: the `aws-sigv4` crate (the one the AWS SDK for Rust
//! signs with) recomputes the signature over the received method, path, the headers the client
//! listed in `SignedHeaders` (with their received values), the body and the `X-Amz-Date`, using
//! the configured secret; the two signatures are compared in constant time.
//!
//! Errors, as AWS JSON services answer them (botocore knows these codes; it treats
//! InvalidSignatureException with "Signature expired" as clock skew and corrects its clock):
//! - no `Authorization` header: MissingAuthenticationTokenException;
//! - a malformed header, no `X-Amz-Date`: IncompleteSignatureException;
//! - an unknown access key id: UnrecognizedClientException;
//! - a wrong signature, a credential scope for another service, or a request time more than
//!   5 minutes off: InvalidSignatureException.
//!
//! Everything but the signature itself is checked from the headers alone
//! ([`Verifier::check_headers`]), before the body is read, as AWS does: a client without a known
//! key and a current date cannot make the daemon read (and hold) its body.
//!
//! Any region in the credential scope is accepted (the signature covers it): a self-hosted
//! endpoint has no region of its own to insist on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use subtle::ConstantTimeEq;

use crate::api::errors::{ApiError, ErrorCode};
use crate::config::AccessKey;

/// Largest accepted difference between the request's `X-Amz-Date` and the server clock.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(5 * 60);

/// The signing name in Firehose credential scopes.
pub const SERVICE: &str = "firehose";

/// Verifies requests against a set of keys.
pub struct Verifier {
    keys: HashMap<String, String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The parts of a request that are signed.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    /// Every header as received (names in any case; repeated names repeated).
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body.
    pub body: &'a [u8],
}

struct AuthHeader<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn incomplete(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::IncompleteSignature, msg)
}

fn invalid_signature(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, msg)
}

fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, ApiError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| incomplete("Authorization header must use AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential should have 5 parts separated by '/': {credential}"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(incomplete("Credential should end with aws4_request"));
    }
    Ok(AuthHeader {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').filter(|s| !s.is_empty()).collect(),
        signature,
    })
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // A leap second (60) is accepted as the next second's start, as before.
    let (se, leap) = if se == 60 { (59, 1) } else { (se, 0) };
    let at = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(se).ok()?,
        0,
    )
    .ok()?;
    let secs = at
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second()
        + leap;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

impl Verifier {
    /// A verifier for these keys.
    #[must_use]
    pub fn new(keys: &[AccessKey]) -> Verifier {
        Verifier {
            keys: keys
                .iter()
                .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
                .collect(),
        }
    }

    /// Checks what can be checked without the body, as AWS does before reading it: the
    /// `Authorization` header is well formed, its key is known, `X-Amz-Date` is within
    /// [`CLOCK_SKEW_MAX`] of `now`, the credential scope names that date and this service, and
    /// `host` is signed. A request that fails here is answered without reading its body.
    ///
    /// # Errors
    /// The AWS error to answer with (see the module documentation).
    pub fn check_headers(&self, headers: &[(&str, &str)], now: SystemTime) -> Result<(), ApiError> {
        self.check(headers, now).map(|_| ())
    }

    /// The header checks of [`Verifier::check_headers`]; returns the parsed header, the secret
    /// and the request time for the signature.
    fn check<'s, 'h>(
        &'s self,
        headers: &[(&'h str, &'h str)],
        now: SystemTime,
    ) -> Result<(AuthHeader<'h>, &'s str, SystemTime), ApiError> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let authorization = header("authorization").ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingAuthenticationToken,
                "Missing Authentication Token",
            )
        })?;
        let auth = parse_authorization(authorization)?;
        let Some(secret) = self.keys.get(auth.access_key_id) else {
            return Err(ApiError::new(
                ErrorCode::UnrecognizedClient,
                "The security token included in the request is invalid.",
            ));
        };
        let amz_date = header("x-amz-date").ok_or_else(|| {
            incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        })?;
        let time = parse_amz_date(amz_date).ok_or_else(|| {
            incomplete(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"))
        })?;
        match now.duration_since(time) {
            Ok(ahead) if ahead > CLOCK_SKEW_MAX => {
                return Err(invalid_signature(format!(
                    "Signature expired: {amz_date} is now earlier than the allowed 5 minutes \
                     before the server time."
                )))
            }
            Err(e) if e.duration() > CLOCK_SKEW_MAX => {
                return Err(invalid_signature(format!(
                    "Signature not yet current: {amz_date} is still later than the allowed 5 \
                     minutes after the server time."
                )))
            }
            _ => {}
        }
        if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
            return Err(invalid_signature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}'",
                auth.date,
                amz_date.get(..8).unwrap_or(amz_date)
            )));
        }
        if auth.service != SERVICE {
            return Err(invalid_signature(format!(
                "Credential should be scoped to correct service: '{SERVICE}'."
            )));
        }
        if !auth.signed_headers.contains(&"host") {
            return Err(invalid_signature("'Host' must be a signed header."));
        }
        Ok((auth, secret.as_str(), time))
    }

    /// Verifies one request at time `now`: the header checks of [`Verifier::check_headers`],
    /// then the signature over the whole request, body included.
    ///
    /// # Errors
    /// The AWS error to answer with (see the module documentation).
    pub fn verify(&self, req: &SignedRequest<'_>, now: SystemTime) -> Result<(), ApiError> {
        let (auth, secret, time) = self.check(&req.headers, now)?;
        let mut signed: Vec<(&str, &str)> = Vec::new();
        for name in &auth.signed_headers {
            let before = signed.len();
            for (n, v) in &req.headers {
                if n.eq_ignore_ascii_case(name) {
                    signed.push((name, v));
                }
            }
            if signed.len() == before {
                return Err(invalid_signature(format!(
                    "The request signature we calculated does not match the signature you \
                     provided: signed header {name:?} is missing from the request."
                )));
            }
        }
        let expected = compute_signature(req, &signed, secret, &auth, time)?;
        if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            Ok(())
        } else {
            Err(invalid_signature(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details.",
            ))
        }
    }
}

fn compute_signature(
    req: &SignedRequest<'_>,
    signed: &[(&str, &str)],
    secret: &str,
    auth: &AuthHeader<'_>,
    time: SystemTime,
) -> Result<String, ApiError> {
    let identity: Identity =
        Credentials::new(auth.access_key_id, secret, None, None, "hydrant-config").into();
    let mut settings = SigningSettings::default();
    // Sign exactly the headers the client listed, no more, no fewer.
    settings.excluded_headers = Some(Vec::<Cow<'static, str>>::new());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| invalid_signature(format!("cannot verify the signature: {e}")))?;
    let params = params.into();
    let signable = SignableRequest::new(
        req.method,
        req.path_and_query,
        signed.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| invalid_signature(format!("cannot verify the signature: {e}")))?;
    let out = sign(signable, &params)
        .map_err(|e| invalid_signature(format!("cannot verify the signature: {e}")))?;
    Ok(out.signature().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_request(
        key: &str,
        secret: &str,
        time: SystemTime,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let identity: Identity = Credentials::new(key, secret, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("firehose")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let headers = [
            ("host", "127.0.0.1:4573"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Firehose_20150804.ListDeliveryStreams"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4573/",
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _sig) = sign(signable, &params).expect("sign").into_parts();
        let mut out: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
            .collect();
        for (n, v) in instructions.headers() {
            out.push((n.to_string(), v.to_string()));
        }
        out
    }

    fn verify(
        v: &Verifier,
        headers: &[(String, String)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let req = SignedRequest {
            method: "POST",
            path_and_query: "/",
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            body,
        };
        v.verify(&req, now)
    }

    #[test]
    fn verifies_and_rejects() {
        let v = Verifier::new(&[AccessKey {
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
        }]);
        let now = SystemTime::now();
        let body = b"{}";
        let h = sign_request("AKID", "SECRET", now, body);
        verify(&v, &h, body, now).expect("valid signature");
        let code = |r: Result<(), ApiError>| r.expect_err("must fail").code;
        assert_eq!(
            code(verify(&v, &h, b"{ }", now)),
            ErrorCode::InvalidSignature
        );
        let bad = sign_request("AKID", "WRONG", now, body);
        assert_eq!(
            code(verify(&v, &bad, body, now)),
            ErrorCode::InvalidSignature
        );
        let unknown = sign_request("OTHER", "SECRET", now, body);
        assert_eq!(
            code(verify(&v, &unknown, body, now)),
            ErrorCode::UnrecognizedClient
        );
        let later = now + Duration::from_secs(301);
        assert_eq!(
            code(verify(&v, &h, body, later)),
            ErrorCode::InvalidSignature
        );
        // The header checks alone: a known key and a current date pass whatever the body.
        let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        v.check_headers(&refs, now)
            .expect("headers of a valid request");
        assert_eq!(
            code(v.check_headers(&refs, later)),
            ErrorCode::InvalidSignature
        );
        let unknown_refs: Vec<(&str, &str)> = unknown
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            code(v.check_headers(&unknown_refs, now)),
            ErrorCode::UnrecognizedClient
        );
        assert_eq!(
            code(v.check_headers(&[], now)),
            ErrorCode::MissingAuthenticationToken
        );
        assert_eq!(
            code(verify(&v, &[], body, now)),
            ErrorCode::MissingAuthenticationToken
        );
    }

    #[test]
    fn amz_date() {
        assert_eq!(
            parse_amz_date("19700101T000001Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
        assert_eq!(
            parse_amz_date("20000301T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(parse_amz_date("2000-03-01"), None);
    }
}
