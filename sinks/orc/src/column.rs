//! One ORC column's writer: the streams of its values in the current stripe, and its children.
//!
//! | Arrow type | ORC type | streams (all DIRECT, RLE version 1) |
//! |---|---|---|
//! | Boolean | BOOLEAN | DATA: boolean bits |
//! | Int8 | BYTE | DATA: byte RLE |
//! | Int16, Int32, Int64 | SHORT, INT, LONG | DATA: signed integer RLE |
//! | Float32, Float64 | FLOAT, DOUBLE | DATA: IEEE 754 little-endian |
//! | Utf8 | STRING | DICTIONARY or DIRECT per stripe, by the dictionary threshold ([`crate::dictionary`]) |
//! | Binary (and Utf8 with threshold 0) | BINARY (STRING) | DATA: the bytes; LENGTH: unsigned integer RLE |
//! | Timestamp(any unit, no zone) | TIMESTAMP | DATA: signed seconds since 2015-01-01 00:00:00 UTC; SECONDARY: nanoseconds, unsigned, trailing decimal zeros folded into the low 3 bits |
//! | Date32 | DATE | DATA: signed days since 1970-01-01 |
//! | Decimal128(p, s) | DECIMAL(p, s) | DATA: unbounded zigzag varints of the unscaled value; SECONDARY: signed RLE of the scale |
//! | List | LIST | LENGTH: unsigned RLE; one child column |
//! | Map | MAP | LENGTH: unsigned RLE; key and value child columns |
//! | Struct | STRUCT | one child column per field |
//!
//! Every column has a PRESENT stream (boolean, 1 = value present) in a stripe where one of its
//! values is null; non-null values alone go to the other streams. A child column holds values
//! only under present parents: the rows of a null struct, and the entries of a null list or
//! map, are not written.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, OffsetSizeTrait};
use arrow_schema::{DataType, TimeUnit};

use crate::dictionary::Dictionary;
use crate::proto::{self, kind, stream_kind};
use crate::rle::{write_svarint128, BoolRle, ByteRle, IntRle};
use crate::OrcError;

/// Seconds from 1970-01-01 to 2015-01-01 00:00:00 UTC, the base of TIMESTAMP's DATA stream.
pub const TIMESTAMP_BASE_SECONDS: i64 = 1_420_070_400;

/// Rows of an array a column writes: half-open index ranges, in order.
pub type Ranges = Vec<(usize, usize)>;

/// A stream of a finished stripe: its kind, column and (uncompressed) bytes.
#[derive(Debug)]
pub struct StreamBytes {
    /// `Stream.Kind`.
    pub kind: i32,
    /// The column id.
    pub column: u32,
    /// The encoded stream.
    pub bytes: Vec<u8>,
}

/// Counts of one column, for a stripe or the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Non-null values.
    pub values: u64,
    /// Whether a null was written.
    pub has_null: bool,
}

impl Counts {
    /// The statistics message.
    pub fn statistics(self) -> proto::ColumnStatistics {
        proto::ColumnStatistics {
            number_of_values: Some(self.values),
            has_null: Some(self.has_null),
        }
    }

    fn add(&mut self, other: Counts) {
        self.values += other.values;
        self.has_null |= other.has_null;
    }
}

#[derive(Debug)]
enum Body {
    Boolean(BoolRle),
    Byte(ByteRle),
    /// SHORT, INT, LONG, DATE.
    Int(IntRle),
    Float(Vec<u8>),
    Double(Vec<u8>),
    /// STRING with a dictionary threshold above 0.
    Dictionary(Dictionary),
    /// STRING, BINARY.
    Bytes {
        data: Vec<u8>,
        lengths: IntRle,
    },
    Timestamp {
        unit: TimeUnit,
        seconds: IntRle,
        nanos: IntRle,
    },
    Decimal {
        data: Vec<u8>,
        scales: IntRle,
        scale: i64,
    },
    List {
        lengths: IntRle,
        child: Box<ColumnWriter>,
    },
    Map {
        lengths: IntRle,
        key: Box<ColumnWriter>,
        value: Box<ColumnWriter>,
    },
    Struct(Vec<ColumnWriter>),
}

/// The writer of one column and its children.
#[derive(Debug)]
pub struct ColumnWriter {
    id: u32,
    /// The Arrow type it was made for (checked against every array).
    data_type: DataType,
    /// The column's name, for errors.
    name: String,
    present: BoolRle,
    stripe: Counts,
    file: Counts,
    body: Body,
}

