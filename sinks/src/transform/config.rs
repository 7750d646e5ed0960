//! `ProcessingConfiguration` as Firehose's API takes it: parsing and create-time validation.
//!
//! ```text
//! {"Enabled": true,
//!  "Processors": [{"Type": "RecordDeAggregation",
//!                  "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
//!                 {"Type": "Lambda",
//!                  "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:..."},
//!                                 {"ParameterName": "NumberOfRetries", "ParameterValue": "3"}]},
//!                 {"Type": "AppendDelimiterToRecord"}]}
//! ```
//!
//! The model's names (botocore `firehose/2015-08-04/service-2.json`): `ProcessorType` is one of
//! `RecordDeAggregation, Decompression, CloudWatchLogProcessing, Lambda, MetadataExtraction,
//! AppendDelimiterToRecord`; `ProcessorParameterName` one of `LambdaArn, NumberOfRetries,
//! MetadataExtractionQuery, JsonParsingEngine, RoleArn, BufferSizeInMBs, BufferIntervalInSeconds,
//! SubRecordType, Delimiter, CompressionFormat, DataMessageExtraction`; a `ParameterValue` is 1 to
//! 5120 characters and not only white space.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::partition::query::JSON_PARSING_ENGINE;
use crate::partition::MetadataQuery;

/// Every processor type of Firehose's model.
pub(crate) const PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];

/// The processor types hydrant runs.
pub(crate) const SUPPORTED_PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];

/// Every parameter name of Firehose's model.
pub(crate) const PARAMETER_NAMES: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];

/// `ProcessorParameterValue` length bounds (characters).
const PARAMETER_VALUE_CHARS_MAX: usize = 5120;

/// `NumberOfRetries`: default and upper bound.
pub(crate) const NUMBER_OF_RETRIES_DEFAULT: u32 = 3;
const NUMBER_OF_RETRIES_MAX: u32 = 300;

/// `BufferSizeInMBs` of the Lambda processor: 0.2 to 3 MB, default 1 MB. hydrant counts a MB as
/// 2^20 bytes, as it does for `BufferingHints.SizeInMBs`.
const BUFFER_SIZE_MB_MIN: f64 = 0.2;
const BUFFER_SIZE_MB_MAX: f64 = 3.0;
const BUFFER_SIZE_MB_DEFAULT: f64 = 1.0;

/// `BufferIntervalInSeconds` of the Lambda processor: 0 to 900 s, default 60 s (the developer
/// guide's data-transformation page; older guides said 60 to 900).
const BUFFER_INTERVAL_SECONDS_MAX: u64 = 900;
const BUFFER_INTERVAL_SECONDS_DEFAULT: u64 = 60;

