//! Firehose's failed-record JSON: what the error output holds.
//!
//! When records cannot be delivered (or transformed) within the retry duration, Firehose writes
//! them to `ErrorOutputPrefix` as one JSON document per record, one per line:
//!
//! ```text
//! {"attemptsMade":4,"arrivalTimestamp":1510254469499,"errorCode":"Lambda.Unhandled",
//!  "errorMessage":"...","attemptEndingTimestamp":1510254905340,"rawData":"<base64>",
//!  "lambdaARN":"arn:aws:lambda:..."}
//! ```
//!
//! The common fields come first, in Firehose's order; each failure kind adds its own (see
//! [`FailureDetail`]). Timestamps are Unix epoch milliseconds as JSON numbers, `rawData` is the
//! record's original bytes in standard base64.
//!
//! The Lambda ARN field is spelled `lambdaARN`: the developer guide writes `lambdaArn`, but
//! objects captured from the real service carry `lambdaARN`, and consumers read what the service
//! writes.

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use crate::keys::ErrorOutputType;

/// One record that could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRecord {
    /// How many attempts were made (Lambda invocations, HTTP requests, bulk requests).
    pub attempts_made: u32,
    /// When the record arrived (Unix epoch ms).
    pub arrival_timestamp_ms: u64,
    /// The error code (`Lambda.FunctionError`, `HttpEndpoint.DestinationException`, ...).
    pub error_code: String,
    /// The error message.
    pub error_message: String,
    /// When the last attempt ended (Unix epoch ms).
    pub attempt_ending_timestamp_ms: u64,
    /// The record's original bytes (written base64-encoded).
    pub raw_data: Bytes,
    /// The failure kind and its own fields.
    pub detail: FailureDetail,
}

/// The kind of failure, with the fields Firehose adds for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureDetail {
    /// The Lambda transform failed: `processing-failed`, adds `lambdaARN`.
    Processing {
        /// The function's ARN.
        lambda_arn: String,
    },
    /// Source decompression failed: `decompression-failed`, no extra field.
    Decompression,
    /// The HTTP endpoint did not accept the record: `http-endpoint-failed`, adds
    /// `subsequenceNumber` and `dataId`.
    HttpEndpoint {
        /// The record's index within its source record (0 for direct put).
        subsequence_number: u64,
        /// The record's id.
        data_id: String,
    },
    /// OpenSearch Service (or the legacy Elasticsearch destination, `legacy_elasticsearch`) did not
    /// index the document: `AmazonOpenSearchService-failed` / `elasticsearch-failed`, adds
    /// `esDocumentId`, `esIndexName`, `esTypeName`.
    OpenSearch {
        /// The document id sent (absent with `NO_DOCUMENT_ID`).
        document_id: Option<String>,
        /// The index the document was meant for.
        index_name: String,
        /// The type name, if the destination has one.
        type_name: Option<String>,
        /// Whether the destination is the legacy Elasticsearch kind (`elasticsearch-failed`).
        legacy_elasticsearch: bool,
    },
    /// OpenSearch Serverless did not index the document: adds `osDocumentId`, `osIndexName`.
    /// Its error-output type is not documented; hydrant files it under
    /// `AmazonOpenSearchService-failed`.
    OpenSearchServerless {
        /// The document id sent.
        document_id: Option<String>,
        /// The index the document was meant for.
        index_name: String,
    },
    /// Splunk did not acknowledge the event: `splunk-failed`, adds `EventId`.
    Splunk {
        /// The event id.
        event_id: String,
    },
    /// hydrant's own: the S3 / local object store destination did not take the batch within its
    /// retry window (Firehose drops such data; hydrant files it): `s3-failed`, no extra field.
    S3Delivery,
    /// hydrant's own: a row of the record could not be loaded into Redshift / PostgreSQL and the
    /// load went on without it (`MAXERROR`): `redshift-failed`, no extra field (the message
    /// names the line, column and reason).
    Redshift,
    /// Dynamic partitioning could not find the record's partition (not JSON, the jq query failed
    /// or gave a null or non-scalar key, a Lambda key missing, the Prefix not evaluable):
    /// `partitioning-failed`, no extra field.
    Partitioning,
    /// The record's partition would have been one more than the active-partition limit allows:
    /// `activePartitionExceeded`, no extra field.
    ActivePartitionExceeded,
    /// Record format conversion could not convert the record: `format-conversion-failed`. Its
    /// document is Firehose's conversion-failure JSON: `ErrorCode` / `ErrorMessage` (capitalised,
    /// as the developer guide writes them), `sequenceNumber`, `subSequenceNumber` and
    /// `dataCatalogTable`.
    FormatConversion {
        /// The record's sequence number (its LSN, in decimal).
        sequence_number: String,
        /// Its index within its source record.
        sub_sequence_number: u64,
        /// The table whose schema it did not fit.
        table: std::sync::Arc<crate::convert::DataCatalogTable>,
    },
}

