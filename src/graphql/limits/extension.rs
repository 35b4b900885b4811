//! The schema extension: admits POST and websocket documents (GET ones come
//! admitted) and maps async-graphql's own limit errors to our codes.
use std::{any::TypeId, sync::Arc};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextValidation,
    },
    parser::types::ExecutableDocument,
    Request, ServerError, ServerResult, ValidationResult, Variables,
};

use super::{
    admit::{admit, syntax_message, Admitted},
    codes, QueryLimits,
};
use crate::error::coded;

/// Message async-graphql gives when its own recursion limit trips.
const RECURSION_MESSAGE: &str = "The recursion depth of the query";

/// The schema extension that enforces [`QueryLimits`].
pub struct Limits(pub QueryLimits);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits(self.0))
    }
}

#[async_trait::async_trait]
impl Extension for Limits {
    /// POST and websocket documents enter here; GET documents were
    /// admitted by the handler already.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if !request.data.contains_key(&TypeId::of::<Admitted>()) {
            admit(&mut request, &self.0)?;
        }
        let wanted = request.operation_name.clone();
        if let Ok(doc) = request.parsed_query() {
            let selected = doc.operations.iter().find(|(name, _)| {
                wanted.is_none() || name.map(|n| n.as_str()) == wanted.as_deref()
            });
            if let Some((name, operation)) = selected {
                let span = tracing::Span::current();
                span.record("graphql.operation.type", operation.node.ty.to_string());
                if let (Some(name), None) = (name, wanted.as_deref()) {
                    span.record("graphql.operation.name", name.as_str());
                }
            }
        }
        next.run(ctx, request).await
    }

    /// Runs on the document [`admit`] parsed: async-graphql's recursion check
    /// then walks at most `MAX_QUERY_FIELDS` selections.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|mut error| {
            if error.message.starts_with(RECURSION_MESSAGE) {
                error = coded(codes::TOO_DEEP, error.message);
            } else if let Some(short) = syntax_message(&error.message) {
                error.message = short;
            }
            error
        })?;
        crate::graphql::variables::check(&ctx.schema_env.registry, &doc, variables)?;
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let max = self.0.max_complexity;
        if result.complexity > max {
            return Err(vec![coded(
                codes::TOO_COMPLEX,
                format!(
                    "the query's estimated cost {} exceeds the budget of {max}; ask for fewer items (first) or fewer fields",
                    result.complexity
                ),
            )]);
        }
        Ok(result)
    }
}
