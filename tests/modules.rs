//! The library's module graph has no two-way imports: no module under `src/` names a module that
//! names it back (through `use`, a `crate::`/`super::` path, or an item `lib.rs` re-exports).
//! Read from the source files, no build needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/`, as `crate::a::b`, with its source (comments removed).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            let name = std::iter::once("crate".to_string())
                .chain(parts)
                .collect::<Vec<_>>();
            let source = std::fs::read_to_string(&path).unwrap();
            let code: String = source
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name.join("::"), code);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a source names: each `crate::…`, `super::…`, `self::…` path, a `use` of a child
/// module, with `{a, b::c}` groups expanded one level deep.
fn paths(code: &str) -> Vec<Vec<String>> {
    let (offsets, chars): (Vec<usize>, Vec<char>) = code.char_indices().unzip();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word = (i == 0 || !is_ident(chars[i - 1])) && is_ident(chars[i]);
        if !at_word {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let after_use = code[..offsets[start]].trim_end().ends_with("use");
        if !(matches!(word.as_str(), "crate" | "super" | "self") || after_use) {
            continue;
        }
        // Read `word(::segment)*`, then an optional `::{…}` group.
        let mut base = vec![word];
        let mut j = i;
        loop {
            if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                j += 2;
                if chars.get(j) == Some(&'{') {
                    let mut depth = 0;
                    let mut item = String::new();
                    let mut items = Vec::new();
                    while j < chars.len() {
                        let c = chars[j];
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                        if depth == 1 && (c == ',' || c == '{') {
                            items.push(std::mem::take(&mut item));
                        } else if depth == 1 || c != '{' {
                            item.push(c);
                        }
                        j += 1;
                    }
                    items.push(item);
                    for it in items {
                        let first: String =
                            it.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !first.is_empty() && first != "self" {
                            let mut p = base.clone();
                            p.push(first);
                            out.push(p);
                        }
                    }
                    break;
                }
                let s = j;
                while j < chars.len() && is_ident(chars[j]) {
                    j += 1;
                }
                if s == j {
                    break;
                }
                base.push(chars[s..j].iter().collect());
            } else {
                break;
            }
        }
        // A bare `crate` / `super` / `self` (`pub(crate)`, `&self`) names no module.
        if base.len() > 1 {
            out.push(base);
        }
        i = j.max(i);
    }
    out
}

/// The module a path lands in, from module `current`: the longest prefix that is a module, with
/// `lib.rs`'s re-exports followed.
fn resolve(
    path: &[String],
    current: &str,
    mods: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let mut parts: Vec<String> = current.split("::").map(String::from).collect();
    let mut rest = path;
    match path[0].as_str() {
        "crate" => {
            parts = vec!["crate".into()];
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                parts.pop();
                rest = &rest[1..];
            }
        }
        // `use child::…` of a child module.
        _ if mods.contains_key(&format!("{current}::{}", path[0])) => {}
        _ => return None,
    }
    if parts == ["crate"] {
        if let Some(first) = rest.first() {
            if !mods.contains_key(&format!("crate::{first}")) {
                return reexports.get(first).cloned();
            }
        }
    }
    // The module the path starts from, then as deep as its segments name modules.
    let mut best = parts.join("::");
    for seg in rest {
        parts.push(seg.clone());
        let name = parts.join("::");
        if !mods.contains_key(&name) {
            break;
        }
        best = name;
    }
    Some(best)
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mods = modules();
    // `pub use module::{Item, …};` in lib.rs: `crate::Item` lands in `crate::module`.
    let mut reexports = BTreeMap::new();
    for p in paths(&mods["crate"]) {
        if p.len() == 2 && mods.contains_key(&format!("crate::{}", p[0])) {
            reexports.insert(p[1].clone(), format!("crate::{}", p[0]));
        }
    }
    let mut deps: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &mods {
        let set = deps.entry(name).or_default();
        for p in paths(code) {
            if let Some(m) = resolve(&p, name, &mods, &reexports) {
                if m != *name {
                    set.insert(m);
                }
            }
        }
    }
    assert!(
        deps["crate::tensor"].contains("crate::tape"),
        "the graph is read: tensor imports tape ({:?})",
        deps["crate::tensor"]
    );
    let mut two_way = Vec::new();
    for (a, targets) in &deps {
        for b in targets {
            if a < &b.as_str() && deps.get(b.as_str()).is_some_and(|t| t.contains(*a)) {
                two_way.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        two_way.is_empty(),
        "modules that import each other:\n{}",
        two_way.join("\n")
    );
}
