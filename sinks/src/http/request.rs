//! What one request carries: how a batch is cut into requests ([`plan_requests`]), each part's
//! request id, the JSON body, and the ASCII form of the common-attributes header.

use std::ops::Range;

use base64::Engine as _;
use bytes::Bytes;

use crate::{uuid_from_digest, Batch, BatchIdentity, Record};

/// Records per request, at most (Firehose's limit on `records`).
pub const RECORDS_PER_REQUEST_MAX: usize = 10_000;

/// The largest request body before compression (64 MiB, Firehose's limit).
pub const REQUEST_BODY_BYTES_MAX: usize = 64 << 20;

/// One request of a batch: its id and the records it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// The request's `X-Amz-Firehose-Request-Id` (and body `requestId`).
    pub request_id: String,
    /// The indexes of its records in `batch.records`.
    pub records: Range<usize>,
}

/// `{"requestId":"<36>","timestamp":<20 digits at most>,"records":[` ... `]}` with room to spare.
const ENVELOPE_BYTES: usize = 128;

/// The body bytes one record adds: `{"data":"<base64>"},`.
fn record_json_bytes(record: &Record) -> usize {
    record.data.len().div_ceil(3) * 4 + 12
}

/// How `batch` is cut into requests: at most [`RECORDS_PER_REQUEST_MAX`] records and
/// [`REQUEST_BODY_BYTES_MAX`] bytes of body per request (a single record always fits: records
/// are at most 1,000 KiB), in order, with ids that are a pure function of the batch identity.
/// Part 0 carries [`BatchIdentity::request_id`]. Empty for a batch without records.
pub fn plan_requests(batch: &Batch) -> Vec<PlannedRequest> {
    plan_ranges(&batch.records)
        .into_iter()
        .enumerate()
        .map(|(part, records)| PlannedRequest {
            request_id: part_request_id(&batch.identity, part),
            records,
        })
        .collect()
}

fn plan_ranges(records: &[Record]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut body = ENVELOPE_BYTES;
    for (i, record) in records.iter().enumerate() {
        let cost = record_json_bytes(record);
        let full = i - start == RECORDS_PER_REQUEST_MAX || body + cost > REQUEST_BODY_BYTES_MAX;
        if full && i > start {
            ranges.push(start..i);
            start = i;
            body = ENVELOPE_BYTES;
        }
        body += cost;
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

/// The request id of part `part` of the batch `identity` names.
fn part_request_id(identity: &BatchIdentity, part: usize) -> String {
    if part == 0 {
        identity.request_id()
    } else {
        uuid_from_digest(&identity.digest(&format!("http-endpoint-request/{part}")))
    }
}

/// The body of one request, before compression.
pub(super) fn encode_body(request_id: &str, timestamp_ms: u64, records: &[Bytes]) -> Vec<u8> {
    let size = ENVELOPE_BYTES
        + records
            .iter()
            .map(|r| r.len().div_ceil(3) * 4 + 12)
            .sum::<usize>();
    let mut body = String::with_capacity(size);
    body.push_str("{\"requestId\":");
    // A UUID needs no escaping, but the serializer keeps that true of any id.
    body.push_str(&serde_json::Value::from(request_id).to_string());
    body.push_str(",\"timestamp\":");
    body.push_str(&timestamp_ms.to_string());
    body.push_str(",\"records\":[");
    for (i, data) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"data\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut body);
        body.push_str("\"}");
    }
    body.push_str("]}");
    body.into_bytes()
}

/// `json` with every non-ASCII character written as a `\uXXXX` escape (a surrogate pair above
/// U+FFFF): the same JSON value, in the ASCII a header value should be. Outside strings JSON has
/// only ASCII, so escaping every such character is escaping inside strings.
pub(super) fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::http::testing::batch;

    #[test]
    fn plan_cuts_at_ten_thousand_records() {
        let b = batch(&[1; 25_000]);
        let plan = plan_requests(&b);
        let ranges: Vec<_> = plan.iter().map(|p| p.records.clone()).collect();
        assert_eq!(ranges, vec![0..10_000, 10_000..20_000, 20_000..25_000]);
        assert_eq!(plan[0].request_id, b.identity.request_id());
        assert_ne!(plan[1].request_id, plan[0].request_id);
        assert_ne!(plan[2].request_id, plan[1].request_id);
        assert_eq!(plan, plan_requests(&b.clone()));
        assert_eq!(plan_requests(&batch(&[1; 10_000])).len(), 1);
        assert!(plan_requests(&batch(&[])).is_empty());
    }

    #[test]
    fn plan_cuts_at_sixty_four_mebibytes_of_body() {
        // 100 records of 1,000,000 bytes: 1,333,348 body bytes each, so 50 fit in 64 MiB.
        let b = batch(&[1_000_000; 100]);
        let plan = plan_requests(&b);
        let ranges: Vec<_> = plan.iter().map(|p| p.records.clone()).collect();
        assert_eq!(ranges, vec![0..50, 50..100]);
        for request in &plan {
            let records: Vec<Bytes> = b.records[request.records.clone()]
                .iter()
                .map(|r| r.data.clone())
                .collect();
            let body = encode_body(&request.request_id, u64::MAX, &records);
            assert!(body.len() <= REQUEST_BODY_BYTES_MAX, "{}", body.len());
        }
    }

    #[test]
    fn body_shape() {
        let body = encode_body(
            "id-1",
            1_578_090_901_599,
            &[Bytes::from_static(b"hello"), Bytes::new()],
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"requestId":"id-1","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":""}]}"#
        );
    }

    #[test]
    fn common_attributes_header_is_ascii_json() {
        let json = serde_json::json!({"k": "é😀\"", "ü": ""}).to_string();
        let ascii = ascii_json(&json);
        assert!(ascii.is_ascii(), "{ascii}");
        assert!(ascii.contains("\\u00e9\\ud83d\\ude00"), "{ascii}");
        let back: serde_json::Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(back.to_string(), json);
    }

    /// Golden values: `X-Amz-Firehose-Request-Id` is what a receiver deduplicates on, so it
    /// must not change between versions for the same batch; a change here is a format change.
    #[test]
    fn golden_request_ids_are_pinned() {
        let identity = BatchIdentity {
            stream: "orders".into(),
            incarnation: "4f1c".into(),
            destination_id: "destinationId-000000000001".into(),
            first_lsn: 10,
            last_lsn: 19,
        };
        assert_eq!(
            part_request_id(&identity, 0),
            "4ce4c3fe-80c5-8cc7-a478-60472902e15b"
        );
        assert_eq!(
            part_request_id(&identity, 1),
            "25285f78-dec6-81a0-8158-456d4da26866"
        );
    }
}
