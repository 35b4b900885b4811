//! The GraphQL API: one module per domain, merged into one schema.
pub mod analytics;
pub mod chat;
pub mod context;
pub mod cost;
pub mod documents;
pub mod door;
pub mod leaderboard;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod prefetch;
pub mod rooms;
pub mod routed;
pub mod scan;
pub mod search;
pub mod study;
pub mod sync;
pub mod todos;
pub mod types;
pub mod users;
pub mod variables;
pub mod writes;

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::app::AppState;
use writes::Charged;

#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    todos::TodoQuery,
    rooms::RoomQuery,
    chat::ChatQuery,
    search::SearchQuery,
    leaderboard::LeaderboardQuery,
    analytics::AnalyticsQuery,
    sync::SyncQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    users::UserMutation,
    todos::TodoMutation,
    study::StudyMutation,
    rooms::RoomMutation,
    sync::SyncMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(live::ChatSubscription, live::BoardSubscription);

pub type AppSchema = Schema<Query, Charged<Mutation>, Subscription>;

/// The schema HTTP requests run on, once they passed the front door
/// ([`door::Door`]): it has no extension. `state` is shared; per-request
/// data (viewer, loaders) is added by the HTTP layer.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    builder(state).finish()
}

/// The schema websocket operations run on: the same, with the front door
/// as an extension, since async-graphql's protocol handler runs them.
pub fn build_websocket_schema(state: AppState, door: Arc<door::Door>) -> AppSchema {
    builder(Some(state)).extension(door::Front(door)).finish()
}

/// The front door for `state`'s limits, resolving documents with
/// `documents` (which the HTTP layer shares, see `documents`).
pub fn front_door(state: &AppState, documents: Arc<documents::Documents>) -> door::Door {
    let config = state.config();
    door::Door::new(
        Some(documents),
        limits::QueryLimits::from_config(config),
        config.query.max_response_errors,
    )
}

fn builder(state: Option<AppState>) -> SchemaBuilder<Query, Charged<Mutation>, Subscription> {
    let mut builder = Schema::build(
        Query::default(),
        Charged(Mutation::default()),
        Subscription::default(),
    );
    if let Some(state) = state {
        let config = state.config();
        if !config.introspection {
            // Suggestions ("Did you mean ...") would name the fields that
            // introspection hides.
            builder = builder.disable_introspection().disable_suggestions();
        }
        builder = builder
            .limit_complexity(config.query.max_query_complexity)
            .limit_recursive_depth(config.query.max_query_nesting)
            .data(state.rate_limits().clone());
        builder = builder.data(state);
    }
    builder
}

/// The SDL clients build against (`schema.graphql`).
pub fn sdl() -> String {
    build_schema(None).sdl()
}
