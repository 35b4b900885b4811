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

/// Lower-cases, strips accents (é → e), and splits on anything that is not a
/// letter or digit. Words keep their first-seen order and are deduplicated.
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for word in folded.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || out.iter().any(|w| w == word) {
            continue;
        }
        out.push(word.to_owned());
        if out.len() == MAX_WORDS {
            break;
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
    fn prefixes_exclude_the_word_and_one_letter_stubs() {
        let p = prefixes(&words("calc"));
        assert_eq!(p, ["ca", "cal"]);
        assert!(prefixes(&words(&"x".repeat(40)))
            .iter()
            .all(|p| p.len() <= MAX_PREFIX));
    }
}
