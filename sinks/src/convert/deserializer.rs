//! The input side of conversion: a record's JSON objects, and the deserializer's rules that
//! find each column's value in one of them.
//!
//! ```text
//!  record bytes ──► JSON objects (concatenated objects allowed; arrays, scalars refused)
//!               ──► per object: key normalisation (lowercase when CaseInsensitive,
//!                   '.' → '_' when ConvertDotsInJsonKeysToUnderscores)
//!               ──► per column: its ColumnToJsonKeyMappings key, else its own name,
//!                   looked up normalised; absent = null; keys not in the schema dropped
//! ```
//!
//! [`rows`] does this in one pass over the record's text: a [`KeyPlan`] (built once per
//! object written) maps each normalised key to its columns, so a member's value is parsed into
//! a [`Value`] only when a column takes it; other members are skipped (checked as JSON, not
//! kept). When two keys of an object normalise alike, the later one in the text wins, as a
//! repeated key does in JSON.
//!
//! - `OpenXJsonSerDe{CaseInsensitive (default true), ConvertDotsInJsonKeysToUnderscores
//!   (default false), ColumnToJsonKeyMappings}`: the rules above, also inside nested structs
//!   (mappings apply to top-level columns).
//! - `HiveJsonSerDe{TimestampFormats}`: case-insensitive keys, no dot rule, no mappings; its
//!   formats are tried first for `timestamp` and `date` columns ([`super::timestamp`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::timestamp::TimestampFormat;

/// The deserializer of `InputFormatConfiguration`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deserializer {
    /// JSON keys compared lowercased (OpenX `CaseInsensitive`; always for the Hive SerDe).
    pub case_insensitive: bool,
    /// `.` in JSON keys read as `_` (OpenX `ConvertDotsInJsonKeysToUnderscores`).
    pub dots_to_underscores: bool,
    /// OpenX `ColumnToJsonKeyMappings`: column name → JSON key.
    pub mappings: Vec<(String, String)>,
    /// Hive `TimestampFormats`, in order.
    pub timestamp_formats: Vec<TimestampFormat>,
}

impl Default for Deserializer {
    /// The OpenX JSON SerDe with its defaults (Firehose's default deserializer).
    fn default() -> Self {
        Deserializer {
            case_insensitive: true,
            dots_to_underscores: false,
            mappings: Vec::new(),
            timestamp_formats: Vec::new(),
        }
    }
}

/// Most JSON objects one record may hold (a bound on the rows a single record becomes).
pub const MAX_OBJECTS_PER_RECORD: usize = 10_000;

impl Deserializer {
    /// A key as the rules compare it, borrowed when the rules leave it as it is (the common
    /// case: a lowercase ASCII key without dots).
    pub fn normalized<'k>(&self, key: &'k str) -> Cow<'k, str> {
        let changes = (self.case_insensitive
            && key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()))
            || (self.dots_to_underscores && key.contains('.'));
        if changes {
            Cow::Owned(self.normalize(key))
        } else {
            Cow::Borrowed(key)
        }
    }

    /// A key as the rules compare it.
    pub fn normalize(&self, key: &str) -> String {
        let key = if self.dots_to_underscores {
            key.replace('.', "_")
        } else {
            key.to_string()
        };
        if self.case_insensitive {
            key.to_lowercase()
        } else {
            key
        }
    }

    /// An object's members by normalised key (when two keys normalise alike, the later one in
    /// the object wins, as a repeated key does in JSON).
    pub fn index<'v>(&self, object: &'v Map<String, Value>) -> HashMap<String, &'v Value> {
        object.iter().map(|(k, v)| (self.normalize(k), v)).collect()
    }

    /// The JSON key that holds `column` (its mapping, else its name), normalised.
    pub fn key_of(&self, column: &str) -> String {
        let key = self
            .mappings
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
            .map_or(column, |(_, k)| k.as_str());
        self.normalize(key)
    }
}

