//! Hive type strings, as a Glue table's `StorageDescriptor.Columns[].Type` holds them, parsed
//! into [`HiveType`] and mapped onto Arrow types.
//!
//! ```text
//! string | varchar(n) | char(n) | tinyint | smallint | int | integer | bigint | float | double
//! | boolean | binary | date | timestamp | decimal | decimal(p) | decimal(p,s)
//! | array<T> | map<K,V> | struct<name:T,...>
//! ```
//!
//! Names and keywords are case-insensitive (Hive lowercases them); struct field names are kept
//! lowercased, as Hive stores them. `decimal` alone is Hive's `decimal(10,0)`.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// Nesting deeper than this is refused (a schema is configuration, but a fuzzer or a typo must
/// not overflow the stack).
pub const MAX_DEPTH: usize = 32;

/// The largest decimal precision (Hive's and Arrow's Decimal128's).
pub const MAX_PRECISION: u8 = 38;

/// A Hive column type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HiveType {
    /// `string`, `varchar(n)`, `char(n)` (lengths are not enforced, as Hive's JSON SerDes do not).
    String,
    /// `tinyint`: 8-bit signed.
    TinyInt,
    /// `smallint`: 16-bit signed.
    SmallInt,
    /// `int` / `integer`: 32-bit signed.
    Int,
    /// `bigint`: 64-bit signed.
    BigInt,
    /// `float`: 32-bit IEEE.
    Float,
    /// `double`: 64-bit IEEE.
    Double,
    /// `boolean`.
    Boolean,
    /// `binary`: the JSON string's UTF-8 bytes.
    Binary,
    /// `date`: days since 1970-01-01.
    Date,
    /// `timestamp`: microseconds since the epoch, no zone (UTC, as Firehose writes it).
    Timestamp,
    /// `decimal(precision, scale)`.
    ///
    /// # Invariant
    /// `1 <= precision <= 38`, `scale <= precision`.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `array<T>`.
    Array(Box<HiveType>),
    /// `map<K,V>`: K a primitive type.
    Map(Box<HiveType>, Box<HiveType>),
    /// `struct<name:T,...>`: fields in order, names lowercased.
    Struct(Vec<(String, HiveType)>),
}

/// A type string that is not a Hive type hydrant can write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Hive type {text:?}: {reason}")]
pub struct HiveTypeError {
    /// The type string.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl HiveType {
    /// Parses a Hive type string.
    ///
    /// # Errors
    /// [`HiveTypeError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<HiveType, HiveTypeError> {
        let mut p = Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        let t = p.parse_type(0)?;
        p.skip_space();
        if p.at != p.bytes.len() {
            return Err(p.error("unexpected text after the type"));
        }
        Ok(t)
    }

    /// Whether the type is a primitive (allowed as a map key).
    pub fn is_primitive(&self) -> bool {
        !matches!(
            self,
            HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_)
        )
    }

    /// The Arrow type of a column of this Hive type.
    pub fn arrow_type(&self) -> DataType {
        match self {
            HiveType::String => DataType::Utf8,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Boolean => DataType::Boolean,
            HiveType::Binary => DataType::Binary,
            HiveType::Date => DataType::Date32,
            HiveType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            HiveType::Decimal { precision, scale } => {
                DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
            }
            HiveType::Array(item) => DataType::List(Arc::new(item_field(item))),
            HiveType::Map(key, value) => DataType::Map(map_entries_field(key, value), false),
            HiveType::Struct(fields) => DataType::Struct(struct_fields(fields)),
        }
    }
}

/// The element field of an `array<T>`'s Arrow list.
pub(crate) fn item_field(item: &HiveType) -> Field {
    Field::new("element", item.arrow_type(), true)
}

/// The `key_value` entries field of a `map<K,V>`'s Arrow map (keys never null).
pub(crate) fn map_entries_field(key: &HiveType, value: &HiveType) -> Arc<Field> {
    Arc::new(Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", key.arrow_type(), false),
            Field::new("value", value.arrow_type(), true),
        ])),
        false,
    ))
}

