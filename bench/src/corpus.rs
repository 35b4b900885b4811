//! The hostile corpus: the worst documents of each kind that fit the body
//! limit (the same attacks as `tests/api/security/front_door.rs`, `fuzz.rs`
//! and `search.rs`, written again here: the benchmark cannot use test code).
use serde_json::{json, Value};

/// How a document reaches the server.
pub enum Transport {
    /// `POST /graphql` with this JSON body (`token`: as a seeded user).
    Post { body: String, token: bool },
    /// `GET /graphql?query=...` (the document, URL-encoded by the client).
    Get { query: String },
}

pub struct Hostile {
    pub name: String,
    pub transport: Transport,
}

impl Hostile {
    fn post(name: impl Into<String>, body: Value, token: bool) -> Self {
        Self {
            name: name.into(),
            transport: Transport::Post {
                body: body.to_string(),
                token,
            },
        }
    }

    fn query(name: impl Into<String>, document: String) -> Self {
        Self::post(name, json!({ "query": document }), false)
    }

    /// Bytes on the wire: the body, or the URL-encoded document.
    pub fn size(&self) -> usize {
        match &self.transport {
            Transport::Post { body, .. } => body.len(),
            Transport::Get { query } => encoded_len(query),
        }
    }

    pub fn via(&self) -> &'static str {
        match self.transport {
            Transport::Post { .. } => "POST",
            Transport::Get { .. } => "GET",
        }
    }
}

/// Longest GET document sent: a URL of ~30 KB, well inside hyper's header
/// limits (a longer one is refused by hyper before any handler runs).
const GET_DEPTH: usize = 5_000;

/// Room left in a body for the JSON around a document.
const SLACK: usize = 256;

/// Every kind, each as large as `limit` (`BODY_LIMIT_BYTES`) allows.
pub fn corpus(limit: usize) -> Vec<Hostile> {
    let room = limit.saturating_sub(SLACK);
    let mut out = Vec::new();
    for levels in [27, 30] {
        out.push(Hostile::query(
            format!("fragment chain, each spreading the next twice, {levels} levels (2^{levels} selections expanded), ending in signUp"),
            doubling_chain(levels, "Mutation", "mutation", &sign_up()),
        ));
    }
    out.push(Hostile {
        name: "fragment chain ×2, 30 levels, by GET".to_owned(),
        transport: Transport::Get {
            query: doubling_chain(30, "Query", "query", "__typename"),
        },
    });
    out.push(Hostile::query(
        "unused fragment chain ×2, 60 levels (validation must not expand it)",
        unused_chain(60),
    ));
    out.push(Hostile::query(
        format!(
            "alias flood filling the body: {} aliases",
            aliases_within(room)
        ),
        aliases(aliases_within(room)),
    ));
    out.push(Hostile::query(
        "alias flood at the token cap: 1,650 aliases in 4,952 tokens",
        aliases(1_650),
    ));
    out.push(Hostile::post(
        "16 aliases (the cap) of `me`, answered",
        json!({ "query": format!("{{ {} }}", (0..16).map(|i| format!("m{i}: me {{ id name email createdAt }}")).collect::<Vec<_>>().join(" ")) }),
        true,
    ));
    let directives = room.saturating_sub(20) / "@nope ".len();
    out.push(Hostile::query(
        format!("unknown directives filling the body: {directives}"),
        format!("{{ __typename {} }}", "@nope ".repeat(directives)),
    ));
    out.push(Hostile::query(
        "50 unknown directives (the cap) on one field",
        format!("{{ me {} {{ id }} }}", "@nope ".repeat(50)),
    ));
    let lists = room.saturating_sub(20) / 2;
    out.push(Hostile::query(
        format!("list values nested {lists} deep"),
        nested_lists(lists),
    ));
    out.push(Hostile {
        name: format!("list values nested {GET_DEPTH} deep, by GET"),
        transport: Transport::Get {
            query: nested_lists(GET_DEPTH),
        },
    });
    let objects = room.saturating_sub(20) / "{b: ".len();
    out.push(Hostile::query(
        format!("object values nested {objects} deep, unclosed"),
        format!("{{ a(x: {}) }}", "{b: ".repeat(objects)),
    ));
    let braces = room / "{a".len();
    out.push(Hostile::query(
        format!("selection sets opened {braces} deep"),
        "{a".repeat(braces),
    ));
    out.push(Hostile::query(
        "a variable of list type nested 500,000 deep",
        format!(
            "query($v: {}Int) {{ __typename }}",
            "[".repeat(500_000_usize.min(room))
        ),
    ));
    let definitions: Vec<String> = (0..50_000).map(|i| format!("$v{i}: Int")).collect();
    out.push(Hostile::query(
        "50,000 variable definitions",
        format!("query({}) {{ __typename }}", definitions.join(", ")),
    ));
    let supplied: serde_json::Map<String, Value> =
        (0..50_000).map(|i| (format!("v{i}"), json!(i))).collect();
    out.push(Hostile::post(
        "50,000 variables supplied",
        json!({ "query": "{ __typename }", "variables": supplied }),
        false,
    ));
    out.push(deep_variables(100));
    out.push(deep_variables(room.saturating_sub(80) / 2));
    let huge = "ab ".repeat(room.saturating_sub(4_000) / 3);
    out.push(Hostile::post(
        format!(
            "a {} KB search string used by 16 aliases (8 searchUsers, 8 searchMessages)",
            huge.len() / 1_000
        ),
        json!({ "query": search_aliases(), "variables": { "q": huge } }),
        true,
    ));
    // 512 bytes is the longest search query accepted.
    let mut longest = String::new();
    for i in 0.. {
        let word = format!("w{i} ");
        if longest.len() + word.len() > 512 {
            break;
        }
        longest.push_str(&word);
    }
    out.push(Hostile::post(
        "the longest accepted search string (512 bytes) used by 16 aliases, answered",
        json!({ "query": search_aliases(), "variables": { "q": longest } }),
        true,
    ));
    let chain = doubling_chain(30, "Mutation", "mutation", &sign_up());
    out.push(Hostile::post(
        "a batch of 10 (the cap) fragment chains ×2, 30 levels",
        Value::Array(vec![json!({ "query": chain }); 10]),
        false,
    ));
    out
}

