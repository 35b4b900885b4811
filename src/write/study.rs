//! Study sessions, and the per-period totals maintained beside them.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveModelTrait,
    ActiveValue::Set,
    EntityTrait, IntoActiveModel, ModelTrait,
};
use uuid::Uuid;

use super::{
    outbox::{self, NewEvent},
    Committed, Tx, Writer,
};
use crate::{
    domain::{Minutes, Period, StartedAt, Subject},
    entity::{study_sessions, study_totals},
    error::{AppError, AppResult},
    events::{Aggregate, StudySessionDoc, StudyTotalDoc, Was},
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
                let mut changes = Changes::new();
                count_session(&mut changes, (started_at.get(), minutes.get()), 1);
                let mut totals = apply_changes(tx, user_id, changes).await?;
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

/// Per bucket, the change to its minutes and sessions.
type Changes = BTreeMap<(Period, NaiveDate), (i64, i64)>;

/// Adds a session of `minutes` that started at `started_at` to every
/// period bucket it falls in (with `sign` -1, takes it away).
fn count_session(changes: &mut Changes, (started_at, minutes): (DateTime<Utc>, i32), sign: i64) {
    for period in Period::ALL {
        let change = changes
            .entry((period, period.bucket_start(started_at)))
            .or_insert((0, 0));
        change.0 += sign * i64::from(minutes);
        change.1 += sign;
    }
}

/// Applies the per-bucket changes (minutes, sessions) of `changes`, in a
/// stable order, skipping those that cancel out; one event per bucket.
async fn apply_changes(tx: &Tx, user_id: Uuid, changes: Changes) -> AppResult<Vec<NewEvent>> {
    let mut events = Vec::with_capacity(changes.len());
    for ((period, start), (minutes, sessions)) in changes {
        if (minutes, sessions) == (0, 0) {
            continue;
        }
        events.push(adjust_total(tx, user_id, period, start, minutes, sessions).await?);
    }
    Ok(events)
}

/// Changes one bucket by `minutes` and `sessions` (`+= m, += s, version +=
/// 1`, created at the first session) and returns the event carrying its new
/// state. A bucket left with no session is deleted, so it leaves every
/// board, rank and report; its tombstone names the bucket, for the boards.
async fn adjust_total(
    tx: &Tx,
    user_id: Uuid,
    period: Period,
    start: NaiveDate,
    minutes: i64,
    sessions: i64,
) -> AppResult<NewEvent> {
    use study_totals::Column as C;
    let now = crate::domain::now();
    let row = study_totals::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        period: Set(period.key().to_owned()),
        period_start: Set(start),
        minutes: Set(minutes),
        sessions: Set(sessions),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let total = study_totals::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::UserId, C::Period, C::PeriodStart])
                .value(
                    C::Minutes,
                    Expr::col((study_totals::Entity, C::Minutes)).add(minutes),
                )
                .value(
                    C::Sessions,
                    Expr::col((study_totals::Entity, C::Sessions)).add(sessions),
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
    if total.sessions <= 0 {
        study_totals::Entity::delete_by_id(total.id)
            .exec(tx.conn())
            .await?;
        let was = Was {
            period: Some(total.period.clone()),
            period_start: Some(total.period_start),
            ..Was::default()
        };
        return Ok(NewEvent::deleted_at(
            Aggregate::StudyTotal,
            total.id,
            total.version + 1,
            "study_total.emptied",
            &was,
        ));
    }
    Ok(NewEvent::upsert(
        total.id,
        total.version,
        "study_total.updated",
        StudyTotalDoc::from(&total),
    ))
}

/// What `updateStudySession` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SessionChange {
    pub subject: Option<Subject>,
    pub minutes: Option<Minutes>,
    pub started_at: Option<StartedAt>,
}

/// The caller's own session, read in the transaction.
async fn owned(tx: &Tx, owner: Uuid, id: Uuid) -> AppResult<study_sessions::Model> {
    let session = study_sessions::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or(AppError::NotFound("study session"))?;
    if session.user_id != owner {
        return Err(AppError::Forbidden(
            "this study session belongs to another user",
        ));
    }
    Ok(session)
}

/// Corrects a session; its old figures leave the totals of the buckets it
/// was in and its new ones join those it is in now, in the same
/// transaction.
#[tracing::instrument(skip_all, fields(user_id = %owner, session_id = %id))]
pub async fn update_session(
    writer: &Writer,
    owner: Uuid,
    id: Uuid,
    change: SessionChange,
) -> AppResult<Committed<study_sessions::Model>> {
    writer
        .transact(move |tx| {
            let change = change.clone();
            Box::pin(async move {
                let current = owned(tx, owner, id).await?;
                let mut changes = BTreeMap::new();
                let before = (current.started_at, current.minutes);
                let after = (
                    change.started_at.map_or(current.started_at, StartedAt::get),
                    change.minutes.map_or(current.minutes, Minutes::get),
                );
                count_session(&mut changes, before, -1);
                count_session(&mut changes, after, 1);
                let mut events = apply_changes(tx, owner, changes).await?;
                let version = current.version + 1;
                let mut row = current.into_active_model();
                if let Some(subject) = change.subject {
                    row.subject = Set(subject.into_inner());
                }
                row.started_at = Set(after.0);
                row.minutes = Set(after.1);
                row.version = Set(version);
                row.updated_at = Set(crate::domain::now());
                let session = row.update(tx.conn()).await?;
                events.insert(
                    0,
                    NewEvent::upsert(
                        session.id,
                        session.version,
                        "study_session.updated",
                        StudySessionDoc::from(&session),
                    ),
                );
                outbox::enqueue_all(tx, events).await?;
                Ok(session)
            })
        })
        .await
}

/// Deletes a session; its figures leave its buckets' totals in the same
/// transaction, and a tombstone one version above it stops a late event
/// from bringing its document back.
#[tracing::instrument(skip_all, fields(user_id = %owner, session_id = %id))]
pub async fn delete_session(writer: &Writer, owner: Uuid, id: Uuid) -> AppResult<Committed<Uuid>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let current = owned(tx, owner, id).await?;
                let mut changes = BTreeMap::new();
                let before = (current.started_at, current.minutes);
                count_session(&mut changes, before, -1);
                let mut events = apply_changes(tx, owner, changes).await?;
                let version = current.version + 1;
                current.delete(tx.conn()).await?;
                events.insert(
                    0,
                    NewEvent::deleted(
                        Aggregate::StudySession,
                        id,
                        version,
                        "study_session.deleted",
                    ),
                );
                outbox::enqueue_all(tx, events).await?;
                Ok(id)
            })
        })
        .await
}
