//! Column builders: typed values appended straight into one growing buffer per column, turned
//! into Arrow arrays a chunk at a time.
//!
//! ```text
//!  direct::append_record ──► Columns::push_str / push_cell / push_null   (one value per column
//!                              │                                           per row)
//!                              │  a record that fails: Columns::truncate(mark) drops its rows
//!                              ▼
//!                            Columns::finish ──► Vec<ArrayRef> (schema order) ──► the file writer
//! ```
//!
//! Strings are copied once, from the record's text into the column's byte buffer (no `String`
//! per value); scalars live in plain vectors; nested types (`array`, `map`, `struct`) keep their
//! [`Cell`]s and go through [`super::arrays::array`].
//!
//! # Invariant
//! Between records every builder holds the same number of values, [`Columns::rows`]; a record
//! appends one value to every column per row it makes, or [`Columns::truncate`] takes it back.

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType,
};
use arrow_array::{ArrayRef, BinaryArray, BooleanArray, PrimitiveArray, StringArray};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

use super::arrays;
use super::cell::{float_in_range, integer_range, Cell};
use super::hive::HiveType;
use super::Column;

/// One column's values so far.
#[derive(Debug)]
enum Builder {
    /// `string` (`utf8`) and `binary`: the values' bytes end to end, and where each ends.
    Bytes {
        utf8: bool,
        ends: Vec<usize>,
        data: Vec<u8>,
        valid: Vec<bool>,
    },
    /// Integers, dates (days) and timestamps (microseconds), range-checked when typed.
    Int { values: Vec<i64>, valid: Vec<bool> },
    /// `float` and `double`.
    Float { values: Vec<f64>, valid: Vec<bool> },
    /// `boolean`.
    Bool { values: Vec<bool>, valid: Vec<bool> },
    /// `decimal(p,s)`: unscaled values.
    Decimal { values: Vec<i128>, valid: Vec<bool> },
    /// `array`, `map`, `struct`: their cells.
    Nested { cells: Vec<Cell> },
}

