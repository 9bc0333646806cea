//! Click statistics: one link's (`GET /api/v1/links/{code}/stats`: totals, days, top referrers,
//! and its clicks by dimension and day, as JSON or CSV) and a key's (`GET /api/v1/stats`: totals
//! and the most clicked links of a date range). Days are those of `links.stats_timezone`; what
//! is still in memory is added to what storage holds, so a click shows at once.

use std::collections::BTreeMap;

use http::StatusCode;
use http::header::CONTENT_DISPOSITION;
use serde::Serialize;

use super::LinkService;
use super::analytics::{Dim, StatsClock};
use super::api::{self, key_of};
use super::record::ClickTotals;
use super::repo;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::timefmt;

/// Days shown when the request names none.
const DEFAULT_DAYS: u32 = 30;
/// Longest range a request may ask for.
const MAX_DAYS: u32 = 366;
/// Referrer hosts shown.
const TOP_REFERRERS: usize = 10;
/// Links in a key's top list.
const TOP_LINKS: usize = 20;

/// The query of a stats request: the days, the dimensions, the format.
struct Query {
    from: u32,
    to: u32,
    dims: Vec<Dim>,
    csv: bool,
}

fn query(req: &Req<'_>, today: u32) -> Result<Query, ApiError> {
    let param = |name: &str| {
        req.parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        })
    };
    let date = |name: &'static str| -> Result<Option<u32>, ApiError> {
        param(name)
            .filter(|t| !t.is_empty())
            .map(|text| {
                StatsClock::day_of_date(&text).ok_or(ApiError::InvalidParameter {
                    name,
                    reason: "必须是日期，如 2026-12-03".into(),
                })
            })
            .transpose()
    };
    let to = date("to")?.unwrap_or(today);
    let from = date("from")?.unwrap_or(to.saturating_sub(DEFAULT_DAYS - 1));
    if from > to {
        return Err(ApiError::InvalidParameter {
            name: "from",
            reason: "不能晚于 to".into(),
        });
    }
    if to - from >= MAX_DAYS {
        return Err(ApiError::InvalidParameter {
            name: "to",
            reason: format!("一次最多 {MAX_DAYS} 天").into(),
        });
    }
    let dims = match param("dims").filter(|t| !t.is_empty()) {
        None => Dim::ALL.to_vec(),
        Some(text) => text
            .split(',')
            .map(|name| {
                Dim::parse(name).ok_or_else(|| ApiError::InvalidParameter {
                    name: "dims",
                    reason: format!(
                        "不认识 {:?}，可选：{}",
                        name.trim(),
                        Dim::ALL.map(Dim::as_str).join(", ")
                    )
                    .into(),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let csv = match param("format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter {
                name: "format",
                reason: "必须是 json 或 csv".into(),
            });
        }
    };
    Ok(Query {
        from,
        to,
        dims,
        csv,
    })
}

#[derive(Serialize)]
struct DayView {
    date: String,
    human: u64,
    bot: u64,
    head: u64,
}

#[derive(Serialize)]
struct ValueView {
    value: String,
    clicks: u64,
}

#[derive(Serialize)]
struct DayValueView {
    date: String,
    dimension: &'static str,
    value: String,
    clicks: u64,
}

#[derive(Serialize)]
struct TotalsView {
    human: u64,
    bot: u64,
    head: u64,
}

/// Days `from..=to`, each with its counts from `counted` (stored and pending).
fn day_views<'a>(
    from: u32,
    to: u32,
    counted: impl Iterator<Item = &'a (u32, ClickTotals)>,
) -> Vec<DayView> {
    let mut days: Vec<DayView> = (from..=to)
        .map(|day| DayView {
            date: StatsClock::date_of(day),
            human: 0,
            bot: 0,
            head: 0,
        })
        .collect();
    for (day, counts) in counted {
        if *day < from {
            continue;
        }
        if let Some(slot) = days.get_mut((day - from) as usize) {
            slot.human += counts.human;
            slot.bot += counts.bot;
            slot.head += counts.head;
        }
    }
    days
}

