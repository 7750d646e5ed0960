//! One JSON value typed by its column's Hive type: a [`Cell`], or the reason it is not one.
//!
//! The coercions (the OpenX JSON SerDe's, which Firehose uses by default):
//!
//! | Hive type | accepted JSON |
//! |---|---|
//! | `string` | a string as is; a number or boolean as its text; an object or array as its JSON text |
//! | `tinyint` … `bigint` | an integral number in range, or a string holding one |
//! | `float`, `double` | a number, or a string holding one |
//! | `boolean` | `true` / `false`, or the strings `"true"` / `"false"` (any case) |
//! | `decimal(p,s)` | a number or numeric string, rounded half-up to `s` digits; more than `p` digits fail |
//! | `timestamp`, `date` | see [`super::timestamp`] |
//! | `binary` | a string's UTF-8 bytes |
//! | `array<T>` | an array (each element typed as T) |
//! | `map<K,V>` | an object (keys typed as K, values as V) |
//! | `struct<...>` | an object (fields found by the deserializer's key rules) |
//!
//! `null` is a null of any type. Anything else fails the record, naming the column.

use serde_json::Value;

use super::deserializer::Deserializer;
use super::hive::HiveType;
use super::timestamp::{date_days, kind, timestamp_micros};

/// A typed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Null, of any type.
    Null,
    /// `boolean`.
    Bool(bool),
    /// Integers (in their type's range), dates (days) and timestamps (microseconds).
    Int(i64),
    /// `float` and `double`.
    Float(f64),
    /// `string`.
    Str(String),
    /// `binary`.
    Bytes(Vec<u8>),
    /// `decimal(p,s)`: the unscaled value.
    Decimal(i128),
    /// `array<T>`.
    List(Vec<Cell>),
    /// `map<K,V>`: entries in the object's order.
    Map(Vec<(Cell, Cell)>),
    /// `struct<...>`: one cell per field, in the type's order.
    Struct(Vec<Cell>),
}

/// [`cell`] of a value the caller gives up: a string for a `string` column is moved, not
/// copied.
///
/// # Errors
/// As [`cell`].
pub fn cell_owned(ty: &HiveType, value: Value, de: &Deserializer) -> Result<Cell, String> {
    match (ty, value) {
        (HiveType::String, Value::String(s)) => Ok(Cell::Str(s)),
        (_, value) => cell(ty, &value, de),
    }
}

