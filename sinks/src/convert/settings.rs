//! `DataFormatConversionConfiguration`, as Firehose takes it, checked into [`Settings`]: one set
//! of rules for the API (create and update) and for delivery.
//!
//! ```text
//! {"Enabled": true,                                   omitted = enabled
//!  "SchemaConfiguration": {"DatabaseName", "TableName",                 required
//!                          "CatalogId", "Region", "RoleARN", "VersionId"(LATEST)},
//!  "InputFormatConfiguration": {"Deserializer":
//!      {"OpenXJsonSerDe": {"CaseInsensitive", "ConvertDotsInJsonKeysToUnderscores",
//!                          "ColumnToJsonKeyMappings"}}
//!    | {"HiveJsonSerDe": {"TimestampFormats": [...]}}},
//!  "OutputFormatConfiguration": {"Serializer":
//!      {"ParquetSerDe": {"BlockSizeBytes", "PageSizeBytes", "Compression",
//!                        "EnableDictionaryCompression", "MaxPaddingBytes", "WriterVersion"}}
//!    | {"OrcSerDe": {"StripeSizeBytes", "BlockSizeBytes", "RowIndexStride",
//!                    "EnablePadding", "PaddingTolerance", "Compression",
//!                    "BloomFilterColumns", "BloomFilterFalsePositiveProbability",
//!                    "DictionaryKeyThreshold", "FormatVersion"}}}}
//! ```
//!
//! Every member is applied or refused by name (the serializers' tables: [`super::parquet_writer`],
//! [`super::orc_writer`]). Refused: `MaxPaddingBytes` other than 0 (the Parquet writer does not
//! pad); `RowIndexStride`, `BloomFilterFalsePositiveProbability` and a non-empty
//! `BloomFilterColumns` (the ORC writer writes no row index and no bloom filter); a `VersionId` other than `LATEST` with the
//! local catalog (checked where the catalog is known). `RoleARN` is described back only
//! (hydrant has no IAM); `CatalogId` and `Region` name the table in the failure JSON's
//! `dataCatalogTable`.

use serde_json::{Map, Value};

use super::deserializer::Deserializer;
use super::orc_writer::{self, FormatVersion, OrcCompression, OrcSettings};
use super::parquet_writer::{ParquetCompression, ParquetOptions, BLOCK_SIZE_MIN, PAGE_SIZE_MIN};
use super::timestamp::TimestampFormat;

const MEMBER: &str = "DataFormatConversionConfiguration";

/// A setting broken: the message names the member.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// `SchemaConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaRef {
    /// `DatabaseName`.
    pub database: String,
    /// `TableName`.
    pub table: String,
    /// `CatalogId` (the account, in Glue), when given.
    pub catalog_id: Option<String>,
    /// `Region`, when given.
    pub region: Option<String>,
    /// `VersionId` (`LATEST` when not given).
    pub version_id: String,
}

/// `OutputFormatConfiguration.Serializer`: the file format and its writer's settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// `ParquetSerDe`.
    Parquet(ParquetOptions),
    /// `OrcSerDe`.
    Orc(OrcSettings),
}

impl Output {
    /// The objects' extension when `FileExtension` is not given.
    pub fn extension(&self) -> &'static str {
        match self {
            Output::Parquet(_) => ".parquet",
            Output::Orc(_) => ".orc",
        }
    }
}

/// A checked, enabled `DataFormatConversionConfiguration`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Where the schema is.
    pub schema: SchemaRef,
    /// How JSON keys find columns.
    pub deserializer: Deserializer,
    /// The file format and its writer's settings.
    pub output: Output,
}

impl Settings {
    /// The checked settings, or `None` when the structure says `Enabled: false`.
    ///
    /// # Errors
    /// [`SettingsError`] naming the member broken or refused.
    pub fn from_firehose(v: &Value) -> Result<Option<Settings>, SettingsError> {
        let top = object(v, MEMBER)?;
        let mut enabled = true;
        for (name, value) in top {
            match name.as_str() {
                "Enabled" => enabled = boolean(value, &format!("{MEMBER}.Enabled"))?,
                "SchemaConfiguration"
                | "InputFormatConfiguration"
                | "OutputFormatConfiguration" => {}
                other => return Err(refused(&format!("{MEMBER}.{other}"), "not a member")),
            }
        }
        if !enabled {
            return Ok(None);
        }
        let required = |name: &str| {
            top.get(name).ok_or_else(|| {
                SettingsError(format!(
                    "{MEMBER}.{name} is required when the conversion is enabled"
                ))
            })
        };
        let schema = schema(required("SchemaConfiguration")?)?;
        let deserializer = deserializer(required("InputFormatConfiguration")?)?;
        let output = serializer(required("OutputFormatConfiguration")?)?;
        Ok(Some(Settings {
            schema,
            deserializer,
            output,
        }))
    }
}

