//! The fast path of conversion: a record of one JSON object read in one pass straight into the
//! column builders, each member typed as it is parsed (strings copied once, from the record's
//! text into their column; no `Value` for scalars, no row of cells).
//!
//! ```text
//!  record bytes ──► append_record ──► Columns   (one row: Ok(1))
//!                        │
//!                        └─ anything else ─► Err(FastPathDeclined): the caller takes the
//!                           record back (Columns::truncate) and runs the row path
//!                           (deserializer::rows + cell::cell), which names the reason of a
//!                           failure or types what this path does not (concatenated objects)
//! ```
//!
//! # Invariant
//! Where this path succeeds, it appends exactly the cells the row path gives for the same
//! record: it uses the same key plan (its lookups remembered per member's place in a
//! [`KeyMemo`]), the same typing ([`cell::cell_owned`], with a string column's string taken as
//! is, and integers, floats and timestamp strings pushed by [`Columns`] under `cell`'s own
//! rules: range checks, `as_f64`, [`timestamp_micros_of_str`]), and the later of two keys that
//! normalise alike wins (the earlier value is popped). Where the row path would fail, this path
//! fails too (it types every value the row path types), so which records fail and why is
//! decided by the row path alone. Checked against the row path by unit tests here and by the
//! `convert_record` fuzz target.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::cell;
use super::columns::Columns;
use super::deserializer::{Deserializer, Key, KeyMemo, KeyPlan};
use super::hive::HiveType;
use super::timestamp::timestamp_micros_of_str;

/// The fast path does not take this record (it is not one well-formed JSON object whose
/// values all type): the caller runs the row path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastPathDeclined;

/// Appends the row of `data`, a record holding one JSON object, to `columns`; `memo` is the
/// reading thread's memo of `plan`'s lookups.
///
/// # Errors
/// [`FastPathDeclined`]; `columns` may then hold part of the row: the caller truncates to
/// its mark.
pub fn append_record(
    data: &[u8],
    de: &Deserializer,
    plan: &KeyPlan,
    memo: &mut KeyMemo,
    columns: &mut Columns,
) -> Result<usize, FastPathDeclined> {
    let text = std::str::from_utf8(data).map_err(|_| FastPathDeclined)?;
    if !text.trim_start().starts_with('{') {
        return Err(FastPathDeclined);
    }
    let mut reader = serde_json::Deserializer::from_str(text);
    RowSeed {
        de,
        plan,
        memo,
        columns,
    }
    .deserialize(&mut reader)
    .map_err(|_| FastPathDeclined)?;
    reader.end().map_err(|_| FastPathDeclined)?;
    Ok(1)
}

/// Reads one JSON object as one row.
struct RowSeed<'p> {
    de: &'p Deserializer,
    plan: &'p KeyPlan,
    memo: &'p mut KeyMemo,
    columns: &'p mut Columns,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let RowSeed {
            de,
            plan,
            memo,
            columns,
        } = self;
        let rows = columns.rows();
        let mut place = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let targets = plan.columns_at(de, memo, place, &key);
            place += 1;
            let Some(targets) = targets else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            for &c in targets {
                if columns.len(c) > rows {
                    columns.pop(c); // a repeated key: the later one wins
                }
            }
            match targets {
                [c] => map.next_value_seed(ValueSeed {
                    de,
                    columns: &mut *columns,
                    column: *c,
                })?,
                _ => {
                    // Several columns read this key (mappings): parse once, type per column.
                    let value: Value = map.next_value()?;
                    for &c in targets {
                        let ty = &columns.types()[c];
                        let cell = cell::cell(ty, &value, de).map_err(|_| A::Error::custom(""))?;
                        columns.push_cell(c, cell);
                    }
                }
            }
        }
        for c in 0..columns.types().len() {
            if columns.len(c) == rows {
                columns.push_null(c);
            }
        }
        columns.end_row();
        Ok(())
    }
}

/// Types one member's value into its column.
struct ValueSeed<'p> {
    de: &'p Deserializer,
    columns: &'p mut Columns,
    column: usize,
}

