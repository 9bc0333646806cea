//! The jobs API: `POST /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}`, `POST /jobs/{id}/urgent`,
//! and `GET /jobs/{id}/events` (SSE). A job belongs to the key that created it; other keys get 404.
//! Bodies are plain JSON objects (the FastAPI-style service this API comes from), errors the common
//! error body.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Jobs;
use super::engine::{Job, JobSnapshot, ProviderProgress, Published};
use super::event::Priority;
use super::quota;
use super::record::{self, ItemRecord, JOB_ID_LEN, JobRecord, JobStatus};
use super::submission::{StoredItemQuota, SubmitError};
use crate::checker::extract;
use crate::checker::providers::{self, Recognized};
use crate::checker::share::Provider;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::{AuthedKey, KeyReq as Req};
use crate::sse::{self, ChannelBody};
use crate::timefmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    text: Option<String>,
}

/// An item of a submission that was not taken, by its index in `items`.
#[derive(Debug, Serialize)]
pub(super) struct Rejected {
    index: usize,
    reason: &'static str,
}

/// What bounds one submission (from `jobs.*`, and `check.max_items` for `POST /check`).
#[derive(Clone, Copy)]
pub(super) struct SubmissionLimits {
    pub max_items: usize,
    pub max_url_bytes: usize,
    pub max_meta_bytes: usize,
    /// Said after the limit when a submission goes over it.
    pub over_limit_hint: &'static str,
}

impl SubmissionLimits {
    pub fn of_jobs(config: &crate::config::JobsConfig) -> SubmissionLimits {
        SubmissionLimits {
            max_items: config.max_items,
            max_url_bytes: config.max_url_bytes,
            max_meta_bytes: config.max_meta_bytes,
            over_limit_hint: "",
        }
    }
}

