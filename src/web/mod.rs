//! The web face: the API guide (`/`), the key admin page (`/admin`), the guide as Markdown
//! (`/guide.md`), the OpenAPI document (`/openapi.json`) with Swagger UI (`/docs`) and ReDoc
//! (`/redoc`), and the files they load (`/static/…`). Everything is embedded in the binary and
//! works with no internet access: the pages load nothing from another origin.
//!
//! The pages are static HTML in Chinese with their own scripts; they call the public JSON API like
//! any client. The guide page reads `/guide.md` (one document, `docs/API.zh-CN.md`) for its preview,
//! its tables and its code examples, so the page and the document cannot disagree.
//!
//! Invariant: no page embeds a secret or user data; the API key typed into a page stays in that
//! browser (localStorage only when the user asks) and goes only to this server.

pub mod assets;

use http::header::ACCEPT;

use crate::config::Config;
use crate::error::ApiError;
use crate::http::response::HttpResponse;
use crate::keys::KeyReq as Req;
use assets::{Caching, Servable};

/// The guide page; the other pages and the documents are embedded by `build.rs`.
const GUIDE_HTML: &str = include_str!("pages/guide.html");

/// Where the guide page takes its base URL from: replaced at start-up by
/// `server.public_base_url` (empty: the page uses its own origin).
const BASE_URL_SLOT: &str = "__PANLINK_PUBLIC_BASE_URL__";

/// The pages: the guide rendered once at start-up, the rest as `build.rs` embedded them.
#[derive(Debug)]
pub struct Site {
    guide: Servable,
    guide_markdown: Servable,
    admin: Servable,
    swagger: Servable,
    redoc: Servable,
    openapi: Servable,
}

impl Site {
    pub fn new(config: &Config) -> Site {
        let base = crate::links::pages::escape(
            config.server.public_base_url.as_deref().unwrap_or_default(),
        );
        let html = "text/html; charset=utf-8";
        Site {
            guide: Servable::rendered(html, GUIDE_HTML.replace(BASE_URL_SLOT, &base).into()),
            guide_markdown: Servable::from_static(assets::document("guide.md")),
            admin: Servable::from_static(assets::document("admin.html")),
            swagger: Servable::from_static(assets::document("docs.html")),
            redoc: Servable::from_static(assets::document("redoc.html")),
            openapi: Servable::from_static(assets::document("openapi.json")),
        }
    }
}

/// Whether the client asked for JSON rather than a page (`Accept: application/json`, no HTML).
pub fn wants_json(req: &Req<'_>) -> bool {
    let accept = req
        .parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// `GET /`: the guide page (the application answers JSON itself to clients that ask for it).
pub fn index(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site.guide.serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /guide.md`.
pub fn guide_markdown(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site
        .guide_markdown
        .serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /admin`.
pub fn admin_page(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site.admin.serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /docs`.
pub fn swagger_page(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site.swagger.serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /redoc`.
pub fn redoc_page(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site.redoc.serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /openapi.json`.
pub fn openapi(site: &Site, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    Ok(site.openapi.serve(&req.parts.headers, Caching::Revalidate))
}

/// `GET /static/{file}` and `GET /static/{dir}/{file}`: an embedded file, or 404.
pub fn static_file(req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let file = req.param("file");
    let asset = match req.params.get("dir") {
        None => assets::find(file),
        Some(dir) => assets::STATIC_ASSETS.iter().find(|asset| {
            asset
                .name
                .split_once('/')
                .is_some_and(|(d, f)| d == dir && f == file)
        }),
    };
    let asset = asset.ok_or(ApiError::NotFound("文件"))?;
    Ok(Servable::from_static(asset).serve(&req.parts.headers, Caching::Day))
}
