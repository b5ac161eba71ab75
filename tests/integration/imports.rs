//! No import cycles: between the source files of `src/` and `crates/core/src/`,
//! and between their top-level modules, so the code reads top-down.
//!
//! Each file's paths that name the crate's own code (`use crate::…`,
//! `use super::…`, `use self::…`, `use child::…` for a declared child
//! module, and `crate::…` / `super::…` paths in the code) are resolved to
//! the file that defines what they name; a `pub use` re-export is followed
//! to the file it re-exports from, and is not itself an import (a `mod.rs`
//! that only re-exports its children's types does not depend on them).
//! Comments, strings and `#[cfg(test)]` modules are left out: doc links and
//! unit tests do not shape the code. Files in one cycle are printed as the
//! cycle, file by file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside one crate: `["check", "tree"]` for `check::tree`.
type ModPath = Vec<String>;

/// One source file of a crate, stripped of comments, strings and tests.
struct File {
    path: PathBuf,
    code: String,
}

/// One crate's files by module path, and the edges between them.
struct Crate {
    files: BTreeMap<ModPath, File>,
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "tests.rs") {
            // A `tests.rs` holds a `#[cfg(test)] mod tests;` declared in its
            // own file: test code, left out like an inline test module.
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under a crate's source root.
fn module_of(root: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(root).expect("under the root");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code with comments, string and char literals blanked out.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + ch_len) == Some(&b'\'') {
                    i += 2 + ch_len;
                    out.push_str("' '");
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().expect("a char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The code without its `#[cfg(test)]` items (test modules and helpers).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        // Skip to the end of the item: its `;` or its balanced `{…}`.
        let mut depth = 0usize;
        let mut end = after.len();
        for (j, ch) in after.char_indices().skip("#[cfg(test)]".len()) {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn load(root: &Path) -> Crate {
    let mut paths = Vec::new();
    rust_files(root, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let src = std::fs::read_to_string(&path).expect("read source");
        let module = module_of(root, &path);
        let code = without_tests(&strip(&src));
        files.insert(module, File { path, code });
    }
    Crate { files }
}

/// Expands a use tree (`a::{b, c::{d, self}}`) into its paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    fn go(prefix: &[String], t: &str, out: &mut Vec<Vec<String>>) {
        let t = t.trim();
        if let Some(open) = t.find('{') {
            let head = t[..open].trim().trim_end_matches("::");
            let mut p = prefix.to_vec();
            p.extend(segments(head));
            let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
            let mut depth = 0;
            let mut start = 0;
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&p, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            go(&p, &inner[start..], out);
        } else if !t.is_empty() {
            let t = t.split(" as ").next().unwrap_or(t);
            let mut p = prefix.to_vec();
            for s in segments(t) {
                if s != "self" || p.is_empty() {
                    p.push(s);
                }
            }
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], &tree, &mut out);
    out
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_string)
        .collect()
}

/// Each `use` statement of the code: whether it is `pub`, and its paths.
fn uses(code: &str) -> Vec<(bool, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find("use ") {
        let at = from + i;
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let before = code[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        out.push((public, expand(&code[at + 4..at + end])));
        from = at + end;
    }
    out
}

/// `crate::…`, `super::…` and `self::…` paths written in the code itself.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let prev = code[..at].chars().next_back();
            if prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(segments(&tail));
        }
    }
    out
}

