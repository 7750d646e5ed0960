//! Turning log contents into text a person or a script can read: RFC 3339 timestamps, base64,
//! and record bytes shown as text when they are text. The calendar is the workspace's one
//! (`jiff`), the encoding the `base64` crate's.

use base64::Engine as _;

/// Formats milliseconds since the Unix epoch as RFC 3339 in UTC with millisecond precision,
/// e.g. `2026-11-25T09:30:00.123Z`.
#[must_use]
pub fn rfc3339_ms(ms: u64) -> String {
    let t = hydrant_sinks::calendar::CivilTime::utc(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// Standard base64 (RFC 4648, with padding): the encoding Firehose itself uses for `Data`.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The record as text, when it is UTF-8 without control characters other than tab, CR and LF
/// (so that printing it cannot move the terminal's cursor or ring its bell).
#[must_use]
pub fn printable_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n'))
        .then_some(text)
}

/// Record bytes for a one-line human listing: `text <escaped>` when printable (backslash, tab,
/// CR and LF escaped so that one record stays one line), else `base64 <encoded>`. At most
/// `max_bytes` of the record are shown (0: all), and a cut says how much was left out.
#[must_use]
pub fn record_for_humans(bytes: &[u8], max_bytes: usize) -> String {
    let shown = if max_bytes == 0 || bytes.len() <= max_bytes {
        bytes
    } else {
        &bytes[..max_bytes]
    };
    let mut out = match printable_text(bytes) {
        Some(text) => {
            // Cut on a character boundary at or below the byte budget.
            let mut end = shown.len();
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let mut s = String::from("text ");
            for c in text[..end].chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    c => s.push(c),
                }
            }
            if end < bytes.len() {
                s.push_str(&format!(" ... ({} more bytes)", bytes.len() - end));
            }
            return s;
        }
        None => format!("base64 {}", base64(shown)),
    };
    if shown.len() < bytes.len() {
        out.push_str(&format!(" ... ({} more bytes)", bytes.len() - shown.len()));
    }
    out
}

/// `1234567` as `1,234,567`, for tables.
#[must_use]
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    // The leading group holds 1 to 3 digits; every later group exactly 3.
    let mut at = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    out.push_str(&digits[..at]);
    while at < digits.len() {
        out.push(',');
        out.push_str(&digits[at..at + 3]);
        at += 3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_764_063_000_123), "2025-11-25T09:30:00.123Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn records_render_as_escaped_text_or_base64() {
        assert_eq!(record_for_humans(b"a\\b\n", 0), "text a\\\\b\\n");
        assert_eq!(record_for_humans(&[0, 1, 2], 0), "base64 AAEC");
        assert_eq!(record_for_humans(b"\x1b[2J", 0), "base64 G1sySg==");
        assert_eq!(
            record_for_humans(b"abcdef", 4),
            "text abcd ... (2 more bytes)"
        );
        assert_eq!(
            record_for_humans("é".as_bytes(), 1),
            "text  ... (2 more bytes)"
        );
        assert_eq!(
            record_for_humans(&[0; 6], 3),
            "base64 AAAA ... (3 more bytes)"
        );
    }

    #[test]
    fn thousands_groups_digits() {
        for (n, grouped) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), grouped);
        }
    }
}
