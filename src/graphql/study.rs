//! Study sessions.
use async_graphql::{Context, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};

use super::{
    context::{parse_id, ContextExt},
    types::StudySession,
};
use crate::{
    domain::{Minutes, StartedAt, Subject},
    write::{self, study::SessionChange},
};

#[derive(InputObject)]
pub struct LogStudySessionInput {
    pub subject: String,
    pub minutes: i32,
    /// Defaults to `minutes` before now.
    pub started_at: Option<DateTime<Utc>>,
}

/// Omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateStudySessionInput {
    pub subject: Option<String>,
    pub minutes: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct StudyMutation;

#[Object]
impl StudyMutation {
    async fn log_study_session(
        &self,
        ctx: &Context<'_>,
        input: LogStudySessionInput,
    ) -> Result<StudySession> {
        let user_id = ctx.require_user()?;
        let subject = Subject::parse(&input.subject)?;
        let minutes = Minutes::parse(input.minutes)?;
        let now = Utc::now();
        let started = input
            .started_at
            .unwrap_or_else(|| now - chrono::Duration::minutes(i64::from(minutes.get())));
        let started_at = StartedAt::parse(started, now)?;
        let done =
            write::study::log_session(ctx.state().writer(), user_id, subject, minutes, started_at)
                .await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    /// Corrects one of the caller's sessions. The day, week, month and
    /// all-time totals it counted in, and so every board, rank, report and
    /// dashboard, change with it in the same transaction (a session moved
    /// to another day leaves the old day's totals).
    async fn update_study_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateStudySessionInput,
    ) -> Result<StudySession> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let change = SessionChange {
            subject: input.subject.as_deref().map(Subject::parse).transpose()?,
            minutes: input.minutes.map(Minutes::parse).transpose()?,
            started_at: input
                .started_at
                .map(|at| StartedAt::parse(at, Utc::now()))
                .transpose()?,
        };
        let done = write::study::update_session(ctx.state().writer(), user_id, id, change).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    /// Deletes one of the caller's sessions and takes it out of its totals
    /// (a total left with no session leaves the boards); returns its id.
    async fn delete_study_session(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let done = write::study::delete_session(ctx.state().writer(), user_id, id).await?;
        ctx.record_written(&done.events);
        Ok(ID(done.value.to_string()))
    }
}
