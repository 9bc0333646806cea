//! The blocking `POST /check` and the results export `GET /jobs/{id}/results`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mock, Server, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn check(server: &Server, key: &str, body: &Value) -> crate::harness::Response {
    server.send(
        "POST",
        "/check",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    )
}

/// Twenty links of three providers, with the state each must get.
fn mixed_links() -> Vec<(String, &'static str)> {
    (0..20)
        .map(|n| match n % 4 {
            0 => (format!("https://pan.quark.cn/s/ok{n}check"), "valid"),
            1 => (format!("https://pan.baidu.com/s/1gone{n}chk"), "invalid"),
            2 => (format!("https://pan.quark.cn/s/lock{n}check"), "locked"),
            _ => (format!("https://www.alipan.com/s/none{n}chk"), "invalid"),
        })
        .collect()
}

#[test]
fn a_blocking_check_answers_every_link_in_input_order() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, &[]);
    let key = server.job_key("check");
    let links = mixed_links();
    let urls: Vec<&str> = links.iter().map(|(u, _)| u.as_str()).collect();
    let answer = check(&server, &key, &json!({"items": urls, "wait_s": 20}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(body["pending"], json!([]));
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for (n, (result, (url, state))) in results.iter().zip(&links).enumerate() {
        assert_eq!(result["item_id"], n + 1);
        assert_eq!(result["url"], url.as_str());
        assert_eq!(result["state"], *state, "{result}");
        assert_eq!(result["priority_used"], "urgent", "{result}");
    }
    // It is an ordinary job: its overview and its stream know it.
    let job = body["job_id"].as_str().unwrap();
    let overview = server
        .get(&format!("/jobs/{job}"), &[("X-API-Key", &key)])
        .json();
    assert_eq!(overview["totals"]["done"], 20);
}

#[test]
fn a_blocking_check_that_runs_out_of_time_answers_what_it_has_and_the_job_goes_on() {
    let mock = Mock::start(700);
    let server = Server::with_mock(&mock, &[]);
    let key = server.job_key("impatient");
    let urls: Vec<String> = (0..6)
        .map(|n| format!("https://pan.quark.cn/s/ok{n}slowck"))
        .collect();
    let answer = check(&server, &key, &json!({"items": urls, "wait_s": 0.2}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["status"], "running", "{body}");
    let pending = body["pending"].as_array().unwrap().len();
    assert!(pending > 0, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len() + pending, 6);
    let job = body["job_id"].as_str().unwrap().to_owned();
    wait_until(WAIT, "the job to finish after the answer", || {
        let overview = server
            .get(&format!("/jobs/{job}"), &[("X-API-Key", &key)])
            .json();
        (overview["status"] == "done").then_some(())
    });
    let all = server
        .get(&format!("/jobs/{job}/results"), &[("X-API-Key", &key)])
        .json();
    assert_eq!(all.as_array().unwrap().len(), 6);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "valid")
    );
}

#[test]
fn blocking_check_input_is_bounded_and_checked() {
    let server = Server::start();
    let key = server.job_key("bounds");
    let many: Vec<String> = (0..101)
        .map(|n| format!("https://pan.quark.cn/s/ok{n}many"))
        .collect();
    let json = check(&server, &key, &json!({ "items": many })).assert_error(400, "invalid_field");
    let msg = json["msg"].as_str().unwrap();
    assert!(msg.contains("100") && msg.contains("POST /jobs"), "{json}");
    let json = check(
        &server,
        &key,
        &json!({"items": ["https://pan.quark.cn/s/ok1abc"], "wait_s": 600}),
    )
    .assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("wait_s"), "{json}");
    check(&server, &key, &json!({"items": [], "nope": 1})).assert_error(400, "invalid_field");
    server
        .send(
            "POST",
            "/check",
            &[("Content-Type", "application/json")],
            Some("{}"),
        )
        .assert_error(401, "missing_api_key");
}