impl FailureDetail {
    /// The `!{firehose:error-output-type}` this failure is filed under.
    pub fn error_output_type(&self) -> ErrorOutputType {
        match self {
            FailureDetail::Processing { .. } => ErrorOutputType::ProcessingFailed,
            FailureDetail::Decompression => ErrorOutputType::DecompressionFailed,
            FailureDetail::HttpEndpoint { .. } => ErrorOutputType::HttpEndpointFailed,
            FailureDetail::OpenSearch {
                legacy_elasticsearch: true,
                ..
            } => ErrorOutputType::ElasticsearchFailed,
            FailureDetail::OpenSearch { .. } | FailureDetail::OpenSearchServerless { .. } => {
                ErrorOutputType::AmazonOpenSearchServiceFailed
            }
            FailureDetail::Splunk { .. } => ErrorOutputType::SplunkFailed,
            FailureDetail::S3Delivery => ErrorOutputType::S3DeliveryFailed,
            FailureDetail::Redshift => ErrorOutputType::RedshiftFailed,
            FailureDetail::Partitioning => ErrorOutputType::PartitioningFailed,
            FailureDetail::ActivePartitionExceeded => ErrorOutputType::ActivePartitionExceeded,
            FailureDetail::FormatConversion { .. } => ErrorOutputType::FormatConversionFailed,
        }
    }
}

/// The JSON document, field order as Firehose writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    attempts_made: u32,
    arrival_timestamp: u64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: u64,
    raw_data: String,
    #[serde(flatten)]
    detail: DetailFields<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DetailFields<'a> {
    Processing {
        #[serde(rename = "lambdaARN")]
        lambda_arn: &'a str,
    },
    None {},
    HttpEndpoint {
        #[serde(rename = "subsequenceNumber")]
        subsequence_number: u64,
        #[serde(rename = "dataId")]
        data_id: &'a str,
    },
    OpenSearch {
        #[serde(rename = "esDocumentId", skip_serializing_if = "Option::is_none")]
        document_id: Option<&'a str>,
        #[serde(rename = "esIndexName")]
        index_name: &'a str,
        #[serde(rename = "esTypeName", skip_serializing_if = "Option::is_none")]
        type_name: Option<&'a str>,
    },
    OpenSearchServerless {
        #[serde(rename = "osDocumentId", skip_serializing_if = "Option::is_none")]
        document_id: Option<&'a str>,
        #[serde(rename = "osIndexName")]
        index_name: &'a str,
    },
    Splunk {
        #[serde(rename = "EventId")]
        event_id: &'a str,
    },
}

impl FailedRecord {
    /// The `!{firehose:error-output-type}` this record is filed under.
    pub fn error_output_type(&self) -> ErrorOutputType {
        self.detail.error_output_type()
    }