impl Crate {
    /// The absolute module path a written path starts from, or `None` for a
    /// path into another crate.
    fn absolute(&self, module: &ModPath, path: &[String]) -> Option<Vec<String>> {
        let mut base = module.clone();
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &path[1..];
            }
            Some("self") => rest = &path[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = module.clone();
                child.push(first.to_string());
                if !self.files.contains_key(&child) {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what an absolute path names, following
    /// `pub use` re-exports.
    fn target(&self, abs: &[String], hops: usize) -> Option<&ModPath> {
        let n = (0..=abs.len())
            .rev()
            .find(|&n| self.files.contains_key(&abs[..n]))?;
        let (module, file) = self.files.get_key_value(&abs[..n])?;
        if let (Some(name), true) = (abs.get(n), hops < 8) {
            for (public, paths) in uses(&file.code) {
                if !public {
                    continue;
                }
                for p in paths {
                    if p.last() == Some(name) {
                        return match self.absolute(module, &p) {
                            Some(mut a) => {
                                a.extend(abs[n + 1..].iter().cloned());
                                self.target(&a, hops + 1)
                            }
                            // Re-exported from another crate.
                            None => None,
                        };
                    }
                }
            }
        }
        Some(module)
    }

    /// For each file, the files it imports from (itself left out).
    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut edges = BTreeMap::new();
        for (module, file) in &self.files {
            let mut to = BTreeSet::new();
            let mut paths: Vec<Vec<String>> = uses(&file.code)
                .into_iter()
                .filter(|(public, _)| !public)
                .flat_map(|(_, p)| p)
                .collect();
            paths.extend(inline_paths(&file.code));
            for p in paths {
                let Some(abs) = self.absolute(module, &p) else {
                    continue;
                };
                if let Some(t) = self.target(&abs, 0) {
                    if t != module {
                        to.insert(t.clone());
                    }
                }
            }
            edges.insert(module.clone(), to);
        }
        edges
    }
}

/// Every cycle's nodes (strongly connected components of two or more), each
/// as one cycle through all of them where one exists, else the component.
fn cycles<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    // Kosaraju: finish order on the graph, then components on its reverse.
    fn finish<N: Ord + Clone>(
        n: &N,
        e: &BTreeMap<N, BTreeSet<N>>,
        seen: &mut BTreeSet<N>,
        order: &mut Vec<N>,
    ) {
        if !seen.insert(n.clone()) {
            return;
        }
        for m in e.get(n).into_iter().flatten() {
            finish(m, e, seen, order);
        }
        order.push(n.clone());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in edges.keys() {
        finish(n, edges, &mut seen, &mut order);
    }
    let mut reverse: BTreeMap<N, BTreeSet<N>> = BTreeMap::new();
    for (a, bs) in edges {
        for b in bs {
            reverse.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        let mut comp = Vec::new();
        finish(n, &reverse, &mut assigned, &mut comp);
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

/// A path from `from` back to itself inside `within`, for the message.
fn cycle_through<N: Ord + Clone>(
    from: &N,
    edges: &BTreeMap<N, BTreeSet<N>>,
    within: &BTreeSet<N>,
) -> Vec<N> {
    // Breadth-first: the shortest way from `from` back to `from`.
    let mut prev: BTreeMap<N, N> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.clone()]);
    while let Some(n) = queue.pop_front() {
        for m in edges.get(&n).into_iter().flatten() {
            if !within.contains(m) {
                continue;
            }
            if m == from {
                let mut path = vec![n.clone()];
                let mut at = n.clone();
                while let Some(p) = prev.get(&at) {
                    path.push(p.clone());
                    at = p.clone();
                }
                path.reverse();
                if path.first() != Some(from) {
                    path.insert(0, from.clone());
                }
                path.push(from.clone());
                return path;
            }
            if m != from && !prev.contains_key(m) {
                prev.insert(m.clone(), n.clone());
                queue.push_back(m.clone());
            }
        }
    }
    vec![from.clone()]
}

/// What is wrong with one crate's imports, one line per cycle.
fn problems(name: &str, root: &Path) -> Vec<String> {
    let krate = load(root);
    let edges = krate.edges();
    let show = |m: &ModPath| {
        krate.files[m]
            .path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&krate.files[m].path)
            .display()
            .to_string()
    };
    let mut out = Vec::new();
    for comp in cycles(&edges) {
        let within: BTreeSet<ModPath> = comp.iter().cloned().collect();
        let path = cycle_through(&comp[0], &edges, &within);
        let shown: Vec<String> = path.iter().map(show).collect();
        let knot: Vec<String> = comp.iter().map(show).collect();
        out.push(format!(
            "{name}: files import each other: {} (one knot of {} files: {})",
            shown.join(" → "),
            comp.len(),
            knot.join(", ")
        ));
    }
    // Top-level modules: `check` and `agent`, `diff` and `tree`, …
    let top = |m: &ModPath| m.first().cloned().unwrap_or_else(|| "(crate root)".into());
    let mut module_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in &edges {
        let entry = module_edges.entry(top(from)).or_default();
        for to in tos {
            if top(to) != top(from) {
                entry.insert(top(to));
            }
        }
    }
    for comp in cycles(&module_edges) {
        let within: BTreeSet<String> = comp.iter().cloned().collect();
        let path = cycle_through(&comp[0], &module_edges, &within);
        let why: Vec<String> = path
            .windows(2)
            .map(|w| {
                let files: Vec<String> = edges
                    .iter()
                    .filter(|(f, _)| top(f) == w[0])
                    .flat_map(|(f, ts)| {
                        ts.iter()
                            .filter(|t| top(t) == w[1])
                            .map(move |t| format!("{} uses {}", show(f), show(t)))
                    })
                    .take(2)
                    .collect();
                format!("{} → {} ({})", w[0], w[1], files.join("; "))
            })
            .collect();
        out.push(format!(
            "{name}: modules import each other: {}",
            why.join(", ")
        ));
    }
    out
}

#[test]
fn no_import_cycles_between_files_or_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = problems("driftsum", &root.join("src"));
    all.extend(problems("driftsum-core", &root.join("crates/core/src")));
    assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
}

/// The checker itself finds a cycle it is shown, and resolves re-exports,
/// `super::` and use trees, so a pass above means something.
#[test]
fn the_cycle_check_sees_cycles() {
    let e: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::from([
        (1, BTreeSet::from([2])),
        (2, BTreeSet::from([3])),
        (3, BTreeSet::from([1])),
        (4, BTreeSet::from([1])),
    ]);
    assert_eq!(cycles(&e), [vec![1, 2, 3]]);
    let within = BTreeSet::from([1, 2, 3]);
    assert_eq!(cycle_through(&1, &e, &within), [1, 2, 3, 1]);
    assert_eq!(
        expand("crate::a::{b, c::{d, self}, e as f}"),
        [
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "d"],
            vec!["crate", "a", "c"],
            vec!["crate", "a", "e"],
        ]
    );
    assert_eq!(
        strip("let s = \"use crate::x;\"; // use crate::y;\nlet c = '\"';"),
        "let s = \"\"; \nlet c = ' ';"
    );
    let dir = crate::util::Scratch::new("imports");
    let write = |p: &str, s: &str| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, s).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub use a::Thing;\n");
    write("a/mod.rs", "mod inner;\npub use inner::Thing;\n");
    write("a/inner.rs", "use crate::b::helper;\npub struct Thing;\n");
    write(
        "b.rs",
        "pub fn helper() {}\nfn f() -> crate::Thing { crate::a::Thing }\n#[cfg(test)]\nmod tests { use crate::a::inner; }\n",
    );
    let found = problems("t", dir.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].contains("inner.rs → ") && found[0].contains("b.rs"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("a → b") && found[1].contains("b → a"),
        "{found:#?}"
    );
}
