//! Study statistics and the global dashboard; routed reads (MongoDB,
//! CockroachDB as fallback).
use async_graphql::{ComplexObject, Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    context::{parse_id, require_admin, ContextExt},
    leaderboard::PeriodArg,
    routed::routed,
};
use crate::{
    domain::{self, Period},
    error::AppError,
    read::{
        fallback,
        model::{completion_rate, KeyMinutes, Range},
        mongo,
        routing::RoutedField,
    },
};

fn int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Minutes studied on one UTC day.
#[derive(SimpleObject, Clone, Debug)]
pub struct DayMinutes {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub minutes: i32,
}

/// Minutes studied in one subject.
#[derive(SimpleObject, Clone, Debug)]
pub struct SubjectMinutes {
    pub subject: String,
    pub minutes: i32,
}

fn subjects(rows: Vec<KeyMinutes>) -> Vec<SubjectMinutes> {
    rows.into_iter()
        .map(|r| SubjectMinutes {
            subject: r.key,
            minutes: int(r.minutes),
        })
        .collect()
}

/// Most days `StudyStats.byDay` lists: a year, leap or not.
pub const MAX_STATS_DAYS: u64 = 366;
/// Most subjects `StudyStats.bySubject` lists.
pub const MAX_STATS_SUBJECTS: u64 = 50;
/// Subjects `Dashboard.topSubjects` lists.
pub const TOP_SUBJECTS: u64 = 5;

fn cap(max: u64) -> usize {
    usize::try_from(max).unwrap_or(usize::MAX)
}

/// One user's study and todos over `[from, to)`.
// The lists are resolved by `ComplexObject` fields, which can be priced by
// their maxima.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct StudyStats {
    pub total_minutes: i32,
    pub sessions: i32,
    #[graphql(skip)]
    pub by_day: Vec<DayMinutes>,
    #[graphql(skip)]
    pub by_subject: Vec<SubjectMinutes>,
    /// Todos created in the range.
    pub todos_created: i32,
    /// Of those, how many are completed now.
    pub todos_completed: i32,
    /// `todosCompleted / todosCreated`, 0 when no todo was created.
    pub completion_rate: f64,
}

#[ComplexObject]
impl StudyStats {
    /// Days with study, oldest first: the last 366 of the range (totals
    /// count every day).
    #[graphql(complexity = "super::limits::capped_list_cost(MAX_STATS_DAYS, child_complexity)")]
    async fn by_day(&self) -> &[DayMinutes] {
        let skip = self.by_day.len().saturating_sub(cap(MAX_STATS_DAYS));
        &self.by_day[skip..]
    }

    /// Most minutes first, then by subject name: the first 50.
    #[graphql(complexity = "super::limits::capped_list_cost(MAX_STATS_SUBJECTS, child_complexity)")]
    async fn by_subject(&self) -> &[SubjectMinutes] {
        let end = self.by_subject.len().min(cap(MAX_STATS_SUBJECTS));
        &self.by_subject[..end]
    }
}

/// Everyone's study in the current period.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Dashboard {
    /// Users who studied in the period.
    pub active_users: i32,
    pub total_minutes: i32,
    pub sessions: i32,
    /// Share of the todos created in the period that are completed.
    pub completion_rate: f64,
    #[graphql(skip)]
    pub top_subjects: Vec<SubjectMinutes>,
}

#[ComplexObject]
impl Dashboard {
    /// The five subjects with most minutes.
    #[graphql(complexity = "super::limits::capped_list_cost(TOP_SUBJECTS, child_complexity)")]
    async fn top_subjects(&self) -> &[SubjectMinutes] {
        let end = self.top_subjects.len().min(cap(TOP_SUBJECTS));
        &self.top_subjects[..end]
    }
}

#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Sessions count by when they started, todos by when they were created;
    /// `from` is inclusive, `to` exclusive, either may be omitted. Anyone may
    /// read their own statistics; another user's need the admin role.
    async fn study_stats(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<StudyStats> {
        let caller = ctx.require_user()?;
        let target = match user_id {
            Some(id) => parse_id(&id, "userId")?,
            None => caller,
        };
        if target != caller {
            require_admin(ctx).await?;
        }
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(AppError::bad_input("from must not be after to").into());
            }
        }
        let range = Range {
            from: from.map(domain::to_millis),
            to: to.map(domain::to_millis),
        };
        let state = ctx.state();
        let s = routed(
            ctx,
            RoutedField::StudyStats,
            || mongo::analytics::stats(state.read_model(), target, range),
            || fallback::analytics::stats(state.sql(), target, range),
        )
        .await?;
        Ok(StudyStats {
            total_minutes: int(s.total_minutes),
            sessions: int(s.sessions),
            by_day: s
                .by_day
                .into_iter()
                .map(|d| DayMinutes {
                    day: d.key,
                    minutes: int(d.minutes),
                })
                .collect(),
            by_subject: subjects(s.by_subject),
            todos_created: int(s.todos_created),
            todos_completed: int(s.todos_completed),
            completion_rate: completion_rate(s.todos_created, s.todos_completed),
        })
    }

    /// Global figures for the current period (any logged-in user).
    async fn dashboard(&self, ctx: &Context<'_>, period: PeriodArg) -> Result<Dashboard> {
        ctx.require_user()?;
        let state = ctx.state();
        let period = Period::from(period);
        let now = domain::now();
        let start = period.bucket_start(now);
        let bounds = period.range(now);
        let d = routed(
            ctx,
            RoutedField::Dashboard,
            || mongo::analytics::dashboard(state.read_model(), period, start, bounds),
            || fallback::analytics::dashboard(state.sql(), period, start, bounds),
        )
        .await?;
        Ok(Dashboard {
            active_users: int(d.active_users),
            total_minutes: int(d.total_minutes),
            sessions: int(d.sessions),
            completion_rate: completion_rate(d.todos_created, d.todos_completed),
            top_subjects: subjects(d.top_subjects),
        })
    }
}
