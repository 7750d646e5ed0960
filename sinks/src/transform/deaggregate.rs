//! `RecordDeAggregation`: one source record in, several records out.
//!
//! - `JSON`: consecutive JSON objects, on one line or newline-delimited (`{"a":1}{"a":2}`,
//!   `{"a":1}\n{"a":2}`); an array of objects is not valid input. Each object becomes a record
//!   holding exactly its bytes (the white space between objects is dropped).
//! - `DELIMITED`: the record split on the delimiter; a trailing empty piece is dropped.
//! - `KPL` (hydrant's extension; Firehose de-aggregates KPL records only for Kinesis stream
//!   sources): the Kinesis Producer Library's aggregated format, drawn below. A record that does
//!   not start with the magic is not aggregated and passes through unchanged.
//!
//! Firehose caps JSON and delimiter de-aggregation at 500 records per source record; hydrant
//! files a record that holds more as processing-failed (`DeAggregation.TooManySubRecords`).
//!
//! ```text
//! KPL aggregated record:
//!   { magic F3 89 9A C2 | AggregatedRecord (protobuf) | MD5 of the protobuf bytes (16 bytes) }
//!   AggregatedRecord { repeated string partition_key_table = 1;
//!                      repeated string explicit_hash_key_table = 2;
//!                      repeated Record records = 3; }
//!   Record { uint64 partition_key_index = 1; uint64 explicit_hash_key_index = 2;
//!            bytes data = 3; repeated Tag tags = 4; }
//!   Tag { string key = 1; string value = 2; }
//! ```

use bytes::Bytes;
use md5::{Digest as _, Md5};
use prost::Message as _;

use super::config::SubRecordType;

/// The most records JSON or delimiter de-aggregation makes of one source record.
pub(crate) const SUB_RECORDS_MAX: usize = 500;

/// The KPL aggregated-record magic.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The KPL trailer: an MD5 digest.
const KPL_DIGEST_LEN: usize = 16;

/// The KPL `AggregatedRecord` message (decoding only).
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<KplRecord>,
}

/// One user record inside a KPL aggregated record.
#[derive(Clone, PartialEq, prost::Message)]
struct KplRecord {
    #[prost(uint64, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", tag = "3")]
    data: Bytes,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<KplTag>,
}

/// A KPL record tag (unused by hydrant, decoded for completeness).
#[derive(Clone, PartialEq, prost::Message)]
struct KplTag {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// Why a source record could not be de-aggregated: a Firehose-style error code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SplitError {
    /// `DeAggregation.*`.
    pub(crate) code: &'static str,
    /// What was wrong.
    pub(crate) message: String,
}

fn split_error(code: &'static str, message: impl Into<String>) -> SplitError {
    SplitError {
        code,
        message: message.into(),
    }
}

/// The records `data` holds.
///
/// # Errors
/// [`SplitError`] when the record is not valid input for `kind`.
pub(crate) fn split(kind: &SubRecordType, data: &Bytes) -> Result<Vec<Bytes>, SplitError> {
    match kind {
        SubRecordType::Json => split_json(data),
        SubRecordType::Delimited(delimiter) => split_delimited(data, delimiter),
        SubRecordType::Kpl => split_kpl(data),
    }
}

fn too_many() -> SplitError {
    split_error(
        "DeAggregation.TooManySubRecords",
        format!("the record holds more than {SUB_RECORDS_MAX} sub-records"),
    )
}

fn split_json(data: &Bytes) -> Result<Vec<Bytes>, SplitError> {
    let mut stream =
        serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(value) = stream.next() {
        if let Err(e) = value {
            return Err(split_error(
                "DeAggregation.InvalidJson",
                format!("not consecutive JSON objects: {e}"),
            ));
        }
        let end = stream.byte_offset();
        let leading = data[start..end]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if data.get(start + leading) != Some(&b'{') {
            return Err(split_error(
                "DeAggregation.InvalidJson",
                format!("the value at byte {} is not a JSON object", start + leading),
            ));
        }
        if out.len() == SUB_RECORDS_MAX {
            return Err(too_many());
        }
        out.push(data.slice(start + leading..end));
        start = end;
    }
    Ok(out)
}

