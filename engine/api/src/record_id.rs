//! Record ids: opaque to producers, but they encode the stream incarnation and the record's LSN,
//! so they are unique across a stream's deletion and re-creation under the same name, and tools
//! can find a record from the id a producer logged.
//!
//! Format: 32 lowercase hex digits, `{incarnation:016x}{lsn:016x}`.

use hydrant_wal::Lsn;

/// Length of every record id.
pub const RECORD_ID_LEN: usize = 32;

/// The record id of `lsn` in the stream incarnation `incarnation`.
#[must_use]
pub fn encode(incarnation: u64, lsn: Lsn) -> String {
    let mut out = Vec::with_capacity(RECORD_ID_LEN);
    encode_into(incarnation, lsn, &mut out);
    // Hex digits only.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the record id of `lsn` in the stream incarnation `incarnation` to `out`.
pub fn encode_into(incarnation: u64, lsn: Lsn, out: &mut Vec<u8>) {
    // Written digit by digit: a PutRecordBatch answers with up to 500 of these.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for v in [incarnation, lsn.0] {
        for shift in (0..16).rev() {
            out.push(HEX[((v >> (shift * 4)) & 15) as usize]);
        }
    }
}

/// The incarnation and LSN a record id encodes, or `None` when it is not a hydrant record id.
#[must_use]
pub fn decode(id: &str) -> Option<(u64, Lsn)> {
    if id.len() != RECORD_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let inc = u64::from_str_radix(&id[..16], 16).ok()?;
    let lsn = u64::from_str_radix(&id[16..], 16).ok()?;
    Some((inc, Lsn(lsn)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = encode(0xdead_beef, Lsn(42));
        assert_eq!(id.len(), RECORD_ID_LEN);
        assert_eq!(decode(&id), Some((0xdead_beef, Lsn(42))));
        assert_eq!(decode("xyz"), None);
        assert_ne!(encode(1, Lsn(0)), encode(2, Lsn(0)));
        assert_eq!(
            encode(0x0123_4567_89ab_cdef, Lsn(u64::MAX)),
            "0123456789abcdefffffffffffffffff"
        );
        assert_eq!(encode(0, Lsn(10)), format!("{:032x}", 10));
    }
}
