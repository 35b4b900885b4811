//! Persisted and trusted documents: which document text a request runs.
//!
//! - **Automatic persisted queries** (Apollo's protocol, on by default): a
//!   request may send only `extensions.persistedQuery.sha256Hash`. A hash
//!   the server knows runs its document; an unknown one is answered
//!   `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`), and the
//!   client sends the hash with the text once, which registers it after it
//!   passes the front door. Registered documents live in CockroachDB
//!   (`persisted_documents`), so a hash registered through one instance runs
//!   on every instance, and GET requests that carry only the hash are short
//!   enough for a CDN to cache. At most `PERSISTED_QUERIES_MAX` are kept.
//! - **Trusted documents** (`TRUSTED_DOCUMENTS=<manifest.json>`, for
//!   production): only the manifest's documents run, by id
//!   (`extensions.persistedQuery.sha256Hash`, or `documentId` / `doc_id` in
//!   the request) or by their exact text. An unknown id is
//!   `PERSISTED_QUERY_NOT_IN_LIST`, any other text
//!   `QUERY_NOT_IN_PERSISTED_QUERY_LIST`, and nothing is registered. Every
//!   instance reads the same file, so every instance answers alike. Both
//!   formats the tooling emits are read: Apollo's
//!   (`{"format": "apollo-persisted-query-manifest", "operations": [{"id",
//!   "body", ...}]}`) and Relay's or GraphQL Codegen's (`{"<id>": "<text>"}`).
//!
//! Resolution runs before the front door ([`super::limits::admit`]) on
//! every transport: the request's front door (`graphql::door`) calls
//! [`Documents::resolve`] for POST and websocket operations, and GET calls it
//! first (it must know the document to refuse a mutation); a resolved
//! request is marked and not resolved twice.
use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_graphql::{Request, ServerError, ServerResult, Value};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use sha2::{Digest, Sha256};

use super::limits::{admit, QueryLimits};
use crate::{app::AppState, config::documents::Manifest, error::coded, pool::Db};

/// The codes of this module's errors.
pub mod codes {
    pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    pub const NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
    pub const QUERY_NOT_IN_LIST: &str = "QUERY_NOT_IN_PERSISTED_QUERY_LIST";
}

/// Hashes kept in each instance's memory in front of the shared table.
const CACHED: usize = 1_000;

/// What a request names besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// `extensions.persistedQuery.sha256Hash` (automatic persisted queries,
    /// or a manifest id).
    Hash(String),
    /// `documentId` or `doc_id` (a manifest id, or a stored hash).
    Id(String),
}

/// Marks a request whose document is decided.
pub struct Resolved;

/// Decides which document each request runs (see the module docs).
pub struct Documents {
    manifest: Option<Manifest>,
    /// Automatic persisted queries: the shared table, `None` when off.
    store: Option<Db>,
    max_stored: u64,
    limits: QueryLimits,
    cache: Mutex<HashMap<String, Arc<str>>>,
}

