//! The cost of a parsed document, in time linear in its length.
//!
//! A fragment may be spread many times, and fragments may spread each other,
//! so expanding spreads while counting costs time exponential in the
//! document (27 fragments that each spread the next twice expand to 2^27
//! selections). Instead each fragment's totals are computed once per
//! context and reused at every spread: the number of selections (fields,
//! spreads and inline fragments, fragments expanded), aliases, field depth
//! and selection-set nesting as async-graphql measures it. A fragment that
//! spreads itself, directly or not, is refused here, before async-graphql's
//! own recursive checks would walk the cycle.
//!
//! Introspection fields do not count towards depth; instead the list fields
//! `fields`, `inputFields`, `interfaces` and `possibleTypes` may nest at most
//! [`MAX_INTROSPECTION_LISTS`] deep inside them (graphql-js's
//! `MaxIntrospectionDepthRule`). That makes a fragment's totals depend on
//! where it is spread (outside introspection, or inside it under 0–3 list
//! fields), so totals are memoised per fragment and context: at most five
//! walks of each fragment.
use std::collections::{HashMap, HashSet};

use async_graphql::{
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    Positioned, ServerError, ServerResult,
};

use super::limits::{codes, QueryLimits};
use crate::error::coded;

/// Most nested introspection list fields, as in graphql-js.
pub const MAX_INTROSPECTION_LISTS: usize = 3;

/// Enclosing introspection list fields; `None` outside introspection.
type Lists = Option<usize>;

/// What one definition costs, its spreads expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub selections: usize,
    pub aliases: usize,
    /// Deepest non-introspection field, 1 for a top-level field.
    pub depth: usize,
    /// Deepest selection set, 0 for the definition's own; every field with
    /// a selection set, spread and inline fragment adds one.
    pub nesting: usize,
}

/// A spread met while walking one definition, and where it was met.
struct Spread<'a> {
    fragment: &'a str,
    depth: usize,
    nesting: usize,
    lists: Lists,
}

/// One definition's own totals (spreads not expanded) and its spreads.
#[derive(Default)]
struct Local<'a> {
    totals: Totals,
    spreads: Vec<Spread<'a>>,
}

type Key<'a> = (&'a str, Lists);

/// Totals of every operation of `doc`, summed (depth and nesting: the
/// largest), refusing introspection when it is off and introspection nested
/// too deep.
pub fn document_totals(doc: &ExecutableDocument, limits: &QueryLimits) -> ServerResult<Totals> {
    let mut memo: HashMap<Key<'_>, Totals> = HashMap::new();
    let mut sum = Totals::default();
    for (_, operation) in doc.operations.iter() {
        let totals = definition_totals(doc, &operation.node.selection_set, limits, &mut memo)?;
        sum.selections = sum.selections.saturating_add(totals.selections);
        sum.aliases = sum.aliases.saturating_add(totals.aliases);
        sum.depth = sum.depth.max(totals.depth);
        sum.nesting = sum.nesting.max(totals.nesting);
    }
    Ok(sum)
}

/// Resolves the spreads below `root` depth-first with an explicit stack (so
/// a long chain of fragments cannot exhaust the thread's stack), each
/// (fragment, context) once.
fn definition_totals<'a>(
    doc: &'a ExecutableDocument,
    root: &'a Positioned<SelectionSet>,
    limits: &QueryLimits,
    memo: &mut HashMap<Key<'a>, Totals>,
) -> ServerResult<Totals> {
    let root = local(root, None, limits)?;
    let mut pending: HashMap<Key<'a>, Local<'a>> = HashMap::new();
    let mut on_path: HashSet<Key<'a>> = HashSet::new();
    // (key, true) once the key's spreads are all resolved.
    let mut stack: Vec<(Key<'a>, bool)> = root.spreads.iter().map(|s| (key(s), false)).collect();
    while let Some((key, resolved)) = stack.pop() {
        if resolved {
            let own = pending.remove(&key).unwrap_or_default();
            memo.insert(key, combine(&own, memo));
            on_path.remove(&key);
            continue;
        }
        if memo.contains_key(&key) {
            continue;
        }
        if on_path.contains(&key) {
            return Err(cycle(key.0));
        }
        let Some(fragment) = doc.fragments.get(key.0) else {
            // Unknown fragments are reported by validation.
            memo.insert(key, Totals::default());
            continue;
        };
        let own = local(&fragment.node.selection_set, key.1, limits)?;
        on_path.insert(key);
        stack.push((key, true));
        for spread in &own.spreads {
            let next = self::key(spread);
            if on_path.contains(&next) {
                return Err(cycle(next.0));
            }
            if !memo.contains_key(&next) {
                stack.push((next, false));
            }
        }
        pending.insert(key, own);
    }
    Ok(combine(&root, memo))
}

fn key<'a>(spread: &Spread<'a>) -> Key<'a> {
    (spread.fragment, spread.lists)
}

fn cycle(fragment: &str) -> ServerError {
    coded(
        "BAD_USER_INPUT",
        format!("fragment {fragment} spreads itself"),
    )
}

