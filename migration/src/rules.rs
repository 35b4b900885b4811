//! The CockroachDB rules PostgreSQL does not enforce, as checks on SQL text.
//!
//! PostgreSQL stands in for CockroachDB locally and in CI, so a statement
//! that only PostgreSQL accepts would pass every test and fail in
//! production. These checks run over every statement the migrations hold
//! and, when `SQL_AUDIT_DIR` is set, every statement the server sends (the
//! test suite sets it). `docs/cockroachdb.md` gives each rule's source.

/// One broken rule in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Other,
}

/// Splits `sql` into upper-cased words and parentheses, skipping string
/// literals, quoted identifiers, comments and placeholders. Linear, no
/// recursion.
fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                i += 1;
                while i < chars.len() {
                    if chars[i] == c {
                        if chars.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                out.push(Token::Other);
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '$' => {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Token::Other);
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(Token::Word(word.to_ascii_uppercase()));
            }
            c if c.is_whitespace() => i += 1,
            c if c.is_ascii_digit() => {
                // A number; a digit run never starts a word.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Other);
            }
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

fn is_word(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w == word)
}

/// Every rule `sql` breaks; empty when it is fit for CockroachDB.
pub fn check(sql: &str) -> Vec<Violation> {
    let tokens = tokens(sql);
    let mut found = Vec::new();
    let mut flag = |rule: &'static str, detail: String| {
        if !found.iter().any(|v: &Violation| v.rule == rule) {
            found.push(Violation { rule, detail });
        }
    };
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(word) = token else { continue };
        let next = tokens.get(i + 1);
        match word.as_str() {
            "INT" | "INTEGER" => flag(
                "explicit-integer-width",
                format!("`{word}` is INT8 on CockroachDB and INT4 on PostgreSQL; say INT4 or INT8"),
            ),
            "SERIAL" | "SERIAL2" | "SERIAL4" | "SERIAL8" | "SMALLSERIAL" | "BIGSERIAL"
            | "NEXTVAL" | "CURRVAL" | "SETVAL" => flag(
                "no-sequences",
                format!("`{word}`: sequences are slow and unordered on CockroachDB; use gen_random_uuid()"),
            ),
            "SEQUENCE" if i > 0 && is_word(tokens.get(i - 1), "CREATE") => flag(
                "no-sequences",
                "CREATE SEQUENCE: use gen_random_uuid() keys".to_owned(),
            ),
            "LISTEN" | "NOTIFY" | "UNLISTEN" | "PG_NOTIFY" => flag(
                "no-listen-notify",
                format!("`{word}` is not supported by CockroachDB"),
            ),
            w if w.starts_with("PG_ADVISORY") || w.starts_with("PG_TRY_ADVISORY") => flag(
                "no-advisory-locks",
                format!("`{word}`: CockroachDB's advisory locks are no-ops"),
            ),
            "VACUUM" => flag(
                "no-vacuum",
                "VACUUM does not exist on CockroachDB (MVCC garbage is collected by the GC TTL)"
                    .to_owned(),
            ),
            "TRIGGER" if i > 0 && is_word(tokens.get(i - 1), "CREATE") => flag(
                "no-triggers",
                "CREATE TRIGGER: every side effect is written by the application".to_owned(),
            ),
            "EXTENSION" if i > 0 && is_word(tokens.get(i - 1), "CREATE") => flag(
                "no-extensions",
                "CREATE EXTENSION: CockroachDB has no extensions".to_owned(),
            ),
            "AS" if matches!(next, Some(Token::Open))
                && is_modifying(tokens.get(i + 2))
                && !cte_returns(&tokens, i + 1) =>
            {
                flag(
                    "cte-returns-columns",
                    "a data-modifying WITH clause without RETURNING is rejected by CockroachDB"
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    found
}

fn is_modifying(token: Option<&Token>) -> bool {
    matches!(token, Some(Token::Word(w)) if matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "UPSERT"))
}

/// Whether the parenthesised statement opening at `open` has a RETURNING of
/// its own (not one of a nested subquery).
fn cte_returns(tokens: &[Token], open: usize) -> bool {
    let mut depth = 0usize;
    for token in &tokens[open..] {
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return false;
                }
            }
            Token::Word(w) if depth == 1 && w == "RETURNING" => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str) -> Vec<&'static str> {
        check(sql).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_data_modifying_cte_must_return_columns() {
        let bad = r#"WITH "recorded" AS (INSERT INTO "outbox" ("id") VALUES ($1)) INSERT INTO "todos" ("id") VALUES ($2) RETURNING "id""#;
        assert_eq!(rules(bad), ["cte-returns-columns"]);
        let good = r#"WITH "recorded" AS (INSERT INTO "outbox" ("id") VALUES ($1) RETURNING "id") INSERT INTO "todos" ("id") VALUES ($2) RETURNING "id""#;
        assert!(rules(good).is_empty());
        // A RETURNING inside a nested subquery is not the CTE's own.
        let nested =
            "WITH x AS (UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u RETURNING id)) SELECT 1";
        assert_eq!(rules(nested), ["cte-returns-columns"]);
        // A read-only CTE needs nothing.
        assert!(rules("WITH x AS (SELECT 1) SELECT * FROM x").is_empty());
    }

    #[test]
    fn integers_say_their_width() {
        assert_eq!(
            rules("CREATE TABLE t (a INT NOT NULL)"),
            ["explicit-integer-width"]
        );
        assert_eq!(
            rules("SELECT count(*)::integer FROM t"),
            ["explicit-integer-width"]
        );
        assert_eq!(
            rules("SELECT CAST(a AS INT) FROM t"),
            ["explicit-integer-width"]
        );
        for fine in [
            "CREATE TABLE t (a INT4, b INT8, c BIGINT, d SMALLINT)",
            "SELECT now() + INTERVAL '1 second'",
            "SELECT 'int' AS word, \"int\" FROM t -- INT in a comment",
            "SELECT a FROM t WHERE b = $1 /* INTEGER */",
        ] {
            assert!(rules(fine).is_empty(), "{fine}");
        }
    }

    #[test]
    fn postgres_only_features_are_refused() {
        assert_eq!(rules("LISTEN outbox"), ["no-listen-notify"]);
        assert_eq!(rules("SELECT pg_notify('c', 'x')"), ["no-listen-notify"]);
        assert_eq!(
            rules("SELECT pg_advisory_xact_lock(1)"),
            ["no-advisory-locks"]
        );
        assert_eq!(
            rules("SELECT pg_try_advisory_lock(1)"),
            ["no-advisory-locks"]
        );
        assert_eq!(rules("CREATE SEQUENCE s"), ["no-sequences"]);
        assert_eq!(rules("SELECT nextval('s')"), ["no-sequences"]);
        assert_eq!(
            rules("CREATE TABLE t (id SERIAL8 PRIMARY KEY, b BIGSERIAL)"),
            ["no-sequences"]
        );
        assert_eq!(rules("VACUUM ANALYZE outbox"), ["no-vacuum"]);
        assert_eq!(rules("CREATE TRIGGER t AFTER INSERT ON x"), ["no-triggers"]);
        assert_eq!(rules("CREATE EXTENSION pgcrypto"), ["no-extensions"]);
    }

    #[test]
    fn the_statements_the_server_sends_pass() {
        for sql in [
            "UPDATE outbox SET next_attempt_at = now() + ($1::FLOAT8 * INTERVAL '1 millisecond'), \
             claimed_by = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox \
             WHERE processed_at IS NULL LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id",
            "SELECT count(*) AS users, COALESCE(sum(minutes), 0)::BIGINT AS minutes FROM study_totals",
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
        ] {
            assert!(rules(sql).is_empty(), "{sql}");
        }
    }
}
