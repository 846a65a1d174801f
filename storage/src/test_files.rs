//! What the unit tests read of a directory.

use std::path::Path;

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The names in `dir` ending in `.suffix`, sorted.
pub(crate) fn names_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let dotted = format!(".{suffix}");
    names(dir)
        .into_iter()
        .filter(|name| name.ends_with(&dotted))
        .collect()
}
