//! The read model's change streams. They are how messages committed through
//! other instances reach this instance's subscribers (and how dashboards
//! hear that a leaderboard top changed): the worker that applies a
//! message (in whichever process) inserts its document, and every instance
//! watching `messages` hears of it. Nothing new runs for it: production
//! MongoDB is a replica set, and change streams are its own feature.
//!
//! The stream is open only while this instance has subscribers to feed.
//!
//! The stream only carries; subscribers order by each message's number and
//! read any they missed from CockroachDB (see `graphql::live`), so an
//! interrupted stream, one reopened after its resume point was lost, or a
//! message heard twice costs nothing but latency.
use std::time::Duration;

use futures::StreamExt;
use mongodb::{
    bson::{doc, Document},
    change_stream::event::{ChangeStreamEvent, ResumeToken},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::history;
use crate::{
    entity::messages,
    sync::boards::{self, COLLECTION},
};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// One collection an instance follows: which of its changes, what to do
/// with each, and what to do when some may have been missed (the stream had
/// to start afresh: the server no longer had its resume point, or it never
/// opened).
pub struct Route {
    collection: &'static str,
    operations: &'static [&'static str],
    carry: Box<dyn Fn(ChangeStreamEvent<Document>) + Send + Sync>,
    missed: Box<dyn Fn() + Send + Sync>,
}

impl Route {
    fn new(
        collection: &'static str,
        operations: &'static [&'static str],
        carry: impl Fn(ChangeStreamEvent<Document>) + Send + Sync + 'static,
        missed: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            collection,
            operations,
            carry: Box::new(carry),
            missed: Box::new(missed),
        }
    }
}

/// Hands every message document inserted (or replaced) in the read model to
/// `publish`, and every message tombstone to `deleted` (room, message,
/// change number).
pub fn messages(
    publish: impl Fn(messages::Model) + Send + Sync + 'static,
    deleted: impl Fn(uuid::Uuid, uuid::Uuid, i64) + Send + Sync + 'static,
    missed: impl Fn() + Send + Sync + 'static,
) -> Route {
    let carry = move |change: ChangeStreamEvent<Document>| {
        let Some(document) = change.full_document else {
            return;
        };
        if document.get_bool("deleted").unwrap_or(false) {
            // Where it was (tombstones written by `resync` do not say).
            let Ok(was) = document.get_document("was") else {
                return;
            };
            let room = was.get_str("room_id").ok().and_then(|r| r.parse().ok());
            let id = document.get_str("_id").ok().and_then(|i| i.parse().ok());
            if let (Some(room), Some(id), Ok(number)) = (room, id, was.get_i64("event_seq")) {
                deleted(room, id, number);
            }
            return;
        }
        match history::message(&document) {
            Ok(message) => publish(message),
            Err(error) => {
                tracing::warn!(error = %error.chain(), "a message document could not be read");
            }
        }
    };
    Route::new("messages", &["insert", "replace"], carry, missed)
}

/// Calls `changed` with the `_id` of every leaderboard top the worker
/// writes (see `sync::boards`).
pub fn boards(
    changed: impl Fn(&str) + Send + Sync + 'static,
    missed: impl Fn() + Send + Sync + 'static,
) -> Route {
    let carry = move |change: ChangeStreamEvent<Document>| {
        if let Some(key) = change
            .document_key
            .as_ref()
            .and_then(|k| k.get_str("_id").ok())
        {
            changed(key);
        }
    };
    Route::new(COLLECTION, &["insert", "replace", "update"], carry, missed)
}

/// Calls `changed` with the id of every room whose document a worker
/// rewrites (a member joined or left).
pub fn rooms(
    changed: impl Fn(uuid::Uuid) + Send + Sync + 'static,
    missed: impl Fn() + Send + Sync + 'static,
) -> Route {
    let carry = move |change: ChangeStreamEvent<Document>| {
        let id = change
            .document_key
            .as_ref()
            .and_then(|k| k.get_str("_id").ok());
        if let Some(room_id) = id.and_then(|id| uuid::Uuid::parse_str(id).ok()) {
            changed(room_id);
        }
    };
    Route::new("rooms", &["replace", "update", "delete"], carry, missed)
}