/// The lowercase hex SHA-256 of a document, as Apollo's clients compute it.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Documents {
    pub fn new(
        manifest: Option<Manifest>,
        store: Option<Db>,
        max_stored: u64,
        limits: QueryLimits,
    ) -> Self {
        Self {
            manifest,
            store,
            max_stored,
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// What the configuration asks for. A manifest that no longer reads (it
    /// was checked at start-up) trusts nothing rather than everything.
    pub fn from_state(state: &AppState) -> Self {
        let config = state.config();
        let limits = QueryLimits::from_config(config);
        let manifest = config.query.trusted_documents.as_ref().map(|path| {
            Manifest::load(path).unwrap_or_else(|error| {
                tracing::error!(error = %format!("{error:#}"), "TRUSTED_DOCUMENTS cannot be read: no document is trusted");
                Manifest::default()
            })
        });
        let store = config.query.persisted_queries.then(|| state.sql().clone());
        Self::new(manifest, store, config.query.persisted_queries_max, limits)
    }

    /// Whether only the manifest's documents run.
    pub fn strict(&self) -> bool {
        self.manifest.is_some()
    }

    /// Sets the request's document from what it names, or refuses it.
    pub async fn resolve(&self, request: &mut Request) -> ServerResult<()> {
        if request.data.contains_key(&TypeId::of::<Resolved>()) {
            return Ok(());
        }
        let named = named(request)?;
        match &self.manifest {
            Some(manifest) => trusted(manifest, request, named)?,
            None => self.persisted(request, named).await?,
        }
        request.data.insert(Resolved);
        Ok(())
    }

    async fn persisted(&self, request: &mut Request, named: Option<Named>) -> ServerResult<()> {
        let Some(named) = named else {
            return Ok(());
        };
        let Some(store) = &self.store else {
            return Err(coded(
                codes::NOT_FOUND,
                "persisted queries are turned off on this server: send the query",
            ));
        };
        let hash = match named {
            Named::Hash(hash) | Named::Id(hash) => hash.to_ascii_lowercase(),
        };
        if request.query.is_empty() {
            let Some(body) = self.lookup(store, &hash).await? else {
                return Err(coded(codes::NOT_FOUND, "PersistedQueryNotFound"));
            };
            request.query = body.to_string();
            return Ok(());
        }
        if sha256_hex(&request.query) != hash {
            return Err(coded("BAD_USER_INPUT", "provided sha does not match query"));
        }
        // Registered only once it passes the front door.
        admit(request, &self.limits)?;
        self.register(store, &hash, &request.query).await;
        Ok(())
    }

    async fn lookup(&self, store: &Db, hash: &str) -> ServerResult<Option<Arc<str>>> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        if let Some(body) = self.cache.lock().ok().and_then(|c| c.get(hash).cloned()) {
            return Ok(Some(body));
        }
        let row = store
            .query_one(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT document FROM persisted_documents WHERE sha256 = $1",
                [hash.into()],
            ))
            .await
            .map_err(|e| ServerError::new(format!("reading persisted documents: {e}"), None))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let body: String = row
            .try_get_by_index(0)
            .map_err(|e| ServerError::new(format!("reading persisted documents: {e}"), None))?;
        let body: Arc<str> = Arc::from(body);
        self.remember(hash, body.clone());
        Ok(Some(body))
    }

    /// Stores a document under its hash unless the table is full; a failure
    /// only costs the next client a `PersistedQueryNotFound`.
    async fn register(&self, store: &Db, hash: &str, body: &str) {
        let stored = store
            .execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "INSERT INTO persisted_documents (sha256, document, created_at) \
                 SELECT $1, $2, now() \
                 WHERE (SELECT count(*) FROM persisted_documents) < $3 \
                 ON CONFLICT (sha256) DO NOTHING",
                [
                    hash.into(),
                    body.into(),
                    i64::try_from(self.max_stored).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await;
        match stored {
            Ok(_) => self.remember(hash, Arc::from(body)),
            Err(error) => {
                tracing::warn!(%error, "a persisted document could not be stored");
            }
        }
    }

    fn remember(&self, hash: &str, body: Arc<str>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHED {
                cache.clear();
            }
            cache.insert(hash.to_owned(), body);
        }
    }
}

fn trusted(manifest: &Manifest, request: &mut Request, named: Option<Named>) -> ServerResult<()> {
    match named {
        Some(Named::Hash(id) | Named::Id(id)) => {
            let Some(body) = manifest.get(&id) else {
                return Err(coded(
                    codes::NOT_IN_LIST,
                    "this document id is not in the server's list of trusted documents",
                ));
            };
            if !request.query.is_empty() && request.query.as_str() != &**body {
                return Err(coded(
                    codes::QUERY_NOT_IN_LIST,
                    "the query differs from the trusted document of this id",
                ));
            }
            request.query = body.to_string();
            Ok(())
        }
        None if manifest.contains_text(&request.query) => Ok(()),
        None => Err(coded(
            codes::QUERY_NOT_IN_LIST,
            "only trusted documents run on this server: send a listed document or its id",
        )),
    }
}

/// What the request names: a persisted-query hash or a document id.
fn named(request: &Request) -> ServerResult<Option<Named>> {
    if let Some(persisted) = request.extensions.get("persistedQuery") {
        let Value::Object(fields) = persisted else {
            return Err(coded(
                "BAD_REQUEST",
                "extensions.persistedQuery must be an object",
            ));
        };
        match fields.get("version") {
            Some(Value::Number(v)) if v.as_u64() == Some(1) => {}
            _ => {
                return Err(coded(
                    "BAD_REQUEST",
                    "extensions.persistedQuery.version must be 1",
                ))
            }
        }
        return match fields.get("sha256Hash") {
            Some(Value::String(hash)) => Ok(Some(Named::Hash(hash.clone()))),
            _ => Err(coded(
                "BAD_REQUEST",
                "extensions.persistedQuery.sha256Hash must be a string",
            )),
        };
    }
    match request.extensions.get(DOCUMENT_ID) {
        Some(Value::String(id)) => Ok(Some(Named::Id(id.clone()))),
        Some(_) => Err(coded("BAD_REQUEST", "documentId must be a string")),
        None => Ok(None),
    }
}

/// Where the HTTP parser keeps a request's `documentId` (or `doc_id`).
pub const DOCUMENT_ID: &str = "documentId";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_apollo_s() {
        // echo -n '{ __typename }' | sha256sum
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }
}
