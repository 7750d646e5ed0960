//! The fast path of the two hot requests, PutRecordBatch and PutRecord.
//!
//! serde_json walks every string byte by byte looking for escapes, then checks it is UTF-8:
//! under PutRecordBatch load that was the largest cost of decoding after base64 itself (about a
//! tenth of the daemon's CPU), spent on `Data` strings that are base64 and so can hold neither.
//! This scanner takes the shape every producer sends (any JSON whitespace, members in any order)
//! and finds the end of each string with a SIMD search for the closing quote; the base64 decoder
//! then refuses anything that is not base64, backslashes and control characters included.
//!
//! It only ever says "these are the stream name and the `Data` strings" or "not mine": anything
//! else (an escape, an unknown or repeated member, `null`, a number, trailing bytes, a missing
//! member, an invalid stream name, more than [`BATCH_RECORDS_MAX`] records) returns `None`.
//! [`crate::decode::decode_body`] builds the request from what it found with the general
//! decoder's own functions (base64, limits), and decodes the body with serde when the scan
//! declines or the build fails. So the errors, and every decision on an unusual body, stay the
//! general decoder's, and the fast path is correct if whatever it accepts the general decoder
//! accepts as the same request. The fuzz target `api_request` checks exactly that on every
//! input, and the tests below on a table of shapes. It does not depend on [`crate::decode`].

use crate::limits::BATCH_RECORDS_MAX;
use crate::operation::Operation;
use crate::validate;

/// What the scan found in a PutRecord or PutRecordBatch body: the stream name (valid) and the
/// `Data` strings as they stand in the body (base64, not yet decoded).
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned<'a> {
    /// `{"DeliveryStreamName": ..., "Record": {"Data": ...}}`.
    PutRecord {
        /// The stream name.
        name: String,
        /// The record's `Data` string.
        data: &'a [u8],
    },
    /// `{"DeliveryStreamName": ..., "Records": [{"Data": ...}, ...]}`.
    PutRecordBatch {
        /// The stream name.
        name: String,
        /// Each record's `Data` string (always `Some`: the shape requires it).
        records: Vec<Option<&'a [u8]>>,
    },
}

/// What the fast path finds in the body of `op`; `None` when the general decoder must decide
/// (including every error).
#[must_use]
pub fn scan(op: Operation, body: &[u8]) -> Option<Scanned<'_>> {
    match op {
        Operation::PutRecordBatch => {
            let (name, records) = named(body, b"Records", Scan::records)?;
            Some(Scanned::PutRecordBatch { name, records })
        }
        Operation::PutRecord => {
            let (name, data) = named(body, b"Record", Scan::record)?;
            Some(Scanned::PutRecord { name, data })
        }
        _ => None,
    }
}

/// `{"DeliveryStreamName": "...", "<member>": <value>}`, in either order, each exactly once:
/// the stream name and what `value` read.
fn named<'a, T>(
    body: &'a [u8],
    member: &[u8],
    value: impl Fn(&mut Scan<'a>) -> Option<T>,
) -> Option<(String, T)> {
    let mut s = Scan { b: body, i: 0 };
    let mut name = None;
    let mut got = None;
    s.members(|s, key| {
        if key == b"DeliveryStreamName" && name.is_none() {
            name = Some(s.string()?);
        } else if key == member && got.is_none() {
            got = Some(value(s)?);
        } else {
            return None;
        }
        Some(())
    })?;
    Some((stream_name(name?)?, got?))
}

/// A stream name the general decoder would accept as it is.
fn stream_name(raw: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(raw).ok()?;
    validate::stream_name_ok(name).then(|| name.to_string())
}