impl ColumnWriter {
    /// The writer of a column `name` of `data_type`, its id taken from `next_id` (children
    /// numbered after it, depth first, as ORC numbers its type tree); its `Type` and its
    /// children's are appended to `types`. STRING columns use a dictionary in a stripe where
    /// distinct values are at most `dictionary_threshold` of the values (0: never).
    ///
    /// # Errors
    /// [`OrcError::UnsupportedType`].
    pub fn new(
        name: &str,
        data_type: &DataType,
        next_id: &mut u32,
        types: &mut Vec<proto::Type>,
        dictionary_threshold: f64,
    ) -> Result<ColumnWriter, OrcError> {
        let id = *next_id;
        *next_id += 1;
        let at = types.len();
        let simple = |k: i32| proto::Type {
            kind: Some(k),
            ..Default::default()
        };
        types.push(simple(kind::STRUCT));
        let unsupported = || OrcError::UnsupportedType {
            column: name.to_string(),
            data_type: data_type.clone(),
        };
        let (t, body) = match data_type {
            DataType::Boolean => (simple(kind::BOOLEAN), Body::Boolean(BoolRle::default())),
            DataType::Int8 => (simple(kind::BYTE), Body::Byte(ByteRle::default())),
            DataType::Int16 => (simple(kind::SHORT), Body::Int(IntRle::new(true))),
            DataType::Int32 => (simple(kind::INT), Body::Int(IntRle::new(true))),
            DataType::Int64 => (simple(kind::LONG), Body::Int(IntRle::new(true))),
            DataType::Date32 => (simple(kind::DATE), Body::Int(IntRle::new(true))),
            DataType::Float32 => (simple(kind::FLOAT), Body::Float(Vec::new())),
            DataType::Float64 => (simple(kind::DOUBLE), Body::Double(Vec::new())),
            DataType::Utf8 if dictionary_threshold > 0.0 => (
                simple(kind::STRING),
                Body::Dictionary(Dictionary::new(dictionary_threshold)),
            ),
            DataType::Utf8 | DataType::Binary => (
                simple(if *data_type == DataType::Utf8 {
                    kind::STRING
                } else {
                    kind::BINARY
                }),
                Body::Bytes {
                    data: Vec::new(),
                    lengths: IntRle::new(false),
                },
            ),
            DataType::Timestamp(unit, None) => (
                simple(kind::TIMESTAMP),
                Body::Timestamp {
                    unit: *unit,
                    seconds: IntRle::new(true),
                    nanos: IntRle::new(false),
                },
            ),
            DataType::Decimal128(precision, scale) => {
                if *scale < 0 || i16::from(*scale) > i16::from(*precision) {
                    return Err(unsupported());
                }
                (
                    proto::Type {
                        kind: Some(kind::DECIMAL),
                        precision: Some(u32::from(*precision)),
                        scale: Some(*scale as u32),
                        ..Default::default()
                    },
                    Body::Decimal {
                        data: Vec::new(),
                        scales: IntRle::new(true),
                        scale: i64::from(*scale),
                    },
                )
            }
            DataType::List(item) => {
                let child = ColumnWriter::new(
                    item.name(),
                    item.data_type(),
                    next_id,
                    types,
                    dictionary_threshold,
                )?;
                (
                    proto::Type {
                        kind: Some(kind::LIST),
                        subtypes: vec![child.id],
                        ..Default::default()
                    },
                    Body::List {
                        lengths: IntRle::new(false),
                        child: Box::new(child),
                    },
                )
            }
            DataType::Map(entries, _) => {
                let DataType::Struct(fields) = entries.data_type() else {
                    return Err(unsupported());
                };
                if fields.len() != 2 {
                    return Err(unsupported());
                }
                let key = ColumnWriter::new(
                    fields[0].name(),
                    fields[0].data_type(),
                    next_id,
                    types,
                    dictionary_threshold,
                )?;
                let value = ColumnWriter::new(
                    fields[1].name(),
                    fields[1].data_type(),
                    next_id,
                    types,
                    dictionary_threshold,
                )?;
                (
                    proto::Type {
                        kind: Some(kind::MAP),
                        subtypes: vec![key.id, value.id],
                        ..Default::default()
                    },
                    Body::Map {
                        lengths: IntRle::new(false),
                        key: Box::new(key),
                        value: Box::new(value),
                    },
                )
            }
            DataType::Struct(fields) => {
                let mut children = Vec::with_capacity(fields.len());
                for f in fields {
                    children.push(ColumnWriter::new(
                        f.name(),
                        f.data_type(),
                        next_id,
                        types,
                        dictionary_threshold,
                    )?);
                }
                (
                    proto::Type {
                        kind: Some(kind::STRUCT),
                        subtypes: children.iter().map(|c| c.id).collect(),
                        field_names: fields.iter().map(|f| f.name().clone()).collect(),
                        ..Default::default()
                    },
                    Body::Struct(children),
                )
            }
            _ => return Err(unsupported()),
        };
        types[at] = t;
        Ok(ColumnWriter {
            id,
            data_type: data_type.clone(),
            name: name.to_string(),
            present: BoolRle::default(),
            stripe: Counts::default(),
            file: Counts::default(),
            body,
        })
    }

