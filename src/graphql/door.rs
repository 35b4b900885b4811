//! The front door every request passes before the schema runs it, whatever
//! its transport: its persisted document resolved, the text scanned, the
//! variables bounded, the document parsed once and its cost checked
//! ([`admit`]), and the variables checked against the operation's types
//! ([`variables::check`]).
//!
//! HTTP requests pass it in their handler and then run on a schema with no
//! extension at all: with any extension registered, async-graphql takes
//! every field of every request through the extension chain (a lookup in
//! the registry and two type names formatted per field and list item),
//! which roughly doubles the cost of resolving a page of results. Websocket
//! operations reach the schema through async-graphql's protocol handler, so
//! their schema passes them through the same door in an extension
//! ([`Front`]), and codes their errors as [`finish`] does.
use std::{any::TypeId, sync::Arc};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
        NextSubscribe,
    },
    parser::types::ExecutableDocument,
    registry::Registry,
    OutputType, Request, Response, ServerError, ServerResult, SubscriptionType, Variables,
};

use super::{
    documents::Documents,
    limits::{admit, codes, Admitted, QueryLimits},
    variables,
    writes::{Charged, RequestCharge},
    Mutation, Query, Subscription,
};
use crate::error::coded;

/// The front door, shared by the HTTP handlers and the websocket schema.
pub struct Door {
    documents: Option<Arc<Documents>>,
    limits: QueryLimits,
    max_errors: usize,
    /// The schema's types, for the variables check.
    registry: Registry,
}

impl Door {
    pub fn new(documents: Option<Arc<Documents>>, limits: QueryLimits, max_errors: usize) -> Self {
        let mut registry = Registry::default();
        Query::create_type_info(&mut registry);
        Charged::<Mutation>::create_type_info(&mut registry);
        <Subscription as SubscriptionType>::create_type_info(&mut registry);
        Self {
            documents,
            limits,
            max_errors,
            registry,
        }
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Admits `request` for the schema, or refuses it with a coded error.
    /// The operation's type and name go on the current span.
    pub async fn enter(&self, mut request: Request) -> ServerResult<Request> {
        if let Some(documents) = &self.documents {
            documents.resolve(&mut request).await?;
        }
        if !request.data.contains_key(&TypeId::of::<Admitted>()) {
            admit(&mut request, &self.limits)?;
        }
        with_document(&mut request, |doc, vars, operation| {
            record_operation(doc, operation);
            variables::check(&self.registry, doc, vars)
        })
        .unwrap_or(Ok(()))?;
        Ok(request.data(RequestCharge::default()))
    }

    /// Codes every error of a response, hides internal details and keeps at
    /// most `MAX_RESPONSE_ERRORS`, so no response is much larger than its
    /// request.
    pub fn finish(&self, errors: &mut Vec<ServerError>) {
        for error in errors.iter_mut() {
            self.recode(error);
            crate::error::classify(error);
        }
        crate::error::cap(errors, self.max_errors);
    }

    /// async-graphql's own limit errors, in the front door's words.
    fn recode(&self, error: &mut ServerError) {
        if error.extensions.is_some() {
            return;
        }
        if error.message == COMPLEXITY_MESSAGE {
            let max = self.limits.max_complexity;
            *error = coded(
                codes::TOO_COMPLEX,
                format!(
                    "the query's estimated cost exceeds the budget of {max}; ask for fewer items (first) or fewer fields"
                ),
            );
        } else if error.message.starts_with(RECURSION_MESSAGE) {
            *error = coded(codes::TOO_DEEP, std::mem::take(&mut error.message));
        }
    }
}

/// `f` applied to `request`'s parsed document, its variables and the name of
/// the operation it asks for (`None` if the document does not parse).
pub fn with_document<T>(
    request: &mut Request,
    f: impl FnOnce(&ExecutableDocument, &Variables, Option<&str>) -> T,
) -> Option<T> {
    // Moved out and back: the parsed document borrows the request.
    let (vars, operation) = (
        std::mem::take(&mut request.variables),
        request.operation_name.take(),
    );
    let out = request
        .parsed_query()
        .ok()
        .map(|doc| f(doc, &vars, operation.as_deref()));
    (request.variables, request.operation_name) = (vars, operation);
    out
}

/// Message async-graphql gives when a document's complexity is over the
/// schema's limit (`limit_complexity`).
const COMPLEXITY_MESSAGE: &str = "Query is too complex.";
/// Message async-graphql gives when its own recursion limit trips.
const RECURSION_MESSAGE: &str = "The recursion depth of the query";

fn record_operation(doc: &ExecutableDocument, wanted: Option<&str>) {
    let selected = doc
        .operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted);
    if let Some((name, operation)) = selected {
        let span = tracing::Span::current();
        span.record("graphql.operation.type", operation.node.ty.to_string());
        if let (Some(name), None) = (name, wanted) {
            span.record("graphql.operation.name", name.as_str());
        }
    }
}

/// The websocket schema's extension: the front door for each operation,
/// and [`Door::finish`] for its responses and subscription events.
pub struct Front(pub Arc<Door>);

impl ExtensionFactory for Front {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Front(self.0.clone()))
    }
}

#[async_trait::async_trait]
impl Extension for Front {
    /// The whole request: refusals before execution included.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        self.0.finish(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, Response> {
        use futures::StreamExt;
        let door = self.0.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                door.finish(&mut response.errors);
                response
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = self.0.enter(request).await?;
        next.run(ctx, request).await
    }
}
