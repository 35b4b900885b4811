//! The module graph is a stack of layers (docs/architecture.md): a module
//! may use modules of lower layers only. This reads `src/` and fails on any
//! `crate::` path that goes up or sideways.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Lowest first; the same list, with reasons, is in docs/architecture.md.
const LAYERS: &[&[&str]] = &[
    &["error", "entity", "telemetry", "sql_audit", "config"],
    &["domain"],
    &["events"],
    &["pool", "auth"],
    &["write"],
    &["ratelimit"],
    &["sync"],
    &["read"],
    &["app"],
    &["graphql"],
    &["http", "seed"],
    &["startup", "cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Drops `//` comments, so doc examples do not count as imports.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules named by `crate::x` paths and by the items of
/// `crate::{x, y::z, ...}` groups.
fn uses(text: &str) -> BTreeSet<String> {
    let text = code(text);
    let mut found = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (c == ',' && depth == 1) {
                    if let Some(head) = item.trim().split("::").next() {
                        if !head.is_empty() {
                            found.insert(head.to_owned());
                        }
                    }
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                item.push(c);
            }
        } else {
            let head: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !head.is_empty() {
                found.insert(head);
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each top-level module of the library and the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name");
        // The binary and the crate root wire everything together.
        if matches!(first, "main.rs" | "lib.rs") {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let mut used = uses(&text);
        used.remove(&module);
        graph.entry(module).or_default().extend(used);
    }
    graph
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(level) = layer_of(module) else {
            wrong.push(format!(
                "`{module}` is in no layer: add it to docs/architecture.md and LAYERS"
            ));
            continue;
        };
        for dep in used {
            match layer_of(dep) {
                Some(below) if below < level => {}
                Some(_) => wrong.push(format!("`{module}` uses `{dep}`, which is not below it")),
                None => wrong.push(format!("`{module}` uses `{dep}`, which is in no layer")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the module graph breaks its layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_of_imports_sees_them() {
    // So the check above cannot pass by reading nothing.
    let graph = graph();
    assert!(graph["write"].contains("events"), "{graph:?}");
    assert!(graph["sync"].contains("write"), "{graph:?}");
    assert!(graph["graphql"].contains("app"), "{graph:?}");
    assert_eq!(
        uses("use crate::{a::b, c, d::{e, f}};\nlet x = crate::g::h(); // crate::i"),
        ["a", "c", "d", "g"].into_iter().map(String::from).collect()
    );
    for layer in LAYERS {
        for module in *layer {
            assert!(graph.contains_key(*module), "{module} no longer exists");
        }
    }
}

#[test]
fn the_production_build_has_no_cargo_features() {
    // What is benchmarked or tested is what ships: the benchmark's write
    // modes live in the `bench` crate, behind the writer's event sink.
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let gated: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).expect("read a source file");
            code(&text).contains("cfg(feature")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(gated.is_empty(), "cfg(feature ...) in {gated:?}");
    assert!(!files.is_empty());
}

#[test]
fn only_the_pool_hands_out_connections_to_the_source_of_truth() {
    // `pool::Db` begins every transaction in a task of its own (sqlx 0.8
    // loses count of a `BEGIN` whose caller is dropped mid-round-trip), and
    // the pool's check on release trusts that count. A sea-orm connection
    // held anywhere else could begin without it. The audit attaches to the
    // pool's connection before it is wrapped; `migrate` is a one-shot
    // command whose only transactions are the migrations'.
    const ALLOWED: &[&str] = &["pool.rs", "sql_audit.rs", "cli.rs"];
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let holders: Vec<String> = files
        .iter()
        .filter(|file| {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let text = code(&std::fs::read_to_string(file).expect("read a source file"));
            !ALLOWED.contains(&name)
                && (text.contains("DatabaseConnection")
                    || text.contains("Database::connect")
                    || text.contains("PgPool"))
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(holders.is_empty(), "a raw SQL pool in {holders:?}");
    let pool = std::fs::read_to_string(src().join("pool.rs")).expect("read pool.rs");
    assert!(code(&pool).contains("impl TransactionTrait for Db"));
}