fn refused(member: &str, why: &str) -> SettingsError {
    SettingsError(format!("{member} is not supported by hydrant ({why})"))
}

fn object<'v>(v: &'v Value, name: &str) -> Result<&'v Map<String, Value>, SettingsError> {
    v.as_object()
        .ok_or_else(|| SettingsError(format!("{name} must be a structure")))
}

fn boolean(v: &Value, name: &str) -> Result<bool, SettingsError> {
    v.as_bool()
        .ok_or_else(|| SettingsError(format!("{name} must be a boolean")))
}

fn string<'v>(v: &'v Value, name: &str) -> Result<&'v str, SettingsError> {
    v.as_str()
        .ok_or_else(|| SettingsError(format!("{name} must be a string")))
}

fn schema(v: &Value) -> Result<SchemaRef, SettingsError> {
    let path = format!("{MEMBER}.SchemaConfiguration");
    let mut s = SchemaRef {
        database: String::new(),
        table: String::new(),
        catalog_id: None,
        region: None,
        version_id: "LATEST".into(),
    };
    for (name, value) in object(v, &path)? {
        let member = format!("{path}.{name}");
        let text = || -> Result<String, SettingsError> {
            let t = string(value, &member)?;
            if t.is_empty() || t.len() > 1024 || t.trim() != t {
                return Err(SettingsError(format!(
                    "{member} must be 1 to 1024 characters without surrounding spaces"
                )));
            }
            Ok(t.to_string())
        };
        match name.as_str() {
            "DatabaseName" => s.database = text()?,
            "TableName" => s.table = text()?,
            "CatalogId" => s.catalog_id = Some(text()?),
            "Region" => s.region = Some(text()?),
            "VersionId" => s.version_id = text()?,
            "RoleARN" => {
                text()?;
            }
            other => return Err(refused(&format!("{path}.{other}"), "not a member")),
        }
    }
    for (name, value) in [("DatabaseName", &s.database), ("TableName", &s.table)] {
        if value.is_empty() {
            return Err(SettingsError(format!("{path}.{name} is required")));
        }
    }
    Ok(s)
}

/// The one member of a union structure (`Deserializer`, `Serializer`).
fn one_of<'v>(v: &'v Value, path: &str) -> Result<(&'v str, &'v Value), SettingsError> {
    let o = object(v, path)?;
    let mut members = o.iter();
    match (members.next(), members.next()) {
        (Some((name, value)), None) => Ok((name.as_str(), value)),
        _ => Err(SettingsError(format!(
            "{path} must have exactly one member"
        ))),
    }
}

fn deserializer(v: &Value) -> Result<Deserializer, SettingsError> {
    let path = format!("{MEMBER}.InputFormatConfiguration");
    let o = object(v, &path)?;
    if let Some(other) = o.keys().find(|k| *k != "Deserializer") {
        return Err(refused(&format!("{path}.{other}"), "not a member"));
    }
    let d = o
        .get("Deserializer")
        .ok_or_else(|| SettingsError(format!("{path}.Deserializer is required")))?;
    let path = format!("{path}.Deserializer");
    let (kind, settings) = one_of(d, &path)?;
    let mut de = Deserializer::default();
    match kind {
        "OpenXJsonSerDe" => {
            let path = format!("{path}.OpenXJsonSerDe");
            for (name, value) in object(settings, &path)? {
                let member = format!("{path}.{name}");
                match name.as_str() {
                    "CaseInsensitive" => de.case_insensitive = boolean(value, &member)?,
                    "ConvertDotsInJsonKeysToUnderscores" => {
                        de.dots_to_underscores = boolean(value, &member)?;
                    }
                    "ColumnToJsonKeyMappings" => {
                        for (column, key) in object(value, &member)? {
                            let key = string(key, &format!("{member}.{column}"))?;
                            if column.is_empty() || key.is_empty() {
                                return Err(SettingsError(format!(
                                    "{member}: names and keys must not be empty"
                                )));
                            }
                            de.mappings.push((column.to_lowercase(), key.to_string()));
                        }
                    }
                    other => return Err(refused(&format!("{path}.{other}"), "not a member")),
                }
            }
        }
        "HiveJsonSerDe" => {
            let path = format!("{path}.HiveJsonSerDe");
            for (name, value) in object(settings, &path)? {
                let member = format!("{path}.{name}");
                match name.as_str() {
                    "TimestampFormats" => {
                        let list = value.as_array().ok_or_else(|| {
                            SettingsError(format!("{member} must be a list of strings"))
                        })?;
                        for f in list {
                            let f = string(f, &member)?;
                            de.timestamp_formats.push(
                                TimestampFormat::parse(f)
                                    .map_err(|e| SettingsError(format!("{member}: {e}")))?,
                            );
                        }
                    }
                    other => return Err(refused(&format!("{path}.{other}"), "not a member")),
                }
            }
        }
        other => return Err(refused(&format!("{path}.{other}"), "not a deserializer")),
    }
    Ok(de)
}

