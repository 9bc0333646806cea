//! Moving links in and out of panlink: the export of a key's links (CSV or JSON lines, read a
//! page at a time, so any number of links costs constant memory), and the import of CSV files,
//! panlink's own and the exports of Shlink, YOURLS and Kutt by their own column names, in
//! batches of [`BATCH_ROWS`] rows per commit. Each row is written whole or not at all; with an
//! idempotency key, a row that an earlier call committed is answered again and not made twice.
//!
//! The HTTP handlers (`GET /api/v1/links/export`, `POST /api/v1/links/import`) and the command
//! line (`panlink links export|import`) share it. It must not know HTTP beyond its handlers.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use heed::{RoTxn, RwTxn};
use http::HeaderValue;
use http::StatusCode;
use http::header::CONTENT_DISPOSITION;
use serde::Serialize;

use futures_util::StreamExt;

use super::LinkService;
use super::api::{self, Context};
use super::book::{self, LinkBuckets};
use super::record::{ClickTotals, DEFAULT_GROUP_ID, GroupRecord, LinkRecord, LinkStatus};
use super::repo::{self, InsertOutcome, NewLink};
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::monitors::watch::{Scheduled, WatchHandle};
use crate::store::keys::prefixed;
use crate::store::{Dbs, Store, StoreError};
use crate::timefmt;

/// Rows committed together.
pub const BATCH_ROWS: usize = 1000;
/// Links read per read transaction of an export.
const EXPORT_PAGE: usize = 500;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 128;
/// The separator of tags within one CSV cell (Shlink's too).
const TAG_SEPARATOR: char = '|';

/// The columns of the CSV export, in order (the JSON lines carry the same fields).
pub const EXPORT_COLUMNS: [&str; 11] = [
    "code",
    "domain",
    "url",
    "title",
    "tags",
    "group",
    "created_at",
    "expire_at",
    "max_clicks",
    "clicks",
    "status",
];

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" => Some(ExportFormat::JsonLines),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }

    /// What comes before the first link: for CSV a byte-order mark (Excel on Windows reads
    /// UTF-8 by it) and the header row.
    pub fn prologue(self) -> Vec<u8> {
        match self {
            ExportFormat::Csv => format!("\u{feff}{}\r\n", EXPORT_COLUMNS.join(",")).into_bytes(),
            ExportFormat::JsonLines => Vec::new(),
        }
    }
}

/// One exported link.
#[derive(Debug, Serialize)]
struct ExportRow<'a> {
    code: &'a str,
    domain: &'a str,
    url: &'a str,
    title: &'a str,
    tags: &'a [String],
    group: &'a str,
    created_at: String,
    expire_at: Option<String>,
    max_clicks: Option<u64>,
    clicks: u64,
    status: &'static str,
}

/// A spreadsheet reads a cell starting with `=`, `+`, `-` or `@` as a formula: such text gets a
/// leading apostrophe in CSV, which the import takes off again.
fn defuse(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn undo_defuse(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => text,
    }
}

/// What an export needs besides the links.
pub struct ExportContext<'a> {
    pub owner: &'a str,
    pub format: ExportFormat,
    /// The default domain's name, written for links on it.
    pub default_domain: Option<&'a str>,
    /// Clicks counted in memory and not yet stored, per link id.
    pub pending: &'a (dyn Fn(&str) -> ClickTotals + Sync),
}

/// The range of `owner`'s rows in `link_owner` after `cursor` (oldest first).
fn owner_range(owner: &str, cursor: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut end = owner.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let start = cursor.map_or_else(|| owner.as_bytes().to_vec(), <[u8]>::to_vec);
    (start, end)
}