/// `POST /jobs`.
pub async fn create(app: &Jobs, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = req.caller.clone().ok_or(ApiError::MissingApiKey)?;
    if !crate::http::request::is_json_content_type(&req.parts.headers) {
        return Err(ApiError::UnsupportedContentType);
    }
    let limits = SubmissionLimits::of_jobs(&app.config);
    let body = req.body.clone();
    let (items, rejected) = tokio::task::spawn_blocking(move || {
        let body: CreateBody = crate::http::request::parse_json(&body)?;
        parse_submission(body.items, body.text.as_deref(), limits)
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    let now = timefmt::now_ms();
    let job = submit(app, &key, items, now, Priority::Normal).await?;

    #[derive(Serialize)]
    struct Created {
        job_id: String,
        stream_url: String,
        status: JobStatus,
        total: u32,
        providers: BTreeMap<Provider, u32>,
        unsupported: u32,
        rejected: Vec<Rejected>,
        created_at: String,
    }
    let id = job.id.clone();
    Ok(response::json(
        StatusCode::CREATED,
        &Created {
            stream_url: format!("/jobs/{id}/events"),
            job_id: id,
            status: job.status,
            total: job.total,
            providers: job.providers.iter().map(|(p, t)| (*p, t.total)).collect(),
            unsupported: job.unsupported,
            rejected,
            created_at: timefmt::rfc3339_ms(now),
        },
    ))
}

/// Stores a job of `items` for `key` and starts it on `lane`: within the key's open-jobs cap and
/// its plan's stored-item quota.
pub(super) async fn submit(
    app: &Jobs,
    key: &AuthedKey,
    items: Vec<ItemRecord>,
    now: u64,
    lane: Priority,
) -> Result<JobRecord, ApiError> {
    let open = app.engine.open_jobs_of(&key.record.id);
    if open >= app.config.max_open_jobs_per_key {
        return Err(ApiError::TooManyOpenJobs {
            limit: app.config.max_open_jobs_per_key,
        });
    }
    let quota = StoredItemQuota {
        items: match key.record.plan {
            crate::keys::record::Plan::Free => app.config.free_max_stored_items,
            crate::keys::record::Plan::Premium => app.config.premium_max_stored_items,
        },
        window: quota::Window {
            retention_ms: u64::try_from(app.config.retention.as_millis()).unwrap_or(u64::MAX),
        },
    };
    let owner = key.record.id.clone();
    let submitted = match &app.shared {
        Some(shared) => shared.submit(owner, items, quota, now, lane).await,
        None => app.engine.submit(owner, items, quota, now, lane).await,
    };
    match submitted {
        Ok(job) => Ok(job),
        Err(SubmitError::OverQuota { used }) => {
            metrics::counter!("panlink_jobs_refused_total", "reason" => "item_quota").increment(1);
            Err(ApiError::ItemQuotaExceeded {
                quota: quota.items,
                used,
            })
        }
        Err(other) => Err(submit_error(other)),
    }
}

/// Why the cluster or the store did not take a job or a change of one, as the API answers it.
fn submit_error(err: SubmitError) -> ApiError {
    match err {
        SubmitError::Store(err) => err.into(),
        SubmitError::Cluster(err) => err.into(),
        SubmitError::Interrupted => ApiError::ShuttingDown,
        // Answered with the quota by `submit`.
        SubmitError::OverQuota { .. } => ApiError::Internal,
    }
}

/// Checks the items of a submission (from `items` and from the share links found in `text`),
/// setting aside the ones rejected. Linear in the body; callers run it on the blocking pool.
pub(super) fn parse_submission(
    values: Vec<Value>,
    text: Option<&str>,
    limits: SubmissionLimits,
) -> Result<(Vec<ItemRecord>, Vec<Rejected>), ApiError> {
    let limit = limits.max_items;
    let over = |what: &str| {
        ApiError::field(
            "items",
            format!("最多 {limit} 个链接{what}{}", limits.over_limit_hint),
        )
    };
    if values.len() > limit {
        return Err(over(""));
    }
    let mut items: Vec<ItemRecord> = Vec::with_capacity(values.len());
    let mut rejected = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        match item_from_json(value, limits) {
            Ok(item) => items.push(item),
            Err(reason) => rejected.push(Rejected { index, reason }),
        }
    }
    if let Some(text) = text {
        for found in extract::shares_in_text(text) {
            items.push(ItemRecord::of_share(found.url, found.share, None));
        }
    }
    if items.len() > limit {
        return Err(over("（含 text 中提取的）"));
    }
    if items.is_empty() {
        return Err(ApiError::field(
            "items",
            "没有可检测的链接（items 为空，text 中也没有找到分享链接）",
        ));
    }

    Ok((items, rejected))
}

/// Longest pass code an item may carry (the drives' codes are 4 to 8 characters).
const MAX_PASSCODE_BYTES: usize = 64;

/// An item of `POST /jobs`: a URL string, or `{"url", "meta"?, "passcode"?}`.
fn item_from_json(value: Value, limits: SubmissionLimits) -> Result<ItemRecord, &'static str> {
    let (url, meta, passcode) = match value {
        Value::String(url) => (url, None, None),
        Value::Object(mut object) => {
            let url = match object.remove("url") {
                Some(Value::String(url)) => url,
                Some(_) => return Err("url_not_a_string"),
                None => return Err("missing_url"),
            };
            let passcode = match object.remove("passcode") {
                Some(Value::String(code)) if code.len() > MAX_PASSCODE_BYTES => {
                    return Err("passcode_too_long");
                }
                Some(Value::String(code)) => Some(code),
                Some(Value::Null) | None => None,
                Some(_) => return Err("passcode_not_a_string"),
            };
            let meta = match object.remove("meta") {
                Some(meta) => {
                    let raw = serde_json::value::to_raw_value(&meta).map_err(|_| "bad_meta")?;
                    if raw.get().len() > limits.max_meta_bytes {
                        return Err("meta_too_large");
                    }
                    Some(raw)
                }
                None => None,
            };
            (url, meta, passcode)
        }
        _ => return Err("not_a_url"),
    };
    let url = url.trim().to_owned();
    if url.len() > limits.max_url_bytes {
        return Err("url_too_long");
    }
    match providers::recognize(&url, passcode.as_deref()) {
        Recognized::InvalidUrl => Err("not_a_url"),
        Recognized::Unsupported => Ok(ItemRecord {
            url,
            provider: None,
            share_id: None,
            passcode,
            share_host: None,
            meta,
        }),
        Recognized::Share(share) => Ok(ItemRecord::of_share(url, share, meta)),
    }
}

