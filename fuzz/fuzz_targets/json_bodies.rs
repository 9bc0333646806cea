//! Every JSON body, through the real server: the first byte picks a route (jobs, urgent, links,
//! batch, link edit, groups, security check, admin create and edit, monitor create and edit,
//! password unlock), the rest is the body. The server runs in this process on a temp LMDB and a loopback port (its checker
//! and DNS pointed at closed loopback ports, so nothing leaves the machine); each input is one
//! HTTP/1.1 request on a fresh connection. Properties: never a 5xx, and every error is the JSON
//! envelope whose `code` is the HTTP status.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789";

struct Target {
    addr: SocketAddr,
    key: String,
    job: String,
    code: String,
    monitor: String,
    spare_key_id: String,
    _runtime: tokio::runtime::Runtime,
}

/// One request; the status and the body.
fn send(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("the in-process server listens");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: fuzz\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let status = std::str::from_utf8(&answer[9..12]).unwrap().parse().unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let mut body = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
            .unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
    out
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|err| {
        panic!("not JSON ({err}): {}", String::from_utf8_lossy(body))
    })
}

fn start() -> Target {
    let dir = std::env::temp_dir().join(format!("panlink-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let vars: Vec<(String, String)> = vec![
        ("PANLINK_DATA_DIR".into(), dir.display().to_string()),
        ("PANLINK_LISTEN".into(), "127.0.0.1:0".into()),
        ("PANLINK_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("PANLINK_STORAGE_MAP_SIZE_MB".into(), "4096".into()),
        ("PANLINK_CHECKER_UPSTREAM_OVERRIDE".into(), "127.0.0.1:9".into()),
        ("PANLINK_SECURITY_DNS_SERVER".into(), "127.0.0.1:9".into()),
        ("PANLINK_HTTP_MAX_CONNECTIONS".into(), "100000".into()),
    ];
    let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let config = panlink::config::Config::load(None, &env).expect("the fuzz configuration");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(async {
        let store = panlink::store::Store::open(&config.storage).expect("LMDB in a temp dir");
        let listener = tokio::net::TcpListener::bind(config.server.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let http = config.http.clone();
        let app = panlink::api::App::new(config, store, ADMIN_TOKEN, shutdown, None).unwrap();
        app.take_over().unwrap();
        let stop = panlink::http::server::Stop::default();
        tokio::spawn(panlink::http::server::serve(Arc::clone(&app), http, listener, stop));
        addr
    });
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    let create_key = |body: &str| {
        let (status, answer) = send(addr, "POST", "/admin/api/keys", &admin, body.as_bytes());
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
        let answer = json(&answer);
        (
            answer["data"]["key"].as_str().unwrap().to_owned(),
            answer["data"]["id"].as_str().unwrap().to_owned(),
        )
    };
    let (key, _) = create_key(
        r#"{"name": "fuzz", "plan": "premium", "points": 1000000000, "rate_per_s": 1000000, "burst": 1000000}"#,
    );
    let (_, spare_key_id) = create_key(r#"{"name": "spare"}"#);
    let auth = format!("X-API-Key: {key}\r\n");
    let (status, answer) = send(
        addr,
        "POST",
        "/jobs",
        &auth,
        br#"{"items": ["https://pan.quark.cn/s/abcdef123456"]}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let job = json(&answer)["job_id"].as_str().unwrap().to_owned();
    let (status, answer) = send(
        addr,
        "POST",
        "/api/v1/links",
        &auth,
        br#"{"url": "https://example.com/", "access_type": "password", "password": "secret1"}"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let code = json(&answer)["data"]["code"].as_str().unwrap().to_owned();
    let (status, answer) = send(
        addr,
        "POST",
        "/api/v1/monitors",
        &auth,
        br#"{"name": "fuzz", "urls": ["https://pan.quark.cn/s/abcdef123456"]}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let monitor = json(&answer)["data"]["id"].as_str().unwrap().to_owned();
    Target {
        addr,
        key,
        job,
        code,
        monitor,
        spare_key_id,
        _runtime: runtime,
    }
}

fuzz_target!(|data: &[u8]| {
    static TARGET: OnceLock<Target> = OnceLock::new();
    let target = TARGET.get_or_init(start);
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let user = format!("X-API-Key: {}\r\n", target.key);
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    let (method, path, auth) = match which % 12 {
        0 => ("POST", "/jobs".to_owned(), &user),
        1 => ("POST", format!("/jobs/{}/urgent", target.job), &user),
        2 => ("POST", "/api/v1/links".to_owned(), &user),
        3 => ("POST", "/api/v1/links/batch".to_owned(), &user),
        4 => ("PATCH", format!("/api/v1/links/{}", target.code), &user),
        5 => ("POST", "/api/v1/groups".to_owned(), &user),
        6 => ("POST", "/api/v1/tools/security-check".to_owned(), &user),
        7 => ("POST", "/admin/api/keys".to_owned(), &admin),
        8 => ("PATCH", format!("/admin/api/keys/{}", target.spare_key_id), &admin),
        9 => ("POST", "/api/v1/monitors".to_owned(), &user),
        10 => ("PATCH", format!("/api/v1/monitors/{}", target.monitor), &user),
        _ => ("POST", format!("/{}", target.code), &String::new()),
    };
    let (status, answer) = send(target.addr, method, &path, auth, body);
    assert!(
        status < 500,
        "{method} {path} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    if status >= 400 && which % 12 != 11 {
        let error = json(&answer);
        assert_eq!(error["code"], status, "{method} {path}: {error}");
        assert!(error["error"].is_string(), "{method} {path}: {error}");
    }
});