fn sign_up() -> String {
    "signUp(input: {email: \"chain@example.org\", name: \"C\", password: \"password123\"}) { token }"
        .to_owned()
}

/// `levels` fragments, each spreading the next twice, the last `leaf`.
fn doubling_chain(levels: usize, on: &str, operation: &str, leaf: &str) -> String {
    let mut document = format!("{operation} {{ ...F0 }}\n");
    for i in 0..levels {
        document.push_str(&format!(
            "fragment F{i} on {on} {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    document.push_str(&format!("fragment F{levels} on {on} {{ {leaf} }}"));
    document
}

/// A doubling chain no operation uses.
fn unused_chain(levels: usize) -> String {
    let mut document = format!("{{ __typename }}\nfragment F{levels} on Query {{ __typename }}\n");
    for i in 0..levels {
        document.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    document
}

/// `{ a0: __typename a1: __typename ... }`.
fn aliases(count: usize) -> String {
    let mut document = String::from("{ ");
    for i in 0..count {
        document.push_str(&format!("a{i}: __typename "));
    }
    document.push('}');
    document
}

/// How many aliases [`aliases`] fits in `room` bytes.
fn aliases_within(room: usize) -> usize {
    let (mut count, mut len) = (0, 4);
    loop {
        let next = format!("a{count}: __typename ").len();
        if len + next > room {
            return count;
        }
        len += next;
        count += 1;
    }
}

/// `{ a(x: [[[ ... 1 ... ]]]) }`.
fn nested_lists(depth: usize) -> String {
    format!("{{ a(x: {}1{}) }}", "[".repeat(depth), "]".repeat(depth))
}

/// Variables whose JSON nests `depth` lists deep.
fn deep_variables(depth: usize) -> Hostile {
    let body = format!(
        "{{\"query\": \"query($v: Int) {{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    Hostile {
        name: format!("variables' JSON nested {depth} deep"),
        transport: Transport::Post { body, token: false },
    }
}

fn search_aliases() -> String {
    let aliases: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "u{i}: searchUsers(query: $q) {{ edges {{ cursor }} }} m{i}: searchMessages(query: $q) {{ edges {{ cursor }} }}"
            )
        })
        .collect();
    format!("query($q: String!) {{ {} }}", aliases.join(" "))
}

/// Length of `text` percent-encoded as a query-string value.
fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                1
            } else {
                3
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_fits_the_default_body_limit() {
        let limit = 1024 * 1024;
        let corpus = corpus(limit);
        assert!(corpus.len() >= 15);
        for kind in &corpus {
            assert!(kind.size() <= limit, "{}: {} bytes", kind.name, kind.size());
            if let Transport::Post { body, .. } = &kind.transport {
                // Every body is JSON, except the one nested past serde_json's
                // own limit, which is the point of it.
                let parsed = serde_json::from_str::<Value>(body);
                assert!(
                    parsed.is_ok() || kind.name.contains("JSON nested"),
                    "{}",
                    kind.name
                );
            }
        }
        // The floods are floods: most fill at least 90 % of the limit.
        let full = corpus.iter().filter(|k| k.size() > limit * 9 / 10).count();
        assert!(full >= 6, "{full} documents fill the body");
    }

    #[test]
    fn a_doubling_chain_spreads_each_fragment_twice() {
        let chain = doubling_chain(2, "Query", "query", "__typename");
        assert_eq!(
            chain,
            "query { ...F0 }\nfragment F0 on Query { ...F1 ...F1 }\nfragment F1 on Query { ...F2 ...F2 }\nfragment F2 on Query { __typename }"
        );
    }
}
