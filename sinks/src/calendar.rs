//! The one calendar of the workspace: instants (Unix epoch milliseconds) broken into civil
//! fields in a time zone, through `jiff` and the IANA database bundled into the binary (never the
//! host's `/usr/share/zoneinfo`, so a `CustomTimeZone` evaluates the same on every machine and a
//! resend after an upgrade of the host's tzdata names the same objects).
//!
//! Object keys ([`crate::keys`]), OpenSearch index rotation and zip entry times read their fields
//! here; the engine (SigV4 dates) and the CLI (RFC 3339) use `jiff` directly.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The longest `CustomTimeZone` the API accepts (characters).
pub const TIME_ZONE_CHARS_MAX: usize = 50;

/// A `CustomTimeZone` that is not an IANA zone name of the bundled database.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "CustomTimeZone {0:?} is not a time zone: give an IANA name such as UTC, America/New_York \
     or Europe/Berlin (pattern [a-zA-Z/_]+, at most 50 characters)"
)]
pub struct UnknownTimeZone(pub String);

/// A named time zone. Two zones are equal when their names are (the database is bundled, so a
/// name always means the same rules in one build).
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// UTC, the default.
    #[must_use]
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }

    /// The zone of a `CustomTimeZone`: `None` or empty is UTC; anything else must match
    /// `[a-zA-Z/_]+` (the API's pattern), be at most [`TIME_ZONE_CHARS_MAX`] characters and name
    /// a zone of the bundled IANA database.
    ///
    /// # Errors
    /// [`UnknownTimeZone`].
    pub fn from_firehose(name: Option<&str>) -> Result<Zone, UnknownTimeZone> {
        let name = match name {
            None | Some("") => return Ok(Zone::utc()),
            Some(name) => name,
        };
        let unknown = || UnknownTimeZone(name.to_string());
        let pattern_ok = name.len() <= TIME_ZONE_CHARS_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'/' || b == b'_');
        if !pattern_ok {
            return Err(unknown());
        }
        let tz = jiff::tz::db().get(name).map_err(|_| unknown())?;
        Ok(Zone {
            name: name.to_string(),
            tz,
        })
    }

    /// The name as configured (`UTC` for the default).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is the default UTC zone.
    #[must_use]
    pub fn is_utc(&self) -> bool {
        self.name == "UTC"
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.name).finish()
    }
}

/// An instant broken into the civil fields the key patterns print, in one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// 1 ..= 12.
    pub month: u32,
    /// 1 ..= 31.
    pub day: u32,
    /// 0 ..= 23.
    pub hour: u32,
    /// 0 ..= 59.
    pub minute: u32,
    /// 0 ..= 59.
    pub second: u32,
    /// 0 ..= 999.
    pub millis: u32,
    /// 1 ..= 366.
    pub day_of_year: u32,
    /// 1 = Monday ..= 7 = Sunday, as `java.time.DayOfWeek`.
    pub weekday: u32,
}