    /// The record's JSON document (one line, no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let detail = match &self.detail {
            FailureDetail::FormatConversion {
                sequence_number,
                sub_sequence_number,
                table,
            } => return self.conversion_json(sequence_number, *sub_sequence_number, table),
            FailureDetail::Processing { lambda_arn } => DetailFields::Processing { lambda_arn },
            FailureDetail::Decompression
            | FailureDetail::S3Delivery
            | FailureDetail::Redshift
            | FailureDetail::Partitioning
            | FailureDetail::ActivePartitionExceeded => DetailFields::None {},
            FailureDetail::HttpEndpoint {
                subsequence_number,
                data_id,
            } => DetailFields::HttpEndpoint {
                subsequence_number: *subsequence_number,
                data_id,
            },
            FailureDetail::OpenSearch {
                document_id,
                index_name,
                type_name,
                ..
            } => DetailFields::OpenSearch {
                document_id: document_id.as_deref(),
                index_name,
                type_name: type_name.as_deref(),
            },
            FailureDetail::OpenSearchServerless {
                document_id,
                index_name,
            } => DetailFields::OpenSearchServerless {
                document_id: document_id.as_deref(),
                index_name,
            },
            FailureDetail::Splunk { event_id } => DetailFields::Splunk { event_id },
        };
        let document = Document {
            attempts_made: self.attempts_made,
            arrival_timestamp: self.arrival_timestamp_ms,
            error_code: &self.error_code,
            error_message: &self.error_message,
            attempt_ending_timestamp: self.attempt_ending_timestamp_ms,
            raw_data: base64::engine::general_purpose::STANDARD.encode(&self.raw_data),
            detail,
        };
        // Strings, integers and a flattened struct into a Vec: serde_json has no failure mode
        // left (no I/O, no non-string map keys), so an error here is a bug.
        #[allow(clippy::expect_used)]
        serde_json::to_vec(&document).expect("failed-record JSON serializes infallibly")
    }
}

/// Firehose's conversion-failure document, field order as the developer guide lists it.
#[derive(Serialize)]
struct ConversionDocument<'a> {
    #[serde(rename = "attemptsMade")]
    attempts_made: u32,
    #[serde(rename = "arrivalTimestamp")]
    arrival_timestamp: u64,
    #[serde(rename = "ErrorCode")]
    error_code: &'a str,
    #[serde(rename = "ErrorMessage")]
    error_message: &'a str,
    #[serde(rename = "attemptEndingTimestamp")]
    attempt_ending_timestamp: u64,
    #[serde(rename = "rawData")]
    raw_data: String,
    #[serde(rename = "sequenceNumber")]
    sequence_number: &'a str,
    #[serde(rename = "subSequenceNumber")]
    sub_sequence_number: u64,
    #[serde(rename = "dataCatalogTable")]
    data_catalog_table: CatalogTable<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogTable<'a> {
    catalog_id: &'a str,
    database_name: &'a str,
    table_name: &'a str,
    region: &'a str,
    version_id: &'a str,
    catalog_arn: &'a str,
}

impl FailedRecord {
    fn conversion_json(
        &self,
        sequence_number: &str,
        sub_sequence_number: u64,
        table: &crate::convert::DataCatalogTable,
    ) -> Vec<u8> {
        let document = ConversionDocument {
            attempts_made: self.attempts_made,
            arrival_timestamp: self.arrival_timestamp_ms,
            error_code: &self.error_code,
            error_message: &self.error_message,
            attempt_ending_timestamp: self.attempt_ending_timestamp_ms,
            raw_data: base64::engine::general_purpose::STANDARD.encode(&self.raw_data),
            sequence_number,
            sub_sequence_number,
            data_catalog_table: CatalogTable {
                catalog_id: &table.catalog_id,
                database_name: &table.database_name,
                table_name: &table.table_name,
                region: &table.region,
                version_id: &table.version_id,
                catalog_arn: &table.catalog_arn,
            },
        };
        // Strings and integers into a Vec: no failure mode (see `to_json`).
        #[allow(clippy::expect_used)]
        serde_json::to_vec(&document).expect("conversion-failure JSON serializes infallibly")
    }
}