/// A `ProcessingConfiguration` that cannot be accepted. The message is written for the
/// `InvalidArgumentException` the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformConfigError {
    /// A member has the wrong JSON type (`Processors` not a list, `Enabled` not a boolean, ...).
    #[error("ProcessingConfiguration: {path} must be {expected}")]
    Shape {
        /// Where (`Processors[1].Parameters[0].ParameterValue`).
        path: String,
        /// What it must be.
        expected: &'static str,
    },
    /// `Type` is not one of Firehose's processor types.
    #[error(
        "ProcessingConfiguration: Processors[{index}].Type {type_name:?} is not one of {}",
        PROCESSOR_TYPES.join(", ")
    )]
    UnknownProcessorType {
        /// The processor's index.
        index: usize,
        /// The type given.
        type_name: String,
    },
    /// A Firehose processor type that hydrant does not run (`Decompression`,
    /// `CloudWatchLogProcessing`).
    #[error(
        "ProcessingConfiguration: processor type {type_name} is not supported by hydrant \
         (supported: {})",
        SUPPORTED_PROCESSOR_TYPES.join(", ")
    )]
    UnsupportedProcessorType {
        /// The processor's index.
        index: usize,
        /// The type given.
        type_name: String,
    },
    /// Two processors of the same type.
    #[error("ProcessingConfiguration: more than one {type_name} processor")]
    DuplicateProcessor {
        /// The type given twice.
        type_name: String,
    },
    /// `ParameterName` is not one of Firehose's parameter names.
    #[error(
        "ProcessingConfiguration: {processor} parameter name {name:?} is not one of {}",
        PARAMETER_NAMES.join(", ")
    )]
    UnknownParameter {
        /// The processor type.
        processor: String,
        /// The name given.
        name: String,
    },
    /// A parameter that this processor type does not take (`SubRecordType` on `Lambda`, ...).
    #[error("ProcessingConfiguration: {processor} does not take parameter {name}")]
    ParameterNotApplicable {
        /// The processor type.
        processor: String,
        /// The parameter name.
        name: String,
    },
    /// The same parameter twice on one processor.
    #[error("ProcessingConfiguration: {processor} parameter {name} is given more than once")]
    DuplicateParameter {
        /// The processor type.
        processor: String,
        /// The parameter name.
        name: String,
    },
    /// A required parameter is missing (`LambdaArn`; `Delimiter` with `SubRecordType`
    /// `DELIMITED`; `SubRecordType`).
    #[error("ProcessingConfiguration: {processor} requires parameter {name}")]
    MissingParameter {
        /// The processor type.
        processor: String,
        /// The parameter name.
        name: &'static str,
    },
    /// A parameter value out of range or malformed.
    #[error("ProcessingConfiguration: {processor} parameter {name} value {value:?}: {reason}")]
    InvalidParameterValue {
        /// The processor type.
        processor: String,
        /// The parameter name.
        name: String,
        /// The value given (cut to 100 characters).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Lambda function cannot be reached: its ARN has no plain URL in
    /// `LambdaSettings::function_urls` and no Invoke API endpoint is configured.
    #[error(
        "ProcessingConfiguration: Lambda function {lambda_arn} is not reachable: map it to a URL \
         or configure a Lambda endpoint"
    )]
    UnreachableLambda {
        /// The function's ARN.
        lambda_arn: String,
    },
    /// The HTTP client for Lambda calls could not be built (its TLS backend failed to
    /// initialise).
    #[error("Lambda HTTP client: {message}")]
    HttpClient {
        /// What the client library said.
        message: String,
    },
}

/// `RecordDeAggregation`'s `SubRecordType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SubRecordType {
    /// `JSON`: consecutive JSON objects, with or without new lines between them.
    Json,
    /// `DELIMITED`: records separated by the (base64-given) `Delimiter`.
    Delimited(Vec<u8>),
    /// `KPL` (hydrant's extension): the Kinesis Producer Library's aggregated-record format.
    Kpl,
}

/// The Lambda processor's parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LambdaSpec {
    /// `LambdaArn`.
    pub(crate) arn: String,
    /// `NumberOfRetries` (default 3).
    pub(crate) retries: u32,
    /// `BufferSizeInMBs` in bytes (default 1 MB).
    pub(crate) buffer_bytes: u64,
    /// `BufferIntervalInSeconds` (default 60 s).
    pub(crate) buffer_interval: Duration,
}

/// A parsed, valid `ProcessingConfiguration`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spec {
    /// `Enabled` (absent means false).
    pub(crate) enabled: bool,
    /// The `RecordDeAggregation` processor.
    pub(crate) deaggregation: Option<SubRecordType>,
    /// The `Lambda` processor.
    pub(crate) lambda: Option<LambdaSpec>,
    /// The `AppendDelimiterToRecord` processor's delimiter.
    pub(crate) append_delimiter: Option<Vec<u8>>,
    /// The `MetadataExtraction` processor's query (dynamic partitioning).
    pub(crate) metadata_extraction: Option<MetadataQuery>,
}

impl Spec {
    /// Whether any processor runs.
    pub(crate) fn is_active(&self) -> bool {
        self.enabled
            && (self.deaggregation.is_some()
                || self.lambda.is_some()
                || self.metadata_extraction.is_some()
                || self.append_delimiter.is_some())
    }
}