    /// Writes the rows `ranges` of `array`.
    ///
    /// # Errors
    /// [`OrcError::TypeMismatch`]: the array is not of the column's type.
    pub fn write(&mut self, array: &dyn Array, ranges: &[(usize, usize)]) -> Result<(), OrcError> {
        if array.data_type() != &self.data_type {
            return Err(OrcError::TypeMismatch {
                column: self.name.clone(),
                expected: self.data_type.clone(),
                given: array.data_type().clone(),
            });
        }
        // The rows with a value, as ranges; the PRESENT bits of all.
        let mut valid: Ranges = Vec::with_capacity(ranges.len());
        let nulls = array.logical_nulls();
        for &(start, end) in ranges {
            debug_assert!(start <= end && end <= array.len(), "range {start}..{end}");
            match &nulls {
                None => {
                    (start..end).for_each(|_| self.present.write(true));
                    self.stripe.values += (end - start) as u64;
                    push_range(&mut valid, start, end);
                }
                Some(n) => {
                    for i in start..end {
                        let ok = n.is_valid(i);
                        self.present.write(ok);
                        if ok {
                            self.stripe.values += 1;
                            push_range(&mut valid, i, i + 1);
                        } else {
                            self.stripe.has_null = true;
                        }
                    }
                }
            }
        }
        let rows = || valid.iter().flat_map(|&(s, e)| s..e);
        match &mut self.body {
            Body::Boolean(data) => {
                let a = array.as_boolean();
                rows().for_each(|i| data.write(a.value(i)));
            }
            Body::Byte(data) => {
                let a = array.as_primitive::<Int8Type>();
                rows().for_each(|i| data.write(a.value(i) as u8));
            }
            Body::Int(data) => match array.data_type() {
                DataType::Int16 => {
                    let a = array.as_primitive::<Int16Type>();
                    rows().for_each(|i| data.write(i64::from(a.value(i))));
                }
                DataType::Int32 => {
                    let a = array.as_primitive::<Int32Type>();
                    rows().for_each(|i| data.write(i64::from(a.value(i))));
                }
                DataType::Date32 => {
                    let a = array.as_primitive::<Date32Type>();
                    rows().for_each(|i| data.write(i64::from(a.value(i))));
                }
                _ => {
                    let a = array.as_primitive::<Int64Type>();
                    rows().for_each(|i| data.write(a.value(i)));
                }
            },
            Body::Float(data) => {
                let a = array.as_primitive::<Float32Type>();
                rows().for_each(|i| data.extend_from_slice(&a.value(i).to_le_bytes()));
            }
            Body::Double(data) => {
                let a = array.as_primitive::<Float64Type>();
                rows().for_each(|i| data.extend_from_slice(&a.value(i).to_le_bytes()));
            }
            Body::Dictionary(d) => {
                let a = array.as_string::<i32>();
                rows().for_each(|i| d.write(a.value(i).as_bytes()));
            }
            Body::Bytes { data, lengths } => {
                let mut put = |v: &[u8]| {
                    data.extend_from_slice(v);
                    lengths.write(v.len() as i64);
                };
                if let Some(a) = array.as_string_opt::<i32>() {
                    rows().for_each(|i| put(a.value(i).as_bytes()));
                } else {
                    let a = array.as_binary::<i32>();
                    rows().for_each(|i| put(a.value(i)));
                }
            }
            Body::Timestamp {
                unit,
                seconds,
                nanos,
            } => {
                let (values, per_second): (Vec<i64>, i64) = match unit {
                    TimeUnit::Second => (
                        rows()
                            .map(|i| array.as_primitive::<TimestampSecondType>().value(i))
                            .collect(),
                        1,
                    ),
                    TimeUnit::Millisecond => (
                        rows()
                            .map(|i| array.as_primitive::<TimestampMillisecondType>().value(i))
                            .collect(),
                        1_000,
                    ),
                    TimeUnit::Microsecond => (
                        rows()
                            .map(|i| array.as_primitive::<TimestampMicrosecondType>().value(i))
                            .collect(),
                        1_000_000,
                    ),
                    TimeUnit::Nanosecond => (
                        rows()
                            .map(|i| array.as_primitive::<TimestampNanosecondType>().value(i))
                            .collect(),
                        1_000_000_000,
                    ),
                };
                for v in values {
                    let (s, n) = timestamp_parts(v, per_second);
                    seconds.write(s);
                    nanos.write(n);
                }
            }
            Body::Decimal {
                data,
                scales,
                scale,
            } => {
                let a = array.as_primitive::<Decimal128Type>();
                for i in rows() {
                    write_svarint128(data, a.value(i));
                    scales.write(*scale);
                }
            }
            Body::List { lengths, child } => {
                let a = array.as_list::<i32>();
                let children = child_ranges(a.value_offsets(), &valid, lengths);
                child.write(a.values().as_ref(), &children)?;
            }
            Body::Map {
                lengths,
                key,
                value,
            } => {
                let a = array.as_map();
                let children = child_ranges(a.value_offsets(), &valid, lengths);
                key.write(a.keys().as_ref(), &children)?;
                value.write(a.values().as_ref(), &children)?;
            }
            Body::Struct(children) => {
                let a = array.as_struct();
                for (child, column) in children.iter_mut().zip(a.columns()) {
                    child.write(column.as_ref(), &valid)?;
                }
            }
        }
        Ok(())
    }

