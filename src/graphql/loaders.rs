//! Batched lookups for nested fields, created per request so nothing cached
//! crosses users. A page of N items costs one query per loader, not N.
use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use uuid::Uuid;

use crate::{
    app::AppState,
    entity::{rooms, users},
    error::AppError,
    read::sql,
};

pub type LoadError = Arc<AppError>;

pub struct UserLoader(pub AppState);

impl Loader<Uuid> for UserLoader {
    type Value = users::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.reads().count_loader_batch();
        sql::users_by_ids(self.0.sql(), keys)
            .await
            .map_err(Arc::new)
    }
}

pub struct RoomLoader(pub AppState);

impl Loader<Uuid> for RoomLoader {
    type Value = rooms::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.reads().count_loader_batch();
        sql::rooms_by_ids(self.0.sql(), keys)
            .await
            .map_err(Arc::new)
    }
}

/// Member ids per room.
pub struct MembersLoader(pub AppState);

impl Loader<Uuid> for MembersLoader {
    type Value = Vec<Uuid>;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.reads().count_loader_batch();
        sql::members_of_rooms(self.0.sql(), keys)
            .await
            .map_err(Arc::new)
    }
}

/// The per-request set of loaders.
///
/// Values are cached for the request, so a list resolver can prefetch what
/// its nodes will ask for in one batch per loader (see `graphql::prefetch`)
/// and the nested fields then cost no round trip at all.
pub struct Loaders {
    pub users: DataLoader<UserLoader, HashMapCache>,
    pub rooms: DataLoader<RoomLoader, HashMapCache>,
    pub members: DataLoader<MembersLoader, HashMapCache>,
    cached: bool,
}

impl Loaders {
    /// Every batch counts towards `AppState::reads().loader_batches()`.
    pub fn new(state: &AppState) -> Self {
        Self {
            users: DataLoader::with_cache(
                UserLoader(state.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            rooms: DataLoader::with_cache(
                RoomLoader(state.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            members: DataLoader::with_cache(
                MembersLoader(state.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            cached: true,
        }
    }

    /// Loads `keys` into `loader`'s cache as one batch, at once: a prefetch
    /// knows every key already, so it skips the loader's wait for more keys
    /// (and, for what is cached, the batch). Without a cache the nested
    /// fields load for themselves, so there is nothing to do.
    pub async fn prefetch<L, K>(
        &self,
        loader: &DataLoader<L, HashMapCache>,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<K, L::Value>, LoadError>
    where
        L: Loader<K, Error = LoadError>,
        K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    {
        if !self.cached {
            return Ok(HashMap::new());
        }
        let keys: Vec<K> = keys
            .into_iter()
            .collect::<std::collections::HashSet<K>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let values = loader.loader().load(&keys).await?;
        loader
            .feed_many(values.iter().map(|(k, v)| (k.clone(), v.clone())))
            .await;
        Ok(values)
    }
}

impl Loaders {
    /// Loaders that batch but never cache, for long-lived websocket
    /// connections whose events must show current names and members.
    pub fn uncached(state: &AppState) -> Self {
        let loaders = Self::new(state);
        loaders.users.enable_all_cache(false);
        loaders.rooms.enable_all_cache(false);
        loaders.members.enable_all_cache(false);
        Self {
            cached: false,
            ..loaders
        }
    }
}

/// Loader failures are internal; keep the cause for the log.
pub fn load_error(err: LoadError) -> AppError {
    AppError::Internal(anyhow::anyhow!("batched load failed: {}", err.chain()))
}
