//! Study sessions.
use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use super::{context::ContextExt, types::StudySession};
use crate::{
    domain::{Minutes, StartedAt, Subject},
    write,
};

#[derive(InputObject)]
pub struct LogStudySessionInput {
    pub subject: String,
    pub minutes: i32,
    /// Defaults to `minutes` before now.
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
}
