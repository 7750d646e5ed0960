//! Fuzzes Firehose request decoding (`hydrant_api::decode_request`): headers and body bytes
//! in, a typed request or a Firehose error out. It must never panic, and what it accepts must
//! respect the API's limits. Whatever the PutRecord/PutRecordBatch fast path
//! (`hydrant_api::fastpath`, built by `decode_body_fast`) accepts, the general serde decoder must accept as the same request.
#![no_main]

use hydrant_api::decode::{
    decode_body_fast, decode_body_general, BATCH_BYTES_MAX, BATCH_RECORDS_MAX, RECORD_BYTES_MAX,
    TARGET_PREFIX,
};
use hydrant_api::validate::stream_name_ok;
use hydrant_api::{decode_request, Operation, Request};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&[u8]>; 4] = [
    Some(b"application/x-amz-json-1.1"),
    None,
    Some(b"application/json; charset=utf-8"),
    Some(b"text/plain"),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (selector, content_type, rest) = (data[0], data[1], &data[2..]);
    let target: Vec<u8>;
    let body: &[u8];
    if usize::from(selector) < Operation::ALL.len() {
        // A real operation: the fuzzer spends its time on the body.
        target = format!(
            "{TARGET_PREFIX}{}",
            Operation::ALL[usize::from(selector)].name()
        )
        .into_bytes();
        body = rest;
        let op = Operation::ALL[usize::from(selector)];
        if let Some(fast) = decode_body_fast(op, body) {
            let general = decode_body_general(op, body);
            assert_eq!(
                general.as_ref().ok(),
                Some(&fast),
                "the fast path and the general decoder disagree ({general:?})"
            );
        }
    } else {
        // An arbitrary target: the first line of the rest.
        let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        target = rest[..split].to_vec();
        body = rest.get(split + 1..).unwrap_or(&[]);
    }
    let ct = CONTENT_TYPES[usize::from(content_type) % CONTENT_TYPES.len()];
    let Ok(request) = decode_request(Some(&target), ct, body) else {
        return;
    };
    if let Some(name) = request.stream_name() {
        assert!(stream_name_ok(name), "accepted a bad stream name {name:?}");
    }
    match &request {
        Request::PutRecordBatch { records, .. } => {
            assert!(!records.is_empty() && records.len() <= BATCH_RECORDS_MAX);
            assert!(records.iter().all(|r| r.len() <= RECORD_BYTES_MAX));
            assert!(records.iter().map(<[u8]>::len).sum::<usize>() <= BATCH_BYTES_MAX);
            assert_eq!(records.total_bytes(), records.iter().map(<[u8]>::len).sum::<usize>());
        }
        Request::PutRecord { data, .. } => assert!(data.len() <= RECORD_BYTES_MAX),
        _ => {}
    }
});
