//! The one error vocabulary of the HTTP API.
//!
//! Every error a client can see is an [`ApiError`]. [`ApiError::spec`] is the single table that maps
//! a variant to its HTTP status, numeric `code`, machine-readable slug and Chinese message, and
//! `http::response::error_response` is the only place that renders it as a JSON body. Handlers
//! never build error bodies themselves.
//!
//! The numeric `code` equals the HTTP status (the short-link spec's convention: 400, 401, 403, 404,
//! …), so clients that only read the body and clients that only read the status agree.

use std::borrow::Cow;

use http::StatusCode;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not JSON at all (syntax error, truncated, empty).
    InvalidJson(String),
    /// A field is missing, of the wrong type or out of range. `field` is its JSON path.
    InvalidField {
        field: Cow<'static, str>,
        reason: Cow<'static, str>,
    },
    /// A body was sent with a content type other than `application/json`.
    UnsupportedContentType,
    /// A path or query parameter is malformed.
    InvalidParameter {
        name: &'static str,
        reason: Cow<'static, str>,
    },
    /// No `X-API-Key` header.
    MissingApiKey,
    /// `X-API-Key` is not a key panlink knows.
    InvalidApiKey,
    /// The admin API was called without the right bearer token.
    AdminUnauthorized,
    /// The key exists but was disabled by an operator.
    KeyDisabled,
    /// The key's scopes do not include the one this route needs (its name).
    ScopeNotAllowed(&'static str),
    /// The key's plan does not include this feature.
    PlanNotAllowed(&'static str),
    /// The key's points balance is too low for this call.
    InsufficientPoints,
    /// No such route.
    RouteNotFound,
    /// The addressed resource does not exist (or belongs to another key).
    NotFound(&'static str),
    /// The path exists but not with this method; `allow` is the `Allow` header value.
    MethodNotAllowed { allow: http::HeaderValue },
    /// The short code (alias) is taken.
    AliasTaken,
    /// The alias is a reserved word (a route of the service).
    AliasReserved,
    /// The link is password protected and the caller does not own it: its target is withheld.
    PasswordProtected,
    /// The request conflicts with the resource's current state.
    Conflict(Cow<'static, str>),
    /// The body is larger than this route accepts.
    PayloadTooLarge { limit: usize },
    /// The body did not arrive at the minimum rate (`http.body_timeout_ms`,
    /// `http.body_min_bytes_per_s`).
    BodyTooSlow { min_bytes_per_s: u64 },
    /// The key is over its request rate.
    RateLimited { retry_after_s: u32 },
    /// This client address already has as many unauthenticated requests sending a body as it may.
    PeerBusy { limit: u32 },
    /// The key (or this connection) already has as many event streams open as it may.
    TooManyStreams { scope: &'static str, limit: usize },
    /// The key has stored as many job items within the retention window as its plan allows.
    ItemQuotaExceeded { quota: u64, used: u64 },
    /// The key has as many unfinished jobs as it may.
    TooManyOpenJobs { limit: usize },
    /// The key has as many of something (monitors, monitored links, webhooks) as its plan
    /// allows; `what` names it in Chinese.
    LimitReached { what: &'static str, limit: u64 },
    /// Unexpected failure; details are in the log under the request id, never in the body.
    Internal,
    /// The server sheds load instead of queueing without bound.
    Overloaded { retry_after_s: u32 },
    /// The handler did not finish within the per-request deadline.
    HandlerTimeout,
    /// The server is shutting down and takes no new work.
    ShuttingDown,
    /// The job is still with the server this one is taking over from (a handover is under way).
    JobHandingOver,
    /// LMDB's map or the disk is full: nothing was written.
    StorageFull,
    /// The data dir's file system is read-only: nothing was written.
    StorageReadOnly,
    /// Cluster mode: the cluster's store did not accept a change (NATS out of reach, no quorum,
    /// or the change kept losing to concurrent ones): nothing was changed.
    ClusterUnavailable,
}

/// What the error table says about one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSpec {
    pub status: StatusCode,
    /// The numeric `code` of the JSON body.
    pub code: u16,
    /// A stable machine-readable name (`error` in the body).
    pub slug: &'static str,
    /// Human text, Chinese (`msg` and `detail` in the body).
    pub message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header, when the client should come back later.
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    /// Shorthand for an [`ApiError::InvalidField`].
    pub fn field(
        field: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The error table: variant → status, code, slug, message.
    pub fn spec(&self) -> ErrorSpec {
        use ApiError::*;
        let (status, slug, message, retry_after_s): (
            StatusCode,
            &'static str,
            Cow<'static, str>,
            _,
        ) = match self {
            InvalidJson(why) => (
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("请求体不是合法的 JSON：{why}").into(),
                None,
            ),
            InvalidField { field, reason } => (
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!("字段 `{field}` 无效: {reason}").into(),
                None,
            ),
            UnsupportedContentType => (
                StatusCode::BAD_REQUEST,
                "unsupported_content_type",
                "Content-Type 必须是 application/json".into(),
                None,
            ),
            InvalidParameter { name, reason } => (
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("参数 `{name}` 无效: {reason}").into(),
                None,
            ),
            MissingApiKey => (
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "缺少 API 密钥，请在请求头 X-API-Key 中提供".into(),
                None,
            ),
            InvalidApiKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "API 密钥无效".into(),
                None,
            ),
            AdminUnauthorized => (
                StatusCode::UNAUTHORIZED,
                "admin_unauthorized",
                "管理令牌缺失或错误 (Authorization: Bearer <token>)".into(),
                None,
            ),
            KeyDisabled => (
                StatusCode::FORBIDDEN,
                "key_disabled",
                "账户已禁用".into(),
                None,
            ),
            ScopeNotAllowed(scope) => (
                StatusCode::FORBIDDEN,
                "scope_not_allowed",
                format!("此密钥没有 `{scope}` 权限（管理员可在密钥的 scopes 中加上）").into(),
                None,
            ),
            PlanNotAllowed(feature) => (
                StatusCode::FORBIDDEN,
                "plan_not_allowed",
                format!("当前套餐不支持{feature}").into(),
                None,
            ),
            InsufficientPoints => (
                StatusCode::FORBIDDEN,
                "insufficient_points",
                "积分不足".into(),
                None,
            ),
            AliasTaken => (
                StatusCode::BAD_REQUEST,
                "alias_taken",
                "短码已存在".into(),
                None,
            ),
            AliasReserved => (
                StatusCode::BAD_REQUEST,
                "alias_reserved",
                "短码是系统保留字，请换一个".into(),
                None,
            ),
            PasswordProtected => (
                StatusCode::FORBIDDEN,
                "password_protected",
                "该短链接受密码保护，仅创建者可查看目标地址".into(),
                None,
            ),
            RouteNotFound => (
                StatusCode::NOT_FOUND,
                "route_not_found",
                "接口不存在".into(),
                None,
            ),
            NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what}不存在").into(),
                None,
            ),
            MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "该接口不支持此请求方法".into(),
                None,
            ),
            Conflict(why) => (StatusCode::CONFLICT, "conflict", why.clone(), None),
            PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("请求体过大，上限为 {limit} 字节").into(),
                None,
            ),
            BodyTooSlow { min_bytes_per_s } => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("请求体发送过慢或未发完（宽限期后每秒至少 {min_bytes_per_s} 字节）").into(),
                None,
            ),
            RateLimited { retry_after_s } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "请求过于频繁，请稍后重试".into(),
                Some(*retry_after_s),
            ),
            PeerBusy { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_concurrent_requests",
                format!("同一客户端地址同时发送请求体的未认证请求已达上限 ({limit} 个)，请稍后重试")
                    .into(),
                Some(1),
            ),
            TooManyStreams { scope, limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("{scope}同时打开的事件流已达上限 ({limit} 个)，请先关闭不用的连接").into(),
                Some(5),
            ),
            LimitReached { what, limit } => (
                StatusCode::BAD_REQUEST,
                "limit_reached",
                format!("{what}已达上限（{limit} 个）").into(),
                None,
            ),
            ItemQuotaExceeded { quota, used } => (
                StatusCode::TOO_MANY_REQUESTS,
                "item_quota_exceeded",
                format!(
                    "保留期内已存储 {used} 个检测项，本次提交将超出套餐上限 ({quota} 个)；请等待旧任务过期或升级套餐"
                )
                .into(),
                Some(3600),
            ),
            TooManyOpenJobs { limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_open_jobs",
                format!("未完成的任务已达上限 ({limit} 个)，请等待任务完成或取消后再提交").into(),
                Some(5),
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "服务器内部错误".into(),
                None,
            ),
            Overloaded { retry_after_s } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "服务器繁忙，请稍后重试".into(),
                Some(*retry_after_s),
            ),
            HandlerTimeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "handler_timeout",
                "请求处理超时，请稍后重试".into(),
                Some(1),
            ),
            ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "服务器正在关闭，请稍后重试".into(),
                Some(5),
            ),
            JobHandingOver => (
                StatusCode::SERVICE_UNAVAILABLE,
                "job_handing_over",
                "服务正在平滑重启，该任务仍由旧进程处理，请稍后重试".into(),
                Some(1),
            ),
            StorageFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "存储空间已满，本次写入未生效".into(),
                None,
            ),
            StorageReadOnly => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_read_only",
                "存储处于只读状态，本次写入未生效，请稍后重试".into(),
                Some(30),
            ),
            ClusterUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                "集群存储暂时不可用，本次修改未生效，请稍后重试".into(),
                Some(1),
            ),
        };
        ErrorSpec {
            status,
            code: status.as_u16(),
            slug,
            message,
            retry_after_s,
        }
    }
}