    /// Bytes buffered in this stripe by this column and its children (an estimate of the
    /// stripe's encoded size before compression).
    pub fn buffered(&self) -> usize {
        let own = match &self.body {
            Body::Boolean(d) => d.len(),
            Body::Byte(d) => d.len(),
            Body::Int(d) => d.len(),
            Body::Float(d) | Body::Double(d) => d.len(),
            Body::Dictionary(d) => d.len(),
            Body::Bytes { data, lengths } => data.len() + lengths.len(),
            Body::Timestamp { seconds, nanos, .. } => seconds.len() + nanos.len(),
            Body::Decimal { data, scales, .. } => data.len() + scales.len(),
            Body::List { lengths, child } => lengths.len() + child.buffered(),
            Body::Map {
                lengths,
                key,
                value,
            } => lengths.len() + key.buffered() + value.buffered(),
            Body::Struct(children) => children.iter().map(ColumnWriter::buffered).sum(),
        };
        let present = if self.stripe.has_null {
            self.present.len()
        } else {
            0
        };
        own + present
    }

    /// Ends the stripe: this column's and its children's streams are appended to `streams`,
    /// their counts to `counts` and their encodings to `encodings` (by column id, depth
    /// first); the writer starts the next stripe.
    pub fn finish_stripe(
        &mut self,
        streams: &mut Vec<StreamBytes>,
        counts: &mut Vec<Counts>,
        encodings: &mut Vec<proto::ColumnEncoding>,
    ) {
        let column = self.id;
        debug_assert_eq!(
            counts.len(),
            column as usize,
            "columns are numbered depth first"
        );
        let mut put = |kind: i32, bytes: Vec<u8>| {
            if !bytes.is_empty() {
                streams.push(StreamBytes {
                    kind,
                    column,
                    bytes,
                });
            }
        };
        let present = self.present.take();
        if self.stripe.has_null {
            put(stream_kind::PRESENT, present);
        }
        let mut children: Vec<&mut ColumnWriter> = Vec::new();
        let mut encoding = proto::ColumnEncoding {
            kind: Some(proto::ENCODING_DIRECT),
            dictionary_size: None,
        };
        match &mut self.body {
            Body::Dictionary(d) => {
                let (e, encoded) = d.finish();
                encoding = e;
                for (kind, bytes) in encoded {
                    put(kind, bytes);
                }
            }
            Body::Boolean(d) => put(stream_kind::DATA, d.take()),
            Body::Byte(d) => put(stream_kind::DATA, d.take()),
            Body::Int(d) => put(stream_kind::DATA, d.take()),
            Body::Float(d) | Body::Double(d) => put(stream_kind::DATA, std::mem::take(d)),
            Body::Bytes { data, lengths } => {
                put(stream_kind::DATA, std::mem::take(data));
                put(stream_kind::LENGTH, lengths.take());
            }
            Body::Timestamp { seconds, nanos, .. } => {
                put(stream_kind::DATA, seconds.take());
                put(stream_kind::SECONDARY, nanos.take());
            }
            Body::Decimal { data, scales, .. } => {
                put(stream_kind::DATA, std::mem::take(data));
                put(stream_kind::SECONDARY, scales.take());
            }
            Body::List { lengths, child } => {
                put(stream_kind::LENGTH, lengths.take());
                children.push(child);
            }
            Body::Map {
                lengths,
                key,
                value,
            } => {
                put(stream_kind::LENGTH, lengths.take());
                children.push(key);
                children.push(value);
            }
            Body::Struct(c) => children.extend(c.iter_mut()),
        }
        counts.push(self.stripe);
        encodings.push(encoding);
        self.file.add(self.stripe);
        self.stripe = Counts::default();
        for child in children {
            child.finish_stripe(streams, counts, encodings);
        }
    }

