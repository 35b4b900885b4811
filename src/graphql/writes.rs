//! The per-account mutation rate limit: a token bucket per account, shared
//! by every instance (`ratelimit`), charged for every top-level mutation
//! field, so every alias and every batch entry counts. A request's fields
//! are charged together, in one statement, when its first one runs; the
//! bucket grants as many as it holds and the rest are refused in order.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextResolve,
        ResolveInfo,
    },
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
    Name, PathSegment, Pos, Positioned, Response, ServerError, ServerResult, Value, Variables,
};

use super::context::{Precharged, Viewer};
use crate::ratelimit::{limited, RateLimits};

/// Charges every top-level mutation field of an authenticated caller.
pub struct WriteLimit;

impl ExtensionFactory for WriteLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestCharge::default())
    }
}

/// One request's charge (extensions are created per request).
#[derive(Default)]
struct RequestCharge {
    state: Mutex<Charge>,
}

#[derive(Default)]
struct Charge {
    /// Top-level fields of each mutation operation in the document, by name.
    fields_by_operation: HashMap<Option<Name>, u32>,
    /// Those of the operation being executed.
    fields: u32,
    /// Whether the bucket was charged for this request yet.
    charged: bool,
    /// Granted and not used yet.
    granted: u32,
    /// Set once the bucket came up short: every later field is refused.
    refused: Option<Duration>,
}

impl Charge {
    /// Admits the next field from the grant, or refuses it; `None` when
    /// the bucket must be charged first.
    fn next(&mut self) -> Option<Result<(), Duration>> {
        if self.granted > 0 {
            self.granted -= 1;
            return Some(Ok(()));
        }
        self.refused.map(Err)
    }
}

#[async_trait::async_trait]
impl Extension for RequestCharge {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let counts = mutation_fields(&document, variables);
        if let Ok(mut state) = self.state.lock() {
            state.fields_by_operation = counts;
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Ok(mut state) = self.state.lock() {
            state.fields = operation_fields(&state.fields_by_operation, operation_name);
        }
        next.run(ctx, operation_name).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let top_level_mutation = info.parent_type == "Mutation" && info.path_node.parent.is_none();
        if top_level_mutation {
            if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
                if let Err(wait) = self.admit(ctx, *user).await? {
                    let error = limited("mutation", wait);
                    let mut refused = async_graphql::Error::new_with_source(error)
                        .into_server_error(Pos::default());
                    refused.locations.clear();
                    refused.path = vec![PathSegment::Field(
                        info.alias.unwrap_or(info.name).to_owned(),
                    )];
                    return Err(with_code(refused));
                }
            }
        }
        next.run(ctx, info).await
    }
}

impl RequestCharge {
    /// Admits one top-level field, charging the bucket for the request's
    /// fields on the first one (top-level mutation fields run one after
    /// another, so no two charges of a request overlap). A field beyond the
    /// count (which a document cannot produce) is charged on its own.
    async fn admit(
        &self,
        ctx: &ExtensionContext<'_>,
        user: uuid::Uuid,
    ) -> ServerResult<Result<(), Duration>> {
        let (wanted, first) = {
            let Ok(mut state) = self.state.lock() else {
                return Ok(Ok(()));
            };
            if let Some(decided) = state.next() {
                return Ok(decided);
            }
            let first = !state.charged;
            let wanted = if first { state.fields.max(1) } else { 1 };
            state.charged = true;
            (wanted, first)
        };
        let grant = match ctx.data_opt::<Precharged>() {
            // Taken with the caller's row, for the same fields; only ever
            // for the request's first charge.
            Some(taken) if first && taken.wanted == wanted => taken.grant,
            _ => {
                let Some(limits) = ctx.data_opt::<Arc<RateLimits>>() else {
                    return Ok(Ok(()));
                };
                limits.charge_mutations(user, wanted).await.map_err(|err| {
                    with_code(
                        async_graphql::Error::new_with_source(err)
                            .into_server_error(Pos::default()),
                    )
                })?
            }
        };
        let Ok(mut state) = self.state.lock() else {
            return Ok(Ok(()));
        };
        state.granted = grant.granted;
        if grant.granted < wanted {
            state.refused = Some(grant.wait);
        }
        Ok(state.next().unwrap_or(Ok(())))
    }
}

