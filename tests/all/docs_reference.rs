//! The references cannot go stale (issue 24): every public item of the headers and of the
//! Rust crate must appear on its reference page, and every C or C++ name the docs write
//! must exist. Adding an item to the API without documenting it fails here, with a list
//! of what is missing and where.
//!
//! What counts as public, and where it must appear ("appears" = as a word inside a code
//! span or a fenced code block of the page; a *section* is a heading and what follows it
//! up to the next heading of the same or a higher level):
//!
//! - `include/harmonics_dataset.h` -> `docs/c-api.md`: every function (`harmonics_*`),
//!   type (`Harmonics*`), enumerator and macro (`HARMONICS_*`, not the include guard);
//!   every field of each struct, in the struct's section (the section whose heading names
//!   it, else the one where the struct is first named).
//! - `include/harmonics/*.hpp` -> `docs/cpp-api.md`: in namespace `harmonics` (not
//!   `detail`), every class, struct, enum, type alias and free function; every public
//!   member of those (member functions, data members, nested types, enumerators; members
//!   inherited from a `detail` base count as the class's own) in that type's section
//!   (found as for C structs: a nested type documented in its class's table is in the
//!   class's section).
//!   Constructors, destructors and operators are not listed by name.
//! - The Rust crate -> `docs/rust-api.md`: every `pub` item (fn, struct, enum, trait,
//!   type, const, static, module) declared at the top level of a public module's file
//!   (`src/lib.rs` and the `pub mod` tree under it), and every name a public module
//!   re-exports (`pub use`), except `#[doc(hidden)]` items and the `ffi` module (the C
//!   API, documented by its C names on `docs/c-api.md`). An item is written with its
//!   module, `module::name` (any longer path ending so is fine); a name the crate root
//!   exports is written alone. Methods are documented by rustdoc (`cargo doc`).
//! - The CMake options and cache variables named `HARMONICS_*` (`option()`,
//!   `set(... CACHE ...)`, `find_program()`) of `CMakeLists.txt`, `cmake/*.cmake` and
//!   `cpp_tests/CMakeLists.txt` -> `docs/integration.md`.
//! - Backwards, over README.md and every page under docs/: a `harmonics_*` name must be a
//!   C function (`harmonics_dataset*` names are the build's: package, pkg-config modules,
//!   CMake files), a `Harmonics*` name a C type, and `harmonics::Name` a C++ name of the
//!   wrapper (or the CMake targets `harmonics::dataset`, `harmonics::dataset_static`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Markdown: code words and sections
// ---------------------------------------------------------------------------------------

/// The code of a Markdown page, line by line: inline code spans, and whole lines inside
/// fenced blocks. Each entry is (line index, code text).
fn code_texts(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push((i, line.to_string()));
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('`') {
            let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
            let after = &rest[start + ticks..];
            let close = "`".repeat(ticks);
            match after.find(&close) {
                Some(end) => {
                    out.push((i, after[..end].to_string()));
                    rest = &after[end + ticks..];
                }
                None => break,
            }
        }
    }
    out
}

/// Identifier paths in code text: `a`, `a::b::c` (each component an identifier).
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if ident(b[i]) && (i == 0 || !ident(b[i - 1])) {
            let start = i;
            loop {
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                if i + 2 < b.len() && &b[i..i + 2] == b"::" && ident(b[i + 2]) {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push(code[start..i].to_string());
        } else {
            i += 1;
        }
    }
    out
}

fn words(path: &str) -> impl Iterator<Item = &str> {
    path.split("::")
}

struct Page {
    name: String,
    lines: Vec<String>,
    /// Per line, the identifiers and identifier paths in its code.
    code: Vec<Vec<String>>,
}

impl Page {
    fn open(rel: &str) -> Page {
        let text = read(&root().join(rel));
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut code = vec![Vec::new(); lines.len()];
        for (i, t) in code_texts(&text) {
            code[i].extend(paths(&t));
        }
        Page {
            name: rel.to_string(),
            lines,
            code,
        }
    }

