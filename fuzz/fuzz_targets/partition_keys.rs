//! Fuzzes dynamic partitioning's key path: an arbitrary jq `MetadataExtractionQuery` and
//! arbitrary records through extraction ([`MetadataQuery`]), then the keys (and arbitrary Lambda
//! keys) through Prefix evaluation ([`S3Prefixes::partition_prefix`]). It must never panic;
//! errors are typed ([`QueryError`], [`ExtractError`], [`PrefixError`]) with their codes; every
//! evaluated prefix makes a key the stores can write ([`key_problem`] finds nothing), never
//! longer than S3's 1024 bytes, and escaped values never add a path segment.
#![no_main]

use hydrant_sinks::keys::key_problem;
use hydrant_sinks::partition::{escape_value, KeysProduced, MetadataQuery, PartitionKeys};
use hydrant_sinks::{BatchIdentity, S3Prefixes};
use libfuzzer_sys::fuzz_target;

const PREFIXES: [&str; 4] = [
    "k=!{partitionKeyFromQuery:a}/",
    "!{partitionKeyFromQuery:a}/!{partitionKeyFromLambda:b}/",
    "x/!{partitionKeyFromQuery:a}!{partitionKeyFromQuery:a}-!{timestamp:yyyy}/",
    "!{partitionKeyFromLambda:b}",
];

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let selector = data[0];
    let rest = &data[1..];
    // Split: query text | record | lambda value, at the first two 0xFF bytes.
    let mut parts = rest.splitn(3, |b| *b == 0xFF);
    let query_bytes = parts.next().unwrap_or_default();
    let record = parts.next().unwrap_or_default();
    let lambda_value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query_text = String::from_utf8_lossy(query_bytes);
    // Half the time a fixed, valid query, so records get the fuzzer's attention.
    let source = if selector & 1 == 0 { "{a: .a}".to_owned() } else { query_text.into_owned() };
    let query = match MetadataQuery::compile(&source) {
        Ok(q) => q,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let query_keys = match query.extract(record) {
        Ok(keys) => {
            assert_eq!(keys.len(), query.keys().len());
            keys
        }
        Err(e) => {
            assert!(e.error_code().starts_with("DynamicPartitioning."));
            // The prefix is still evaluated, without query keys: a missing key is an error.
            Vec::new()
        }
    };
    let escaped = escape_value(&lambda_value);
    assert!(!escaped.contains('/'));
    assert!(escaped != "." && escaped != "..");
    let keys = PartitionKeys {
        query: query_keys,
        lambda: vec![("b".to_owned(), lambda_value)],
    };
    let produced = KeysProduced {
        query: vec!["a".to_owned()],
        lambda: true,
    };
    let prefix = PREFIXES[usize::from(selector >> 1) % PREFIXES.len()];
    let prefixes = S3Prefixes::partitioned(
        Some(prefix),
        Some("e/!{firehose:error-output-type}/"),
        &produced,
    )
    .expect("the fixed prefixes are valid");
    let identity = BatchIdentity {
        stream: "fuzz".to_owned(),
        incarnation: "1".to_owned(),
        destination_id: "destinationId-000000000001".to_owned(),
        first_lsn: 1,
        last_lsn: 9,
    };
    match prefixes.partition_prefix(&identity, 1_700_000_000_000, &keys) {
        Ok(evaluated) => {
            let key =
                S3Prefixes::partition_data_key(&evaluated, &identity, 1, 1_700_000_000_000, ".gz");
            assert_eq!(key_problem(&key), None, "{key:?}");
            assert!(key.len() <= 1024, "{} bytes", key.len());
        }
        Err(e) => assert!(e.error_code().starts_with("DynamicPartitioning.")),
    }
});
