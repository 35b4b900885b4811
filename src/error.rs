//! One error type for the whole application.
//!
//! Each variant maps to a stable `extensions.code` for GraphQL clients. The
//! internal variants keep their cause for the logs but display only a fixed
//! message, so nothing about the database or driver ever reaches a client.
use async_graphql::ServerError;

/// Every failure a request, the worker or the CLI can meet.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Over a rate limit; `retry_after` (seconds) becomes
    /// `extensions.retryAfterSeconds`.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("internal error")]
    Db(#[from] sea_orm::DbErr),
    #[error("internal error")]
    ReadModel(#[from] mongodb::error::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Db(_) | Self::ReadModel(_) | Self::Internal(_) => "INTERNAL",
        }
    }

    pub fn is_internal(&self) -> bool {
        self.code() == "INTERNAL"
    }

    /// The full cause chain, for logs only.
    pub fn chain(&self) -> String {
        let mut out = match self {
            Self::Db(e) => format!("database: {e}"),
            Self::ReadModel(e) => format!("read model: {e}"),
            Self::Internal(e) => format!("{e:#}"),
            other => other.to_string(),
        };
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            source = cause.source();
        }
        out
    }
}

/// Gives a GraphQL error its `extensions.code`; internal errors are logged
/// here with their cause chain and leave as a bare "internal error".
pub fn classify(error: &mut ServerError) {
    let coded = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if coded {
        return;
    }
    let source = error.source.clone();
    let code = match source.as_deref().and_then(|s| s.downcast_ref::<AppError>()) {
        Some(AppError::RateLimited { retry_after, .. }) => {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("retryAfterSeconds", *retry_after);
            "RATE_LIMITED"
        }
        Some(app) => {
            if app.is_internal() {
                tracing::error!(error = %app.chain(), path = ?error.path, "request failed");
                error.message = "internal error".to_owned();
            }
            app.code()
        }
        None => {
            // Errors without an application source come from async-graphql
            // itself: parsing, validation and argument coercion.
            "BAD_USER_INPUT"
        }
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// A GraphQL error whose `extensions.code` is `code`.
pub fn coded(code: &str, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// Keeps the first `max` errors and replaces the rest with one error saying
/// how many were dropped (`TOO_MANY_ERRORS`).
pub fn cap(errors: &mut Vec<ServerError>, max: usize) {
    if errors.len() <= max {
        return;
    }
    let dropped = errors.len() - max;
    errors.truncate(max);
    errors.push(coded(
        "TOO_MANY_ERRORS",
        format!("{dropped} more errors were dropped: a response reports at most {max}"),
    ));
}
