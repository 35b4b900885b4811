use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;

/// Minutes of one study session: 1–1,440 (one day).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minutes(i32);

impl Minutes {
    pub fn parse(raw: i32) -> Result<Self, AppError> {
        if (1..=1440).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(AppError::bad_input("minutes must be between 1 and 1440"))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// When a study session started: not in the future (a minute of clock skew is
/// allowed) and not before 2000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartedAt(DateTime<Utc>);

impl StartedAt {
    pub fn parse(raw: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, AppError> {
        if raw > now + Duration::minutes(1) {
            return Err(AppError::bad_input("startedAt must not be in the future"));
        }
        if raw < earliest() {
            return Err(AppError::bad_input("startedAt must be after 2000-01-01"));
        }
        Ok(Self(super::to_millis(raw)))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// A todo's due date: between 2000 and 100 years from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueAt(DateTime<Utc>);

impl DueAt {
    pub fn parse(raw: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, AppError> {
        if raw < earliest() || raw > now + Duration::days(36_525) {
            return Err(AppError::bad_input(
                "dueAt must be between 2000-01-01 and 100 years from now",
            ));
        }
        Ok(Self(super::to_millis(raw)))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

fn earliest() -> DateTime<Utc> {
    DateTime::from_timestamp(946_684_800, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_bounded_to_one_day() {
        assert!(Minutes::parse(0).is_err());
        assert!(Minutes::parse(1441).is_err());
        assert_eq!(Minutes::parse(1440).unwrap().get(), 1440);
    }

    #[test]
    fn times_must_be_sane() {
        let now = Utc::now();
        assert!(StartedAt::parse(now + Duration::hours(1), now).is_err());
        assert!(StartedAt::parse(earliest() - Duration::days(1), now).is_err());
        assert!(StartedAt::parse(now - Duration::hours(1), now).is_ok());
        assert!(DueAt::parse(now + Duration::days(40_000), now).is_err());
        assert!(DueAt::parse(now + Duration::days(3), now).is_ok());
    }
}