fn serializer(v: &Value) -> Result<Output, SettingsError> {
    let path = format!("{MEMBER}.OutputFormatConfiguration");
    let o = object(v, &path)?;
    if let Some(other) = o.keys().find(|k| *k != "Serializer") {
        return Err(refused(&format!("{path}.{other}"), "not a member"));
    }
    let s = o
        .get("Serializer")
        .ok_or_else(|| SettingsError(format!("{path}.Serializer is required")))?;
    let path = format!("{path}.Serializer");
    let (kind, settings) = one_of(s, &path)?;
    match kind {
        "ParquetSerDe" => parquet(settings, &format!("{path}.ParquetSerDe")).map(Output::Parquet),
        "OrcSerDe" => orc(settings, &format!("{path}.OrcSerDe")).map(Output::Orc),
        other => Err(refused(&format!("{path}.{other}"), "not a serializer")),
    }
}

/// An integer member from `min` to 2147483647 (the API's `integer`).
fn integer_from(value: &Value, member: &str, min: u64) -> Result<u64, SettingsError> {
    value
        .as_u64()
        .filter(|n| *n >= min && *n <= i32::MAX as u64)
        .ok_or_else(|| {
            SettingsError(format!(
                "{member} must be an integer from {min} to 2147483647"
            ))
        })
}

/// A `Proportion` member: a number from 0 to 1.
fn proportion(value: &Value, member: &str) -> Result<f64, SettingsError> {
    value
        .as_f64()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| SettingsError(format!("{member} must be a number from 0 to 1")))
}

fn orc(settings: &Value, path: &str) -> Result<OrcSettings, SettingsError> {
    let mut o = OrcSettings::default();
    for (name, value) in object(settings, path)? {
        let member = format!("{path}.{name}");
        match name.as_str() {
            "StripeSizeBytes" => {
                o.stripe_size_bytes = integer_from(value, &member, orc_writer::STRIPE_SIZE_MIN)?;
            }
            "BlockSizeBytes" => {
                o.block_size_bytes = integer_from(value, &member, orc_writer::BLOCK_SIZE_MIN)?;
            }
            "EnablePadding" => o.enable_padding = boolean(value, &member)?,
            "PaddingTolerance" => o.padding_tolerance = proportion(value, &member)?,
            "Compression" => {
                let c = string(value, &member)?;
                o.compression = OrcCompression::from_firehose(c).ok_or_else(|| {
                    SettingsError(format!("{member} {c:?} must be NONE, ZLIB or SNAPPY"))
                })?;
            }
            "FormatVersion" => {
                o.format_version = match string(value, &member)? {
                    "V0_11" => FormatVersion::V0_11,
                    "V0_12" => FormatVersion::V0_12,
                    other => {
                        return Err(SettingsError(format!(
                            "{member} {other:?} must be V0_11 or V0_12"
                        )))
                    }
                };
            }
            "RowIndexStride" => {
                integer_from(value, &member, 1000)?;
                return Err(refused(
                    &member,
                    "the ORC writer writes no row index; leave it out",
                ));
            }
            "BloomFilterColumns" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| SettingsError(format!("{member} must be a list of strings")))?;
                if !list.is_empty() {
                    return Err(refused(
                        &member,
                        "the ORC writer writes no bloom filter; only an empty list is accepted",
                    ));
                }
            }
            "BloomFilterFalsePositiveProbability" => {
                proportion(value, &member)?;
                return Err(refused(
                    &member,
                    "the ORC writer writes no bloom filter; leave it out",
                ));
            }
            "DictionaryKeyThreshold" => o.dictionary_key_threshold = proportion(value, &member)?,
            other => return Err(refused(&format!("{path}.{other}"), "not a member")),
        }
    }
    Ok(o)
}

