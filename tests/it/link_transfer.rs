//! Export and import of short links: a key's links out as CSV or JSON lines and into a fresh data
//! dir as the same links; the CSV exports of Shlink, YOURLS and Kutt by their own columns; each
//! row's outcome; a retried call with an idempotency key making nothing twice; the command line.

use serde_json::{Value, json};

use crate::harness::Server;

fn post(server: &Server, key: &str, path: &str, body: &Value) -> Value {
    let answer = server.send(
        "POST",
        path,
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    );
    assert!(answer.status < 300, "{path}: {}", answer.text());
    answer.json()
}

fn export(server: &Server, key: &str, format: &str) -> String {
    let answer = server.get(
        &format!("/api/v1/links/export?format={format}"),
        &[("X-API-Key", key)],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.text()
}

fn import(server: &Server, key: &str, csv: &str, idempotency: Option<&str>) -> Value {
    let mut headers = vec![("X-API-Key", key), ("Content-Type", "text/csv")];
    if let Some(k) = idempotency {
        headers.push(("Idempotency-Key", k));
    }
    let answer = server.send("POST", "/api/v1/links/import", &headers, Some(csv));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"].clone()
}

/// The exported JSON lines without what a new data dir cannot keep (the click counts).
fn comparable(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).unwrap();
            row.as_object_mut().unwrap().remove("clicks");
            row
        })
        .collect()
}

