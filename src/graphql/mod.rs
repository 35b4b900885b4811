//! The GraphQL API: one module per domain, merged into one schema.
pub mod analytics;
pub mod chat;
pub mod context;
pub mod cost;
pub mod documents;
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

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest},
    MergedObject, MergedSubscription, Response, Schema,
};

use crate::app::AppState;

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

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema. `state` is shared; per-request data (viewer, loaders)
/// is added by the HTTP layer.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    let documents = state
        .as_ref()
        .map(|state| Arc::new(documents::Documents::from_state(state)));
    build_schema_with(state, documents)
}

/// The schema, resolving documents with `documents` (which the HTTP layer
/// shares, see `documents`).
pub fn build_schema_with(
    state: Option<AppState>,
    documents: Option<Arc<documents::Documents>>,
) -> AppSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(ErrorCodes {
        max_errors: state
            .as_ref()
            .map_or(DEFAULT_MAX_ERRORS, |s| s.config().query.max_response_errors),
    });
    if let Some(state) = state {
        if !state.config().introspection {
            // Suggestions ("Did you mean ...") would name the fields that
            // introspection hides.
            builder = builder.disable_introspection().disable_suggestions();
        }
        let config = state.config();
        if let Some(documents) = documents {
            // Before the front door: it admits the resolved document.
            builder = builder.extension(documents::Resolve(documents));
        }
        builder = builder
            .extension(limits::Limits(limits::QueryLimits::from_config(config)))
            .limit_recursive_depth(config.query.max_query_nesting)
            .extension(writes::WriteLimit)
            .data(state.rate_limits().clone());
        builder = builder.data(state);
    }
    builder.finish()
}

/// The SDL clients build against (`schema.graphql`).
pub fn sdl() -> String {
    build_schema(None).sdl()
}

/// Errors per response when no configuration is given.
const DEFAULT_MAX_ERRORS: usize = 20;

/// Gives every error an `extensions.code`, hides internal details, and keeps
/// at most `max_errors` errors per response, so no response is much larger
/// than its request.
struct ErrorCodes {
    max_errors: usize,
}

impl ErrorCodes {
    fn finish(&self, response: &mut Response) {
        for error in &mut response.errors {
            crate::error::classify(error);
        }
        crate::error::cap(&mut response.errors, self.max_errors);
    }
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes {
            max_errors: self.max_errors,
        })
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    /// The whole request: refusals before execution included.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        self.finish(&mut response);
        response
    }

    /// Subscription events (and refusals) get codes too.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, Response> {
        use futures::StreamExt;
        let codes = ErrorCodes {
            max_errors: self.max_errors,
        };
        next.run(ctx, stream)
            .map(move |mut response| {
                codes.finish(&mut response);
                response
            })
            .boxed()
    }
}