/// The columns each normalised JSON key fills, for one table (several columns may map to one
/// key through `ColumnToJsonKeyMappings`).
#[derive(Clone, Debug)]
pub struct KeyPlan {
    /// Looked up once per member of every record: foldhash, seeded per process, rather than
    /// SipHash (which took about a sixth of the conversion's reading time). The value is an
    /// index into `targets`.
    keys: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Per distinct key, the columns it fills, in the table's order (never empty).
    targets: Vec<Vec<usize>>,
    columns: usize,
}

impl KeyPlan {
    /// The plan of the columns `names` (in the table's order) under `de`'s rules.
    pub fn new<'n>(de: &Deserializer, names: impl IntoIterator<Item = &'n str>) -> KeyPlan {
        let mut keys: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut targets: Vec<Vec<usize>> = Vec::new();
        let mut columns = 0;
        for (i, name) in names.into_iter().enumerate() {
            let next = targets.len();
            let at = *keys.entry(de.key_of(name)).or_insert(next);
            if at == next {
                targets.push(Vec::new());
            }
            targets[at].push(i);
            columns = i + 1;
        }
        debug_assert!(
            targets.iter().all(|t| !t.is_empty()),
            "every key fills a column"
        );
        KeyPlan {
            keys,
            targets,
            columns,
        }
    }

    /// The number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The columns a normalised key fills (in the table's order), if any.
    pub fn columns_of(&self, key: &str) -> Option<&[usize]> {
        self.keys.get(key).map(|&t| self.targets[t].as_slice())
    }

    /// The columns the member at `place` of an object fills, by its key as the record writes
    /// it (not normalised): remembered in `memo`, so that a record whose keys come in the same
    /// order as the previous one's costs one comparison per member instead of a normalisation
    /// and a hash lookup. `de` is the deserializer the plan was made with.
    pub fn columns_at(
        &self,
        de: &Deserializer,
        memo: &mut KeyMemo,
        place: usize,
        key: &str,
    ) -> Option<&[usize]> {
        debug_assert!(
            memo.plan == 0 || memo.plan == std::ptr::from_ref(self) as usize,
            "a memo serves one plan"
        );
        if let Some((seen, target)) = memo.places.get(place) {
            if **seen == *key {
                return target.map(|t| self.targets[t].as_slice());
            }
        }
        let target = self.keys.get(de.normalized(key).as_ref()).copied();
        memo.plan = std::ptr::from_ref(self) as usize;
        if let Some(slot) = memo.places.get_mut(place) {
            *slot = (key.into(), target);
        } else if place == memo.places.len() && place < KeyMemo::PLACES {
            memo.places.push((key.into(), target));
        }
        target.map(|t| self.targets[t].as_slice())
    }
}

/// What [`KeyPlan::columns_at`] found for the key last seen at each place of an object (the
/// first [`KeyMemo::PLACES`] places), for one plan: a reading thread keeps one per object it
/// converts.
///
/// # Invariant
/// `places[i] = (key, target)`: `key` normalised under the plan's rules is looked up as
/// `target` in the plan whose address is `plan` (0 before the first lookup).
#[derive(Debug, Default)]
pub struct KeyMemo {
    places: Vec<(Box<str>, Option<usize>)>,
    plan: usize,
}

impl KeyMemo {
    /// Places remembered (a record with more members looks the others up each time).
    pub const PLACES: usize = 256;
}