/// A definition's totals from its own and its (resolved) spreads'.
fn combine(own: &Local<'_>, memo: &HashMap<Key<'_>, Totals>) -> Totals {
    let mut totals = own.totals;
    for spread in &own.spreads {
        let sub = memo.get(&key(spread)).copied().unwrap_or_default();
        totals.selections = totals.selections.saturating_add(sub.selections);
        totals.aliases = totals.aliases.saturating_add(sub.aliases);
        totals.depth = totals.depth.max(spread.depth.saturating_add(sub.depth));
        totals.nesting = totals
            .nesting
            .max(spread.nesting.saturating_add(sub.nesting));
    }
    totals
}

/// Walks one definition's selections without expanding spreads. Recursion
/// follows the text's own nesting, which the scan has bounded.
fn local<'a>(
    set: &'a Positioned<SelectionSet>,
    lists: Lists,
    limits: &QueryLimits,
) -> ServerResult<Local<'a>> {
    let mut out = Local::default();
    visit(set, 0, 0, lists, limits, &mut out)?;
    Ok(out)
}

fn visit<'a>(
    set: &'a Positioned<SelectionSet>,
    depth: usize,
    nesting: usize,
    lists: Lists,
    limits: &QueryLimits,
    out: &mut Local<'a>,
) -> ServerResult<()> {
    for selection in &set.node.items {
        out.totals.selections += 1;
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if field.alias.is_some() {
                    out.totals.aliases += 1;
                }
                let name = field.name.node.as_str();
                let introspects = name == "__schema" || name == "__type";
                if introspects && !limits.introspection {
                    return Err(coded(
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
                    return Err(coded(
                        codes::TOO_DEEP,
                        format!(
                            "introspection may nest fields, inputFields, interfaces and possibleTypes at most {MAX_INTROSPECTION_LISTS} levels deep"
                        ),
                    ));
                }
                let depth = if lists.is_some() { depth } else { depth + 1 };
                out.totals.depth = out.totals.depth.max(depth);
                if !field.selection_set.node.items.is_empty() {
                    out.totals.nesting = out.totals.nesting.max(nesting + 1);
                    visit(&field.selection_set, depth, nesting + 1, lists, limits, out)?;
                }
            }
            Selection::InlineFragment(fragment) => {
                out.totals.nesting = out.totals.nesting.max(nesting + 1);
                visit(
                    &fragment.node.selection_set,
                    depth,
                    nesting + 1,
                    lists,
                    limits,
                    out,
                )?;
            }
            Selection::FragmentSpread(spread) => {
                out.spreads.push(Spread {
                    fragment: spread.node.fragment_name.node.as_str(),
                    depth,
                    nesting: nesting + 1,
                    lists,
                });
            }
        }
    }
    Ok(())
}

/// Arguments in the document as written (fields' and directives'), each
/// definition once.
pub fn arguments(doc: &ExecutableDocument) -> usize {
    fn set(selections: &SelectionSet) -> usize {
        selections
            .items
            .iter()
            .map(|selection| {
                let directives: usize = selection
                    .node
                    .directives()
                    .iter()
                    .map(|d| d.node.arguments.len())
                    .sum();
                directives
                    + match &selection.node {
                        Selection::Field(field) => {
                            field.node.arguments.len() + set(&field.node.selection_set.node)
                        }
                        Selection::InlineFragment(inline) => set(&inline.node.selection_set.node),
                        Selection::FragmentSpread(_) => 0,
                    }
            })
            .sum()
    }
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| set(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| set(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::for_tests()
    }

    fn totals(query: &str) -> ServerResult<Totals> {
        let doc = parse_query(query).map_err(ServerError::from)?;
        document_totals(&doc, &limits())
    }

    #[test]
    fn spreads_count_and_fragments_are_expanded_where_spread() {
        let t = totals("{ a ...F ...F } fragment F on Q { b { c } }").unwrap();
        // a, two spreads, and b + c twice.
        assert_eq!(t.selections, 7);
        assert_eq!(t.depth, 2);
        assert_eq!(t.nesting, 2);
    }

    #[test]
    fn a_doubling_fragment_chain_costs_its_expansion_without_walking_it() {
        let mut query = String::from("{ ...F60 } fragment F0 on Q { a }\n");
        for i in 1..=60 {
            query.push_str(&format!(
                "fragment F{i} on Q {{ ...F{} ...F{} }}\n",
                i - 1,
                i - 1
            ));
        }
        let t = totals(&query).unwrap();
        // F0 is 1 selection, Fi is 2 + 2·F(i-1) = 3·2^i - 2; plus the root spread.
        assert_eq!(t.selections, 3 * (1usize << 60) - 1);
        assert_eq!(t.nesting, 61);
    }

    #[test]
    fn fragment_cycles_are_refused() {
        for query in [
            "{ ...A } fragment A on Q { ...A ...A }",
            "{ ...A } fragment A on Q { x { ...B } } fragment B on Q { ...A }",
        ] {
            let error = totals(query).unwrap_err();
            assert!(error.message.contains("spreads itself"), "{query}");
        }
    }

    #[test]
    fn arguments_are_counted_once_per_definition() {
        let doc = parse_query(
            "{ a(x: 1, y: 2) @include(if: true) { ...F } } fragment F on Q { b(z: 3) }",
        )
        .unwrap();
        assert_eq!(arguments(&doc), 4);
    }
}