    fn heading_level(&self, i: usize) -> Option<usize> {
        let l = &self.lines[i];
        let level = l.chars().take_while(|&c| c == '#').count();
        (level > 0 && l[level..].starts_with(' ')).then_some(level)
    }

    /// Lines `a..b` hold `word` as a code word (alone or as a component of a path).
    fn has_word_in(&self, word: &str, a: usize, b: usize) -> bool {
        self.code[a..b]
            .iter()
            .flatten()
            .any(|p| words(p).any(|w| w == word))
    }

    fn has_word(&self, word: &str) -> bool {
        self.has_word_in(word, 0, self.lines.len())
    }

    /// A path written in code whose last components are `suffix`'s.
    fn has_path_ending(&self, suffix: &str) -> bool {
        let want: Vec<&str> = words(suffix).collect();
        self.code.iter().flatten().any(|p| {
            let have: Vec<&str> = words(p).collect();
            have.len() >= want.len() && have[have.len() - want.len()..] == want[..]
        })
    }

    /// The section `[heading, next heading of the same or a higher level)` of line `i`.
    fn section_of(&self, i: usize) -> (usize, usize) {
        let start = (0..=i)
            .rev()
            .find(|&j| self.heading_level(j).is_some())
            .unwrap_or(0);
        let level = self.heading_level(start).unwrap_or(0);
        let end = (start + 1..self.lines.len())
            .find(|&j| self.heading_level(j).is_some_and(|l| l <= level))
            .unwrap_or(self.lines.len());
        (start, end)
    }

    /// Where `name` is documented: the section whose heading names it, else the section
    /// where it is first written in code.
    fn section_naming(&self, name: &str) -> Option<(usize, usize)> {
        let headed = (0..self.lines.len())
            .find(|&i| self.heading_level(i).is_some() && self.has_word_in(name, i, i + 1));
        let first = || (0..self.lines.len()).find(|&i| self.has_word_in(name, i, i + 1));
        headed.or_else(first).map(|i| self.section_of(i))
    }
}

/// Every docs/**/*.md page and README.md, relative to the repository.
fn all_pages() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{rel}/{name}");
            if e.path().is_dir() {
                walk(&e.path(), &rel, out);
            } else if name.ends_with(".md") {
                out.push(rel);
            }
        }
    }
    let mut out = vec!["README.md".to_string()];
    walk(&root().join("docs"), "docs", &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// C and C++ headers: a small tokenizer and declaration walker
// ---------------------------------------------------------------------------------------

/// The header without comments, string and character literals (emptied), and
/// preprocessor lines; `#define NAME` names are returned apart.
fn strip_c(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut macros = Vec::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if line_start && c == '#' {
            let mut directive = String::new();
            while i < b.len() && (b[i] != '\n' || b[i - 1] == '\\') {
                directive.push(b[i]);
                i += 1;
            }
            let mut parts = directive[1..].split_whitespace();
            if parts.next() == Some("define") {
                if let Some(name) = parts.next() {
                    macros.push(name.split('(').next().unwrap().to_string());
                }
            }
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '"' || c == '\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(c);
            out.push(c);
            continue;
        }
        if c == '\n' {
            line_start = true;
        } else if !c.is_whitespace() {
            line_start = false;
        }
        out.push(c);
        i += 1;
    }
    (out, macros)
}