/// Appends up to [`EXPORT_PAGE`] of the owner's links after `cursor` to `out`; answers the cursor
/// of the next page, `None` when none is left.
pub fn export_page(
    txn: &RoTxn,
    dbs: &Dbs,
    ctx: &ExportContext<'_>,
    groups: &HashMap<u64, String>,
    cursor: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, StoreError> {
    use std::ops::Bound;
    let (start, end) = owner_range(ctx.owner, cursor);
    let range = (
        if cursor.is_some() {
            Bound::Excluded(start.as_slice())
        } else {
            Bound::Included(start.as_slice())
        },
        Bound::Excluded(end.as_slice()),
    );
    let now = timefmt::now_ms();
    let mut last = None;
    let mut rows = 0;
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for entry in dbs.link_owner.range(txn, &range)? {
        let (key, _) = entry?;
        let code = key
            .get(ctx.owner.len() + 8..)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or(StoreError::Corrupt("link index"))?;
        if let Some(link) = repo::get(txn, dbs, code)? {
            let mut totals = repo::click_totals(txn, dbs, &link.code)?;
            totals.add(&(ctx.pending)(&link.code));
            let group = groups.get(&link.group_id).map_or("", String::as_str);
            write_row(ctx, &mut csv, out, &link, group, totals.human, now);
        }
        last = Some(key.to_vec());
        rows += 1;
        if rows == EXPORT_PAGE {
            break;
        }
    }
    // Writing into a Vec cannot fail; the writer keeps a buffer of its own until flushed.
    let _ = csv.flush();
    out.extend_from_slice(csv.get_ref());
    Ok(if rows == EXPORT_PAGE { last } else { None })
}

fn write_row(
    ctx: &ExportContext<'_>,
    csv: &mut csv::Writer<Vec<u8>>,
    json_out: &mut Vec<u8>,
    link: &LinkRecord,
    group: &str,
    clicks: u64,
    now: u64,
) {
    let mut status = link.status_at(now);
    if status == LinkStatus::Active && link.max_clicks.is_some_and(|max| clicks >= max) {
        status = LinkStatus::Expired;
    }
    let row = ExportRow {
        code: link.short_code(),
        domain: link.domain().or(ctx.default_domain).unwrap_or(""),
        url: &link.url,
        title: link.title.as_deref().unwrap_or(""),
        tags: &link.tags,
        group,
        created_at: timefmt::rfc3339_millis(link.created_at_ms),
        expire_at: link.expire_at_ms.map(timefmt::rfc3339_millis),
        max_clicks: link.max_clicks,
        clicks,
        status: status.as_str(),
    };
    match ctx.format {
        ExportFormat::JsonLines => {
            serde_json::to_writer(&mut *json_out, &row).expect("rows serialize");
            json_out.push(b'\n');
        }
        ExportFormat::Csv => {
            let tags: Vec<String> = row.tags.iter().map(|t| defuse(t).into_owned()).collect();
            let max_clicks = row.max_clicks.map(|n| n.to_string()).unwrap_or_default();
            let clicks = row.clicks.to_string();
            let record = [
                row.code,
                row.domain,
                row.url,
                &defuse(row.title),
                &tags.join(&TAG_SEPARATOR.to_string()),
                &defuse(row.group),
                &row.created_at,
                row.expire_at.as_deref().unwrap_or(""),
                &max_clicks,
                &clicks,
                row.status,
            ];
            // Writing into a Vec cannot fail.
            let _ = csv.write_record(record);
        }
    }
}

/// The owner's groups by id (the default group included).
pub fn group_names(
    txn: &RoTxn,
    dbs: &Dbs,
    owner: &str,
) -> Result<HashMap<u64, String>, StoreError> {
    Ok(repo::list_groups(txn, dbs, owner, 0)?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
}

/// `GET /api/v1/links/export?format=csv|jsonl`: every link of the key, oldest first, streamed.
pub fn export(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = api::key_of(&req)?;
    let format = match query_param(&req, "format").as_deref() {
        None => ExportFormat::Csv,
        Some(text) => ExportFormat::parse(text).ok_or(ApiError::InvalidParameter {
            name: "format",
            reason: "必须是 csv 或 jsonl".into(),
        })?,
    };
    let owner = key.record.id.clone();
    let groups = links.store.read(|txn, dbs| group_names(txn, dbs, &owner))?;
    let (tx, body) = crate::sse::ChannelBody::new(1);
    let store = Arc::clone(&links.store);
    let clicks = Arc::clone(&links.clicks);
    let default_domain = links.domains.default_name().map(str::to_owned);
    tokio::spawn(async move {
        if tx.send(Bytes::from(format.prologue())).await.is_err() {
            return;
        }
        let pending = |code: &str| clicks.pending(code).totals;
        let ctx = ExportContext {
            owner: &owner,
            format,
            default_domain: default_domain.as_deref(),
            pending: &pending,
        };
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let mut out = Vec::new();
            let page = store
                .read(|txn, dbs| export_page(txn, dbs, &ctx, &groups, cursor.as_deref(), &mut out));
            match page {
                Ok(next) => {
                    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                        return;
                    }
                    match next {
                        Some(next) => cursor = Some(next),
                        None => return,
                    }
                }
                Err(err) => {
                    // The file stays unfinished; its last row lacks its line end only by chance.
                    tracing::error!(owner = %owner, error = %err, "link export: cannot read links");
                    return;
                }
            }
        }
    });
    let mut response = response::streamed(
        format.content_type(),
        crate::http::body::ResponseBody::Stream(Box::pin(body)),
    );
    let headers = response.headers_mut();
    let name = match format {
        ExportFormat::Csv => "attachment; filename=\"panlink-links.csv\"",
        ExportFormat::JsonLines => "attachment; filename=\"panlink-links.jsonl\"",
    };
    headers.insert(CONTENT_DISPOSITION, HeaderValue::from_static(name));
    Ok(response)
}