/// The rows of one record: per JSON object, each column's value in the table's order
/// (`Value::Null` where the object has no key for it).
///
/// # Errors
/// As [`objects`]: why the record is not one or more JSON objects.
pub fn rows(data: &[u8], de: &Deserializer, plan: &KeyPlan) -> Result<Vec<Vec<Value>>, String> {
    let Ok(text) = std::str::from_utf8(data) else {
        // Not UTF-8 is not JSON: the value-by-value reader names the place.
        return Err(objects(data)
            .err()
            .unwrap_or_else(|| "malformed JSON: not UTF-8".into()));
    };
    // One object, the common case: one pass.
    if text.trim_start().starts_with('{') {
        let mut reader = serde_json::Deserializer::from_str(text);
        let mut row = vec![Value::Null; plan.columns];
        let seed = ObjectSeed {
            de,
            plan,
            row: &mut row,
        };
        if seed.deserialize(&mut reader).is_ok() && reader.end().is_ok() {
            return Ok(vec![row]);
        }
    }
    // Concatenated objects, or a record that fails (read again to name the reason).
    let mut out = Vec::new();
    for raw in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        let raw = raw.map_err(|e| format!("malformed JSON: {e}"))?.get();
        match raw.as_bytes().first() {
            Some(b'{') => {
                let mut row = vec![Value::Null; plan.columns];
                let seed = ObjectSeed {
                    de,
                    plan,
                    row: &mut row,
                };
                seed.deserialize(&mut serde_json::Deserializer::from_str(raw))
                    .map_err(|e| format!("malformed JSON: {e}"))?;
                out.push(row);
            }
            Some(b'[') => return Err(ARRAY_REFUSED.into()),
            _ => {
                let value: Value =
                    serde_json::from_str(raw).map_err(|e| format!("malformed JSON: {e}"))?;
                return Err(not_an_object(&value));
            }
        }
        if out.len() > MAX_OBJECTS_PER_RECORD {
            return Err(too_many());
        }
    }
    if out.is_empty() {
        return Err(NO_OBJECT.into());
    }
    Ok(out)
}

const ARRAY_REFUSED: &str = "a JSON array is not a record: send its objects one by one";
const NO_OBJECT: &str = "no JSON object in the record";

fn not_an_object(value: &Value) -> String {
    format!(
        "a JSON {} is not a record: it must be an object",
        super::timestamp::kind(value)
    )
}

fn too_many() -> String {
    format!("more than {MAX_OBJECTS_PER_RECORD} JSON objects in one record")
}

