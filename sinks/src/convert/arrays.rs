//! Columns of [`Cell`]s into Arrow arrays of their Hive type's Arrow type.
//!
//! Every cell was typed by [`super::cell::cell`] against the same [`HiveType`], so a cell of
//! another shape here is a bug: it is written as null and caught by a `debug_assert!`.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, ListArray, MapArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::ArrowError;

use super::cell::Cell;
use super::hive::{item_field, map_entries_field, struct_fields, HiveType};

/// The Arrow array of `cells`, all of type `ty`.
///
/// # Errors
/// An [`ArrowError`] from Arrow's own checks (offsets past `i32`, a decimal out of precision).
pub fn array(ty: &HiveType, cells: &[&Cell]) -> Result<ArrayRef, ArrowError> {
    fn int(c: &Cell) -> Option<i64> {
        match c {
            Cell::Int(i) => Some(*i),
            other => {
                debug_assert!(matches!(other, Cell::Null), "typed cell {other:?}");
                None
            }
        }
    }
    // Values were range-checked when typed: the narrowing casts cannot fail.
    fn narrow<T: TryFrom<i64>>(c: &&Cell) -> Option<T> {
        int(c).and_then(|i| i.try_into().ok())
    }
    Ok(match ty {
        HiveType::String => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        HiveType::Binary => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bytes(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        ),
        HiveType::TinyInt => Arc::new(cells.iter().map(narrow).collect::<Int8Array>()),
        HiveType::SmallInt => Arc::new(cells.iter().map(narrow).collect::<Int16Array>()),
        HiveType::Int => Arc::new(cells.iter().map(narrow).collect::<Int32Array>()),
        HiveType::Date => Arc::new(cells.iter().map(narrow).collect::<Date32Array>()),
        HiveType::BigInt => Arc::new(cells.iter().map(|c| int(c)).collect::<Int64Array>()),
        HiveType::Timestamp => Arc::new(
            cells
                .iter()
                .map(|c| int(c))
                .collect::<TimestampMicrosecondArray>(),
        ),
        HiveType::Float => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    // Range-checked when typed; rounding to f32 is the type's meaning.
                    #[allow(clippy::cast_possible_truncation)]
                    Cell::Float(f) => Some(*f as f32),
                    _ => None,
                })
                .collect::<Float32Array>(),
        ),
        HiveType::Double => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Float(f) => Some(*f),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        HiveType::Boolean => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        HiveType::Decimal { precision, scale } => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Decimal(d) => Some(*d),
                    _ => None,
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))?,
        ),
        HiveType::Array(item) => {
            let mut children: Vec<&Cell> = Vec::new();
            let mut lengths = Vec::with_capacity(cells.len());
            for c in cells {
                match c {
                    Cell::List(items) => {
                        children.extend(items.iter());
                        lengths.push(items.len());
                    }
                    _ => lengths.push(0),
                }
            }
            let values = array(item, &children)?;
            Arc::new(ListArray::try_new(
                Arc::new(item_field(item)),
                OffsetBuffer::from_lengths(lengths),
                values,
                nulls(cells, |c| matches!(c, Cell::List(_))),
            )?)
        }
        HiveType::Map(key, value) => {
            let mut keys: Vec<&Cell> = Vec::new();
            let mut values: Vec<&Cell> = Vec::new();
            let mut lengths = Vec::with_capacity(cells.len());
            for c in cells {
                match c {
                    Cell::Map(entries) => {
                        for (k, v) in entries {
                            keys.push(k);
                            values.push(v);
                        }
                        lengths.push(entries.len());
                    }
                    _ => lengths.push(0),
                }
            }
            let entries_field = map_entries_field(key, value);
            let arrow_schema::DataType::Struct(entry_fields) = entries_field.data_type() else {
                return Err(ArrowError::SchemaError("map entries not a struct".into()));
            };
            let entries = StructArray::try_new(
                entry_fields.clone(),
                vec![array(key, &keys)?, array(value, &values)?],
                None,
            )?;
            Arc::new(MapArray::try_new(
                entries_field,
                OffsetBuffer::from_lengths(lengths),
                entries,
                nulls(cells, |c| matches!(c, Cell::Map(_))),
                false,
            )?)
        }
        HiveType::Struct(fields) => {
            let null = Cell::Null;
            let mut columns = Vec::with_capacity(fields.len());
            for (i, (_, t)) in fields.iter().enumerate() {
                let column: Vec<&Cell> = cells
                    .iter()
                    .map(|c| match c {
                        Cell::Struct(values) => values.get(i).unwrap_or(&null),
                        _ => &null,
                    })
                    .collect();
                columns.push(array(t, &column)?);
            }
            Arc::new(StructArray::try_new(
                struct_fields(fields),
                columns,
                nulls(cells, |c| matches!(c, Cell::Struct(_))),
            )?)
        }
    })
}

/// The validity of a nested column: `valid` per cell; `None` when none is null.
fn nulls(cells: &[&Cell], valid: impl Fn(&Cell) -> bool) -> Option<NullBuffer> {
    let bits: Vec<bool> = cells.iter().map(|c| valid(c)).collect();
    if bits.iter().all(|b| *b) {
        None
    } else {
        Some(NullBuffer::from(bits))
    }
}