fn query_param(req: &Req<'_>, name: &str) -> Option<String> {
    req.parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    })
}

/// Whose CSV a file is, told by its header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Panlink,
    Shlink,
    Yourls,
    Kutt,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Panlink => "panlink",
            Source::Shlink => "shlink",
            Source::Yourls => "yourls",
            Source::Kutt => "kutt",
        }
    }
}

/// Where each field is in a row (a column index), for one source's column names.
#[derive(Debug, Default)]
struct Columns {
    url: usize,
    alias: Option<usize>,
    title: Option<usize>,
    tags: Option<usize>,
    expire_at: Option<usize>,
    group: Option<usize>,
    domain: Option<usize>,
    max_clicks: Option<usize>,
    created_at: Option<usize>,
    status: Option<usize>,
}

/// The source and the columns of a header row (names compared without case or spaces).
fn columns_of(header: &csv::StringRecord) -> Result<(Source, Columns), String> {
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase()
                .replace([' ', '_'], "")
        })
        .collect();
    let at = |name: &str| names.iter().position(|n| n == name);
    let columns = |url, alias, title, tags, created_at| Columns {
        url,
        alias,
        title,
        tags,
        created_at,
        ..Columns::default()
    };
    // Shlink's web client: createdAt, domain, shortCode, shortUrl, longUrl, title, tags, visits.
    if let Some(url) = at("longurl") {
        return Ok((
            Source::Shlink,
            columns(
                url,
                at("shortcode"),
                at("title"),
                at("tags"),
                at("createdat"),
            ),
        ));
    }
    // YOURLS's table of links: keyword, url, title, timestamp, ip, clicks.
    if let (Some(url), Some(keyword)) = (at("url"), at("keyword")) {
        return Ok((
            Source::Yourls,
            columns(url, Some(keyword), at("title"), None, at("timestamp")),
        ));
    }
    // Kutt's links: address, target, description, expire_in, created_at, visit_count, ….
    if let Some(url) = at("target") {
        let mut found = columns(url, at("address"), at("description"), None, at("createdat"));
        found.expire_at = at("expirein");
        return Ok((Source::Kutt, found));
    }
    if let Some(url) = at("url") {
        let mut found = columns(
            url,
            at("alias").or_else(|| at("code")),
            at("title"),
            at("tags"),
            at("createdat"),
        );
        found.expire_at = at("expireat");
        found.group = at("group");
        found.domain = at("domain");
        found.max_clicks = at("maxclicks");
        found.status = at("status");
        return Ok((Source::Panlink, found));
    }
    Err(
        "表头必须含有 url 列（或 Shlink 的 longUrl、YOURLS 的 keyword 与 url、Kutt 的 target）"
            .into(),
    )
}

/// A time as the exports write it: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff][±hh[:mm]]` (SQL
/// dumps; without an offset, UTC).
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(ms) = timefmt::parse_rfc3339_ms(text) {
        return Some(ms);
    }
    let mut iso = text.replacen(' ', "T", 1);
    let has_offset = iso
        .get(19..)
        .is_some_and(|rest| rest.contains(['+', '-', 'Z']));
    if !has_offset {
        iso.push('Z');
    } else if let Some(pos) = iso.get(19..).and_then(|r| r.rfind(['+', '-'])) {
        // `+08` → `+08:00`
        let at = 19 + pos;
        if iso.len() == at + 3 {
            iso.push_str(":00");
        }
    }
    timefmt::parse_rfc3339_ms(&iso)
}

/// One data row of an import: its number (1 for the first row after the header) and what it
/// gives, or why it cannot be imported.
pub struct ImportRow {
    pub row: usize,
    pub link: Result<(NewLink, ImportExtras), ApiError>,
}

/// What a row carries beyond a create body.
#[derive(Debug, Clone, Default)]
pub struct ImportExtras {
    group: Option<String>,
    created_at_ms: Option<u64>,
    disabled: bool,
}

