//! Timestamps and dates out of JSON values, by the deserializer's rules.
//!
//! - OpenX JSON SerDe (and the Hive JSON SerDe without `TimestampFormats`):
//!   - a JSON number, or a string of digits: epoch **seconds**, or epoch **milliseconds** when it
//!     has 13 digits or more (the OpenX SerDe's rule); a number with a fraction is seconds;
//!   - a string with a time: `yyyy-MM-dd HH:mm:ss[.fffffffff]` or ISO 8601
//!     (`yyyy-MM-ddTHH:mm:ss[.f][Z|±hh:mm]`); without an offset it is UTC.
//! - Hive JSON SerDe with `TimestampFormats`: each pattern is tried in order, a Joda-Time
//!   pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSZZ`, ...) or the special `millis` (epoch
//!   milliseconds); when none matches, the default rules above.
//!
//! A timestamp is kept as microseconds since the epoch (UTC); a date as days since 1970-01-01.

use jiff::civil::{Date, DateTime};
use jiff::fmt::strtime::BrokenDownTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

/// One `TimestampFormats` entry, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimestampFormat {
    /// `millis`: epoch milliseconds.
    Millis,
    /// A Joda-Time pattern, as the `strftime`-style format jiff parses with.
    Pattern {
        /// The pattern as given.
        joda: String,
        /// Its translation.
        strptime: String,
    },
}

impl TimestampFormat {
    /// Checks one `TimestampFormats` entry.
    ///
    /// # Errors
    /// The reason the pattern cannot be used (a Joda letter hydrant does not translate).
    pub fn parse(joda: &str) -> Result<TimestampFormat, String> {
        if joda == "millis" {
            return Ok(TimestampFormat::Millis);
        }
        Ok(TimestampFormat::Pattern {
            joda: joda.to_string(),
            strptime: joda_to_strptime(joda)?,
        })
    }
}

/// Translates a Joda-Time `DateTimeFormat` pattern to jiff's strptime directives.
fn joda_to_strptime(joda: &str) -> Result<String, String> {
    let chars: Vec<char> = joda.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                push_literal(&mut out, chars[j]);
                j += 1;
            }
            if j == chars.len() {
                return Err(format!("pattern {joda:?}: unterminated quote"));
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let directive = match (c, n) {
            ('y' | 'Y' | 'u', 2) => "%y",
            ('y' | 'Y' | 'u', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1 | 2) => "%d",
            ('H', 1 | 2) => "%H",
            ('h', 1 | 2) => "%I",
            ('m', 1 | 2) => "%M",
            ('s', 1 | 2) => "%S",
            ('S', _) => "%f",
            ('a', 1) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', 1) => "%z",
            ('Z', 2) => "%:z",
            ('D', 1..=3) => "%j",
            _ => {
                return Err(format!(
                    "pattern {joda:?}: the letter {c:?} (x{n}) is not supported by hydrant"
                ))
            }
        };
        out.push_str(directive);
        i += n;
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Why a value is not a timestamp or a date.
pub type Reason = String;

/// A timestamp (microseconds since the epoch) from a JSON value: `formats` first, then the
/// default rules of the module documentation.
///
/// # Errors
/// The reason, for the record's failure message.
pub fn timestamp_micros(value: &Value, formats: &[TimestampFormat]) -> Result<i64, Reason> {
    match value {
        Value::String(s) => timestamp_micros_of_str(s, formats),
        Value::Number(n) => {
            for format in formats {
                if let TimestampFormat::Millis = format {
                    if let Some(micros) = n.as_i64().and_then(millis_to_micros) {
                        return Ok(micros);
                    }
                }
            }
            if let Some(i) = n.as_i64() {
                let digits = i
                    .unsigned_abs()
                    .checked_ilog10()
                    .map_or(1, |d| d as usize + 1);
                epoch_digits(i, digits)
            } else {
                let seconds = n.as_f64().ok_or("not a finite number")?;
                seconds_to_micros(seconds)
            }
        }
        other => Err(format!("a {} is not a timestamp", kind(other))),
    }
}

/// [`timestamp_micros`] of a JSON string.
///
/// # Errors
/// The reason, for the record's failure message.
pub fn timestamp_micros_of_str(s: &str, formats: &[TimestampFormat]) -> Result<i64, Reason> {
    for format in formats {
        let found = match format {
            TimestampFormat::Millis => s.trim().parse::<i64>().ok().and_then(millis_to_micros),
            TimestampFormat::Pattern { strptime, .. } => BrokenDownTime::parse(strptime, s.trim())
                .ok()
                .and_then(|tm| to_timestamp(&tm))
                .map(|t| t.as_microsecond()),
        };
        if let Some(micros) = found {
            return Ok(micros);
        }
    }
    text_timestamp(s.trim())
}

/// Epoch milliseconds as microseconds, when they are a timestamp (no overflow, in range).
fn millis_to_micros(ms: i64) -> Option<i64> {
    ms.checked_mul(1000)
        .filter(|m| Timestamp::from_microsecond(*m).is_ok())
}

/// Epoch `i` written with `digits` digits (the sign apart): milliseconds from 13 digits on,
/// else seconds.
fn epoch_digits(i: i64, digits: usize) -> Result<i64, Reason> {
    let micros = if digits >= 13 {
        i.checked_mul(1000)
    } else {
        i.checked_mul(1_000_000)
    };
    micros
        .filter(|m| Timestamp::from_microsecond(*m).is_ok())
        .ok_or_else(|| format!("epoch {i} is out of range"))
}

fn seconds_to_micros(seconds: f64) -> Result<i64, Reason> {
    let micros = (seconds * 1e6).round();
    if micros.is_finite() && micros.abs() < 2.5e17 {
        // In range: the cast cannot saturate.
        #[allow(clippy::cast_possible_truncation)]
        let m = micros as i64;
        if Timestamp::from_microsecond(m).is_ok() {
            return Ok(m);
        }
    }
    Err(format!("epoch {seconds} is out of range"))
}

fn text_timestamp(s: &str) -> Result<i64, Reason> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let i: i64 = s
            .parse()
            .map_err(|_| format!("epoch {s:?} is out of range"))?;
        return epoch_digits(i, s.len());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.contains('.') {
        let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a timestamp"))?;
        return seconds_to_micros(f);
    }
    if !s.contains(':') {
        return Err(format!("{s:?} is not a timestamp"));
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t.as_microsecond());
    }
    s.parse::<DateTime>()
        .ok()
        .and_then(|dt| TimeZone::UTC.to_timestamp(dt).ok())
        .map(|t| t.as_microsecond())
        .ok_or_else(|| format!("{s:?} is not a timestamp"))
}

