//! SigV4 for the sinks' own HTTP clients (Lambda, OpenSearch, the Glue API): the headers that
//! sign one POST with aws-sigv4. One place, so that every client signs the same way; each caller
//! turns the failure into its own error (`Lambda.SigningFailed`, `OS.SigningFailed`, ...).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::SigningSettings;
use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest};
use aws_sigv4::sign::v4;

/// Whether the signed request also carries `x-amz-content-sha256` (OpenSearch wants it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// Only `Authorization` and `x-amz-date` (and a session token when there is one).
    Omitted,
    /// `x-amz-content-sha256` as well.
    Header,
}

/// [`sign_post`] of a JSON API call (Glue, Lambda): owned header pairs, the payload hash
/// omitted.
///
/// # Errors
/// As [`sign_post`].
pub fn sign_json_post(
    service: &str,
    region: &str,
    credentials: &Credentials,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    sign_post(
        service,
        region,
        credentials,
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        body,
        PayloadHash::Omitted,
    )
}

/// The headers that sign a POST of `body` to `url` (with `headers`, which are signed too) for
/// `service` in `region`, now.
///
/// # Errors
/// aws-sigv4's message, when the parameters or the request cannot be signed.
pub fn sign_post<'a>(
    service: &str,
    region: &str,
    credentials: &Credentials,
    url: &'a str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &'a [u8],
    payload: PayloadHash,
) -> Result<Vec<(String, String)>, String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    if payload == PayloadHash::Header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new("POST", url, headers, SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect())
}