/// Splits CSV text (RFC 4180) into records of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[test]
fn results_export_as_json_lines_and_csv_with_filters_and_paging() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, &[]);
    let key = server.job_key("export");
    let links = mixed_links();
    let items: Vec<Value> = links
        .iter()
        .enumerate()
        .map(|(n, (url, _))| json!({"url": url, "meta": {"row": n, "note": "a,\"b\""}}))
        .collect();
    let job = server.submit(&key, &json!({ "items": items }));
    server.events(&key, &job, &[]).until_done(WAIT);
    let get = |query: &str| {
        server.get(
            &format!("/jobs/{job}/results{query}"),
            &[("X-API-Key", &key)],
        )
    };

    let csv = get("?format=csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some(format!("attachment; filename=\"panlink-{job}.csv\"").as_str())
    );
    let text = csv.text();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark for Excel");
    let records = parse_csv(text);
    assert_eq!(
        records[0],
        [
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
            "meta"
        ]
    );
    assert_eq!(records.len(), 21);
    for record in &records[1..] {
        let item: usize = record[0].parse().unwrap();
        let (url, state) = &links[item - 1];
        assert_eq!(
            (&record[1], &record[3]),
            (url, &state.to_string()),
            "{record:?}"
        );
        let meta: Value = serde_json::from_str(&record[10]).unwrap();
        assert_eq!(meta, json!({"row": item - 1, "note": "a,\"b\""}));
    }

    let invalid = get("?format=jsonl&state=invalid");
    assert_eq!(invalid.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = invalid
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|r| r["state"] == "invalid"));

    let all = get("").json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 20);
    let tenth = all[9]["event_id"].as_u64().unwrap();
    let rest = get(&format!("?after={tenth}")).json();
    assert_eq!(rest.as_array().unwrap().len(), 10);
    assert_eq!(rest[0]["event_id"], tenth + 1);

    get("?format=xml").assert_error(400, "invalid_parameter");
    get("?state=dead").assert_error(400, "invalid_parameter");
    get("?after=x").assert_error(400, "invalid_parameter");
    let other = server.job_key("other");
    server
        .get(&format!("/jobs/{job}/results"), &[("X-API-Key", &other)])
        .assert_error(404, "not_found");
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): a 100 000-link job"]
fn a_hundred_thousand_results_export_as_a_csv_table() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_CONCURRENCY", "64"),
            ("PANLINK_CHECKER_RATE_PER_S", "1000000"),
        ],
    );
    let key = server.job_key("big-export");
    // One link in a hundred is checked; the rest are of no drive, answered at submission, so
    // that the job is stored in seconds. The export reads both kinds from storage alike.
    let links: Vec<String> = (0..100_000)
        .map(|n| {
            if n % 100 == 0 {
                format!("https://www.123684.com/s/ok{n:06}big")
            } else {
                format!("https://example.com/files/big-{n:06}")
            }
        })
        .collect();
    let job = server.submit(&key, &json!({ "items": links }));
    wait_until(Duration::from_secs(300), "the job", || {
        (server.job(&key, &job).json()["status"] == "done").then_some(())
    });
    let answer = server.get(
        &format!("/jobs/{job}/results?format=csv"),
        &[("X-API-Key", &key)],
    );
    assert_eq!(answer.status, 200);
    let text = answer.text();
    let table = parse_csv(text.trim_start_matches('\u{feff}'));
    assert_eq!(table.len(), 100_001, "a header and a row per link");
    assert_eq!(table[0][0], "item_id");
    let state = table[0].iter().position(|c| c == "state").unwrap();
    let url = table[0].iter().position(|c| c == "url").unwrap();
    let mut ids: Vec<u32> = table[1..]
        .iter()
        .map(|row| row[0].parse().unwrap())
        .collect();
    for row in &table[1..] {
        assert_eq!(row.len(), table[0].len(), "{row:?}");
        let link = &links[row[0].parse::<usize>().unwrap() - 1];
        assert_eq!(link, &row[url]);
        let want = if link.contains("123684") {
            "valid"
        } else {
            "unknown"
        };
        assert_eq!(row[state], want, "{row:?}");
    }
    ids.sort_unstable();
    assert!(ids.iter().enumerate().all(|(n, id)| *id as usize == n + 1));
    crate::harness::figure(&format!(
        "export: 100 000 results as CSV, {:.1} MiB",
        text.len() as f64 / 1_048_576.0
    ));
}
