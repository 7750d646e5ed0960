//! `DynamicPartitioningConfiguration` of an ExtendedS3 destination: its create-time rules.
//!
//! ```text
//! "DynamicPartitioningConfiguration": {"Enabled": true,
//!                                      "RetryOptions": {"DurationInSeconds": 300}}
//! ```
//!
//! - `Enabled` (boolean, required: the model leaves its default unsaid) and `RetryOptions{DurationInSeconds}` (0 to 7200, default 300: how long
//!   delivery of a partitioned batch is retried before its records go to the error output) are
//!   the members; any other is refused by name.
//! - Set at create only: an UpdateDestination cannot turn it on or off ([`check_update`]).
//! - Only the ExtendedS3 destination has it (nested S3 configurations refuse it).
//! - When enabled: `ErrorOutputPrefix` and `Prefix` are required; `BufferingHints.IntervalInSeconds`
//!   0 (zero buffering) is refused; a `MetadataExtraction` or `Lambda` processor must produce
//!   keys, and every `!{partitionKeyFrom...:name}` of the Prefix must be one they produce (the
//!   sinks crate's [`hydrant_sinks::S3Prefixes::partitioned`] in daemon builds).
//! - A `MetadataExtraction` processor without dynamic partitioning is refused (it only feeds
//!   partition keys).
//!
//! Delivery applies it through the engine's `delivery::spec`: the object sink splits batches by
//! partition ([`hydrant_sinks::partition`]).

use serde_json::Value;

use crate::errors::ApiError;
use crate::model::ExtendedS3Config;

/// `RetryOptions.DurationInSeconds` when not given.
pub const RETRY_SECONDS_DEFAULT: u32 = 300;
/// Its largest value.
pub const RETRY_SECONDS_MAX: u32 = 7200;

const MEMBER: &str = "DynamicPartitioningConfiguration";

/// Whether the destination partitions dynamically: the structure is given with `Enabled` true.
/// (Firehose's default for `Enabled` in this structure is false.)
#[must_use]
pub fn enabled(c: &ExtendedS3Config) -> bool {
    c.dynamic_partitioning_configuration
        .as_ref()
        .and_then(|v| v.get("Enabled"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// `RetryOptions.DurationInSeconds` (default 300).
#[must_use]
pub fn retry_seconds(c: &ExtendedS3Config) -> u32 {
    c.dynamic_partitioning_configuration
        .as_ref()
        .and_then(|v| v.get("RetryOptions"))
        .and_then(|r| r.get("DurationInSeconds"))
        .and_then(Value::as_u64)
        .map_or(RETRY_SECONDS_DEFAULT, |s| {
            u32::try_from(s).unwrap_or(RETRY_SECONDS_MAX)
        })
}

/// Whether a `ProcessingConfiguration` lists a processor of `type_name`.
fn has_processor(c: &ExtendedS3Config, type_name: &str) -> bool {
    c.processing_configuration
        .as_ref()
        .and_then(|p| p.get("Processors"))
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|p| p.get("Type").and_then(Value::as_str) == Some(type_name))
        })
}

fn processing_enabled(c: &ExtendedS3Config) -> bool {
    c.processing_configuration
        .as_ref()
        .and_then(|p| p.get("Enabled"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The structure's shape: known members of the right types, in range.
fn check_shape(v: &Value) -> Result<(), ApiError> {
    let Some(object) = v.as_object() else {
        return Err(ApiError::serialization(format!(
            "{MEMBER} must be a structure"
        )));
    };
    if !object.contains_key("Enabled") {
        // Firehose's model leaves its default unsaid: hydrant asks for it rather than guess.
        return Err(ApiError::invalid(format!(
            "{MEMBER}.Enabled is required (true or false)"
        )));
    }
    for (name, value) in object {
        match name.as_str() {
            "Enabled" => {
                if !value.is_boolean() {
                    return Err(ApiError::serialization(format!(
                        "{MEMBER}.Enabled must be a boolean"
                    )));
                }
            }
            "RetryOptions" => {
                let Some(retry) = value.as_object() else {
                    return Err(ApiError::serialization(format!(
                        "{MEMBER}.RetryOptions must be a structure"
                    )));
                };
                for (member, value) in retry {
                    if member != "DurationInSeconds" {
                        return Err(ApiError::invalid(format!(
                            "{MEMBER}.RetryOptions.{member} is not supported by hydrant"
                        )));
                    }
                    match value.as_u64() {
                        Some(s) if s <= u64::from(RETRY_SECONDS_MAX) => {}
                        _ => {
                            return Err(ApiError::invalid(format!(
                                "{MEMBER}.RetryOptions.DurationInSeconds must be an integer \
                                 from 0 to {RETRY_SECONDS_MAX}"
                            )))
                        }
                    }
                }
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "{MEMBER}.{other} is not supported by hydrant"
                )))
            }
        }
    }
    Ok(())
}

