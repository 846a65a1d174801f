//! The engine's layering, read from its sources: the protocol adapters
//! (`native/`, `kafka/`) sit over a core that imports neither, and no file
//! imports, through any chain, a file of another module that imports it
//! back. Files of one directory module may refer to each other (a parent
//! declares its children and they use its types).
//!
//! An import is a `use` of a path into the crate (`crate::`, `super::`,
//! `self::`, or a child module's name) or a `crate::` path written inline;
//! comments and `#[cfg(test)]` code do not count. A path is resolved to the
//! file of the longest module it names.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Files, by their module path (`["partition", "route"]`), and their text.
fn sources() -> BTreeMap<Vec<String>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative: PathBuf = path.strip_prefix(&root).unwrap().with_extension("");
                let mut module: Vec<String> = relative
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                files.insert(module, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

/// The code that counts: before `#[cfg(test)]`, without comment lines.
fn code(text: &str) -> String {
    text.split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree names, each split at `::`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, rest) = match tree.find("::{") {
        Some(at) if tree.ends_with('}') => (&tree[..at], Some(&tree[at + 3..tree.len() - 1])),
        _ => (tree, None),
    };
    let head = head.split(" as ").next().unwrap_or_default().trim();
    let mut base = prefix.to_vec();
    base.extend(head.split("::").map(|part| part.trim().to_string()));
    let Some(rest) = rest else {
        out.push(base);
        return;
    };
    let (mut depth, mut item) = (0, String::new());
    let mut items = Vec::new();
    for ch in rest.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(ch);
    }
    items.push(item);
    for item in items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
    {
        if item == "self" {
            out.push(base.clone());
        } else {
            expand(&base, item, out);
        }
    }
}

/// Each file's imports, as the files they resolve to.
fn imports() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = sources();
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|length| path[..length].to_vec())
            .find(|module| files.contains_key(module))
    };
    let mut edges = BTreeMap::new();
    for (module, text) in &files {
        let code = code(text);
        let mut paths = Vec::new();
        for statement in code.split(';') {
            if let Some(at) = statement.find("use ") {
                let before = &statement[..at];
                if before.trim().is_empty()
                    || before.trim_end().ends_with("pub")
                    || before.trim_end().ends_with(')')
                {
                    expand(&[], &statement[at + 4..].replace('\n', " "), &mut paths);
                }
            }
        }
        for (at, _) in code.match_indices("crate::") {
            let path: String = code[at..]
                .chars()
                .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == ':')
                .collect();
            paths.push(path.split("::").map(str::to_string).collect());
        }
        let mut targets = BTreeSet::new();
        for path in paths {
            let target = match path.first().map(String::as_str) {
                Some("crate") => path[1..].to_vec(),
                Some("self") => [module.clone(), path[1..].to_vec()].concat(),
                Some("super") => {
                    let mut base = module.clone();
                    let mut rest = &path[..];
                    while rest.first().map(String::as_str) == Some("super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    [base, rest.to_vec()].concat()
                }
                Some(first) => {
                    let child = [module.clone(), vec![first.to_string()]].concat();
                    if !files.contains_key(&child) {
                        continue;
                    }
                    [module.clone(), path].concat()
                }
                None => continue,
            };
            if let Some(file) = resolve(&target).filter(|file| file != module) {
                targets.insert(file);
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The directory a file's module lies in: `partition/route.rs` and
/// `partition/mod.rs` both lie in `partition`; `shard.rs` in the root.
fn directory(
    module: &[String],
    files: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<String> {
    let is_dir_module = files
        .keys()
        .any(|other| other.len() > module.len() && other.starts_with(module));
    if is_dir_module {
        module.to_vec()
    } else {
        module[..module.len().saturating_sub(1)].to_vec()
    }
}

/// Every file reachable from `start` by imports.
fn reachable<'a>(
    start: &'a Vec<String>,
    edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> BTreeSet<&'a Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![start];
    while let Some(file) = pending.pop() {
        for next in &edges[file] {
            if seen.insert(next) {
                pending.push(next);
            }
        }
    }
    seen
}

#[test]
fn no_file_reaches_back_to_itself_through_another_module() {
    let edges = imports();
    assert!(
        edges.len() > 40,
        "the engine's sources were not found: {} files",
        edges.len()
    );
    let reach: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = edges
        .keys()
        .map(|file| (file, reachable(file, &edges)))
        .collect();
    // Two files that reach each other are in one cycle: they must be files
    // of one directory module.
    for (a, from_a) in &reach {
        for b in from_a.iter().filter(|b| reach[*b].contains(a)) {
            let (dir_a, dir_b) = (directory(a, &edges), directory(b, &edges));
            assert!(
                dir_a == dir_b && !dir_a.is_empty(),
                "an import cycle across modules: {} and {} reach each other",
                a.join("/"),
                b.join("/")
            );
        }
    }
}

#[test]
fn the_core_imports_no_protocol_adapter() {
    let edges = imports();
    let adapter =
        |file: &Vec<String>| matches!(file.first().map(String::as_str), Some("native" | "kafka"));
    // The top starts the listeners of both protocols.
    let top = |file: &Vec<String>| file.is_empty() || file == &["broker".to_string()];
    for (file, targets) in &edges {
        if adapter(file) || top(file) {
            continue;
        }
        if let Some(target) = targets.iter().find(|target| adapter(target)) {
            panic!(
                "{} imports the adapter {}",
                file.join("/"),
                target.join("/")
            );
        }
    }
    // And the rule is not empty: the adapters do import the core.
    assert!(edges[&vec!["native".to_string(), "produce".to_string()]]
        .iter()
        .any(|target| target.first().map(String::as_str) == Some("partition")));
}
