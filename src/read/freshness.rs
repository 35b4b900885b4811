//! How far behind the read model is: whether MongoDB holds given aggregate
//! versions (consistency tokens), and the age of the oldest unapplied write.
use std::collections::HashMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{error::AppResult, pool::Db, write::EventRef};

/// Whether MongoDB holds every named aggregate at (or past) its version.
#[tracing::instrument(skip_all, fields(aggregates = refs.len()))]
pub async fn caught_up(mongo: &mongodb::Database, refs: &[&EventRef]) -> AppResult<bool> {
    let mut by_collection: HashMap<&'static str, Vec<&EventRef>> = HashMap::new();
    for r in refs {
        by_collection
            .entry(r.aggregate.collection())
            .or_default()
            .push(r);
    }
    for (collection, refs) in by_collection {
        let ids: Vec<String> = refs.iter().map(|r| r.aggregate_id.to_string()).collect();
        let docs: Vec<Document> = mongo
            .collection::<Document>(collection)
            .find(doc! {"_id": {"$in": ids}})
            .projection(doc! {"version": 1})
            .await?
            .try_collect()
            .await?;
        let versions: HashMap<String, i64> = docs
            .iter()
            .filter_map(|d| {
                let version = match d.get("version")? {
                    mongodb::bson::Bson::Int64(v) => *v,
                    mongodb::bson::Bson::Int32(v) => i64::from(*v),
                    _ => return None,
                };
                Some((d.get_str("_id").ok()?.to_owned(), version))
            })
            .collect();
        let behind = refs.iter().any(|r| {
            versions
                .get(&r.aggregate_id.to_string())
                .is_none_or(|v| *v < r.version)
        });
        if behind {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Seconds since the oldest unapplied (pending, not parked) outbox event was
/// written, by the database clock; 0 when nothing is pending.
#[tracing::instrument(skip_all)]
pub async fn measure_lag(sql: &Db) -> AppResult<f64> {
    let row = sql
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            crate::sync::outbox::lag_seconds_sql!(),
        ))
        .await?;
    let lag: Option<f64> = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    Ok(lag.unwrap_or(0.0).max(0.0))
}
