//! Limits on what one GraphQL document may ask for, enforced before anything
//! runs so a hostile query costs the server little more than reading it.
//!
//! In order:
//! 1. **Nesting** of `{`, `[` and `(` in the raw text (`MAX_QUERY_NESTING`),
//!    before parsing, so the recursive parser never sees a pathological
//!    document; async-graphql's recursion limit then bounds selection sets
//!    nested through fragments.
//! 2. **Fields** (fragments expanded, `MAX_QUERY_FIELDS`), **aliases**
//!    (`MAX_QUERY_ALIASES`) and **depth** (`MAX_QUERY_DEPTH`) on the parsed
//!    document, before validation, whose cost grows faster than the document.
//!    Introspection (`__schema`, `__type`) does not count towards depth, since
//!    GraphiQL's standard introspection query is 15 levels deep; instead, like
//!    graphql-js's `MaxIntrospectionDepthRule`, it may nest the list fields
//!    `fields`, `inputFields`, `interfaces` and `possibleTypes` at most 3 deep,
//!    which is what stops the exponential `type { fields { type { fields ...`
//!    introspection attack.
//! 3. **Complexity** (`MAX_QUERY_COMPLEXITY`), computed by async-graphql
//!    during validation: every field costs 1 plus its selection; list fields
//!    cost [`list_cost`], i.e. their selection times the page size they ask
//!    for (`first`, default 20, capped at 100) or a fixed estimate of 20 for
//!    unpaginated lists.
//!
//! **Rule for new list fields:** give every field that returns a list or a
//! connection `#[graphql(complexity = "limits::list_cost(first, child_complexity)")]`
//! (use `None` instead of `first` when it has no such argument).
//!
//! Each limit answers with its own `extensions.code`, listed in [`codes`].
use std::sync::Arc;

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    Positioned, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::{
    config::Config,
    read::{DEFAULT_PAGE, MAX_PAGE},
};

/// The `extensions.code` of each limit's error.
pub mod codes {
    pub const TOO_DEEP: &str = "QUERY_TOO_DEEP";
    pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const TOO_MANY_FIELDS: &str = "QUERY_TOO_LARGE";
    pub const TOO_MANY_ALIASES: &str = "TOO_MANY_ALIASES";
    pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
}

/// Most nested introspection list fields, as in graphql-js.
const MAX_INTROSPECTION_LISTS: usize = 3;

/// Cost of a list field: 1 for the field plus its selection's cost once per
/// item it may return.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = first.map_or(DEFAULT_PAGE, |n| {
        u64::try_from(n).unwrap_or(0).min(MAX_PAGE)
    });
    let items = usize::try_from(items).unwrap_or(usize::MAX);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// The document limits, taken from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_nesting: usize,
    /// When false, documents that select `__schema` or `__type` are refused
    /// with a clear error (instead of async-graphql's silent null).
    pub introspection: bool,
}

impl QueryLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_depth: config.max_query_depth,
            max_complexity: config.max_query_complexity,
            max_fields: config.max_query_fields,
            max_aliases: config.max_query_aliases,
            max_nesting: config.max_query_nesting,
            introspection: config.introspection,
        }
    }
}

