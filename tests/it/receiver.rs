//! A webhook receiver for tests: a plain HTTP/1.1 server on loopback that records every request
//! it reads in full and answers with the status it is set to, or holds the connection without
//! answering.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Status(u16),
    /// Read the request, never answer (until the mode changes).
    Silent,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether its `X-Panlink-Signature` is `secret`'s signature of its body, made now.
    pub fn signed_by(&self, secret: &str) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        panlink::webhooks::signature::verify(
            secret,
            self.header("x-panlink-signature"),
            &self.body,
            now,
            300,
        )
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (m, r) = (Arc::clone(&mode), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, r) = (Arc::clone(&m), Arc::clone(&r));
                std::thread::spawn(move || serve(stream, &m, &r));
            }
        });
        Receiver {
            addr,
            mode,
            received,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock() = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    /// Requests whose `X-Panlink-Event` is `event`.
    pub fn of_event(&self, event: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.header("x-panlink-event") == event)
            .collect()
    }
}

fn serve(stream: std::net::TcpStream, mode: &Mutex<Mode>, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        received.lock().push(Received {
            path,
            headers,
            body,
        });
        loop {
            let now = *mode.lock();
            match now {
                Mode::Status(status) => {
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                    );
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                    break;
                }
                Mode::Silent => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
