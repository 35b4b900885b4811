//! `verify --erased <id>`: confirms that `deleteAccount` left nothing of an
//! account behind. After an erasure:
//!
//! - no live MongoDB document (tombstones are not live) holds the account's
//!   id in any field, at any depth, in any collection of the read model;
//! - no MongoDB document, tombstones included, holds the account's email
//!   (in any letter case, inside any text) or a field equal to its name;
//! - no CockroachDB row refers to the account's id (accounts, todos,
//!   sessions, totals, memberships, rooms, messages), and neither an account
//!   row nor any outbox payload, processed or not, holds its email or its
//!   name as a value.
//!
//! The name and email are no longer stored anywhere, so the operator gives
//! them (from the erasure request). Every document and every outbox row is
//! read: this is an audit, not a request path.
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use uuid::Uuid;

use crate::{error::AppResult, sync::SyncContext};

/// What to look for.
#[derive(Debug, Clone)]
pub struct Erased {
    pub user_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// One thing left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `mongodb:<collection>` or `cockroachdb:<table>`.
    pub place: String,
    /// The document's `_id` or the row's key.
    pub key: String,
    pub what: &'static str,
}

/// Everything the check found; empty when the account is erased.
#[derive(Debug, Clone, Default)]
pub struct ErasureReport {
    pub documents_read: u64,
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for ErasureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "read {} document(s); {} finding(s)",
            self.documents_read,
            self.findings.len()
        )?;
        for finding in &self.findings {
            writeln!(f, "  {} {}: {}", finding.place, finding.key, finding.what)?;
        }
        Ok(())
    }
}

/// Runs every check.
#[tracing::instrument(skip_all, fields(user_id = %erased.user_id))]
pub async fn check(state: &SyncContext, erased: &Erased) -> AppResult<ErasureReport> {
    let mut report = ErasureReport::default();
    check_documents(state.read_model(), erased, &mut report).await?;
    check_rows(state.sql(), erased, &mut report).await?;
    Ok(report)
}

/// What a string value reveals, if anything.
struct Needles {
    id: String,
    name: Option<String>,
    email: Option<String>,
}

impl Needles {
    fn new(erased: &Erased) -> Self {
        Self {
            id: erased.user_id.to_string(),
            name: erased.name.clone(),
            email: erased.email.as_ref().map(|e| e.to_lowercase()),
        }
    }

    /// Walks `value`, noting each kind of finding once.
    fn scan(&self, value: &Bson, live: bool, found: &mut Vec<&'static str>) {
        let mut note = |what: &'static str| {
            if !found.contains(&what) {
                found.push(what);
            }
        };
        match value {
            Bson::String(text) => {
                if live && *text == self.id {
                    note("a live document refers to the account");
                }
                if self.name.as_deref() == Some(text.as_str()) {
                    note("holds the account's name");
                }
                if let Some(email) = &self.email {
                    if text.to_lowercase().contains(email.as_str()) {
                        note("holds the account's email");
                    }
                }
            }
            Bson::Array(items) => items.iter().for_each(|v| self.scan(v, live, found)),
            Bson::Document(doc) => doc.values().for_each(|v| self.scan(v, live, found)),
            _ => {}
        }
    }
}

async fn check_documents(
    db: &mongodb::Database,
    erased: &Erased,
    report: &mut ErasureReport,
) -> AppResult<()> {
    let needles = Needles::new(erased);
    let mut collections = db.list_collection_names().await?;
    collections.sort();
    for collection in collections {
        let mut cursor = db
            .collection::<Document>(&collection)
            .find(Document::new())
            .await?;
        while let Some(doc) = cursor.try_next().await? {
            report.documents_read += 1;
            let live = !doc.get_bool("deleted").unwrap_or(false);
            let mut found = Vec::new();
            needles.scan(&Bson::Document(doc.clone()), live, &mut found);
            for what in found {
                report.findings.push(Finding {
                    place: format!("mongodb:{collection}"),
                    key: super::readmodel::id_of(&doc),
                    what,
                });
            }
        }
    }
    Ok(())
}

