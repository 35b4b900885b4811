//! The read model's change streams. They are how messages committed through
//! other instances reach this instance's subscribers (and how dashboards
//! hear that a leaderboard top changed): the worker that applies a
//! message (in whichever process) inserts its document, and every instance
//! watching `messages` hears of it. Nothing new runs for it: production
//! MongoDB is a replica set, and change streams are its own feature.
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
    Collection,
};
use tokio_util::sync::CancellationToken;

use super::history;
use crate::{
    entity::messages,
    sync::boards::{self, COLLECTION},
};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Hands every message document inserted (or replaced) in the read model to
/// `publish`, and every message tombstone to `deleted` (room, message,
/// change number), until `stop`. Reopens after a failure, resuming after
/// the last event seen; when it has to start afresh instead (the server no
/// longer has that point, or it never opened), events may have been missed
/// and `missed` is called once the new stream is open.
pub async fn carry_messages(
    db: mongodb::Database,
    publish: impl Fn(messages::Model) + Send,
    deleted: impl Fn(uuid::Uuid, uuid::Uuid, i64) + Send,
    missed: impl Fn() + Send,
    stop: CancellationToken,
) {
    let filter = doc! {"operationType": {"$in": ["insert", "replace"]}};
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
    follow(db.collection("messages"), filter, carry, missed, stop).await;
}

/// Calls `changed` with the `_id` of every leaderboard top the worker
/// writes (see `sync::boards`), until `stop`; `missed` as for
/// [`carry_messages`].
pub async fn watch_boards(
    db: mongodb::Database,
    changed: impl Fn(&str) + Send,
    missed: impl Fn() + Send,
    stop: CancellationToken,
) {
    let filter = doc! {"operationType": {"$in": ["insert", "replace", "update"]}};
    let carry = move |change: ChangeStreamEvent<Document>| {
        if let Some(key) = change
            .document_key
            .as_ref()
            .and_then(|k| k.get_str("_id").ok())
        {
            changed(key);
        }
    };
    follow(db.collection(COLLECTION), filter, carry, missed, stop).await;
}

/// Calls `changed` with the id of every room whose document a worker
/// rewrites (a member joined or left), until `stop`; `missed` as for
/// [`carry_messages`].
pub async fn watch_rooms(
    db: mongodb::Database,
    changed: impl Fn(uuid::Uuid) + Send,
    missed: impl Fn() + Send,
    stop: CancellationToken,
) {
    let filter = doc! {"operationType": {"$in": ["replace", "update", "delete"]}};
    let carry = move |change: ChangeStreamEvent<Document>| {
        let id = change
            .document_key
            .as_ref()
            .and_then(|k| k.get_str("_id").ok());
        if let Some(room_id) = id.and_then(|id| uuid::Uuid::parse_str(id).ok()) {
            changed(room_id);
        }
    };
    follow(db.collection("rooms"), filter, carry, missed, stop).await;
}

/// Calls `changed` with [`boards::totals_key_of`] the bucket of every study
/// total a worker writes, until `stop`; `missed` as for [`carry_messages`].
pub async fn watch_totals(
    db: mongodb::Database,
    changed: impl Fn(&str) + Send,
    missed: impl Fn() + Send,
    stop: CancellationToken,
) {
    let filter = doc! {"operationType": {"$in": ["insert", "replace"]}};
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
    follow(db.collection("study_totals"), filter, carry, missed, stop).await;
}

/// Follows the changes of `collection` that `filter` matches, resuming
/// after each break where it stopped.
async fn follow(
    collection: Collection<Document>,
    filter: Document,
    carry: impl Fn(ChangeStreamEvent<Document>) + Send,
    missed: impl Fn() + Send,
    stop: CancellationToken,
) {
    let mut resume: Option<ResumeToken> = None;
    let mut retry = FIRST_RETRY;
    // Nothing can have been missed before the first stream opens.
    let mut lost = false;
    loop {
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = collection
                .watch()
                .pipeline([doc! {"$match": filter.clone()}])
                .resume_after(resume.clone()) => opened,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, collection = collection.name(), resuming = resume.is_some(), "opening a change stream failed");
                // A resume point the server has dropped would fail forever.
                resume = None;
                lost = true;
                if pause(&stop, &mut retry).await {
                    return;
                }
                continue;
            }
        };
        retry = FIRST_RETRY;
        if std::mem::take(&mut lost) {
            missed();
        }
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = stream.next() => event,
            };
            match event {
                Some(Ok(change)) => {
                    resume = stream.resume_token().or(Some(change.id.clone()));
                    carry(change);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, collection = collection.name(), "a change stream broke; reopening");
                    lost |= resume.is_none();
                    break;
                }
                None => {
                    lost |= resume.is_none();
                    break;
                }
            }
        }
        if pause(&stop, &mut retry).await {
            return;
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
