//! Dictionary encoding of a STRING column (ORC's DICTIONARY encoding, version 1), chosen per
//! stripe as ORC's writers choose it: the stripe's distinct values are kept with one index per
//! value, and when the stripe ends, the column is written with a dictionary when
//! `distinct values <= threshold * non-null values` (`DictionaryKeyThreshold`), DIRECT
//! otherwise.
//!
//! ```text
//! DICTIONARY:  DATA             unsigned integer RLE: each value's index into the sorted dictionary
//!              DICTIONARY_DATA  the dictionary's values, sorted (byte order), back to back
//!              LENGTH           unsigned integer RLE: each dictionary value's length
//!              encoding         DICTIONARY, dictionarySize = distinct values
//! DIRECT:      DATA             the values' bytes; LENGTH: unsigned integer RLE of their lengths
//! ```

use std::collections::HashMap;

use crate::proto::{self, stream_kind};
use crate::rle::IntRle;

/// The stripe's values of one STRING column, as a dictionary and indices.
#[derive(Debug)]
pub struct Dictionary {
    threshold: f64,
    keys: HashMap<Box<[u8]>, u32>,
    key_bytes: usize,
    indices: Vec<u32>,
}

/// What a stripe's column becomes: its encoding and its streams (kind, bytes).
pub type Encoded = (proto::ColumnEncoding, Vec<(i32, Vec<u8>)>);

impl Dictionary {
    /// A dictionary used when distinct values are at most `threshold` of the values.
    pub fn new(threshold: f64) -> Dictionary {
        debug_assert!((0.0..=1.0).contains(&threshold), "threshold {threshold}");
        Dictionary {
            threshold,
            keys: HashMap::new(),
            key_bytes: 0,
            indices: Vec::new(),
        }
    }

    /// Appends one value.
    pub fn write(&mut self, value: &[u8]) {
        let next = self.keys.len() as u32;
        let index = match self.keys.get(value) {
            Some(&i) => i,
            None => {
                self.keys.insert(value.into(), next);
                self.key_bytes += value.len();
                next
            }
        };
        self.indices.push(index);
    }

    /// Bytes buffered (an estimate of the encoded size: the distinct values and a byte per
    /// value).
    pub fn len(&self) -> usize {
        self.key_bytes + self.indices.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Ends the stripe: the encoding chosen and its streams; the dictionary starts over.
    pub fn finish(&mut self) -> Encoded {
        let keys = std::mem::take(&mut self.keys);
        let indices = std::mem::take(&mut self.indices);
        self.key_bytes = 0;
        let mut entries: Vec<(Box<[u8]>, u32)> = keys.into_iter().collect();
        let distinct = entries.len();
        let use_dictionary =
            !indices.is_empty() && distinct as f64 <= self.threshold * indices.len() as f64;
        let mut lengths = IntRle::new(false);
        if use_dictionary {
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut remap = vec![0u32; distinct];
            let mut dictionary = Vec::new();
            for (sorted, (value, old)) in entries.iter().enumerate() {
                remap[*old as usize] = sorted as u32;
                dictionary.extend_from_slice(value);
                lengths.write(value.len() as i64);
            }
            let mut data = IntRle::new(false);
            for i in indices {
                data.write(i64::from(remap[i as usize]));
            }
            (
                proto::ColumnEncoding {
                    kind: Some(proto::ENCODING_DICTIONARY),
                    dictionary_size: Some(distinct as u32),
                },
                vec![
                    (stream_kind::DATA, data.take()),
                    (stream_kind::DICTIONARY_DATA, dictionary),
                    (stream_kind::LENGTH, lengths.take()),
                ],
            )
        } else {
            let mut by_index: Vec<&[u8]> = vec![&[]; distinct];
            for (value, i) in &entries {
                by_index[*i as usize] = value;
            }
            let mut data = Vec::new();
            for i in indices {
                let v = by_index[i as usize];
                data.extend_from_slice(v);
                lengths.write(v.len() as i64);
            }
            (
                proto::ColumnEncoding {
                    kind: Some(proto::ENCODING_DIRECT),
                    dictionary_size: None,
                },
                vec![
                    (stream_kind::DATA, data),
                    (stream_kind::LENGTH, lengths.take()),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_or_direct_by_the_threshold() {
        let values = ["b", "a", "b", "", "a", "b"];
        let mut d = Dictionary::new(0.5);
        values.iter().for_each(|v| d.write(v.as_bytes()));
        let (encoding, streams) = d.finish();
        // 3 distinct of 6 <= 0.5 * 6: a dictionary "", "a", "b".
        assert_eq!(encoding.kind, Some(proto::ENCODING_DICTIONARY));
        assert_eq!(encoding.dictionary_size, Some(3));
        assert_eq!(streams[1], (stream_kind::DICTIONARY_DATA, b"ab".to_vec()));
        // Indices 2 1 2 0 1 2: three literals, then a run of 3 from 0 by 1.
        assert_eq!(streams[0].1, [0xfd, 2, 1, 2, 0, 1, 0]);
        // Lengths 0 1 1: three literals.
        assert_eq!(streams[2].1, [0xfd, 0, 1, 1]);
        assert!(d.is_empty());
        let mut d = Dictionary::new(0.4);
        values.iter().for_each(|v| d.write(v.as_bytes()));
        let (encoding, streams) = d.finish();
        assert_eq!(encoding.kind, Some(proto::ENCODING_DIRECT));
        assert_eq!(streams[0], (stream_kind::DATA, b"babab".to_vec()));
    }
}
