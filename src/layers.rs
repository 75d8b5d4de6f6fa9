//! The layers point one way (lib.rs, DESIGN.md §1): the leaves (`error`, `redact`,
//! `shape_check`, `tensor`, `identity`, `log`, `progress`), then `cache` and `sampler`,
//! then `http`, then `producers`, then `ffi`. A lower layer never names a higher one.
//! This test reads `src/` and fails on a path that climbs: `crate::NAME`,
//! `crate::{.., NAME, ..}` or `super::…::NAME` reaching the crate root, where NAME is a
//! module the file's layer must not know. Comments are not read.

use std::path::{Path, PathBuf};

/// Per layer (a file, or a folder of files), the crate modules it must never name.
const RULES: &[(&str, &[&str])] = &[
    ("error.rs", ABOVE_LEAVES),
    ("redact.rs", ABOVE_LEAVES),
    ("shape_check.rs", ABOVE_LEAVES),
    ("tensor.rs", ABOVE_LEAVES),
    ("identity.rs", ABOVE_LEAVES),
    ("log.rs", ABOVE_LEAVES),
    ("progress.rs", ABOVE_LEAVES),
    ("cache", &["http", "producers", "sampler", "ffi"]),
    ("sampler", &["cache", "http", "producers", "ffi"]),
    ("http", &["producers", "sampler", "ffi"]),
    ("producers", &["ffi"]),
];

const ABOVE_LEAVES: &[&str] = &["cache", "http", "producers", "sampler", "ffi"];

/// Every `.rs` file under `path` (or `path` itself; none if there is nothing there).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if !path.exists() {
        return Vec::new();
    }
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// How many `super::` from `file` reach the crate root: 1 for `src/x.rs` and
/// `src/x/mod.rs`, 2 for `src/x/y.rs`, ...
fn depth(src: &Path, file: &Path) -> usize {
    let rel = file.strip_prefix(src).unwrap();
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// The crate-level module names a line of code names: after `crate::` (a name or a
/// `{..}` group), or after `depth` or more `super::`.
fn crate_names(code: &str, depth: usize) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `my_crate::`, `$crate::`
        }
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            names.extend(inner.split(',').map(|p| ident(p.trim())));
        } else {
            names.push(ident(after));
        }
    }
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let mut after = &rest[i..];
        let mut supers = 0;
        while let Some(a) = after.strip_prefix("super::") {
            supers += 1;
            after = a;
        }
        rest = after;
        if supers >= depth {
            names.push(ident(after));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Every line of `src` that names a module its layer must not know.
fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (layer, forbidden) in RULES {
        for file in rust_files(&src.join(layer)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let d = depth(src, &file);
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for name in crate_names(code, d) {
                    if forbidden.contains(&name.as_str()) {
                        found.push(format!(
                            "{}:{}: the {layer} layer names crate::{name}: {}",
                            file.strip_prefix(src).unwrap().display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (layer, _) in RULES {
        assert!(
            src.join(layer).exists(),
            "src/{layer} was moved: update RULES"
        );
    }
    let found = violations(&src);
    assert!(found.is_empty(), "paths that climb:\n{}", found.join("\n"));
}

#[test]
fn the_scan_sees_every_spelling_of_a_climbing_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::create_dir_all(src.join("http/s3")).unwrap();
    std::fs::write(src.join("error.rs"), "use crate::http::s3::redact;\n").unwrap();
    std::fs::write(
        src.join("cache/reader.rs"),
        "use crate::{error::Error, producers::Producer};\n// crate::http in a comment\n\
         fn f() { super::super::http::x(); super::lock(); }\n",
    )
    .unwrap();
    std::fs::write(src.join("cache/mod.rs"), "use super::ffi::x;\n").unwrap();
    std::fs::write(
        src.join("http/s3/mod.rs"),
        "use crate::producers::ShapeCheck;\nuse super::client; use super::super::log;\n",
    )
    .unwrap();
    let found = violations(src);
    let named: Vec<&str> = found
        .iter()
        .map(|v| v.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        named,
        [
            "cache/mod.rs:1",
            "cache/reader.rs:1",
            "cache/reader.rs:3",
            "error.rs:1",
            "http/s3/mod.rs:1"
        ],
        "{found:#?}"
    );
}