#[test]
fn an_export_imported_into_a_fresh_data_dir_gives_the_same_links() {
    let old = Server::start();
    let (key, _) = old.create_key(r#"{"name":"old","plan":"premium"}"#);
    let group = post(&old, &key, "/api/v1/groups", &json!({"name": "资源站"}));
    let group_id = group["data"]["id"].as_u64().unwrap();
    post(
        &old,
        &key,
        "/api/v1/links",
        &json!({"url": "https://pan.quark.cn/s/abc123", "alias": "movie-1", "title": "=电影, \"合集\"",
                "tags": ["影视", "2026"], "group_id": group_id, "max_clicks": 50,
                "expire_at": "2099-01-01T00:00:00Z"}),
    );
    post(
        &old,
        &key,
        "/api/v1/links",
        &json!({"url": "https://example.com/a?x=1&y=2"}),
    );
    let off = post(
        &old,
        &key,
        "/api/v1/links",
        &json!({"url": "https://example.org/"}),
    );
    let off_code = off["data"]["code"].as_str().unwrap().to_owned();
    let patched = old.send(
        "PATCH",
        &format!("/api/v1/links/{off_code}"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(r#"{"status":"disabled"}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    // Clicks are counted and exported.
    for _ in 0..3 {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(old.get("/movie-1", &[("User-Agent", ua)]).status, 302);
    }

    let csv = export(&old, &key, "csv");
    assert!(csv.starts_with("\u{feff}code,domain,url,title,tags,group,created_at,expire_at,max_clicks,clicks,status\r\n"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.contains("'=电影"),
        "a formula-looking title is defused: {csv}"
    );
    assert!(csv.contains("影视|2026"), "{csv}");
    let jsonl = export(&old, &key, "jsonl");
    let before = comparable(&jsonl);
    assert_eq!(before.len(), 3);
    let movie = before.iter().find(|r| r["code"] == "movie-1").unwrap();
    assert_eq!(movie["title"], "=电影, \"合集\"");
    assert_eq!(movie["group"], "资源站");
    assert_eq!(movie["status"], "active");
    let clicks: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["clicks"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(clicks.iter().sum::<u64>(), 3, "{jsonl}");
    assert!(before.iter().any(|r| r["status"] == "disabled"));

    let new = Server::start();
    let (new_key, _) = new.create_key(r#"{"name":"new","plan":"premium"}"#);
    let report = import(&new, &new_key, &csv, None);
    assert_eq!(report["source"], "panlink", "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );
    let after = comparable(&export(&new, &new_key, "jsonl"));
    assert_eq!(
        after, before,
        "the same links, codes, times, groups and states"
    );
    assert_eq!(new.get("/movie-1", &[]).status, 302);
    assert_eq!(
        new.get(&format!("/{off_code}"), &[]).status,
        410,
        "still disabled"
    );

    // Scopes: export needs links:read, import links:write.
    let (reader, _) = new.create_key(r#"{"name":"r","scopes":["links:read"]}"#);
    let refused = new.send(
        "POST",
        "/api/v1/links/import",
        &[("X-API-Key", &reader), ("Content-Type", "text/csv")],
        Some("url\nhttps://example.com/\n"),
    );
    refused.assert_error(403, "scope_not_allowed");
    assert_eq!(
        export(&new, &reader, "csv").lines().count(),
        1,
        "its own links only: none"
    );
}

#[test]
fn shlink_yourls_and_kutt_exports_import_with_their_fields() {
    let server = Server::start();
    let (key, _) = server.create_key(r#"{"name":"mover","plan":"premium"}"#);
    // Shlink's web client export (createdAt, domain, shortCode, shortUrl, longUrl, title, tags,
    // visits), tags joined with `|`.
    let shlink = "createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n\
        2023-05-01T10:00:00+02:00,s.example,abc12,https://s.example/abc12,https://pan.baidu.com/s/1xyz,百度资源,movies|hd,12\n\
        2023-05-02T10:00:00+02:00,s.example,def34,https://s.example/def34,https://example.com/doc,,,0\n";
    let report = import(&server, &key, shlink, None);
    assert_eq!(report["source"], "shlink", "{report}");
    assert_eq!(report["created"], 2, "{report}");
    // YOURLS's links table (keyword, url, title, timestamp, ip, clicks).
    let yourls = "keyword,url,title,timestamp,ip,clicks\n\
        yo1,https://www.alipan.com/s/qwe,阿里,2022-03-04 05:06:07,1.2.3.4,9\n";
    let report = import(&server, &key, yourls, None);
    assert_eq!(report["source"], "yourls", "{report}");
    assert_eq!(report["created"], 1, "{report}");
    // Kutt's links (address, target, description, expire_in, created_at, visit_count).
    let kutt = "address,target,description,expire_in,created_at,visit_count\n\
        kt1,https://pan.xunlei.com/s/VNabc,迅雷,2099-01-01 00:00:00+00,2024-06-01 08:00:00.123+00,3\n";
    let report = import(&server, &key, kutt, None);
    assert_eq!(report["source"], "kutt", "{report}");
    assert_eq!(report["created"], 1, "{report}");

    let rows = comparable(&export(&server, &key, "jsonl"));
    let by_code = |code: &str| rows.iter().find(|r| r["code"] == code).cloned().unwrap();
    let a = by_code("abc12");
    assert_eq!(a["url"], "https://pan.baidu.com/s/1xyz");
    assert_eq!(a["title"], "百度资源");
    assert_eq!(a["tags"], json!(["movies", "hd"]));
    assert_eq!(a["created_at"], "2023-05-01T08:00:00.000Z");
    assert_eq!(by_code("def34")["title"], "");
    let y = by_code("yo1");
    assert_eq!(
        (y["url"].as_str(), y["title"].as_str()),
        (Some("https://www.alipan.com/s/qwe"), Some("阿里"))
    );
    assert_eq!(y["created_at"], "2022-03-04T05:06:07.000Z");
    let k = by_code("kt1");
    assert_eq!(k["title"], "迅雷");
    assert_eq!(k["expire_at"], "2099-01-01T00:00:00.000Z");
    assert_eq!(k["created_at"], "2024-06-01T08:00:00.123Z");
}

#[test]
fn every_row_gets_its_outcome_and_a_retried_call_makes_nothing_twice() {
    let server = Server::start();
    let (key, _) = server.create_key(r#"{"name":"rows","plan":"premium"}"#);
    let (free, _) = server.create_key(r#"{"name":"free"}"#);
    post(
        &server,
        &key,
        "/api/v1/links",
        &json!({"url": "https://example.com/", "alias": "taken"}),
    );
    let csv = "url,alias,title,tags,expire_at,group\n\
        https://example.com/1,,一,,,\n\
        not a url,,二,,,\n\
        https://example.com/3,taken,三,,,\n\
        https://example.com/4,,四,,someday,\n\
        https://example.com/5,fresh5,五,a|b,,新分组\n";
    let first = import(&server, &key, csv, Some("job-42"));
    assert_eq!(
        (first["total"].as_u64(), first["created"].as_u64()),
        (Some(5), Some(2)),
        "{first}"
    );
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[1]["error"]["error"], "invalid_field");
    assert!(
        rows[1]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("rows[2].url"),
        "{first}"
    );
    assert_eq!(rows[2]["error"]["error"], "alias_taken");
    assert!(
        rows[3]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("expire_at"),
        "{first}"
    );
    assert_eq!(rows[4]["code"], "fresh5");
    let count = |server: &Server| export(server, &key, "jsonl").lines().count();
    assert_eq!(count(&server), 3);
    // The same call again: the two rows it made are answered again, not made twice.
    let again = import(&server, &key, csv, Some("job-42"));
    assert_eq!(again["created"], 2, "{again}");
    assert_eq!(again["rows"][0]["again"], true, "{again}");
    assert_eq!(again["rows"][0]["code"], first["rows"][0]["code"]);
    assert_eq!(count(&server), 3, "nothing twice");
    // Without the key, a call is a new import.
    import(&server, &key, "url\nhttps://example.com/x\n", None);
    assert_eq!(count(&server), 4);
    // The group was made by name.
    let groups = server.get("/api/v1/groups", &[("X-API-Key", &key)]).json();
    assert!(groups.to_string().contains("新分组"), "{groups}");
    // A free key cannot bring its aliases.
    let refused = import(
        &server,
        &free,
        "url,alias\nhttps://example.com/,mine1\n",
        None,
    );
    assert_eq!(
        refused["rows"][0]["error"]["error"], "plan_not_allowed",
        "{refused}"
    );

    // Whole-file refusals.
    for (body, what) in [
        ("link,name\nhttps://example.com/,x\n", "no url column"),
        ("url\n", "no rows"),
    ] {
        let answer = server.send(
            "POST",
            "/api/v1/links/import",
            &[("X-API-Key", &key), ("Content-Type", "text/csv")],
            Some(body),
        );
        answer.assert_error(400, "invalid_field");
        assert!(!answer.text().is_empty(), "{what}");
    }
    let bad_key = server.send(
        "POST",
        "/api/v1/links/import",
        &[
            ("X-API-Key", &key),
            ("Content-Type", "text/csv"),
            ("Idempotency-Key", ""),
        ],
        Some("url\nhttps://example.com/\n"),
    );
    bad_key.assert_error(400, "invalid_parameter");
    let bad_format = server.get("/api/v1/links/export?format=xml", &[("X-API-Key", &key)]);
    bad_format.assert_error(400, "invalid_parameter");
}

#[test]
fn the_command_line_exports_and_imports_offline() {
    let old = Server::start();
    let (key, id) = old.create_key(r#"{"name":"cli","plan":"premium"}"#);
    for n in 0..3 {
        post(
            &old,
            &key,
            "/api/v1/links",
            &json!({"url": format!("https://example.com/{n}"), "alias": format!("cli-{n}")}),
        );
    }
    let out = old.cli(&["links", "export", "--owner", &id, "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_cli = comparable(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(via_cli, comparable(&export(&old, &key, "jsonl")));
    let csv_file = old.data_dir.join("links.csv");
    let out = old.cli(&[
        "links",
        "export",
        "--owner",
        &id,
        "--out",
        csv_file.to_str().unwrap(),
    ]);
    assert!(out.status.success());

    let new = Server::start();
    let (new_key, new_id) = new.create_key(r#"{"name":"target","plan":"premium"}"#);
    let import = |owner: &str, extra: &[&str]| {
        let mut args = vec![
            "links",
            "import",
            csv_file.to_str().unwrap(),
            "--owner",
            owner,
        ];
        args.extend_from_slice(extra);
        new.cli(&args)
    };
    let out = import(&new_id, &["--idempotency-key", "m1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(comparable(&export(&new, &new_key, "jsonl")), via_cli);
    assert_eq!(
        new.get("/cli-1", &[]).status,
        302,
        "the running server sees them at once"
    );
    // Again with the same key: nothing twice; a row that fails makes the exit status 1.
    let out = import(&new_id, &["--idempotency-key", "m1"]);
    assert!(out.status.success());
    assert_eq!(export(&new, &new_key, "jsonl").lines().count(), 3);
    let out = import(&new_id, &[]);
    assert_eq!(out.status.code(), Some(1), "the aliases are taken now");
    let out = import("nosuchkey", &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_import_over_its_row_limit_is_refused_whole() {
    let server = Server::start_with(&[("PANLINK_LINKS_IMPORT_MAX_ROWS", "3")]);
    let (key, _) = server.create_key(r#"{"name":"limit"}"#);
    let four = "url\nhttps://example.com/1\nhttps://example.com/2\nhttps://example.com/3\nhttps://example.com/4\n";
    let answer = server.send(
        "POST",
        "/api/v1/links/import",
        &[("X-API-Key", &key), ("Content-Type", "text/csv")],
        Some(four),
    );
    answer.assert_error(400, "invalid_field");
    assert!(answer.text().contains("3"), "{}", answer.text());
    assert_eq!(
        export(&server, &key, "csv").lines().count(),
        1,
        "nothing was made"
    );
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): imports 100 000 rows in one call"]
fn a_hundred_thousand_rows_import_in_one_call_and_export_back() {
    let server = Server::start_with(&[("PANLINK_STORAGE_MAP_SIZE_MB", "1024")]);
    let (key, _) = server.create_key(r#"{"name":"bulk","plan":"premium"}"#);
    let mut csv = String::from("url,alias,title,tags\n");
    for n in 0..100_000 {
        csv.push_str(&format!(
            "https://example.com/p/{n},bulk-{n},第 {n} 个,t{}\n",
            n % 7
        ));
    }
    let started = std::time::Instant::now();
    let report = import(&server, &key, &csv, Some("bulk-1"));
    let took = started.elapsed();
    assert_eq!(report["created"], 100_000, "failed: {}", report["failed"]);
    println!("import of 100 000 rows: {took:?}");
    let exported = export(&server, &key, "csv");
    assert_eq!(exported.lines().count(), 100_001);
    assert!(exported.contains("bulk-99999"));
    // Retried: nothing twice.
    let again = import(&server, &key, &csv, Some("bulk-1"));
    assert_eq!(again["created"], 100_000);
    assert_eq!(export(&server, &key, "csv").lines().count(), 100_001);
}
