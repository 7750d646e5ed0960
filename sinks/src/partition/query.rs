//! The `MetadataExtraction` processor: partition keys from records by a jq query
//! (`MetadataExtractionQuery`, `JsonParsingEngine` `JQ-1.6`), run by jaq.
//!
//! The query is an object construction, as Firehose takes it: `{customer_id: .customer_id,
//! year: .event_time | strftime("%Y")}`; its keys are the names `!{partitionKeyFromQuery:...}`
//! may use, found at create time ([`MetadataQuery::compile`]). At delivery each record is parsed
//! as one JSON value, the query runs on it and must give exactly one object whose every key has
//! a scalar value (string, number, boolean): strings are taken as they are, numbers and booleans
//! as JSON prints them. Anything else is an [`ExtractError`], and the record goes to the error
//! output (`partitioning-failed`).
//!
//! jaq's compiled filters hold reference-counted values and are not `Send`, so the query is
//! compiled (tens of microseconds) on each thread that runs it, and never crosses an `.await`.
//! [`MetadataQuery::extract_batch`] splits a large batch into consecutive runs of records over
//! a few scoped threads ([`extraction_threads`]) and joins their results in record order: each
//! record's keys are a pure function of its bytes, so the split changes nothing but the time.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
use jaq_json::Val;

use super::plain_paths::PlainPaths;
use super::PARTITION_KEYS_MAX;

/// The one `JsonParsingEngine` Firehose has.
pub const JSON_PARSING_ENGINE: &str = "JQ-1.6";

/// A `MetadataExtractionQuery` that cannot be accepted (create time).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query is not an object construction `{name: query, ...}`.
    #[error(
        "MetadataExtractionQuery must be a jq object construction such as {{name: .field}}: {0}"
    )]
    NotAnObject(String),
    /// A key of the object is computed (`(expr): value`), so its name is not known.
    #[error("MetadataExtractionQuery: key {0:?} is not a literal name")]
    DynamicKey(String),
    /// The same key twice.
    #[error("MetadataExtractionQuery: key {0:?} is given twice")]
    DuplicateKey(String),
    /// More keys than a Prefix may use.
    #[error("MetadataExtractionQuery has {0} keys; at most {PARTITION_KEYS_MAX} are allowed")]
    TooManyKeys(usize),
    /// jaq could not parse or compile the query.
    #[error("MetadataExtractionQuery is not a valid jq query: {0}")]
    Invalid(String),
}

/// Why one record gave no partition keys (delivery time).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The record is not one JSON value.
    #[error("the record is not JSON: {0}")]
    NotJson(String),
    /// The query raised an error on the record.
    #[error("the MetadataExtractionQuery failed: {0}")]
    QueryFailed(String),
    /// The query gave no value, or more than one.
    #[error("the MetadataExtractionQuery gave {0} values instead of one")]
    OutputCount(usize),
    /// The query's value is not an object.
    #[error("the MetadataExtractionQuery gave {0}, not an object")]
    NotAnObject(String),
    /// A key is missing from the value, or null.
    #[error("partition key {0:?} is null or missing")]
    NullKey(String),
    /// A key's value is an array or object.
    #[error("partition key {0:?} is not a string, number or boolean")]
    NonScalar(String),
}

impl ExtractError {
    /// The `errorCode` of the failed-record JSON.
    pub fn error_code(&self) -> &'static str {
        match self {
            ExtractError::NotJson(_) => "DynamicPartitioning.NonJsonRecord",
            ExtractError::QueryFailed(_)
            | ExtractError::OutputCount(_)
            | ExtractError::NotAnObject(_) => "DynamicPartitioning.MetadataExtractionFailed",
            ExtractError::NullKey(_) | ExtractError::NonScalar(_) => {
                "DynamicPartitioning.InvalidPartitionKey"
            }
        }
    }
}

/// A checked `MetadataExtractionQuery`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataQuery {
    source: String,
    keys: Vec<String>,
    /// The query when it is an object of plain paths, read without jaq where that is sure to
    /// give jaq's result ([`PlainPaths`]).
    plain: Option<PlainPaths>,
}

type Filter = jaq_core::Filter<data::JustLut<Val>>;

fn compile(source: &str) -> Result<Filter, QueryError> {
    let program = File {
        code: source,
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, program)
        .map_err(|errors| QueryError::Invalid(format!("cannot parse ({} errors)", errors.len())))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| QueryError::Invalid(format!("cannot compile ({} errors)", errors.len())))
}

