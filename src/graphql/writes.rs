//! The per-account mutation rate limit: a token bucket per account, shared
//! by every instance (`ratelimit`), charged for every top-level mutation
//! field, so every alias and every batch entry counts. A request's fields
//! are charged together, in one statement, when its first one runs; the
//! bucket grants as many as it holds and the rest are refused in order.
//!
//! The charge is taken by the mutation root itself ([`Charged`]), not by a
//! schema extension: with any extension registered, async-graphql runs every
//! field of every request through the extension chain, which roughly doubles
//! the cost of resolving a page of results (`docs/benchmarks.md`).
use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::{
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition,
        OperationType, Selection, SelectionSet,
    },
    registry::Registry,
    resolver_utils::{resolve_container_serial, ContainerType},
    Context, ContextSelectionSet, Name, ObjectType, OutputType, PathSegment, Pos, Positioned,
    ServerError, ServerResult, Value, Variables,
};

use super::context::{Precharged, Viewer};
use crate::ratelimit::{limited, RateLimits};

/// A mutation root whose top-level fields are charged to an authenticated
/// caller's budget before they run. It is `M` to clients: same name, same
/// fields, same SDL.
#[derive(Default)]
pub struct Charged<M>(pub M);

impl<M: OutputType + ContainerType> OutputType for Charged<M> {
    fn type_name() -> Cow<'static, str> {
        M::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        M::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container_serial(ctx, self).await
    }
}

impl<M: ContainerType> ContainerType for Charged<M> {
    /// Called for the top-level fields only (nested ones belong to other
    /// types), one after another.
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
            if let Err(wait) = admit(ctx, *user).await? {
                let error = limited("mutation", wait);
                let mut refused =
                    async_graphql::Error::new_with_source(error).into_server_error(Pos::default());
                refused.locations.clear();
                refused.path = vec![PathSegment::Field(
                    ctx.item.node.response_key().node.to_string(),
                )];
                return Err(with_code(refused));
            }
        }
        self.0.resolve_field(ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        self.0.find_entity(ctx, params).await
    }
}

impl<M: ObjectType> ObjectType for Charged<M> {}

/// One request's charge, put into every request by the front door
/// (`graphql::door`).
#[derive(Default)]
pub struct RequestCharge {
    state: Mutex<Charge>,
}

#[derive(Default)]
struct Charge {
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

/// Admits one top-level field, charging the bucket for the operation's
/// fields on the first one (top-level mutation fields run one after
/// another, so no two charges of a request overlap). A field beyond the
/// count (which a document cannot produce), or one of a request the front
/// door did not see, is charged on its own.
async fn admit(ctx: &Context<'_>, user: uuid::Uuid) -> ServerResult<Result<(), Duration>> {
    let Some(charge) = ctx.data_opt::<RequestCharge>() else {
        return charge_alone(ctx, user).await;
    };
    let (wanted, first) = {
        let Ok(mut state) = charge.state.lock() else {
            return Ok(Ok(()));
        };
        if let Some(decided) = state.next() {
            return Ok(decided);
        }
        let first = !state.charged;
        let wanted = if first {
            operation_top_level(ctx).max(1)
        } else {
            1
        };
        state.charged = true;
        (wanted, first)
    };
    let grant = match ctx.data_opt::<Precharged>() {
        // Taken with the caller's row, for the same fields; only ever for
        // the request's first charge.
        Some(taken) if first && taken.wanted == wanted => taken.grant,
        _ => match take(ctx, user, wanted).await? {
            Some(grant) => grant,
            None => return Ok(Ok(())),
        },
    };
    let Ok(mut state) = charge.state.lock() else {
        return Ok(Ok(()));
    };
    state.granted = grant.granted;
    if grant.granted < wanted {
        state.refused = Some(grant.wait);
    }
    Ok(state.next().unwrap_or(Ok(())))
}

async fn charge_alone(ctx: &Context<'_>, user: uuid::Uuid) -> ServerResult<Result<(), Duration>> {
    Ok(match take(ctx, user, 1).await? {
        Some(grant) if grant.granted == 0 => Err(grant.wait),
        _ => Ok(()),
    })
}

/// Takes `wanted` fields from `user`'s budget (`None` without limits).
async fn take(
    ctx: &Context<'_>,
    user: uuid::Uuid,
    wanted: u32,
) -> ServerResult<Option<crate::ratelimit::Grant>> {
    let Some(limits) = ctx.data_opt::<Arc<RateLimits>>() else {
        return Ok(None);
    };
    limits
        .charge_mutations(user, wanted)
        .await
        .map(Some)
        .map_err(|err| {
            with_code(async_graphql::Error::new_with_source(err).into_server_error(Pos::default()))
        })
}

/// The top-level fields of the operation being executed, as
/// [`mutation_fields`] counts them (async-graphql has already removed what
/// `@skip` and `@include` leave out).
fn operation_top_level(ctx: &Context<'_>) -> u32 {
    let env = ctx.query_env;
    top_level(
        &env.fragments,
        &env.operation.node.selection_set.node,
        &env.variables,
        &mut HashSet::new(),
    )
}

/// How many top-level mutation fields `document` runs for the operation
/// `operation_name`, as the write limit charges them (0 for a query, a
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
        top_level(&document.fragments, set, variables, &mut seen)
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
    fragments: &'d HashMap<Name, Positioned<FragmentDefinition>>,
    set: &'d SelectionSet,
    variables: &Variables,
    spread: &mut HashSet<&'d str>,
) -> u32 {
    let mut fields = 0u32;
    for item in &set.items {
        let n = match &item.node {
            Selection::Field(field) if included(&field.node.directives, variables) => 1,
            Selection::InlineFragment(inline) if included(&inline.node.directives, variables) => {
                top_level(
                    fragments,
                    &inline.node.selection_set.node,
                    variables,
                    spread,
                )
            }
            Selection::FragmentSpread(s) if included(&s.node.directives, variables) => {
                let name = s.node.fragment_name.node.as_str();
                // A fragment spread twice at the top runs its fields once;
                // one that spreads itself is refused before it runs.
                match fragments.get(name) {
                    Some(fragment) if spread.insert(name) => top_level(
                        fragments,
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