fn tokens(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(b[s..i].iter().collect());
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Index just past the bracket that closes the one at `i` (`(`, `[`, `{`, `<`).
fn close(t: &[String], i: usize) -> usize {
    let (open, shut) = match t[i].as_str() {
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        "{" => ("{", "}"),
        _ => ("<", ">"),
    };
    let mut depth = 0;
    let mut j = i;
    while j < t.len() {
        if t[j] == open {
            depth += 1;
        } else if t[j] == shut {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        } else if open == "<" && (t[j] == "(" || t[j] == "{") {
            j = close(t, j) - 1;
        }
        j += 1;
    }
    t.len()
}

/// A public C++ type of the wrapper and its public members.
#[derive(Default, Debug)]
struct CppType {
    file: String,
    kind: &'static str,
    members: BTreeSet<String>,
    /// `detail::` bases whose public members count as this type's.
    detail_bases: Vec<String>,
}

#[derive(Default)]
struct CppApi {
    /// Public types by name (nested ones too), and `detail` classes (for their members).
    types: BTreeMap<String, CppType>,
    detail_types: BTreeMap<String, CppType>,
    /// Free functions and aliases at namespace scope: name -> file.
    free: BTreeMap<String, String>,
}

struct Walker<'a> {
    t: &'a [String],
    file: String,
    api: &'a mut CppApi,
}