/// A cursor over the body. Every method returns `None` on anything outside the fast path.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// A string's bytes between its quotes, up to the first quote: a string with an escaped
    /// quote comes back cut at its backslash, which no caller accepts (a member name matches
    /// none, a stream name fails validation, base64 fails to decode).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = self.b.get(self.i..)?;
        let len = memchr::memchr(b'"', rest)?;
        self.i += len + 1;
        rest.get(..len)
    }

    /// An object's members: `each` is called with the cursor after each name and its colon,
    /// and must consume the value. Then nothing but whitespace may follow the top-level object.
    fn members(
        &mut self,
        mut each: impl FnMut(&mut Scan<'a>, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            each(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// `{"Data": "<string>"}` and nothing else.
    fn record(&mut self) -> Option<&'a [u8]> {
        self.expect(b'{')?;
        if self.string()? != b"Data" {
            return None;
        }
        self.expect(b':')?;
        let data = self.string()?;
        self.expect(b'}')?;
        Some(data)
    }

    /// `[record, ...]`, at least one and at most [`BATCH_RECORDS_MAX`].
    fn records(&mut self) -> Option<Vec<Option<&'a [u8]>>> {
        self.expect(b'[')?;
        let mut out = Vec::with_capacity(BATCH_RECORDS_MAX);
        loop {
            out.push(Some(self.record()?));
            if out.len() > BATCH_RECORDS_MAX {
                return None;
            }
            match self.next()? {
                b',' => {}
                b']' => return Some(out),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    use crate::decode::{self, Request};

    /// Whatever the fast path accepts, the general decoder accepts as the same request.
    fn agrees(op: Operation, body: &str) -> Option<Request> {
        let fast = decode::decode_body_fast(op, body.as_bytes())?;
        let general = decode::decode_body_general(op, body.as_bytes());
        assert_eq!(general.as_ref().ok(), Some(&fast), "{body}");
        Some(fast)
    }

    #[test]
    fn takes_what_producers_send() {
        let (a, b) = (b64(b"hello\n"), b64(&[0, 255, 7]));
        let bodies = [
            // Compact (the AWS SDKs), spaced (json.dumps defaults), members in either order,
            // pretty-printed, unpadded base64.
            format!(r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{a}"}},{{"Data":"{b}"}}]}}"#),
            format!(r#"{{"DeliveryStreamName": "s", "Records": [{{"Data": "{a}"}}, {{"Data": "{b}"}}]}}"#),
            format!(r#"{{"Records":[{{"Data":"{a}"}},{{"Data":"{b}"}}],"DeliveryStreamName":"s"}}"#),
            format!(
                "{{\n\t\"DeliveryStreamName\" : \"s\" ,\r\n \"Records\" : [ {{ \"Data\" : \"{a}\" }} ,\n{{\"Data\":\"{}\"}} ] }}\n ",
                b.trim_end_matches('=')
            ),
        ];
        for body in &bodies {
            let Some(Request::PutRecordBatch { name, records }) =
                agrees(Operation::PutRecordBatch, body)
            else {
                panic!("not taken: {body}");
            };
            assert_eq!(name, "s");
            assert_eq!(records.slices(), vec![&b"hello\n"[..], &[0, 255, 7][..]]);
        }
        let one = format!(r#"{{"DeliveryStreamName":"s.1","Record":{{"Data":"{a}"}}}}"#);
        assert_eq!(
            agrees(Operation::PutRecord, &one),
            Some(Request::PutRecord {
                name: "s.1".into(),
                data: b"hello\n".to_vec()
            })
        );
        let full: Vec<String> = (0..BATCH_RECORDS_MAX)
            .map(|n| format!(r#"{{"Data":"{}"}}"#, b64(&[n as u8; 1024])))
            .collect();
        let body = format!(
            r#"{{"DeliveryStreamName":"s","Records":[{}]}}"#,
            full.join(",")
        );
        assert!(agrees(Operation::PutRecordBatch, &body).is_some());
    }

    /// Everything unusual, and every error, is left to the general decoder.
    #[test]
    fn leaves_the_rest_to_the_general_decoder() {
        let a = b64(b"hello");
        let batch = |inner: &str| format!(r#"{{"DeliveryStreamName":"s","Records":[{inner}]}}"#);
        let too_many: Vec<String> = (0..=BATCH_RECORDS_MAX)
            .map(|_| format!(r#"{{"Data":"{a}"}}"#))
            .collect();
        let big = b64(&vec![1u8; decode::RECORD_BYTES_MAX + 1]);
        let cases = [
            batch(r#"{"Data":"aGVs\/bG8="}"#), // an escape (valid JSON, same base64)
            batch(r#"{"Data":"aGVs\"bG8="}"#),
            batch(&format!(r#"{{"Data":"{a}","Extra":1}}"#)),
            batch(&format!(r#"{{"Data":"{a}"}},"#)),
            batch(r#"{"Data":null}"#),
            batch(r#"{"Data":"not base64!"}"#),
            batch("{\"Data\":\"aGVs\u{1}bG8=\"}"),
            batch(""),
            batch(&too_many.join(",")),
            batch(&format!(r#"{{"Data":"{big}"}}"#)),
            format!(r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{a}"}}]}} x"#),
            format!(
                r#"{{"DeliveryStreamName":"s","DeliveryStreamName":"t","Records":[{{"Data":"{a}"}}]}}"#
            ),
            format!(r#"{{"DeliveryStreamName":"bad name","Records":[{{"Data":"{a}"}}]}}"#),
            format!(r#"{{"DeliveryStreamName":"\u0073","Records":[{{"Data":"{a}"}}]}}"#),
            format!(r#"{{"Records":[{{"Data":"{a}"}}]}}"#),
            format!(r#"{{"DeliveryStreamName":"s","Records":[{{"Data":"{a}"}}],"Other":true}}"#),
            r#"{"DeliveryStreamName":"s"}"#.to_string(),
            "{}".to_string(),
            String::new(),
        ];
        for body in &cases {
            assert_eq!(
                decode::decode_body_fast(Operation::PutRecordBatch, body.as_bytes()),
                None,
                "taken: {body}"
            );
        }
        assert_eq!(
            decode::decode_body_fast(
                Operation::PutRecord,
                format!(r#"{{"DeliveryStreamName":"s","Record":{{"Data":"{a}"}},"Record":{{"Data":"{a}"}}}}"#)
                    .as_bytes()
            ),
            None
        );
        // Other operations never take the fast path.
        assert_eq!(
            decode::decode_body_fast(
                Operation::DeleteDeliveryStream,
                br#"{"DeliveryStreamName":"s"}"#
            ),
            None
        );
    }
}