/// Where a job is: live in the engine, or only in storage.
pub(super) enum Found {
    Live(Arc<Job>),
    Stored(JobRecord),
}

impl Found {
    /// An unfinished job this engine does not hold: the server it is taking over from still
    /// works on it (the engine resumes it once that server has stopped).
    fn handing_over(&self) -> bool {
        matches!(
            self,
            Found::Stored(record) if matches!(record.status, JobStatus::Queued | JobStatus::Running)
        )
    }
}

/// The job `{id}` if it belongs to the caller; 404 otherwise (including other keys' jobs).
fn find(app: &Jobs, req: &Req<'_>) -> Result<Found, ApiError> {
    let key = req.caller.as_ref().ok_or(ApiError::MissingApiKey)?;
    let id = req.param("id");
    let not_found = ApiError::NotFound("任务");
    if id.len() != JOB_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found);
    }
    if let Some(job) = app.engine.job(id) {
        return if job.owner == key.record.id {
            Ok(Found::Live(job))
        } else {
            Err(not_found)
        };
    }
    let record = app
        .store
        .read(|txn, dbs| record::get_job(txn, dbs, id))?
        .ok_or(ApiError::NotFound("任务"))?;
    if record.owner != key.record.id {
        return Err(not_found);
    }
    Ok(Found::Stored(record))
}

/// [`find`], and in cluster mode, when this node does not know the job yet (or has stored it but
/// its engine has not taken it yet), again once its copy has caught up with the cluster's jobs
/// (another node may have accepted it a moment ago).
pub(super) async fn find_anywhere(app: &Jobs, req: &Req<'_>) -> Result<Found, ApiError> {
    let Some(shared) = &app.shared else {
        return find(app, req);
    };
    match find(app, req) {
        // Not folded yet, or stored by the fold a moment before the engine takes it.
        Err(ApiError::NotFound(_)) => {}
        Ok(found) if found.handing_over() => {}
        found => return found,
    }
    shared.catch_up().await;
    find(app, req)
}

fn snapshot_of(found: &Found) -> JobSnapshot {
    match found {
        Found::Live(job) => job.snapshot(),
        Found::Stored(record) => JobSnapshot::from_record(record),
    }
}

#[derive(Serialize)]
struct Overview {
    job_id: String,
    status: JobStatus,
    totals: Totals,
    providers: BTreeMap<Provider, ProviderProgress>,
    unsupported: u32,
    stream_url: String,
    created_at: String,
    finished_at: Option<String>,
}

#[derive(Serialize)]
struct Totals {
    total: u32,
    done: u32,
    valid: u32,
    invalid: u32,
    locked: u32,
    unknown: u32,
}

fn overview(snapshot: &JobSnapshot) -> Overview {
    Overview {
        job_id: snapshot.id.clone(),
        status: snapshot.status,
        totals: Totals {
            total: snapshot.total,
            done: snapshot.counts.done,
            valid: snapshot.counts.valid,
            invalid: snapshot.counts.invalid,
            locked: snapshot.counts.locked,
            unknown: snapshot.counts.unknown,
        },
        providers: snapshot.providers.iter().copied().collect(),
        unsupported: snapshot.unsupported,
        stream_url: format!("/jobs/{}/events", snapshot.id),
        created_at: timefmt::rfc3339_ms(snapshot.created_at_ms),
        finished_at: snapshot.finished_at_ms.map(timefmt::rfc3339_ms),
    }
}

/// `GET /jobs/{id}`.
pub async fn get(app: &Jobs, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let found = find_anywhere(app, &req).await?;
    Ok(response::json(
        StatusCode::OK,
        &overview(&snapshot_of(&found)),
    ))
}

