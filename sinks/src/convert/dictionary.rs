//! Whether a column's dictionary encoding pays, judged on a file's first chunk.
//!
//! `EnableDictionaryCompression` asks for dictionary encoding, and Parquet writers give up on
//! it where it does not shrink a column: parquet-mr (Firehose's writer) keeps a column's
//! dictionary only while the dictionary plus the encoded indices are smaller than the plain
//! values, judged on the column's first page, and falls back to plain encoding otherwise. The
//! Rust writer falls back only when the dictionary outgrows its page limit (1 MiB), so a
//! column of unique values (a request id, a timestamp) is hashed value by value and written as
//! a dictionary as large as the values plus an index per row. [`dictionary_pays`] applies
//! parquet-mr's rule to the first chunk of a file instead, and `parquet_writer` turns the
//! dictionary off for the columns it rejects.
//!
//! ```text
//!  first chunk's arrays ──► dictionary_pays (per top-level column: distinct values, their
//!                             bytes, the index width) ──► the writer's per-column setting
//! ```

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::Array;
use arrow_schema::DataType;

/// Whether dictionary encoding of `array`'s values would take fewer bytes than plain encoding:
/// the distinct values (each with a 4-byte length for strings and binary) plus one index of
/// `ceil(log2(distinct))` bits per value, against the values themselves. Types the rule does
/// not measure (booleans, nested columns) are left to the writer: `true`.
pub fn dictionary_pays(array: &dyn Array) -> bool {
    match array.data_type() {
        DataType::Utf8 => bytes_pay(array.as_string::<i32>().iter().flatten().map(str::as_bytes)),
        DataType::Binary => bytes_pay(array.as_binary::<i32>().iter().flatten()),
        t if t.is_primitive() => {
            let Some(width) = t.primitive_width() else {
                return true;
            };
            let data = array.to_data();
            let Some(buffer) = data.buffers().first() else {
                return true;
            };
            let bytes = buffer.as_slice();
            let start = data.offset() * width;
            let values = (0..data.len())
                .filter(|&i| data.is_valid(i))
                .filter_map(|i| bytes.get(start + i * width..start + (i + 1) * width));
            fixed_pay(values, width)
        }
        _ => true,
    }
}

/// The rule for variable-length values: a plain value is its bytes and a 4-byte length.
fn bytes_pay<'a>(values: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut distinct = HashSet::new();
    let (mut count, mut plain, mut dictionary) = (0usize, 0usize, 0usize);
    for v in values {
        count += 1;
        plain += v.len() + 4;
        if distinct.insert(v) {
            dictionary += v.len() + 4;
        }
    }
    pays(count, distinct.len(), plain, dictionary)
}

/// The rule for fixed-width values of `width` bytes.
fn fixed_pay<'a>(values: impl Iterator<Item = &'a [u8]>, width: usize) -> bool {
    let mut distinct = HashSet::new();
    let mut count = 0usize;
    for v in values {
        count += 1;
        distinct.insert(v);
    }
    pays(count, distinct.len(), count * width, distinct.len() * width)
}

/// `count` values, `distinct` of them different: dictionary (`dictionary` bytes) plus indices
/// against `plain` bytes. No value at all: nothing to judge, the dictionary stays.
fn pays(count: usize, distinct: usize, plain: usize, dictionary: usize) -> bool {
    if count == 0 {
        return true;
    }
    debug_assert!(distinct <= count, "no more distinct values than values");
    let width = (usize::BITS - distinct.saturating_sub(1).leading_zeros()) as usize;
    let indices = (count * width).div_ceil(8);
    dictionary + indices < plain
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn repeated_strings_pay_and_unique_ones_do_not() {
        let agents: StringArray = (0..1000)
            .map(|i| Some(["Mozilla/5.0 (X11)", "okhttp/4.12.0"][i % 2]))
            .collect();
        assert!(dictionary_pays(&agents));
        let ids: StringArray = (0..1000)
            .map(|i| Some(format!("4f1c0000-0000-4000-a000-{i:012x}")))
            .collect();
        assert!(!dictionary_pays(&ids));
    }

    #[test]
    fn numbers_are_judged_by_their_width() {
        let status = Int64Array::from((0..1000).map(|i| [200, 404][i % 2]).collect::<Vec<_>>());
        assert!(dictionary_pays(&status));
        let latency = Float64Array::from((0..1000).map(|i| i as f64 / 7.0).collect::<Vec<_>>());
        assert!(!dictionary_pays(&latency));
    }

    #[test]
    fn nulls_are_not_values_and_a_slice_is_judged_alone() {
        // 1,900 unique ids, then 100 rows of one value: the whole does not pay (15,200 bytes of
        // dictionary and 2,750 of 11-bit indices against 16,000 plain), its tail's slice does.
        let values: Vec<i64> = (0..1900).chain(std::iter::repeat_n(7, 100)).collect();
        let array = Arc::new(Int64Array::from(values)) as Arc<dyn Array>;
        assert!(!dictionary_pays(array.as_ref()));
        assert!(dictionary_pays(array.slice(1900, 100).as_ref()));
        let nulls = Int64Array::from(vec![None::<i64>; 100]);
        assert!(dictionary_pays(&nulls));
        let mostly_null: StringArray = (0..1000)
            .map(|i| (i % 100 == 0).then(|| format!("unique {i}")))
            .collect();
        assert!(!dictionary_pays(&mostly_null));
    }
}