fn shape(path: impl Into<String>, expected: &'static str) -> TransformConfigError {
    TransformConfigError::Shape {
        path: path.into(),
        expected,
    }
}

fn invalid(
    processor: &str,
    name: &str,
    value: &str,
    reason: impl Into<String>,
) -> TransformConfigError {
    TransformConfigError::InvalidParameterValue {
        processor: processor.to_owned(),
        name: name.to_owned(),
        value: value.chars().take(100).collect(),
        reason: reason.into(),
    }
}

/// Parses and validates a `ProcessingConfiguration`.
pub(crate) fn parse(configuration: &Value) -> Result<Spec, TransformConfigError> {
    let object = configuration
        .as_object()
        .ok_or_else(|| shape("ProcessingConfiguration", "a structure"))?;
    let enabled = match object.get("Enabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(shape("Enabled", "a boolean")),
    };
    let mut spec = Spec {
        enabled,
        deaggregation: None,
        lambda: None,
        append_delimiter: None,
        metadata_extraction: None,
    };
    let processors = match object.get("Processors") {
        None | Some(Value::Null) => return Ok(spec),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(shape("Processors", "a list")),
    };
    for (index, processor) in processors.iter().enumerate() {
        let processor_object = processor
            .as_object()
            .ok_or_else(|| shape(format!("Processors[{index}]"), "a structure"))?;
        let type_name = match processor_object.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            None | Some(Value::Null) => {
                return Err(shape(format!("Processors[{index}].Type"), "present"))
            }
            Some(_) => return Err(shape(format!("Processors[{index}].Type"), "a string")),
        };
        if !PROCESSOR_TYPES.contains(&type_name) {
            return Err(TransformConfigError::UnknownProcessorType {
                index,
                type_name: type_name.to_owned(),
            });
        }
        if !SUPPORTED_PROCESSOR_TYPES.contains(&type_name) {
            return Err(TransformConfigError::UnsupportedProcessorType {
                index,
                type_name: type_name.to_owned(),
            });
        }
        let parameters = parameters(index, type_name, processor_object.get("Parameters"))?;
        let duplicate = match type_name {
            "RecordDeAggregation" => spec
                .deaggregation
                .replace(deaggregation(&parameters)?)
                .is_some(),
            "Lambda" => spec.lambda.replace(lambda(&parameters)?).is_some(),
            "MetadataExtraction" => spec
                .metadata_extraction
                .replace(metadata_extraction(&parameters)?)
                .is_some(),
            _ => spec
                .append_delimiter
                .replace(append_delimiter(&parameters)?)
                .is_some(),
        };
        if duplicate {
            return Err(TransformConfigError::DuplicateProcessor {
                type_name: type_name.to_owned(),
            });
        }
    }
    Ok(spec)
}

