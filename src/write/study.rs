//! Study sessions, and the per-period totals maintained beside them.
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    EntityTrait, TryIntoModel,
};
use uuid::Uuid;

use super::{
    outbox::{self, NewEvent},
    Committed, Tx, Writer,
};
use crate::{
    domain::{Minutes, Period, StartedAt, Subject},
    entity::{study_sessions, study_totals},
    error::AppResult,
    events::{StudySessionDoc, StudyTotalDoc},
};

/// Records a session and adds it to the user's day, week, month and all-time
/// totals, all in one transaction. The totals are events of their own, carrying
/// the new absolute figures, so replaying them cannot double-count.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn log_session(
    writer: &Writer,
    user_id: Uuid,
    subject: Subject,
    minutes: Minutes,
    started_at: StartedAt,
) -> AppResult<Committed<study_sessions::Model>> {
    writer
        .transact(move |tx| {
            let subject = subject.clone();
            Box::pin(async move {
                let now = crate::domain::now();
                let row = study_sessions::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    user_id: Set(user_id),
                    subject: Set(subject.into_inner()),
                    minutes: Set(minutes.get()),
                    started_at: Set(started_at.get()),
                    version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                // The totals first, so the session's own insert carries every
                // event of the transaction.
                let session = row.clone().try_into_model()?;
                let mut totals = Vec::with_capacity(Period::ALL.len());
                for period in Period::ALL {
                    totals.push(add_to_total(tx, &session, period).await?);
                }
                outbox::insert_with(tx, row, |session| {
                    let mut events = vec![NewEvent::upsert(
                        session.id,
                        session.version,
                        "study_session.logged",
                        StudySessionDoc::from(session),
                    )];
                    events.append(&mut totals);
                    events
                })
                .await
            })
        })
        .await
}

/// Upserts one bucket (`minutes += m, sessions += 1, version += 1`) and
/// returns the event carrying its new state.
async fn add_to_total(
    tx: &Tx,
    session: &study_sessions::Model,
    period: Period,
) -> AppResult<NewEvent> {
    use study_totals::Column as C;
    let start = period.bucket_start(session.started_at);
    let now = crate::domain::now();
    let row = study_totals::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(session.user_id),
        period: Set(period.key().to_owned()),
        period_start: Set(start),
        minutes: Set(i64::from(session.minutes)),
        sessions: Set(1),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let total = study_totals::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::UserId, C::Period, C::PeriodStart])
                .value(
                    C::Minutes,
                    Expr::col((study_totals::Entity, C::Minutes)).add(i64::from(session.minutes)),
                )
                .value(
                    C::Sessions,
                    Expr::col((study_totals::Entity, C::Sessions)).add(1),
                )
                .value(
                    C::Version,
                    Expr::col((study_totals::Entity, C::Version)).add(1),
                )
                .value(C::UpdatedAt, now)
                .to_owned(),
        )
        .exec_with_returning(tx.conn())
        .await?;
    Ok(NewEvent::upsert(
        total.id,
        total.version,
        "study_total.updated",
        StudyTotalDoc::from(&total),
    ))
}
