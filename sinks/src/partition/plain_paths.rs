//! A fast path for the common `MetadataExtractionQuery`: an object of plain paths, such as
//! `{customer_id: .customer_id}`, `{a: .a, b: .x.y}`, `{a: .["k"]}`, `{a}`.
//!
//! jaq parses each whole record into a jaq value (every member, every string copied) before the
//! filter picks one member; for such a query that is nearly all of its cost. Here the query is
//! recognised once from jaq's own parse of it ([`PlainPaths::recognise`]: an object whose every
//! entry has a literal key and, as value, a path of literal object keys from `.`, none optional),
//! and each record is read by serde_json from its bytes: the members the paths need are taken as
//! borrowed raw text (the last of duplicates, as jq keeps), all others skipped unparsed; a path
//! into a nested value reads that value's raw text the same way. The key values are then turned
//! into text exactly as [`super::query`] turns jaq's values (numbers through jaq's own number
//! parser).
//!
//! The result must be jaq's for every record, so the fast path only answers when it is sure
//! ([`PlainPaths::extract`] gives `None` otherwise, and the caller runs jaq on that record):
//! - serde_json accepts strict JSON only; jaq's reader accepts more (comments, `NaN`, non-string
//!   keys, invalid UTF-8 in strings, any depth). Whatever serde_json refuses goes to jaq, so
//!   every `NotJson` comes from jaq itself.
//! - serde_json skips a string without checking its `\u` escapes, where jaq refuses a lone
//!   surrogate: a record with a backslash followed by `u` and a surrogate's first hex digits
//!   (`\uD8`..`\uDF`, any case) goes to jaq.
//! - Indexing anything but an object or null is a jq error, whose text is jaq's: to jaq.
//! - A number that does not read back as a JSON number is reported with jaq's print of the
//!   whole object: to jaq.
//!
//! Null and missing members, arrays and objects as key values, strings with escapes, numbers and
//! booleans are answered here.

use std::fmt;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::Term;
use jaq_core::path::{Opt, Part};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::query::ExtractError;

/// A recognised object-of-plain-paths query: one path (object keys) per partition key, in the
/// query's key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlainPaths {
    /// Invariant: as many as the query's keys, each path at least one step long.
    paths: Vec<Vec<String>>,
    /// The distinct first steps of `paths`, read in one pass over the record.
    firsts: Vec<String>,
    /// For each path, its first step's index in `firsts`.
    first_of: Vec<usize>,
}

/// What a path gave on one record.
enum Found<'a> {
    /// Missing or null somewhere along the path.
    Null,
    /// The raw JSON text of the value.
    Value(&'a RawValue),
}

impl PlainPaths {
    /// Recognises `source` when it is an object of plain paths whose key names are `keys` (as
    /// [`super::query::MetadataQuery`] found them), from jaq's parse of it; `None` for any other
    /// query, which then always runs on jaq.
    pub(crate) fn recognise(source: &str, keys: &[String]) -> Option<PlainPaths> {
        let term = jaq_core::load::parse(source, |p| p.term())?;
        let Term::Obj(entries) = term else {
            return None;
        };
        let mut names = Vec::with_capacity(entries.len());
        let mut paths = Vec::with_capacity(entries.len());
        for (key, value) in &entries {
            let name = literal(key)?;
            let path = match value {
                // `{a}` is `{a: .a}`.
                None => vec![name.clone()],
                Some(value) => {
                    let mut path = Vec::new();
                    plain_path(value, &mut path)?;
                    path
                }
            };
            if path.is_empty() {
                return None;
            }
            names.push(name);
            paths.push(path);
        }
        if names != keys {
            return None;
        }
        let mut firsts: Vec<String> = Vec::new();
        let mut first_of = Vec::with_capacity(paths.len());
        for path in &paths {
            let first = &path[0];
            let index = match firsts.iter().position(|f| f == first) {
                Some(i) => i,
                None => {
                    firsts.push(first.clone());
                    firsts.len() - 1
                }
            };
            first_of.push(index);
        }
        debug_assert!(paths.iter().all(|p| !p.is_empty()));
        Some(PlainPaths {
            paths,
            firsts,
            first_of,
        })
    }

