//! The first look at a document: one linear, non-recursive pass over its raw
//! text that bounds its size, its token count, its nesting (selection sets,
//! list and object values, argument and variable-definition parentheses,
//! list types, all counted together) and its directives, before the
//! recursive parser sees it. A document that passes cannot make the parser
//! (or anything after it) recurse deeper than `max_nesting`.
use async_graphql::ServerError;

use super::limits::codes;
use crate::error::coded;

/// What the scan bounds.
#[derive(Clone, Copy, Debug)]
pub struct TextLimits {
    pub max_bytes: usize,
    pub max_tokens: usize,
    pub max_nesting: usize,
    pub max_directives: usize,
}

/// Checks `text` against `limits`, stopping at the first limit exceeded, so
/// its cost is bounded by the limits rather than by the text.
pub fn scan(text: &str, limits: &TextLimits) -> Result<(), ServerError> {
    if text.len() > limits.max_bytes {
        return Err(coded(
            codes::TOO_MANY_FIELDS,
            format!("the query is longer than {} bytes", limits.max_bytes),
        ));
    }
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut tokens, mut directives) = (0usize, 0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        // Ignored tokens: white space, line terminators, commas, the BOM.
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',') {
            i += 1;
            continue;
        }
        if bytes[i..].starts_with("\u{feff}".as_bytes()) {
            i += 3;
            continue;
        }
        if b == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                i += 1;
            }
            continue;
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(coded(
                codes::TOO_MANY_FIELDS,
                format!("the query has more than {} tokens", limits.max_tokens),
            ));
        }
        i = match b {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => block_string_end(bytes, i + 3),
            b'"' => string_end(bytes, i + 1),
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(coded(
                        codes::TOO_DEEP,
                        format!(
                            "the query is nested more than {} levels deep",
                            limits.max_nesting
                        ),
                    ));
                }
                i + 1
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'@' => {
                directives += 1;
                if directives > limits.max_directives {
                    return Err(coded(
                        codes::TOO_MANY_FIELDS,
                        format!(
                            "the query uses more than {} directives",
                            limits.max_directives
                        ),
                    ));
                }
                i + 1
            }
            b'.' if bytes[i..].starts_with(b"...") => i + 3,
            b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                run_end(bytes, i, |c| c == b'_' || c.is_ascii_alphanumeric())
            }
            b'-' | b'0'..=b'9' => run_end(bytes, i + 1, |c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-')
            }),
            // Any other byte (punctuator or not) is a token of its own.
            _ => i + 1,
        };
    }
    Ok(())
}

fn run_end(bytes: &[u8], mut i: usize, part: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() && part(bytes[i]) {
        i += 1;
    }
    i
}

/// Index after the closing quote of a string starting at `i` (after the
/// opening quote); strings end at a line break when unterminated.
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

/// Index after the closing `"""` of a block string whose content starts at `i`.
fn block_string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TextLimits = TextLimits {
        max_bytes: 1 << 20,
        max_tokens: 1_000,
        max_nesting: 2,
        max_directives: 2,
    };

    fn code(text: &str, limits: &TextLimits) -> Option<String> {
        scan(text, limits).err().map(|e| {
            e.extensions
                .and_then(|x| x.get("code").cloned())
                .map(|c| c.to_string())
                .unwrap_or_default()
        })
    }

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert_eq!(code("{ a(s: \"{{{{{{\") # {{{{{{\n }", &LIMITS), None);
        assert_eq!(
            code("{ a(s: \"\"\"{{{{ \\\"\"\" {{{{\"\"\") }", &LIMITS),
            None
        );
        assert!(code("{ a { b { c } } }", &LIMITS).is_some_and(|c| c.contains("QUERY_TOO_DEEP")));
    }

    #[test]
    fn list_values_and_list_types_count_as_nesting() {
        assert!(code("{ a(x: [[[1]]]) }", &LIMITS).is_some());
        assert!(code("query($v: [[[Int]]]) { a }", &LIMITS).is_some());
    }

    #[test]
    fn tokens_and_directives_are_counted_outside_strings_only() {
        let tight = TextLimits {
            max_tokens: 5,
            ..LIMITS
        };
        // `{`, `a`, `(`, `s`, `:`, string, `)`, `}`: eight tokens.
        assert!(code("{ a(s: \"@ @ @ lots of words\") }", &tight)
            .is_some_and(|c| c.contains("QUERY_TOO_LARGE")));
        assert_eq!(code("{ a(s: \"@ @ @\") }", &LIMITS), None);
        assert!(code("{ a @x @y @z }", &LIMITS).is_some_and(|c| c.contains("QUERY_TOO_LARGE")));
        assert_eq!(code("{ a @x ...F @y }", &LIMITS), None);
    }

    #[test]
    fn the_size_is_bounded_before_anything_else() {
        let small = TextLimits {
            max_bytes: 4,
            ..LIMITS
        };
        assert!(code("{ a }", &small).is_some_and(|c| c.contains("QUERY_TOO_LARGE")));
    }
}