/// Reads `body` as CSV of one of the known sources and validates every row. Refuses the whole
/// file only when it cannot be read as one (no header, unknown columns, too many rows).
pub fn parse(
    body: &[u8],
    ctx: &Context<'_>,
    max_rows: usize,
) -> Result<(Source, Vec<ImportRow>), ApiError> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|err| ApiError::field("body", format!("不是 CSV：{err}")))?
        .clone();
    let (source, columns) = columns_of(&header).map_err(|why| ApiError::field("body", why))?;
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        if row > max_rows {
            return Err(ApiError::field(
                "body",
                format!("一次最多导入 {max_rows} 行，请分批提交"),
            ));
        }
        let link = match record {
            Ok(record) => row_link(&record, source, &columns, ctx, row),
            Err(err) => Err(ApiError::field(
                format!("rows[{row}]"),
                format!("CSV 格式错误：{err}"),
            )),
        };
        rows.push(ImportRow { row, link });
    }
    if rows.is_empty() {
        return Err(ApiError::field("body", "除表头外没有数据行"));
    }
    Ok((source, rows))
}

fn row_link(
    record: &csv::StringRecord,
    source: Source,
    columns: &Columns,
    ctx: &Context<'_>,
    row: usize,
) -> Result<(NewLink, ImportExtras), ApiError> {
    let cell = |at: Option<usize>| {
        at.and_then(|i| record.get(i))
            .map(|text| undo_defuse(text.trim()).to_owned())
            .filter(|text| !text.is_empty())
    };
    let prefix = format!("rows[{row}]");
    let name = |field: &str| format!("{prefix}.{field}");
    let url = cell(Some(columns.url)).ok_or_else(|| ApiError::field(name("url"), "不能为空"))?;
    let tags = cell(columns.tags)
        .map(|text| {
            text.split(TAG_SEPARATOR)
                .map(|t| undo_defuse(t.trim()).to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let max_clicks = cell(columns.max_clicks)
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| ApiError::field(name("max_clicks"), "必须是正整数"))
        })
        .transpose()?;
    // Only panlink's own file names a domain of this service; another service's is its own.
    let domain = match source {
        Source::Panlink => cell(columns.domain),
        _ => None,
    };
    let body = api::import_body(
        url,
        cell(columns.alias),
        cell(columns.title),
        tags,
        domain,
        max_clicks,
    );
    let mut validated = api::validate(body, ctx, &prefix)?;
    let time = |at: Option<usize>, field: &str| {
        cell(at)
            .map(|text| {
                parse_time(&text).ok_or_else(|| {
                    ApiError::field(
                        name(field),
                        "必须是时间，如 2024-12-31T23:59:59Z 或 2024-12-31 23:59:59",
                    )
                })
            })
            .transpose()
    };
    // A past expiry is kept: the link is imported as the expired link it was.
    validated.new.expire_at_ms = time(columns.expire_at, "expire_at")?;
    let extras = ImportExtras {
        group: cell(columns.group),
        created_at_ms: time(columns.created_at, "created_at")?,
        disabled: cell(columns.status).as_deref() == Some("disabled"),
    };
    Ok((validated.new, extras))
}

/// An import call's idempotency key: 1 to 128 visible ASCII characters.
pub fn idempotency_key(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > MAX_IDEMPOTENCY_KEY
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::InvalidParameter {
            name: "Idempotency-Key",
            reason: "须为 1 到 128 个可见 ASCII 字符".into(),
        });
    }
    Ok(text.to_owned())
}

/// `owner ++ 0x00 ++ key ++ 0x00 ++ row (u32 BE)`: a row an import with `key` committed.
fn import_key(owner: &str, key: &str, row: usize) -> Vec<u8> {
    let mut out = prefixed(owner);
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out.extend_from_slice(&u32::try_from(row).unwrap_or(u32::MAX).to_be_bytes());
    out
}

/// A valid row: its number, its link and what comes with it.
pub type ValidRow = (usize, NewLink, ImportExtras);
/// Rows by number, with their outcomes.
pub type Outcomes = Vec<(usize, RowOutcome)>;

/// The outcome of one row.
#[derive(Debug)]
pub enum RowOutcome {
    /// Made now, or by an earlier call with the same idempotency key (`again`).
    Created {
        code: String,
        again: bool,
    },
    Failed(ApiError),
}