    /// The keys of one record, named by `keys` (the query's key names, in order): `Some` with
    /// exactly what jaq gives, or `None` when this record must go to jaq (see the module docs).
    pub(crate) fn extract(
        &self,
        keys: &[String],
        data: &[u8],
    ) -> Option<Result<Vec<(String, String)>, ExtractError>> {
        debug_assert_eq!(keys.len(), self.paths.len());
        if has_surrogate_escape(data) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(data);
        let firsts = Members {
            names: &self.firsts,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        // Every path first, then every key's value: jq builds the whole object before its
        // keys are judged, so a later path's error (indexing a string: to jaq) comes before an
        // earlier key's null or non-scalar value.
        let mut values = Vec::with_capacity(keys.len());
        for (path, &first) in self.paths.iter().zip(&self.first_of) {
            let mut found = match &firsts {
                None => Found::Null,
                Some(members) => members[first].map_or(Found::Null, Found::Value),
            };
            for step in &path[1..] {
                let Found::Value(raw) = found else { break };
                let names = std::slice::from_ref(step);
                let mut inner = serde_json::Deserializer::from_str(raw.get());
                found = match (Members { names }).deserialize(&mut inner).ok()? {
                    None => Found::Null,
                    Some(members) => members[0].map_or(Found::Null, Found::Value),
                };
            }
            values.push(found);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (name, found) in keys.iter().zip(values) {
            let raw = match found {
                Found::Null => return Some(Err(ExtractError::NullKey(name.clone()))),
                Found::Value(raw) => raw.get(),
            };
            let text = match raw.as_bytes().first() {
                Some(b'n') => return Some(Err(ExtractError::NullKey(name.clone()))),
                Some(b't') => "true".to_owned(),
                Some(b'f') => "false".to_owned(),
                Some(b'"') => serde_json::from_str::<String>(raw).ok()?,
                Some(b'[' | b'{') => return Some(Err(ExtractError::NonScalar(name.clone()))),
                // A number, read as jaq reads it, then written as query.rs writes jaq's.
                _ => {
                    let number = jaq_json::read::parse_single_num(raw.as_bytes())?;
                    serde_json::from_str::<serde_json::Number>(&number.to_string())
                        .ok()?
                        .to_string()
                }
            };
            out.push((name.clone(), text));
        }
        Some(Ok(out))
    }
}

/// The text of a string term without interpolation or format (`a`, `"a b"`, `"\u0041"`).
fn literal(term: &Term<&str>) -> Option<String> {
    let Term::Str(None, parts) = term else {
        return None;
    };
    let mut out = String::new();
    for part in parts {
        match part {
            StrPart::Str(s) => out.push_str(s),
            StrPart::Char(c) => out.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(out)
}

/// Appends the steps of a path of literal object keys from `.` (`.a.b`, `.["k"]`, `."k"`).
fn plain_path(term: &Term<&str>, path: &mut Vec<String>) -> Option<()> {
    match term {
        Term::Id => Some(()),
        Term::Path(base, parts) => {
            plain_path(base, path)?;
            for (part, opt) in &parts.0 {
                let (Part::Index(index), Opt::Essential) = (part, opt) else {
                    return None;
                };
                path.push(literal(index)?);
            }
            Some(())
        }
        _ => None,
    }
}

/// Whether `data` holds a backslash, `u` and a surrogate's first two hex digits: serde_json
/// skips such an escape unchecked where jaq may refuse it.
fn has_surrogate_escape(data: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', data).any(|i| {
        matches!(
            data.get(i + 1..i + 4),
            Some([b'u', b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'])
        )
    })
}

/// Reads a JSON value: `None` for null, for an object the raw text of the last member named by
/// each of `names` (unnamed members skipped), an error for anything else.
struct Members<'n> {
    names: &'n [String],
}

type Picked<'de> = Option<Vec<Option<&'de RawValue>>>;

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = Picked<'de>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Picked<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = vec![None; self.names.len()];
        while let Some(index) = map.next_key_seed(KeyIndex { names: self.names })? {
            match index {
                // The last of duplicate members wins, as in jq.
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(found))
    }
}

/// Reads an object member's name: its index in `names`, if there.
struct KeyIndex<'n> {
    names: &'n [String],
}

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object member's name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.names.iter().position(|n| n == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(q: &str, keys: &[&str]) -> Option<Vec<Vec<String>>> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        PlainPaths::recognise(q, &keys).map(|p| p.paths)
    }

    fn v(steps: &[&str]) -> Vec<String> {
        steps.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn recognises_objects_of_plain_paths_only() {
        assert_eq!(
            paths("{customer_id:.customer_id}", &["customer_id"]),
            Some(vec![v(&["customer_id"])])
        );
        assert_eq!(
            paths(
                r#"{ a: .a, "b c": .x.y, d: .["k l"], e: ."m", f, g: .p | .q }"#,
                &["a", "b c", "d", "e", "f", "g"]
            ),
            None,
            "a pipe is not a plain path"
        );
        assert_eq!(
            paths(
                r#"{ a: .a, "b c": .x.y, d: .["k l"], e: ."m", f, "g\u0041": .["\n"] }"#,
                &["a", "b c", "d", "e", "f", "gA"]
            ),
            Some(vec![
                v(&["a"]),
                v(&["x", "y"]),
                v(&["k l"]),
                v(&["m"]),
                v(&["f"]),
                v(&["\n"])
            ])
        );
        for other in [
            "{a: .a?}",
            "{a: .a[0]}",
            "{a: .[0]}",
            "{a: .a[]}",
            "{a: .}",
            "{a: .t | strftime(\"%Y\")}",
            "{a: \"x\"}",
            "{a: .[\"\\(.k)\"]}",
            "{$a}",
            "{a: .a} | .",
            "{a: (.a, .b)}",
            "{a: $__loc__}",
        ] {
            assert_eq!(paths(other, &["a"]), None, "{other}");
        }
        // The names must be the ones the query's check found.
        assert_eq!(paths("{a: .a}", &["b"]), None);
    }

    /// Each record through the fast path (`Some` expected where `answers`) and through jaq:
    /// the same result.
    fn same_as_jaq(q: &str, cases: &[(&[u8], bool)]) {
        let query =
            super::super::query::MetadataQuery::compile(q).unwrap_or_else(|e| panic!("{e}"));
        let plain = PlainPaths::recognise(q, query.keys()).unwrap_or_else(|| panic!("{q}"));
        for (record, answers) in cases {
            let shown = String::from_utf8_lossy(record);
            let jaq = query.extract_by_jaq(record);
            match plain.extract(query.keys(), record) {
                Some(fast) => assert_eq!(fast, jaq, "{q} on {shown}"),
                None => assert!(!answers, "{q} on {shown}: the fast path did not answer"),
            }
            assert!(
                !answers || plain.extract(query.keys(), record).is_some(),
                "{q} on {shown}"
            );
            assert_eq!(query.extract(record), jaq, "{q} on {shown}");
        }
    }

    #[test]
    fn gives_what_jaq_gives_on_every_kind_of_record() {
        same_as_jaq(
            "{a: .a}",
            &[
                (br#"{"a":"x"}"#, true),
                (br#" {"b":[1,{"a":2}],"a":"x"} "#, true),
                // Numbers' text: as serde_json prints jaq's numbers.
                (br#"{"a":12}"#, true),
                (br#"{"a":-0}"#, true),
                (br#"{"a":1.50}"#, true),
                (br#"{"a":1e20}"#, true),
                (br#"{"a":1E-7}"#, true),
                (br#"{"a":12345678901234567890123}"#, true),
                (br#"{"a":1e400}"#, false),
                (br#"{"a":true}"#, true),
                (br#"{"a":false}"#, true),
                // Strings with escapes, non-ASCII and surrogate pairs.
                (br#"{"a":"t\u00e9\n\"q\"\\\/"}"#, true),
                ("{\"a\":\"caf\u{e9} \u{1f600}\"}".as_bytes(), true),
                (br#"{"a":"\ud83d\ude00"}"#, false),
                (br#"{"a":"x","m":"\udc00"}"#, false),
                // Null, missing, nested values.
                (br#"{"a":null}"#, true),
                (br#"{"b":1}"#, true),
                (b"null", true),
                (br#"{"a":[1]}"#, true),
                (br#"{"a":{"b":1}}"#, true),
                (br#"{"a":{}}"#, true),
                // Duplicate members: the last wins, as in jq; escaped names are the same name.
                (br#"{"a":1,"a":"last"}"#, true),
                (br#"{"a":"first","\u0061":null}"#, true),
                // Not an object, not JSON, more than one value, jaq's own extensions.
                (br#"[1,2]"#, false),
                (br#""a""#, false),
                (b"12", false),
                (b"not json", false),
                (b"", false),
                (br#"{"a":1} {"a":2}"#, false),
                (br#"{"a":1}{"a":2}"#, false),
                (br#"{"a":1,}"#, false),
                (b"{\"a\":1} # comment", false),
                (br#"{"a":NaN}"#, false),
                (br#"{"a":01}"#, false),
                (b"{\"a\":\"\xff\"}", false),
                (b"{\"b\":\"\xff\",\"a\":1}", true),
                (b"{\"a\":\"tab\there\"}", false),
            ],
        );
        same_as_jaq(
            r#"{a: .x.y, "b c": .["k l"], d: ."q"["r"], e}"#,
            &[
                (br#"{"x":{"y":"v"},"k l":1,"q":{"r":true},"e":"w"}"#, true),
                (
                    br#"{"x":{"y":"v"},"k l":null,"q":{"r":true},"e":"w"}"#,
                    true,
                ),
                (br#"{"x":null,"k l":1,"q":{"r":true},"e":"w"}"#, true),
                (br#"{"k l":1,"q":{"r":true},"e":[]}"#, true),
                (
                    br#"{"x":{"y":"v"},"k l":1,"q":{"r":{"s":1}},"e":"w"}"#,
                    true,
                ),
                // Indexing a string or array is jaq's error (with jaq's message).
                (br#"{"x":"s","k l":1,"q":{"r":true},"e":"w"}"#, false),
                (br#"{"x":{"y":"v"},"k l":1,"q":[1],"e":"w"}"#, false),
                (
                    br#"{"x":{"y":1,"y":{"z":1}},"k l":1,"q":{"r":true},"e":"w"}"#,
                    true,
                ),
                // An earlier key's value is null or not a scalar and a later path indexes a
                // string: jq builds the whole object first, so the index error is the answer
                // (found by the partition_fastpath fuzz target).
                (br#"{"x":{"y":{"z":1}},"k l":1,"q":"s","e":"w"}"#, false),
                (br#"{"x":null,"k l":1,"q":"s","e":"w"}"#, false),
            ],
        );
        same_as_jaq(
            r#"{a: .a.a["a"], _1: .a.a.a.a.a.a.a}"#,
            &[(br#"{"a":{"a":{"a":{"a":"v"}}}}"#, false)],
        );
    }
}