/// Types `value` as `ty` under `de`'s rules.
///
/// # Errors
/// Why the value does not fit, for the record's failure message (the caller adds the column).
pub fn cell(ty: &HiveType, value: &Value, de: &Deserializer) -> Result<Cell, String> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let mismatch = || format!("a JSON {} is not a {ty}", kind(value));
    Ok(match ty {
        HiveType::String => Cell::Str(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        HiveType::TinyInt | HiveType::SmallInt | HiveType::Int | HiveType::BigInt => {
            let (min, max) = integer_range(ty).ok_or_else(mismatch)?;
            Cell::Int(integer(value, min, max, ty)?)
        }
        HiveType::Float | HiveType::Double => {
            let f = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .ok_or_else(mismatch)?;
            if f.is_finite() && !float_in_range(ty, f) {
                return Err(format!("{f} is out of the range of a float"));
            }
            Cell::Float(f)
        }
        HiveType::Boolean => Cell::Bool(match value {
            Value::Bool(b) => *b,
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(mismatch()),
        }),
        HiveType::Binary => match value {
            Value::String(s) => Cell::Bytes(s.as_bytes().to_vec()),
            _ => return Err(mismatch()),
        },
        HiveType::Date => Cell::Int(i64::from(date_days(value, &de.timestamp_formats)?)),
        HiveType::Timestamp => Cell::Int(timestamp_micros(value, &de.timestamp_formats)?),
        HiveType::Decimal { precision, scale } => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return Err(mismatch()),
            };
            Cell::Decimal(decimal(&text, *precision, *scale)?)
        }
        HiveType::Array(item) => match value {
            Value::Array(items) => Cell::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| cell(item, v, de).map_err(|e| format!("[{i}]: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(mismatch()),
        },
        HiveType::Map(key, val) => match value {
            Value::Object(object) => Cell::Map(
                object
                    .iter()
                    .map(|(k, v)| {
                        let key_cell = cell(key, &Value::String(k.clone()), de)
                            .map_err(|e| format!("key {k:?}: {e}"))?;
                        let value_cell = cell(val, v, de).map_err(|e| format!("[{k:?}]: {e}"))?;
                        Ok((key_cell, value_cell))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(mismatch()),
        },
        HiveType::Struct(fields) => match value {
            Value::Object(object) => {
                let index = de.index(object);
                Cell::Struct(
                    fields
                        .iter()
                        .map(|(name, t)| match index.get(&de.normalize(name)) {
                            Some(v) => cell(t, v, de).map_err(|e| format!(".{name}: {e}")),
                            None => Ok(Cell::Null),
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => return Err(mismatch()),
        },
    })
}

/// The values an integer type holds (`None` for other types).
pub fn integer_range(ty: &HiveType) -> Option<(i64, i64)> {
    Some(match ty {
        HiveType::TinyInt => (i64::from(i8::MIN), i64::from(i8::MAX)),
        HiveType::SmallInt => (i64::from(i16::MIN), i64::from(i16::MAX)),
        HiveType::Int => (i64::from(i32::MIN), i64::from(i32::MAX)),
        HiveType::BigInt => (i64::MIN, i64::MAX),
        _ => return None,
    })
}

/// Whether a finite `f` is within a `float` column's range (any finite value is within a
/// `double`'s).
pub fn float_in_range(ty: &HiveType, f: f64) -> bool {
    *ty != HiveType::Float || f.abs() <= f64::from(f32::MAX)
}

fn integer(value: &Value, min: i64, max: i64, ty: &HiveType) -> Result<i64, String> {
    let i = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{value} is not a {ty}"))?;
    if i < min || i > max {
        return Err(format!("{i} is out of the range of a {ty}"));
    }
    Ok(i)
}

/// The unscaled value of decimal text at `scale` (rounded half-up), within `precision` digits.
fn decimal(text: &str, precision: u8, scale: u8) -> Result<i128, String> {
    let bad = || format!("{text:?} is not a decimal");
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            &rest[..at],
            rest[at + 1..].parse::<i32>().map_err(|_| bad())?,
        ),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| b - b'0')
        .collect();
    // value = digits × 10^(exponent − len(fraction)); we want value × 10^scale.
    let shift = i64::from(exponent) - fraction.len() as i64 + i64::from(scale);
    let too_large = || format!("{text} does not fit in decimal({precision},{scale})");
    let mut unscaled: i128 = 0;
    let keep = if shift >= 0 {
        digits.len()
    } else {
        digits
            .len()
            .saturating_sub(usize::try_from(-shift).unwrap_or(usize::MAX))
    };
    for &d in &digits[..keep] {
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|u| u.checked_add(i128::from(d)))
            .ok_or_else(too_large)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            unscaled = unscaled.checked_mul(10).ok_or_else(too_large)?;
        }
    } else if keep < digits.len() && digits[keep] >= 5 {
        unscaled += 1; // half-up on the first dropped digit
    }
    let limit = 10_i128.pow(u32::from(precision));
    if unscaled >= limit {
        return Err(too_large());
    }
    Ok(if negative { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> HiveType {
        HiveType::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scalars_coerce_as_the_openx_serde_does() {
        let de = Deserializer::default();
        let ok = |ty: &str, v: Value| cell(&t(ty), &v, &de).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok("string", json!(12)), Cell::Str("12".into()));
        assert_eq!(ok("string", json!({"a":1})), Cell::Str("{\"a\":1}".into()));
        assert_eq!(ok("int", json!("42")), Cell::Int(42));
        assert_eq!(ok("tinyint", json!(-128)), Cell::Int(-128));
        assert_eq!(ok("double", json!("2.5")), Cell::Float(2.5));
        assert_eq!(ok("boolean", json!("TRUE")), Cell::Bool(true));
        assert_eq!(ok("bigint", Value::Null), Cell::Null);
        for (ty, v) in [
            ("tinyint", json!(128)),
            ("int", json!(1.5)),
            ("int", json!("x")),
            ("boolean", json!(1)),
            ("float", json!(1e300)),
            ("array<int>", json!({"a": 1})),
            ("struct<a:int>", json!([1])),
            ("map<int,int>", json!({"x": 1})),
        ] {
            assert!(cell(&t(ty), &v, &de).is_err(), "{ty} {v}");
        }
    }

    #[test]
    fn decimals_round_half_up_within_the_precision() {
        for (text, p, s, want) in [
            ("12.345", 5, 2, Ok(1235)),
            ("-12.344", 5, 2, Ok(-1234)),
            ("1e3", 6, 2, Ok(100_000)),
            ("1.5E-1", 3, 1, Ok(2)),
            ("0.001", 3, 2, Ok(0)),
            ("999.99", 5, 2, Ok(99_999)),
        ] {
            assert_eq!(decimal(text, p, s).map_err(|_| ()), want, "{text}");
        }
        for bad in ["1000", "x", "", ".", "1e", "1.2.3"] {
            assert!(decimal(bad, 5, 2).is_err(), "{bad}");
        }
        assert!(decimal("1e100", 38, 0).is_err());
    }

    #[test]
    fn nested_values_name_the_failing_path() {
        let de = Deserializer::default();
        let ty = t("struct<items:array<map<string,int>>>");
        let e = cell(&ty, &json!({"ITEMS": [{"a": 1}, {"b": "x"}]}), &de).err();
        assert_eq!(
            e.as_deref(),
            Some(".items: [1]: [\"b\"]: \"x\" is not a int")
        );
        let ok = cell(&ty, &json!({"Items": [{"a": 1}]}), &de);
        assert_eq!(
            ok,
            Ok(Cell::Struct(vec![Cell::List(vec![Cell::Map(vec![(
                Cell::Str("a".into()),
                Cell::Int(1)
            )])])]))
        );
    }
}
