//! Click analytics through the real binary: redirects with real user agents, languages,
//! referrers and client addresses (X-Forwarded-For from a trusted proxy, mapped by the test's own
//! IP database) are counted per dimension and day, shown by the stats endpoint as JSON and CSV,
//! kept across a crash (the click journal), and summed per key by `/api/v1/stats`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::Server;

const UA_FIXTURE: &str = include_str!("../fixtures/user_agents.tsv");

fn user_agents() -> Vec<(String, String, String, String)> {
    UA_FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let or = |v: &str, none: &str| {
                if v == "-" {
                    none.to_owned()
                } else {
                    v.to_owned()
                }
            };
            (
                or(cols[0], "unknown"),
                or(cols[1], "unknown"),
                or(cols[2], "none"),
                cols[3].to_owned(),
            )
        })
        .take(30)
        .collect()
}

fn geo_database(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("test-city.mmdb");
    let bytes = crate::mmdb::build(&[
        (
            "203.0.113.0/24",
            json!({"country": {"iso_code": "CN", "names": {"en": "China", "zh-CN": "中国"}},
                   "subdivisions": [{"iso_code": "GD", "names": {"en": "Guangdong", "zh-CN": "广东"}}]}),
        ),
        (
            "198.51.100.0/24",
            json!({"country": {"iso_code": "US"},
                   "subdivisions": [{"iso_code": "CA", "names": {"en": "California"}}]}),
        ),
        ("192.0.2.0/24", json!({"country": {"iso_code": "JP"}})),
    ]);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `dimensions` of a stats answer as value → clicks, per dimension.
fn dims(stats: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    stats["dimensions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(dim, values)| {
            let counts = values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["value"].as_str().unwrap().to_owned(),
                        v["clicks"].as_u64().unwrap(),
                    )
                })
                .collect();
            (dim.clone(), counts)
        })
        .collect()
}

fn tally(values: impl Iterator<Item = String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for v in values {
        *out.entry(v).or_default() += 1;
    }
    out
}

