//! Embeds the web face's files: each is gzipped once here, at build time, so the server never
//! compresses a static byte at run time. Writes two tables that `src/web/assets.rs` includes:
//! `$OUT_DIR/web_assets.rs`, the files under `/static/` (`src/web/static/` and the vendored Swagger
//! UI and ReDoc under `src/web/vendor/`), and `$OUT_DIR/web_documents.rs`, the pages and
//! documents served at their own routes (`/admin`, `/docs`, `/redoc`, `/guide.md`,
//! `/openapi.json`; the guide page, which carries a configured value, is rendered at start-up).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// (directory under src/web, URL prefix under /static/).
const SOURCES: &[(&str, &str)] = &[
    ("static", ""),
    ("vendor/swagger-ui", "swagger-ui/"),
    ("vendor/redoc", "redoc/"),
];

/// (file under the crate root, name in the documents table).
const DOCUMENTS: &[(&str, &str)] = &[
    ("src/web/pages/admin.html", "admin.html"),
    ("src/web/pages/docs.html", "docs.html"),
    ("src/web/pages/redoc.html", "redoc.html"),
    ("docs/API.zh-CN.md", "guide.md"),
    ("src/web/openapi.json", "openapi.json"),
];

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let mut table = String::from("&[\n");
    for (dir, prefix) in SOURCES {
        let dir = root.join("src/web").join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.expect("readable dir entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for path in files {
            let name = format!(
                "{prefix}{}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .expect("UTF-8 file names")
            );
            table.push_str(&entry(&out, &path, &name));
        }
    }
    table.push(']');
    std::fs::write(out.join("web_assets.rs"), table).expect("write web_assets.rs");
    let mut documents = String::from("&[\n");
    for (file, name) in DOCUMENTS {
        documents.push_str(&entry(&out, &root.join(file), name));
    }
    documents.push(']');
    std::fs::write(out.join("web_documents.rs"), documents).expect("write web_documents.rs");
}

fn entry(out: &Path, path: &Path, name: &str) -> String {
    println!("cargo:rerun-if-changed={}", path.display());
    let raw = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&raw).expect("gzip in memory");
    let gzip = encoder.finish().expect("gzip in memory");
    let gz_path = out.join(format!(
        "{}.gz",
        path.strip_prefix(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
            .unwrap_or(path)
            .display()
            .to_string()
            .replace('/', "__")
    ));
    std::fs::write(&gz_path, &gzip).expect("write gzip");
    let mut crc = flate2::Crc::new();
    crc.update(&raw);
    let mut line = String::new();
    writeln!(
        line,
        "    StaticAsset {{ name: {name:?}, content_type: {ct:?}, etag: \"\\\"{crc:08x}-{len:x}\\\"\", \
         raw: include_bytes!({raw:?}), gzip: include_bytes!({gz:?}) }},",
        ct = content_type(name),
        crc = crc.sum(),
        len = raw.len(),
        raw = path.display().to_string(),
        gz = gz_path.display().to_string(),
    )
    .expect("write to a String");
    line
}