    /// The file's counts of this column and its children (by column id, depth first).
    pub fn file_counts(&self, counts: &mut Vec<Counts>) {
        counts.push(self.file);
        match &self.body {
            Body::List { child, .. } => child.file_counts(counts),
            Body::Map { key, value, .. } => {
                key.file_counts(counts);
                value.file_counts(counts);
            }
            Body::Struct(c) => c.iter().for_each(|c| c.file_counts(counts)),
            _ => {}
        }
    }

    /// The column id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// Appends `start..end` to `ranges`, merged with the last range when they touch.
fn push_range(ranges: &mut Ranges, start: usize, end: usize) {
    if start == end {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => ranges.push((start, end)),
    }
}

/// The child rows of the present lists or maps `valid`, whose lengths go to `lengths`.
fn child_ranges<O: OffsetSizeTrait>(
    offsets: &[O],
    valid: &[(usize, usize)],
    lengths: &mut IntRle,
) -> Ranges {
    let mut out = Vec::new();
    for &(start, end) in valid {
        for i in start..end {
            let (s, e) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
            lengths.write((e - s) as i64);
            push_range(&mut out, s, e);
        }
    }
    out
}

/// A timestamp of `v` units (`per_second` to a second) as TIMESTAMP's DATA and SECONDARY
/// values.
///
/// Seconds are the floor of the time, less the 2015 base; nanoseconds the rest, encoded with
/// their trailing decimal zeros. ORC's readers (following its Java writer, which truncates
/// toward zero) take one second off a negative seconds value whose nanoseconds are above
/// 999,999: such a value is written one second up, so they read it back exactly. (A time in
/// (-1 s, 0) from 1970 with at least a millisecond of fraction is the one such readers cannot
/// be given: they read it a second late.)
pub fn timestamp_parts(v: i64, per_second: i64) -> (i64, i64) {
    let seconds = v.div_euclid(per_second);
    let fraction = v.rem_euclid(per_second);
    let nanos = fraction * (1_000_000_000 / per_second);
    let seconds = if seconds < 0 && nanos > 999_999 {
        seconds + 1
    } else {
        seconds
    };
    // Saturating: only Arrow's second unit reaches within 1.4e9 s of i64's ends (hydrant's
    // timestamps are microseconds, hundreds of thousands of years from them).
    (
        seconds.saturating_sub(TIMESTAMP_BASE_SECONDS),
        encode_nanos(nanos),
    )
}

/// SECONDARY's encoding of nanoseconds: with z >= 2 trailing decimal zeros, the value without
/// them shifted left 3 with z - 1 in the low bits; otherwise the value shifted left 3.
pub fn encode_nanos(nanos: i64) -> i64 {
    debug_assert!((0..1_000_000_000).contains(&nanos), "nanos {nanos}");
    if nanos == 0 {
        return 0;
    }
    let mut v = nanos;
    let mut zeros = 0;
    while v % 10 == 0 && zeros < 8 {
        v /= 10;
        zeros += 1;
    }
    if zeros >= 2 {
        (v << 3) | (zeros - 1)
    } else {
        nanos << 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_and_seconds() {
        assert_eq!(encode_nanos(0), 0);
        assert_eq!(encode_nanos(1), 8);
        assert_eq!(encode_nanos(10), 80);
        // 100 = 1 followed by 2 zeros: 1 << 3 | 1.
        assert_eq!(encode_nanos(100), 9);
        assert_eq!(encode_nanos(500_000_000), (5 << 3) | 7);
        assert_eq!(encode_nanos(123_456_000), (123_456 << 3) | 2);
        assert_eq!(
            timestamp_parts(TIMESTAMP_BASE_SECONDS * 1_000_000, 1_000_000),
            (0, 0)
        );
        // -1.5 s: floor -2, 0.5 s; written -1 (readers take one off).
        assert_eq!(
            timestamp_parts(-1_500_000, 1_000_000),
            (-1 - TIMESTAMP_BASE_SECONDS, encode_nanos(500_000_000))
        );
        // -2 s + 1 µs: under a millisecond of fraction, readers take nothing off.
        assert_eq!(
            timestamp_parts(-1_999_999, 1_000_000),
            (-2 - TIMESTAMP_BASE_SECONDS, encode_nanos(1_000))
        );
    }
}
