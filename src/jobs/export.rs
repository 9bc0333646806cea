//! `GET /jobs/{id}/results`: a job's results as one JSON array (`format=json`, the default), JSON
//! lines (`jsonl`) or CSV (`csv`), in the order they were recorded, optionally only some states
//! (`state=invalid,locked`) and only after an event id (`after=N`, for paging). Streamed from
//! storage a page at a time: a job of 100 000 results is exported in constant memory.
//!
//! JSON outputs carry each stored result as SSE sends it, with its `event_id` in front. CSV is
//! UTF-8 with a byte-order mark (Excel on Windows opens it right), a header row and RFC 4180
//! quoting; a share name that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) gets a
//! leading apostrophe.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;
use http::header::CONTENT_DISPOSITION;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::Jobs;
use super::api::Found;
use super::record;
use crate::error::ApiError;
use crate::http::response::HttpResponse;
use crate::keys::KeyReq as Req;
use crate::sse::ChannelBody;

/// Bytes of stored results read per read transaction.
const PAGE_BYTES: usize = 256 * 1024;

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "item_id",
    "url",
    "provider",
    "state",
    "valid",
    "reason",
    "share_name",
    "file_count",
    "expiration_label",
    "checked_at",
    "meta",
];

/// The CSV's first line: a byte-order mark (Excel on Windows reads UTF-8 by it), then the columns.
static CSV_HEADER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("\u{feff}{}\r\n", CSV_COLUMNS.join(",")));

/// The three output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    JsonLines,
    Csv,
}

impl Format {
    fn parse(text: Option<&str>) -> Result<Format, ApiError> {
        match text.unwrap_or("json") {
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            _ => Err(ApiError::InvalidParameter {
                name: "format",
                reason: "必须是 json、jsonl 或 csv".into(),
            }),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::JsonLines => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first result.
    fn prologue(self) -> &'static [u8] {
        match self {
            Format::Json => b"[",
            Format::JsonLines => b"",
            Format::Csv => CSV_HEADER.as_bytes(),
        }
    }

    /// What comes after the last result.
    fn epilogue(self) -> &'static [u8] {
        match self {
            Format::Json => b"]\n",
            Format::JsonLines | Format::Csv => b"",
        }
    }
}

/// Which states to export (all when empty).
#[derive(Debug, Clone, Default)]
struct States(Vec<String>);

impl States {
    fn parse(text: Option<&str>) -> Result<States, ApiError> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(States::default());
        };
        let mut states = Vec::new();
        for state in text.split(',').map(str::trim) {
            if !matches!(state, "valid" | "invalid" | "locked" | "unknown") {
                return Err(ApiError::InvalidParameter {
                    name: "state",
                    reason: "只能是 valid、invalid、locked、unknown（可用逗号分隔多个）".into(),
                });
            }
            states.push(state.to_owned());
        }
        Ok(States(states))
    }

    fn accepts(&self, state: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s == state)
    }
}

/// A stored result, as far as the export reads it.
#[derive(Deserialize)]
struct Stored<'a> {
    item_id: u32,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    valid: bool,
    #[serde(borrow)]
    reason: Cow<'a, str>,
    #[serde(borrow)]
    share_name: Option<Cow<'a, str>>,
    file_count: Option<u64>,
    #[serde(borrow)]
    expiration_label: Option<Cow<'a, str>>,
    #[serde(borrow)]
    checked_at: Cow<'a, str>,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
}

/// `GET /jobs/{id}/results`.
pub async fn results(app: &Arc<Jobs>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let found = super::api::find_anywhere(app, &req).await?;
    let query = req.parts.uri.query();
    let param = |name: &str| {
        query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        })
    };
    let format = Format::parse(param("format").as_deref())?;
    let states = States::parse(param("state").as_deref())?;
    let after = match param("after") {
        None => 0,
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| ApiError::InvalidParameter {
                name: "after",
                reason: "必须是事件 id（非负整数）".into(),
            })?,
    };
    let job_id = match &found {
        Found::Live(job) => job.id.clone(),
        Found::Stored(record) => record.id.clone(),
    };
    let (tx, body) = ChannelBody::new(1);
    let store = Arc::clone(&app.store);
    let id = job_id.clone();
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(format.prologue()))
            .await
            .is_err()
        {
            return;
        }
        let mut last = after;
        let mut first = true;
        loop {
            let page = match store
                .read(|txn, dbs| record::events_after(txn, dbs, &id, last, PAGE_BYTES))
            {
                Ok(page) => page,
                Err(err) => {
                    // The document stays unfinished, which its reader notices (JSON does not
                    // parse; the last CSV row is missing its line end only by chance).
                    tracing::error!(job = %id, error = %err, "export: cannot read results");
                    return;
                }
            };
            if page.is_empty() {
                break;
            }
            let mut out = BytesMut::new();
            for (event_id, json) in page {
                last = event_id;
                append(&mut out, format, &states, event_id, &json, &mut first);
            }
            if !out.is_empty() && tx.send(out.freeze()).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from_static(format.epilogue())).await;
    });
    let mut response = crate::http::response::streamed(
        format.content_type(),
        crate::http::body::ResponseBody::Stream(Box::pin(body)),
    );
    let headers = response.headers_mut();
    if format == Format::Csv {
        let disposition = format!("attachment; filename=\"panlink-{job_id}.csv\"");
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

/// Every result of `events` (event id, stored JSON) in `format`, whole: the export's own shape,
/// for the command line's `panlink check`.
pub fn render(format: Format, events: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_slice(format.prologue());
    let mut first = true;
    for (event_id, json) in events {
        append(
            &mut out,
            format,
            &States::default(),
            *event_id,
            json,
            &mut first,
        );
    }
    out.put_slice(format.epilogue());
    out.to_vec()
}

/// Appends one stored result in `format`, unless its state is filtered out.
fn append(
    out: &mut BytesMut,
    format: Format,
    states: &States,
    event_id: u32,
    json: &[u8],
    first: &mut bool,
) {
    let Ok(stored) = serde_json::from_slice::<Stored<'_>>(json) else {
        tracing::warn!(
            event_id,
            "export: skipping a stored result that does not parse"
        );
        return;
    };
    if !states.accepts(&stored.state) {
        return;
    }
    match format {
        Format::Json | Format::JsonLines => {
            if format == Format::Json && !std::mem::take(first) {
                out.put_u8(b',');
            }
            *first = false;
            // `{"event_id":N,` then the stored object without its opening brace.
            out.put_slice(format!("{{\"event_id\":{event_id},").as_bytes());
            out.put_slice(json.get(1..).unwrap_or_default());
            if format == Format::JsonLines {
                out.put_u8(b'\n');
            }
        }
        Format::Csv => csv_row(out, &stored),
    }
}

