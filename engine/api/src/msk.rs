//! `MSKAsSource`: the shape and create-time rules of `MSKSourceConfiguration` (a delivery
//! stream read from a Kafka topic, Amazon MSK or any Kafka cluster the daemon's `[kafka]`
//! configuration maps the cluster ARN to). The reader is the engine's `source::kafka`.
//!
//! botocore's shape: `{MSKClusterARN (arn:.*, 1..512), TopicName ([a-zA-Z0-9._-]+, 1..255),
//! AuthenticationConfiguration {RoleARN, Connectivity (PUBLIC|PRIVATE)}, ReadFromTimestamp
//! (timestamp, optional)}`; every member but `ReadFromTimestamp` is required. The JSON protocol
//! sends a timestamp as seconds since the epoch (a number, fractions allowed).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::validate;

/// `DeliveryStreamType` of a stream read from an MSK (Kafka) topic.
pub const MSK_AS_SOURCE: &str = "MSKAsSource";

/// Firehose's reply to PutRecord / PutRecordBatch on a stream whose source is MSK (the same
/// sentence as for a Kinesis source, with the type's name).
pub const PUT_ON_MSK_SOURCE: &str =
    "This operation is not permitted on MSKAsSource delivery stream type.";

/// `MSKSourceConfiguration`, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MskSource {
    /// `MSKClusterARN`: mapped to bootstrap servers by the daemon's `[kafka]` configuration.
    pub cluster_arn: String,
    /// `TopicName`.
    pub topic: String,
    /// `AuthenticationConfiguration.RoleARN` (kept and described; hydrant authenticates with
    /// its `[kafka]` settings).
    pub role_arn: String,
    /// `AuthenticationConfiguration.Connectivity`: `PUBLIC` or `PRIVATE` (kept and described).
    pub connectivity: String,
    /// `ReadFromTimestamp`, ms since the epoch; `None`: the delivery stream's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_from_ms: Option<u64>,
}

impl MskSource {
    /// Where reading starts, ms since the epoch: `ReadFromTimestamp`, else `created_ms`.
    #[must_use]
    pub fn start_ms(&self, created_ms: u64) -> u64 {
        self.read_from_ms.unwrap_or(created_ms)
    }
}

fn not_null(member: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value null at 'mSKSourceConfiguration.{member}' failed \
         to satisfy constraint: Member must not be null"
    ))
}

fn string_member(obj: &Map<String, Value>, name: &str, path: &str) -> Result<String, ApiError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(format!(
            "MSKSourceConfiguration.{name} must be a string"
        ))),
        None => Err(not_null(path)),
    }
}

