//! The create and update forms: their fields, and the Firehose request each becomes.
//!
//! A form is turned into the JSON body a client would send (CreateDeliveryStream,
//! UpdateDestination), which then takes the API's own path: [`crate::api::decode::decode_request`]
//! validates it and [`crate::api::dispatch`] runs it, so the console accepts and refuses exactly
//! what the API does, with the API's messages.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The submitted fields (the last value of a repeated name wins).
#[derive(Clone, Debug, Default)]
pub struct Fields(pub BTreeMap<String, String>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body.
    #[must_use]
    pub fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A field, trimmed ("" when absent).
    #[must_use]
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map_or("", |v| v.trim())
    }

    /// A field, `None` when empty.
    fn opt(&self, k: &str) -> Option<&str> {
        Some(self.get(k)).filter(|v| !v.is_empty())
    }

    /// The create form's initial values.
    #[must_use]
    pub fn create_defaults() -> Fields {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("kind", "s3"),
            ("role_arn", "arn:aws:iam::000000000000:role/hydrant"),
            ("bucket", "my-bucket"),
            ("buffer_mb", "5"),
            ("buffer_seconds", "300"),
            ("compression", "UNCOMPRESSED"),
            ("index_rotation", "OneDay"),
        ] {
            m.insert(k.to_string(), v.to_string());
        }
        Fields(m)
    }
}

/// A number field put into JSON as a number when it parses, else as the text (so the API's
/// validation names it).
fn number(v: &str) -> Value {
    v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n))
}

fn buffering(f: &Fields) -> Option<Value> {
    let mut m = Map::new();
    if let Some(v) = f.opt("buffer_mb") {
        m.insert("SizeInMBs".into(), number(v));
    }
    if let Some(v) = f.opt("buffer_seconds") {
        m.insert("IntervalInSeconds".into(), number(v));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn bucket_arn(bucket: &str) -> String {
    if bucket.starts_with("arn:") {
        bucket.to_string()
    } else {
        format!("arn:aws:s3:::{bucket}")
    }
}

/// The S3 settings of the form (ExtendedS3 for an S3 destination; the intermediate or backup
/// bucket of the others).
fn s3_part(f: &Fields, with_buffering: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("RoleARN".into(), json!(f.get("role_arn")));
    m.insert("BucketARN".into(), json!(bucket_arn(f.get("bucket"))));
    if let Some(p) = f.opt("prefix") {
        m.insert("Prefix".into(), json!(p));
    }
    if let Some(p) = f.opt("error_prefix") {
        m.insert("ErrorOutputPrefix".into(), json!(p));
    }
    if let Some(c) = f.opt("compression") {
        m.insert("CompressionFormat".into(), json!(c));
    }
    if with_buffering {
        if let Some(b) = buffering(f) {
            m.insert("BufferingHints".into(), b);
        }
    }
    m
}

/// The processors: dynamic partitioning's jq extraction (S3 only) and the Lambda transform.
fn processing(f: &Fields, s3: bool) -> Option<Value> {
    let mut processors = Vec::new();
    if let (true, Some(q)) = (s3, f.opt("partition_query")) {
        processors.push(json!({"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": q},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}));
    }
    if let Some(arn) = f.opt("lambda_arn") {
        processors.push(json!({"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": arn}]}));
    }
    (!processors.is_empty()).then(|| json!({"Enabled": true, "Processors": processors}))
}

/// Record format conversion to Parquet (S3 only): the table as `DATABASE.TABLE` of the catalog,
/// the Parquet codec as chosen (the API refuses a bad one, or a table that is not there).
fn conversion(f: &Fields, table: &str) -> Value {
    let (database, table) = table.split_once('.').unwrap_or(("", table));
    let mut parquet = Map::new();
    if let Some(codec) = f.opt("convert_compression") {
        parquet.insert("Compression".into(), codec.into());
    }
    json!({
        "SchemaConfiguration": {"DatabaseName": database, "TableName": table,
            "RoleARN": f.opt("role_arn").unwrap_or_default()},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": parquet}},
    })
}

/// `key=value` lines.
fn tags(f: &Fields) -> Vec<Value> {
    f.get("tags")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) => json!({"Key": k.trim(), "Value": v.trim()}),
            None => json!({"Key": l.trim()}),
        })
        .collect()
}

