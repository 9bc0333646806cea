//! Source rules checked as tests: every module starts with a `//!` doc, and `unsafe` is allowed in
//! exactly one place (opening LMDB) with a `SAFETY:` note.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_has_a_doc_comment() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a //! module doc",
            file.display()
        );
    }
}

#[test]
fn unsafe_code_is_confined_to_opening_lmdb() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut allowed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if text.contains("#[allow(unsafe_code)]") {
            allowed.push(file.clone());
            assert!(
                text.contains("// SAFETY:"),
                "{} lacks a SAFETY note",
                file.display()
            );
        }
    }
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert!(allowed[0].ends_with("store/lmdb.rs"));
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"));
    let main =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).unwrap();
    assert!(main.contains("#![forbid(unsafe_code)]"));
}

/// The repository is self-contained: no source file or document points at a document outside it
/// (the facts behind the code are in `docs/`) or at an issue number, and every section of
/// `docs/providers.md` that a comment cites exists.
#[test]
fn references_stay_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        rust_files(&root.join(dir), &mut files);
    }
    for doc in [
        "README.md",
        "ARCHITECTURE.md",
        "SECURITY.md",
        "Cargo.toml",
        "docs/API.zh-CN.md",
        "docs/providers.md",
        "docs/perf-log.md",
        "docs/cluster.md",
        "loadtest/README.md",
        "scripts/test.sh",
    ] {
        files.push(root.join(doc));
    }
    let providers = std::fs::read_to_string(root.join("docs/providers.md")).unwrap();
    let issue = regex::Regex::new(r"(?i)\bissue #?\d+|crate-notes|shared/|shortlinks\.md").unwrap();
    let cited = regex::Regex::new(r"providers\.md`? §(\d+(?:\.\d+)?)").unwrap();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if file.ends_with("tidy.rs") {
            continue;
        }
        if let Some(found) = issue.find(&text) {
            panic!(
                "{} points outside the repository: {:?}",
                file.display(),
                found.as_str()
            );
        }
        for section in cited.captures_iter(&text) {
            let heading = format!("### {} ", &section[1]);
            let top = format!("## {}. ", &section[1]);
            assert!(
                providers.contains(&heading) || providers.contains(&top),
                "{} cites docs/providers.md §{}, which it lacks",
                file.display(),
                &section[1]
            );
        }
    }
}

/// The rooms of `src/`, bottom to top (ARCHITECTURE.md, "Layers"): a module may import only
/// rooms of its own layer or below. `api` is the one room on top.
const LAYERS: &[&[&str]] = &[
    &["timefmt", "drive", "config", "netguard"],
    &["store", "cluster"],
    &["error"],
    &["checker"],
    &["http"],
    &["keys", "sse", "observability", "mock", "webhooks"],
    &["links", "jobs", "admin", "web", "monitors"],
    &["security"],
    &["cli"],
    &["api"],
];

#[test]
fn no_module_imports_a_room_above_its_own() {
    let layer_of = |name: &str| LAYERS.iter().position(|layer| layer.contains(&name));
    let path = regex::Regex::new(r"crate::(\w+)").unwrap();
    let group = regex::Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let word = regex::Regex::new(r"(?:^|,)\s*(\w+)").unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "main" || top == "lib" {
            continue;
        }
        let from = layer_of(&top).unwrap_or_else(|| panic!("src/{rel}: room `{top}` has no layer"));
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap();
        let mut named: Vec<String> = path.captures_iter(text).map(|c| c[1].to_owned()).collect();
        for inner in group.captures_iter(text) {
            named.extend(word.captures_iter(&inner[1]).map(|c| c[1].to_owned()));
        }
        for other in named {
            if let Some(to) = layer_of(&other)
                && to > from
            {
                upward.push(format!("src/{rel} imports `{other}`"));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(upward.is_empty(), "imports of a higher room: {upward:#?}");
}