/// How many top-level mutation fields the operation `operation_name` of
/// `document` runs, as the write limit charges them (0 for a query, a
/// subscription or an operation the document does not have).
pub fn charged_fields(
    document: &ExecutableDocument,
    variables: &Variables,
    operation_name: Option<&str>,
) -> u32 {
    operation_fields(&mutation_fields(document, variables), operation_name)
}

/// The count of [`mutation_fields`] for the operation `operation_name`
/// (a document of one operation names none).
fn operation_fields(counts: &HashMap<Option<Name>, u32>, operation_name: Option<&str>) -> u32 {
    let name = operation_name.map(Name::new);
    counts
        .get(&name)
        .or_else(|| counts.get(&None))
        .copied()
        .unwrap_or(0)
}

/// How many top-level fields each mutation operation of `document` runs:
/// fields, and those of spread and inline fragments, minus what `@skip` or
/// `@include` leave out (a directive whose condition cannot be read here
/// counts the field, which can only overcharge).
fn mutation_fields(
    document: &ExecutableDocument,
    variables: &Variables,
) -> HashMap<Option<Name>, u32> {
    let count = |set: &SelectionSet| {
        let mut seen = HashSet::new();
        top_level(document, set, variables, &mut seen)
    };
    match &document.operations {
        DocumentOperations::Single(op) if op.node.ty == OperationType::Mutation => {
            HashMap::from([(None, count(&op.node.selection_set.node))])
        }
        DocumentOperations::Single(_) => HashMap::new(),
        DocumentOperations::Multiple(ops) => ops
            .iter()
            .filter(|(_, op)| op.node.ty == OperationType::Mutation)
            .map(|(name, op)| (Some(name.clone()), count(&op.node.selection_set.node)))
            .collect(),
    }
}

fn top_level<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    variables: &Variables,
    spread: &mut HashSet<&'d str>,
) -> u32 {
    let mut fields = 0u32;
    for item in &set.items {
        let n = match &item.node {
            Selection::Field(field) if included(&field.node.directives, variables) => 1,
            Selection::InlineFragment(inline) if included(&inline.node.directives, variables) => {
                top_level(document, &inline.node.selection_set.node, variables, spread)
            }
            Selection::FragmentSpread(s) if included(&s.node.directives, variables) => {
                let name = s.node.fragment_name.node.as_str();
                // A fragment spread twice at the top runs its fields once;
                // one that spreads itself is refused before it runs.
                match document.fragments.get(name) {
                    Some(fragment) if spread.insert(name) => top_level(
                        document,
                        &fragment.node.selection_set.node,
                        variables,
                        spread,
                    ),
                    _ => 0,
                }
            }
            _ => 0,
        };
        fields = fields.saturating_add(n);
    }
    fields
}

/// False when `@skip(if: true)` or `@include(if: false)` leaves it out.
fn included(directives: &[Positioned<Directive>], variables: &Variables) -> bool {
    directives.iter().all(|d| {
        let condition = d.node.get_argument("if").and_then(|value| {
            value
                .node
                .clone()
                .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
                .ok()
        });
        !matches!(
            (d.node.name.node.as_str(), condition),
            ("skip", Some(Value::Boolean(true))) | ("include", Some(Value::Boolean(false)))
        )
    })
}

fn with_code(mut error: ServerError) -> ServerError {
    crate::error::classify(&mut error);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(query: &str, variables: serde_json::Value) -> HashMap<Option<Name>, u32> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        mutation_fields(&document, &Variables::from_json(variables))
    }

    #[test]
    fn every_alias_and_fragment_field_counts_and_skipped_ones_do_not() {
        let document = "mutation M($no: Boolean!) { a: createTodo { id } b: createTodo { id } \
                        ...F ... { c: deleteTodo } d: x @skip(if: true) e: y @include(if: $no) } \
                        fragment F on Mutation { f: logOutEverywhere g: logOutEverywhere }";
        let found = counts(document, serde_json::json!({ "no": false }));
        assert_eq!(found.get(&Some(Name::new("M"))), Some(&5), "{found:?}");
    }

    #[test]
    fn queries_are_not_counted_and_anonymous_mutations_are() {
        assert!(counts("{ me { id } }", serde_json::json!({})).is_empty());
        let found = counts("mutation { a b c }", serde_json::json!({}));
        assert_eq!(found.get(&None), Some(&3));
    }
}
