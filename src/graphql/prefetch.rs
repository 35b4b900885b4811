//! Prefetching for list resolvers: looks ahead at the fields the client
//! selected on a page's nodes and loads what they need in one batch per
//! loader, so a page costs the same round trips whatever its size (the
//! nested resolvers then find everything in the request's loader cache).
use std::collections::BTreeSet;

use async_graphql::{Context, Lookahead, Result};
use uuid::Uuid;

use super::{
    loaders::{load_error, Loaders},
    types::Message,
};

/// The node selections of a connection field (`edges { node }` and `nodes`).
fn nodes<'a>(ctx: &'a Context<'_>) -> [Lookahead<'a>; 2] {
    let look = ctx.look_ahead();
    [look.field("edges").field("node"), look.field("nodes")]
}

fn selects(nodes: &[Lookahead<'_>], path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    nodes.iter().any(|node| {
        let mut look = node.field(first);
        for name in rest {
            look = look.field(name);
        }
        look.exists()
    })
}

/// Senders, rooms and room members of a page of messages: at most three
/// batched loads (rooms, members, users).
pub async fn messages<'m>(
    ctx: &Context<'_>,
    page: impl IntoIterator<Item = &'m Message>,
) -> Result<()> {
    let loaders = ctx.data_unchecked::<Loaders>();
    let nodes = nodes(ctx);
    let (room_ids, sender_ids): (BTreeSet<Uuid>, BTreeSet<Uuid>) =
        page.into_iter().map(|m| (m.room_id, m.sender_id)).unzip();
    let mut user_ids: BTreeSet<Uuid> = BTreeSet::new();
    if selects(&nodes, &["sender"]) {
        user_ids.extend(sender_ids);
    }
    if selects(&nodes, &["room"]) {
        loaders
            .prefetch(&loaders.rooms, room_ids.iter().copied())
            .await
            .map_err(load_error)?;
    }
    if selects(&nodes, &["room", "members"]) {
        let members = loaders
            .prefetch(&loaders.members, room_ids.iter().copied())
            .await
            .map_err(load_error)?;
        user_ids.extend(members.values().flatten().copied());
    }
    if !user_ids.is_empty() {
        loaders
            .prefetch(&loaders.users, user_ids)
            .await
            .map_err(load_error)?;
    }
    Ok(())
}

/// The users a page's nodes point to through `field` (`user` of leaderboard
/// rows, `owner` of todos): one batched load.
pub async fn users(
    ctx: &Context<'_>,
    field: &str,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<()> {
    if selects(&nodes(ctx), &[field]) {
        let loaders = ctx.data_unchecked::<Loaders>();
        loaders
            .prefetch(&loaders.users, ids)
            .await
            .map_err(load_error)?;
    }
    Ok(())
}