impl CivilTime {
    /// `ms` (Unix epoch milliseconds) in `zone`. Instants past the calendar's end (year 9999)
    /// are taken as its last millisecond.
    #[must_use]
    pub fn at(ms: u64, zone: &Zone) -> CivilTime {
        let instant = i64::try_from(ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .unwrap_or(Timestamp::MAX);
        let t = zone.tz.to_datetime(instant);
        // jiff's ranges are the ones documented on the fields, so the conversions are exact.
        let field = |v: i8| u32::try_from(v).unwrap_or(0);
        CivilTime {
            year: i64::from(t.year()),
            month: field(t.month()),
            day: field(t.day()),
            hour: field(t.hour()),
            minute: field(t.minute()),
            second: field(t.second()),
            millis: u32::try_from(t.millisecond()).unwrap_or(0),
            day_of_year: u32::try_from(t.day_of_year()).unwrap_or(1),
            weekday: field(t.weekday().to_monday_one_offset()),
        }
    }

    /// `ms` in UTC.
    #[must_use]
    pub fn utc(ms: u64) -> CivilTime {
        CivilTime::at(
            ms,
            &Zone {
                name: String::new(),
                tz: TimeZone::UTC,
            },
        )
    }
}

/// Days since 1970-01-01 of `year`-`month`-`day` (proleptic Gregorian); `None` for a date the
/// calendar does not hold.
#[must_use]
pub fn day_number(year: i64, month: u32, day: u32) -> Option<i64> {
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let epoch = jiff::civil::Date::new(1970, 1, 1).ok()?;
    Some(date.duration_since(epoch).as_secs() / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC wall-clock time.
    fn utc_ms(y: i64, mo: u32, d: u32, h: u64, mi: u64) -> u64 {
        let days = day_number(y, mo, d).unwrap_or_else(|| panic!("{y}-{mo}-{d}"));
        u64::try_from(days).unwrap_or(0) * 86_400_000 + h * 3_600_000 + mi * 60_000
    }

    fn zone(name: &str) -> Zone {
        Zone::from_firehose(Some(name)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A UTC wall-clock time (year, month, day, hour, minute).
    type UtcMinute = (i64, u32, u32, u64, u64);

    /// Checks each UTC wall-clock time against the local (day, hour, minute) it is in `zone`.
    fn local_times(zone: &Zone, cases: &[(UtcMinute, (u32, u32, u32))]) {
        for &((y, mo, d, h, mi), local) in cases {
            let t = CivilTime::at(utc_ms(y, mo, d, h, mi), zone);
            assert_eq!(
                (t.day, t.hour, t.minute),
                local,
                "{y}-{mo}-{d} {h}:{mi}Z in {}",
                zone.name()
            );
        }
    }

    #[test]
    fn utc_fields() {
        // 2018-08-27T10:30:07.123Z, a Monday.
        let t = CivilTime::utc(1_535_365_807_123);
        assert_eq!((t.year, t.month, t.day), (2018, 8, 27));
        assert_eq!((t.hour, t.minute, t.second, t.millis), (10, 30, 7, 123));
        assert_eq!((t.weekday, t.day_of_year), (1, 239));
        let epoch = CivilTime::utc(0);
        assert_eq!(
            (epoch.year, epoch.month, epoch.day, epoch.weekday),
            (1970, 1, 1, 4)
        );
        let leap = CivilTime::utc(1_709_251_199_999);
        assert_eq!((leap.month, leap.day, leap.day_of_year), (2, 29, 60));
        assert_eq!(day_number(1970, 1, 1), Some(0));
        assert_eq!(day_number(2000, 3, 1), Some(11_017));
        assert_eq!(day_number(2023, 2, 29), None);
        assert_eq!(CivilTime::utc(u64::MAX).year, 9999);
    }

    #[test]
    fn new_york_across_both_transitions() {
        let ny = zone("America/New_York");
        local_times(
            &ny,
            &[
                // Spring forward: 2024-03-10 02:00 EST becomes 03:00 EDT (07:00Z).
                ((2024, 3, 10, 6, 59), (10, 1, 59)),
                ((2024, 3, 10, 7, 0), (10, 3, 0)),
                // Fall back: 2024-11-03 02:00 EDT becomes 01:00 EST (06:00Z); 01:xx happens
                // twice.
                ((2024, 11, 3, 5, 30), (3, 1, 30)),
                ((2024, 11, 3, 6, 30), (3, 1, 30)),
                ((2024, 11, 3, 7, 30), (3, 2, 30)),
            ],
        );
        // The local date can differ from the UTC one.
        let t = CivilTime::at(utc_ms(2024, 1, 1, 3, 0), &ny);
        assert_eq!((t.year, t.month, t.day, t.hour), (2023, 12, 31, 22));
    }

    #[test]
    fn berlin_across_both_transitions() {
        local_times(
            &zone("Europe/Berlin"),
            &[
                // 2024-03-31 02:00 CET becomes 03:00 CEST (01:00Z).
                ((2024, 3, 31, 0, 59), (31, 1, 59)),
                ((2024, 3, 31, 1, 0), (31, 3, 0)),
                // 2024-10-27 03:00 CEST becomes 02:00 CET (01:00Z).
                ((2024, 10, 27, 0, 30), (27, 2, 30)),
                ((2024, 10, 27, 1, 30), (27, 2, 30)),
                ((2024, 10, 27, 2, 30), (27, 3, 30)),
            ],
        );
    }

    #[test]
    fn zone_names() {
        assert!(Zone::from_firehose(None).is_ok_and(|z| z.is_utc()));
        assert!(Zone::from_firehose(Some("")).is_ok_and(|z| z.is_utc()));
        for good in [
            "UTC",
            "Asia/Tokyo",
            "America/Argentina/Buenos_Aires",
            "Europe/Berlin",
        ] {
            assert_eq!(zone(good).name(), good);
        }
        for bad in [
            "Mars/Olympus",
            "utc+1",
            "Etc/GMT+5",
            "America/New York",
            "../etc/passwd",
        ] {
            assert_eq!(
                Zone::from_firehose(Some(bad)),
                Err(UnknownTimeZone(bad.to_string())),
                "{bad}"
            );
        }
        assert!(Zone::from_firehose(Some(&"A".repeat(51))).is_err());
    }
}