/// `GET /api/v1/links/{code}/stats?from=&to=&dims=&format=json|csv` (owner only).
pub fn link(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let link = api::load_owned(links, &req, &key)?;
    let code = link.code.as_str();
    let q = query(&req, links.clock.today())?;
    let (mut totals, stored_days, stored_refs, stored_dims) = links.store.read(|txn, dbs| {
        Ok((
            repo::click_totals(txn, dbs, code)?,
            repo::click_days(txn, dbs, code, q.from)?,
            repo::referrers(txn, dbs, code)?,
            repo::dims_between(txn, dbs, code, q.from, q.to)?,
        ))
    })?;
    let pending = links.clicks.pending(code);
    totals.add(&pending.totals);
    // (day, dim, value) → clicks, in order.
    let mut by_day: BTreeMap<(u32, Dim, String), u64> = BTreeMap::new();
    for (day, dim, value, clicks) in stored_dims.into_iter().chain(pending.dims) {
        if (q.from..=q.to).contains(&day) && q.dims.contains(&dim) {
            *by_day.entry((day, dim, value)).or_default() += clicks;
        }
    }
    if q.csv {
        let mut out = String::from("\u{feff}date,dimension,value,clicks\r\n");
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        for ((day, dim, value), clicks) in &by_day {
            let _ = csv.write_record([
                StatsClock::date_of(*day).as_str(),
                dim.as_str(),
                value,
                &clicks.to_string(),
            ]);
        }
        let _ = csv.flush();
        out.push_str(&String::from_utf8_lossy(csv.get_ref()));
        let mut response = response::with_body(
            StatusCode::OK,
            http::HeaderValue::from_static("text/csv; charset=utf-8"),
            out,
        );
        let headers = response.headers_mut();
        if let Ok(value) = http::HeaderValue::from_str(&format!(
            "attachment; filename=\"panlink-stats-{}.csv\"",
            link.short_code()
        )) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    let mut dimensions: BTreeMap<&'static str, Vec<ValueView>> =
        q.dims.iter().map(|d| (d.as_str(), Vec::new())).collect();
    let mut summed: BTreeMap<(Dim, &str), u64> = BTreeMap::new();
    for ((_, dim, value), clicks) in &by_day {
        *summed.entry((*dim, value.as_str())).or_default() += clicks;
    }
    for ((dim, value), clicks) in summed {
        if let Some(list) = dimensions.get_mut(dim.as_str()) {
            list.push(ValueView {
                value: value.to_owned(),
                clicks,
            });
        }
    }
    for list in dimensions.values_mut() {
        list.sort_by(|a, b| b.clicks.cmp(&a.clicks).then_with(|| a.value.cmp(&b.value)));
    }
    let mut refs = stored_refs;
    for (host, clicks) in pending.referrers {
        match refs.iter_mut().find(|(h, _)| *h == host) {
            Some((_, total)) => *total += clicks,
            None => refs.push((host, clicks)),
        }
    }
    refs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    refs.truncate(TOP_REFERRERS);
    #[derive(Serialize)]
    struct ReferrerView {
        host: String,
        clicks: u64,
    }
    #[derive(Serialize)]
    struct StatsView<'a> {
        code: &'a str,
        status: &'static str,
        timezone: &'a str,
        from: String,
        to: String,
        geo: bool,
        totals: TotalsView,
        days: Vec<DayView>,
        top_referrers: Vec<ReferrerView>,
        dimensions: BTreeMap<&'static str, Vec<ValueView>>,
        by_day: Vec<DayValueView>,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &StatsView {
            code: link.short_code(),
            status: link.status_at(timefmt::now_ms()).as_str(),
            timezone: links.clock.name(),
            from: StatsClock::date_of(q.from),
            to: StatsClock::date_of(q.to),
            geo: links.geo.is_some(),
            totals: TotalsView {
                human: totals.human,
                bot: totals.bot,
                head: totals.head,
            },
            days: day_views(q.from, q.to, stored_days.iter().chain(pending.days.iter())),
            top_referrers: refs
                .into_iter()
                .map(|(host, clicks)| ReferrerView { host, clicks })
                .collect(),
            dimensions,
            by_day: by_day
                .into_iter()
                .map(|((day, dim, value), clicks)| DayValueView {
                    date: StatsClock::date_of(day),
                    dimension: dim.as_str(),
                    value,
                    clicks,
                })
                .collect(),
        },
        req.request_id,
    ))
}

/// `GET /api/v1/stats?from=&to=`: the key's clicks per day and its most clicked links.
pub fn key(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let q = query(&req, links.clock.today())?;
    let owner = key.record.id.as_str();
    let per_link = links.store.read(|txn, dbs| {
        let mut out = Vec::new();
        for code in repo::codes_of(txn, dbs, owner)? {
            let days = repo::click_days(txn, dbs, &code, q.from)?;
            out.push((code, days));
        }
        Ok(out)
    })?;
    let mut all_days: Vec<(u32, ClickTotals)> = Vec::new();
    let mut top: Vec<(String, u64)> = Vec::new();
    for (code, mut days) in per_link {
        days.extend(links.clicks.pending(&code).days);
        days.retain(|(day, _)| (q.from..=q.to).contains(day));
        let human: u64 = days.iter().map(|(_, c)| c.human).sum();
        all_days.extend(days);
        if human > 0 {
            top.push((code, human));
        }
    }
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_LINKS);
    let days = day_views(q.from, q.to, all_days.iter());
    let totals = days.iter().fold(
        TotalsView {
            human: 0,
            bot: 0,
            head: 0,
        },
        |t, d| TotalsView {
            human: t.human + d.human,
            bot: t.bot + d.bot,
            head: t.head + d.head,
        },
    );
    #[derive(Serialize)]
    struct LinkClicks {
        code: String,
        domain: Option<String>,
        clicks: u64,
    }
    #[derive(Serialize)]
    struct KeyStats<'a> {
        timezone: &'a str,
        from: String,
        to: String,
        totals: TotalsView,
        days: Vec<DayView>,
        top_links: Vec<LinkClicks>,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &KeyStats {
            timezone: links.clock.name(),
            from: StatsClock::date_of(q.from),
            to: StatsClock::date_of(q.to),
            totals,
            days,
            top_links: top
                .into_iter()
                .map(|(id, clicks)| {
                    let (domain, code) = super::domains::split_id(&id);
                    LinkClicks {
                        code: code.to_owned(),
                        domain: domain.map(str::to_owned),
                        clicks,
                    }
                })
                .collect(),
        },
        req.request_id,
    ))
}