/// The group of `name` for `owner`: found by name, else made.
fn group_id(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    name: &str,
    known: &mut HashMap<String, u64>,
    now_ms: u64,
) -> Result<u64, StoreError> {
    if let Some(id) = known.get(name) {
        return Ok(*id);
    }
    let id = match group_of_name(txn, dbs, owner, name, now_ms)? {
        Some(id) => id,
        None => repo::create_group(txn, dbs, owner, name.to_owned(), now_ms)?.id,
    };
    known.insert(name.to_owned(), id);
    Ok(id)
}

/// The id of `owner`'s group named `name`, if there is one (the default group by its name).
fn group_of_name(
    txn: &RoTxn,
    dbs: &Dbs,
    owner: &str,
    name: &str,
    now_ms: u64,
) -> Result<Option<u64>, StoreError> {
    let existing = repo::list_groups(txn, dbs, owner, now_ms)?
        .into_iter()
        .find(|g: &GroupRecord| g.name == name)
        .map(|g| g.id);
    Ok(existing.or((name == super::record::DEFAULT_GROUP_NAME).then_some(DEFAULT_GROUP_ID)))
}

/// What one batch commit needs.
pub struct Batch<'a> {
    pub owner: &'a str,
    pub idempotency: Option<&'a str>,
    pub code_len: usize,
    pub watch: &'a WatchHandle,
}

/// Writes the valid rows of one batch in the caller's write: each row's link, its group, its
/// watched target and its idempotency record together.
pub fn commit_batch(
    txn: &mut RwTxn,
    dbs: &Dbs,
    batch: &Batch<'_>,
    rows: Vec<ValidRow>,
    groups: &mut HashMap<String, u64>,
) -> Result<(Outcomes, Vec<Scheduled>), StoreError> {
    let now = timefmt::now_ms();
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut scheduled = Vec::new();
    for (row, mut new, extras) in rows {
        if let Some(key) = batch.idempotency
            && let Some(value) = dbs
                .link_imports
                .get(txn, &import_key(batch.owner, key, row))?
        {
            let code = String::from_utf8_lossy(value.get(8..).unwrap_or_default()).into_owned();
            outcomes.push((row, RowOutcome::Created { code, again: true }));
            continue;
        }
        if let Some(name) = &extras.group {
            new.group_id = Some(group_id(txn, dbs, batch.owner, name, groups, now)?);
        }
        let created_at = extras.created_at_ms.unwrap_or(now);
        let outcome = repo::insert(txn, dbs, batch.owner, new, batch.code_len, created_at)?;
        let link = match outcome {
            InsertOutcome::Created(link) => link,
            InsertOutcome::AliasTaken => {
                outcomes.push((row, RowOutcome::Failed(ApiError::AliasTaken)));
                continue;
            }
            InsertOutcome::GroupNotFound => {
                outcomes.push((
                    row,
                    RowOutcome::Failed(ApiError::field(format!("rows[{row}].group"), "分组不存在")),
                ));
                continue;
            }
        };
        if extras.disabled {
            let patch = repo::LinkPatch {
                disabled: Some(true),
                ..repo::LinkPatch::default()
            };
            repo::update(txn, dbs, batch.owner, &link.code, patch, now)?;
        }
        scheduled.extend(super::watch::watch(batch.watch, txn, dbs, &link, now)?);
        if let Some(key) = batch.idempotency {
            let mut value = now.to_be_bytes().to_vec();
            value.extend_from_slice(link.code.as_bytes());
            dbs.link_imports
                .put(txn, &import_key(batch.owner, key, row), &value)?;
        }
        outcomes.push((
            row,
            RowOutcome::Created {
                code: link.code.clone(),
                again: false,
            },
        ));
    }
    Ok((outcomes, scheduled))
}

/// Forgets idempotency records older than `cutoff_ms`, at most `max` of them (the rest next
/// time); answers how many went.
pub fn purge_idempotency(
    txn: &mut RwTxn,
    dbs: &Dbs,
    cutoff_ms: u64,
    max: usize,
) -> Result<usize, StoreError> {
    let mut old = Vec::new();
    for entry in dbs.link_imports.iter(txn)? {
        let (key, value) = entry?;
        let at = value
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        if at < cutoff_ms {
            old.push(key.to_vec());
            if old.len() == max {
                break;
            }
        }
    }
    for key in &old {
        dbs.link_imports.delete(txn, key)?;
    }
    Ok(old.len())
}