fn to_timestamp(tm: &BrokenDownTime) -> Option<Timestamp> {
    if tm.offset().is_some() {
        return tm.to_timestamp().ok();
    }
    let dt = tm.to_datetime().ok()?;
    TimeZone::UTC.to_timestamp(dt).ok()
}

/// A date (days since 1970-01-01) from a JSON value: `yyyy-MM-dd`, or a timestamp's day (UTC).
///
/// # Errors
/// The reason, for the record's failure message.
pub fn date_days(value: &Value, formats: &[TimestampFormat]) -> Result<i32, Reason> {
    if let Value::String(s) = value {
        if let Ok(d) = s.trim().parse::<Date>() {
            if !s.contains(':') {
                return days_since_epoch(d);
            }
        }
    }
    let micros = timestamp_micros(value, formats)?;
    let t = Timestamp::from_microsecond(micros).map_err(|e| e.to_string())?;
    days_since_epoch(t.to_zoned_datetime(TimeZone::UTC).date())
}

fn days_since_epoch(d: Date) -> Result<i32, Reason> {
    let epoch = Date::constant(1970, 1, 1);
    let span = d
        .since((jiff::Unit::Day, epoch))
        .map_err(|e| e.to_string())?;
    Ok(span.get_days())
}

/// The JSON kind of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const T: i64 = 1_535_365_807_123_000; // 2018-08-27T10:30:07.123Z

    #[test]
    fn millis_out_of_range_is_an_error_not_an_overflow() {
        // Found by the convert_record fuzz target: `ms * 1000` overflowed i64.
        for v in [
            json!(i64::MAX),
            json!(i64::MIN),
            json!("9223372036854775807"),
        ] {
            assert!(
                timestamp_micros(&v, &[TimestampFormat::Millis]).is_err(),
                "{v}"
            );
        }
        assert_eq!(
            timestamp_micros(&json!(1_535_365_807_123_i64), &[TimestampFormat::Millis]),
            Ok(T)
        );
    }

    #[test]
    fn default_rules_take_epochs_and_text() {
        for v in [
            json!(1_535_365_807_123_i64),
            json!("1535365807123"),
            json!(1_535_365_807.123),
            json!("1535365807.123"),
            json!("2018-08-27 10:30:07.123"),
            json!("2018-08-27T10:30:07.123Z"),
            json!("2018-08-27T12:30:07.123+02:00"),
            json!("2018-08-27T10:30:07.123"),
        ] {
            assert_eq!(timestamp_micros(&v, &[]), Ok(T), "{v}");
        }
        assert_eq!(
            timestamp_micros(&json!(1_535_365_807), &[]),
            Ok(1_535_365_807_000_000)
        );
        for bad in [
            json!("yesterday"),
            json!(true),
            json!({"a": 1}),
            json!("2018-13-01 00:00:00"),
            json!(i64::MAX),
        ] {
            assert!(timestamp_micros(&bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamp_formats_are_tried_in_order() {
        let formats = vec![
            TimestampFormat::parse("dd/MM/yyyy HH:mm:ss").unwrap_or_else(|e| panic!("{e}")),
            TimestampFormat::parse("yyyy-MM-dd'T'HH:mm:ss.SSSZZ").unwrap_or_else(|e| panic!("{e}")),
            TimestampFormat::parse("millis").unwrap_or_else(|e| panic!("{e}")),
        ];
        assert_eq!(
            timestamp_micros(&json!("27/08/2018 10:30:07"), &formats),
            Ok(T - 123_000)
        );
        assert_eq!(
            timestamp_micros(&json!("2018-08-27T12:30:07.123+02:00"), &formats),
            Ok(T)
        );
        // millis: even 10 digits are milliseconds.
        assert_eq!(timestamp_micros(&json!(1000), &formats), Ok(1_000_000));
        assert!(TimestampFormat::parse("yyyy-ww").is_err());
        assert!(TimestampFormat::parse("'unterminated").is_err());
    }

    #[test]
    fn dates_from_text_or_timestamps() {
        assert_eq!(date_days(&json!("1970-01-02"), &[]), Ok(1));
        assert_eq!(date_days(&json!("2018-08-27"), &[]), Ok(17770));
        assert_eq!(date_days(&json!("2018-08-27 23:59:59"), &[]), Ok(17770));
        assert_eq!(date_days(&json!("1969-12-31"), &[]), Ok(-1));
        assert!(date_days(&json!("27 Aug"), &[]).is_err());
    }
}