impl Walker<'_> {
    /// Declarations from `i` up to the `}` that closes the scope (or the end); `ns` is
    /// the namespace path, `class` the enclosing class (name, members public now).
    fn scope(&mut self, mut i: usize, ns: &[String], class: Option<(&str, bool)>) -> usize {
        let mut public = class.map_or(true, |(_, p)| p);
        while i < self.t.len() && self.t[i] != "}" {
            let t = self.t;
            match t[i].as_str() {
                ";" => i += 1,
                "namespace" => {
                    let name = t[i + 1].clone();
                    let mut inner = ns.to_vec();
                    inner.push(name);
                    i = self.scope(i + 3, &inner, None) + 1;
                }
                "public" | "private" | "protected"
                    if t.get(i + 1).map(String::as_str) == Some(":") =>
                {
                    public = t[i] == "public";
                    i += 2;
                }
                "template" => i = close(t, i + 1),
                "static_assert" | "friend" => i = self.skip_statement(i),
                "class" | "struct" => i = self.class(i, ns, class.map(|c| c.0), public),
                "enum" => i = self.enumeration(i, ns, class.map(|c| c.0), public),
                "using" => {
                    // `using Name = ...;` (an alias); `using Base::Base;` declares nothing new.
                    if t[i + 2] == "=" {
                        self.record(ns, class.map(|c| c.0), public, &t[i + 1], "alias");
                    }
                    i = self.skip_statement(i);
                }
                _ => i = self.member(i, ns, class.map(|c| c.0), public),
            }
        }
        i
    }

    fn skip_statement(&self, mut i: usize) -> usize {
        while i < self.t.len() && self.t[i] != ";" {
            if matches!(self.t[i].as_str(), "(" | "{" | "[") {
                i = close(self.t, i);
            } else {
                i += 1;
            }
        }
        i + 1
    }

    fn public_ns(ns: &[String]) -> bool {
        ns.first().map(String::as_str) == Some("harmonics") && !ns.iter().any(|n| n == "detail")
    }

    /// A name declared at `ns` (in class `class` when given, as a member).
    fn record(
        &mut self,
        ns: &[String],
        class: Option<&str>,
        public: bool,
        name: &str,
        kind: &'static str,
    ) {
        let detail = ns.iter().any(|n| n == "detail");
        match class {
            Some(c) if public => {
                let owner = if detail {
                    self.api.detail_types.entry(c.to_string()).or_default()
                } else {
                    self.api.types.entry(c.to_string()).or_default()
                };
                owner.members.insert(name.to_string());
            }
            Some(_) => {}
            None if Self::public_ns(ns) => {
                self.api.free.insert(name.to_string(), self.file.clone());
            }
            None => {}
        }
        let _ = kind;
    }

    fn class(&mut self, i: usize, ns: &[String], parent: Option<&str>, public: bool) -> usize {
        let t = self.t;
        let kind = if t[i] == "class" { "class" } else { "struct" };
        let name = t[i + 1].clone();
        let mut j = i + 2;
        let mut bases = Vec::new();
        while j < t.len() && t[j] != "{" && t[j] != ";" {
            if t[j] == "detail" && t.get(j + 1).map(String::as_str) == Some("::") {
                bases.push(t[j + 2].clone());
            }
            if t[j] == "<" {
                j = close(t, j);
            } else {
                j += 1;
            }
        }
        if t[j] == ";" {
            return j + 1; // a forward declaration
        }
        let detail = ns.iter().any(|n| n == "detail");
        let ty = CppType {
            file: self.file.clone(),
            kind,
            detail_bases: bases,
            ..Default::default()
        };
        if detail {
            self.api.detail_types.insert(name.clone(), ty);
        } else if Self::public_ns(ns) && public {
            if let Some(p) = parent {
                self.api
                    .types
                    .entry(p.to_string())
                    .or_default()
                    .members
                    .insert(name.clone());
            }
            self.api.types.insert(name.clone(), ty);
        }
        let end = self.scope(j + 1, ns, Some((&name, kind == "struct")));
        self.skip_statement(end + 1)
    }

    fn enumeration(
        &mut self,
        i: usize,
        ns: &[String],
        parent: Option<&str>,
        public: bool,
    ) -> usize {
        let t = self.t;
        let mut j = i + 1;
        if matches!(t[j].as_str(), "class" | "struct") {
            j += 1;
        }
        let name = t[j].clone();
        while t[j] != "{" && t[j] != ";" {
            j += 1;
        }
        if t[j] == ";" || !public || !Self::public_ns(ns) {
            return self.skip_statement(j);
        }
        let end = close(t, j);
        let mut e = CppType {
            file: self.file.clone(),
            kind: "enum",
            ..Default::default()
        };
        let mut expect_name = true;
        for tok in &t[j + 1..end - 1] {
            if expect_name && is_ident(tok) {
                e.members.insert(tok.clone());
                expect_name = false;
            } else if tok == "," {
                expect_name = true;
            }
        }
        if let Some(p) = parent {
            self.api
                .types
                .entry(p.to_string())
                .or_default()
                .members
                .insert(name.clone());
        }
        self.api.types.insert(name, e);
        self.skip_statement(end)
    }

    /// A function or a variable (data member) declaration or definition.
    fn member(&mut self, i: usize, ns: &[String], class: Option<&str>, public: bool) -> usize {
        let t = self.t;
        // The head: up to `(`, `=`, `{`, `;` or `:` at depth 0.
        let mut j = i;
        while j < t.len() && !matches!(t[j].as_str(), "(" | "=" | "{" | ";" | "}") {
            if t[j] == "<" && j > i {
                j = close(t, j);
            } else {
                j += 1;
            }
        }
        if j >= t.len() {
            return j;
        }
        let operator = t[i..j].iter().any(|x| x == "operator");
        if t[j] == "(" && !operator {
            // A function: its name precedes the parameters.
            let name = &t[j - 1];
            let qualified = j >= 2 && t[j - 2] == "::";
            let special = j >= 2 && t[j - 2] == "~" || class.is_some_and(|c| c == name);
            if is_ident(name) && !qualified && !special {
                self.record(ns, class, public, name, "function");
            }
            let mut k = close(t, j);
            // Qualifiers, a trailing return, `= default`/`= 0`, a constructor's initializers.
            while k < t.len() && !matches!(t[k].as_str(), "{" | ";" | ":") {
                if t[k] == "(" {
                    k = close(t, k);
                } else {
                    k += 1;
                }
            }
            if k < t.len() && t[k] == ":" {
                k += 1;
                loop {
                    while k < t.len() && !matches!(t[k].as_str(), "(" | "{") {
                        k += 1;
                    }
                    k = close(t, k);
                    if t.get(k).map(String::as_str) == Some(",") {
                        k += 1;
                    } else {
                        break;
                    }
                }
            }
            return if k < t.len() && t[k] == "{" {
                close(t, k)
            } else {
                k + 1
            };
        }
        if operator {
            let mut k = j;
            while k < t.len() && !matches!(t[k].as_str(), "{" | ";") {
                k = if t[k] == "(" { close(t, k) } else { k + 1 };
            }
            return if t[k] == "{" { close(t, k) } else { k + 1 };
        }
        // Variables: `T a, b;`, `T a = x;`, `T a{x};`.
        if j - i >= 2 {
            for declarator in t[i..j].split(|x| x == ",") {
                if let Some(name) = declarator.iter().rev().find(|x| is_ident(x)) {
                    self.record(ns, class, public, name, "variable");
                }
            }
        }
        self.skip_statement(j)
    }
}