/// Single-node mode: commits the `batches` of valid rows, one write each.
async fn import_here(
    links: &LinkService,
    owner: &str,
    idempotency: Option<&str>,
    batches: Vec<Vec<ValidRow>>,
) -> Result<Outcomes, ApiError> {
    let mut outcomes = Vec::new();
    let mut groups = HashMap::new();
    for rows in batches {
        let owner = owner.to_owned();
        let idempotency = idempotency.map(str::to_owned);
        let code_len = links.config.code_length;
        let watch = links.targets.clone();
        let known = std::mem::take(&mut groups);
        let (done, scheduled, known) = links
            .store
            .write(move |txn, dbs| {
                let mut known = known;
                let batch = Batch {
                    owner: &owner,
                    idempotency: idempotency.as_deref(),
                    code_len,
                    watch: &watch,
                };
                let (done, scheduled) = commit_batch(txn, dbs, &batch, rows, &mut known)?;
                Ok((done, scheduled, known))
            })
            .await?;
        groups = known;
        links.targets.schedule(scheduled);
        for (_, outcome) in &done {
            if let RowOutcome::Created { code, .. } = outcome {
                links.cache.invalidate(code);
            }
        }
        outcomes.extend(done);
    }
    Ok(outcomes)
}

/// Rows of one import created at once in cluster mode.
const ROWS_IN_FLIGHT: usize = 64;

/// Cluster mode: creates the valid `rows` through the cluster's buckets, [`ROWS_IN_FLIGHT`] at a
/// time, each on its own (a row the cluster did not accept fails alone). With an idempotency
/// key each row first claims its link id in the imports bucket, so the same call repeated on
/// any node answers the links the first one made, and makes those it did not get to.
async fn import_in_cluster(
    links: &LinkService,
    buckets: &LinkBuckets,
    owner: &str,
    idempotency: Option<&str>,
    rows: Vec<ValidRow>,
) -> Result<Outcomes, ApiError> {
    // Groups by name first, one at a time: the rows of a new group share the one group made.
    let mut groups: HashMap<String, u64> = HashMap::new();
    for (_, _, extras) in &rows {
        if let Some(name) = &extras.group
            && !groups.contains_key(name)
        {
            let id = group_named(links, owner, name).await?;
            groups.insert(name.clone(), id);
        }
    }
    let now = timefmt::now_ms();
    let code_len = links.config.code_length;
    let groups = &groups;
    let outcomes = futures_util::stream::iter(rows)
        .map(|(row, new, extras)| async move {
            let group = extras.group.as_ref().and_then(|name| groups.get(name));
            let domain = new.domain.clone();
            let created_at = extras.created_at_ms.unwrap_or(now);
            let mut record = repo::new_record(
                owner,
                new,
                group.copied().unwrap_or(DEFAULT_GROUP_ID),
                created_at,
            );
            record.disabled = extras.disabled;
            let domain = domain.as_deref();
            let made = match idempotency {
                None => book::insert_record(links, &buckets.links, record, domain, code_len)
                    .await
                    .map(|outcome| row_outcome(outcome, false)),
                Some(key) => {
                    let claim = claim_key(owner, key, row);
                    import_row_once(links, buckets, &claim, record, domain, code_len).await
                }
            };
            (row, made.unwrap_or_else(RowOutcome::Failed))
        })
        .buffer_unordered(ROWS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    Ok(outcomes)
}

/// `owner`'s group named `name`: found in this node's copy, else made in the cluster.
async fn group_named(links: &LinkService, owner: &str, name: &str) -> Result<u64, ApiError> {
    let now = timefmt::now_ms();
    let found = links
        .store
        .read(|txn, dbs| group_of_name(txn, dbs, owner, name, now))?;
    match found {
        Some(id) => Ok(id),
        None => Ok(book::create_group(links, owner, name.to_owned()).await?.id),
    }
}

/// The imports bucket's key of `row` of `owner`'s import under idempotency `key` (hex, which
/// keeps any visible ASCII within the characters a bucket key may have).
fn claim_key(owner: &str, key: &str, row: usize) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{owner}.{hex}.{row}")
}

fn row_outcome(outcome: InsertOutcome, again: bool) -> RowOutcome {
    match outcome {
        InsertOutcome::Created(link) => RowOutcome::Created {
            code: link.code,
            again,
        },
        InsertOutcome::AliasTaken => RowOutcome::Failed(ApiError::AliasTaken),
        InsertOutcome::GroupNotFound => RowOutcome::Failed(ApiError::field("group", "分组不存在")),
    }
}