/// The Arrow fields of a `struct<...>`.
pub(crate) fn struct_fields(fields: &[(String, HiveType)]) -> Fields {
    fields
        .iter()
        .map(|(name, t)| Field::new(name, t.arrow_type(), true))
        .collect()
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::String => f.write_str("string"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Date => f.write_str("date"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::Array(t) => write!(f, "array<{t}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// A recursive-descent parser over the type string.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> HiveTypeError {
        HiveTypeError {
            text: self.text.to_string(),
            reason: format!("{reason} (at byte {})", self.at),
        }
    }

    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// An identifier: letters, digits, `_` (struct field names may be anything but `:`, `,`,
    /// `<`, `>`; Hive allows backquoted names, which Glue stores bare).
    fn word(&mut self, field_name: bool) -> &str {
        self.skip_space();
        let start = self.at;
        while let Some(&b) = self.bytes.get(self.at) {
            let ok = if field_name {
                !matches!(b, b':' | b',' | b'<' | b'>') && !b.is_ascii_whitespace()
            } else {
                b.is_ascii_alphanumeric() || b == b'_'
            };
            if !ok {
                break;
            }
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or("")
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.bytes.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), HiveTypeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", char::from(c))))
        }
    }

    fn number(&mut self) -> Result<u32, HiveTypeError> {
        self.skip_space();
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.text
            .get(start..self.at)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.error("expected a number"))
    }

    fn parse_type(&mut self, depth: usize) -> Result<HiveType, HiveTypeError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let word = self.word(false).to_ascii_lowercase();
        Ok(match word.as_str() {
            "string" => HiveType::String,
            "varchar" | "char" => {
                self.expect(b'(')?;
                self.number()?;
                self.expect(b')')?;
                HiveType::String
            }
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => HiveType::Double,
            "boolean" => HiveType::Boolean,
            "binary" => HiveType::Binary,
            "date" => HiveType::Date,
            "timestamp" => HiveType::Timestamp,
            "decimal" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat(b'(') {
                    precision = self.number()?;
                    scale = if self.eat(b',') { self.number()? } else { 0 };
                    self.expect(b')')?;
                }
                if precision == 0 || precision > u32::from(MAX_PRECISION) || scale > precision {
                    return Err(self.error(
                        "decimal precision must be 1 to 38 and scale at most the precision",
                    ));
                }
                HiveType::Decimal {
                    precision: u8::try_from(precision).unwrap_or(MAX_PRECISION),
                    scale: u8::try_from(scale).unwrap_or(MAX_PRECISION),
                }
            }
            "array" => {
                self.expect(b'<')?;
                let item = self.parse_type(depth + 1)?;
                self.expect(b'>')?;
                HiveType::Array(Box::new(item))
            }
            "map" => {
                self.expect(b'<')?;
                let key = self.parse_type(depth + 1)?;
                if !key.is_primitive() {
                    return Err(self.error("a map's key must be a primitive type"));
                }
                self.expect(b',')?;
                let value = self.parse_type(depth + 1)?;
                self.expect(b'>')?;
                HiveType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields: Vec<(String, HiveType)> = Vec::new();
                if !self.eat(b'>') {
                    loop {
                        let name = self.word(true).to_lowercase();
                        if name.is_empty() {
                            return Err(self.error("expected a field name"));
                        }
                        if fields.iter().any(|(n, _)| *n == name) {
                            return Err(self.error(&format!("field {name:?} given twice")));
                        }
                        self.expect(b':')?;
                        let t = self.parse_type(depth + 1)?;
                        fields.push((name, t));
                        if self.eat(b'>') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                if fields.is_empty() {
                    return Err(self.error("a struct needs at least one field"));
                }
                HiveType::Struct(fields)
            }
            "" => return Err(self.error("expected a type")),
            other => return Err(self.error(&format!("unknown type {other:?}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_and_prints_back() {
        for (text, printed) in [
            ("string", "string"),
            ("VARCHAR(20)", "string"),
            ("char(3)", "string"),
            ("tinyint", "tinyint"),
            ("smallint", "smallint"),
            ("integer", "int"),
            ("bigint", "bigint"),
            ("float", "float"),
            ("double", "double"),
            ("boolean", "boolean"),
            ("binary", "binary"),
            ("date", "date"),
            ("timestamp", "timestamp"),
            ("decimal", "decimal(10,0)"),
            ("decimal(5)", "decimal(5,0)"),
            ("decimal( 12 , 4 )", "decimal(12,4)"),
            ("array<int>", "array<int>"),
            ("map<string,array<double>>", "map<string,array<double>>"),
            (
                "struct<A:int, b:struct<c:timestamp>>",
                "struct<a:int,b:struct<c:timestamp>>",
            ),
        ] {
            let t = HiveType::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.to_string(), printed, "{text}");
            assert_eq!(HiveType::parse(printed).ok(), Some(t));
        }
    }

    #[test]
    fn bad_types_are_refused_with_the_reason() {
        for (text, reason) in [
            ("strin", "unknown type"),
            ("", "expected a type"),
            ("decimal(39,2)", "precision"),
            ("decimal(4,5)", "precision"),
            ("decimal(0)", "precision"),
            ("array<int", "expected '>'"),
            ("map<array<int>,int>", "primitive"),
            ("struct<>", "at least one field"),
            ("struct<a:int,a:int>", "given twice"),
            ("int int", "after the type"),
            ("uniontype<int,string>", "unknown type"),
        ] {
            let e = HiveType::parse(text).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(reason)),
                "{text}: {e:?}"
            );
        }
        let deep = format!("{}int{}", "array<".repeat(40), ">".repeat(40));
        assert!(HiveType::parse(&deep).is_err());
    }

    #[test]
    fn arrow_types_follow_the_hive_types() {
        let t = HiveType::parse("struct<a:decimal(9,2),b:map<string,bigint>>")
            .unwrap_or_else(|e| panic!("{e}"));
        let DataType::Struct(fields) = t.arrow_type() else {
            panic!("not a struct");
        };
        assert_eq!(fields[0].data_type(), &DataType::Decimal128(9, 2));
        assert!(matches!(fields[1].data_type(), DataType::Map(..)));
    }
}