/// `DELETE /jobs/{id}`: pending items get a `cancelled` result, checks in flight finish, then the
/// stream ends with `done`. Cancelling a finished job changes nothing.
pub async fn cancel(app: &Jobs, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let found = find_anywhere(app, &req).await?;
    if found.handing_over() {
        return Err(ApiError::JobHandingOver);
    }
    if let Found::Live(job) = &found {
        match &app.shared {
            Some(shared) => shared.cancel(job).await.map_err(submit_error)?,
            None => app.engine.cancel(job).await,
        }
    }
    Ok(response::json(
        StatusCode::OK,
        &overview(&snapshot_of(&found)),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrgentBody {
    urls: Vec<String>,
}

/// `POST /jobs/{id}/urgent`.
pub async fn urgent(app: &Jobs, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let found = find_anywhere(app, &req).await?;
    if found.handing_over() {
        return Err(ApiError::JobHandingOver);
    }
    let limit = app.config.max_items;
    let body: UrgentBody = req.json()?;
    if body.urls.is_empty() || body.urls.len() > limit {
        return Err(ApiError::field("urls", format!("需要 1 到 {limit} 个链接")));
    }
    let keys: Vec<u64> = body
        .urls
        .iter()
        .map(|url| match providers::recognize(url, None) {
            Recognized::Share(share) => record::match_key(Some((share.provider, &share.id)), url),
            _ => record::match_key(None, url),
        })
        .collect();
    let counts = match (&found, &app.shared) {
        (Found::Live(job), Some(shared)) => shared.hurry(job, &keys).await.map_err(submit_error)?,
        (Found::Live(job), None) => app.engine.hurry(job, &keys),
        (Found::Stored(record), _) => app.engine.hurry_finished(record, &keys)?,
    };
    Ok(response::json(StatusCode::OK, &counts))
}

/// `GET /jobs/{id}/events`: every result after `Last-Event-ID` (or `?last_event_id=`), replayed
/// from storage, then live ones, then `done` with the job's overview.
pub async fn events(app: &Arc<Jobs>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let found = find_anywhere(app, &req).await?;
    let last = sse::last_event_id(
        req.parts.headers.get("last-event-id"),
        req.parts.uri.query(),
    )?;
    let key = req.caller.as_ref().ok_or(ApiError::MissingApiKey)?;
    let key_slot =
        app.key_streams
            .try_take(key.record.id.clone())
            .ok_or(ApiError::TooManyStreams {
                scope: "该密钥",
                limit: app.config.max_streams_per_key,
            })?;
    let conn_slot = req
        .connection
        .open_stream(app.config.max_streams_per_connection)
        .ok_or(ApiError::TooManyStreams {
            scope: "该连接",
            limit: app.config.max_streams_per_connection,
        })?;
    // One chunk may wait while the body writes the one before: a subscriber that does not read
    // holds at most about two chunks here (plus the connection's own write buffer), and
    // whatever it falls behind by is read from storage when it catches up.
    let (tx, body) = ChannelBody::new(STREAM_BUFFER_CHUNKS);
    let app = Arc::clone(app);
    tokio::spawn(async move {
        stream_events(app, found, last, tx).await;
        drop((key_slot, conn_slot));
    });
    let mut response = http::Response::new(crate::http::body::ResponseBody::Stream(Box::pin(body)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Bytes of events read from storage per read transaction while replaying.
const REPLAY_CHUNK_BYTES: usize = SSE_CHUNK_BYTES;

/// Chunks that may wait in a stream's channel for its body.
const STREAM_BUFFER_CHUNKS: usize = 1;

async fn stream_events(
    app: Arc<Jobs>,
    found: Found,
    mut last: u32,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    if tx
        .send(sse::retry(app.config.sse_retry.as_millis() as u64))
        .await
        .is_err()
    {
        return;
    }
    let handing_over = found.handing_over();
    let (job_id, live) = match &found {
        Found::Live(job) => (job.id.clone(), Some(Arc::clone(job))),
        Found::Stored(record) => (record.id.clone(), None),
    };
    // Subscribe before replaying so nothing published meanwhile is missed; duplicates are
    // skipped by event id.
    let mut rx = live.as_ref().map(|job| job.subscribe());
    if !replay(&app, &job_id, &mut last, &tx).await {
        return;
    }
    if let (Some(job), Some(rx)) = (&live, rx.as_mut()) {
        let mut keepalive = tokio::time::interval(app.config.sse_keepalive);
        keepalive.tick().await;
        loop {
            if job.is_finished() && rx.is_empty() {
                break;
            }
            tokio::select! {
                message = rx.recv() => {
                    // This message and whatever else is already waiting go out as one chunk.
                    let mut burst = LiveBurst::default();
                    let mut next = Some(message);
                    while let Some(message) = next.take() {
                        if !burst.take(message, last) {
                            break;
                        }
                        if burst.frames.len() < SSE_CHUNK_BYTES {
                            next = match rx.try_recv() {
                                Ok(message) => Some(Ok(message)),
                                Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                                Err(TryRecvError::Empty) => None,
                            };
                        }
                    }
                    if !burst.frames.is_empty() {
                        if tx.send(burst.frames.freeze()).await.is_err() {
                            return;
                        }
                        sse_events_counter().increment(burst.count);
                        last = burst.last.unwrap_or(last);
                    }
                    if burst.ended {
                        break;
                    }
                    if burst.lagged {
                        // Fell behind the live buffer: catch up from storage.
                        metrics::counter!("panlink_sse_lagged_total").increment(1);
                        if !replay(&app, &job_id, &mut last, &tx).await {
                            return;
                        }
                    }
                }
                _ = keepalive.tick() => {
                    if tx.send(Bytes::from_static(sse::KEEPALIVE)).await.is_err() {
                        return;
                    }
                }
                () = app.shutdown.cancelled() => {
                    // A clean end the client can tell from a broken connection: it resumes
                    // from `last_event_id` once the server is back.
                    let _ = tx.send(reconnect_frame(&app, "shutting_down", last)).await;
                    return;
                }
                () = tx.closed() => return,
            }
        }
    }
    if handing_over {
        // What is stored so far has been sent; the rest comes from this server once it has
        // resumed the job, so the client asks again after `retry_ms`.
        let _ = tx.send(reconnect_frame(&app, "handover", last)).await;
        return;
    }
    // The job has ended: anything not yet sent, then the summary.
    if !replay(&app, &job_id, &mut last, &tx).await {
        return;
    }
    let snapshot = match &live {
        Some(job) => job.snapshot(),
        None => match app
            .store
            .read(|txn, dbs| record::get_job(txn, dbs, &job_id))
        {
            Ok(Some(record)) => JobSnapshot::from_record(&record),
            _ => return,
        },
    };
    let summary = serde_json::to_vec(&overview(&snapshot)).expect("overviews serialize");
    let _ = tx.send(sse::frame(None, "done", &summary)).await;
}

/// `event: shutdown`: the stream ends before the job; the client reconnects after `retry_ms`
/// with `Last-Event-ID: last` and misses nothing. `reason` says why (`shutting_down`, `handover`).
fn reconnect_frame(app: &Jobs, reason: &str, last: u32) -> Bytes {
    let retry_ms = app.config.sse_retry.as_millis() as u64;
    let data = format!(r#"{{"reason":"{reason}","last_event_id":{last},"retry_ms":{retry_ms}}}"#);
    sse::frame(None, "shutdown", data.as_bytes())
}

/// Bytes of frames gathered into one chunk, live or replayed, before it is sent.
const SSE_CHUNK_BYTES: usize = 64 * 1024;

/// `panlink_sse_events_total`, registered once.
fn sse_events_counter() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("panlink_sse_events_total"))
}

/// Live messages gathered for one send.
#[derive(Default)]
struct LiveBurst {
    frames: BytesMut,
    count: u64,
    /// The id of the last frame in `frames`.
    last: Option<u32>,
    /// The job's stream has ended (done, or the channel closed).
    ended: bool,
    /// Messages were lost to the live buffer's bound: storage has them.
    lagged: bool,
}

impl LiveBurst {
    /// Takes one message (events at or before `last` were sent already); false once the burst
    /// must stop (end of stream, or lagging).
    fn take(&mut self, message: Result<Published, RecvError>, last: u32) -> bool {
        match message {
            Ok(Published::Event(id, json)) => {
                if id > self.last.unwrap_or(last) {
                    sse::append_frame(&mut self.frames, Some(id), "result", &json);
                    self.count += 1;
                    self.last = Some(id);
                }
                true
            }
            Ok(Published::Done) | Err(RecvError::Closed) => {
                self.ended = true;
                false
            }
            Err(RecvError::Lagged(_)) => {
                self.lagged = true;
                false
            }
        }
    }
}

/// Sends stored events after `last`; false when the client is gone.
async fn replay(
    app: &Jobs,
    job_id: &str,
    last: &mut u32,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> bool {
    loop {
        let chunk = match app
            .store
            .read(|txn, dbs| record::events_after(txn, dbs, job_id, *last, REPLAY_CHUNK_BYTES))
        {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::error!(job = job_id, error = %err, "cannot read events");
                return false;
            }
        };
        if chunk.is_empty() {
            return true;
        }
        let mut frames = BytesMut::new();
        let mut sent = *last;
        let mut count = 0;
        for (id, json) in chunk {
            sse::append_frame(&mut frames, Some(id), "result", &json);
            sent = id;
            count += 1;
            if frames.len() >= SSE_CHUNK_BYTES {
                if tx.send(frames.split().freeze()).await.is_err() {
                    return false;
                }
                sse_events_counter().increment(std::mem::take(&mut count));
                *last = sent;
            }
        }
        if !frames.is_empty() {
            if tx.send(frames.freeze()).await.is_err() {
                return false;
            }
            sse_events_counter().increment(count);
            *last = sent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_from_json_(value: Value) -> Result<ItemRecord, &'static str> {
        let limits = SubmissionLimits {
            max_items: 10,
            max_url_bytes: 100,
            max_meta_bytes: 64,
            over_limit_hint: "",
        };
        item_from_json(value, limits)
    }

    #[test]
    fn a_meta_over_its_bound_rejects_the_item() {
        let big = serde_json::json!({"url": "https://pan.quark.cn/s/abcd1234", "meta": {"pad": "x".repeat(60)}});
        assert_eq!(item_from_json_(big).unwrap_err(), "meta_too_large");
    }

    #[test]
    fn items_from_json() {
        let item = item_from_json_(serde_json::json!(
            "https://pan.quark.cn/s/abcd1234?pwd=ab12"
        ))
        .unwrap();
        assert_eq!(item.provider, Some(Provider::Quark));
        assert_eq!(item.passcode.as_deref(), Some("ab12"));
        let item = item_from_json_(serde_json::json!({"url": "https://pan.quark.cn/s/abcd1234", "passcode": "zz", "meta": {"row": 3}})).unwrap();
        assert_eq!(item.passcode.as_deref(), Some("zz"));
        assert_eq!(item.meta.unwrap().get(), r#"{"row":3}"#);
        let other = item_from_json_(serde_json::json!("https://example.com/x")).unwrap();
        assert_eq!(other.provider, None);
        assert_eq!(
            item_from_json_(serde_json::json!(5)).unwrap_err(),
            "not_a_url"
        );
        assert_eq!(
            item_from_json_(serde_json::json!("hello")).unwrap_err(),
            "not_a_url"
        );
        assert_eq!(
            item_from_json_(serde_json::json!({"meta": 1})).unwrap_err(),
            "missing_url"
        );
        assert_eq!(
            item_from_json_(serde_json::json!({"url": 1})).unwrap_err(),
            "url_not_a_string"
        );
    }
}