#[test]
fn clicks_are_counted_per_dimension_and_day_and_survive_a_crash() {
    let temp = tempfile::tempdir().unwrap();
    let db = geo_database(temp.path());
    let data = temp.path().join("data");
    let env = [
        ("PANLINK_LINKS_GEOIP_DB", db.to_str().unwrap()),
        ("PANLINK_LINKS_TRUSTED_PROXIES", r#"["127.0.0.1"]"#),
        ("PANLINK_LINKS_CLICK_FLUSH_MS", "100"),
        ("PANLINK_LINKS_CLICK_COMPACT_MS", "600000"),
    ];
    let mut server = Server::start_at(&data, &env);
    let health = server.get("/health", &[]).json();
    assert_eq!(health["click_stats"]["geo"], true, "{health}");
    assert_eq!(health["click_stats"]["timezone"], "Asia/Shanghai");
    let (key, _) = server.create_key(r#"{"name":"stats","plan":"premium"}"#);
    let created = server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(r#"{"url":"https://pan.quark.cn/s/abc123","alias":"stats-1"}"#),
    );
    assert_eq!(created.status, 200, "{}", created.text());

    let agents = user_agents();
    assert_eq!(agents.len(), 30);
    let addresses = ["203.0.113.9", "198.51.100.20", "192.0.2.1", "10.9.9.9"];
    let languages = [
        Some("zh-CN,zh;q=0.9,en;q=0.8"),
        Some("en-US,en;q=0.9"),
        None,
    ];
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, (os, device, app, ua)) in agents.iter().enumerate() {
        let address = addresses[i % addresses.len()];
        let mut headers = vec![("User-Agent", ua.as_str()), ("X-Forwarded-For", address)];
        if let Some(lang) = languages[i % languages.len()] {
            headers.push(("Accept-Language", lang));
        }
        if i % 2 == 0 {
            headers.push(("Referer", "https://weibo.com/u/123"));
        }
        let answer = server.get("/stats-1", &headers);
        assert_eq!(answer.status, 302, "{ua}");
        expected.entry("os").or_default().push(os.clone());
        expected.entry("device").or_default().push(device.clone());
        expected.entry("app").or_default().push(app.clone());
        expected
            .entry("language")
            .or_default()
            .push(["zh", "en", "unknown"][i % languages.len()].to_owned());
        if i % 2 == 0 {
            expected
                .entry("referrer")
                .or_default()
                .push("weibo.com".to_owned());
        }
        let (country, region) = match address {
            "203.0.113.9" => ("CN", "广东"),
            "198.51.100.20" => ("US", "California"),
            "192.0.2.1" => ("JP", "unknown"),
            _ => ("unknown", "unknown"),
        };
        expected
            .entry("country")
            .or_default()
            .push(country.to_owned());
        expected
            .entry("region")
            .or_default()
            .push(region.to_owned());
    }
    // A bot and a HEAD count as visits, never in the dimensions.
    server.get("/stats-1", &[("User-Agent", "Googlebot/2.1")]);
    let today = panlink::links::analytics::StatsClock::new("Asia/Shanghai")
        .unwrap()
        .today();
    let date = panlink::links::analytics::StatsClock::date_of(today);

    let check = |server: &Server, when: &str| {
        let stats = server
            .get("/api/v1/links/stats-1/stats", &[("X-API-Key", &key)])
            .json()["data"]
            .clone();
        assert_eq!(stats["timezone"], "Asia/Shanghai");
        assert_eq!(stats["to"], date, "{when}");
        assert_eq!(stats["totals"]["human"], 30, "{when}: {stats}");
        assert_eq!(stats["totals"]["bot"], 1, "{when}");
        let got = dims(&stats);
        for (dim, values) in &expected {
            assert_eq!(
                got[*dim],
                tally(values.iter().cloned()),
                "{when}: dimension {dim}"
            );
        }
        let browsers: u64 = got["browser"].values().sum();
        assert_eq!(browsers, 30, "{when}: every click has a browser value");
        assert!(
            got["browser"].contains_key("safari"),
            "{when}: {:?}",
            got["browser"]
        );
        let rows = stats["by_day"].as_array().unwrap();
        assert!(rows.iter().all(|r| r["date"] == date), "{when}");
        stats
    };
    check(&server, "in memory");
    // Only some dimensions, and CSV.
    let some = server
        .get(
            "/api/v1/links/stats-1/stats?dims=country,os",
            &[("X-API-Key", &key)],
        )
        .json();
    let keys: Vec<&String> = some["data"]["dimensions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["country", "os"]);
    let csv = server.get(
        "/api/v1/links/stats-1/stats?dims=region&format=csv",
        &[("X-API-Key", &key)],
    );
    assert_eq!(csv.status, 200);
    let text = csv.text();
    assert!(
        text.starts_with("\u{feff}date,dimension,value,clicks\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("{date},region,广东,")), "{text}");
    for bad in [
        "dims=planet",
        "from=2026-13-01",
        "format=xml",
        "from=2026-12-03&to=2026-12-01",
    ] {
        let answer = server.get(
            &format!("/api/v1/links/stats-1/stats?{bad}"),
            &[("X-API-Key", &key)],
        );
        answer.assert_error(400, "invalid_parameter");
    }

    // The journal keeps them through a crash.
    std::thread::sleep(std::time::Duration::from_millis(600));
    server.kill9();
    let server = Server::start_at(&data, &env);
    check(&server, "after kill -9 and the journal's replay");

    // The key's view.
    let key_stats = server.get("/api/v1/stats", &[("X-API-Key", &key)]).json();
    assert_eq!(key_stats["data"]["totals"]["human"], 30, "{key_stats}");
    assert_eq!(key_stats["data"]["top_links"][0]["code"], "stats-1");
    assert_eq!(key_stats["data"]["top_links"][0]["clicks"], 30);
}

#[test]
fn without_a_database_there_is_no_geo_and_analytics_can_be_turned_off() {
    let server = Server::start_with(&[("PANLINK_LINKS_ANALYTICS", "false")]);
    let health = server.get("/health", &[]).json();
    assert_eq!(health["click_stats"]["geo"], false);
    assert_eq!(health["click_stats"]["enabled"], false);
    let (key, _) = server.create_key(r#"{"name":"off","plan":"premium"}"#);
    server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(r#"{"url":"https://example.com/","alias":"plain-1"}"#),
    );
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    assert_eq!(server.get("/plain-1", &[("User-Agent", ua)]).status, 302);
    let stats = server
        .get("/api/v1/links/plain-1/stats", &[("X-API-Key", &key)])
        .json();
    assert_eq!(stats["data"]["totals"]["human"], 1);
    assert_eq!(stats["data"]["geo"], false);
    assert!(
        stats["data"]["by_day"].as_array().unwrap().is_empty(),
        "counting only: {stats}"
    );
}