/// Cluster mode: one row of an import with an idempotency key. The row's claim names its link
/// id: a claim found is an earlier or concurrent call's (its link answered `again`, or made now
/// if that call stopped before making it); else the row claims an id (its alias, or a random
/// code) and makes the link there. A claimed id that turns out to be another link's is let go:
/// an alias is taken, a random code is drawn again.
async fn import_row_once(
    links: &LinkService,
    buckets: &LinkBuckets,
    claim: &str,
    record: LinkRecord,
    domain: Option<&str>,
    code_len: usize,
) -> Result<RowOutcome, ApiError> {
    use crate::cluster::bucket::{MAX_ATTEMPTS, WriteError};
    let mut random = repo::code_candidates(code_len);
    for _ in 0..MAX_ATTEMPTS {
        let (code, revision) = match buckets.imports.entry(claim).await? {
            Some((value, revision)) => (String::from_utf8_lossy(&value).into_owned(), revision),
            None => {
                let code = if record.custom {
                    super::domains::link_id(domain, &record.code).into_owned()
                } else {
                    let code = random.next().ok_or(ApiError::Internal)?;
                    super::domains::link_id(domain, &code).into_owned()
                };
                match buckets
                    .imports
                    .create(claim, code.clone().into_bytes())
                    .await
                {
                    Ok(revision) => (code, revision),
                    // Another call claimed the row meanwhile: read its claim.
                    Err(WriteError::Exists) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if let Some(outcome) = link_of_claim(links, buckets, &record, code).await? {
            return Ok(outcome);
        }
        // The id is another link's.
        let _ = buckets.imports.delete(claim, revision).await;
        if record.custom {
            return Ok(RowOutcome::Failed(ApiError::AliasTaken));
        }
    }
    Err(WriteError::Contended.into())
}

/// The row's link at the claimed id `code`: found (made by an earlier or a concurrent call of
/// the same row), or made now; `None` when the id is another link's.
async fn link_of_claim(
    links: &LinkService,
    buckets: &LinkBuckets,
    record: &LinkRecord,
    code: String,
) -> Result<Option<RowOutcome>, ApiError> {
    let is_the_rows = |link: &LinkRecord| link.owner == record.owner && link.url == record.url;
    if let Some((link, _)) = book::read(&buckets.links, &code).await? {
        return Ok(is_the_rows(&link).then_some(RowOutcome::Created { code, again: true }));
    }
    let mut made = record.clone();
    made.code = code.clone();
    match book::put_at(links, &buckets.links, made).await? {
        InsertOutcome::AliasTaken => {}
        outcome => return Ok(Some(row_outcome(outcome, false))),
    }
    // Made between the read and the create: by a concurrent call of the row, or by another.
    Ok(book::read(&buckets.links, &code)
        .await?
        .filter(|(link, _)| is_the_rows(link))
        .map(|_| RowOutcome::Created { code, again: true }))
}

/// Every row of an import, in order, with its outcome.
pub struct ImportReport {
    pub source: Source,
    pub outcomes: Outcomes,
}

impl ImportReport {
    pub fn created(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, RowOutcome::Created { .. }))
            .count()
    }
}

/// Splits parsed rows into the valid ones, in batches of [`BATCH_ROWS`], and the failed ones.
pub fn batches(rows: Vec<ImportRow>) -> (Vec<Vec<ValidRow>>, Outcomes) {
    let mut failed = Vec::new();
    let mut batches: Vec<Vec<ValidRow>> = Vec::new();
    for ImportRow { row, link } in rows {
        match link {
            Ok((new, extras)) => {
                if batches.last().is_none_or(|b| b.len() == BATCH_ROWS) {
                    batches.push(Vec::with_capacity(BATCH_ROWS));
                }
                batches
                    .last_mut()
                    .expect("a batch was just pushed")
                    .push((row, new, extras));
            }
            Err(err) => failed.push((row, RowOutcome::Failed(err))),
        }
    }
    (batches, failed)
}

/// `POST /api/v1/links/import`: a CSV body; `Idempotency-Key` makes a retried call safe.
pub async fn import(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = api::key_of(&req)?;
    let request_id = req.request_id;
    let idempotency = req
        .parts
        .headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidParameter {
                    name: "Idempotency-Key",
                    reason: "须为可见 ASCII 字符".into(),
                })
                .and_then(idempotency_key)
        })
        .transpose()?;
    let ctx = Context::of(links, req.parts, &key);
    // Up to 100 000 rows to read and validate: off the async worker, which other requests share.
    let (source, rows) =
        tokio::task::block_in_place(|| parse(&req.body, &ctx, links.config.import_max_rows))?;
    let (batches, mut outcomes) = batches(rows);
    let owner = key.record.id.clone();
    let idempotency = idempotency.as_deref();
    let done = match &links.cluster {
        Some(buckets) => {
            let rows = batches.into_iter().flatten().collect();
            import_in_cluster(links, buckets, &owner, idempotency, rows).await?
        }
        None => import_here(links, &owner, idempotency, batches).await?,
    };
    outcomes.extend(done);
    outcomes.sort_by_key(|(row, _)| *row);
    let report = ImportReport { source, outcomes };
    metrics::counter!("panlink_links_created_total", "via" => "import")
        .increment(report.created() as u64);
    Ok(response::envelope(
        StatusCode::OK,
        &report_view(&report),
        request_id,
    ))
}

