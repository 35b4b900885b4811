//! Text folding for search, shared by the projection (which stores terms) and
//! the queries (which look them up), so both sides fold the same way. Terms
//! are plain strings matched by equality on indexed arrays: user input is
//! never a regex or an operator.
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Longest prefix stored per word; longer query words match exactly only.
pub const MAX_PREFIX: usize = 12;
/// Shortest prefix stored; one-letter queries match whole words only.
pub const MIN_PREFIX: usize = 2;
/// Most distinct words indexed per text.
pub const MAX_WORDS: usize = 256;

/// Longest search query accepted, in bytes, checked before any folding.
pub const MAX_QUERY_BYTES: usize = 512;

/// Lower-cases, strips accents (é → e), and splits on anything that is not a
/// letter or digit. Words keep their first-seen order and are deduplicated.
pub fn words(text: &str) -> Vec<String> {
    first_words(text, MAX_WORDS)
}

/// Like [`words`], stopping after `max` words: folding is lazy, so the text
/// after the last word kept is never read.
pub fn first_words(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if max == 0 {
        return out;
    }
    let mut word = String::new();
    let folded = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .chain(std::iter::once(' '));
    for c in folded {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if word.is_empty() {
            continue;
        }
        let done = std::mem::take(&mut word);
        if !out.contains(&done) {
            out.push(done);
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// Every prefix of every word, from `MIN_PREFIX` to `MAX_PREFIX` characters,
/// excluding the whole word itself (exact words are in `words`).
pub fn prefixes(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in words {
        let chars: Vec<char> = word.chars().collect();
        for len in MIN_PREFIX..chars.len().min(MAX_PREFIX + 1) {
            let prefix: String = chars[..len].iter().collect();
            if !out.contains(&prefix) {
                out.push(prefix);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_punctuation() {
        assert_eq!(words("Élodie  O'Brien, ÉLODIE!"), ["elodie", "o", "brien"]);
        assert_eq!(words("Straße ﬁx"), ["straße", "fix"]);
        assert_eq!(words(".*$where{}"), ["where"]);
    }

    #[test]
    fn folding_stops_at_the_word_limit() {
        assert_eq!(first_words("b a b c d", 3), ["b", "a", "c"]);
        assert!(first_words("anything", 0).is_empty());
        let many: String = (0..1000).map(|i| format!("w{i} ")).collect();
        assert_eq!(first_words(&many, 16).len(), 16);
        assert_eq!(words(&many).len(), MAX_WORDS);
    }

    #[test]
    fn prefixes_exclude_the_word_and_one_letter_stubs() {
        let p = prefixes(&words("calc"));
        assert_eq!(p, ["ca", "cal"]);
        assert!(prefixes(&words(&"x".repeat(40)))
            .iter()
            .all(|p| p.len() <= MAX_PREFIX));
    }
}