fn cpp_api() -> CppApi {
    let mut api = CppApi::default();
    let dir = root().join("include/harmonics");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hpp"))
    {
        let (code, _) = strip_c(&read(path));
        let toks = tokens(&code);
        let file = format!(
            "include/harmonics/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let mut w = Walker {
            t: &toks,
            file,
            api: &mut api,
        };
        w.scope(0, &[], None);
    }
    // Members of `detail::` bases count as the derived class's own.
    let inherited: Vec<(String, BTreeSet<String>)> = api
        .types
        .iter()
        .map(|(name, ty)| {
            let mut m = BTreeSet::new();
            for base in &ty.detail_bases {
                if let Some(b) = api.detail_types.get(base) {
                    m.extend(b.members.iter().filter(|x| *x != base).cloned());
                }
            }
            (name.clone(), m)
        })
        .collect();
    for (name, m) in inherited {
        api.types.get_mut(&name).unwrap().members.extend(m);
    }
    api
}

struct CApi {
    functions: BTreeSet<String>,
    types: BTreeSet<String>,
    constants: BTreeSet<String>,
    /// Struct name -> field names.
    fields: BTreeMap<String, Vec<String>>,
}

fn c_api() -> CApi {
    let (code, macros) = strip_c(&read(&root().join("include/harmonics_dataset.h")));
    let t = tokens(&code);
    let mut api = CApi {
        functions: BTreeSet::new(),
        types: BTreeSet::new(),
        constants: macros
            .into_iter()
            .filter(|m| m != "HARMONICS_DATASET_H")
            .collect(),
        fields: BTreeMap::new(),
    };
    for (i, tok) in t.iter().enumerate() {
        if tok.starts_with("harmonics_") && t.get(i + 1).map(String::as_str) == Some("(") {
            api.functions.insert(tok.clone());
        } else if tok.starts_with("Harmonics") {
            api.types.insert(tok.clone());
        } else if tok.starts_with("HARMONICS_") {
            api.constants.insert(tok.clone());
        }
        if tok == "struct" && t.get(i + 2).map(String::as_str) == Some("{") {
            let end = close(&t, i + 2);
            let mut fields = Vec::new();
            for decl in t[i + 3..end - 1].split(|x| x == ";") {
                // `T name` or a function pointer `R (*name)(...)`.
                let name = match decl.iter().position(|x| x == "*") {
                    Some(p) if decl.get(p.wrapping_sub(1)).map(String::as_str) == Some("(") => {
                        decl.get(p + 1)
                    }
                    _ => decl.iter().rev().find(|x| is_ident(x)),
                };
                if let Some(n) = name {
                    fields.push(n.clone());
                }
            }
            api.fields.insert(t[i + 1].clone(), fields);
        }
    }
    api
}

// ---------------------------------------------------------------------------------------
// The Rust crate's public items, from the sources
// ---------------------------------------------------------------------------------------

