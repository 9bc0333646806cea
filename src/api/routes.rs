//! The route table of the whole service and the dispatch from a matched route to its handler.
//!
//! Each route names a [`RouteId`] and what the pipeline must do before calling it: which
//! credentials it needs ([`Access`]), whether browsers may call it from other origins (CORS), and
//! its body size limit. Dispatch is a `match` on the id that hands each handler its own service:
//! no boxed handler, no allocation.

use http::Method;

use super::{App, ops};
use crate::error::ApiError;
use crate::http::response::HttpResponse;
use crate::http::router::{RouteDef, Router, RouterError};
use crate::keys::KeyReq as Req;
use crate::{admin, jobs, keys, links, security, web};

/// Which credentials a route needs; the pipeline checks them before dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A valid, enabled `X-API-Key` within its rate.
    ApiKey,
    /// `Authorization: Bearer <admin token>`.
    Admin,
}

/// Every handler of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Index,
    Health,
    Metrics,
    Me,
    AdminListKeys,
    AdminCreateKey,
    AdminPatchKey,
    AdminDeleteKey,
    CreateJob,
    GetJob,
    CancelJob,
    JobEvents,
    UrgentJob,
    Pool,
    PoolProvider,
    CreateLink,
    CreateLinks,
    ListLinks,
    RestoreLink,
    PatchLink,
    DeleteLink,
    LinkStats,
    LinkQr,
    CreateGroup,
    ListGroups,
    Redirect,
    UnlockRedirect,
    SecurityCheck,
    GuideMarkdown,
    AdminPage,
    OpenApi,
    SwaggerUi,
    Redoc,
    StaticFile,
}

/// A route's handler and its requirements.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub id: RouteId,
    pub access: Access,
    /// Browsers may call it from any origin.
    pub cors: bool,
    /// Which configured body limit applies.
    pub body_limit: BodyLimit,
}

/// The configuration key that bounds a route's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// `http.max_body_bytes`.
    Http,
    /// `jobs.max_body_bytes` (job submissions of up to `jobs.max_items` URLs).
    Jobs,
    /// `links.batch_max_body_bytes` (batch link creation).
    LinkBatch,
    /// [`BodyLimit::FORM_BYTES`]: the password form of a link, the one public route with a body.
    Form,
}

impl BodyLimit {
    /// The largest password form body.
    pub const FORM_BYTES: usize = 4096;
}

const fn route(
    method: Method,
    pattern: &'static str,
    id: RouteId,
    access: Access,
    cors: bool,
) -> RouteDef<Route> {
    RouteDef {
        method,
        pattern,
        handler: Route {
            id,
            access,
            cors,
            body_limit: BodyLimit::Http,
        },
    }
}

/// The route table.
pub fn table() -> Vec<RouteDef<Route>> {
    use Access::*;
    use RouteId::*;
    let jobs_body = Route {
        id: CreateJob,
        access: ApiKey,
        cors: true,
        body_limit: BodyLimit::Jobs,
    };
    vec![
        route(Method::GET, "/", Index, Public, true),
        route(Method::GET, "/health", Health, Public, true),
        route(Method::GET, "/metrics", Metrics, Public, false),
        route(Method::GET, "/api/v1/me", Me, ApiKey, true),
        route(Method::GET, "/admin/api/keys", AdminListKeys, Admin, false),
        route(
            Method::POST,
            "/admin/api/keys",
            AdminCreateKey,
            Admin,
            false,
        ),
        route(
            Method::PATCH,
            "/admin/api/keys/{id}",
            AdminPatchKey,
            Admin,
            false,
        ),
        route(
            Method::DELETE,
            "/admin/api/keys/{id}",
            AdminDeleteKey,
            Admin,
            false,
        ),
        RouteDef {
            method: Method::POST,
            pattern: "/jobs",
            handler: jobs_body,
        },
        route(Method::GET, "/jobs/{id}", GetJob, ApiKey, true),
        route(Method::DELETE, "/jobs/{id}", CancelJob, ApiKey, true),
        route(Method::GET, "/jobs/{id}/events", JobEvents, ApiKey, true),
        route(Method::POST, "/jobs/{id}/urgent", UrgentJob, ApiKey, true),
        route(Method::GET, "/pool", Pool, Public, true),
        route(Method::GET, "/pool/{provider}", PoolProvider, Public, true),
        route(Method::POST, "/api/v1/links", CreateLink, ApiKey, true),
        route(Method::GET, "/api/v1/links", ListLinks, ApiKey, true),
        RouteDef {
            method: Method::POST,
            pattern: "/api/v1/links/batch",
            handler: Route {
                id: CreateLinks,
                access: ApiKey,
                cors: true,
                body_limit: BodyLimit::LinkBatch,
            },
        },
        route(
            Method::GET,
            "/api/v1/links/{code}",
            RestoreLink,
            ApiKey,
            true,
        ),
        route(
            Method::PATCH,
            "/api/v1/links/{code}",
            PatchLink,
            ApiKey,
            true,
        ),
        route(
            Method::DELETE,
            "/api/v1/links/{code}",
            DeleteLink,
            ApiKey,
            true,
        ),
        route(
            Method::GET,
            "/api/v1/links/{code}/stats",
            LinkStats,
            ApiKey,
            true,
        ),
        route(Method::GET, "/api/v1/links/{code}/qr", LinkQr, ApiKey, true),
        route(Method::POST, "/api/v1/groups", CreateGroup, ApiKey, true),
        route(Method::GET, "/api/v1/groups", ListGroups, ApiKey, true),
        route(
            Method::POST,
            "/api/v1/tools/security-check",
            SecurityCheck,
            ApiKey,
            true,
        ),
        route(Method::GET, "/guide.md", GuideMarkdown, Public, true),
        route(Method::GET, "/admin", AdminPage, Public, false),
        route(Method::GET, "/openapi.json", OpenApi, Public, true),
        route(Method::GET, "/docs", SwaggerUi, Public, false),
        route(Method::GET, "/redoc", Redoc, Public, false),
        route(Method::GET, "/static/{file}", StaticFile, Public, false),
        route(
            Method::GET,
            "/static/{dir}/{file}",
            StaticFile,
            Public,
            false,
        ),
        route(Method::GET, "/{code}", Redirect, Public, false),
        RouteDef {
            method: Method::POST,
            pattern: "/{code}",
            handler: Route {
                id: UnlockRedirect,
                access: Public,
                cors: false,
                body_limit: BodyLimit::Form,
            },
        },
    ]
}