fn split_delimited(data: &Bytes, delimiter: &[u8]) -> Result<Vec<Bytes>, SplitError> {
    debug_assert!(
        !delimiter.is_empty(),
        "the configuration refuses empty delimiters"
    );
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= data.len() {
        if &data[i..i + delimiter.len()] == delimiter {
            if out.len() == SUB_RECORDS_MAX {
                return Err(too_many());
            }
            out.push(data.slice(start..i));
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if start < data.len() {
        if out.len() == SUB_RECORDS_MAX {
            return Err(too_many());
        }
        out.push(data.slice(start..));
    }
    Ok(out)
}

/// One user record of a KPL aggregated record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KplUserRecord {
    /// Its partition key (from the aggregate's partition key table).
    pub partition_key: String,
    /// Its data.
    pub data: Bytes,
}

/// Why a record that starts with the KPL magic is not a valid aggregate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    /// The MD5 trailer does not match the message.
    #[error("the KPL aggregated record's MD5 does not match its contents")]
    ChecksumMismatch,
    /// The message is not an `AggregatedRecord`, or a user record names a partition key the
    /// table does not hold.
    #[error("the KPL aggregated record does not decode: {0}")]
    Decode(String),
}

/// The user records of a KPL aggregated record, in order (their index is their
/// sub-sequence number); `Ok(None)` when `data` is not aggregated (it does not start with the
/// magic or is too short to hold the digest).
///
/// # Errors
/// [`KplError`] when it starts with the magic but is not a valid aggregate.
pub fn kpl_user_records(data: &Bytes) -> Result<Option<Vec<KplUserRecord>>, KplError> {
    if data.len() < KPL_MAGIC.len() + KPL_DIGEST_LEN || data[..KPL_MAGIC.len()] != KPL_MAGIC {
        return Ok(None);
    }
    let body = data.slice(KPL_MAGIC.len()..data.len() - KPL_DIGEST_LEN);
    let digest = &data[data.len() - KPL_DIGEST_LEN..];
    if Md5::digest(&body).as_slice() != digest {
        return Err(KplError::ChecksumMismatch);
    }
    let aggregated = AggregatedRecord::decode(body).map_err(|e| KplError::Decode(e.to_string()))?;
    let keys = aggregated.partition_key_table;
    aggregated
        .records
        .into_iter()
        .map(|r| {
            let key = usize::try_from(r.partition_key_index)
                .ok()
                .and_then(|i| keys.get(i))
                .ok_or_else(|| {
                    KplError::Decode(format!(
                        "partition key index {} is outside the table of {}",
                        r.partition_key_index,
                        keys.len()
                    ))
                })?;
            Ok(KplUserRecord {
                partition_key: key.clone(),
                data: r.data,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn split_kpl(data: &Bytes) -> Result<Vec<Bytes>, SplitError> {
    match kpl_user_records(data) {
        Ok(None) => Ok(vec![data.clone()]),
        Ok(Some(records)) => Ok(records.into_iter().map(|r| r.data).collect()),
        Err(e @ KplError::ChecksumMismatch) => Err(split_error(
            "DeAggregation.KplChecksumMismatch",
            e.to_string(),
        )),
        Err(e @ KplError::Decode(_)) => {
            Err(split_error("DeAggregation.KplDecodeFailed", e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(result: Result<Vec<Bytes>, SplitError>) -> Vec<String> {
        result
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn json_objects_concatenated_or_on_lines() {
        let data = Bytes::from_static(b"{\"a\":1}{\"a\":2}\n {\"b\":{\"c\":[1,2]}}\r\n");
        assert_eq!(
            pieces(split(&SubRecordType::Json, &data)),
            vec![r#"{"a":1}"#, r#"{"a":2}"#, r#"{"b":{"c":[1,2]}}"#]
        );
        assert!(pieces(split(&SubRecordType::Json, &Bytes::from_static(b"  \n"))).is_empty());
        for bad in [
            &b"[{\"a\":1},{\"a\":2}]"[..],
            b"{\"a\":1} 7",
            b"{\"a\":",
            b"nope",
        ] {
            let e = split(&SubRecordType::Json, &Bytes::copy_from_slice(bad)).unwrap_err();
            assert_eq!(e.code, "DeAggregation.InvalidJson");
        }
    }

    #[test]
    fn at_most_500_sub_records() {
        let ok = Bytes::from("{}\n".repeat(SUB_RECORDS_MAX));
        assert_eq!(
            split(&SubRecordType::Json, &ok).unwrap().len(),
            SUB_RECORDS_MAX
        );
        let over = Bytes::from("{}".repeat(SUB_RECORDS_MAX + 1));
        assert_eq!(
            split(&SubRecordType::Json, &over).unwrap_err().code,
            "DeAggregation.TooManySubRecords"
        );
        let kind = SubRecordType::Delimited(b",".to_vec());
        assert_eq!(
            split(&kind, &Bytes::from("x,".repeat(SUB_RECORDS_MAX)))
                .unwrap()
                .len(),
            SUB_RECORDS_MAX
        );
        assert!(split(&kind, &Bytes::from("x,".repeat(SUB_RECORDS_MAX) + "y")).is_err());
    }

    #[test]
    fn delimited() {
        let kind = SubRecordType::Delimited(b"##".to_vec());
        assert_eq!(
            pieces(split(&kind, &Bytes::from_static(b"a##b####c##"))),
            vec!["a", "b", "", "c"]
        );
        assert_eq!(
            pieces(split(&kind, &Bytes::from_static(b"abc"))),
            vec!["abc"]
        );
        assert_eq!(
            pieces(split(&kind, &Bytes::from_static(b"a#b#"))),
            vec!["a#b#"]
        );
    }

    #[test]
    fn kpl_passthrough_and_corruption() {
        let plain = Bytes::from_static(b"just a record");
        assert_eq!(
            split(&SubRecordType::Kpl, &plain).unwrap(),
            vec![plain.clone()]
        );

        let message = AggregatedRecord {
            partition_key_table: vec!["pk".into()],
            explicit_hash_key_table: vec![],
            records: vec![
                KplRecord {
                    partition_key_index: 0,
                    explicit_hash_key_index: None,
                    data: Bytes::from_static(b"one"),
                    tags: vec![],
                },
                KplRecord {
                    partition_key_index: 0,
                    explicit_hash_key_index: None,
                    data: Bytes::from_static(b"two"),
                    tags: vec![KplTag {
                        key: "k".into(),
                        value: Some("v".into()),
                    }],
                },
            ],
        }
        .encode_to_vec();
        let mut framed = KPL_MAGIC.to_vec();
        framed.extend_from_slice(&message);
        framed.extend_from_slice(&Md5::digest(&message));
        assert_eq!(
            pieces(split(&SubRecordType::Kpl, &Bytes::from(framed.clone()))),
            vec!["one", "two"]
        );

        let mut flipped = framed.clone();
        flipped[KPL_MAGIC.len() + 3] ^= 0x01;
        assert_eq!(
            split(&SubRecordType::Kpl, &Bytes::from(flipped))
                .unwrap_err()
                .code,
            "DeAggregation.KplChecksumMismatch"
        );

        let garbage = vec![0xFFu8; 9];
        let mut framed = KPL_MAGIC.to_vec();
        framed.extend_from_slice(&garbage);
        framed.extend_from_slice(&Md5::digest(&garbage));
        assert_eq!(
            split(&SubRecordType::Kpl, &Bytes::from(framed))
                .unwrap_err()
                .code,
            "DeAggregation.KplDecodeFailed"
        );
    }
}
