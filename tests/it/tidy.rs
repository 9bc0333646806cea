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