impl MetadataQuery {
    /// Checks a query: an object construction with literal keys, at most
    /// [`PARTITION_KEYS_MAX`] of them, that jaq compiles.
    ///
    /// # Errors
    /// [`QueryError`].
    pub fn compile(source: &str) -> Result<MetadataQuery, QueryError> {
        let keys = object_keys(source)?;
        if keys.len() > PARTITION_KEYS_MAX {
            return Err(QueryError::TooManyKeys(keys.len()));
        }
        compile(source)?;
        let plain = PlainPaths::recognise(source, &keys);
        Ok(MetadataQuery {
            source: source.to_owned(),
            keys,
            plain,
        })
    }

    /// The query's key names, in its order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether the query is an object of plain paths, read without jaq where that gives jaq's
    /// result (`PlainPaths`).
    pub fn has_fast_path(&self) -> bool {
        self.plain.is_some()
    }

    /// The query text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the query on every record: one result per record, in order. A large batch is split
    /// into consecutive runs of records, one per thread ([`extraction_threads`]), each compiling
    /// the query for itself (jaq's filters are not `Send`); the results are joined in record
    /// order, so they do not depend on the split.
    pub fn extract_batch<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Vec<(String, String)>, ExtractError>> {
        let records: Vec<&[u8]> = records.into_iter().collect();
        self.extract_on(&records, extraction_threads(records.len()))
    }