#[derive(Serialize)]
struct ReportView<'a> {
    source: &'static str,
    total: usize,
    created: usize,
    failed: usize,
    rows: Vec<RowView<'a>>,
}

#[derive(Serialize)]
struct RowView<'a> {
    row: usize,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    again: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<api::BatchError>,
}

fn report_view(report: &ImportReport) -> ReportView<'_> {
    let created = report.created();
    ReportView {
        source: report.source.as_str(),
        total: report.outcomes.len(),
        created,
        failed: report.outcomes.len() - created,
        rows: report
            .outcomes
            .iter()
            .map(|(row, outcome)| match outcome {
                RowOutcome::Created { code, again } => RowView {
                    row: *row,
                    ok: true,
                    code: Some(code),
                    again: *again,
                    error: None,
                },
                RowOutcome::Failed(err) => RowView {
                    row: *row,
                    ok: false,
                    code: None,
                    again: false,
                    error: Some(api::batch_error(err)),
                },
            })
            .collect(),
    }
}

/// The report as JSON, for the command line.
pub fn report_json(report: &ImportReport) -> String {
    serde_json::to_string(&report_view(report)).expect("reports serialize")
}

/// Removes expired idempotency records (the purge tick).
pub async fn purge(store: &Store) {
    let kept = super::book::IMPORT_KEYS_KEPT.as_millis() as u64;
    let cutoff = timefmt::now_ms().saturating_sub(kept);
    let result = store
        .write(move |txn, dbs| purge_idempotency(txn, dbs, cutoff, 10_000))
        .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not purge old import idempotency records");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_by_their_headers() {
        let header = |cols: &[&str]| csv::StringRecord::from(cols.to_vec());
        let (source, cols) = columns_of(&header(&[
            "createdAt",
            "domain",
            "shortCode",
            "shortUrl",
            "longUrl",
            "title",
            "tags",
            "visits",
        ]))
        .unwrap();
        assert_eq!(source, Source::Shlink);
        assert_eq!((cols.url, cols.alias, cols.tags), (4, Some(2), Some(6)));
        let (source, cols) = columns_of(&header(&[
            "keyword",
            "url",
            "title",
            "timestamp",
            "ip",
            "clicks",
        ]))
        .unwrap();
        assert_eq!(source, Source::Yourls);
        assert_eq!(
            (cols.url, cols.alias, cols.created_at),
            (1, Some(0), Some(3))
        );
        let (source, cols) = columns_of(&header(&[
            "address",
            "target",
            "description",
            "expire_in",
            "visit_count",
            "created_at",
        ]))
        .unwrap();
        assert_eq!(source, Source::Kutt);
        assert_eq!(
            (cols.url, cols.title, cols.expire_at),
            (1, Some(2), Some(3))
        );
        let (source, cols) = columns_of(&header(&["\u{feff}URL", "Alias", "Expire At"])).unwrap();
        assert_eq!(source, Source::Panlink);
        assert_eq!(
            (cols.url, cols.alias, cols.expire_at),
            (0, Some(1), Some(2))
        );
        assert!(columns_of(&header(&["link", "name"])).is_err());
    }

    #[test]
    fn times_of_every_export() {
        let at = timefmt::parse_rfc3339_ms("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_time("2024-01-02T03:04:05Z"), Some(at));
        assert_eq!(parse_time("2024-01-02 03:04:05"), Some(at));
        assert_eq!(parse_time("2024-01-02T11:04:05+08:00"), Some(at));
        assert_eq!(parse_time("2024-01-02 11:04:05+08"), Some(at));
        assert_eq!(parse_time("2024-01-02 03:04:05.000+00"), Some(at));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn formulas_are_defused_and_restored() {
        assert_eq!(defuse("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(undo_defuse("'=SUM(A1)"), "=SUM(A1)");
        assert_eq!(undo_defuse("'quoted"), "'quoted");
        assert_eq!(defuse("plain"), "plain");
    }
}