/// The MSK source a CreateDeliveryStream asks for: `None` unless the type is `MSKAsSource`.
/// The type and the configuration go together: each without the other is refused, naming the
/// missing member; an unknown member is refused by name.
///
/// # Errors
/// InvalidArgumentException naming the member at fault.
pub fn msk_source(
    stream_type: Option<&str>,
    config: Option<&Value>,
) -> Result<Option<MskSource>, ApiError> {
    let is_msk = stream_type == Some(MSK_AS_SOURCE);
    let config = match (is_msk, config) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "MSKSourceConfiguration is only valid with DeliveryStreamType MSKAsSource",
            ))
        }
        (true, None) => {
            return Err(ApiError::invalid(
                "MSKSourceConfiguration is required when DeliveryStreamType is MSKAsSource",
            ))
        }
        (true, Some(c)) => c,
    };
    let Some(obj) = config.as_object() else {
        return Err(ApiError::invalid(
            "MSKSourceConfiguration must be an object",
        ));
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "MSKClusterARN" | "TopicName" | "AuthenticationConfiguration" | "ReadFromTimestamp"
        ) {
            return Err(ApiError::invalid(format!(
                "MSKSourceConfiguration.{key} is not supported by hydrant"
            )));
        }
    }
    let cluster_arn = string_member(obj, "MSKClusterARN", "mSKClusterARN")?;
    if cluster_arn.is_empty() || cluster_arn.len() > 512 || !cluster_arn.starts_with("arn:") {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{cluster_arn}' at \
             'mSKSourceConfiguration.mSKClusterARN' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: arn:.*"
        )));
    }
    let topic = string_member(obj, "TopicName", "topicName")?;
    let topic_ok = !topic.is_empty()
        && topic.len() <= 255
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !topic_ok {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{topic}' at 'mSKSourceConfiguration.topicName' \
             failed to satisfy constraint: Member must satisfy regular expression pattern: \
             [a-zA-Z0-9\\._\\-]+"
        )));
    }
    let auth = match obj.get("AuthenticationConfiguration") {
        Some(Value::Object(a)) => a,
        Some(_) => {
            return Err(ApiError::invalid(
                "MSKSourceConfiguration.AuthenticationConfiguration must be an object",
            ))
        }
        None => return Err(not_null("authenticationConfiguration")),
    };
    for key in auth.keys() {
        if key != "RoleARN" && key != "Connectivity" {
            return Err(ApiError::invalid(format!(
                "MSKSourceConfiguration.AuthenticationConfiguration.{key} is not supported by \
                 hydrant"
            )));
        }
    }
    let role_arn = string_member(auth, "RoleARN", "authenticationConfiguration.roleARN")?;
    if !validate::role_arn_ok(&role_arn) {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{role_arn}' at \
             'mSKSourceConfiguration.authenticationConfiguration.roleARN' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: \
             arn:.*:iam::\\d{{12}}:role/[a-zA-Z_0-9+=,.@\\-_/]+"
        )));
    }
    let connectivity = string_member(
        auth,
        "Connectivity",
        "authenticationConfiguration.connectivity",
    )?;
    if connectivity != "PUBLIC" && connectivity != "PRIVATE" {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{connectivity}' at \
             'mSKSourceConfiguration.authenticationConfiguration.connectivity' failed to satisfy \
             constraint: Member must satisfy enum value set: [PUBLIC, PRIVATE]"
        )));
    }
    let read_from_ms =
        match obj.get("ReadFromTimestamp") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if (0.0..1e13).contains(&s) => Some((s * 1000.0).round() as u64),
                _ => {
                    return Err(ApiError::invalid(format!(
                    "MSKSourceConfiguration.ReadFromTimestamp {n} is not a time since the epoch"
                )))
                }
            },
            Some(_) => return Err(ApiError::invalid(
                "MSKSourceConfiguration.ReadFromTimestamp must be a timestamp (seconds since the \
                 epoch)",
            )),
        };
    Ok(Some(MskSource {
        cluster_arn,
        topic,
        role_arn,
        connectivity,
        read_from_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";
    const ARN: &str = "arn:aws:kafka:us-east-1:123456789012:cluster/c/0b1e7f4c-1";

    fn good() -> Value {
        json!({"MSKClusterARN": ARN, "TopicName": "orders.v1",
               "AuthenticationConfiguration": {"RoleARN": ROLE, "Connectivity": "PRIVATE"},
               "ReadFromTimestamp": 1_700_000_000.25})
    }

    #[test]
    fn type_and_configuration_go_together() {
        let got = msk_source(Some(MSK_AS_SOURCE), Some(&good()))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("a valid configuration was refused"));
        assert_eq!(got.topic, "orders.v1");
        assert_eq!(got.connectivity, "PRIVATE");
        assert_eq!(got.read_from_ms, Some(1_700_000_000_250));
        assert_eq!(got.start_ms(5), 1_700_000_000_250);
        assert_eq!(msk_source(None, None).ok(), Some(None));
        assert_eq!(msk_source(Some("DirectPut"), None).ok(), Some(None));
        let c = good();
        for (t, c) in [
            (Some(MSK_AS_SOURCE), None),
            (Some("DirectPut"), Some(&c)),
            (None, Some(&c)),
        ] {
            let e = msk_source(t, c)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(e.contains("MSKSourceConfiguration"), "{e}");
        }
    }

    #[test]
    fn bad_members_are_named() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = good();
            f(&mut c);
            c
        };
        for (c, named) in [
            (
                with(&|c| {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("MSKClusterARN");
                    }
                }),
                "mSKClusterARN",
            ),
            (
                with(&|c| c["MSKClusterARN"] = json!("cluster")),
                "mSKClusterARN",
            ),
            (with(&|c| c["TopicName"] = json!("a topic")), "topicName"),
            (with(&|c| c["TopicName"] = json!("")), "topicName"),
            (
                with(&|c| c["AuthenticationConfiguration"]["RoleARN"] = json!("r")),
                "roleARN",
            ),
            (
                with(&|c| c["AuthenticationConfiguration"]["Connectivity"] = json!("VPC")),
                "connectivity",
            ),
            (
                with(&|c| {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("AuthenticationConfiguration");
                    }
                }),
                "authenticationConfiguration",
            ),
            (
                with(&|c| c["ReadFromTimestamp"] = json!("x")),
                "ReadFromTimestamp",
            ),
            (with(&|c| c["Other"] = json!(1)), "Other"),
        ] {
            let e = msk_source(Some(MSK_AS_SOURCE), Some(&c))
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(e.contains(named), "{c}: {e}");
        }
        // Without ReadFromTimestamp, reading starts at the creation.
        let c = with(&|c| {
            if let Some(o) = c.as_object_mut() {
                o.remove("ReadFromTimestamp");
            }
        });
        let got = msk_source(Some(MSK_AS_SOURCE), Some(&c)).ok().flatten();
        assert_eq!(got.map(|s| s.start_ms(7)), Some(7));
    }
}
