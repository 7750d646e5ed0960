//! `DataFormatConversionConfiguration` of an ExtendedS3 destination: its create-time rules.
//!
//! - The structure itself (every member applied or refused by name, the Parquet serializer's
//!   bounds, the deserializer's timestamp patterns) is checked by the sinks crate's
//!   [`hydrant_sinks::convert::Settings::from_firehose`], the same code delivery builds from.
//! - `Enabled` omitted means enabled (Firehose's default); `Enabled: false` needs nothing else.
//! - When enabled, as AWS enforces: the destination's `CompressionFormat` must be
//!   `UNCOMPRESSED` (the serializer compresses), `BufferingHints.SizeInMBs` at least 64 when
//!   given ([`SIZE_MIN_MB`]; default [`SIZE_DEFAULT_MB`]), and objects end in `.parquet`
//!   (`ParquetSerDe`) or `.orc` (`OrcSerDe`) unless `FileExtension` says otherwise.
//! - The table must exist in the schema's catalog: checked where the catalog is known (the
//!   daemon's `check_destination`).
//!
//! Delivery applies it through the engine's `delivery::spec`: the object sink converts each
//! object's records ([`hydrant_sinks::convert`]).

use hydrant_sinks::convert::Settings;

use crate::errors::ApiError;
use crate::model::ExtendedS3Config;

/// The smallest `BufferingHints.SizeInMBs` with conversion.
pub const SIZE_MIN_MB: u32 = 64;
/// `BufferingHints.SizeInMBs` with conversion when not given.
pub const SIZE_DEFAULT_MB: u32 = 128;
/// The object extension with conversion to Parquet when `FileExtension` is not given (ORC's is
/// `.orc`: [`hydrant_sinks::convert::settings::Output::extension`]).
pub const EXTENSION: &str = ".parquet";

/// The checked settings when the destination converts, `None` when it does not.
///
/// # Errors
/// InvalidArgumentException naming the member broken or refused.
pub fn settings(c: &ExtendedS3Config) -> Result<Option<Settings>, ApiError> {
    match &c.data_format_conversion_configuration {
        None => Ok(None),
        Some(v) => Settings::from_firehose(v).map_err(|e| ApiError::invalid(e.0)),
    }
}

/// Whether the destination converts (given, and `Enabled` not false).
#[must_use]
pub fn enabled(c: &ExtendedS3Config) -> bool {
    c.data_format_conversion_configuration
        .as_ref()
        .is_some_and(|v| v.get("Enabled").and_then(serde_json::Value::as_bool) != Some(false))
}

/// The rules of the module documentation that need no catalog.
///
/// # Errors
/// InvalidArgumentException naming the rule broken.
pub fn validate(c: &ExtendedS3Config) -> Result<(), ApiError> {
    if settings(c)?.is_none() {
        return Ok(());
    }
    if let Some(f) = c.compression_format.as_deref() {
        if f != "UNCOMPRESSED" {
            return Err(ApiError::invalid(format!(
                "CompressionFormat {f:?} cannot be used with DataFormatConversionConfiguration: \
                 it must be UNCOMPRESSED (the serializer compresses)"
            )));
        }
    }
    if let Some(size) = c.buffering_hints.and_then(|h| h.size_in_mbs) {
        if size < SIZE_MIN_MB {
            return Err(ApiError::invalid(format!(
                "BufferingHints.SizeInMBs must be at least {SIZE_MIN_MB} with \
                 DataFormatConversionConfiguration enabled"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::BufferingHints;

    fn converting() -> ExtendedS3Config {
        ExtendedS3Config {
            data_format_conversion_configuration: Some(json!({
                "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
            })),
            ..ExtendedS3Config::default()
        }
    }

    fn message(c: &ExtendedS3Config) -> String {
        validate(c).err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn create_rules_as_aws_enforces_them() {
        let mut c = converting();
        assert!(validate(&c).is_ok());
        assert!(enabled(&c));
        c.compression_format = Some("GZIP".into());
        assert!(
            message(&c).contains("must be UNCOMPRESSED"),
            "{}",
            message(&c)
        );
        c.compression_format = Some("UNCOMPRESSED".into());
        assert!(validate(&c).is_ok());
        c.buffering_hints = Some(BufferingHints {
            size_in_mbs: Some(63),
            interval_in_seconds: Some(60),
        });
        assert!(message(&c).contains("at least 64"), "{}", message(&c));
        c.buffering_hints = Some(BufferingHints {
            size_in_mbs: Some(64),
            interval_in_seconds: Some(60),
        });
        assert!(validate(&c).is_ok());
        // Disabled: none of the rules apply.
        let off = ExtendedS3Config {
            data_format_conversion_configuration: Some(json!({"Enabled": false})),
            compression_format: Some("GZIP".into()),
            ..ExtendedS3Config::default()
        };
        assert!(validate(&off).is_ok());
        assert!(!enabled(&off));
    }

    #[test]
    fn refused_members_are_named() {
        let mut c = converting();
        if let Some(v) = c.data_format_conversion_configuration.as_mut() {
            v["OutputFormatConfiguration"]["Serializer"] =
                json!({"OrcSerDe": {"BloomFilterColumns": ["id"]}});
        }
        assert!(
            message(&c).contains("OrcSerDe.BloomFilterColumns is not supported by hydrant"),
            "{}",
            message(&c)
        );
    }
}
