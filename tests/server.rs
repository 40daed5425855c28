//! `pyeval serve` end to end: the real binary on 127.0.0.1, spoken to over plain TCP.

mod ok_server;
mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `pyeval serve`, stopped when dropped.
struct Server {
    child: Child,
    client: Client,
}

/// Requests to a server at `addr`.
#[derive(Clone, Copy)]
struct Client {
    addr: SocketAddr,
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_pyeval"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Owned by the server from here on: a failing test still stops the process.
        let mut server = Server {
            child,
            client: Client {
                addr: ([127, 0, 0, 1], 0).into(),
            },
        };
        let mut stderr = BufReader::new(server.child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the server exited"
            );
            if let Some(addr) = line.trim().strip_prefix("pyeval: serving on http://") {
                server.client.addr = addr.parse().unwrap();
                // Keep draining stderr so the server never blocks on it.
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return server;
            }
        }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        terminate(&self.child);
        let status = wait(&mut self.child, Duration::from_secs(20));
        std::mem::forget(self);
        status
    }
}

impl Client {
    fn request(&self, method: &str, path: &str, body: &str) -> Response {
        self.send(method, path, &[], body)
    }

    /// Sends a request as a well-behaved client does: `Host` names the server's loopback
    /// address, and a body is JSON.
    fn send(&self, method: &str, path: &str, headers: &[&str], body: &str) -> Response {
        let mut all = vec![format!("Host: {}", self.addr)];
        if !body.is_empty() {
            all.push("Content-Type: application/json".into());
        }
        all.extend(headers.iter().map(|h| h.to_string()));
        self.send_raw(method, path, &all, body)
    }

    /// Sends a request with exactly these headers (and Content-Length).
    fn send_raw(&self, method: &str, path: &str, headers: &[String], body: &str) -> Response {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        Response::read(stream)
    }

    fn eval(&self, body: &str) -> Response {
        self.request("POST", "/v1/eval", body)
    }