/// The compiled route table.
pub fn router() -> Result<Router<Route>, RouterError> {
    Router::new(table())
}

/// Calls the handler of `id` with its own service.
pub async fn dispatch(app: &App, id: RouteId, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let site = &app.site;
    let jobs = &app.jobs;
    let links = &app.links;
    match id {
        RouteId::Index if web::wants_json(&req) => ops::index(app, req),
        RouteId::Index => web::index(site, req),
        RouteId::Health => ops::health(app, req),
        RouteId::Metrics => ops::metrics(app, req),
        RouteId::Me => keys::api::me(&app.config.keys, req),
        RouteId::AdminListKeys => admin::keys_api::list(&app.keys, req),
        RouteId::AdminCreateKey => admin::keys_api::create(&app.keys, req).await,
        RouteId::AdminPatchKey => admin::keys_api::patch(&app.keys, req).await,
        RouteId::AdminDeleteKey => admin::keys_api::delete(&app.keys, req).await,
        RouteId::CreateJob => jobs::api::create(jobs, req).await,
        RouteId::GetJob => jobs::api::get(jobs, req),
        RouteId::CancelJob => jobs::api::cancel(jobs, req).await,
        RouteId::JobEvents => jobs::api::events(jobs, req),
        RouteId::UrgentJob => jobs::api::urgent(jobs, req).await,
        RouteId::Pool => jobs::pool::all(&jobs.engine, req),
        RouteId::PoolProvider => jobs::pool::one(&jobs.engine, req),
        RouteId::CreateLink => links::api::create(links, req).await,
        RouteId::CreateLinks => links::api::create_batch(links, req).await,
        RouteId::ListLinks => links::api::list(links, req),
        RouteId::RestoreLink => links::api::restore(links, req),
        RouteId::PatchLink => links::api::patch(links, req).await,
        RouteId::DeleteLink => links::api::delete(links, req).await,
        RouteId::LinkStats => links::api::stats(links, req),
        RouteId::LinkQr => links::api::qr_code(links, req),
        RouteId::CreateGroup => links::api::create_group(links, req).await,
        RouteId::ListGroups => links::api::list_groups(links, req),
        RouteId::Redirect => links::redirect::follow(links, req),
        RouteId::UnlockRedirect => links::redirect::unlock(links, req).await,
        RouteId::SecurityCheck => security::api::check(&app.security, links, req).await,
        RouteId::GuideMarkdown => web::guide_markdown(site, req),
        RouteId::AdminPage => web::admin_page(site, req),
        RouteId::OpenApi => web::openapi(site, req),
        RouteId::SwaggerUi => web::swagger_page(site, req),
        RouteId::Redoc => web::redoc_page(site, req),
        RouteId::StaticFile => web::static_file(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::code::is_reserved;

    /// The first path segment of a route pattern when it is a literal (`/api/v1/x` → `api`).
    fn first_literal_segment(pattern: &'static str) -> Option<&'static str> {
        let first = pattern.trim_start_matches('/').split('/').next()?;
        (!first.is_empty() && !first.starts_with('{')).then_some(first)
    }

    #[test]
    fn every_top_level_route_segment_is_reserved() {
        for route in table() {
            if let Some(segment) = first_literal_segment(route.pattern) {
                assert!(is_reserved(segment), "{segment} of {}", route.pattern);
            }
        }
        for word in [
            "docs",
            "redoc",
            "openapi.json",
            "static",
            "admin",
            "jobs",
            "pool",
        ] {
            assert!(is_reserved(word), "{word}");
        }
        assert!(!is_reserved("abc123"));
    }
}