/// One CSV record (RFC 4180), ending in CRLF.
fn csv_row(out: &mut BytesMut, row: &Stored<'_>) {
    let share_name = row.share_name.as_deref().map(defuse_formula);
    let fields: [Cow<'_, str>; 11] = [
        row.item_id.to_string().into(),
        Cow::Borrowed(&*row.url),
        Cow::Borrowed(row.provider.as_deref().unwrap_or("")),
        Cow::Borrowed(&*row.state),
        Cow::Borrowed(if row.valid { "true" } else { "false" }),
        Cow::Borrowed(&*row.reason),
        share_name.unwrap_or(Cow::Borrowed("")),
        row.file_count
            .map(|n| n.to_string())
            .unwrap_or_default()
            .into(),
        Cow::Borrowed(row.expiration_label.as_deref().unwrap_or("")),
        Cow::Borrowed(&*row.checked_at),
        Cow::Borrowed(row.meta.map(RawValue::get).unwrap_or("")),
    ];
    for (n, field) in fields.iter().enumerate() {
        if n > 0 {
            out.put_u8(b',');
        }
        csv_field(out, field);
    }
    out.put_slice(b"\r\n");
}

/// A field, quoted when it holds a comma, a quote or a line break (quotes doubled).
fn csv_field(out: &mut BytesMut, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.put_u8(b'"');
        out.put_slice(field.replace('"', "\"\"").as_bytes());
        out.put_u8(b'"');
    } else {
        out.put_slice(field.as_bytes());
    }
}

/// A text a spreadsheet would run as a formula, made inert with a leading apostrophe.
fn defuse_formula(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"item_id":3,"url":"https://pan.quark.cn/s/ok1","provider":"quark","valid":true,"state":"valid","reason":"all_checks_passed","share_name":"=HYPERLINK(\"x\"), \"报告\"","expiration_label":"永久有效","expires_at":null,"file_count":3,"provider_code":null,"elapsed_seconds":0.1,"priority_used":"normal","attempts":1,"cached":false,"checked_at":"2026-12-02T08:00:00.000Z","meta":{"row":1,"note":"a,b"}}"#;

    fn render(format: Format, states: &States) -> String {
        let mut out = BytesMut::new();
        let mut first = true;
        append(&mut out, format, states, 9, EVENT.as_bytes(), &mut first);
        append(&mut out, format, states, 10, EVENT.as_bytes(), &mut first);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn csv_rows_quote_and_defuse() {
        let text = render(Format::Csv, &States::default());
        let row = text.lines().next().unwrap();
        assert_eq!(
            row,
            r#"3,https://pan.quark.cn/s/ok1,quark,valid,true,all_checks_passed,"'=HYPERLINK(""x""), ""报告""",3,永久有效,2026-12-02T08:00:00.000Z,"{""row"":1,""note"":""a,b""}""#
        );
        assert_eq!(text.matches("\r\n").count(), 2);
        assert!(
            Format::Csv
                .prologue()
                .starts_with("\u{feff}item_id,url".as_bytes())
        );
        assert_eq!(
            std::str::from_utf8(Format::Csv.prologue())
                .unwrap()
                .trim_start_matches('\u{feff}')
                .trim_end(),
            CSV_COLUMNS.join(",")
        );
    }

    #[test]
    fn json_outputs_carry_the_event_id() {
        let json = format!("[{}]", render(Format::Json, &States::default()));
        let values: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values[0]["event_id"], 9);
        assert_eq!(values[1]["item_id"], 3);
        let lines = render(Format::JsonLines, &States::default());
        assert_eq!(lines.lines().count(), 2);
        for line in lines.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn states_filter_and_are_checked() {
        let only_invalid = States::parse(Some("invalid,locked")).unwrap();
        assert_eq!(render(Format::JsonLines, &only_invalid), "");
        assert!(States::parse(Some("dead")).is_err());
        assert!(Format::parse(Some("xml")).is_err());
        assert_eq!(Format::parse(None).unwrap(), Format::Json);
    }
}