    /// Sends `body` as `media`; the status and the body's bytes.
    fn send_bytes(&self, method: &str, path: &str, media: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: {media}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(
            status != 200 || head.contains("content-type: application/octet-stream"),
            "{head}"
        );
        (status, raw[end + 4..].to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn read(mut stream: TcpStream) -> Response {
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Response {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `kind` of a failure body.
    fn kind(&self) -> String {
        self.json()["error"]["kind"].as_str().unwrap().to_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
    }
}

#[test]
fn fresh_evaluations_and_their_failures() {
    let server = Server::start(&["--fuel", "50_000_000"]);
    assert_eq!(server.request("GET", "/healthz", "").body, "ok\n");

    let ok = server.eval(r#"{"code": "print('hi')\n6 * 7", "argv": ["a"], "env": {"K": "v"}}"#);
    assert_eq!(ok.status, 200);
    let outcome = ok.json();
    assert_eq!(
        (outcome["stdout"].as_str(), outcome["value"].as_str()),
        (Some("hi\n"), Some("42"))
    );
    let granted = server.eval(
        r#"{"code": "import os, sys\n(os.environ['K'], sys.argv, input())", "argv": ["p", "a"], "env": {"K": "v"}, "stdin": "line\n"}"#,
    );
    assert_eq!(granted.json()["value"], "('v', ['p', 'a'], 'line')");
    let raised = server.eval(r#"{"code": "1 / 0"}"#);
    assert_eq!(raised.status, 200);
    assert_eq!(raised.json()["error"]["type_name"], "ZeroDivisionError");

    for (body, status, kind) in [
        // Asking for more fuel than the server allows gets the server's budget.
        (
            r#"{"code": "while True: pass", "limits": {"fuel": 1000000000000}}"#,
            422,
            "fuel_exhausted",
        ),
        (
            r#"{"code": "import time\ntime.sleep(5)", "limits": {"timeout_ms": 200}}"#,
            408,
            "timeout",
        ),
        (
            r#"{"code": "1", "limits": {"memory_bytes": 1048576}}"#,
            507,
            "memory_limit",
        ),
        (r#"{"code": "import os\nos.abort()"}"#, 500, "trap"),
        (r#"{"code": "'\u0000'"}"#, 400, "invalid_code"),
        (r#"{"code": 1}"#, 400, "bad_request"),
        (r#"{"code": "1", "mounts": ["/etc"]}"#, 400, "bad_request"),
        ("{not json", 400, "bad_request"),
        ("", 400, "bad_request"),
    ] {
        let response = server.eval(body);
        assert_eq!(
            (response.status, response.kind()),
            (status, kind.to_owned()),
            "{body}"
        );
    }
    let capped = server.eval(r#"{"code": "while True: pass", "limits": {"fuel": 1000000000000}}"#);
    assert!(capped.body.contains("50,000,000"), "{}", capped.body);
    assert_eq!(server.request("GET", "/v1/nowhere", "").status, 404);
    assert_eq!(server.request("GET", "/v1/eval", "").status, 405);
    // The server is still there after all of that.
    assert_eq!(server.eval(r#"{"code": "1 + 1"}"#).json()["value"], "2");

    let metrics = server.request("GET", "/metrics", "").body;
    for line in [
        "pyeval_evaluations_total{outcome=\"ok\"} 3",
        "pyeval_evaluations_total{outcome=\"exception\"} 1",
        "pyeval_evaluations_total{outcome=\"fuel_exhausted\"} 2",
        "pyeval_evaluations_total{outcome=\"timeout\"} 1",
        "pyeval_evaluation_seconds_count 10",
        "pyeval_evaluations_in_flight 0",
        "pyeval_sessions_open 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
}

#[test]
fn sessions_keep_state_until_closed_stopped_or_idle() {
    let server = Server::start(&[
        "--max-sessions",
        "2",
        "--session-idle",
        "1",
        "--fuel",
        "50_000_000",
    ]);
    let created = server.request("POST", "/v1/sessions", "");
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/sessions/{id}").as_str())
    );
    let path = format!("/v1/sessions/{id}/eval");
    server.request("POST", &path, r#"{"code": "x = 20"}"#);
    let kept = server.request("POST", &path, r#"{"code": "x * 2 + 2"}"#);
    assert_eq!(kept.json()["value"], "42");

    let second = server.request("POST", "/v1/sessions", r#"{"limits": {"fuel": 10000000}}"#);
    let second_id = second.json()["id"].as_str().unwrap().to_owned();
    let full = server.request("POST", "/v1/sessions", "");
    assert_eq!(
        (full.status, full.kind()),
        (429, "too_many_sessions".to_owned())
    );
    assert!(full.header("retry-after").is_some());

    // A stop ends the session: later evaluations say so.
    let second_path = format!("/v1/sessions/{second_id}/eval");
    assert_eq!(
        server
            .request("POST", &second_path, r#"{"code": "while True: pass"}"#)
            .status,
        422
    );
    let ended = server.request("POST", &second_path, r#"{"code": "1"}"#);
    assert_eq!(
        (ended.status, ended.kind()),
        (410, "session_ended".to_owned())
    );

    assert_eq!(
        server
            .request("DELETE", &format!("/v1/sessions/{second_id}"), "")
            .status,
        204
    );
    let gone = server.request("POST", &second_path, r#"{"code": "1"}"#);
    assert_eq!(
        (gone.status, gone.kind()),
        (404, "unknown_session".to_owned())
    );
    assert_eq!(
        server
            .request("DELETE", &format!("/v1/sessions/{second_id}"), "")
            .status,
        404
    );

    // Idle past a second: expired.
    std::thread::sleep(Duration::from_millis(2500));
    let expired = server.request("POST", &path, r#"{"code": "x"}"#);
    assert_eq!(
        (expired.status, expired.kind()),
        (404, "unknown_session".to_owned())
    );
}

/// Runs `body` as a fresh evaluation on another thread.
fn eval_in_background(
    server: &Server,
    path: &str,
    body: &'static str,
) -> std::thread::JoinHandle<Response> {
    let (client, path) = (server.client, path.to_owned());
    std::thread::spawn(move || client.request("POST", &path, body))
}

#[test]
fn a_full_pool_is_refused_at_once_with_retry_after() {
    let server = Server::start(&["--max-instances", "1"]);
    let busy = eval_in_background(
        &server,
        "/v1/eval",
        r#"{"code": "import time\ntime.sleep(1.5)"}"#,
    );
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let refused = server.eval(r#"{"code": "1"}"#);
    assert_eq!(
        (refused.status, refused.kind()),
        (503, "too_many_instances".to_owned())
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(busy.join().unwrap().status, 200);
    assert_eq!(server.eval(r#"{"code": "1"}"#).status, 200);
    // A pool of one keeps its instance for fresh evaluations: no session may take it.
    let session = server.request("POST", "/v1/sessions", "");
    assert_eq!(
        (session.status, session.kind()),
        (429, "too_many_sessions".to_owned())
    );
}

#[test]
fn sessions_cannot_starve_fresh_evaluations() {
    // A pool of 4 lets sessions hold 3 instances at most.
    let server = Server::start(&["--max-instances", "4", "--max-sessions", "100"]);
    for _ in 0..3 {
        let id = server.request("POST", "/v1/sessions", "").json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let held = server.request(
            "POST",
            &format!("/v1/sessions/{id}/eval"),
            r#"{"code": "a = 1"}"#,
        );
        assert_eq!(held.status, 200);
    }
    let fourth = server.request("POST", "/v1/sessions", "");
    assert_eq!(
        (fourth.status, fourth.kind()),
        (429, "too_many_sessions".to_owned())
    );
    assert_eq!(
        server.eval(r#"{"code": "'fresh'"}"#).json()["value"],
        "'fresh'"
    );
}

#[test]
fn a_busy_session_answers_at_once_and_a_closed_one_stops_what_runs() {
    // No fuel limit: the loop runs until its ten-second time limit, or until closed.
    let server = Server::start(&["--fuel", "-1"]);
    let id = server.request("POST", "/v1/sessions", "").json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/sessions/{id}/eval");
    let running = eval_in_background(&server, &path, r#"{"code": "while True: pass"}"#);
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let busy = server.request("POST", &path, r#"{"code": "1"}"#);
    assert_eq!((busy.status, busy.kind()), (409, "session_busy".to_owned()));
    assert!(started.elapsed() < Duration::from_secs(1));

    // Closing it stops the loop now, not at the ten-second time limit.
    assert_eq!(
        server
            .request("DELETE", &format!("/v1/sessions/{id}"), "")
            .status,
        204
    );
    let stopped = running.join().unwrap();
    assert_eq!(
        (stopped.status, stopped.kind()),
        (410, "session_closed".to_owned())
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let metrics = server.request("GET", "/metrics", "").body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "pyeval_evaluations_in_flight 0"),
        "{metrics}"
    );
}

#[test]
fn a_stopped_session_gives_its_instance_back_at_once() {
    // Two instances: one session at most, and two fresh evaluations at once need both.
    let server = Server::start(&["--max-instances", "2", "--fuel", "20_000_000"]);
    let id = server.request("POST", "/v1/sessions", "").json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/sessions/{id}/eval");
    assert_eq!(
        server.request("POST", &path, r#"{"code": "a = 1"}"#).status,
        200
    );
    assert_eq!(
        server
            .request("POST", &path, r#"{"code": "while True: pass"}"#)
            .status,
        422
    );
    let sleep = r#"{"code": "import time\ntime.sleep(1)\n'slept'"}"#;
    let first = eval_in_background(&server, "/v1/eval", sleep);
    let second = eval_in_background(&server, "/v1/eval", sleep);
    for response in [first.join().unwrap(), second.join().unwrap()] {
        assert_eq!(response.json()["value"], "'slept'", "{}", response.body);
    }
    let ended = server.request("POST", &path, r#"{"code": "a"}"#);
    assert_eq!(
        (ended.status, ended.kind()),
        (410, "session_ended".to_owned())
    );
    assert!(ended.body.contains("out of fuel"), "{}", ended.body);
}

/// The server's answer to an evaluation whose headers declare a body of `len` bytes, none
/// of which is sent.
fn declared_body_only(server: &Server, len: usize) -> Response {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /v1/eval HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n",
        server.addr,
    )
    .unwrap();
    Response::read(stream)
}

#[test]
fn oversized_and_slow_bodies_are_refused_and_the_server_lives() {
    let server = Server::start(&[
        "--body-timeout",
        "0.5",
        "--max-files",
        "0",
        "--max-file-bytes",
        "0",
    ]);
    // The default code limit is 1 MiB; the body may be about twice that (no files allowed).
    // A body that says it is larger is refused before any of it is read.
    let refused = declared_body_only(&server, 3 << 20);
    assert_eq!(
        (refused.status, refused.kind()),
        (413, "body_too_large".to_owned())
    );
    // One of unknown length is read no further than the limit.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /v1/eval HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    // Just past the limit (2 MiB and 64 KiB), so what the server leaves unread stays
    // within the socket's buffers.
    for size in [1 << 20, 1 << 20, 128 << 10] {
        let chunk = "x".repeat(size);
        if write!(stream, "{size:x}\r\n{chunk}\r\n").is_err() {
            break;
        }
    }
    let refused = Response::read(stream);
    assert_eq!(
        (refused.status, refused.kind()),
        (413, "body_too_large".to_owned())
    );
    // Code over the code limit in a body the server accepts is refused as code.
    let long = format!(r#"{{"code": "{}"}}"#, "#".repeat(1_100_000));
    assert_eq!(server.eval(&long).kind(), "invalid_code");

    // A client that sends half a body and stalls is cut off.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"POST /v1/eval HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
        .unwrap();
    let started = Instant::now();
    body_cut_off(&server, slow, started);
}

#[test]
fn a_token_guards_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    let refused = server.eval(r#"{"code": "1"}"#);
    assert_eq!(
        (refused.status, refused.kind()),
        (401, "unauthorized".to_owned())
    );
    assert_eq!(refused.header("www-authenticate"), Some("bearer"));
    let wrong = server.send(
        "POST",
        "/v1/eval",
        &["Authorization: Bearer s3cres"],
        r#"{"code": "1"}"#,
    );
    assert_eq!(wrong.status, 401);
    let right = server.send(
        "POST",
        "/v1/eval",
        &["Authorization: Bearer s3cret"],
        r#"{"code": "1"}"#,
    );
    assert_eq!(right.status, 200);
    assert_eq!(server.request("GET", "/metrics", "").status, 401);
    assert_eq!(server.request("GET", "/healthz", "").status, 200);

    // Reachable from other machines without a token: refused before it listens.
    let open = Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&open.stderr).contains("--token-file"));
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let body = r#"{"code": "import time\ntime.sleep(1)\n'done'"}"#;
        write!(
            stream,
            "POST /v1/eval HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        Response::read(stream)
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = server.stop();
    let finished = slow.join().unwrap();
    assert_eq!(finished.json()["value"], "'done'");
    assert!(status.success(), "{status:?}");
}

#[test]
fn serves_the_component_it_is_given() {
    let sci = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval-sci.wasm");
    let server = Server::start(&["--component", sci, "--max-instances", "2"]);
    let numpy = server.eval(r#"{"code": "import numpy as np\nint(np.eye(3).sum())"}"#);
    assert_eq!(numpy.status, 200);
    assert_eq!(numpy.json()["value"], "3");
    // Charts come back as PNG files, base64 in JSON.
    let chart = server.eval(r#"{"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])"}"#);
    assert_eq!(chart.status, 200);
    let charts = chart.json()["charts"].clone();
    assert_eq!(charts[0]["path"], "chart-1.png");
    assert_eq!(charts[0]["media_type"], "image/png");
    assert!(charts[0]["data"]
        .as_str()
        .unwrap()
        .starts_with("iVBORw0KGgo"));
    assert_eq!(chart.json()["charts_dropped"], 0);
    server.stop();
}

/// Checks that the server answered `stream`, whose body never arrived whole, 408 within
/// seconds of `started`, and still evaluates.
fn body_cut_off(server: &Server, stream: TcpStream, started: Instant) {
    let response = Response::read(stream);
    assert_eq!(
        (response.status, response.kind()),
        (408, "body_unread".to_owned())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        server.eval(r#"{"code": "'alive'"}"#).json()["value"],
        "'alive'"
    );
}

/// Whether the server closes `stream` within `limit` (reading and discarding what it sends).
fn closed_within(mut stream: TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 65536];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return started.elapsed() < limit,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_headers_idle_connections_and_trickled_bodies_are_cut_off() {
    let server = Server::start(&["--header-timeout", "0.5", "--body-timeout", "1"]);
    // Half a header, then nothing.
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"POST /v1/eval HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Nothing at all.
    let idle = TcpStream::connect(server.addr).unwrap();
    assert!(closed_within(half, Duration::from_secs(3)));
    assert!(closed_within(idle, Duration::from_secs(3)));

    // A body trickled a byte at a time, each in time for a per-chunk timeout, is cut off
    // when the whole body is late.
    let mut trickle = TcpStream::connect(server.addr).unwrap();
    let body = br#"{"code": "1"}                                                     "#;
    write!(
        trickle,
        "POST /v1/eval HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let started = Instant::now();
    for byte in body.iter().take(40) {
        if trickle.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    body_cut_off(&server, trickle, started);
}

#[test]
fn connections_past_the_cap_are_refused_at_once() {
    let server = Server::start(&["--max-connections", "2", "--header-timeout", "30"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = server.eval(r#"{"code": "1"}"#);
    assert_eq!(
        (refused.status, refused.kind()),
        (503, "too_many_connections".to_owned())
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.eval(r#"{"code": "1"}"#).status, 200);
}

#[test]
fn a_client_that_does_not_read_its_response_is_cut_off() {
    // 32 MB of output: more than loopback's socket buffers hold.
    let server = Server::start(&["--max-output", "33554432", "--write-timeout", "0.5"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let body = r#"{"code": "print('x' * 32_000_000)"}"#;
    write!(
        stream,
        "POST /v1/eval HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    assert!(
        received.len() < 32_000_000,
        "the whole response ({} bytes) waited for a client that did not read",
        received.len()
    );
    assert_eq!(
        server.eval(r#"{"code": "'alive'"}"#).json()["value"],
        "'alive'"
    );
}

#[test]
fn responses_stay_within_their_limit_however_the_output_escapes() {
    let server = Server::start(&[]);
    // Five texts at the 1 MiB output limit, each character escaped as six bytes in JSON.
    let code = r#"{"code": "import sys\nc = chr(1) * (1 << 20)\nsys.stdout.write(c)\nsys.stderr.write(c)\nclass E(Exception):\n    pass\ntry:\n    raise E(c)\nexcept E as e:\n    err = e\nc"}"#;
    let response = server.eval(code);
    assert_eq!(response.status, 200);
    assert!(
        response.body.len() <= 5 * (1 << 20) + 64 * 1024,
        "{} bytes",
        response.body.len()
    );
    let outcome = response.json();
    assert_eq!(outcome["stdout_truncated"], true);
    assert!(outcome["stdout"]
        .as_str()
        .unwrap()
        .ends_with("[cut to fit the server's response limit]"));
    // Ordinary output is not touched.
    assert_eq!(
        server.eval(r#"{"code": "print('hi')"}"#).json()["stdout"],
        "hi\n"
    );
}

#[test]
fn what_a_web_page_could_send_is_refused() {
    let server = Server::start(&[]);
    let host = format!("Host: {}", server.addr);
    let json = "Content-Type: application/json".to_owned();
    let body = r#"{"code": "1"}"#;
    // A form or a script's simple request: text/plain needs no preflight.
    let plain = server.send_raw(
        "POST",
        "/v1/eval",
        &[host.clone(), "Content-Type: text/plain".into()],
        body,
    );
    assert_eq!(
        (plain.status, plain.kind()),
        (415, "unsupported_media_type".to_owned())
    );
    let untyped = server.send_raw("POST", "/v1/eval", std::slice::from_ref(&host), body);
    assert_eq!(untyped.status, 415);
    let origin = server.send_raw(
        "POST",
        "/v1/eval",
        &[
            host.clone(),
            json.clone(),
            "Origin: http://evil.example".into(),
        ],
        body,
    );
    assert_eq!(
        (origin.status, origin.kind()),
        (403, "forbidden_origin".to_owned())
    );
    // DNS rebinding: a page's own host name resolving to 127.0.0.1.
    let rebound = server.send_raw(
        "POST",
        "/v1/eval",
        &["Host: evil.example:8000".into(), json.clone()],
        body,
    );
    assert_eq!(
        (rebound.status, rebound.kind()),
        (403, "forbidden_host".to_owned())
    );
    for host in ["localhost:8000", "127.0.0.1", "[::1]:8000"] {
        let ok = server.send_raw(
            "POST",
            "/v1/eval",
            &[format!("Host: {host}"), json.clone()],
            body,
        );
        assert_eq!(ok.status, 200, "{host}");
    }
}

#[test]
fn sigterm_does_not_wait_for_idle_or_stalled_connections() {
    let server = Server::start(&["--header-timeout", "60"]);
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"POST /v1/eval HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let _idle = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_memory_budget_is_the_operators_to_set() {
    let refused = Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory-budget", "0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--memory-budget"));
    // 64 MiB for all instances: 100 MB fails inside one, though its own cap is 256 MiB.
    let server = Server::start(&["--memory-budget", "64"]);
    let grown = server.eval(r#"{"code": "x = bytearray(100 << 20)"}"#);
    let outcome = grown.json();
    let failed = outcome["error"]["type_name"] == "MemoryError"
        || outcome["error"]["kind"] == "memory_budget";
    assert!(failed, "{}", grown.body);
    assert_eq!(
        server.eval(r#"{"code": "'alive'"}"#).json()["value"],
        "'alive'"
    );
}

#[test]
fn served_code_calls_the_tools_of_a_configured_mcp_server() {
    let server_program = std::env::var("PYEVAL_MCP_EVERYTHING")
        .expect("PYEVAL_MCP_EVERYTHING names mcp-server-everything (`just test` installs it)");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let servers = serde_json::json!({"mcpServers": {"everything": {"command": server_program, "args": ["stdio"]}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let server = Server::start(&["--tools-config", config.to_str().unwrap()]);
    let listed = server.request("GET", "/v1/tools", "").json();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"everything.echo"), "{names:?}");
    let stubs = listed["stubs"].as_str().unwrap();
    assert!(stubs.contains("class everything:"), "{stubs}");
    assert!(
        stubs.contains("async def echo(*, message: str) -> Any:"),
        "{stubs}"
    );
    let called = server.eval(r#"{"code": "(await everything.echo(message='served'))"}"#);
    assert_eq!(called.json()["value"], "'Echo: served'", "{}", called.body);
    // A request may narrow what it is granted, never widen it.
    let narrowed = server.eval(r#"{"code": "everything", "tools": ["everything.echo"]}"#);
    assert_eq!(
        narrowed.json()["value"],
        "<tools everything: echo>",
        "{}",
        narrowed.body
    );
    let none = server.eval(r#"{"code": "everything", "tools": []}"#);
    assert_eq!(
        none.json()["error"]["type_name"],
        "NameError",
        "{}",
        none.body
    );
    let widened = server.eval(r#"{"code": "1", "tools": ["github"]}"#);
    assert_eq!(widened.status, 400, "{}", widened.body);
}

/// A streamed evaluation's server-sent events, read as they come.
struct EventStream {
    reader: BufReader<TcpStream>,
    status: u16,
    /// Body bytes read but not yet made events of.
    buffered: String,
}

impl EventStream {
    /// `POST path` with `body`, asking for a stream of events.
    fn open(client: &Client, path: &str, body: &str) -> EventStream {
        let mut stream = TcpStream::connect(client.addr).unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            client.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        EventStream {
            reader,
            status,
            buffered: String::new(),
        }
    }

    /// The next event, `(name, data as JSON)`; none when the stream ended. (Chunked
    /// transfer coding: a size line in hex, the bytes, a line end.)
    fn next(&mut self) -> Option<(String, serde_json::Value)> {
        loop {
            if let Some((event, rest)) = self.buffered.split_once("\n\n") {
                let (event, rest) = (event.to_owned(), rest.to_owned());
                self.buffered = rest;
                let mut name = String::from("message");
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let mut size = String::new();
            if self.reader.read_line(&mut size).unwrap() == 0 {
                return None;
            }
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                return None;
            }
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            self.buffered
                .push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        }
    }

    /// The next event, which must be named `name`.
    fn expect(&mut self, name: &str) -> serde_json::Value {
        let (got, data) = self.next().expect("the stream ended");
        assert_eq!(got, name, "{data}");
        data
    }
}

/// `POST /v1/calls/{id}` for the `call` event `call`, with `answer` as its body.
fn answer_call(client: &Client, call: &serde_json::Value, answer: &str) -> Response {
    let id = call["id"].as_str().unwrap();
    client.request("POST", &format!("/v1/calls/{id}"), answer)
}

#[test]
fn a_streamed_evaluation_sends_output_as_it_comes_and_calls_the_clients_tools() {
    let server = Server::start(&[]);
    let body = serde_json::json!({
        "code": "import sys\nprint('first')\nprint('oops', file=sys.stderr)\n\
                 answer = await ask(question='ready?')\nprint(answer)\n\
                 from tools import ToolError\n\
                 try:\n    await ask(question='fail')\nexcept ToolError as e:\n    print('error:', e)\n\
                 'done'",
        "client_tools": [{"name": "ask", "description": "Asks the client.",
                          "parameters": {"type": "object",
                                         "properties": {"question": {"type": "string"}},
                                         "required": ["question"]}}],
    });
    let mut events = EventStream::open(&server, "/v1/eval", &body.to_string());
    assert_eq!(events.status, 200);
    // The output written before the call reaches the client before the call does.
    assert_eq!(events.expect("stdout")["text"], "first\n");
    assert_eq!(events.expect("stderr")["text"], "oops\n");
    let call = events.expect("call");
    assert_eq!(call["tool"], "ask");
    assert_eq!(call["arguments"], serde_json::json!({"question": "ready?"}));
    let answered = answer_call(&server, &call, r#"{"result": "yes"}"#);
    assert_eq!(answered.status, 204, "{}", answered.body);
    // An answer is taken once.
    let again = answer_call(&server, &call, r#"{"result": "no"}"#);
    assert_eq!((again.status, again.kind()), (404, "unknown_call".into()));
    assert_eq!(events.expect("stdout")["text"], "yes\n");
    let call = events.expect("call");
    let failed = answer_call(&server, &call, r#"{"error": "no luck"}"#);
    assert_eq!(failed.status, 204);
    assert_eq!(events.expect("stdout")["text"], "error: no luck\n");
    let outcome = events.expect("outcome");
    assert_eq!(outcome["value"], "'done'");
    assert_eq!(outcome["stdout"], "first\nyes\nerror: no luck\n");
    assert!(events.next().is_none());

    // A failure after the stream began is its last event, with the status it would have had.
    let mut events = EventStream::open(
        &server,
        "/v1/eval",
        r#"{"code": "print('start')\nimport time\ntime.sleep(5)", "limits": {"timeout_ms": 300}}"#,
    );
    assert_eq!(events.expect("stdout")["text"], "start\n");
    let error = events.expect("error");
    assert_eq!(
        (error["status"].as_u64(), error["error"]["kind"].as_str()),
        (Some(408), Some("timeout"))
    );
}

#[test]
fn client_tools_are_checked_and_a_client_that_never_answers_costs_only_the_deadline() {
    let server = Server::start(&[]);
    let tool = |name: &str| serde_json::json!([{"name": name}]);
    // Declared tools need a stream to be called over.
    let plain =
        server.eval(&serde_json::json!({"code": "1", "client_tools": tool("ask")}).to_string());
    assert_eq!((plain.status, plain.kind()), (400, "bad_request".into()));
    for bad in [
        tool("not a name"),
        serde_json::json!([{"name": "a"}, {"name": "a"}]),
    ] {
        let body = serde_json::json!({"code": "1", "client_tools": bad}).to_string();
        let events = EventStream::open(&server, "/v1/eval", &body);
        assert_eq!(events.status, 400, "{bad}");
    }
    let unknown = server.request("POST", "/v1/calls/nothing", r#"{"result": 1}"#);
    assert_eq!(unknown.status, 404);
    let malformed = server.request("POST", "/v1/calls/nothing", r#"{"value": 1}"#);
    assert_eq!(malformed.status, 400);

    // A call never answered: the evaluation ends at its deadline.
    let body = serde_json::json!({
        "code": "await ask()", "client_tools": tool("ask"), "limits": {"timeout_ms": 500},
    });
    let mut events = EventStream::open(&server, "/v1/eval", &body.to_string());
    let call = events.expect("call");
    assert_eq!(events.expect("error")["error"]["kind"], "timeout");
    // Its call was given up with it.
    let late = answer_call(&server, &call, r#"{"result": 1}"#);
    assert_eq!(late.status, 404);

    // A client that goes away mid-call cancels the evaluation and gives up its call.
    let body = serde_json::json!({"code": "await ask()", "client_tools": tool("ask")});
    let mut events = EventStream::open(&server, "/v1/eval", &body.to_string());
    let call = events.expect("call");
    drop(events);
    let started = Instant::now();
    loop {
        let late = answer_call(&server, &call, r#"{"result": 1}"#);
        if late.status == 404 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the call still waits"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.eval(r#"{"code": "1 + 1"}"#).json()["value"], "2");
}

#[test]
fn a_sessions_evaluations_may_be_streamed_and_call_its_clients_tools() {
    let server = Server::start(&[]);
    let opened = server.request(
        "POST",
        "/v1/sessions",
        r#"{"client_tools": [{"name": "double", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}]}"#,
    );
    assert_eq!(opened.status, 201, "{}", opened.body);
    let path = format!(
        "/v1/sessions/{}/eval",
        opened.json()["id"].as_str().unwrap()
    );
    let mut events = EventStream::open(
        &server,
        &path,
        r#"{"code": "y = await double(x=21)\nprint(y)"}"#,
    );
    let call = events.expect("call");
    assert_eq!(call["arguments"]["x"], 21);
    answer_call(&server, &call, r#"{"result": 42}"#);
    assert_eq!(events.expect("stdout")["text"], "42\n");
    assert_eq!(events.expect("outcome")["stdout"], "42\n");
    // Not streamed: the session keeps its state, and its client's tools cannot be called.
    let plain = server.request("POST", &path, r#"{"code": "print(y)\nawait double(x=1)"}"#);
    let outcome = plain.json();
    assert_eq!(outcome["stdout"], "42\n");
    assert_eq!(outcome["error"]["type_name"], "tools.ToolError");
    assert!(outcome["error"]["message"]
        .as_str()
        .unwrap()
        .contains("text/event-stream"));
}

#[test]
fn a_streams_events_hold_response_memory_and_past_it_the_evaluation_stops() {
    let server = Server::start(&["--response-memory", "1", "--max-output", "30000000"]);
    // A client that does not read while its evaluation writes 25 MB: once the sockets'
    // buffers are full, the events waiting hold all the response memory, and the
    // evaluation is stopped; the stream says why.
    let body = r#"{"code": "for _ in range(250):\n    print('x' * 100_000)\nprint('never')"}"#;
    let mut events = EventStream::open(&server, "/v1/eval", body);
    std::thread::sleep(Duration::from_secs(3));
    let mut streamed = 0;
    let (name, data) = loop {
        match events.next().expect("the stream ended early") {
            (name, data) if name == "stdout" => streamed += data["text"].as_str().unwrap().len(),
            other => break other,
        }
    };
    assert_eq!(name, "error", "{data}");
    assert_eq!(
        (data["status"].as_u64(), data["error"]["kind"].as_str()),
        (Some(503), Some("server_busy"))
    );
    assert!(streamed < 25_000_000, "{streamed}");
    assert!(events.next().is_none());
    // The memory came back: output in pieces streams whole (its events and its outcome
    // together fit in the memory even if none had been written yet).
    let body = r#"{"code": "for _ in range(20):\n    print('y' * 20_000)\n'done'"}"#;
    let mut events = EventStream::open(&server, "/v1/eval", body);
    let mut streamed = 0;
    let outcome = loop {
        match events.next().expect("the stream ended early") {
            (name, data) if name == "stdout" => streamed += data["text"].as_str().unwrap().len(),
            (name, data) => break (name, data),
        }
    };
    assert_eq!(outcome.0, "outcome", "{}", outcome.1);
    assert_eq!(streamed, 20 * 20_001);
}

#[test]
fn files_go_in_as_base64_come_out_in_the_outcome_and_sessions_serve_theirs() {
    let server = Server::start(&[]);
    // "a,b\n1,2\n" in base64.
    let outcome = server.eval(
        r#"{"code": "import csv\nrows = list(csv.reader(open('in/t.csv')))\nopen('out.json', 'w').write(str(len(rows)))",
            "files": {"in/t.csv": "YSxiCjEsMgo="}}"#,
    );
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    let json = outcome.json();
    assert_eq!(json["files"][0]["path"], "out.json");
    assert_eq!(json["files"][0]["data"], "Mg==");
    assert_eq!(json["files"][0]["media_type"], "application/json");
    assert_eq!(json["files_dropped"], 0);

    for (body, kind) in [
        (
            r#"{"code": "1", "files": {"x": "not base64!"}}"#,
            "bad_request",
        ),
        (r#"{"code": "1", "files": {"../x": ""}}"#, "invalid_files"),
    ] {
        let refused = server.eval(body);
        assert_eq!(
            (refused.status, refused.kind()),
            (400, kind.to_owned()),
            "{body}"
        );
    }

    let id = server
        .request("POST", "/v1/sessions", r#"{"files": {"a.txt": "YQ=="}}"#)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = |path: &str| format!("/v1/sessions/{id}/files/{path}");
    let put = server.send_raw(
        "PUT",
        &file("dir/b.txt"),
        &[format!("Host: {}", server.addr)],
        "bee",
    );
    assert_eq!(put.status, 204, "{}", put.body);
    let eval = server.request(
        "POST",
        &format!("/v1/sessions/{id}/eval"),
        r#"{"code": "open('c.csv', 'w').write(open('a.txt').read() + open('dir/b.txt').read())"}"#,
    );
    assert_eq!(eval.json()["files"][0]["path"], "c.csv");
    let got = server.request("GET", &file("c.csv"), "");
    assert_eq!((got.status, got.body.as_str()), (200, "abee"));
    assert_eq!(got.header("content-type"), Some("text/csv"));
    let bad = server.send_raw(
        "PUT",
        &file("a//b.txt"),
        &[format!("Host: {}", server.addr)],
        "x",
    );
    assert_eq!((bad.status, bad.kind()), (400, "invalid_files".to_owned()));
    let missing = server.request("GET", &file("nope.txt"), "");
    assert_eq!(
        (missing.status, missing.kind()),
        (404, "no_such_file".to_owned())
    );
    let unknown = server.request("GET", "/v1/sessions/nope/files/a.txt", "");
    assert_eq!(
        (unknown.status, unknown.kind()),
        (404, "unknown_session".to_owned())
    );
}

#[test]
fn request_bodies_hold_their_share_of_the_response_memory() {
    // 1 MiB for bodies and responses in flight: a body that says it is larger is refused
    // before it is read (it would fit the body limit, which makes room for files).
    let server = Server::start(&["--response-memory", "1"]);
    let refused = declared_body_only(&server, 3 << 19);
    assert_eq!(
        (refused.status, refused.kind()),
        (503, "server_busy".to_owned())
    );
    assert_eq!(server.eval(r#"{"code": "1 + 1"}"#).json()["value"], "2");
}

#[test]
fn the_operator_grants_the_network_and_a_request_may_give_it_up() {
    let port = ok_server::start();
    let rule = format!("127.0.0.1:{port}");
    let server = Server::start(&["--allow-host", &rule, "--allow-address", "127.0.0.1"]);
    let code = format!(
        "import urllib.request\\nurllib.request.urlopen('http://127.0.0.1:{port}/').read()"
    );
    let granted = server.eval(&format!(r#"{{"code": "{code}"}}"#));
    assert_eq!(granted.json()["value"], "b'ok'", "{}", granted.body);
    let given_up = server.eval(&format!(r#"{{"code": "{code}", "network": false}}"#));
    let error = &given_up.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no network is granted"),
        "{error}"
    );
    let session = server.request("POST", "/v1/sessions", r#"{"network": false}"#);
    assert_eq!(session.status, 201, "{}", session.body);
    // Some of the operator's rules, by name; one it did not grant is refused.
    let named = server.eval(&format!(r#"{{"code": "{code}", "network": ["{rule}"]}}"#));
    assert_eq!(named.json()["value"], "b'ok'", "{}", named.body);
    let widened = server.eval(&format!(
        r#"{{"code": "{code}", "network": ["{rule}", "*"]}}"#
    ));
    assert_eq!(widened.status, 400);
    assert!(
        widened.body.contains("grants no host rule"),
        "{}",
        widened.body
    );
}

#[test]
fn a_session_dumped_by_one_server_goes_on_in_another() {
    let first = Server::start(&[]);
    let opened = first.request("POST", "/v1/sessions", "");
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    let eval = |server: &Server, id: &str, code: &str| {
        server.request(
            "POST",
            &format!("/v1/sessions/{id}/eval"),
            &serde_json::json!({ "code": code }).to_string(),
        )
    };
    eval(&first, &id, "x = 41\ndef f(): return x + 1");
    let (status, dump) =
        first.send_bytes("GET", &format!("/v1/sessions/{id}/dump"), "text/plain", b"");
    assert_eq!(status, 200);
    let (status, _) = first.send_bytes("GET", "/v1/sessions/nope/dump", "text/plain", b"");
    assert_eq!(status, 404);
    drop(first);

    let second = Server::start(&[]);
    // The dump as the body...
    let (status, body) =
        second.send_bytes("POST", "/v1/sessions", "application/octet-stream", &dump);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = id["id"].as_str().unwrap();
    assert_eq!(eval(&second, id, "f()").json()["value"], "42");
    // ... or in base64 beside the other fields of a session request.
    use base64::Engine as _;
    let request = serde_json::json!({
        "dump": base64::engine::general_purpose::STANDARD.encode(&dump),
        "limits": {"fuel": 5_000_000},
    });
    let opened = second.request("POST", "/v1/sessions", &request.to_string());
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(eval(&second, &id, "x").json()["value"], "41");
    assert_eq!(
        eval(&second, &id, "while True: pass").kind(),
        "fuel_exhausted"
    );
    // A damaged dump, and a body of another kind.
    let (status, body) = second.send_bytes(
        "POST",
        "/v1/sessions",
        "application/octet-stream",
        &dump[..dump.len() / 2],
    );
    let failure: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, failure["error"]["kind"].as_str()),
        (400, Some("invalid_dump"))
    );
    let (status, _) = second.send_bytes("POST", "/v1/sessions", "text/plain", b"x = 1");
    assert_eq!(status, 415);
}

#[test]
fn replicas_share_sessions_through_the_store_and_outlive_each_other() {
    let redis = redis::Redis::start();
    let replica = || Server::start(&["--session-store", &redis.url, "--timeout", "1"]);
    let (a, b) = (replica(), replica());
    let eval = |server: &Server, id: &str, code: &str| {
        server.request(
            "POST",
            &format!("/v1/sessions/{id}/eval"),
            &serde_json::json!({ "code": code }).to_string(),
        )
    };
    let opened = a.request("POST", "/v1/sessions", r#"{"env": {"WHO": "tester"}}"#);
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    eval(&a, &id, "import os\nx = 1");
    // Each replica goes on from the other's last change, with the session's grants.
    assert_eq!(
        eval(&b, &id, "x += 1\nx, os.environ['WHO']").json()["value"],
        "(2, 'tester')"
    );
    assert_eq!(eval(&a, &id, "x += 1\nx").json()["value"], "3");
    assert_eq!(eval(&b, &id, "x").json()["value"], "3");
    // A file given through one replica is the session's on the others.
    let put = a.send(
        "PUT",
        &format!("/v1/sessions/{id}/files/notes.txt"),
        &["Content-Type: text/plain"],
        "kept",
    );
    assert_eq!(put.status, 204, "{}", put.body);
    assert_eq!(
        eval(&b, &id, "open('notes.txt').read()").json()["value"],
        "'kept'"
    );
    assert_eq!(
        a.request("GET", &format!("/v1/sessions/{id}/files/notes.txt"), "")
            .body,
        "kept"
    );
    // One replica at a time runs a session.
    let running = eval_in_background(
        &a,
        &format!("/v1/sessions/{id}/eval"),
        r#"{"code": "import time\ntime.sleep(0.7)\nx = 10"}"#,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(eval(&b, &id, "x").kind(), "session_busy");
    assert_eq!(running.join().unwrap().status, 200);
    assert_eq!(eval(&b, &id, "x").json()["value"], "10");
    // A replica killed in the middle of an evaluation: the others go on from the state
    // before it, once its lease has lapsed.
    let killed = eval_in_background(
        &a,
        &format!("/v1/sessions/{id}/eval"),
        r#"{"code": "x = 99\nimport time\ntime.sleep(5)"}"#,
    );
    std::thread::sleep(Duration::from_millis(300));
    drop(a);
    let _ = killed.join();
    let started = Instant::now();
    let value = loop {
        let response = eval(&b, &id, "x");
        if response.status == 200 {
            break response.json()["value"].clone();
        }
        assert_eq!(response.kind(), "session_busy", "{}", response.body);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the lease never lapsed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value, "10");
    // A new replica serves it too; a stop ends it for every replica; closing forgets it.
    let c = replica();
    assert_eq!(eval(&c, &id, "x * 2").json()["value"], "20");
    assert_eq!(eval(&c, &id, "while True: pass").kind(), "fuel_exhausted");
    assert_eq!(eval(&b, &id, "x").kind(), "session_ended");
    let other = b.request("POST", "/v1/sessions", "");
    let other = other.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.request("DELETE", &format!("/v1/sessions/{other}"), "")
            .status,
        204
    );
    assert_eq!(eval(&b, &other, "1").kind(), "unknown_session");
}

#[test]
fn a_client_suspends_an_evaluation_at_a_call_and_resumes_it_later() {
    let server = Server::start(&[]);
    let ask = serde_json::json!([{"name": "approve", "description": "Asks a person.",
        "parameters": {"type": "object", "properties": {"amount": {"type": "integer"}}}}]);
    let body = serde_json::json!({
        "code": "print('asking')\nok = await approve(amount=3)\nprint('approved:', ok)\nok",
        "client_tools": ask,
    });
    let mut events = EventStream::open(&server, "/v1/eval", &body.to_string());
    assert_eq!(events.expect("stdout")["text"], "asking\n");
    let call = events.expect("call");
    let answered = answer_call(&server, &call, r#"{"suspend": "a person decides"}"#);
    assert_eq!(answered.status, 204, "{}", answered.body);
    let suspended = events.expect("suspended");
    assert_eq!(
        (
            &suspended["tool"],
            &suspended["arguments"],
            &suspended["reason"]
        ),
        (
            &serde_json::json!("approve"),
            &serde_json::json!({"amount": 3}),
            &serde_json::json!("a person decides")
        )
    );
    assert!(events.next().is_none());
    // Later (another server would do): the answer, and the same tools.
    let resume = serde_json::json!({
        "suspension": suspended["suspension"], "result": true, "client_tools": ask,
    });
    let resumed = server.request("POST", "/v1/resume", &resume.to_string());
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.json()["stdout"], "asking\napproved: True\n");
    let session = resumed.header("location").unwrap().to_owned();
    let after = server.request("POST", &format!("{session}/eval"), r#"{"code": "ok"}"#);
    assert_eq!(after.json()["value"], "True");
    // Streamed, the session's id comes as an event before the outcome.
    let mut events = EventStream::open(&server, "/v1/resume", &resume.to_string());
    assert_eq!(events.expect("stdout")["text"], "asking\n");
    assert_eq!(events.expect("stdout")["text"], "approved: True\n");
    assert!(events.expect("session")["id"].is_string());
    assert_eq!(events.expect("outcome")["value"], "True");
    let bad = server.request(
        "POST",
        "/v1/resume",
        r#"{"suspension": "bm90IGEgc3VzcGVuc2lvbg=="}"#,
    );
    assert_eq!((bad.status, bad.kind()), (400, "invalid_dump".to_owned()));
}

#[test]
fn a_dump_may_be_larger_than_other_bodies() {
    // Bodies with files are refused past about 2 MiB here; a session's dump may be as
    // large as its memory.
    let server = Server::start(&["--max-files", "0", "--max-file-bytes", "0"]);
    let opened = server.request("POST", "/v1/sessions", "");
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    let code = serde_json::json!({"code": "import os\nnoise = os.urandom(3 << 20)\nlen(noise)"});
    server.request(
        "POST",
        &format!("/v1/sessions/{id}/eval"),
        &code.to_string(),
    );
    let (status, dump) =
        server.send_bytes("GET", &format!("/v1/sessions/{id}/dump"), "text/plain", b"");
    assert_eq!(status, 200);
    assert!(dump.len() > 3 << 20, "{} bytes", dump.len());
    let (status, body) =
        server.send_bytes("POST", "/v1/sessions", "application/octet-stream", &dump);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let refused = declared_body_only(&server, dump.len());
    assert_eq!(
        (refused.status, refused.kind()),
        (413, "body_too_large".to_owned())
    );
}