/// The parameters of one processor, checked against the model and against what `processor`
/// takes: `(name, value)` pairs, names unique.
fn parameters<'a>(
    index: usize,
    processor: &str,
    value: Option<&'a Value>,
) -> Result<Vec<(&'a str, &'a str)>, TransformConfigError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(shape(format!("Processors[{index}].Parameters"), "a list")),
    };
    let accepted: &[&str] = match processor {
        "Lambda" => &[
            "LambdaArn",
            "NumberOfRetries",
            "RoleArn",
            "BufferSizeInMBs",
            "BufferIntervalInSeconds",
        ],
        "RecordDeAggregation" => &["SubRecordType", "Delimiter"],
        "MetadataExtraction" => &["MetadataExtractionQuery", "JsonParsingEngine"],
        _ => &["Delimiter"],
    };
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(list.len());
    for (p, parameter) in list.iter().enumerate() {
        let path = format!("Processors[{index}].Parameters[{p}]");
        let object = parameter
            .as_object()
            .ok_or_else(|| shape(path.clone(), "a structure"))?;
        let name = object
            .get("ParameterName")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{path}.ParameterName"), "a string"))?;
        let value = object
            .get("ParameterValue")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{path}.ParameterValue"), "a string"))?;
        if !PARAMETER_NAMES.contains(&name) {
            return Err(TransformConfigError::UnknownParameter {
                processor: processor.to_owned(),
                name: name.to_owned(),
            });
        }
        if !accepted.contains(&name) {
            return Err(TransformConfigError::ParameterNotApplicable {
                processor: processor.to_owned(),
                name: name.to_owned(),
            });
        }
        let chars = value.chars().count();
        if chars == 0 || chars > PARAMETER_VALUE_CHARS_MAX || value.trim().is_empty() {
            return Err(invalid(
                processor,
                name,
                value,
                "must be 1 to 5120 characters and not only white space",
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(TransformConfigError::DuplicateParameter {
                processor: processor.to_owned(),
                name: name.to_owned(),
            });
        }
        out.push((name, value));
    }
    Ok(out)
}

fn get<'a>(parameters: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    parameters.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A `Delimiter` value: base64 of the delimiter bytes (the developer guide: "This custom
/// delimiter must be a base-64 encoded string", e.g. `IyMjIw==` for `####`).
fn delimiter(processor: &str, value: &str) -> Result<Vec<u8>, TransformConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| invalid(processor, "Delimiter", value, format!("not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(invalid(
            processor,
            "Delimiter",
            value,
            "decodes to no bytes",
        ));
    }
    Ok(bytes)
}

fn deaggregation(parameters: &[(&str, &str)]) -> Result<SubRecordType, TransformConfigError> {
    const P: &str = "RecordDeAggregation";
    let sub_record_type =
        get(parameters, "SubRecordType").ok_or_else(|| TransformConfigError::MissingParameter {
            processor: P.to_owned(),
            name: "SubRecordType",
        })?;
    let given_delimiter = get(parameters, "Delimiter");
    match sub_record_type {
        "JSON" | "KPL" => {
            if given_delimiter.is_some() {
                return Err(TransformConfigError::ParameterNotApplicable {
                    processor: format!("{P} with SubRecordType {sub_record_type}"),
                    name: "Delimiter".to_owned(),
                });
            }
            Ok(if sub_record_type == "JSON" {
                SubRecordType::Json
            } else {
                SubRecordType::Kpl
            })
        }
        "DELIMITED" => {
            let value = given_delimiter.ok_or_else(|| TransformConfigError::MissingParameter {
                processor: format!("{P} with SubRecordType DELIMITED"),
                name: "Delimiter",
            })?;
            Ok(SubRecordType::Delimited(delimiter(P, value)?))
        }
        other => Err(invalid(
            P,
            "SubRecordType",
            other,
            "must be JSON, DELIMITED or KPL",
        )),
    }
}

/// `MetadataExtraction`: `MetadataExtractionQuery` (required, a jq object construction) and
/// `JsonParsingEngine` (`JQ-1.6`, the only engine; required, as Firehose has it).
fn metadata_extraction(parameters: &[(&str, &str)]) -> Result<MetadataQuery, TransformConfigError> {
    const P: &str = "MetadataExtraction";
    let missing = |name| TransformConfigError::MissingParameter {
        processor: P.to_owned(),
        name,
    };
    let query = get(parameters, "MetadataExtractionQuery")
        .ok_or_else(|| missing("MetadataExtractionQuery"))?;
    let engine =
        get(parameters, "JsonParsingEngine").ok_or_else(|| missing("JsonParsingEngine"))?;
    if engine != JSON_PARSING_ENGINE {
        return Err(invalid(P, "JsonParsingEngine", engine, "must be JQ-1.6"));
    }
    MetadataQuery::compile(query)
        .map_err(|e| invalid(P, "MetadataExtractionQuery", query, e.to_string()))
}

