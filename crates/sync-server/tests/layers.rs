//! The layer rule of ARCHITECTURE.md ("Module dependencies run one way"),
//! checked on the source: every `crate::` and `super::` path in `src/` is an
//! edge between top-level modules, and each edge must point to the same
//! layer or a lower one, with no cycle anywhere. A route does not import
//! another route, and neither store imports the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first. A new top-level module must be placed here.
const LAYERS: &[&[&str]] = &[
    &["store"],
    &[
        "auth",
        "body_deadline",
        "clock",
        "config",
        "error",
        "extract",
        "fanout",
        "gc",
        "limiter",
        "listener",
        "positions",
        "push",
        "state",
    ],
    &["rate_limit", "realtime", "routes"],
    &["app", "serve"],
];

/// Folders whose children must not import each other.
const SIBLINGS_APART: &[(&str, &[&str])] = &[("routes", &[]), ("store", &["sqlite", "postgres"])];

type Module = Vec<String>;

/// The module path of a file under `src/` (`routes/push.rs` → `routes::push`).
fn module_of(relative: &str) -> Module {
    let trimmed = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths of a use tree at the start of `rest` (`{a::b, c}` → `[a, b]`, `[c]`).
fn use_tree(rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Vec<Module> {
    while rest.peek().is_some_and(|c| c.is_whitespace()) {
        rest.next();
    }
    match rest.peek() {
        Some('{') => {
            rest.next();
            let mut paths = Vec::new();
            loop {
                paths.extend(use_tree(rest));
                while rest.peek().is_some_and(|c| c.is_whitespace()) {
                    rest.next();
                }
                match rest.next() {
                    Some(',') => continue,
                    _ => break,
                }
            }
            paths
        }
        Some(c) if c.is_alphabetic() || *c == '_' => {
            let mut ident = String::new();
            while rest
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                ident.extend(rest.next());
            }
            let mut ahead = rest.clone();
            if ahead.next() == Some(':') && ahead.next() == Some(':') {
                rest.next();
                rest.next();
                let tails = use_tree(rest);
                return tails
                    .into_iter()
                    .map(|tail| std::iter::once(ident.clone()).chain(tail).collect())
                    .collect();
            }
            vec![vec![ident]]
        }
        _ => vec![Vec::new()],
    }
}

/// Every absolute module path that `source` (the file of `module`) names.
fn paths_named(module: &Module, source: &str) -> Vec<Module> {
    let code = strip_comments(source);
    let mut found = Vec::new();
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Module = Vec::new();
        let mut rest = &code[at..];
        if let Some(after) = rest.strip_prefix("crate::") {
            rest = after;
        } else {
            // `super` of `a::b` is `a`, whether the file is `a/b.rs` or `a/b/mod.rs`.
            base = module.clone();
            while let Some(after) = rest.strip_prefix("super::") {
                base.pop();
                rest = after;
            }
        }
        let mut chars = rest.chars().peekable();
        for tail in use_tree(&mut chars) {
            found.push(base.iter().cloned().chain(tail).collect());
        }
    }
    found
}

/// What breaks the rule in the tree of `files` (relative path → source).
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<Module> = files.keys().map(|f| module_of(f)).collect();
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (*n, i)))
        .collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, source) in files {
        let from = module_of(file);
        let Some(top) = from.first() else { continue };
        if !layer_of.contains_key(top.as_str()) {
            problems.push(format!(
                "`{top}` ({file}) is in no layer of tests/layers.rs"
            ));
            continue;
        }
        for path in paths_named(&from, source) {
            let Some(to) = path.first() else { continue };
            if !modules.iter().any(|m| m.first() == Some(to)) {
                continue; // a name in the crate root or a test module's `super::*`
            }
            if to != top {
                edges.entry(top.clone()).or_default().insert(to.clone());
                let (a, b) = (layer_of[top.as_str()], layer_of.get(to.as_str()));
                if b.is_some_and(|b| *b > a) {
                    problems.push(format!(
                        "{file}: `{top}` may not use `{to}`, a higher layer"
                    ));
                }
            }
            for (parent, apart) in SIBLINGS_APART {
                // The child of `parent` a path lies in, if it is one of the folder's modules.
                let child = |m: &Module| {
                    let c = m.get(1).filter(|_| m[0] == *parent)?;
                    let known = modules
                        .iter()
                        .any(|k| k.len() > 1 && k[0] == *parent && k[1] == *c);
                    (known && (apart.is_empty() || apart.contains(&c.as_str()))).then(|| c.clone())
                };
                if let (Some(a), Some(b)) = (child(&from), child(&path)) {
                    if a != b {
                        problems.push(format!(
                            "{file}: `{parent}::{a}` may not use `{parent}::{b}`"
                        ));
                    }
                }
            }
        }
    }
    problems.extend(cycles(&edges));
    problems
}

/// One message per module that can reach itself.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    found.push(format!("cycle: {} → {start}", trail.join(" → ")));
                    stack.clear();
                    break;
                }
                if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("below src")
                .to_string_lossy();
            let source = std::fs::read_to_string(&path).expect("a source file");
            files.insert(relative.replace('\\', "/"), source);
        }
    }
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn module_dependencies_run_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    files.remove("lib.rs");
    assert!(files.len() > 20, "read the source tree");
    let problems = violations(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_upward_edge_is_reported() {
    let files = tree(&[
        ("store/mod.rs", "use crate::state::AppState;"),
        ("state.rs", "use crate::store::Store;"),
    ]);
    let problems = violations(&files);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`store` may not use `state`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("cycle:")),
        "{problems:?}"
    );
}

#[test]
fn a_cycle_inside_one_layer_is_reported() {
    let files = tree(&[
        ("state.rs", "use crate::{auth::Identity, fanout::hub::Hub};"),
        ("fanout/hub.rs", "fn f() { crate::state::AppState::new(); }"),
        ("auth.rs", ""),
    ]);
    let problems = violations(&files);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(|p| p.starts_with("cycle:")),
        "{problems:?}"
    );
}

#[test]
fn a_route_importing_another_route_is_reported() {
    let files = tree(&[
        ("routes/mod.rs", "pub mod members; pub mod workspaces;"),
        ("routes/workspaces.rs", "pub fn refuse() {}"),
        (
            "routes/members.rs",
            "fn f() { super::workspaces::refuse(); }",
        ),
        ("store/sqlite/mod.rs", "use crate::store::postgres::text;"),
        ("store/postgres/text.rs", ""),
    ]);
    let problems = violations(&files);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`routes::members` may not use `routes::workspaces`")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`store::sqlite` may not use `store::postgres`")),
        "{problems:?}"
    );
}

#[test]
fn a_module_in_no_layer_is_reported() {
    let problems = violations(&tree(&[("helpers.rs", "")]));
    assert_eq!(problems.len(), 1, "{problems:?}");
}