fn limit_error(code: &str, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// Rejects text nested deeper than `max` (strings and comments skipped).
fn check_nesting(query: &str, max: usize) -> ServerResult<()> {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return Err(limit_error(
                        codes::TOO_DEEP,
                        format!("the query is nested more than {max} levels deep"),
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Counts fields and aliases and measures depth, stopping at the first limit
/// exceeded so a fragment that expands exponentially costs no more than the
/// limit allows.
struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a QueryLimits,
    fields: usize,
    aliases: usize,
}

impl Walk<'_> {
    /// `depth`: enclosing non-introspection fields; `lists`: enclosing
    /// introspection list fields, `None` outside introspection.
    fn selection_set(
        &mut self,
        set: &Positioned<SelectionSet>,
        depth: usize,
        lists: Option<usize>,
    ) -> ServerResult<()> {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.fields += 1;
                    if self.fields > self.limits.max_fields {
                        let max = self.limits.max_fields;
                        return Err(limit_error(
                            codes::TOO_MANY_FIELDS,
                            format!("the query selects more than {max} fields"),
                        ));
                    }
                    if field.alias.is_some() {
                        self.aliases += 1;
                        if self.aliases > self.limits.max_aliases {
                            let max = self.limits.max_aliases;
                            return Err(limit_error(
                                codes::TOO_MANY_ALIASES,
                                format!("the query uses more than {max} aliases"),
                            ));
                        }
                    }
                    let name = field.name.node.as_str();
                    let introspects = name == "__schema" || name == "__type";
                    if introspects && !self.limits.introspection {
                        return Err(limit_error(
                            codes::INTROSPECTION_DISABLED,
                            "introspection is disabled on this server".to_owned(),
                        ));
                    }
                    let lists = match lists {
                        None if introspects => Some(0),
                        Some(n)
                            if matches!(
                                name,
                                "fields" | "inputFields" | "interfaces" | "possibleTypes"
                            ) =>
                        {
                            Some(n + 1)
                        }
                        other => other,
                    };
                    if lists.is_some_and(|n| n > MAX_INTROSPECTION_LISTS) {
                        return Err(limit_error(
                            codes::TOO_DEEP,
                            format!(
                                "introspection may nest fields, inputFields, interfaces and possibleTypes at most {MAX_INTROSPECTION_LISTS} levels deep"
                            ),
                        ));
                    }
                    let depth = if lists.is_some() { depth } else { depth + 1 };
                    if depth > self.limits.max_depth {
                        let max = self.limits.max_depth;
                        return Err(limit_error(
                            codes::TOO_DEEP,
                            format!("the query is nested more than {max} fields deep"),
                        ));
                    }
                    self.selection_set(&field.selection_set, depth, lists)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set, depth, lists)?;
                }
                Selection::FragmentSpread(spread) => {
                    // Unknown fragments are reported by validation.
                    if let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.selection_set(&fragment.node.selection_set, depth, lists)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_document(doc: &ExecutableDocument, limits: &QueryLimits) -> ServerResult<()> {
    let mut walk = Walk {
        doc,
        limits,
        fields: 0,
        aliases: 0,
    };
    for (_, operation) in doc.operations.iter() {
        walk.selection_set(&operation.node.selection_set, 0, None)?;
    }
    Ok(())
}

/// The parser reports syntax errors as a multi-line source excerpt ending in
/// `= expected ...`; clients get that last line (the position is already in
/// `locations`).
fn syntax_message(message: &str) -> Option<String> {
    if !message.trim_start().starts_with("-->") {
        return None;
    }
    let expected = message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))?;
    Some(format!("syntax error: {}", expected.replace('_', " ")))
}

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
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        check_nesting(query, self.0.max_nesting)?;
        let doc = next.run(ctx, query, variables).await.map_err(|mut error| {
            if error.message.starts_with(RECURSION_MESSAGE) {
                error = limit_error(codes::TOO_DEEP, error.message);
            } else if let Some(short) = syntax_message(&error.message) {
                error.message = short;
            }
            error
        })?;
        check_document(&doc, &self.0)?;
        super::variables::check(&ctx.schema_env.registry, &doc, variables)?;
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
            return Err(vec![limit_error(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert!(check_nesting("{ a(s: \"{{{{{{\") # {{{{{{\n }", 2).is_ok());
        assert!(check_nesting("{ a(s: \"\"\"{{{{ \\\"\"\" {{{{\"\"\") }", 2).is_ok());
        assert!(check_nesting("{ a { b { c } } }", 2).is_err());
    }

    #[test]
    fn syntax_errors_read_as_one_line() {
        let pest = " --> 1:2\n  |\n1 | {\n  |  ^---\n  |\n  = expected selection";
        assert_eq!(
            syntax_message(pest).as_deref(),
            Some("syntax error: expected selection")
        );
        assert_eq!(syntax_message("Unknown field"), None);
    }

    #[test]
    fn list_cost_multiplies_by_the_page_size_asked_for() {
        assert_eq!(list_cost(Some(10), 3), 31);
        assert_eq!(list_cost(None, 3), 61);
        assert_eq!(list_cost(Some(-5), 3), 1);
        assert_eq!(list_cost(Some(i32::MAX), 1), 101);
    }
}