/// Calls `changed` with [`boards::totals_key_of`] the bucket of every study
/// total a worker writes.
pub fn totals(
    changed: impl Fn(&str) + Send + Sync + 'static,
    missed: impl Fn() + Send + Sync + 'static,
) -> Route {
    let carry = move |change: ChangeStreamEvent<Document>| {
        let Some(total) = change.full_document else {
            return;
        };
        // A deleted total's tombstone says which bucket it left.
        let bucket = total.get_document("was").unwrap_or(&total);
        if let (Ok(period), Ok(start)) = (bucket.get_str("period"), bucket.get_str("period_start"))
        {
            changed(&boards::totals_key_of(period, start));
        }
    };
    Route::new("study_totals", &["insert", "replace"], carry, missed)
}

/// Follows the changes `routes` ask for, until `stop`, in one change stream
/// on the whole database (one cursor on the oplog per instance, however
/// many collections it follows), handing each to its collection's route.
///
/// The stream is open only while `listeners` (this instance's subscriptions
/// that follow other instances' changes) is above zero, and closes once it
/// has been zero for `idle`: an instance nobody subscribes to makes the
/// read model evaluate no stream for it. Reopens after a failure, resuming
/// after the last event seen; whenever a stream starts afresh instead (its
/// first opening, after an idle close, or when the server no longer has the
/// resume point) every route's `missed` is called once it is open, so the
/// subscriptions that were waiting for it read what committed meanwhile.
pub async fn follow(
    db: mongodb::Database,
    routes: Vec<Route>,
    mut listeners: watch::Receiver<usize>,
    idle: Duration,
    stop: CancellationToken,
) {
    let filter = doc! {"$or": routes.iter().map(|route| doc! {
        "ns.coll": route.collection,
        "operationType": {"$in": route.operations},
    }).collect::<Vec<_>>()};
    let carry = |change: ChangeStreamEvent<Document>| {
        let collection = change.ns.as_ref().and_then(|ns| ns.coll.as_deref());
        if let Some(route) = routes.iter().find(|r| Some(r.collection) == collection) {
            (route.carry)(change);
        }
    };
    let missed = || routes.iter().for_each(|route| (route.missed)());
    let open = metrics::gauge!("studysync_change_streams_open");
    let mut resume: Option<ResumeToken> = None;
    let mut retry = FIRST_RETRY;
    loop {
        if *listeners.borrow() == 0 {
            // Whatever the stream missed meanwhile, nobody was waiting for.
            resume = None;
        }
        let heard = tokio::select! {
            () = stop.cancelled() => return,
            heard = listeners.wait_for(|n| *n > 0) => heard.is_ok(),
        };
        if !heard {
            return;
        }
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = db
                .watch()
                .pipeline([doc! {"$match": filter.clone()}])
                .resume_after(resume.clone()) => opened,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, resuming = resume.is_some(), "opening the change stream failed");
                // A resume point the server has dropped would fail forever.
                resume = None;
                if pause(&stop, &mut retry).await {
                    return;
                }
                continue;
            }
        };
        retry = FIRST_RETRY;
        open.increment(1.0);
        tracing::debug!(resumed = resume.is_some(), "change stream open");
        if resume.is_none() {
            missed();
        }
        let unheard = unheard_for(listeners.clone(), idle);
        tokio::pin!(unheard);
        let broke = loop {
            let event = tokio::select! {
                () = stop.cancelled() => {
                    open.decrement(1.0);
                    return;
                }
                () = &mut unheard => break false,
                event = stream.next() => event,
            };
            match event {
                Some(Ok(change)) => {
                    resume = stream.resume_token().or(Some(change.id.clone()));
                    carry(change);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "the change stream broke; reopening");
                    break true;
                }
                None => break true,
            }
        };
        open.decrement(1.0);
        if !broke {
            // Nobody listens: the next listener starts a fresh stream.
            tracing::debug!("change stream closed: no subscription follows it");
            resume = None;
            continue;
        }
        if pause(&stop, &mut retry).await {
            return;
        }
    }
}

/// Resolves once `listeners` has stayed at zero for `idle` (or its sender
/// is gone).
async fn unheard_for(mut listeners: watch::Receiver<usize>, idle: Duration) {
    loop {
        if listeners.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(idle) => return,
            _ = listeners.wait_for(|n| *n > 0) => {}
        }
    }
}

/// Waits before the next attempt (doubling, capped); true when stopped.
async fn pause(stop: &CancellationToken, retry: &mut Duration) -> bool {
    let wait = *retry;
    *retry = (*retry * 2).min(LAST_RETRY);
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}
