//! Indexes of the read model, created at start-up. `createIndexes` with the
//! same name and keys is a no-op, so every instance may run this.
use std::time::Duration;

use mongodb::{bson::doc, IndexModel};

use crate::error::AppResult;

/// `(collection, name, keys)` of every index the routed queries rely on.
fn indexes() -> Vec<(&'static str, &'static str, mongodb::bson::Document)> {
    vec![
        // chat history: one room, newest first
        (
            "messages",
            "room_history",
            doc! {"room_id": 1, "created_at": -1, "_id": -1},
        ),
        // message search: word or prefix, then room, newest first
        (
            "messages",
            "search_words",
            doc! {"search_words": 1, "room_id": 1, "created_at": -1, "_id": -1},
        ),
        (
            "messages",
            "search_prefixes",
            doc! {"search_prefixes": 1, "room_id": 1, "created_at": -1, "_id": -1},
        ),
        (
            "users",
            "search_words",
            doc! {"search_words": 1, "created_at": -1, "_id": -1},
        ),
        (
            "users",
            "search_prefixes",
            doc! {"search_prefixes": 1, "created_at": -1, "_id": -1},
        ),
        // leaderboard pages and myRank's count of better rows
        (
            "study_totals",
            "board",
            doc! {"period": 1, "period_start": 1, "minutes": -1, "user_id": 1},
        ),
        (
            "study_totals",
            "user_bucket",
            doc! {"user_id": 1, "period": 1, "period_start": 1},
        ),
        // studyStats per user, dashboard per period
        (
            "study_sessions",
            "user_started",
            doc! {"user_id": 1, "started_at": 1},
        ),
        ("study_sessions", "started", doc! {"started_at": 1}),
        (
            "todos",
            "user_created",
            doc! {"user_id": 1, "created_at": 1},
        ),
        ("todos", "created", doc! {"created_at": 1}),
    ]
}

/// Creates the read model's indexes (idempotent).
#[tracing::instrument(skip_all)]
pub async fn ensure_indexes(db: &mongodb::Database) -> AppResult<()> {
    for (collection, name, keys) in indexes() {
        let options = mongodb::options::IndexOptions::builder()
            .name(name.to_owned())
            .build();
        let model = IndexModel::builder().keys(keys).options(options).build();
        db.collection::<mongodb::bson::Document>(collection)
            .create_index(model)
            .await?;
    }
    Ok(())
}

/// Creates the indexes before this instance's worker writes its first batch,
/// so every collection exists, with its indexes, before documents reach it:
/// each index then grows with its collection, and no write creates a
/// collection while `createIndexes` creates the same one. If MongoDB does not
/// answer, the instance starts anyway and the indexes are retried in the
/// background.
pub async fn ensure_indexes_at_start(db: &mongodb::Database) {
    if let Err(err) = ensure_indexes(db).await {
        tracing::warn!(error = %err.chain(), "read model indexes not created yet; retrying in the background");
        ensure_indexes_in_background(db.clone());
    }
}

/// Retries [`ensure_indexes`] until it succeeds, so an instance that started
/// while MongoDB was down still gets its indexes once MongoDB is back.
pub fn ensure_indexes_in_background(db: mongodb::Database) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        loop {
            match ensure_indexes(&db).await {
                Ok(()) => {
                    tracing::info!("read model indexes are in place");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err.chain(), ?delay, "creating read model indexes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    })
}
