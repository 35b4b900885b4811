//! Batched lookups for nested fields, created per request so nothing cached
//! crosses users. A page of N items costs one query per loader, not N.
use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    entity::{rooms, users},
    error::AppError,
    read::sql,
};

pub type LoadError = Arc<AppError>;

pub struct UserLoader(pub DatabaseConnection);

impl Loader<Uuid> for UserLoader {
    type Value = users::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        sql::users_by_ids(&self.0, keys).await.map_err(Arc::new)
    }
}

pub struct RoomLoader(pub DatabaseConnection);

impl Loader<Uuid> for RoomLoader {
    type Value = rooms::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        sql::rooms_by_ids(&self.0, keys).await.map_err(Arc::new)
    }
}

/// Member ids per room.
pub struct MembersLoader(pub DatabaseConnection);

impl Loader<Uuid> for MembersLoader {
    type Value = Vec<Uuid>;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        sql::members_of_rooms(&self.0, keys).await.map_err(Arc::new)
    }
}

/// The per-request set of loaders.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub rooms: DataLoader<RoomLoader>,
    pub members: DataLoader<MembersLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            users: DataLoader::new(UserLoader(db.clone()), tokio::spawn),
            rooms: DataLoader::new(RoomLoader(db.clone()), tokio::spawn),
            members: DataLoader::new(MembersLoader(db.clone()), tokio::spawn),
        }
    }
}

/// Loader failures are internal; keep the cause for the log.
pub fn load_error(err: LoadError) -> AppError {
    AppError::Internal(anyhow::anyhow!("batched load failed: {}", err.chain()))
}
