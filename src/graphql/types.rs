//! Public GraphQL object types, mapped explicitly from the stores' rows so the
//! schema is not the table layout.
use async_graphql::{ComplexObject, Context, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    context::ContextExt,
    loaders::{load_error, Loaders},
};
use crate::{
    entity::{messages, rooms, study_sessions, todos, users},
    error::AppError,
    read::{cursor::Cursors, model::MessagePosition},
};

/// A person. `email` is visible only to that person.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    /// Set when the response is for the account's owner even though the
    /// request carried no token yet (`signUp`, `logIn`).
    pub owner_view: bool,
}

impl From<users::Model> for User {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            created_at: u.created_at,
            owner_view: false,
        }
    }
}

impl User {
    pub fn for_owner(user: users::Model) -> Self {
        Self {
            owner_view: true,
            ..Self::from(user)
        }
    }
}

#[async_graphql::Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.name
    }

    /// Only the account's owner and admins see it; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let visible = self.owner_view
            || ctx.viewer().user_id() == Some(self.id)
            || super::context::viewer_is_admin(ctx).await?;
        Ok(visible.then_some(self.email.as_str()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

/// Loads a user by id through the request's loader.
pub async fn load_user(ctx: &Context<'_>, id: Uuid) -> Result<User> {
    let loaders = ctx.data_unchecked::<Loaders>();
    let user = loaders.users.load_one(id).await.map_err(load_error)?;
    Ok(user.map(User::from).ok_or(AppError::NotFound("user"))?)
}

#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Todo {
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub owner_id: Uuid,
    pub title: String,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// The row's version; it grows by one with every change.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<todos::Model> for Todo {
    fn from(t: todos::Model) -> Self {
        Self {
            uuid: t.id,
            owner_id: t.user_id,
            title: t.title,
            completed: t.completed,
            completed_at: t.completed_at,
            due_at: t.due_at,
            version: i32::try_from(t.version).unwrap_or(i32::MAX),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[ComplexObject]
impl Todo {
    async fn id(&self) -> ID {
        ID(self.uuid.to_string())
    }

    async fn owner(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.owner_id).await
    }
}

#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct StudySession {
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub user_id: Uuid,
    pub subject: String,
    pub minutes: i32,
    pub started_at: DateTime<Utc>,
}

impl From<study_sessions::Model> for StudySession {
    fn from(s: study_sessions::Model) -> Self {
        Self {
            uuid: s.id,
            user_id: s.user_id,
            subject: s.subject,
            minutes: s.minutes,
            started_at: s.started_at,
        }
    }
}

#[ComplexObject]
impl StudySession {
    async fn id(&self) -> ID {
        ID(self.uuid.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.user_id).await
    }
}

#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Room {
    #[graphql(skip)]
    pub uuid: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<rooms::Model> for Room {
    fn from(r: rooms::Model) -> Self {
        Self {
            uuid: r.id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[ComplexObject]
impl Room {
    async fn id(&self) -> ID {
        ID(self.uuid.to_string())
    }

    /// Members in the order they joined (a room has at most 50).
    #[graphql(
        complexity = "super::limits::capped_list_cost(crate::domain::MAX_ROOM_MEMBERS, child_complexity)"
    )]
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let loaders = ctx.data_unchecked::<Loaders>();
        let ids = loaders
            .members
            .load_one(self.uuid)
            .await
            .map_err(load_error)?
            .unwrap_or_default();
        let users = loaders
            .users
            .load_many(ids.iter().copied())
            .await
            .map_err(load_error)?;
        // Rooms filled before the cap existed are shown up to it: the
        // price must hold.
        let max = usize::try_from(crate::domain::MAX_ROOM_MEMBERS).unwrap_or(usize::MAX);
        Ok(ids
            .iter()
            .filter_map(|id| users.get(id).cloned().map(User::from))
            .take(max)
            .collect())
    }
}

/// Loads a room by id through the request's loader.
pub async fn load_room(ctx: &Context<'_>, id: Uuid) -> Result<Room> {
    let loaders = ctx.data_unchecked::<Loaders>();
    let room = loaders.rooms.load_one(id).await.map_err(load_error)?;
    Ok(room.map(Room::from).ok_or(AppError::NotFound("room"))?)
}

#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Message {
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub room_id: Uuid,
    #[graphql(skip)]
    pub sender_id: Uuid,
    #[graphql(skip)]
    pub seq: Option<i64>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// When the body was last edited; null if it never was.
    pub edited_at: Option<DateTime<Utc>>,
}

impl From<messages::Model> for Message {
    fn from(m: messages::Model) -> Self {
        Self {
            uuid: m.id,
            room_id: m.room_id,
            sender_id: m.sender_id,
            seq: m.seq,
            body: m.body,
            created_at: m.created_at,
            edited_at: m.edited_at,
        }
    }
}

#[ComplexObject]
impl Message {
    async fn id(&self) -> ID {
        ID(self.uuid.to_string())
    }

    async fn room(&self, ctx: &Context<'_>) -> Result<Room> {
        load_room(ctx, self.room_id).await
    }

    async fn sender(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.sender_id).await
    }

    /// Where this message stands in its room: `messageAdded(roomId, after:)`
    /// resumes right after it.
    async fn cursor(&self, ctx: &Context<'_>) -> String {
        self.position_cursor(ctx.state().cursors())
    }
}

impl Message {
    /// The signed [`MessagePosition`] of this message.
    pub fn position_cursor(&self, cursors: &Cursors) -> String {
        let position: MessagePosition = (self.room_id, self.seq, self.created_at, self.uuid);
        cursors.encode(&position)
    }
}

#[derive(Clone, Debug, SimpleObject)]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
}
