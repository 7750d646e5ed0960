//! `IndexRotationPeriod`: the UTC arrival-time suffix Firehose appends to `IndexName`.
//!
//! ```text
//!   arrival 2016-02-25T13:00:00Z, IndexName myindex
//!   NoRotation  myindex
//!   OneHour     myindex-2016-02-25-13
//!   OneDay      myindex-2016-02-25
//!   OneWeek     myindex-2016-w09      (the guide's table prints w08: see below)
//!   OneMonth    myindex-2016-02
//! ```
//!
//! # Weeks
//!
//! The developer guide ("Configure index rotation for OpenSearch Service") defines `OneWeek` as
//! `<YEAR>-w<WEEK NUMBER>` with the week number computed in UTC "according to the following US
//! conventions: a week starts on Sunday; the first week of the year is the first week that
//! contains a Saturday in this year". That is `java.time.temporal.WeekFields.of(Locale.US)`
//! (Sunday first, one minimal day in the first week), i.e. week 1 is the Sunday-to-Saturday week
//! that holds 1 January, and the year printed is the year that week belongs to (Java's `YYYY`):
//! 2020-12-27 ..= 2021-01-02 is `2021-w01`, 2016-12-31 (a Saturday, its week holds no 2017 day)
//! is `2016-w53`.
//!
//! The same page's example table gives `myindex-2016-w08` for 2016-02-25, which no
//! Sunday-first rule with "first week contains a Saturday" produces (2016-01-01 is a Friday, so
//! week 1 is 2015-12-27 ..= 2016-01-02 and 2016-02-21 ..= 27 is week 9; `w08` is the ISO week,
//! which starts on Monday). The stated rule is the precise, later text, so hydrant follows it
//! and prints `2016-w09`; the test `guide_example_date` pins this choice.

use crate::calendar::{day_number as civil_day_number, CivilTime};

use super::OpenSearchConfigError;

const MS_PER_DAY: u64 = 86_400_000;

/// `IndexRotationPeriod` (`AmazonopensearchserviceIndexRotationPeriod`,
/// `ElasticsearchIndexRotationPeriod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IndexRotation {
    /// `NoRotation`: the index name as configured.
    NoRotation,
    /// `OneHour`: `-YYYY-MM-DD-HH`.
    OneHour,
    /// `OneDay` (the default): `-YYYY-MM-DD`.
    #[default]
    OneDay,
    /// `OneWeek`: `-YYYY-wWW` (US weeks, see the module documentation).
    OneWeek,
    /// `OneMonth`: `-YYYY-MM`.
    OneMonth,
}

impl IndexRotation {
    /// Every period, in the API's order.
    pub const ALL: [IndexRotation; 5] = [
        IndexRotation::NoRotation,
        IndexRotation::OneHour,
        IndexRotation::OneDay,
        IndexRotation::OneWeek,
        IndexRotation::OneMonth,
    ];

    /// Parses the API value (`NoRotation`, `OneHour`, `OneDay`, `OneWeek`, `OneMonth`).
    ///
    /// # Errors
    /// [`OpenSearchConfigError::IndexRotation`] for any other string (case matters, as in the
    /// API).
    pub fn parse(value: &str) -> Result<IndexRotation, OpenSearchConfigError> {
        IndexRotation::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| OpenSearchConfigError::IndexRotation(value.to_owned()))
    }

    /// The API value.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexRotation::NoRotation => "NoRotation",
            IndexRotation::OneHour => "OneHour",
            IndexRotation::OneDay => "OneDay",
            IndexRotation::OneWeek => "OneWeek",
            IndexRotation::OneMonth => "OneMonth",
        }
    }

    /// The suffix for a record that arrived at `arrival_ms` (Unix epoch ms, UTC): empty for
    /// `NoRotation`, else starting with `-`.
    pub fn suffix(self, arrival_ms: u64) -> String {
        let t = CivilTime::utc(arrival_ms);
        match self {
            IndexRotation::NoRotation => String::new(),
            IndexRotation::OneHour => {
                format!("-{:04}-{:02}-{:02}-{:02}", t.year, t.month, t.day, t.hour)
            }
            IndexRotation::OneDay => format!("-{:04}-{:02}-{:02}", t.year, t.month, t.day),
            IndexRotation::OneWeek => {
                let (year, week) = us_week(arrival_ms);
                format!("-{year:04}-w{week:02}")
            }
            IndexRotation::OneMonth => format!("-{:04}-{:02}", t.year, t.month),
        }
    }

    /// The index a record that arrived at `arrival_ms` goes to: `base` + [`Self::suffix`].
    pub fn index_name(self, base: &str, arrival_ms: u64) -> String {
        let mut name = base.to_owned();
        name.push_str(&self.suffix(arrival_ms));
        name
    }
}