fn parquet(settings: &Value, path: &str) -> Result<ParquetOptions, SettingsError> {
    let mut p = ParquetOptions::default();
    for (name, value) in object(settings, path)? {
        let member = format!("{path}.{name}");
        let at_least = |min: u64| integer_from(value, &member, min);
        match name.as_str() {
            "BlockSizeBytes" => p.block_size_bytes = at_least(BLOCK_SIZE_MIN)?,
            "PageSizeBytes" => p.page_size_bytes = at_least(PAGE_SIZE_MIN)?,
            "Compression" => {
                let c = string(value, &member)?;
                p.compression = ParquetCompression::from_firehose(c).ok_or_else(|| {
                    SettingsError(format!(
                        "{member} {c:?} must be UNCOMPRESSED, GZIP or SNAPPY"
                    ))
                })?;
            }
            "EnableDictionaryCompression" => p.dictionary = boolean(value, &member)?,
            "MaxPaddingBytes" => {
                if at_least(0)? != 0 {
                    return Err(refused(
                        &member,
                        "the Parquet writer does not pad row groups; only 0 is accepted",
                    ));
                }
            }
            "WriterVersion" => {
                p.writer_v2 = match string(value, &member)? {
                    "V1" => false,
                    "V2" => true,
                    other => {
                        return Err(SettingsError(format!(
                            "{member} {other:?} must be V1 or V2"
                        )))
                    }
                };
            }
            other => return Err(refused(&format!("{path}.{other}"), "not a member")),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t",
                                    "RoleARN": "arn:aws:iam::123456789012:role/r"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        })
    }

    fn message(v: &Value) -> String {
        Settings::from_firehose(v)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    #[test]
    fn defaults_and_disabled() {
        let s = Settings::from_firehose(&base())
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(s.schema.version_id, "LATEST");
        assert_eq!(s.output, Output::Parquet(ParquetOptions::default()));
        assert_eq!(s.output.extension(), ".parquet");
        assert_eq!(s.deserializer, Deserializer::default());
        let mut off = base();
        off["Enabled"] = json!(false);
        assert_eq!(Settings::from_firehose(&off), Ok(None));
        // Disabled needs nothing else.
        assert_eq!(
            Settings::from_firehose(&json!({"Enabled": false})),
            Ok(None)
        );
    }

    #[test]
    fn every_member_is_applied_or_refused_by_name() {
        let mut v = base();
        v["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"] = json!({
            "BlockSizeBytes": 67_108_864, "PageSizeBytes": 65_536, "Compression": "GZIP",
            "EnableDictionaryCompression": false, "MaxPaddingBytes": 0, "WriterVersion": "V2"});
        v["InputFormatConfiguration"]["Deserializer"]["OpenXJsonSerDe"] = json!({
            "CaseInsensitive": false, "ConvertDotsInJsonKeysToUnderscores": true,
            "ColumnToJsonKeyMappings": {"TS": "event.time"}});
        let s = Settings::from_firehose(&v)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(
            s.output,
            Output::Parquet(ParquetOptions {
                block_size_bytes: 67_108_864,
                page_size_bytes: 65_536,
                compression: ParquetCompression::Gzip,
                dictionary: false,
                writer_v2: true,
            })
        );
        assert!(!s.deserializer.case_insensitive && s.deserializer.dots_to_underscores);
        assert_eq!(
            s.deserializer.mappings,
            vec![("ts".to_string(), "event.time".to_string())]
        );
        let mut v = base();
        v["OutputFormatConfiguration"]["Serializer"] = json!({"OrcSerDe": {
            "StripeSizeBytes": 8_388_608, "BlockSizeBytes": 67_108_864, "EnablePadding": true,
            "PaddingTolerance": 0.2, "Compression": "ZLIB", "BloomFilterColumns": [],
            "DictionaryKeyThreshold": 0.5, "FormatVersion": "V0_11"}});
        let s = Settings::from_firehose(&v)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(
            s.output,
            Output::Orc(OrcSettings {
                stripe_size_bytes: 8_388_608,
                block_size_bytes: 67_108_864,
                enable_padding: true,
                padding_tolerance: 0.2,
                compression: OrcCompression::Zlib,
                format_version: FormatVersion::V0_11,
                dictionary_key_threshold: 0.5,
            })
        );
        assert_eq!(s.output.extension(), ".orc");
        v["OutputFormatConfiguration"]["Serializer"] = json!({"OrcSerDe": {}});
        let s = Settings::from_firehose(&v)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(s.output, Output::Orc(OrcSettings::default()));
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"OrcSerDe": {"RowIndexStride": 10000}}),
                "OrcSerDe.RowIndexStride is not supported",
            ),
            (
                json!({"OrcSerDe": {"RowIndexStride": 10}}),
                "RowIndexStride must be an integer from 1000",
            ),
            (
                json!({"OrcSerDe": {"BloomFilterColumns": ["id"]}}),
                "OrcSerDe.BloomFilterColumns is not supported",
            ),
            (
                json!({"OrcSerDe": {"BloomFilterFalsePositiveProbability": 0.05}}),
                "OrcSerDe.BloomFilterFalsePositiveProbability is not supported",
            ),
            (
                json!({"OrcSerDe": {"DictionaryKeyThreshold": 2}}),
                "DictionaryKeyThreshold must be a number from 0 to 1",
            ),
            (
                json!({"OrcSerDe": {"StripeSizeBytes": 1024}}),
                "StripeSizeBytes must be an integer from 8388608",
            ),
            (
                json!({"OrcSerDe": {"BlockSizeBytes": 1024}}),
                "OrcSerDe.BlockSizeBytes must be an integer from 67108864",
            ),
            (
                json!({"OrcSerDe": {"PaddingTolerance": 1.5}}),
                "PaddingTolerance must be a number from 0 to 1",
            ),
            (
                json!({"OrcSerDe": {"Compression": "GZIP"}}),
                "Compression \"GZIP\" must be NONE, ZLIB or SNAPPY",
            ),
            (
                json!({"OrcSerDe": {"FormatVersion": "V0_13"}}),
                "must be V0_11 or V0_12",
            ),
            (
                json!({"OrcSerDe": {"Bogus": 1}}),
                "OrcSerDe.Bogus is not supported",
            ),
            (
                json!({"ParquetSerDe": {"MaxPaddingBytes": 1}}),
                "ParquetSerDe.MaxPaddingBytes is not supported",
            ),
            (
                json!({"ParquetSerDe": {"BlockSizeBytes": 1024}}),
                "BlockSizeBytes must be an integer from 67108864",
            ),
            (
                json!({"ParquetSerDe": {"PageSizeBytes": 1024}}),
                "PageSizeBytes must be an integer from 65536",
            ),
            (
                json!({"ParquetSerDe": {"Compression": "LZO"}}),
                "Compression \"LZO\" must be",
            ),
            (
                json!({"ParquetSerDe": {"WriterVersion": "V3"}}),
                "must be V1 or V2",
            ),
            (
                json!({"ParquetSerDe": {"Bogus": 1}}),
                "ParquetSerDe.Bogus is not supported",
            ),
            (
                json!({"ParquetSerDe": {}, "OrcSerDe": {}}),
                "exactly one member",
            ),
        ];
        for (serializer, want) in cases {
            let mut v = base();
            v["OutputFormatConfiguration"]["Serializer"] = serializer;
            let m = message(&v);
            assert!(m.contains(want), "{want}: {m}");
        }
        let mut v = base();
        v["InputFormatConfiguration"]["Deserializer"] =
            json!({"HiveJsonSerDe": {"TimestampFormats": ["yyyy-ww"]}});
        assert!(message(&v).contains("TimestampFormats"), "{}", message(&v));
        let mut v = base();
        v["SchemaConfiguration"] = json!({"DatabaseName": "db"});
        assert!(message(&v).contains("TableName is required"));
        let mut v = base();
        v["SchemaConfiguration"]["Extra"] = json!("x");
        assert!(message(&v).contains("SchemaConfiguration.Extra is not supported"));
        let mut v = base();
        v["Unknown"] = json!(1);
        assert!(message(&v).contains("DataFormatConversionConfiguration.Unknown"));
        let mut v = base();
        v.as_object_mut()
            .map(|o| o.remove("OutputFormatConfiguration"));
        assert!(message(&v).contains("OutputFormatConfiguration is required"));
    }
}