/// The body of an error-output object: one JSON document per record, each followed by `\n`.
pub fn encode_failed_records(records: &[FailedRecord]) -> Vec<u8> {
    let mut body = Vec::new();
    for record in records {
        body.extend(record.to_json());
        body.push(b'\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(detail: FailureDetail) -> FailedRecord {
        FailedRecord {
            attempts_made: 5,
            arrival_timestamp_ms: 1_594_265_943_615,
            error_code: "HttpEndpoint.DestinationException".into(),
            error_message:
                "Received the following response from the endpoint destination. {\"x\":1}".into(),
            attempt_ending_timestamp_ms: 1_594_266_081_318,
            raw_data: Bytes::from_static(b"sample"),
            detail,
        }
    }

    fn json(record: &FailedRecord) -> String {
        String::from_utf8(record.to_json()).unwrap_or_default()
    }

    #[test]
    fn http_endpoint_shape() {
        let record = base(FailureDetail::HttpEndpoint {
            subsequence_number: 0,
            data_id: "49606479346592431238465913462513209327958592185.0".into(),
        });
        assert_eq!(
            record.error_output_type(),
            ErrorOutputType::HttpEndpointFailed
        );
        assert_eq!(
            json(&record),
            concat!(
                r#"{"attemptsMade":5,"arrivalTimestamp":1594265943615,"#,
                r#""errorCode":"HttpEndpoint.DestinationException","#,
                r#""errorMessage":"Received the following response from the endpoint destination. {\"x\":1}","#,
                r#""attemptEndingTimestamp":1594266081318,"rawData":"c2FtcGxl","#,
                r#""subsequenceNumber":0,"dataId":"49606479346592431238465913462513209327958592185.0"}"#
            )
        );
    }

    #[test]
    fn processing_failed_shape() {
        let record = base(FailureDetail::Processing {
            lambda_arn: "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST".into(),
        });
        assert_eq!(
            record.error_output_type(),
            ErrorOutputType::ProcessingFailed
        );
        let value: serde_json::Value =
            serde_json::from_slice(&record.to_json()).unwrap_or_default();
        assert_eq!(value["attemptsMade"], 5);
        assert_eq!(value["rawData"], "c2FtcGxl");
        assert_eq!(
            value["lambdaARN"],
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"
        );
        assert_eq!(value.as_object().map(|o| o.len()), Some(7));
    }

    #[test]
    fn opensearch_and_other_shapes() {
        let record = base(FailureDetail::OpenSearch {
            document_id: Some("doc-1".into()),
            index_name: "logs".into(),
            type_name: None,
            legacy_elasticsearch: false,
        });
        assert_eq!(
            record.error_output_type(),
            ErrorOutputType::AmazonOpenSearchServiceFailed
        );
        let text = json(&record);
        assert!(
            text.ends_with(r#""rawData":"c2FtcGxl","esDocumentId":"doc-1","esIndexName":"logs"}"#),
            "{text}"
        );

        let legacy = base(FailureDetail::OpenSearch {
            document_id: None,
            index_name: "logs".into(),
            type_name: Some("_doc".into()),
            legacy_elasticsearch: true,
        });
        assert_eq!(
            legacy.error_output_type(),
            ErrorOutputType::ElasticsearchFailed
        );
        assert!(json(&legacy).ends_with(r#""esIndexName":"logs","esTypeName":"_doc"}"#));

        let serverless = base(FailureDetail::OpenSearchServerless {
            document_id: Some("d".into()),
            index_name: "i".into(),
        });
        assert!(json(&serverless).ends_with(r#""osDocumentId":"d","osIndexName":"i"}"#));

        let splunk = base(FailureDetail::Splunk {
            event_id: "e-1".into(),
        });
        assert_eq!(splunk.error_output_type(), ErrorOutputType::SplunkFailed);
        assert!(json(&splunk).ends_with(r#""EventId":"e-1"}"#));

        let s3 = base(FailureDetail::S3Delivery);
        assert_eq!(s3.error_output_type(), ErrorOutputType::S3DeliveryFailed);
        assert_eq!(s3.error_output_type().as_str(), "s3-failed");
        assert!(json(&s3).ends_with(r#""rawData":"c2FtcGxl"}"#));

        let decompression = base(FailureDetail::Decompression);
        assert_eq!(
            decompression.error_output_type(),
            ErrorOutputType::DecompressionFailed
        );
        assert!(json(&decompression).ends_with(r#""rawData":"c2FtcGxl"}"#));
    }

    #[test]
    fn error_output_body_is_json_lines() {
        let records = vec![
            base(FailureDetail::Decompression),
            FailedRecord {
                raw_data: Bytes::from_static(&[0, 255, 10]),
                ..base(FailureDetail::Decompression)
            },
        ];
        let body = encode_failed_records(&records);
        let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].is_empty());
        let second: serde_json::Value = serde_json::from_slice(lines[1]).unwrap_or_default();
        assert_eq!(second["rawData"], "AP8K");
    }
}