fn append_delimiter(parameters: &[(&str, &str)]) -> Result<Vec<u8>, TransformConfigError> {
    match get(parameters, "Delimiter") {
        None => Ok(b"\n".to_vec()),
        Some(value) => delimiter("AppendDelimiterToRecord", value),
    }
}

/// Checks a Lambda function ARN: `arn:<partition>:lambda:<region>:<account>:function:<name>`,
/// optionally followed by `:<qualifier>` (a version or an alias).
pub(crate) fn check_lambda_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if !(parts.len() == 7 || parts.len() == 8)
        || parts[0] != "arn"
        || parts[1].is_empty()
        || parts[2] != "lambda"
        || parts[3].is_empty()
        || parts[4].is_empty()
        || parts[5] != "function"
    {
        return Err(
            "must be arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]"
                .into(),
        );
    }
    let name_ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b))
    };
    if !name_ok(parts[6], b"") {
        return Err("the function name must be letters, digits, '-' and '_'".into());
    }
    if parts.len() == 8 && !name_ok(parts[7], b"$") {
        return Err("the qualifier must be letters, digits, '-', '_' and '$'".into());
    }
    Ok(())
}

fn lambda(parameters: &[(&str, &str)]) -> Result<LambdaSpec, TransformConfigError> {
    const P: &str = "Lambda";
    let arn =
        get(parameters, "LambdaArn").ok_or_else(|| TransformConfigError::MissingParameter {
            processor: P.to_owned(),
            name: "LambdaArn",
        })?;
    check_lambda_arn(arn).map_err(|reason| invalid(P, "LambdaArn", arn, reason))?;
    let retries = match get(parameters, "NumberOfRetries") {
        None => NUMBER_OF_RETRIES_DEFAULT,
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= NUMBER_OF_RETRIES_MAX && value.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                invalid(
                    P,
                    "NumberOfRetries",
                    value,
                    "must be an integer from 0 to 300",
                )
            })?,
    };
    let size_mb = match get(parameters, "BufferSizeInMBs") {
        None => BUFFER_SIZE_MB_DEFAULT,
        Some(value) => value
            .parse::<f64>()
            .ok()
            .filter(|mb| mb.is_finite() && (BUFFER_SIZE_MB_MIN..=BUFFER_SIZE_MB_MAX).contains(mb))
            .ok_or_else(|| {
                invalid(
                    P,
                    "BufferSizeInMBs",
                    value,
                    "must be a number from 0.2 to 3",
                )
            })?,
    };
    let interval = match get(parameters, "BufferIntervalInSeconds") {
        None => BUFFER_INTERVAL_SECONDS_DEFAULT,
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|s| {
                *s <= BUFFER_INTERVAL_SECONDS_MAX && value.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| {
                invalid(
                    P,
                    "BufferIntervalInSeconds",
                    value,
                    "must be an integer from 0 to 900",
                )
            })?,
    };
    // 0.2 MB to 3 MB in bytes: at most 3 * 2^20, exactly representable, so the cast is exact.
    let buffer_bytes = (size_mb * f64::from(1u32 << 20)).round() as u64;
    Ok(LambdaSpec {
        arn: arn.to_owned(),
        retries,
        buffer_bytes,
        buffer_interval: Duration::from_secs(interval),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:upper";

    fn lambda_with(params: Value) -> Value {
        json!({"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": params}]})
    }

    #[test]
    fn full_configuration_parses_with_defaults() {
        let spec = parse(&json!({
            "Enabled": true,
            "Processors": [
                {"Type": "AppendDelimiterToRecord"},
                {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": ARN}]},
                {"Type": "RecordDeAggregation",
                 "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
            ]
        }))
        .unwrap();
        assert!(spec.is_active());
        assert_eq!(spec.deaggregation, Some(SubRecordType::Json));
        assert_eq!(spec.append_delimiter.as_deref(), Some(&b"\n"[..]));
        let lambda = spec.lambda.unwrap();
        assert_eq!(lambda.arn, ARN);
        assert_eq!(lambda.retries, 3);
        assert_eq!(lambda.buffer_bytes, 1 << 20);
        assert_eq!(lambda.buffer_interval, Duration::from_secs(60));
    }

    #[test]
    fn disabled_or_empty_is_inactive() {
        assert!(!parse(&json!({})).unwrap().is_active());
        assert!(!parse(
            &json!({"Enabled": false, "Processors": [{"Type": "AppendDelimiterToRecord"}]})
        )
        .unwrap()
        .is_active());
        assert!(!parse(&json!({"Enabled": true, "Processors": []}))
            .unwrap()
            .is_active());
        // Disabled processors are still validated.
        assert!(parse(&json!({"Enabled": false, "Processors": [{"Type": "Nope"}]})).is_err());
    }

    #[test]
    fn lambda_parameter_ranges() {
        let p = |name: &str, value: &str| {
            parse(&lambda_with(json!([
                {"ParameterName": "LambdaArn", "ParameterValue": ARN},
                {"ParameterName": name, "ParameterValue": value},
            ])))
        };
        assert_eq!(
            p("NumberOfRetries", "0").unwrap().lambda.unwrap().retries,
            0
        );
        assert_eq!(
            p("NumberOfRetries", "300").unwrap().lambda.unwrap().retries,
            300
        );
        for bad in ["301", "-1", "1.5", "x", "+3"] {
            assert!(
                matches!(
                    p("NumberOfRetries", bad),
                    Err(TransformConfigError::InvalidParameterValue { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            p("BufferSizeInMBs", "0.2")
                .unwrap()
                .lambda
                .unwrap()
                .buffer_bytes,
            209_715
        );
        assert_eq!(
            p("BufferSizeInMBs", "3")
                .unwrap()
                .lambda
                .unwrap()
                .buffer_bytes,
            3 << 20
        );
        for bad in ["0.1", "3.5", "NaN", "inf", "one"] {
            assert!(p("BufferSizeInMBs", bad).is_err(), "{bad}");
        }
        assert_eq!(
            p("BufferIntervalInSeconds", "900")
                .unwrap()
                .lambda
                .unwrap()
                .buffer_interval,
            Duration::from_secs(900)
        );
        assert!(p("BufferIntervalInSeconds", "0").is_ok());
        assert!(p("BufferIntervalInSeconds", "901").is_err());
        assert!(p("RoleArn", "arn:aws:iam::123456789012:role/firehose").is_ok());
        assert!(matches!(
            p("SubRecordType", "JSON"),
            Err(TransformConfigError::ParameterNotApplicable { .. })
        ));
        assert!(matches!(
            p("Colour", "blue"),
            Err(TransformConfigError::UnknownParameter { .. })
        ));
        assert!(matches!(
            p("LambdaArn", ARN),
            Err(TransformConfigError::DuplicateParameter { .. })
        ));
        assert!(matches!(
            p("NumberOfRetries", "   "),
            Err(TransformConfigError::InvalidParameterValue { .. })
        ));
    }

    #[test]
    fn lambda_arn_is_required_and_checked() {
        assert!(matches!(
            parse(&lambda_with(json!([]))),
            Err(TransformConfigError::MissingParameter {
                name: "LambdaArn",
                ..
            })
        ));
        for bad in [
            "upper",
            "arn:aws:lambda:us-east-1:123456789012:upper",
            "arn:aws:s3:us-east-1:123456789012:function:upper",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:123456789012:function:up per",
        ] {
            assert!(check_lambda_arn(bad).is_err(), "{bad}");
        }
        assert!(check_lambda_arn(&format!("{ARN}:$LATEST")).is_ok());
        assert!(check_lambda_arn(&format!("{ARN}:live")).is_ok());
    }

    #[test]
    fn deaggregation_types() {
        let p = |params: Value| {
            parse(&json!({"Enabled": true, "Processors": [
                {"Type": "RecordDeAggregation", "Parameters": params}]}))
        };
        let sub = |t: &str| json!([{"ParameterName": "SubRecordType", "ParameterValue": t}]);
        assert_eq!(
            p(sub("KPL")).unwrap().deaggregation,
            Some(SubRecordType::Kpl)
        );
        assert!(matches!(
            p(sub("DELIMITED")),
            Err(TransformConfigError::MissingParameter {
                name: "Delimiter",
                ..
            })
        ));
        let delimited = p(json!([
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": "IyMjIw=="},
        ]))
        .unwrap();
        assert_eq!(
            delimited.deaggregation,
            Some(SubRecordType::Delimited(b"####".to_vec()))
        );
        assert!(p(json!([
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": "not base64!"},
        ]))
        .is_err());
        assert!(p(sub("CSV")).is_err());
        assert!(matches!(
            p(json!([])),
            Err(TransformConfigError::MissingParameter {
                name: "SubRecordType",
                ..
            })
        ));
    }

    #[test]
    fn processor_types() {
        for unsupported in ["Decompression", "CloudWatchLogProcessing"] {
            let e = parse(&json!({"Enabled": true, "Processors": [{"Type": unsupported}]}))
                .unwrap_err();
            assert!(matches!(
                e,
                TransformConfigError::UnsupportedProcessorType { .. }
            ));
            assert!(e.to_string().contains(unsupported), "{e}");
        }
        let e = parse(&json!({"Enabled": true, "Processors": [{"Type": "Sparkle"}]})).unwrap_err();
        assert!(
            matches!(e, TransformConfigError::UnknownProcessorType { .. }),
            "{e}"
        );
        let e = parse(&json!({"Enabled": true, "Processors": [
            {"Type": "AppendDelimiterToRecord"}, {"Type": "AppendDelimiterToRecord"}]}))
        .unwrap_err();
        assert!(
            matches!(e, TransformConfigError::DuplicateProcessor { .. }),
            "{e}"
        );
        assert!(parse(&json!({"Enabled": true, "Processors": [{}]})).is_err());
        assert!(parse(&json!({"Enabled": "yes"})).is_err());
        assert!(parse(&json!({"Processors": {}})).is_err());
        assert!(parse(&json!([])).is_err());
        let custom = parse(
            &json!({"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord",
            "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "LA=="}]}]}),
        )
        .unwrap();
        assert_eq!(custom.append_delimiter.as_deref(), Some(&b","[..]));
    }

    #[test]
    fn metadata_extraction_parameters() {
        let p = |params: Value| {
            parse(&json!({"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": params}]}))
        };
        let q = |v: &str| json!({"ParameterName": "MetadataExtractionQuery", "ParameterValue": v});
        let engine = |v: &str| json!({"ParameterName": "JsonParsingEngine", "ParameterValue": v});
        let spec = p(json!([q("{customer_id:.customer_id}"), engine("JQ-1.6")])).unwrap();
        assert!(spec.is_active());
        assert_eq!(
            spec.metadata_extraction.map(|m| m.keys().to_vec()),
            Some(vec!["customer_id".to_owned()])
        );
        let e = p(json!([q("{a:.a}")])).unwrap_err();
        assert!(e.to_string().contains("JsonParsingEngine"), "{e}");
        let e = p(json!([engine("JQ-1.6")])).unwrap_err();
        assert!(e.to_string().contains("MetadataExtractionQuery"), "{e}");
        let e = p(json!([q("{a:.a}"), engine("JQ-1.5")])).unwrap_err();
        assert!(e.to_string().contains("JQ-1.6"), "{e}");
        let e = p(json!([q(".a"), engine("JQ-1.6")])).unwrap_err();
        assert!(e.to_string().contains("object construction"), "{e}");
        let e = p(json!([q("{a:.a}"), engine("JQ-1.6"),
            {"ParameterName": "LambdaArn", "ParameterValue": ARN}]))
        .unwrap_err();
        assert!(
            matches!(e, TransformConfigError::ParameterNotApplicable { .. }),
            "{e}"
        );
    }
}
