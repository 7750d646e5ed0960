//! ORC's version 1 run-length encodings, as streaming encoders into a byte buffer.
//!
//! ```text
//! byte RLE:     control 0..=127  -> a run of control+3 copies of the next byte
//!               control -1..=-128 -> -control literal bytes follow
//! boolean:      bits, most significant first, 8 to a byte, then byte RLE (last byte 0-padded)
//! integer RLE1: control 0..=127  -> a run of control+3 values: delta (i8), base (varint);
//!                                   value k is base + k * delta
//!               control -1..=-128 -> -control literal varints follow
//! varint:       base 128, least significant group first; signed values zigzag-encoded first
//! ```

/// The shortest run written as a run.
const MIN_REPEAT: usize = 3;
/// The longest run (control 127).
const MAX_REPEAT: usize = 127 + MIN_REPEAT;
/// The most literals in one group.
const MAX_LITERALS: usize = 128;

/// Appends `v` as a base-128 varint.
pub fn write_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub fn write_svarint(out: &mut Vec<u8>, v: i64) {
    write_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a 128-bit `v` zigzag-encoded as an unbounded varint (decimal DATA).
pub fn write_svarint128(out: &mut Vec<u8>, v: i128) {
    let mut z = ((v << 1) ^ (v >> 127)) as u128;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Byte run-length encoding.
#[derive(Debug, Default)]
pub struct ByteRle {
    out: Vec<u8>,
    literals: Vec<u8>,
    repeat: bool,
    tail_run: usize,
}

impl ByteRle {
    /// Appends one byte.
    pub fn write(&mut self, value: u8) {
        if self.literals.is_empty() {
            self.literals.push(value);
            self.tail_run = 1;
        } else if self.repeat {
            if value == self.literals[0] {
                self.literals.push(value);
                if self.literals.len() == MAX_REPEAT {
                    self.flush_group();
                }
            } else {
                self.flush_group();
                self.literals.push(value);
                self.tail_run = 1;
            }
        } else {
            if Some(&value) == self.literals.last() {
                self.tail_run += 1;
            } else {
                self.tail_run = 1;
            }
            if self.tail_run == MIN_REPEAT {
                if self.literals.len() + 1 == MIN_REPEAT {
                    self.repeat = true;
                    self.literals.push(value);
                } else {
                    // The run's first two values leave the literals.
                    let keep = self.literals.len() - (MIN_REPEAT - 1);
                    self.literals.truncate(keep);
                    self.flush_group();
                    self.literals.extend_from_slice(&[value; MIN_REPEAT]);
                    self.repeat = true;
                }
            } else {
                self.literals.push(value);
                if self.literals.len() == MAX_LITERALS {
                    self.flush_group();
                }
            }
        }
    }

    fn flush_group(&mut self) {
        let n = self.literals.len();
        if n == 0 {
            return;
        }
        if self.repeat {
            debug_assert!((MIN_REPEAT..=MAX_REPEAT).contains(&n), "run length {n}");
            self.out.push((n - MIN_REPEAT) as u8);
            self.out.push(self.literals[0]);
        } else {
            debug_assert!(n <= MAX_LITERALS, "{n} literals");
            self.out.push((-(n as i16)) as u8);
            self.out.extend_from_slice(&self.literals);
        }
        self.literals.clear();
        self.repeat = false;
        self.tail_run = 0;
    }

    /// Bytes encoded so far (an estimate of the stream's size).
    pub fn len(&self) -> usize {
        self.out.len() + self.literals.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stream so far, with every pending group written; the encoder starts over.
    pub fn take(&mut self) -> Vec<u8> {
        self.flush_group();
        std::mem::take(&mut self.out)
    }
}

/// Boolean stream: bits, most significant first, through byte RLE.
#[derive(Debug, Default)]
pub struct BoolRle {
    bytes: ByteRle,
    current: u8,
    bits: u8,
}

impl BoolRle {
    /// Appends one bit.
    pub fn write(&mut self, value: bool) {
        if value {
            self.current |= 0x80 >> self.bits;
        }
        self.bits += 1;
        if self.bits == 8 {
            self.bytes.write(self.current);
            self.current = 0;
            self.bits = 0;
        }
    }

    /// Bytes encoded so far (an estimate).
    pub fn len(&self) -> usize {
        self.bytes.len() + 1
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bits == 0 && self.bytes.is_empty()
    }

    /// The stream so far (the last byte padded with zero bits); the encoder starts over.
    pub fn take(&mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.bytes.write(self.current);
            self.current = 0;
            self.bits = 0;
        }
        self.bytes.take()
    }
}

/// Integer run-length encoding version 1, signed (zigzag varints) or unsigned.
#[derive(Debug)]
pub struct IntRle {
    signed: bool,
    out: Vec<u8>,
    literals: Vec<i64>,
    repeat: bool,
    delta: i64,
    tail_run: usize,
}

impl IntRle {
    /// An encoder of signed (`true`) or unsigned values.
    pub fn new(signed: bool) -> IntRle {
        IntRle {
            signed,
            out: Vec::new(),
            literals: Vec::with_capacity(MAX_LITERALS),
            repeat: false,
            delta: 0,
            tail_run: 0,
        }
    }

    /// The delta from `from` to `to` when it fits a run's byte.
    fn small_delta(from: i64, to: i64) -> Option<i64> {
        let d = i128::from(to) - i128::from(from);
        (-128..=127).contains(&d).then_some(d as i64)
    }

    /// Appends one value (unsigned encoders: `value >= 0`).
    pub fn write(&mut self, value: i64) {
        debug_assert!(self.signed || value >= 0, "unsigned stream given {value}");
        let Some(&last) = self.literals.last() else {
            self.literals.push(value);
            self.tail_run = 1;
            return;
        };
        if self.repeat {
            let next =
                i128::from(self.literals[0]) + i128::from(self.delta) * self.literals.len() as i128;
            if i128::from(value) == next {
                self.literals.push(value);
                if self.literals.len() == MAX_REPEAT {
                    self.flush_group();
                }
            } else {
                self.flush_group();
                self.literals.push(value);
                self.tail_run = 1;
            }
            return;
        }
        if self.tail_run >= 2 && i128::from(value) == i128::from(last) + i128::from(self.delta) {
            self.tail_run += 1;
        } else {
            match Self::small_delta(last, value) {
                Some(d) => {
                    self.delta = d;
                    self.tail_run = 2;
                }
                None => self.tail_run = 1,
            }
        }
        if self.tail_run == MIN_REPEAT {
            if self.literals.len() + 1 == MIN_REPEAT {
                self.repeat = true;
                self.literals.push(value);
            } else {
                // The run's first two values leave the literals.
                let keep = self.literals.len() - (MIN_REPEAT - 1);
                let base = self.literals[keep];
                self.literals.truncate(keep);
                let delta = self.delta;
                self.flush_group();
                self.delta = delta;
                self.literals.push(base);
                self.literals.push(last);
                self.literals.push(value);
                self.repeat = true;
            }
        } else {
            self.literals.push(value);
            if self.literals.len() == MAX_LITERALS {
                self.flush_group();
            }
        }
    }

    fn put(&mut self, v: i64) {
        if self.signed {
            write_svarint(&mut self.out, v);
        } else {
            write_uvarint(&mut self.out, v as u64);
        }
    }

    fn flush_group(&mut self) {
        let n = self.literals.len();
        if n == 0 {
            return;
        }
        if self.repeat {
            debug_assert!((MIN_REPEAT..=MAX_REPEAT).contains(&n), "run length {n}");
            self.out.push((n - MIN_REPEAT) as u8);
            self.out.push(self.delta as i8 as u8);
            let base = self.literals[0];
            self.put(base);
        } else {
            debug_assert!(n <= MAX_LITERALS, "{n} literals");
            self.out.push((-(n as i16)) as u8);
            let literals = std::mem::take(&mut self.literals);
            for &v in &literals {
                self.put(v);
            }
            self.literals = literals;
        }
        self.literals.clear();
        self.repeat = false;
        self.tail_run = 0;
        self.delta = 0;
    }

    /// Bytes encoded so far (an estimate: pending values count as many bytes as the last one's
    /// varint).
    pub fn len(&self) -> usize {
        let each = self.literals.last().map_or(0, |&v| {
            let u = if self.signed {
                ((v << 1) ^ (v >> 63)) as u64
            } else {
                v as u64
            };
            (64 - u.leading_zeros() as usize).div_ceil(7).max(1)
        });
        self.out.len() + each * self.literals.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty() && self.literals.is_empty()
    }

    /// The stream so far, with every pending group written; the encoder starts over.
    pub fn take(&mut self) -> Vec<u8> {
        self.flush_group();
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder written from the specification's text, to check the encoders against.
    fn read_uvarint(b: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }

    fn decode_ints(b: &[u8], signed: bool) -> Vec<i64> {
        let value = |u: u64| {
            if signed {
                ((u >> 1) as i64) ^ -((u & 1) as i64)
            } else {
                u as i64
            }
        };
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let control = b[at] as i8;
            at += 1;
            if control >= 0 {
                let delta = i64::from(b[at] as i8);
                at += 1;
                let base = value(read_uvarint(b, &mut at));
                for k in 0..(control as i64 + 3) {
                    out.push(base + k * delta);
                }
            } else {
                for _ in 0..-(control as i64) {
                    out.push(value(read_uvarint(b, &mut at)));
                }
            }
        }
        out
    }

    fn decode_bytes(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let control = b[at] as i8;
            at += 1;
            if control >= 0 {
                out.extend(std::iter::repeat_n(b[at], control as usize + 3));
                at += 1;
            } else {
                let n = -(control as i64) as usize;
                out.extend_from_slice(&b[at..at + n]);
                at += n;
            }
        }
        out
    }

    fn sample() -> Vec<i64> {
        let mut v: Vec<i64> = vec![7, 7, 7, 1, 2, 3, 4, 100, -5, -5, i64::MIN, i64::MAX, 0];
        v.extend(0..500);
        v.extend(std::iter::repeat_n(42, 300));
        v.extend((0..300).map(|i| i * 1000));
        v.extend((0..50).map(|i| 10 - i * 3));
        v.extend([1, 2, 1, 2, 1, 2, 9, 9]);
        v
    }

    #[test]
    fn integer_rle_round_trips() {
        for signed in [true, false] {
            let values: Vec<i64> = sample().into_iter().filter(|v| signed || *v >= 0).collect();
            let mut e = IntRle::new(signed);
            for &v in &values {
                e.write(v);
            }
            let bytes = e.take();
            assert_eq!(decode_ints(&bytes, signed), values, "signed {signed}");
        }
        // A run of 500 consecutive values is 4 runs (130 each at most), not 500 varints.
        let mut e = IntRle::new(true);
        (0..500).for_each(|v| e.write(v));
        assert!(e.take().len() < 20);
    }

    #[test]
    fn byte_and_bool_rle_round_trip() {
        let mut bytes: Vec<u8> = vec![1, 1, 1, 2, 3, 3, 3, 3, 4];
        bytes.extend((0..=255).cycle().take(700));
        bytes.extend(std::iter::repeat_n(9, 400));
        let mut e = ByteRle::default();
        bytes.iter().for_each(|b| e.write(*b));
        assert_eq!(decode_bytes(&e.take()), bytes);

        let bits: Vec<bool> = (0..1001).map(|i| i % 3 == 0 || i > 900).collect();
        let mut e = BoolRle::default();
        bits.iter().for_each(|b| e.write(*b));
        let packed = decode_bytes(&e.take());
        assert_eq!(packed.len(), 1001_usize.div_ceil(8));
        let unpacked: Vec<bool> = (0..1001)
            .map(|i| packed[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        assert_eq!(unpacked, bits);
    }

    #[test]
    fn varints() {
        let mut b = Vec::new();
        write_svarint(&mut b, -1);
        write_svarint(&mut b, 1);
        write_uvarint(&mut b, 300);
        assert_eq!(b, [1, 2, 0xac, 0x02]);
        let mut b = Vec::new();
        write_svarint128(&mut b, -(1i128 << 100));
        write_svarint128(&mut b, 63);
        // zigzag(-(2^100)) = 2^101 - 1: 101 one bits, 15 groups.
        assert_eq!(b.len(), 15 + 1);
        assert_eq!(b[15], 126);
    }
}
