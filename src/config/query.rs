//! Limits on the documents a request may send: what the front door checks
//! before anything recursive runs, the complexity budget, errors per
//! response and batching. Part of [`crate::config::Config`] (flattened).
use anyhow::bail;

/// Highest accepted `MAX_QUERY_NESTING`: parsing, validation and execution
/// recurse once per level, and must fit a worker thread's stack.
pub const MAX_NESTING_LIMIT: usize = 128;

#[derive(Clone, Debug, clap::Args)]
pub struct QueryLimits {
    /// Deepest field nesting a query may have (introspection excluded: it is
    /// bounded by `MAX_QUERY_NESTING` and the introspection rule instead).
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// Budget for a query's estimated cost: each field costs 1, list fields
    /// multiply their selection's cost by `first` (or the default page size).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 5_000)]
    pub max_query_complexity: usize,
    /// Most selections (fields, fragment spreads, inline fragments) in a
    /// document, fragments expanded (each fragment costed once, so counting is
    /// linear in the document). Checked before validation, whose cost grows
    /// faster than linearly with the selection count.
    #[arg(long, env = "MAX_QUERY_FIELDS", default_value_t = 500)]
    pub max_query_fields: usize,
    /// Most aliases in a document; aliases multiply work (e.g. many `logIn`s
    /// in one request).
    #[arg(long, env = "MAX_QUERY_ALIASES", default_value_t = 16)]
    pub max_query_aliases: usize,
    /// Deepest nesting of braces, brackets and parentheses in the query text
    /// (selection sets, list and object values, arguments, list types), of
    /// selection sets through fragments, and of the variables' JSON. Checked
    /// before parsing so a pathological document cannot exhaust the parser's
    /// stack; at most 128.
    #[arg(long, env = "MAX_QUERY_NESTING", default_value_t = 32)]
    pub max_query_nesting: usize,
    /// Most tokens (names, punctuators, values) in a document, counted by a
    /// linear scan of the text before it is parsed.
    #[arg(long, env = "MAX_QUERY_TOKENS", default_value_t = 5_000)]
    pub max_query_tokens: usize,
    /// Most directives (`@...`) in a document.
    #[arg(long, env = "MAX_QUERY_DIRECTIVES", default_value_t = 50)]
    pub max_query_directives: usize,
    /// Most arguments (of fields and directives) in a document, as written.
    #[arg(long, env = "MAX_QUERY_ARGUMENTS", default_value_t = 200)]
    pub max_query_arguments: usize,
    /// Most variables a request may supply, and most variable definitions
    /// in its document.
    #[arg(long, env = "MAX_QUERY_VARIABLES", default_value_t = 100)]
    pub max_query_variables: usize,
    /// Most operations in a document.
    #[arg(long, env = "MAX_QUERY_OPERATIONS", default_value_t = 10)]
    pub max_query_operations: usize,
    /// Most definitions (operations and fragments) in a document.
    #[arg(long, env = "MAX_QUERY_DEFINITIONS", default_value_t = 100)]
    pub max_query_definitions: usize,
    /// Most errors in one response; the rest are dropped and one final error
    /// (`TOO_MANY_ERRORS`) says how many.
    #[arg(long, env = "MAX_RESPONSE_ERRORS", default_value_t = 20)]
    pub max_response_errors: usize,
    /// Accept JSON arrays of operations in one POST.
    #[arg(long, env = "BATCHING", default_value_t = true, action = clap::ArgAction::Set)]
    pub batching: bool,
    /// Most operations in one batch.
    #[arg(long, env = "BATCH_MAX_OPERATIONS", default_value_t = 10)]
    pub batch_max_operations: usize,
    /// A manifest of trusted documents (Apollo's or Relay's format): when
    /// set, only its documents run, by id or by exact text.
    #[arg(long, env = "TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<std::path::PathBuf>,
    /// Accept Apollo's automatic persisted queries (ignored with
    /// `TRUSTED_DOCUMENTS`, which registers nothing).
    #[arg(long, env = "PERSISTED_QUERIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub persisted_queries: bool,
    /// Most documents the persisted-query table keeps; past it, new ones
    /// run but are not stored.
    #[arg(long, env = "PERSISTED_QUERIES_MAX", default_value_t = 10_000)]
    pub persisted_queries_max: u64,
}

impl QueryLimits {
    /// Every limit must allow at least one request, and nesting stays within
    /// what the stack is known to take.
    pub fn validate(&self) -> anyhow::Result<()> {
        let limits = [
            ("MAX_QUERY_DEPTH", self.max_query_depth),
            ("MAX_QUERY_COMPLEXITY", self.max_query_complexity),
            ("MAX_QUERY_FIELDS", self.max_query_fields),
            ("MAX_QUERY_NESTING", self.max_query_nesting),
            ("MAX_QUERY_TOKENS", self.max_query_tokens),
            ("MAX_QUERY_DIRECTIVES", self.max_query_directives),
            ("MAX_QUERY_ARGUMENTS", self.max_query_arguments),
            ("MAX_QUERY_VARIABLES", self.max_query_variables),
            ("MAX_QUERY_OPERATIONS", self.max_query_operations),
            ("MAX_QUERY_DEFINITIONS", self.max_query_definitions),
            ("MAX_RESPONSE_ERRORS", self.max_response_errors),
            ("BATCH_MAX_OPERATIONS", self.batch_max_operations),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, value)| *value == 0) {
            bail!("{name} must be positive");
        }
        if self.max_query_nesting > MAX_NESTING_LIMIT {
            bail!("MAX_QUERY_NESTING must be at most {MAX_NESTING_LIMIT}: deeper documents risk the stack");
        }
        if let Some(path) = &self.trusted_documents {
            super::documents::Manifest::load(path)?;
        }
        Ok(())
    }
}