impl Builder {
    fn new(ty: &HiveType) -> Builder {
        match ty {
            HiveType::String | HiveType::Binary => Builder::Bytes {
                utf8: *ty == HiveType::String,
                ends: Vec::new(),
                data: Vec::new(),
                valid: Vec::new(),
            },
            HiveType::TinyInt
            | HiveType::SmallInt
            | HiveType::Int
            | HiveType::BigInt
            | HiveType::Date
            | HiveType::Timestamp => Builder::Int {
                values: Vec::new(),
                valid: Vec::new(),
            },
            HiveType::Float | HiveType::Double => Builder::Float {
                values: Vec::new(),
                valid: Vec::new(),
            },
            HiveType::Boolean => Builder::Bool {
                values: Vec::new(),
                valid: Vec::new(),
            },
            HiveType::Decimal { .. } => Builder::Decimal {
                values: Vec::new(),
                valid: Vec::new(),
            },
            HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_) => {
                Builder::Nested { cells: Vec::new() }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Bytes { valid, .. }
            | Builder::Int { valid, .. }
            | Builder::Float { valid, .. }
            | Builder::Bool { valid, .. }
            | Builder::Decimal { valid, .. } => valid.len(),
            Builder::Nested { cells } => cells.len(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Builder::Bytes {
                ends, data, valid, ..
            } => {
                ends.truncate(len);
                valid.truncate(len);
                data.truncate(ends.last().copied().unwrap_or(0));
            }
            Builder::Int { values, valid } => {
                values.truncate(len);
                valid.truncate(len);
            }
            Builder::Float { values, valid } => {
                values.truncate(len);
                valid.truncate(len);
            }
            Builder::Bool { values, valid } => {
                values.truncate(len);
                valid.truncate(len);
            }
            Builder::Decimal { values, valid } => {
                values.truncate(len);
                valid.truncate(len);
            }
            Builder::Nested { cells } => cells.truncate(len),
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> bool {
        match self {
            Builder::Bytes {
                ends, data, valid, ..
            } => {
                data.extend_from_slice(bytes);
                ends.push(data.len());
                valid.push(true);
                true
            }
            _ => false,
        }
    }

    fn push_null(&mut self) {
        match self {
            Builder::Bytes {
                ends, data, valid, ..
            } => {
                ends.push(data.len());
                valid.push(false);
            }
            Builder::Int { values, valid } => {
                values.push(0);
                valid.push(false);
            }
            Builder::Float { values, valid } => {
                values.push(0.0);
                valid.push(false);
            }
            Builder::Bool { values, valid } => {
                values.push(false);
                valid.push(false);
            }
            Builder::Decimal { values, valid } => {
                values.push(0);
                valid.push(false);
            }
            Builder::Nested { cells } => cells.push(Cell::Null),
        }
    }

    /// Appends `cell` when it is a value of this column's type; false (nothing appended) for a
    /// null, or for a cell of another shape, which is a bug (caught by a `debug_assert!`; the
    /// caller writes a null, as [`arrays::array`] does).
    fn push_cell(&mut self, cell: Cell) -> bool {
        match (&mut *self, cell) {
            (Builder::Nested { cells }, cell) => cells.push(cell),
            (_, Cell::Null) => return false,
            (b @ Builder::Bytes { utf8: true, .. }, Cell::Str(s)) => {
                return b.push_bytes(s.as_bytes())
            }
            (b @ Builder::Bytes { utf8: false, .. }, Cell::Bytes(v)) => return b.push_bytes(&v),
            (Builder::Int { values, valid }, Cell::Int(i)) => {
                values.push(i);
                valid.push(true);
            }
            (Builder::Float { values, valid }, Cell::Float(f)) => {
                values.push(f);
                valid.push(true);
            }
            (Builder::Bool { values, valid }, Cell::Bool(b)) => {
                values.push(b);
                valid.push(true);
            }
            (Builder::Decimal { values, valid }, Cell::Decimal(d)) => {
                values.push(d);
                valid.push(true);
            }
            (_, other) => {
                debug_assert!(false, "cell {other:?} in a column of another type");
                return false;
            }
        }
        true
    }

    fn finish(&mut self, ty: &HiveType) -> Result<ArrayRef, ArrowError> {
        fn nulls(valid: &mut Vec<bool>) -> Option<NullBuffer> {
            let v = std::mem::take(valid);
            if v.iter().all(|b| *b) {
                None
            } else {
                Some(NullBuffer::from(v))
            }
        }
        fn narrow<T: TryFrom<i64> + Default>(values: &[i64]) -> Vec<T> {
            // Values were range-checked when typed (nulls are 0): the casts cannot fail.
            values
                .iter()
                .map(|v| T::try_from(*v).unwrap_or_default())
                .collect()
        }
        Ok(match self {
            Builder::Bytes {
                utf8,
                ends,
                data,
                valid,
            } => {
                let mut offsets = Vec::with_capacity(ends.len() + 1);
                offsets.push(0_i32);
                for end in ends.drain(..) {
                    offsets.push(i32::try_from(end).map_err(|_| {
                        ArrowError::ComputeError("a string column chunk past 2 GiB".into())
                    })?);
                }
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                let values = Buffer::from_vec(std::mem::take(data));
                let nulls = nulls(valid);
                if *utf8 {
                    Arc::new(StringArray::try_new(offsets, values, nulls)?)
                } else {
                    Arc::new(BinaryArray::try_new(offsets, values, nulls)?)
                }
            }
            Builder::Int { values, valid } => {
                let nulls = nulls(valid);
                let values = std::mem::take(values);
                match ty {
                    HiveType::TinyInt => Arc::new(PrimitiveArray::<Int8Type>::try_new(
                        narrow(&values).into(),
                        nulls,
                    )?),
                    HiveType::SmallInt => Arc::new(PrimitiveArray::<Int16Type>::try_new(
                        narrow(&values).into(),
                        nulls,
                    )?),
                    HiveType::Int => Arc::new(PrimitiveArray::<Int32Type>::try_new(
                        narrow(&values).into(),
                        nulls,
                    )?),
                    HiveType::Date => Arc::new(PrimitiveArray::<Date32Type>::try_new(
                        narrow(&values).into(),
                        nulls,
                    )?),
                    HiveType::Timestamp => Arc::new(
                        PrimitiveArray::<TimestampMicrosecondType>::try_new(values.into(), nulls)?,
                    ),
                    _ => Arc::new(PrimitiveArray::<Int64Type>::try_new(values.into(), nulls)?),
                }
            }
            Builder::Float { values, valid } => {
                let nulls = nulls(valid);
                let values = std::mem::take(values);
                if *ty == HiveType::Float {
                    // Range-checked when typed; rounding to f32 is the type's meaning.
                    #[allow(clippy::cast_possible_truncation)]
                    let narrow: Vec<f32> = values.iter().map(|f| *f as f32).collect();
                    Arc::new(PrimitiveArray::<Float32Type>::try_new(
                        narrow.into(),
                        nulls,
                    )?)
                } else {
                    Arc::new(PrimitiveArray::<Float64Type>::try_new(
                        values.into(),
                        nulls,
                    )?)
                }
            }
            Builder::Bool { values, valid } => {
                let nulls = nulls(valid);
                Arc::new(BooleanArray::new(
                    std::mem::take(values).into_iter().collect(),
                    nulls,
                ))
            }
            Builder::Decimal { values, valid } => {
                let nulls = nulls(valid);
                let HiveType::Decimal { precision, scale } = ty else {
                    return Err(ArrowError::SchemaError(
                        "decimal builder of another type".into(),
                    ));
                };
                Arc::new(
                    PrimitiveArray::<Decimal128Type>::try_new(
                        std::mem::take(values).into(),
                        nulls,
                    )?
                    .with_precision_and_scale(
                        *precision,
                        i8::try_from(*scale).unwrap_or(i8::MAX),
                    )?,
                )
            }
            Builder::Nested { cells } => {
                let taken = std::mem::take(cells);
                let refs: Vec<&Cell> = taken.iter().collect();
                arrays::array(ty, &refs)?
            }
        })
    }

    /// Bytes held (what a chunk is cut by, beside its rows).
    fn bytes(&self) -> usize {
        match self {
            Builder::Bytes { data, ends, .. } => data.len() + ends.len() * 9,
            Builder::Int { values, .. } => values.len() * 9,
            Builder::Float { values, .. } => values.len() * 9,
            Builder::Bool { values, .. } => values.len() * 2,
            Builder::Decimal { values, .. } => values.len() * 17,
            Builder::Nested { cells } => cells.len() * std::mem::size_of::<Cell>(),
        }
    }
}

/// Where a record's values begin in every column: [`Columns::truncate`] takes a record back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(usize);

/// The builders of one table's columns.
#[derive(Debug)]
pub struct Columns {
    types: Vec<HiveType>,
    builders: Vec<Builder>,
    rows: usize,
}

impl Columns {
    /// Empty builders for `columns`.
    pub fn new(columns: &[Column]) -> Columns {
        Columns {
            types: columns.iter().map(|(_, t)| t.clone()).collect(),
            builders: columns.iter().map(|(_, t)| Builder::new(t)).collect(),
            rows: 0,
        }
    }

    /// The column types, in the table's order.
    pub fn types(&self) -> &[HiveType] {
        &self.types
    }

    /// Complete rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held, roughly (a chunk is cut when it passes a bound).
    pub fn bytes(&self) -> usize {
        self.builders.iter().map(Builder::bytes).sum()
    }

    /// Where the next record begins.
    pub fn mark(&self) -> Mark {
        self.debug_check();
        Mark(self.rows)
    }

    /// Drops every value appended since `mark` (a record that failed part way).
    pub fn truncate(&mut self, mark: Mark) {
        for b in &mut self.builders {
            b.truncate(mark.0);
        }
        self.rows = mark.0;
        self.debug_check();
    }

    /// The value count of `column` (during a row: one more once it has its value).
    pub fn len(&self, column: usize) -> usize {
        self.builders[column].len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a string to a `string` column (false, appending nothing, for a column of
    /// another type: the caller types the value as a [`Cell`] instead).
    pub fn push_str(&mut self, column: usize, s: &str) -> bool {
        matches!(self.types[column], HiveType::String)
            && self.builders[column].push_bytes(s.as_bytes())
    }

    /// Appends a JSON integer as [`cell`](super::cell::cell) types it, when that is plain: to
    /// an integer column whose range holds it, or to a `float` or `double` column (as `f64`).
    /// False, appending nothing, otherwise (the caller types the value as a [`Cell`]).
    pub fn push_integer(&mut self, column: usize, i: i64) -> bool {
        let ty = &self.types[column];
        if matches!(ty, HiveType::Float | HiveType::Double) {
            // Every i64 is within f32's range: no range check to fail.
            #[allow(clippy::cast_precision_loss)]
            return self.push_float(column, i as f64);
        }
        integer_range(ty).is_some_and(|(min, max)| (min..=max).contains(&i))
            && self.builders[column].push_cell(Cell::Int(i))
    }

    /// Appends a finite JSON number to a `double` column, or to a `float` column whose range
    /// holds it, as [`cell`](super::cell::cell) types it. False, appending nothing, otherwise.
    pub fn push_float(&mut self, column: usize, f: f64) -> bool {
        let ty = &self.types[column];
        matches!(ty, HiveType::Float | HiveType::Double)
            && f.is_finite()
            && float_in_range(ty, f)
            && self.builders[column].push_cell(Cell::Float(f))
    }

    /// Appends a timestamp (microseconds) to a `timestamp` column. False, appending nothing,
    /// for a column of another type.
    pub fn push_timestamp(&mut self, column: usize, micros: i64) -> bool {
        matches!(self.types[column], HiveType::Timestamp)
            && self.builders[column].push_cell(Cell::Int(micros))
    }

    /// Appends a typed cell to `column`.
    pub fn push_cell(&mut self, column: usize, cell: Cell) {
        let builder = &mut self.builders[column];
        if !builder.push_cell(cell) {
            builder.push_null();
        }
    }

    /// Appends a null to `column`.
    pub fn push_null(&mut self, column: usize) {
        self.builders[column].push_null();
    }

    /// Takes back the last value of `column` (a repeated key: the later one wins).
    pub fn pop(&mut self, column: usize) {
        let b = &mut self.builders[column];
        let len = b.len();
        debug_assert!(len > self.rows, "only a value of the row being built");
        b.truncate(len.saturating_sub(1));
    }

    /// Ends a row: every column must hold its value.
    pub fn end_row(&mut self) {
        self.rows += 1;
        self.debug_check();
    }

    /// The rows held as Arrow arrays, in the table's order; the builders are left empty.
    ///
    /// # Errors
    /// Arrow's own checks (a decimal out of precision, a string chunk past 2 GiB).
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        self.debug_check();
        let arrays = self
            .builders
            .iter_mut()
            .zip(&self.types)
            .map(|(b, t)| b.finish(t))
            .collect::<Result<Vec<_>, _>>();
        for b in &mut self.builders {
            b.truncate(0);
        }
        self.rows = 0;
        arrays
    }

    fn debug_check(&self) {
        debug_assert!(
            self.builders.iter().all(|b| b.len() == self.rows),
            "every column holds one value per row"
        );
    }
}