/// The US week (Sunday first; week 1 holds 1 January) of the day containing `ms`:
/// (week-based year, week 1 ..= 53).
fn us_week(ms: u64) -> (i64, i64) {
    // u64 milliseconds / a day's worth is below 2^38, so it fits an i64.
    let days = (ms / MS_PER_DAY) as i64;
    let sunday = days - sunday_offset(days);
    // The week belongs to the year of its Saturday: if the Saturday is in the next year, the
    // week holds that year's 1 January and is its week 1.
    let saturday = sunday + 6;
    let year = CivilTime::utc(saturday as u64 * MS_PER_DAY).year;
    let january_1 = day_number(year, 1);
    let first_sunday = january_1 - sunday_offset(january_1);
    let week = (sunday - first_sunday) / 7 + 1;
    debug_assert!((1..=53).contains(&week), "week {week} of day {days}");
    (year, week)
}

/// Days since Sunday (0 ..= 6) of day number `days` (days since 1970-01-01, a Thursday).
fn sunday_offset(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day number (days since 1970-01-01) of `year`-01-`day`.
fn day_number(year: i64, day: u32) -> i64 {
    // Years of epoch milliseconds (1970 ..= 9999) are all in the calendar; the fallback is the
    // day after the calendar's end, which no arrival time reaches.
    civil_day_number(year, 1, day).unwrap_or(2_932_897)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of `year-month-day hour:00:00Z`, via the proleptic calendar.
    fn at(year: i64, month: u32, day: u32, hour: u64) -> u64 {
        civil_day_number(year, month, day).unwrap_or_else(|| panic!("{year}-{month}-{day}")) as u64
            * MS_PER_DAY
            + hour * 3_600_000
    }

    #[test]
    fn guide_example_date() {
        let t = at(2016, 2, 25, 13);
        assert_eq!(t, 1_456_405_200_000, "2016-02-25T13:00:00Z");
        let names: Vec<String> = IndexRotation::ALL
            .iter()
            .map(|r| r.index_name("myindex", t))
            .collect();
        assert_eq!(
            names,
            [
                "myindex",
                "myindex-2016-02-25-13",
                "myindex-2016-02-25",
                // The guide's table says w08 (the ISO week); its stated US rule gives w09.
                "myindex-2016-w09",
                "myindex-2016-02",
            ]
        );
    }

    #[test]
    fn hours_days_and_months_are_zero_padded_utc() {
        let t = at(2021, 1, 5, 0) + 59 * 60_000 + 59_999;
        assert_eq!(IndexRotation::OneHour.suffix(t), "-2021-01-05-00");
        assert_eq!(IndexRotation::OneDay.suffix(t), "-2021-01-05");
        assert_eq!(IndexRotation::OneMonth.suffix(t), "-2021-01");
        let last = at(2021, 1, 1, 0) - 1;
        assert_eq!(IndexRotation::OneHour.suffix(last), "-2020-12-31-23");
        assert_eq!(IndexRotation::NoRotation.suffix(last), "");
    }

    /// A UTC time (year, month, day, hour).
    type Hour = (i64, u32, u32, u64);

    /// Checks the `OneWeek` suffix of each hour.
    fn weeks(cases: &[(Hour, &str)]) {
        for &((year, month, day, hour), want) in cases {
            assert_eq!(
                IndexRotation::OneWeek.suffix(at(year, month, day, hour)),
                want,
                "{year}-{month}-{day} {hour}h"
            );
        }
    }

    #[test]
    fn us_weeks_start_on_sunday() {
        // 2016-02-20 is a Saturday, 2016-02-21 a Sunday.
        weeks(&[
            ((2016, 2, 20, 23), "-2016-w08"),
            ((2016, 2, 21, 0), "-2016-w09"),
            ((2016, 2, 27, 23), "-2016-w09"),
        ]);
        // 2016-01-01 (Friday) and 2016-01-02 (Saturday) are in week 1 with 2015-12-27 ..= 31.
        for day in 27..=31 {
            assert_eq!(
                IndexRotation::OneWeek.suffix(at(2015, 12, day, 12)),
                "-2016-w01",
                "2015-12-{day}"
            );
        }
        weeks(&[
            ((2016, 1, 2, 12), "-2016-w01"),
            ((2016, 1, 3, 0), "-2016-w02"),
            // 2015-12-26 is the Saturday before: the last week of 2015.
            ((2015, 12, 26, 12), "-2015-w52"),
        ]);
    }

    #[test]
    fn year_boundaries() {
        // 2016-12-31 is a Saturday: its week holds no 2017 day, so 2016 has 53 weeks.
        weeks(&[
            ((2016, 12, 31, 23), "-2016-w53"),
            // 2017-01-01 is a Sunday: week 1 starts on it.
            ((2017, 1, 1, 0), "-2017-w01"),
            // 2020-12-27 (Sunday) ..= 2021-01-02 (Saturday) hold 2021-01-01: 2021's week 1.
            ((2020, 12, 26, 23), "-2020-w52"),
            ((2020, 12, 27, 0), "-2021-w01"),
            ((2021, 1, 2, 23), "-2021-w01"),
            ((2021, 1, 3, 0), "-2021-w02"),
            // 2022-01-01 is a Saturday: alone in 2022 in week 1 with 2021-12-26 ..= 31.
            ((2021, 12, 25, 12), "-2021-w52"),
            ((2021, 12, 26, 0), "-2022-w01"),
            ((2022, 1, 1, 12), "-2022-w01"),
            ((2022, 1, 2, 0), "-2022-w02"),
        ]);
        // The epoch: 1970-01-01 was a Thursday, in week 1 of 1970.
        assert_eq!(IndexRotation::OneWeek.suffix(0), "-1970-w01");
        assert_eq!(
            IndexRotation::OneWeek.suffix(at(1970, 1, 4, 0)),
            "-1970-w02"
        );
    }

    #[test]
    fn weeks_step_by_one_every_sunday_for_decades() {
        // From 1970-01-04 (a Sunday) on, each Sunday starts the next week, and week 1 always
        // holds 1 January.
        let mut previous = us_week(at(1970, 1, 4, 0));
        assert_eq!(previous, (1970, 2));
        let mut sunday = at(1970, 1, 4, 0);
        for _ in 0..(60 * 53) {
            sunday += 7 * MS_PER_DAY;
            let (year, week) = us_week(sunday);
            let saturday = us_week(sunday + 6 * MS_PER_DAY + 86_399_999);
            assert_eq!(saturday, (year, week), "a week is Sunday to Saturday");
            if week == 1 {
                assert_eq!(year, previous.0 + 1);
                assert!(previous.1 == 52 || previous.1 == 53);
                let january_1 = at(year, 1, 1, 0);
                assert!(january_1 >= sunday && january_1 < sunday + 7 * MS_PER_DAY);
            } else {
                assert_eq!((year, week), (previous.0, previous.1 + 1));
            }
            previous = (year, week);
        }
    }

    #[test]
    fn parse_accepts_the_api_values_only() {
        for r in IndexRotation::ALL {
            assert_eq!(IndexRotation::parse(r.as_str()).ok(), Some(r));
        }
        assert!(IndexRotation::parse("oneday").is_err());
        assert!(IndexRotation::parse("").is_err());
        assert_eq!(IndexRotation::default(), IndexRotation::OneDay);
    }
}
