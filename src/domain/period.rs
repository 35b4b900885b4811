use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};

/// A leaderboard/report period, always in UTC: the current day, ISO week
/// (starting Monday), calendar month, or all time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
    AllTime,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Day, Period::Week, Period::Month, Period::AllTime];

    /// The name stored in `study_totals.period`.
    pub fn key(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::AllTime => "all",
        }
    }

    /// The first day of the bucket `at` falls in.
    pub fn bucket_start(self, at: DateTime<Utc>) -> NaiveDate {
        let day = at.date_naive();
        match self {
            Period::Day => day,
            Period::Week => day
                .checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
                .unwrap_or(day),
            Period::Month => day.with_day(1).unwrap_or(day),
            Period::AllTime => NaiveDate::default(),
        }
    }

    /// `[start, end)` of the bucket `at` falls in, as instants; all time is
    /// unbounded above.
    pub fn range(self, at: DateTime<Utc>) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let start = self.bucket_start(at);
        let end = match self {
            Period::Day => start.checked_add_days(Days::new(1)),
            Period::Week => start.checked_add_days(Days::new(7)),
            Period::Month => start.checked_add_months(Months::new(1)),
            Period::AllTime => None,
        };
        (midnight(start), end.map(midnight))
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_follow_utc_calendar_and_iso_weeks() {
        let t = at("2026-11-29T23:59:59Z"); // a Sunday
        assert_eq!(Period::Day.bucket_start(t).to_string(), "2026-11-29");
        assert_eq!(Period::Week.bucket_start(t).to_string(), "2026-11-23");
        assert_eq!(Period::Month.bucket_start(t).to_string(), "2026-11-01");
        assert_eq!(Period::AllTime.bucket_start(t).to_string(), "1970-01-01");
        let monday = at("2026-11-30T00:00:00Z");
        assert_eq!(Period::Week.bucket_start(monday).to_string(), "2026-11-30");
        let (start, end) = Period::Month.range(t);
        assert_eq!(start, at("2026-11-01T00:00:00Z"));
        assert_eq!(end, Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(Period::AllTime.range(t).1, None);
    }
}
