//! Chat rooms and messages: membership and posting on the source of truth.
use async_graphql::{Context, Object, Result, ID};

use super::{
    context::{parse_id, ContextExt},
    types::{Message, Room},
};
use crate::{
    domain::{MessageBody, RoomName},
    read::sql,
    write,
};

#[derive(Default)]
pub struct RoomQuery;

#[Object]
impl RoomQuery {
    /// Rooms the caller belongs to, oldest first (at most 50).
    #[graphql(
        complexity = "super::limits::capped_list_cost(crate::domain::MAX_ROOMS_PER_USER, child_complexity)"
    )]
    async fn rooms(&self, ctx: &Context<'_>) -> Result<Vec<Room>> {
        let user_id = ctx.require_user()?;
        let rows = sql::rooms_of(ctx.state().sql(), user_id).await?;
        let max = usize::try_from(crate::domain::MAX_ROOMS_PER_USER).unwrap_or(usize::MAX);
        Ok(rows.into_iter().take(max).map(Room::from).collect())
    }
}

#[derive(Default)]
pub struct RoomMutation;

#[Object]
impl RoomMutation {
    /// The creator becomes the first member.
    async fn create_room(&self, ctx: &Context<'_>, name: String) -> Result<Room> {
        let user_id = ctx.require_user()?;
        let name = RoomName::parse(&name)?;
        let done = write::rooms::create_room(ctx.state().writer(), user_id, name).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    async fn join_room(&self, ctx: &Context<'_>, room_id: ID) -> Result<Room> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let done = write::rooms::join_room(ctx.state().writer(), user_id, room_id).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    /// Leaves a room (members only); returns its id. Its history, search
    /// and live messages are closed to the caller from the next request on,
    /// and open subscriptions to it end with `FORBIDDEN` (on every instance,
    /// as soon as the change reaches it; within `WS_RECHECK_MS` at worst).
    async fn leave_room(&self, ctx: &Context<'_>, room_id: ID) -> Result<ID> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let done = write::rooms::leave_room(ctx.state().writer(), user_id, room_id).await?;
        ctx.record_written(&done.events);
        ctx.state().members_changed(room_id);
        Ok(ID(room_id.to_string()))
    }

    /// Members only.
    async fn send_message(&self, ctx: &Context<'_>, room_id: ID, body: String) -> Result<Message> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let body = MessageBody::parse(&body)?;
        let done = write::rooms::send_message(ctx.state().writer(), user_id, room_id, body).await?;
        ctx.record_written(&done.events);
        ctx.state().publish_message(&done.value);
        Ok(done.value.into())
    }

    /// Replaces the body of one of the caller's messages (sender only, still
    /// a member). History, search and `roomEvents` (as `EDITED`) follow;
    /// `editedAt` says when.
    async fn edit_message(&self, ctx: &Context<'_>, id: ID, body: String) -> Result<Message> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let body = MessageBody::parse(&body)?;
        let done = write::rooms::edit_message(ctx.state().writer(), user_id, id, body).await?;
        ctx.record_written(&done.events);
        ctx.state().publish_message(&done.value);
        Ok(done.value.into())
    }

    /// Deletes one of the caller's messages (sender only, also after
    /// leaving the room); returns its id. It leaves history and search, and
    /// `roomEvents` subscribers receive `DELETED`; no late event brings it
    /// back.
    async fn delete_message(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let done = write::rooms::delete_message(ctx.state().writer(), user_id, id).await?;
        ctx.record_written(&done.events);
        let gone = done.value;
        ctx.state()
            .publish_deletion(gone.room_id, gone.id, gone.number);
        Ok(ID(gone.id.to_string()))
    }
}