    /// [`MetadataQuery::extract_batch`] on `threads` threads.
    fn extract_on(
        &self,
        records: &[&[u8]],
        threads: usize,
    ) -> Vec<Result<Vec<(String, String)>, ExtractError>> {
        if threads <= 1 || records.len() < 2 {
            return self.extract_run(records);
        }
        let per_thread = records.len().div_ceil(threads);
        let (mine, others) = records.split_at(per_thread);
        std::thread::scope(|scope| {
            let handles: Vec<_> = others
                .chunks(per_thread)
                .map(|run| scope.spawn(move || self.extract_run(run)))
                .collect();
            let mut out = Vec::with_capacity(records.len());
            out.extend(self.extract_run(mine));
            for handle in handles {
                match handle.join() {
                    Ok(run) => out.extend(run),
                    // jaq panicked on a record: as if it had on this thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            debug_assert_eq!(out.len(), records.len());
            out
        })
    }

    /// [`MetadataQuery::extract_batch`] on one thread. jaq's filter is compiled for the first
    /// record that needs it, none when the fast path answers for every record.
    fn extract_run(&self, records: &[&[u8]]) -> Vec<Result<Vec<(String, String)>, ExtractError>> {
        let mut jaq: Option<Result<(Filter, Vec<Val>), String>> = None;
        records
            .iter()
            .map(|data| {
                if let Some(out) = self
                    .plain
                    .as_ref()
                    .and_then(|p| p.extract(&self.keys, data))
                {
                    return out;
                }
                match jaq.get_or_insert_with(|| {
                    compile(&self.source)
                        .map(|filter| (filter, self.names()))
                        .map_err(|e| e.to_string())
                }) {
                    Ok((filter, names)) => self.extract_with(filter, names, data),
                    // Compiled at create time; a failure now is the same query failing on
                    // every record, which files them all rather than dropping them.
                    Err(message) => Err(ExtractError::QueryFailed(message.clone())),
                }
            })
            .collect()
    }

    /// Runs the query on one record.
    ///
    /// # Errors
    /// [`ExtractError`].
    pub fn extract(&self, data: &[u8]) -> Result<Vec<(String, String)>, ExtractError> {
        self.extract_run(&[data])
            .pop()
            .unwrap_or(Err(ExtractError::OutputCount(0)))
    }

    /// Runs the query on one record on jaq only, never the fast path (to compare the two).
    ///
    /// # Errors
    /// [`ExtractError`].
    pub fn extract_by_jaq(&self, data: &[u8]) -> Result<Vec<(String, String)>, ExtractError> {
        let filter = compile(&self.source).map_err(|e| ExtractError::QueryFailed(e.to_string()))?;
        self.extract_with(&filter, &self.names(), data)
    }

    /// The key names as jaq values, made once per run rather than per record.
    fn names(&self) -> Vec<Val> {
        self.keys
            .iter()
            .map(|k| Val::utf8_str(k.clone().into_bytes()))
            .collect()
    }

    fn extract_with(
        &self,
        filter: &Filter,
        names: &[Val],
        data: &[u8],
    ) -> Result<Vec<(String, String)>, ExtractError> {
        debug_assert_eq!(names.len(), self.keys.len());
        let input = jaq_json::read::parse_single(data)
            .map_err(|e| ExtractError::NotJson(cut(&e.to_string())))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
        let mut outputs = filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match outputs.next() {
            None => return Err(ExtractError::OutputCount(0)),
            Some(Err(e)) => return Err(ExtractError::QueryFailed(cut(&e.to_string()))),
            Some(Ok(v)) => v,
        };
        if outputs.next().is_some() {
            return Err(ExtractError::OutputCount(2));
        }
        // Read off jaq's value directly (no printing and parsing again per record).
        let Val::Obj(object) = &first else {
            return Err(ExtractError::NotAnObject(cut(&first.to_string())));
        };
        let mut out = Vec::with_capacity(self.keys.len());
        for (name, key) in self.keys.iter().zip(names) {
            let text = match object.get(key) {
                None | Some(Val::Null) => return Err(ExtractError::NullKey(name.clone())),
                Some(Val::TStr(b) | Val::BStr(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Val::Bool(b)) => b.to_string(),
                // As JSON writes the number (serde's form, as before: `1e20`, not jaq's
                // `100000000000000000000.0`); NaN and infinities are no JSON.
                Some(Val::Num(n)) => serde_json::from_str::<serde_json::Number>(&n.to_string())
                    .map_err(|_| ExtractError::NotAnObject(cut(&first.to_string())))?
                    .to_string(),
                Some(_) => return Err(ExtractError::NonScalar(name.clone())),
            };
            out.push((name.clone(), text));
        }
        Ok(out)
    }
}

/// Records below which a batch's extraction stays on one thread (a thread costs tens of
/// microseconds to start and compile the query on; a record about 5).
const RECORDS_PER_THREAD_MIN: usize = 512;
/// The most threads one batch's extraction uses.
const EXTRACTION_THREADS_MAX: usize = 4;

/// How many threads extract the keys of `records` records: one per CPU, at most
/// `EXTRACTION_THREADS_MAX`, each with at least `RECORDS_PER_THREAD_MIN` records.
pub fn extraction_threads(records: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    cpus.min(EXTRACTION_THREADS_MAX)
        .min(records / RECORDS_PER_THREAD_MIN)
        .max(1)
}

/// At most 200 characters of a message or value, for error messages.
fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The literal key names of a top-level jq object construction: `{a: .x, "b c": .y, d}`.
fn object_keys(source: &str) -> Result<Vec<String>, QueryError> {
    let trimmed = source.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| QueryError::NotAnObject(cut(trimmed)))?;
    let mut keys: Vec<String> = Vec::new();
    for entry in
        split_top_level(inner, b',').map_err(|reason| QueryError::NotAnObject(reason.to_owned()))?
    {
        let entry = entry.trim();
        if entry.is_empty() {
            if inner.trim().is_empty() {
                break;
            }
            return Err(QueryError::NotAnObject("an empty entry".to_owned()));
        }
        let key_text = match split_top_level(entry, b':')
            .map_err(|reason| QueryError::NotAnObject(reason.to_owned()))?
            .first()
        {
            Some(k) => k.trim().to_owned(),
            None => entry.to_owned(),
        };
        let name = if key_text.starts_with('"') {
            serde_json::from_str::<String>(&key_text)
                .map_err(|_| QueryError::DynamicKey(cut(&key_text)))?
        } else if is_identifier(key_text.strip_prefix('$').unwrap_or(&key_text)) {
            key_text.trim_start_matches('$').to_owned()
        } else {
            return Err(QueryError::DynamicKey(cut(&key_text)));
        };
        if keys.contains(&name) {
            return Err(QueryError::DuplicateKey(name));
        }
        keys.push(name);
    }
    if keys.is_empty() {
        return Err(QueryError::NotAnObject("no keys".to_owned()));
    }
    Ok(keys)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `s` at `separator` where it is outside brackets and string literals.
fn split_top_level(s: &str, separator: u8) -> Result<Vec<&str>, &'static str> {
    let bytes = s.as_bytes();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced brackets");
                }
            }
            _ if b == separator && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return Err("unbalanced brackets or quotes");
    }
    parts.push(&s[start..]);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(q: &str) -> Result<Vec<String>, QueryError> {
        MetadataQuery::compile(q).map(|m| m.keys().to_vec())
    }

    #[test]
    fn key_names_of_the_guide_queries() {
        assert_eq!(
            keys("{customer_id:.customer_id,device:.type.device,year:.event_timestamp|strftime(\"%Y\"),month:.event_timestamp|strftime(\"%m\")}"),
            Ok(vec!["customer_id".into(), "device".into(), "year".into(), "month".into()])
        );
        assert_eq!(
            keys("{ \"a b\": .x, c }"),
            Ok(vec!["a b".into(), "c".into()])
        );
        assert!(matches!(
            keys(".customer_id"),
            Err(QueryError::NotAnObject(_))
        ));
        assert!(matches!(keys("{(.k): 1}"), Err(QueryError::DynamicKey(_))));
        assert!(matches!(
            keys("{a: .x, a: .y}"),
            Err(QueryError::DuplicateKey(_))
        ));
        assert!(matches!(keys("{a: .x | }"), Err(QueryError::Invalid(_))));
        let many = (0..51)
            .map(|i| format!("k{i}: .k"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            keys(&format!("{{{many}}}")),
            Err(QueryError::TooManyKeys(51))
        );
    }

    #[test]
    fn strftime_on_epoch_seconds_as_the_guide_shows() {
        let q = MetadataQuery::compile(
            "{customer_id:.customer_id,year:.event_timestamp|strftime(\"%Y\"),month:.event_timestamp|strftime(\"%m\"),day:.event_timestamp|strftime(\"%d\"),hour:.event_timestamp|strftime(\"%H\")}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let record = br#"{"type":{"device":"mobile","event":"user_clicked_submit_button"},"customer_id":"1234567890","event_timestamp":1565382027,"region":"sample_region"}"#;
        let got = q.extract(record).unwrap_or_else(|e| panic!("{e}"));
        let pairs: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // 1565382027 is 2019-08-09T20:20:27Z.
        assert_eq!(
            pairs,
            vec![
                ("customer_id", "1234567890"),
                ("year", "2019"),
                ("month", "08"),
                ("day", "09"),
                ("hour", "20")
            ]
        );
    }

    #[test]
    fn a_batch_split_over_threads_gives_each_record_its_own_keys_in_order() {
        let q = MetadataQuery::compile("{a: .a, y: .t | strftime(\"%Y\")}")
            .unwrap_or_else(|e| panic!("{e}"));
        let records: Vec<Vec<u8>> = (0..1000u64)
            .map(|i| match i % 7 {
                0 => b"not json".to_vec(),
                1 => br#"{"a":null,"t":0}"#.to_vec(),
                _ => {
                    format!(r#"{{"a":"r{i}","t":{}}}"#, 1_000_000_000 + i * 40_000_000).into_bytes()
                }
            })
            .collect();
        let slices: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
        let one_by_one: Vec<_> = slices.iter().map(|r| q.extract(r)).collect();
        for threads in [1, 2, 3, 4, 7] {
            assert_eq!(
                q.extract_on(&slices, threads),
                one_by_one,
                "{threads} threads"
            );
        }
        assert_eq!(q.extract_batch(slices.iter().copied()), one_by_one);
        assert_eq!(q.extract_on(&[], 3), Vec::new());
        assert!(extraction_threads(10) == 1 && extraction_threads(1 << 20) <= 4);
    }

    #[test]
    fn scalars_become_text_and_the_rest_fails_typed() {
        let q = MetadataQuery::compile("{a: .a}").unwrap_or_else(|e| panic!("{e}"));
        let one = |r: &[u8]| q.extract(r);
        assert_eq!(one(br#"{"a":"x"}"#), Ok(vec![("a".into(), "x".into())]));
        assert_eq!(one(br#"{"a":12}"#), Ok(vec![("a".into(), "12".into())]));
        assert_eq!(one(br#"{"a":true}"#), Ok(vec![("a".into(), "true".into())]));
        assert_eq!(one(b"{\"a\":\"x\"}\n"), Ok(vec![("a".into(), "x".into())]));
        assert!(matches!(
            one(br#"{"a":null}"#),
            Err(ExtractError::NullKey(_))
        ));
        assert!(matches!(one(br#"{"b":1}"#), Err(ExtractError::NullKey(_))));
        assert!(matches!(
            one(br#"{"a":[1]}"#),
            Err(ExtractError::NonScalar(_))
        ));
        assert!(matches!(one(b"not json"), Err(ExtractError::NotJson(_))));
        assert!(matches!(
            one(b"{\"a\":1} {\"a\":2}"),
            Err(ExtractError::NotJson(_))
        ));
        let failing =
            MetadataQuery::compile("{a: .a | error(\"boom\")}").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            failing.extract(br#"{"a":1}"#),
            Err(ExtractError::QueryFailed(_))
        ));
        let many = MetadataQuery::compile("{a: (.a, .a)}").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            many.extract(br#"{"a":1}"#),
            Err(ExtractError::OutputCount(2))
        ));
    }
}
