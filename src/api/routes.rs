//! The route table of the whole service and the dispatch from a matched route to its handler.
//!
//! Each route is one line of [`routes!`]: its id, method, pattern, which credentials it needs
//! ([`Access`]), whether browsers may call it from other origins ([`Cors`]), its body size limit,
//! and the handler call. Dispatch is a `match` on the id that hands each handler its own service:
//! no boxed handler, no allocation.

use http::Method;

use super::{App, ops};
use crate::error::ApiError;
use crate::http::response::HttpResponse;
use crate::http::router::{RouteDef, Router, RouterError};
use crate::keys::KeyReq as Req;
use crate::keys::Scope;
use crate::{admin, jobs, keys, links, monitors, security, web, webhooks};

/// Which credentials a route needs; the pipeline checks them before dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A valid, enabled `X-API-Key` within its rate, holding the scope if one is named.
    ApiKey(Option<Scope>),
    /// `Authorization: Bearer <admin token>`.
    Admin,
}

/// Whether browsers may call a route from pages of other origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors {
    /// Any origin (`Access-Control-Allow-Origin: *`): the API, the guide, health.
    Open,
    /// Same origin only: pages, the admin API, redirects, metrics.
    SameOrigin,
}

impl Cors {
    /// Whether pages of other origins may call the route.
    pub fn is_open(self) -> bool {
        self == Cors::Open
    }
}

/// A route's handler and its requirements.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub id: RouteId,
    pub access: Access,
    pub cors: Cors,
    /// Which configured body limit applies.
    pub body_limit: BodyLimit,
    /// Answered the moment hyper hands the request over ([`dispatch_now`]): a bodiless route
    /// whose handler never awaits.
    pub immediate: bool,
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
    /// `links.import_max_body_bytes` (CSV imports).
    LinkImport,
    /// [`BodyLimit::FORM_BYTES`]: the password form of a link, the one public route with a body.
    Form,
}

impl BodyLimit {
    /// The largest password form body.
    pub const FORM_BYTES: usize = 4096;
}