/// The CreateDeliveryStream body of the create form.
#[must_use]
pub fn create_body(f: &Fields) -> Value {
    let mut req = Map::new();
    req.insert("DeliveryStreamName".into(), json!(f.get("name")));
    req.insert("DeliveryStreamType".into(), json!("DirectPut"));
    let (member, config) = match f.get("kind") {
        "redshift" => {
            let mut copy = Map::new();
            copy.insert("DataTableName".into(), json!(f.get("table")));
            if let Some(c) = f.opt("columns") {
                copy.insert("DataTableColumns".into(), json!(c));
            }
            if let Some(c) = f.opt("copy_options") {
                copy.insert("CopyOptions".into(), json!(c));
            }
            let mut m = Map::new();
            m.insert("RoleARN".into(), json!(f.get("role_arn")));
            m.insert("ClusterJDBCURL".into(), json!(f.get("jdbc_url")));
            m.insert("CopyCommand".into(), Value::Object(copy));
            m.insert("Username".into(), json!(f.get("username")));
            m.insert("Password".into(), json!(f.get("password")));
            m.insert("S3Configuration".into(), Value::Object(s3_part(f, true)));
            ("RedshiftDestinationConfiguration", m)
        }
        "opensearch" => {
            let mut m = Map::new();
            m.insert("RoleARN".into(), json!(f.get("role_arn")));
            m.insert("ClusterEndpoint".into(), json!(f.get("endpoint")));
            m.insert("IndexName".into(), json!(f.get("index")));
            if let Some(r) = f.opt("index_rotation") {
                m.insert("IndexRotationPeriod".into(), json!(r));
            }
            if let Some(b) = buffering(f) {
                m.insert("BufferingHints".into(), b);
            }
            m.insert("S3Configuration".into(), Value::Object(s3_part(f, false)));
            ("AmazonopensearchserviceDestinationConfiguration", m)
        }
        "http" => {
            let mut endpoint = Map::new();
            endpoint.insert("Url".into(), json!(f.get("url")));
            if let Some(n) = f.opt("endpoint_name") {
                endpoint.insert("Name".into(), json!(n));
            }
            if let Some(k) = f.opt("access_key") {
                endpoint.insert("AccessKey".into(), json!(k));
            }
            let mut m = Map::new();
            m.insert("EndpointConfiguration".into(), Value::Object(endpoint));
            if let Some(b) = buffering(f) {
                m.insert("BufferingHints".into(), b);
            }
            m.insert("S3Configuration".into(), Value::Object(s3_part(f, false)));
            ("HttpEndpointDestinationConfiguration", m)
        }
        _ => ("ExtendedS3DestinationConfiguration", s3_part(f, true)),
    };
    let mut config = config;
    let s3 = member == "ExtendedS3DestinationConfiguration";
    if s3 && f.opt("partition_query").is_some() {
        config.insert(
            "DynamicPartitioningConfiguration".into(),
            json!({"Enabled": true}),
        );
    }
    if let (true, Some(table)) = (s3, f.opt("convert_table")) {
        config.insert(
            "DataFormatConversionConfiguration".into(),
            conversion(f, table),
        );
    }
    if let Some(p) = processing(f, s3) {
        config.insert("ProcessingConfiguration".into(), p);
    }
    req.insert(member.into(), Value::Object(config));
    let t = tags(f);
    if !t.is_empty() {
        req.insert("Tags".into(), Value::Array(t));
    }
    Value::Object(req)
}

/// The update form's initial values, from a destination description.
#[must_use]
pub fn update_defaults(destination: &Value) -> Fields {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: &Value| {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        m.insert(k.to_string(), text);
    };
    let s3 = destination
        .get("ExtendedS3DestinationDescription")
        .or_else(|| destination.get("S3DestinationDescription"));
    if let Some(d) = s3 {
        put("prefix", &d["Prefix"]);
        put("error_prefix", &d["ErrorOutputPrefix"]);
        put("compression", &d["CompressionFormat"]);
    }
    let hints = [
        "ExtendedS3DestinationDescription",
        "AmazonopensearchserviceDestinationDescription",
        "ElasticsearchDestinationDescription",
        "HttpEndpointDestinationDescription",
    ]
    .iter()
    .find_map(|k| destination.get(*k).map(|d| &d["BufferingHints"]))
    .or_else(|| {
        destination
            .get("RedshiftDestinationDescription")
            .map(|d| &d["S3DestinationDescription"]["BufferingHints"])
    });
    if let Some(h) = hints {
        put("buffer_mb", &h["SizeInMBs"]);
        put("buffer_seconds", &h["IntervalInSeconds"]);
    }
    Fields(m)
}