/// `(table, key expression, condition)`: rows that refer to the account.
const REFERENCES: [(&str, &str, &str); 7] = [
    ("users", "id::TEXT", "id = $1"),
    ("todos", "id::TEXT", "user_id = $1"),
    ("study_sessions", "id::TEXT", "user_id = $1"),
    ("study_totals", "id::TEXT", "user_id = $1"),
    ("room_members", "room_id::TEXT", "user_id = $1"),
    ("rooms", "id::TEXT", "created_by = $1"),
    ("messages", "id::TEXT", "sender_id = $1"),
];

/// At most this many rows are named per check.
const NAMED: i64 = 20;

async fn check_rows(
    db: &impl ConnectionTrait,
    erased: &Erased,
    report: &mut ErasureReport,
) -> AppResult<()> {
    for (table, key, condition) in REFERENCES {
        let sql = format!("SELECT {key} FROM {table} WHERE {condition} LIMIT {NAMED}");
        let keys = keys(db, &sql, vec![erased.user_id.into()]).await?;
        note(report, table, keys, "refers to the account");
    }
    if let Some(email) = &erased.email {
        let keys = keys(
            db,
            "SELECT id::TEXT FROM users WHERE lower(email) = lower($1) LIMIT 20",
            vec![email.as_str().into()],
        )
        .await?;
        note(report, "users", keys, "holds the account's email");
        let pattern = format!("%{}%", like_escaped(email));
        let keys = keys_of_outbox(db, "CAST(payload AS TEXT) ILIKE $1", pattern).await?;
        note(report, "outbox", keys, "holds the account's email");
    }
    if let Some(name) = &erased.name {
        // A JSON string equal to the name, as the payload's text spells it.
        let quoted = serde_json::to_string(name).unwrap_or_default();
        let pattern = format!("%{}%", like_escaped(&quoted));
        let keys = keys_of_outbox(db, "CAST(payload AS TEXT) LIKE $1", pattern).await?;
        note(report, "outbox", keys, "holds the account's name");
    }
    Ok(())
}

async fn keys_of_outbox(
    db: &impl ConnectionTrait,
    condition: &str,
    pattern: String,
) -> AppResult<Vec<String>> {
    let sql = format!("SELECT id::TEXT FROM outbox WHERE {condition} LIMIT {NAMED}");
    keys(db, &sql, vec![pattern.into()]).await
}

async fn keys(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> AppResult<Vec<String>> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect())
}

fn note(report: &mut ErasureReport, table: &str, keys: Vec<String>, what: &'static str) {
    report.findings.extend(keys.into_iter().map(|key| Finding {
        place: format!("cockroachdb:{table}"),
        key,
        what,
    }));
}

/// `text` as a LIKE pattern that matches only itself (`\` is the default
/// escape character of both databases).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn ids_count_in_live_documents_and_names_and_emails_in_any() {
        let id = Uuid::new_v4();
        let needles = Needles::new(&Erased {
            user_id: id,
            name: Some("Ada Lovelace".into()),
            email: Some("Ada@Example.org".into()),
        });
        let scan = |doc: Document, live: bool| {
            let mut found = Vec::new();
            needles.scan(&Bson::Document(doc), live, &mut found);
            found
        };
        let nested = doc! {"entries": [{"user_id": id.to_string(), "minutes": 5}]};
        assert_eq!(scan(nested.clone(), true).len(), 1);
        assert!(
            scan(nested, false).is_empty(),
            "a tombstone may keep its id"
        );
        let named = doc! {"name": "Ada Lovelace", "email": "ada@example.org"};
        assert_eq!(scan(named.clone(), false).len(), 2);
        assert!(scan(doc! {"body": "Ada Lovelace wrote the first program"}, true).is_empty());
        assert!(scan(doc! {"name": "Ada"}, true).is_empty());
        assert_eq!(like_escaped("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