/// Every public item by name: the paths that may be written for it (`name` alone when
/// the crate root exports it, else `module::name` for each module exporting it) and
/// where it is declared or re-exported.
fn rust_items() -> BTreeMap<String, (BTreeSet<String>, String)> {
    // (path, is a module, where)
    let mut found: Vec<(Vec<String>, bool, String)> = Vec::new();
    // Every public module: (module path, file).
    let mut modules = vec![(Vec::<String>::new(), root().join("src/lib.rs"))];
    let mut k = 0;
    while k < modules.len() {
        let (module, file) = modules[k].clone();
        k += 1;
        let text = read(&file);
        let dir = if file.ends_with("lib.rs") || file.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut l = 0;
        while l < lines.len() {
            let line = lines[l];
            let hidden = l > 0 && lines[l - 1].trim() == "#[doc(hidden)]";
            let at = format!("{}:{}", file.strip_prefix(root()).unwrap().display(), l + 1);
            let path_of = |name: &str| -> Vec<String> {
                module.iter().cloned().chain([name.to_string()]).collect()
            };
            if let Some(rest) = line.strip_prefix("pub use ") {
                let mut stmt = rest.to_string();
                while !stmt.contains(';') {
                    l += 1;
                    stmt.push_str(lines[l]);
                }
                if !hidden {
                    let body = stmt.trim_end_matches(';');
                    let leaves = match body.find('{') {
                        Some(b) => body[b + 1..].trim_end_matches('}').to_string(),
                        None => body.rsplit("::").next().unwrap().to_string(),
                    };
                    for leaf in leaves.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        assert!(leaf != "*", "{at}: a glob re-export: list the names");
                        let name = leaf
                            .rsplit(" as ")
                            .next()
                            .unwrap()
                            .rsplit("::")
                            .next()
                            .unwrap();
                        if name != "self" {
                            found.push((path_of(name), false, at.clone()));
                        }
                    }
                }
            } else if let Some(rest) = line.strip_prefix("pub ") {
                let w: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .collect();
                let (kind, name) = match w[..] {
                    ["const" | "unsafe" | "async", "fn", n, ..] => ("fn", n),
                    ["const", "unsafe", "fn", n, ..] | ["extern", "C", "fn", n, ..] => ("fn", n),
                    ["unsafe", "extern", "C", "fn", n, ..] => ("fn", n),
                    [kind, n, ..] => (kind, n),
                    _ => ("", ""),
                };
                let item = matches!(
                    kind,
                    "fn" | "struct"
                        | "enum"
                        | "trait"
                        | "type"
                        | "const"
                        | "static"
                        | "union"
                        | "mod"
                );
                let ffi = kind == "mod" && name == "ffi" && module.is_empty(); // docs/c-api.md
                if item && !hidden && !ffi {
                    found.push((path_of(name), kind == "mod", at.clone()));
                    if kind == "mod" {
                        let sub = if dir.join(format!("{name}.rs")).exists() {
                            dir.join(format!("{name}.rs"))
                        } else {
                            dir.join(name).join("mod.rs")
                        };
                        modules.push((path_of(name), sub));
                    }
                }
            }
            l += 1;
        }
    }
    // Re-exports of one item share its name: grouped by name (modules apart: `log` the
    // module is not `log::log` the function).
    let mut items: BTreeMap<String, (BTreeSet<String>, String)> = BTreeMap::new();
    for (path, module, at) in found {
        let name = path.last().unwrap().clone();
        let form = if path.len() == 1 {
            name.clone()
        } else {
            path[path.len() - 2..].join("::")
        };
        let key = if module { format!("mod {name}") } else { name };
        let entry = items.entry(key).or_insert_with(|| (BTreeSet::new(), at));
        entry.0.insert(form);
    }
    // A name the root exports is written alone.
    for (key, (forms, _)) in items.iter_mut() {
        let name = key.trim_start_matches("mod ");
        if forms.contains(name) {
            forms.retain(|f| f == name);
        }
    }
    items
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// `owner`'s members missing from the section of `page` where `owner` is documented.
fn missing_members<'a>(
    page: &Page,
    owner: &str,
    members: impl IntoIterator<Item = &'a String>,
    what: &str,
) -> Vec<String> {
    let Some((a, b)) = page.section_naming(owner) else {
        return Vec::new(); // the owner itself is reported missing
    };
    let heading = page.lines[a].trim_start_matches('#').trim();
    members
        .into_iter()
        .filter(|m| !page.has_word_in(m, a, b))
        .map(|m| format!("{what} `{owner}::{m}`, in the section \"{heading}\""))
        .collect()
}