/// The UpdateDestination body of the update form for a destination described by `destination`.
#[must_use]
pub fn update_body(name: &str, version: &str, destination: &Value, f: &Fields) -> Value {
    let mut req = Map::new();
    req.insert("DeliveryStreamName".into(), json!(name));
    req.insert("CurrentDeliveryStreamVersionId".into(), json!(version));
    req.insert(
        "DestinationId".into(),
        json!(crate::api::destination::DESTINATION_ID),
    );
    let b = buffering(f);
    let with_hints = |mut m: Map<String, Value>| {
        if let Some(b) = &b {
            m.insert("BufferingHints".into(), b.clone());
        }
        Value::Object(m)
    };
    if destination
        .get("ExtendedS3DestinationDescription")
        .is_some()
        || destination.get("S3DestinationDescription").is_some()
    {
        let mut m = Map::new();
        m.insert("Prefix".into(), json!(f.get("prefix")));
        if let Some(p) = f.opt("error_prefix") {
            m.insert("ErrorOutputPrefix".into(), json!(p));
        }
        if let Some(c) = f.opt("compression") {
            m.insert("CompressionFormat".into(), json!(c));
        }
        req.insert("ExtendedS3DestinationUpdate".into(), with_hints(m));
    } else if destination.get("RedshiftDestinationDescription").is_some() {
        let s3 = with_hints(Map::new());
        req.insert(
            "RedshiftDestinationUpdate".into(),
            json!({ "S3Update": s3 }),
        );
    } else if destination
        .get("HttpEndpointDestinationDescription")
        .is_some()
    {
        req.insert(
            "HttpEndpointDestinationUpdate".into(),
            with_hints(Map::new()),
        );
    } else if destination
        .get("ElasticsearchDestinationDescription")
        .is_some()
    {
        req.insert(
            "ElasticsearchDestinationUpdate".into(),
            with_hints(Map::new()),
        );
    } else {
        req.insert(
            "AmazonopensearchserviceDestinationUpdate".into(),
            with_hints(Map::new()),
        );
    }
    Value::Object(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `v` through the API's decoding, as the console's create path sends it.
    fn decode_create(v: &Value) -> Result<crate::api::decode::Request, hydrant_api::ApiError> {
        crate::api::decode::decode_request(
            Some(b"Firehose_20150804.CreateDeliveryStream"),
            Some(b"application/x-amz-json-1.1"),
            &serde_json::to_vec(v).unwrap(),
        )
    }

    #[test]
    fn the_create_form_becomes_a_create_request() {
        let f = Fields::parse(
            b"name=s1&kind=s3&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&bucket=b&prefix=p%2F\
              &compression=GZIP&buffer_mb=1&buffer_seconds=60&tags=team%3Ddata%0Ax%3Dy%2Bz",
        );
        let v = create_body(&f);
        let d = &v["ExtendedS3DestinationConfiguration"];
        assert_eq!(d["BucketARN"], "arn:aws:s3:::b");
        assert_eq!(d["Prefix"], "p/");
        assert_eq!(d["BufferingHints"]["SizeInMBs"], 1);
        assert_eq!(d["CompressionFormat"], "GZIP");
        assert_eq!(v["Tags"][1]["Value"], "y+z");
        let req = decode_create(&v);
        assert!(req.is_ok(), "{req:?}");
    }

    #[test]
    fn partitioning_fields_become_dynamic_partitioning_with_jq() {
        let f = Fields::parse(
            b"name=s1&kind=s3&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&bucket=b\
              &prefix=c%3D!%7BpartitionKeyFromQuery%3Ac%7D%2F\
              &error_prefix=e%2F!%7Bfirehose%3Aerror-output-type%7D%2F\
              &buffer_mb=64&buffer_seconds=60&partition_query=%7Bc%3A+.customer%7D",
        );
        let v = create_body(&f);
        let d = &v["ExtendedS3DestinationConfiguration"];
        assert_eq!(d["DynamicPartitioningConfiguration"]["Enabled"], true);
        assert_eq!(
            d["ProcessingConfiguration"]["Processors"][0]["Parameters"][0]["ParameterValue"],
            "{c: .customer}"
        );
        let req = decode_create(&v);
        assert!(req.is_ok(), "{req:?}");
    }

    #[test]
    fn conversion_fields_become_data_format_conversion_to_parquet() {
        let f = Fields::parse(
            b"name=s1&kind=s3&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&bucket=b\
              &compression=UNCOMPRESSED&buffer_mb=64&buffer_seconds=60\
              &convert_table=lake.events&convert_compression=GZIP",
        );
        let v = create_body(&f);
        let d = &v["ExtendedS3DestinationConfiguration"]["DataFormatConversionConfiguration"];
        assert_eq!(d["SchemaConfiguration"]["DatabaseName"], "lake");
        assert_eq!(d["SchemaConfiguration"]["TableName"], "events");
        assert_eq!(
            d["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"],
            "GZIP"
        );
        let req = decode_create(&v);
        assert!(req.is_ok(), "{req:?}");
    }

    #[test]
    fn a_bad_number_reaches_the_api_validation_as_it_was_typed() {
        let f = Fields::parse(b"name=s1&kind=s3&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&bucket=b&buffer_mb=lots");
        let v = create_body(&f);
        let err = decode_create(&v).unwrap_err();
        assert!(err.message.contains("\"lots\""), "{err:?}");
    }
}