impl ValueSeed<'_> {
    fn typed<E: serde::de::Error>(self, value: Value) -> Result<(), E> {
        let ty = &self.columns.types()[self.column];
        let cell = cell::cell_owned(ty, value, self.de).map_err(|_| E::custom(""))?;
        self.columns.push_cell(self.column, cell);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        if self.columns.push_str(self.column, s) {
            return Ok(());
        }
        if matches!(self.columns.types()[self.column], HiveType::Timestamp) {
            // `cell` of a string, without making the string a `Value` first.
            let micros = timestamp_micros_of_str(s, &self.de.timestamp_formats)
                .map_err(|_| E::custom(""))?;
            if self.columns.push_timestamp(self.column, micros) {
                return Ok(());
            }
        }
        self.typed(Value::String(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<(), E> {
        if self.columns.push_str(self.column, &s) {
            return Ok(());
        }
        self.typed(Value::String(s))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<(), E> {
        self.typed(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<(), E> {
        // What `cell` makes of an integer in an integer column of its range, or in a
        // floating-point column (as `f64`, as `Number::as_f64` gives it); else `cell` decides.
        if self.columns.push_integer(self.column, i) {
            return Ok(());
        }
        self.typed(Value::from(i))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<(), E> {
        match i64::try_from(u) {
            // The same number: `Number::as_i64` and `as_f64` give the same for both.
            Ok(i) => self.visit_i64(i),
            Err(_) => self.typed(Value::from(u)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<(), E> {
        if self.columns.push_float(self.column, f) {
            return Ok(());
        }
        self.typed(Value::from(f))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.columns.push_null(self.column);
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        self.typed(value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        self.typed(value)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::ArrayRef;

    use super::super::cell::Cell;
    use super::super::hive::HiveType;
    use super::super::Column;
    use super::*;

    fn table(types: &[&str]) -> Vec<Column> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("c{i}"),
                    HiveType::parse(t).unwrap_or_else(|e| panic!("{e}")),
                )
            })
            .collect()
    }

    /// The row path's arrays of `records` (failures skipped), and whether each failed.
    fn by_rows(
        columns: &[Column],
        de: &Deserializer,
        records: &[&[u8]],
    ) -> (Vec<ArrayRef>, Vec<bool>) {
        let plan = KeyPlan::new(de, columns.iter().map(|(n, _)| n.as_str()));
        let mut out = Columns::new(columns);
        let mut failed = Vec::new();
        for r in records {
            let typed: Result<Vec<Vec<Cell>>, String> =
                super::super::deserializer::rows(r, de, &plan).and_then(|rows| {
                    rows.into_iter()
                        .map(|row| {
                            columns
                                .iter()
                                .zip(row)
                                .map(|((_, t), v)| cell::cell_owned(t, v, de))
                                .collect()
                        })
                        .collect()
                });
            failed.push(typed.is_err());
            for row in typed.unwrap_or_default() {
                for (i, c) in row.into_iter().enumerate() {
                    out.push_cell(i, c);
                }
                out.end_row();
            }
        }
        (out.finish().unwrap_or_else(|e| panic!("{e}")), failed)
    }

    /// The fast path's arrays of `records` (declined ones skipped), and whether each declined.
    fn by_fast_path(
        columns: &[Column],
        de: &Deserializer,
        records: &[&[u8]],
    ) -> (Vec<ArrayRef>, Vec<bool>) {
        let plan = KeyPlan::new(de, columns.iter().map(|(n, _)| n.as_str()));
        let mut out = Columns::new(columns);
        let mut declined = Vec::new();
        let mut memo = KeyMemo::default();
        for r in records {
            let mark = out.mark();
            let d = append_record(r, de, &plan, &mut memo, &mut out).is_err();
            if d {
                out.truncate(mark);
            }
            declined.push(d);
        }
        (out.finish().unwrap_or_else(|e| panic!("{e}")), declined)
    }

    #[test]
    fn the_fast_path_appends_what_the_row_path_types() {
        let columns = table(&[
            "string",
            "int",
            "double",
            "boolean",
            "timestamp",
            "decimal(9,2)",
            "binary",
            "array<int>",
            "struct<a:string,b:map<string,int>>",
            "tinyint",
            "date",
            "float",
            "bigint",
        ]);
        let de = Deserializer {
            dots_to_underscores: true,
            ..Deserializer::default()
        };
        let records: Vec<&[u8]> = vec![
            br#"{"c0": "x", "c1": 5, "c2": 1.5, "c3": true, "c4": "2026-01-02 03:04:05.678", "c5": 12.345, "c6": "bin", "c7": [1, null, 3], "c8": {"A": "s", "b": {"k": 1}}, "c9": -128, "c10": "2026-12-03"}"#,
            br#"{"C0": 12, "c1": "7", "c2": "2.5", "c3": "FALSE", "c4": 1767225600, "c5": "1e2", "c9": "12"}"#,
            br#"{"c0": {"nested": [1, "two"]}, "c0": "later wins", "x": {"skipped": [1e400]}}"#,
            br#"{"c0": "esc\"aped\u00e9", "c1": null, "c7": null, "c8": null}"#,
            br#"{}"#,
            br#"  {"c1": 1}  "#,
            // Integers into float and double columns, the ends of the ranges, an integer past
            // i64 into a double, and timestamps of each kind.
            br#"{"c11": 3, "c2": -7, "c12": 9223372036854775807, "c9": 127, "c1": -2147483648}"#,
            br#"{"c11": 3.4028234e38, "c2": 18446744073709551615, "c12": -9223372036854775808}"#,
            br#"{"c4": "2026-12-03T10:11:12.345Z", "c11": -1.5e-3, "c12": "12"}"#,
            br#"{"c4": 1767225600123, "c10": "2026-12-03T10:11:12Z", "c0": 18446744073709551615}"#,
        ];
        let fails: Vec<&[u8]> = vec![
            br#"{"c1": 1.5}"#,
            br#"{"c9": 128}"#,
            br#"{"c1": "x", "c1": 1}"#,
            br#"{"c0": "a"} {"c0": "b"}"#,
            br#"[{"c0": "a"}]"#,
            br#"{"c0": "a"} x"#,
            b"{\"c0\": \"\xff\"}",
            br#"{"c0": "#,
            br#"{"c7": {"a": 1}}"#,
            br#"{"c11": 3.5e38}"#,
            br#"{"c12": 9223372036854775808}"#,
            br#"{"c1": 2147483648}"#,
            br#"{"c12": 1.0}"#,
            br#"{"c4": "yesterday"}"#,
        ];
        let (rows, failed) = by_rows(&columns, &de, &records);
        let (fast, declined) = by_fast_path(&columns, &de, &records);
        assert_eq!(failed, vec![false; records.len()]);
        assert_eq!(declined, vec![false; records.len()]);
        assert_eq!(rows, fast, "same arrays by both paths");
        // Where the fast path declines, the row path decides: the repeated key that fails
        // first and then types, and concatenated objects, convert there.
        let (_, failed) = by_rows(&columns, &de, &fails);
        let (_, declined) = by_fast_path(&columns, &de, &fails);
        assert_eq!(declined, vec![true; fails.len()]);
        assert_eq!(
            failed,
            vec![
                true, true, false, false, true, true, true, true, true, true, true, true, true,
                true
            ]
        );
    }

    #[test]
    fn a_declined_record_leaves_no_value_behind() {
        let columns = table(&["string", "int"]);
        let de = Deserializer::default();
        let plan = KeyPlan::new(&de, ["c0", "c1"]);
        let mut out = Columns::new(&columns);
        let mut memo = KeyMemo::default();
        assert_eq!(
            append_record(br#"{"c0": "a", "c1": 1}"#, &de, &plan, &mut memo, &mut out),
            Ok(1)
        );
        let mark = out.mark();
        assert_eq!(
            append_record(
                br#"{"c0": "b", "c1": "x"}"#,
                &de,
                &plan,
                &mut memo,
                &mut out
            ),
            Err(FastPathDeclined)
        );
        out.truncate(mark);
        assert_eq!(out.rows(), 1);
        let arrays = out.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(arrays[0].len(), 1);
        assert_eq!(arrays[1].len(), 1);
    }
}