/// A change the cluster's store did not accept: 503, with the reason in the log only.
impl From<crate::cluster::bucket::WriteError> for ApiError {
    fn from(err: crate::cluster::bucket::WriteError) -> Self {
        tracing::warn!(error = %err, "a change was not accepted by the cluster");
        ApiError::ClusterUnavailable
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spec = self.spec();
        write!(f, "{} {}: {}", spec.code, spec.slug, spec.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::MapFull => {
                tracing::error!(
                    "LMDB map is full: raise storage.map_size_mb; the write was refused"
                );
                ApiError::StorageFull
            }
            StoreError::DiskFull => {
                tracing::error!("the disk under the data dir is full; the write was refused");
                ApiError::StorageFull
            }
            StoreError::ReadOnly => {
                tracing::error!(
                    "the data dir is on a read-only file system; the write was refused"
                );
                ApiError::StorageReadOnly
            }
            StoreError::WriterGone => ApiError::ShuttingDown,
            StoreError::Lmdb(err) => {
                tracing::error!(error = %err, "storage error");
                ApiError::Internal
            }
            StoreError::Corrupt(what) => {
                tracing::error!(record = what, "undecodable record");
                ApiError::Internal
            }
            StoreError::Truncated(found) => {
                tracing::error!(%found, "truncated data file");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_always_equals_status() {
        let all = [
            ApiError::InvalidJson("x".into()),
            ApiError::field("a", "b"),
            ApiError::UnsupportedContentType,
            ApiError::InvalidParameter {
                name: "id",
                reason: "x".into(),
            },
            ApiError::MissingApiKey,
            ApiError::InvalidApiKey,
            ApiError::AdminUnauthorized,
            ApiError::KeyDisabled,
            ApiError::PlanNotAllowed("自定义短码"),
            ApiError::ScopeNotAllowed("stats"),
            ApiError::InsufficientPoints,
            ApiError::AliasTaken,
            ApiError::AliasReserved,
            ApiError::PasswordProtected,
            ApiError::RouteNotFound,
            ApiError::NotFound("密钥"),
            ApiError::MethodNotAllowed {
                allow: http::HeaderValue::from_static("GET"),
            },
            ApiError::Conflict("x".into()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::RateLimited { retry_after_s: 1 },
            ApiError::BodyTooSlow { min_bytes_per_s: 1 },
            ApiError::PeerBusy { limit: 1 },
            ApiError::TooManyStreams {
                scope: "密钥",
                limit: 1,
            },
            ApiError::ItemQuotaExceeded { quota: 1, used: 1 },
            ApiError::TooManyOpenJobs { limit: 1 },
            ApiError::LimitReached {
                what: "监控",
                limit: 1,
            },
            ApiError::Internal,
            ApiError::Overloaded { retry_after_s: 1 },
            ApiError::HandlerTimeout,
            ApiError::ShuttingDown,
            ApiError::JobHandingOver,
            ApiError::StorageFull,
            ApiError::StorageReadOnly,
            ApiError::ClusterUnavailable,
        ];
        for err in all {
            let spec = err.spec();
            assert_eq!(spec.code, spec.status.as_u16(), "{err:?}");
            assert!(!spec.message.is_empty());
            let limited = matches!(spec.status.as_u16(), 429 | 503);
            assert_eq!(spec.retry_after_s.is_some(), limited, "{err:?}");
        }
    }

    #[test]
    fn field_errors_name_the_field() {
        let spec = ApiError::field("items[3].url", "必须是字符串").spec();
        assert_eq!(spec.status, StatusCode::BAD_REQUEST);
        assert!(spec.message.contains("items[3].url"));
    }
}