/// The rules of the module documentation that need no sinks crate (the Prefix's keys are
/// checked with the object naming rules).
///
/// # Errors
/// InvalidArgumentException naming the rule broken.
pub fn validate(c: &ExtendedS3Config) -> Result<(), ApiError> {
    if let Some(v) = &c.dynamic_partitioning_configuration {
        check_shape(v)?;
    }
    if !enabled(c) {
        if processing_enabled(c) && has_processor(c, "MetadataExtraction") {
            return Err(ApiError::invalid(
                "ProcessingConfiguration: the MetadataExtraction processor needs \
                 DynamicPartitioningConfiguration Enabled",
            ));
        }
        return Ok(());
    }
    if c.error_output_prefix.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "ErrorOutputPrefix is required when dynamic partitioning is enabled",
        ));
    }
    if c.buffering_hints
        .and_then(|h| h.interval_in_seconds)
        .is_some_and(|i| i == 0)
    {
        return Err(ApiError::invalid(
            "BufferingHints.IntervalInSeconds 0 (zero buffering) is not supported with dynamic \
             partitioning",
        ));
    }
    if !(processing_enabled(c)
        && (has_processor(c, "MetadataExtraction") || has_processor(c, "Lambda")))
    {
        return Err(ApiError::invalid(
            "dynamic partitioning needs partitioning keys: enable ProcessingConfiguration with a \
             MetadataExtraction (jq) or Lambda processor",
        ));
    }
    Ok(())
}

/// A nested S3 configuration (backup, intermediate, error output) cannot partition.
///
/// # Errors
/// InvalidArgumentException naming the member.
pub fn refuse_nested(c: &ExtendedS3Config, name: &str) -> Result<(), ApiError> {
    if c.dynamic_partitioning_configuration.is_some() {
        return Err(ApiError::invalid(format!(
            "{name}.{MEMBER}: dynamic partitioning is only for ExtendedS3 destinations"
        )));
    }
    Ok(())
}

/// The `MetadataExtraction` processor only feeds dynamic partitioning, which only ExtendedS3
/// destinations have: refused in the `ProcessingConfiguration` of any other destination.
///
/// # Errors
/// InvalidArgumentException naming the processor.
pub fn refuse_metadata_extraction(processing: Option<&Value>) -> Result<(), ApiError> {
    let listed = processing
        .and_then(|p| p.get("Processors"))
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|p| p.get("Type").and_then(Value::as_str) == Some("MetadataExtraction"))
        });
    if listed {
        return Err(ApiError::invalid(
            "ProcessingConfiguration: the MetadataExtraction processor is only for ExtendedS3 \
             destinations with DynamicPartitioningConfiguration Enabled",
        ));
    }
    Ok(())
}

/// UpdateDestination cannot turn dynamic partitioning on or off.
///
/// # Errors
/// InvalidArgumentException.
pub fn check_update(current: &ExtendedS3Config, merged: &ExtendedS3Config) -> Result<(), ApiError> {
    if enabled(current) != enabled(merged) {
        return Err(ApiError::invalid(format!(
            "{MEMBER}.Enabled cannot be changed by UpdateDestination: dynamic partitioning is set \
             when the delivery stream is created"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::BufferingHints;

    fn partitioned() -> ExtendedS3Config {
        ExtendedS3Config {
            prefix: Some("customer_id=!{partitionKeyFromQuery:customer_id}/".into()),
            error_output_prefix: Some("errors/!{firehose:error-output-type}/".into()),
            dynamic_partitioning_configuration: Some(json!({"Enabled": true})),
            processing_configuration: Some(json!({"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer_id:.customer_id}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]})),
            ..ExtendedS3Config::default()
        }
    }

    #[test]
    fn rules_when_enabled() {
        assert!(validate(&partitioned()).is_ok());
        let mut c = partitioned();
        c.error_output_prefix = None;
        assert!(validate(&c).is_err_and(|e| e.message.contains("ErrorOutputPrefix")));
        let mut c = partitioned();
        c.buffering_hints = Some(BufferingHints {
            size_in_mbs: Some(5),
            interval_in_seconds: Some(0),
        });
        assert!(validate(&c).is_err_and(|e| e.message.contains("zero buffering")));
        let mut c = partitioned();
        c.processing_configuration = None;
        assert!(validate(&c).is_err_and(|e| e.message.contains("partitioning keys")));
        for (v, ok) in [
            (
                json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": 7200}}),
                true,
            ),
            (
                json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": 7201}}),
                false,
            ),
            (
                json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": -1}}),
                false,
            ),
            (
                json!({"Enabled": true, "RetryOptions": {"Other": 1}}),
                false,
            ),
            (json!({"Enabled": true, "Sparkle": 1}), false),
            (json!({"Enabled": "yes"}), false),
            (json!({"RetryOptions": {"DurationInSeconds": 60}}), false),
        ] {
            let mut c = partitioned();
            c.dynamic_partitioning_configuration = Some(v.clone());
            assert_eq!(validate(&c).is_ok(), ok, "{v}");
        }
        let mut c = partitioned();
        c.dynamic_partitioning_configuration =
            Some(json!({"Enabled": true, "RetryOptions": {"DurationInSeconds": 60}}));
        assert_eq!(retry_seconds(&c), 60);
        assert_eq!(retry_seconds(&partitioned()), RETRY_SECONDS_DEFAULT);
    }

    #[test]
    fn metadata_extraction_needs_partitioning_and_updates_cannot_toggle() {
        let mut c = partitioned();
        c.dynamic_partitioning_configuration = Some(json!({"Enabled": false}));
        assert!(validate(&c).is_err_and(|e| e.message.contains("MetadataExtraction")));
        assert!(check_update(&partitioned(), &c).is_err());
        assert!(check_update(&c, &partitioned()).is_err());
        assert!(check_update(&partitioned(), &partitioned()).is_ok());
        assert!(refuse_nested(&partitioned(), "S3Configuration").is_err());
    }
}
