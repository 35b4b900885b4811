//! The front door every document goes through, whatever its transport: the
//! text scan, the variables, one parse, and the parsed document's counts
//! and cost (see the module above for the order and why).
use std::{
    num::NonZeroUsize,
    sync::{LazyLock, Mutex},
};

use async_graphql::{
    parser::{parse_query, types::ExecutableDocument},
    Request, ServerError, ServerResult, Value, Variables,
};
use lru::LruCache;

use super::{codes, QueryLimits};
use crate::{
    error::coded,
    graphql::{cost, scan},
};

/// Marks a request that went through [`admit`], so the front door does not
/// scan and parse it again.
pub struct Admitted;

fn too_large(what: &str, max: usize) -> ServerError {
    coded(
        codes::TOO_MANY_FIELDS,
        format!("the query has more than {max} {what}"),
    )
}

/// The front door: checks the request's text and variables, parses the
/// document once (kept in the request for execution) and checks what it
/// costs, each step bounded by the limits before the next, unbounded one
/// starts. Errors carry their `extensions.code`.
///
/// A document admitted before under the same limits skips the scan, the
/// parse and the counts (they depend on its text alone): see [`ADMITTED`].
pub fn admit(request: &mut Request, limits: &QueryLimits) -> ServerResult<()> {
    if let Some(doc) = admitted_before(&request.query, limits) {
        check_variables(&request.variables, limits)?;
        request.set_parsed_query(doc);
        request.data.insert(Admitted);
        return Ok(());
    }
    scan::scan(&request.query, &limits.text())?;
    check_variables(&request.variables, limits)?;
    let doc = parse_query(&request.query).map_err(|error| {
        let mut error = ServerError::from(error);
        if let Some(short) = syntax_message(&error.message) {
            error.message = short;
        }
        error
    })?;
    check_document(&doc, limits)?;
    remember(&request.query, limits, &doc);
    request.set_parsed_query(doc);
    request.data.insert(Admitted);
    Ok(())
}

/// Documents that passed the front door, by their exact text, with the
/// limits they passed: applications send the same few documents again and
/// again, and parsing one is about a tenth of a typical request's work
/// (`docs/bench/PROFILE.md`). At most [`ADMITTED_DOCUMENTS`] documents of at
/// most [`ADMITTED_MAX_BYTES`] each, the least recently used leaving first;
/// a refused document is never kept.
static ADMITTED: LazyLock<Mutex<LruCache<String, (QueryLimits, ExecutableDocument)>>> =
    LazyLock::new(|| {
        let capacity = NonZeroUsize::new(ADMITTED_DOCUMENTS).unwrap_or(NonZeroUsize::MIN);
        Mutex::new(LruCache::new(capacity))
    });
const ADMITTED_DOCUMENTS: usize = 256;
const ADMITTED_MAX_BYTES: usize = 4_096;

pub(super) fn admitted_before(query: &str, limits: &QueryLimits) -> Option<ExecutableDocument> {
    if query.len() > ADMITTED_MAX_BYTES {
        return None;
    }
    let mut cache = ADMITTED.lock().ok()?;
    match cache.get(query) {
        Some((passed, doc)) if passed == limits => Some(doc.clone()),
        _ => None,
    }
}

fn remember(query: &str, limits: &QueryLimits, doc: &ExecutableDocument) {
    if query.len() > ADMITTED_MAX_BYTES {
        return;
    }
    if let Ok(mut cache) = ADMITTED.lock() {
        cache.put(query.to_owned(), (*limits, doc.clone()));
    }
}

/// How many variables the request supplies, and how deeply nested, without
/// recursion.
fn check_variables(variables: &Variables, limits: &QueryLimits) -> ServerResult<()> {
    if variables.len() > limits.max_variables {
        return Err(too_large("variables", limits.max_variables));
    }
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
    while let Some((value, depth)) = stack.pop() {
        if depth > limits.max_nesting {
            return Err(coded(
                codes::TOO_DEEP,
                format!(
                    "the variables are nested more than {} levels deep",
                    limits.max_nesting
                ),
            ));
        }
        match value {
            Value::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

fn check_document(doc: &ExecutableDocument, limits: &QueryLimits) -> ServerResult<()> {
    let operations = doc.operations.iter().count();
    if operations > limits.max_operations {
        return Err(too_large("operations", limits.max_operations));
    }
    if operations.saturating_add(doc.fragments.len()) > limits.max_definitions {
        return Err(too_large(
            "definitions (operations and fragments)",
            limits.max_definitions,
        ));
    }
    let variables: usize = doc
        .operations
        .iter()
        .map(|(_, op)| op.node.variable_definitions.len())
        .sum();
    if variables > limits.max_variables {
        return Err(too_large("variable definitions", limits.max_variables));
    }
    if cost::arguments(doc) > limits.max_arguments {
        return Err(too_large("arguments", limits.max_arguments));
    }
    let totals = cost::document_totals(doc, limits)?;
    if totals.nesting > limits.max_nesting {
        return Err(coded(
            codes::TOO_DEEP,
            format!(
                "the query's selections are nested more than {} levels deep, fragments included",
                limits.max_nesting
            ),
        ));
    }
    if totals.selections > limits.max_fields {
        return Err(coded(
            codes::TOO_MANY_FIELDS,
            format!(
                "the query selects more than {} fields, fragments expanded",
                limits.max_fields
            ),
        ));
    }
    if totals.aliases > limits.max_aliases {
        return Err(coded(
            codes::TOO_MANY_ALIASES,
            format!("the query uses more than {} aliases", limits.max_aliases),
        ));
    }
    if totals.depth > limits.max_depth {
        return Err(coded(
            codes::TOO_DEEP,
            format!(
                "the query is nested more than {} fields deep",
                limits.max_depth
            ),
        ));
    }
    Ok(())
}

/// The parser reports syntax errors as a multi-line source excerpt ending in
/// `= expected ...`; clients get that last line (the position is already in
/// `locations`).
pub(super) fn syntax_message(message: &str) -> Option<String> {
    if !message.trim_start().starts_with("-->") {
        return None;
    }
    let expected = message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))?;
    Some(format!("syntax error: {}", expected.replace('_', " ")))
}