/// Reads one JSON object into `row`: the members a column takes as [`Value`]s, the others
/// skipped.
struct ObjectSeed<'p> {
    de: &'p Deserializer,
    plan: &'p KeyPlan,
    row: &'p mut Vec<Value>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        debug_assert_eq!(self.row.len(), self.plan.columns, "one slot per column");
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.plan.columns_of(self.de.normalized(&key).as_ref()) {
                Some(columns) => {
                    let value: Value = map.next_value()?;
                    if let Some((last, others)) = columns.split_last() {
                        for &c in others {
                            self.row[c] = value.clone();
                        }
                        self.row[*last] = value;
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// An object's key, borrowed from the record's text when it has no escapes.
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The JSON objects of one record, in order.
///
/// # Errors
/// Why the record is not one or more JSON objects (malformed JSON, an array or a scalar at the
/// top level, no object at all, too many).
pub fn objects(data: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
        match value.map_err(|e| format!("malformed JSON: {e}"))? {
            Value::Object(map) => out.push(map),
            Value::Array(_) => return Err(ARRAY_REFUSED.into()),
            other => return Err(not_an_object(&other)),
        }
        if out.len() > MAX_OBJECTS_PER_RECORD {
            return Err(too_many());
        }
    }
    if out.is_empty() {
        return Err(NO_OBJECT.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn concatenated_objects_are_rows_and_arrays_are_refused() {
        assert_eq!(
            objects(br#"{"a":1} {"a":2}{"a":3}"#).map(|o| o.len()),
            Ok(3)
        );
        assert_eq!(objects(b"{\"a\":1}\n").map(|o| o.len()), Ok(1));
        for bad in [&b"[{\"a\":1}]"[..], b"42", b"", b"  ", b"{\"a\":", b"{} x"] {
            assert!(objects(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_memo_answers_as_the_plan_whatever_the_order_of_keys() {
        let de = Deserializer {
            dots_to_underscores: true,
            mappings: vec![("ts".into(), "Event.Time".into())],
            ..Deserializer::default()
        };
        let plan = KeyPlan::new(&de, ["userid", "geo_city", "ts", "event_time"]);
        let mut memo = KeyMemo::default();
        // Objects whose keys come in the same order, in another order, with fewer and more
        // members, and keys that normalise alike: every answer is the plan's own.
        let objects: [&[&str]; 5] = [
            &["UserId", "geo.city", "Event.Time", "other"],
            &["UserId", "geo.city", "Event.Time", "other"],
            &["geo.city", "other", "USERID", "event_time"],
            &["Event.Time"],
            &["x", "y", "userid", "GEO_CITY", "Event.Time", "event.time"],
        ];
        for keys in objects {
            for (place, key) in keys.iter().enumerate() {
                let expected = plan.columns_of(de.normalized(key).as_ref());
                assert_eq!(
                    plan.columns_at(&de, &mut memo, place, key),
                    expected,
                    "{key} at {place}"
                );
            }
        }
        assert_eq!(
            plan.columns_at(&de, &mut memo, 0, "Event.Time"),
            Some(&[2, 3][..])
        );
        assert_eq!(plan.columns_at(&de, &mut memo, 1, "UserId"), Some(&[0][..]));
        assert_eq!(plan.columns_at(&de, &mut memo, 1, "nothing"), None);
        assert_eq!(
            plan.columns_at(&de, &mut memo, 5, "event.time"),
            Some(&[2, 3][..])
        );
    }

    #[test]
    fn keys_follow_case_dots_and_mappings() {
        let de = Deserializer {
            dots_to_underscores: true,
            mappings: vec![("ts".into(), "Event.Time".into())],
            ..Deserializer::default()
        };
        let object = json!({"UserId": 1, "geo.city": "x", "Event.Time": 5});
        let index = de.index(object.as_object().unwrap_or_else(|| panic!("object")));
        assert_eq!(index.get(&de.key_of("userid")), Some(&&json!(1)));
        assert_eq!(index.get(&de.key_of("geo_city")), Some(&&json!("x")));
        assert_eq!(index.get(&de.key_of("ts")), Some(&&json!(5)));
        let strict = Deserializer {
            case_insensitive: false,
            ..Deserializer::default()
        };
        let index = strict.index(object.as_object().unwrap_or_else(|| panic!("object")));
        assert_eq!(index.get(&strict.key_of("userid")), None);
        assert_eq!(index.get(&strict.key_of("geo_city")), None);
    }

    #[test]
    fn rows_take_mapped_keys_in_one_pass_and_the_later_key_wins() {
        let de = Deserializer {
            dots_to_underscores: true,
            mappings: vec![("b".into(), "A".into())],
            ..Deserializer::default()
        };
        // Columns a and b both read key "a" (b through its mapping); c reads "c" ("C.x" is
        // c_x, not in the table).
        let plan = KeyPlan::new(&de, ["a", "b", "c"]);
        assert_eq!(plan.columns(), 3);
        let got = rows(br#"{"a": 1, "C.x": {"deep": [1e400]}, "A": 2}"#, &de, &plan);
        assert_eq!(got, Ok(vec![vec![json!(2), json!(2), Value::Null]]));
        let got = rows(br#" {"c": "x"} {"a": [1]}"#, &de, &plan);
        assert_eq!(
            got,
            Ok(vec![
                vec![Value::Null, Value::Null, json!("x")],
                vec![json!([1]), json!([1]), Value::Null]
            ])
        );
        for (bad, reason) in [
            (&b"[{\"a\":1}]"[..], "array"),
            (b"{\"a\":1} 7", "number"),
            (b"{\"a\":", "malformed"),
            (b"{\"a\": \"\xff\"}", "malformed"),
            (b"  ", "no JSON object"),
        ] {
            let e = rows(bad, &de, &plan).err().unwrap_or_default();
            assert!(e.contains(reason), "{e}");
        }
    }
}