/// The parser found what it must (a broken parser would find nothing missing).
fn assert_parsed(what: &str, names: &[&str], found: impl Fn(&str) -> bool) {
    for name in names {
        assert!(found(name), "the {what} parser missed {name}");
    }
}

fn report(page: &str, missing: &[String]) {
    assert!(
        missing.is_empty(),
        "{page} does not document {} public item(s) (see tests/all/docs_reference.rs for the rules):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn every_c_function_type_constant_and_field_is_on_the_c_reference() {
    let api = c_api();
    assert!(
        api.functions.len() > 60 && api.types.len() > 15,
        "the header parser found too little"
    );
    let page = Page::open("docs/c-api.md");
    let mut missing = Vec::new();
    for name in api.functions.iter().chain(&api.types).chain(&api.constants) {
        if !page.has_word(name) {
            missing.push(format!("`{name}` (include/harmonics_dataset.h)"));
        }
    }
    for (ty, fields) in &api.fields {
        missing.extend(missing_members(&page, ty, fields, "field"));
    }
    report(&page.name, &missing);
}

#[test]
fn every_cpp_class_function_and_member_is_on_the_cpp_reference() {
    let api = cpp_api();
    let names = [
        "HTensor",
        "NativeProducer",
        "Sampler",
        "HttpOptions",
        "DiskCacheProducer",
    ];
    assert_parsed("C++ type", &names, |n| api.types.contains_key(n));
    assert_parsed("C++ function", &["write_tensor", "set_lock_timeout"], |n| {
        api.free.contains_key(n)
    });
    assert_parsed("C++ member (through a detail base)", &["from_url"], |n| {
        api.types["HttpProducer"].members.contains(n)
    });
    assert_parsed("C++ data member", &["parallel_min_bytes"], |n| {
        api.types["HttpOptions"].members.contains(n)
    });
    let page = Page::open("docs/cpp-api.md");
    let mut missing = Vec::new();
    for (name, file) in &api.free {
        if !page.has_word(name) {
            missing.push(format!("`{name}` ({file})"));
        }
    }
    for (name, ty) in &api.types {
        if !page.has_word(name) {
            missing.push(format!("{} `{name}` ({})", ty.kind, ty.file));
        }
        missing.extend(missing_members(
            &page,
            name,
            &ty.members,
            &format!("member ({})", ty.file),
        ));
    }
    report(&page.name, &missing);
}

#[test]
fn every_public_rust_item_is_on_the_rust_reference() {
    let items = rust_items();
    let names = [
        "DiskCacheProducer",
        "Sampler",
        "CacheReader",
        "prune",
        "write_tensor",
        "mod s3",
        "log",
    ];
    assert_parsed("Rust item", &names, |n| items.contains_key(n));
    assert!(
        items["prune"].0.contains("maintenance::prune") && items["Sampler"].0.contains("Sampler")
    );
    assert!(items["log"].0.contains("log::log") && items["mod log"].0.contains("log"));
    assert!(!items.contains_key("CsvStats") && !items.contains_key("HarmonicsStatus"));
    let page = Page::open("docs/rust-api.md");
    let missing: Vec<String> = items
        .values()
        .filter(|(forms, _)| !forms.iter().any(|f| page.has_path_ending(f)))
        .map(|(forms, at)| {
            let forms: Vec<String> = forms.iter().map(|f| format!("`{f}`")).collect();
            format!("{} ({at})", forms.join(" or "))
        })
        .collect();
    report(&page.name, &missing);
}

#[test]
fn every_cmake_option_is_on_the_integration_page() {
    let mut files = vec![
        root().join("CMakeLists.txt"),
        root().join("cpp_tests/CMakeLists.txt"),
    ];
    let mut cmake: Vec<_> = std::fs::read_dir(root().join("cmake"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cmake.sort();
    files.extend(
        cmake
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cmake")),
    );
    let mut options = BTreeMap::new();
    for f in &files {
        let text = read(f);
        let t = tokens(&text);
        for (i, tok) in t.iter().enumerate() {
            let Some(name) = t.get(i + 2).filter(|n| n.starts_with("HARMONICS_")) else {
                continue;
            };
            if t.get(i + 1).map(String::as_str) != Some("(") {
                continue;
            }
            let cached = tok == "set" && {
                let end = t[i..]
                    .iter()
                    .position(|x| x == ")")
                    .map_or(t.len(), |p| i + p);
                t[i..end].iter().any(|x| x == "CACHE")
            };
            if tok == "option" || tok == "find_program" || cached {
                options.insert(
                    name.clone(),
                    f.strip_prefix(root()).unwrap().display().to_string(),
                );
            }
        }
    }
    assert!(
        options.contains_key("HARMONICS_CARGO_TARGET_DIR")
            && options.contains_key("HARMONICS_BUILD_TESTS")
    );
    let page = Page::open("docs/integration.md");
    let missing: Vec<String> = options
        .iter()
        .filter(|(name, _)| !page.has_word(name))
        .map(|(name, file)| format!("`{name}` ({file})"))
        .collect();
    report(&page.name, &missing);
}

#[test]
fn every_api_name_the_docs_write_exists() {
    let c = c_api();
    let cpp = cpp_api();
    // The build's names: the package, its pkg-config modules, CMake files and components
    // (all `harmonics_dataset*`, a prefix no C function has), and the CMake targets.
    let cmake_targets = ["dataset", "dataset_static"];
    let mut unknown = Vec::new();
    for rel in all_pages() {
        let page = Page::open(&rel);
        for (i, code) in page.code.iter().enumerate() {
            for path in code {
                let parts: Vec<&str> = words(path).collect();
                let bad = match parts[..] {
                    [w, ..] if w.starts_with("harmonics_dataset") => false,
                    [w, ..] if w.starts_with("harmonics_") && !w.ends_with('_') => {
                        !c.functions.contains(w)
                    }
                    [w, ..] if w.starts_with("Harmonics") && w.len() > "Harmonics".len() => {
                        !c.types.contains(w)
                    }
                    ["harmonics", "detail", ..] => false,
                    ["harmonics", w] if cmake_targets.contains(&w) => false,
                    ["harmonics", w, ..] => !cpp.types.contains_key(w) && !cpp.free.contains_key(w),
                    _ => false,
                };
                if bad {
                    unknown.push(format!("{rel}:{}: `{path}`", i + 1));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names the docs write that the API does not have:\n  {}",
        unknown.join("\n  ")
    );
}

/// GitHub's anchor of a heading: lower case, punctuation dropped (`-` and `_` kept),
/// spaces made `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_relative_link_of_the_docs_reaches_a_file_and_a_heading() {
    let mut broken = Vec::new();
    for rel in all_pages() {
        let page = root().join(&rel);
        let text = read(&page);
        let mut fenced = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find("](") {
                let after = &rest[at + 2..];
                let Some(end) = after.find(')') else { break };
                let target = &after[..end];
                rest = &after[end..];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, frag) = target.split_once('#').unwrap_or((target, ""));
                let dest = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                if !dest.exists() {
                    broken.push(format!("{rel}:{}: {target} (no such file)", n + 1));
                    continue;
                }
                if frag.is_empty() || dest.is_dir() {
                    continue;
                }
                let anchors: Vec<String> = read(&dest)
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                if !anchors.iter().any(|a| a == frag) {
                    broken.push(format!("{rel}:{}: {target} (no such heading)", n + 1));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}
