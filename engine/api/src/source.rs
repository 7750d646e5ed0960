//! The delivery stream's source: `DeliveryStreamType` and `KinesisStreamSourceConfiguration`.
//!
//! A DirectPut stream takes records from PutRecord / PutRecordBatch; a `KinesisStreamAsSource`
//! stream reads them from a Kinesis data stream (the engine's `source::kinesis`) and refuses
//! puts. This file holds the source's shape and its create-time rules; the reader is the
//! engine's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::ApiError;
use crate::validate;

/// `DeliveryStreamType` of a stream read from a Kinesis data stream.
pub const KINESIS_STREAM_AS_SOURCE: &str = "KinesisStreamAsSource";

/// Firehose's reply to PutRecord / PutRecordBatch on a stream whose source is a Kinesis stream.
pub const PUT_ON_KINESIS_SOURCE: &str =
    "This operation is not permitted on KinesisStreamAsSource delivery stream type.";

/// `KinesisStreamSourceConfiguration`, validated: which Kinesis stream to read, as which role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisStreamSource {
    /// `KinesisStreamARN`: `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
    pub kinesis_stream_arn: String,
    /// `RoleARN` (kept and described; hydrant reads with the credentials of its `[kinesis]`
    /// configuration).
    pub role_arn: String,
}

impl KinesisStreamSource {
    /// The Kinesis stream's name (the ARN's resource after `stream/`).
    #[must_use]
    pub fn stream_name(&self) -> &str {
        stream_arn_parts(&self.kinesis_stream_arn).map_or("", |p| p.name)
    }

    /// The Kinesis stream's region (from the ARN).
    #[must_use]
    pub fn region(&self) -> &str {
        stream_arn_parts(&self.kinesis_stream_arn).map_or("", |p| p.region)
    }
}

/// The parts of a Kinesis stream ARN.
struct StreamArn<'a> {
    region: &'a str,
    name: &'a str,
}

/// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+` (botocore's pattern), 1 to 512 characters.
fn stream_arn_parts(arn: &str) -> Option<StreamArn<'_>> {
    if arn.is_empty() || arn.len() > 512 {
        return None;
    }
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = res.strip_prefix("stream/")?;
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (partition.starts_with("aws") && !region.is_empty() && account_ok && name_ok)
        .then_some(StreamArn { region, name })
}

/// The source a CreateDeliveryStream asks for: `None` for DirectPut, the Kinesis stream for
/// `KinesisStreamAsSource`. The type and the configuration go together: each without the other
/// is refused, naming the missing member.
///
/// # Errors
/// InvalidArgumentException naming the member at fault.
pub fn kinesis_source(
    stream_type: Option<&str>,
    config: Option<&Value>,
) -> Result<Option<KinesisStreamSource>, ApiError> {
    let is_kinesis = stream_type == Some(KINESIS_STREAM_AS_SOURCE);
    let config = match (is_kinesis, config) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "KinesisStreamSourceConfiguration is only valid with DeliveryStreamType \
                 KinesisStreamAsSource",
            ))
        }
        (true, None) => {
            return Err(ApiError::invalid(
                "KinesisStreamSourceConfiguration is required when DeliveryStreamType is \
                 KinesisStreamAsSource",
            ))
        }
        (true, Some(c)) => c,
    };
    let Some(obj) = config.as_object() else {
        return Err(ApiError::invalid(
            "KinesisStreamSourceConfiguration must be an object",
        ));
    };
    for key in obj.keys() {
        if key != "KinesisStreamARN" && key != "RoleARN" {
            return Err(ApiError::invalid(format!(
                "KinesisStreamSourceConfiguration.{key} is not supported by hydrant"
            )));
        }
    }
    let member = |name: &str| -> Result<String, ApiError> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::invalid(format!(
                "KinesisStreamSourceConfiguration.{name} must be a string"
            ))),
            None => Err(ApiError::invalid(format!(
                "1 validation error detected: Value null at \
                 'kinesisStreamSourceConfiguration.{}' failed to satisfy constraint: Member \
                 must not be null",
                lower_first(name)
            ))),
        }
    };
    let kinesis_stream_arn = member("KinesisStreamARN")?;
    let role_arn = member("RoleARN")?;
    if stream_arn_parts(&kinesis_stream_arn).is_none() {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{kinesis_stream_arn}' at \
             'kinesisStreamSourceConfiguration.kinesisStreamARN' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: arn:.*:kinesis:[a-zA-Z0-9\\-]+:\
             \\d{{12}}:stream/[a-zA-Z0-9_.\\-]+"
        )));
    }
    if !validate::role_arn_ok(&role_arn) {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{role_arn}' at \
             'kinesisStreamSourceConfiguration.roleARN' failed to satisfy constraint: Member \
             must satisfy regular expression pattern: arn:.*:iam::\\d{{12}}:role/\
             [a-zA-Z_0-9+=,.@\\-_/]+"
        )));
    }
    Ok(Some(KinesisStreamSource {
        kinesis_stream_arn,
        role_arn,
    }))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

    #[test]
    fn type_and_configuration_go_together() {
        let c = json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s-1",
                       "RoleARN": ROLE});
        let got = kinesis_source(Some(KINESIS_STREAM_AS_SOURCE), Some(&c)).unwrap_or(None);
        let Some(got) = got else {
            panic!("a valid configuration was refused")
        };
        assert_eq!(got.stream_name(), "s-1");
        assert_eq!(got.region(), "us-east-1");
        assert_eq!(kinesis_source(None, None).ok(), Some(None));
        assert_eq!(kinesis_source(Some("DirectPut"), None).ok(), Some(None));
        for (t, c) in [
            (Some(KINESIS_STREAM_AS_SOURCE), None),
            (Some("DirectPut"), Some(&c)),
            (None, Some(&c)),
        ] {
            let e = kinesis_source(t, c)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(e.contains("KinesisStreamSourceConfiguration"), "{e}");
        }
    }

    #[test]
    fn bad_members_are_named() {
        for (c, named) in [
            (json!({"RoleARN": ROLE}), "kinesisStreamARN"),
            (
                json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:1234:stream/s",
                       "RoleARN": ROLE}),
                "kinesisStreamARN",
            ),
            (
                json!({"KinesisStreamARN": "arn:aws:s3:::bucket", "RoleARN": ROLE}),
                "kinesisStreamARN",
            ),
            (
                json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s"}),
                "roleARN",
            ),
            (
                json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                       "RoleARN": "role"}),
                "roleARN",
            ),
            (
                json!({"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                       "RoleARN": ROLE, "Other": 1}),
                "Other",
            ),
        ] {
            let e = kinesis_source(Some(KINESIS_STREAM_AS_SOURCE), Some(&c))
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(e.contains(named), "{c}: {e}");
        }
    }
}
