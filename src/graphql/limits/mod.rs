//! Limits on what one GraphQL document may ask for, enforced before anything
//! runs so a hostile query costs the server little more than reading it.
//!
//! Every document goes through one front door, [`admit`], whatever its
//! transport: GET calls it before telling a query from a mutation, and the
//! request's front door (`graphql::door`) calls it for POST and websocket
//! documents (and skips documents already admitted). In order:
//! 1. **The text** (`scan`): size (`BODY_LIMIT_BYTES`), tokens
//!    (`MAX_QUERY_TOKENS`), nesting of `{`, `[` and `(` of every kind
//!    (`MAX_QUERY_NESTING`) and directives (`MAX_QUERY_DIRECTIVES`), in one
//!    linear, non-recursive pass, so the recursive parser never sees a
//!    pathological document. The request's variables: how many
//!    (`MAX_QUERY_VARIABLES`) and how deeply nested (`MAX_QUERY_NESTING`).
//! 2. **One parse**, kept in the request so async-graphql does not parse
//!    again.
//! 3. **The parsed document**: operations (`MAX_QUERY_OPERATIONS`),
//!    definitions (`MAX_QUERY_DEFINITIONS`), arguments
//!    (`MAX_QUERY_ARGUMENTS`), variable definitions (`MAX_QUERY_VARIABLES`),
//!    then its cost in time linear in the document (`cost`, each fragment
//!    costed once): selections with fragments expanded (`MAX_QUERY_FIELDS`;
//!    fields, spreads and inline fragments each count), aliases
//!    (`MAX_QUERY_ALIASES`), field depth (`MAX_QUERY_DEPTH`), selection
//!    nesting through fragments (`MAX_QUERY_NESTING`), fragment cycles. All
//!    of this runs before async-graphql's own checks and validation, whose
//!    cost grows faster than the document and which this bounds.
//!    Introspection (`__schema`, `__type`) does not count towards depth, since
//!    GraphiQL's standard introspection query is 15 levels deep; instead, like
//!    graphql-js's `MaxIntrospectionDepthRule`, it may nest the list fields
//!    `fields`, `inputFields`, `interfaces` and `possibleTypes` at most 3 deep,
//!    which is what stops the exponential `type { fields { type { fields ...`
//!    introspection attack.
//! 4. **Complexity** (`MAX_QUERY_COMPLEXITY`, the schema's
//!    `limit_complexity`), computed by async-graphql during validation: every field costs 1 plus its selection; list fields
//!    cost [`list_cost`], i.e. their selection times the most items they can
//!    return (`first`, default 20, capped at 100, or the list's own cap).
//!
//! **Rule for new list fields:** give every field that returns a list or a
//! connection `#[graphql(complexity = "limits::list_cost(first, child_complexity)")]`
//! or, when it has no `first`, `limits::capped_list_cost(MAX, child_complexity)`
//! with the most items it can return (and make sure it returns no more).
//!
//! Each limit answers with its own `extensions.code`, listed in [`codes`].
use super::scan::TextLimits;
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

/// Cost of a list field: 1 for the field plus its selection's cost once per
/// item it may return.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = first.map_or(DEFAULT_PAGE, |n| {
        u64::try_from(n).unwrap_or(0).min(MAX_PAGE)
    });
    let items = usize::try_from(items).unwrap_or(usize::MAX);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// Cost of a list field without `first` that returns at most `max` items.
pub fn capped_list_cost(max: u64, child_complexity: usize) -> usize {
    let items = usize::try_from(max).unwrap_or(usize::MAX);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// The document limits, taken from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_bytes: usize,
    pub max_tokens: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_nesting: usize,
    pub max_directives: usize,
    pub max_arguments: usize,
    pub max_variables: usize,
    pub max_operations: usize,
    pub max_definitions: usize,
    /// When false, documents that select `__schema` or `__type` are refused
    /// with a clear error (instead of async-graphql's silent null).
    pub introspection: bool,
}

impl QueryLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_bytes: config.body_limit_bytes,
            max_tokens: config.query.max_query_tokens,
            max_depth: config.query.max_query_depth,
            max_complexity: config.query.max_query_complexity,
            max_fields: config.query.max_query_fields,
            max_aliases: config.query.max_query_aliases,
            max_nesting: config.query.max_query_nesting,
            max_directives: config.query.max_query_directives,
            max_arguments: config.query.max_query_arguments,
            max_variables: config.query.max_query_variables,
            max_operations: config.query.max_query_operations,
            max_definitions: config.query.max_query_definitions,
            introspection: config.introspection,
        }
    }

    /// The defaults of [`Config`], for unit tests that have no environment.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_tokens: 10_000,
            max_depth: 12,
            max_complexity: 5_000,
            max_fields: 500,
            max_aliases: 30,
            max_nesting: 32,
            max_directives: 50,
            max_arguments: 200,
            max_variables: 100,
            max_operations: 10,
            max_definitions: 100,
            introspection: true,
        }
    }

    fn text(&self) -> TextLimits {
        TextLimits {
            max_bytes: self.max_bytes,
            max_tokens: self.max_tokens,
            max_nesting: self.max_nesting,
            max_directives: self.max_directives,
        }
    }
}

mod admit;