/// Declares every route once, one line each:
/// `Id: METHOD "/pattern", access[(Scope)], cors[, body: Limit] [[now]] => handler call;`.
/// From those lines come the [`RouteId`] enum, [`table`], [`dispatch`] and [`dispatch_now`]. The
/// handler expressions see the application as `app` and the request as `req`. `[now]` marks a
/// `GET` route whose handler never awaits: the pipeline answers it before hyper stores the
/// request's future, so the request (and the read buffer its headers share) is freed before
/// hyper reads ahead on the connection.
macro_rules! routes {
    (
        fn dispatch($app:ident, $req:ident);
        $(
            $id:ident: $method:ident $pattern:literal, $access:ident $(($scope:ident))?,
                $cors:ident $(, body: $limit:ident)? $([$immediate:ident])? => $handler:expr;
        )*
    ) => {
        /// Every handler of the service.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum RouteId {
            $( $id, )*
        }

        /// The route table.
        pub fn table() -> Vec<RouteDef<Route>> {
            vec![
                $( RouteDef {
                    method: Method::$method,
                    pattern: $pattern,
                    handler: Route {
                        id: RouteId::$id,
                        access: routes!(@access $access $($scope)?),
                        cors: Cors::$cors,
                        body_limit: routes!(@limit $($limit)?),
                        immediate: routes!(@immediate $($immediate)?),
                    },
                }, )*
            ]
        }

        /// Calls the handler of `id` with its own service.
        pub async fn dispatch(
            $app: &App,
            id: RouteId,
            $req: Req<'_>,
        ) -> Result<HttpResponse, ApiError> {
            match id {
                $( RouteId::$id => $handler, )*
            }
        }

        /// Runs an immediate route's handler (one marked `[now]`) without a future; `None` for
        /// every other route.
        pub fn dispatch_now(
            $app: &App,
            id: RouteId,
            $req: Req<'_>,
        ) -> Option<Result<HttpResponse, ApiError>> {
            match id {
                $( $( RouteId::$id => {
                    // Names `$immediate`, so that only the marked routes get an arm here.
                    routes!(@immediate $immediate);
                    Some($handler)
                } )? )*
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
    (@immediate) => { false };
    (@immediate now) => { true };
    (@access ApiKey) => { Access::ApiKey(None) };
    (@access ApiKey $scope:ident) => { Access::ApiKey(Some(Scope::$scope)) };
    (@access $access:ident) => { Access::$access };
    (@limit) => { BodyLimit::Http };
    (@limit $limit:ident) => { BodyLimit::$limit };
}

routes! {
    fn dispatch(app, req);
    Index: GET "/", Public, Open => if web::wants_json(&req) {
        ops::index(app, req)
    } else {
        web::index(&app.site, req)
    };
    Health: GET "/health", Public, Open => ops::health(app, req);
    Metrics: GET "/metrics", Public, SameOrigin => ops::metrics(app, req);
    Me: GET "/api/v1/me", ApiKey, Open => keys::api::me(&app.config.keys, req);

    AdminListKeys: GET "/admin/api/keys", Admin, SameOrigin
        => admin::keys_api::list(&app.keys, req);
    AdminCreateKey: POST "/admin/api/keys", Admin, SameOrigin
        => admin::keys_api::create(&app.keys, req).await;
    AdminPatchKey: PATCH "/admin/api/keys/{id}", Admin, SameOrigin
        => admin::keys_api::patch(&app.keys, req).await;
    AdminDeleteKey: DELETE "/admin/api/keys/{id}", Admin, SameOrigin
        => admin::keys_api::delete(&app.keys, req).await;

    CreateJob: POST "/jobs", ApiKey(Checker), Open, body: Jobs => jobs::api::create(&app.jobs, req).await;
    GetJob: GET "/jobs/{id}", ApiKey(Checker), Open => jobs::api::get(&app.jobs, req).await;
    CancelJob: DELETE "/jobs/{id}", ApiKey(Checker), Open => jobs::api::cancel(&app.jobs, req).await;
    JobEvents: GET "/jobs/{id}/events", ApiKey(Checker), Open => jobs::api::events(&app.jobs, req).await;
    UrgentJob: POST "/jobs/{id}/urgent", ApiKey(Checker), Open => jobs::api::urgent(&app.jobs, req).await;
    JobResults: GET "/jobs/{id}/results", ApiKey(Checker), Open => jobs::export::results(&app.jobs, req).await;
    Check: POST "/check", ApiKey(Checker), Open => jobs::check::check(&app.jobs, req).await;
    Pool: GET "/pool", Public, Open => ops::pool(app, req);
    PoolProvider: GET "/pool/{provider}", Public, Open => jobs::pool::one(&app.jobs.engine, req);

    CreateLink: POST "/api/v1/links", ApiKey(LinksWrite), Open => links::api::create(&app.links, req).await;
    ListLinks: GET "/api/v1/links", ApiKey(LinksRead), Open => links::api::list(&app.links, req);
    CreateLinks: POST "/api/v1/links/batch", ApiKey(LinksWrite), Open, body: LinkBatch
        => links::api::create_batch(&app.links, req).await;
    ExportLinks: GET "/api/v1/links/export", ApiKey(LinksRead), Open
        => links::transfer::export(&app.links, req);
    ImportLinks: POST "/api/v1/links/import", ApiKey(LinksWrite), Open, body: LinkImport
        => links::transfer::import(&app.links, req).await;
    RestoreLink: GET "/api/v1/links/{code}", ApiKey(LinksRead), Open => links::api::restore(&app.links, req);
    PatchLink: PATCH "/api/v1/links/{code}", ApiKey(LinksWrite), Open
        => links::api::patch(&app.links, req).await;
    DeleteLink: DELETE "/api/v1/links/{code}", ApiKey(LinksWrite), Open
        => links::api::delete(&app.links, req).await;
    LinkStats: GET "/api/v1/links/{code}/stats", ApiKey(Stats), Open
        => links::stats::link(&app.links, req);
    KeyStats: GET "/api/v1/stats", ApiKey(Stats), Open => links::stats::key(&app.links, req);
    LinkQr: GET "/api/v1/links/{code}/qr", ApiKey(LinksRead), Open => links::api::qr_code(&app.links, req);
    CreateGroup: POST "/api/v1/groups", ApiKey(LinksWrite), Open
        => links::api::create_group(&app.links, req).await;
    ListGroups: GET "/api/v1/groups", ApiKey(LinksRead), Open => links::api::list_groups(&app.links, req);
    SecurityCheck: POST "/api/v1/tools/security-check", ApiKey(SecurityCheck), Open
        => security::api::check(&app.security, &app.links, app.keys.book(), req).await;

    CreateMonitor: POST "/api/v1/monitors", ApiKey(Checker), Open, body: Jobs
        => monitors::api::create(&app.monitors, req).await;
    ListMonitors: GET "/api/v1/monitors", ApiKey(Checker), Open => monitors::api::list(&app.monitors, req);
    GetMonitor: GET "/api/v1/monitors/{id}", ApiKey(Checker), Open
        => monitors::api::get(&app.monitors, req).await;
    PatchMonitor: PATCH "/api/v1/monitors/{id}", ApiKey(Checker), Open, body: Jobs
        => monitors::api::patch(&app.monitors, req).await;
    DeleteMonitor: DELETE "/api/v1/monitors/{id}", ApiKey(Checker), Open
        => monitors::api::delete(&app.monitors, req).await;
    MonitorLinks: GET "/api/v1/monitors/{id}/links", ApiKey(Checker), Open
        => monitors::api::links(&app.monitors, req).await;
    RunMonitor: POST "/api/v1/monitors/{id}/run", ApiKey(Checker), Open
        => monitors::api::run(&app.monitors, req).await;

    CreateWebhook: POST "/api/v1/webhooks", ApiKey(Webhooks), Open
        => webhooks::api::create(&app.webhooks, req).await;
    ListWebhooks: GET "/api/v1/webhooks", ApiKey(Webhooks), Open => webhooks::api::list(&app.webhooks, req);
    GetWebhook: GET "/api/v1/webhooks/{id}", ApiKey(Webhooks), Open => webhooks::api::get(&app.webhooks, req);
    PatchWebhook: PATCH "/api/v1/webhooks/{id}", ApiKey(Webhooks), Open
        => webhooks::api::patch(&app.webhooks, req).await;
    DeleteWebhook: DELETE "/api/v1/webhooks/{id}", ApiKey(Webhooks), Open
        => webhooks::api::delete(&app.webhooks, req).await;
    PingWebhook: POST "/api/v1/webhooks/{id}/ping", ApiKey(Webhooks), Open
        => webhooks::api::ping(&app.webhooks, req).await;
    WebhookDeliveries: GET "/api/v1/webhooks/{id}/deliveries", ApiKey(Webhooks), Open
        => webhooks::api::deliveries(&app.webhooks, req);
    RedeliverWebhook: POST "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", ApiKey(Webhooks), Open
        => webhooks::api::redeliver(&app.webhooks, req).await;

    GuideMarkdown: GET "/guide.md", Public, Open => web::guide_markdown(&app.site, req);
    AdminPage: GET "/admin", Public, SameOrigin => web::admin_page(&app.site, req);
    OpenApi: GET "/openapi.json", Public, Open => web::openapi(&app.site, req);
    SwaggerUi: GET "/docs", Public, SameOrigin => web::swagger_page(&app.site, req);
    Redoc: GET "/redoc", Public, SameOrigin => web::redoc_page(&app.site, req);
    StaticFile: GET "/static/{file}", Public, SameOrigin => web::static_file(req);
    StaticFileInDir: GET "/static/{dir}/{file}", Public, SameOrigin => web::static_file(req);

    Redirect: GET "/{code}", Public, SameOrigin [now] => links::redirect::follow(&app.links, req);
    UnlockRedirect: POST "/{code}", Public, SameOrigin, body: Form
        => links::redirect::unlock(&app.links, req).await;
}

/// The compiled route table.
pub fn router() -> Result<Router<Route>, RouterError> {
    Router::new(table())
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

    #[test]
    fn immediate_routes_are_bodiless_gets() {
        let immediate: Vec<_> = table()
            .into_iter()
            .filter(|route| route.handler.immediate)
            .collect();
        assert!(!immediate.is_empty());
        for route in immediate {
            assert_eq!(route.method, Method::GET, "{}", route.pattern);
            assert_eq!(
                route.handler.body_limit,
                BodyLimit::Http,
                "{}",
                route.pattern
            );
        }
    }
}
