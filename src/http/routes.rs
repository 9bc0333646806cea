//! The route table of the whole service and the dispatch from a matched route to its handler.
//!
//! Each route names a [`RouteId`] and what the pipeline must do before calling it: which
//! credentials it needs ([`Access`]), whether browsers may call it from other origins (CORS), and
//! its body size limit. Dispatch is a `match` on the id: no boxed handler, no allocation.

use bytes::Bytes;
use http::Method;

use super::request::RequestId;
use super::response::HttpResponse;
use super::router::{Params, RouteDef, Router, RouterError};
use crate::app::App;
use crate::error::ApiError;
use crate::keys::AuthedKey;
use crate::{admin, jobs, keys, links, observability, security, web};

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

/// What a handler receives.
pub struct Req<'a> {
    pub app: &'a App,
    pub request_id: &'a RequestId,
    pub parts: &'a http::request::Parts,
    pub params: Params<'a>,
    /// The whole request body, read by the pipeline (under the route's limit and the minimum
    /// rate) before the handler took an in-flight permit; empty for requests without one.
    pub body: Bytes,
    /// The client's address (the TCP peer).
    pub peer: std::net::SocketAddr,
    /// The connection the request came on (its open event streams are counted there).
    pub connection: &'a std::sync::Arc<super::connection::ConnActivity>,
    /// The caller's key, on [`Access::ApiKey`] routes.
    pub key: Option<AuthedKey>,
}

impl Req<'_> {
    /// Decodes the JSON body into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        super::request::json_body(&self.parts.headers, &self.body)
    }

    /// The path parameter `name` (the route table guarantees it exists).
    pub fn param(&self, name: &'static str) -> &str {
        self.params.get(name).unwrap_or_default()
    }
}

/// Calls the handler of `id`.
pub async fn dispatch(id: RouteId, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    match id {
        RouteId::Index => web::index(req),
        RouteId::Health => observability::health::health(req),
        RouteId::Metrics => observability::metrics::render(req),
        RouteId::Me => keys::api::me(req),
        RouteId::AdminListKeys => admin::keys_api::list(req),
        RouteId::AdminCreateKey => admin::keys_api::create(req).await,
        RouteId::AdminPatchKey => admin::keys_api::patch(req).await,
        RouteId::AdminDeleteKey => admin::keys_api::delete(req).await,
        RouteId::CreateJob => jobs::api::create(req).await,
        RouteId::GetJob => jobs::api::get(req),
        RouteId::CancelJob => jobs::api::cancel(req).await,
        RouteId::JobEvents => jobs::api::events(req),
        RouteId::UrgentJob => jobs::api::urgent(req).await,
        RouteId::Pool => jobs::pool::all(req),
        RouteId::PoolProvider => jobs::pool::one(req),
        RouteId::CreateLink => links::api::create(req).await,
        RouteId::CreateLinks => links::api::create_batch(req).await,
        RouteId::ListLinks => links::api::list(req),
        RouteId::RestoreLink => links::api::restore(req),
        RouteId::PatchLink => links::api::patch(req).await,
        RouteId::DeleteLink => links::api::delete(req).await,
        RouteId::LinkStats => links::api::stats(req),
        RouteId::LinkQr => links::api::qr_code(req),
        RouteId::CreateGroup => links::api::create_group(req).await,
        RouteId::ListGroups => links::api::list_groups(req),
        RouteId::Redirect => links::redirect::follow(req),
        RouteId::UnlockRedirect => links::redirect::unlock(req).await,
        RouteId::SecurityCheck => security::api::check(req).await,
        RouteId::GuideMarkdown => web::guide_markdown(req),
        RouteId::AdminPage => web::admin_page(req),
        RouteId::OpenApi => web::openapi(req),
        RouteId::SwaggerUi => web::swagger_page(req),
        RouteId::Redoc => web::redoc_page(req),
        RouteId::StaticFile => web::static_file(req),
    }
}