pub use admit::{admit, Admitted};

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    use async_graphql::{Request, ServerError, Value, Variables};

    use super::{
        admit::{syntax_message, Admitted},
        *,
    };

    fn code(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .and_then(|x| match x.get("code") {
                Some(Value::String(code)) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The worst documents of each kind that fit the body limit.
    fn hostile(max_bytes: usize) -> Vec<String> {
        let n = max_bytes / 2 - 16;
        let mut chain = String::from("{ ...F0 }\n");
        let mut i = 0;
        while chain.len() < max_bytes - 64 {
            chain.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
            i += 1;
        }
        vec![
            format!("{{ a(x: {}1{}) }}", "[".repeat(n), "]".repeat(n)),
            format!("{{ a(x: {}1) }}", "[".repeat(2 * n)),
            format!("{{ a(x: {}) }}", "{b: ".repeat(n / 2)),
            "{a".repeat(n),
            "(".repeat(2 * n),
            format!("query($v: {}Int) {{ a }}", "[".repeat(2 * n)),
            format!("{{ a {} }}", "@x ".repeat(n / 2)),
            format!("{{ {} }}", "a ".repeat(n)),
            chain,
        ]
    }

    #[test]
    fn hostile_documents_within_the_body_limit_are_refused_on_a_small_stack() {
        let run = || {
            let limits = QueryLimits::for_tests();
            let mut codes = Vec::new();
            for doc in hostile(limits.max_bytes) {
                assert!(doc.len() <= limits.max_bytes);
                let mut request = Request::new(doc);
                codes.push(admit(&mut request, &limits).map_err(|e| code(&e)).err());
            }
            // At the nesting limit the parser itself runs, on this stack too.
            let n = limits.max_nesting - 2;
            let deepest = format!("{{ a(x: {}1{}) }}", "[".repeat(n), "]".repeat(n));
            let mut request = Request::new(deepest);
            codes.push(admit(&mut request, &limits).map_err(|e| code(&e)).err());
            codes
        };
        let codes = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(run)
            .expect("thread")
            .join()
            .expect("no overflow, no panic");
        let (deepest, hostile) = codes.split_last().expect("results");
        assert_eq!(deepest, &None);
        for (i, code) in hostile.iter().enumerate() {
            let code = code.as_deref().unwrap_or("admitted");
            assert!(
                ["QUERY_TOO_DEEP", "QUERY_TOO_LARGE"].contains(&code),
                "document {i}: {code}"
            );
        }
    }

    #[test]
    fn an_admitted_document_is_kept_parsed_in_the_request() {
        let limits = QueryLimits::for_tests();
        let mut request = Request::new("query A { a } mutation B { b }").operation_name("B");
        admit(&mut request, &limits).expect("admitted");
        assert!(request.data.contains_key(&TypeId::of::<Admitted>()));
        let doc = request.parsed_query().expect("parsed");
        assert_eq!(doc.operations.iter().count(), 2);
    }

    #[test]
    fn a_document_admitted_again_is_served_parsed_but_still_within_its_limits() {
        let limits = QueryLimits::for_tests();
        let text = "query Again { a { b } c }";
        let mut first = Request::new(text);
        admit(&mut first, &limits).expect("admitted");
        assert!(super::admit::admitted_before(text, &limits).is_some());
        let mut again = Request::new(text);
        admit(&mut again, &limits).expect("admitted from the cache");
        assert_eq!(
            again
                .parsed_query()
                .expect("parsed")
                .operations
                .iter()
                .count(),
            1
        );
        // The variables are the request's own: still checked.
        let many: serde_json::Map<String, serde_json::Value> = (0..=limits.max_variables)
            .map(|i| (format!("v{i}"), serde_json::Value::Null))
            .collect();
        let mut with_many =
            Request::new(text).variables(Variables::from_json(serde_json::Value::Object(many)));
        let error = admit(&mut with_many, &limits).unwrap_err();
        assert_eq!(code(&error), "QUERY_TOO_LARGE");
        // Under stricter limits the same text is checked afresh.
        let strict = QueryLimits {
            max_fields: 2,
            ..limits
        };
        let error = admit(&mut Request::new(text), &strict).unwrap_err();
        assert_eq!(code(&error), "QUERY_TOO_LARGE");
        // A refused document is never kept.
        assert!(super::admit::admitted_before(text, &strict).is_none());
        let refused = "{ a { a { a { a { a { a { a { a { a { a { a { a { a { a { a { a } } } } } } } } } } } } } } } }";
        assert!(admit(&mut Request::new(refused), &limits).is_err());
        assert!(super::admit::admitted_before(refused, &limits).is_none());
    }

    #[test]
    fn too_many_variables_or_deeply_nested_ones_are_refused_before_parsing() {
        let limits = QueryLimits::for_tests();
        let many: serde_json::Map<String, serde_json::Value> = (0..=limits.max_variables)
            .map(|i| (format!("v{i}"), serde_json::Value::Null))
            .collect();
        let mut request =
            Request::new("{ a }").variables(Variables::from_json(serde_json::Value::Object(many)));
        let error = admit(&mut request, &limits).unwrap_err();
        assert_eq!(code(&error), "QUERY_TOO_LARGE");
        let mut deep = serde_json::json!(1);
        for _ in 0..limits.max_nesting {
            deep = serde_json::json!([deep]);
        }
        let mut request =
            Request::new("{ a }").variables(Variables::from_json(serde_json::json!({ "v": deep })));
        let error = admit(&mut request, &limits).unwrap_err();
        assert_eq!(code(&error), "QUERY_TOO_DEEP");
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
        assert_eq!(capped_list_cost(50, 2), 101);
    }
}
