//! Fuzzes the plain-paths fast path of dynamic partitioning's `MetadataExtraction`: a query
//! built from the input as an object of plain paths (`{a: .a}`, `{"a b": .x["y"].z}`, `{a}`,
//! `."k"`, `.["k"]`, key names with spaces, escapes and non-ASCII), and the rest of the input as
//! the record. [`MetadataQuery::extract`] (the fast path where it is sure, jaq otherwise) must
//! give exactly what [`MetadataQuery::extract_by_jaq`] gives: the same keys and texts, or the
//! same error with the same message.
#![no_main]

use hydrant_sinks::partition::MetadataQuery;
use libfuzzer_sys::fuzz_target;

/// Member names the queries use; the records' seeds use the same.
const NAMES: [&str; 8] = ["a", "b", "c", "a b", "\u{e9}", "x\"y", "", "_1"];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn quoted(name: &str) -> String {
    serde_json::to_string(name).expect("a string serializes")
}

/// One query entry per byte with the high bit set (its key name, and whether it is written
/// `{a}`), then path steps, one per byte without it (a member name and how it is written).
fn query(spec: &[u8]) -> Option<String> {
    // (key as written, shorthand, path steps)
    let mut entries: Vec<(String, bool, String)> = Vec::new();
    for &b in spec {
        let name = NAMES[usize::from(b & 7)];
        if b & 0x80 != 0 {
            if entries.len() == 4 {
                break;
            }
            let key = if is_identifier(name) && b & 0x08 == 0 {
                name.to_owned()
            } else {
                quoted(name)
            };
            entries.push((key, b & 0x10 != 0, String::new()));
            continue;
        }
        let (_, _, path) = entries.last_mut()?;
        let step = match (b >> 3) & 3 {
            0 if is_identifier(name) => format!(".{name}"),
            1 => format!(".{}", quoted(name)),
            3 if !path.is_empty() => format!("[{}]", quoted(name)),
            _ => format!(".[{}]", quoted(name)),
        };
        path.push_str(&step);
    }
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(key, shorthand, path)| match (shorthand, path.is_empty()) {
            (true, true) => key,
            (false, true) => format!("{key}: .a"),
            (_, false) => format!("{key}: {path}"),
        })
        .collect();
    (!entries.is_empty()).then(|| format!("{{{}}}", entries.join(", ")))
}

fuzz_target!(|data: &[u8]| {
    // The query's spec up to the first 0xFF, the record after it.
    let Some(split) = data.iter().position(|b| *b == 0xFF) else {
        return;
    };
    let (spec, record) = (&data[..split], &data[split + 1..]);
    let Some(source) = query(spec) else {
        return;
    };
    // Two entries of one key name are refused at create: nothing to compare.
    let Ok(query) = MetadataQuery::compile(&source) else {
        return;
    };
    assert!(query.has_fast_path(), "{source} is an object of plain paths");
    assert_eq!(
        query.extract(record),
        query.extract_by_jaq(record),
        "{source} on {:?}",
        String::from_utf8_lossy(record)
    );
});
