//! `pyeval serve`'s API under load on loopback: the server in this process, clients on
//! keep-alive connections, bounded in time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pyeval::Evaluator;
use pyeval_server::Policy;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long each load runs.
const WINDOW: Duration = Duration::from_secs(3);
/// The concurrent clients of each load of fresh evaluations.
pub const CLIENTS: [usize; 3] = [1, 8, 64];

/// Latency and throughput of one load.
pub struct Load {
    pub clients: usize,
    pub requests: usize,
    pub per_s: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Responses with a status other than the one expected.
    pub errors: usize,
}

impl Load {
    pub fn json(&self) -> Value {
        json!({
            "clients": self.clients,
            "requests": self.requests,
            "per_s": self.per_s,
            "p50_ms": self.p50.as_secs_f64() * 1e3,
            "p99_ms": self.p99.as_secs_f64() * 1e3,
            "errors": self.errors,
        })
    }
}

/// A keep-alive HTTP/1.1 connection that sends JSON and reads a status and a body.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }

    async fn send(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line.split(' ').nth(1).context("no status line")?.parse()?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8(body)?))
    }
}

/// A server on an ephemeral loopback port of the current runtime, with the sessions kept
/// in `store` or in memory only: its address, what stops it, and its task.
async fn start(
    evaluator: &Evaluator,
    store: Option<pyeval_server::SessionStore>,
) -> Result<(SocketAddr, Stop)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pyeval_server::http::serve(
        listener,
        evaluator.clone(),
        Policy::default(),
        None,
        store,
        async {
            let _ = stopped.await;
        },
    ));
    Ok((addr, Stop { stop, server }))
}

/// Stops a server [`start`] started.
struct Stop {
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stop {
    async fn now(self) -> Result<()> {
        let _ = self.stop.send(());
        Ok(self.server.await??)
    }
}

/// Runs the server on an ephemeral loopback port, then `loads` against it.
pub fn measure(evaluator: &Evaluator) -> Result<(Vec<Load>, Load)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (addr, stop) = start(evaluator, None).await?;
        // Warm up.
        let mut warm = Connection::open(addr).await?;
        for _ in 0..50 {
            warm.send("POST", "/v1/eval", r#"{"code": "print(1)"}"#)
                .await?;
        }
        let mut fresh = Vec::new();
        for clients in CLIENTS {
            fresh.push(load(addr, clients, fresh_client).await?);
        }
        let mixed = load(addr, 8, mixed_client).await?;
        stop.now().await?;
        Ok((fresh, mixed))
    })
}

/// The median of `runs` session steps (`x += 1`) served over one connection, with the
/// sessions kept in the Redis at `store` or in memory only.
pub fn session_step(evaluator: &Evaluator, store: Option<&str>, runs: usize) -> Result<Duration> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = match store {
            Some(url) => {
                Some(pyeval_server::SessionStore::connect(url, Duration::from_secs(600)).await?)
            }
            None => None,
        };
        let (addr, stop) = start(evaluator, store).await?;
        let mut connection = Connection::open(addr).await?;
        let (status, body) = connection.send("POST", "/v1/sessions", "").await?;
        anyhow::ensure!(status == 201, "opening a session: {status} {body}");
        let id: serde_json::Value = serde_json::from_str(&body)?;
        let path = format!("/v1/sessions/{}/eval", id["id"].as_str().context("an id")?);
        connection
            .send("POST", &path, r#"{"code": "x = 0"}"#)
            .await?;
        let mut steps = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let (status, body) = connection
                .send("POST", &path, r#"{"code": "x += 1"}"#)
                .await?;
            steps.push(started.elapsed());
            anyhow::ensure!(status == 200, "a session step: {status} {body}");
        }
        steps.sort();
        stop.now().await?;
        Ok(steps[steps.len() / 2])
    })
}

/// One client's requests: (latency, whether the status was the expected one).
type Samples = Vec<(Duration, bool)>;

async fn load<F, Fut>(addr: SocketAddr, clients: usize, client: F) -> Result<Load>
where
    F: Fn(SocketAddr, Instant) -> Fut,
    Fut: std::future::Future<Output = Result<Samples>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(addr, started)))
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = started.elapsed();
    if samples.is_empty() {
        bail!("no request completed");
    }
    let mut latencies: Vec<_> = samples.iter().map(|(latency, _)| *latency).collect();
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Ok(Load {
        clients,
        requests: samples.len(),
        per_s: samples.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        errors: samples.iter().filter(|(_, ok)| !ok).count(),
    })
}

/// Fresh `print(1)` evaluations until the window closes.
async fn fresh_client(addr: SocketAddr, started: Instant) -> Result<Samples> {
    let mut connection = Connection::open(addr).await?;
    let mut samples = Vec::new();
    while started.elapsed() < WINDOW {
        let sent = Instant::now();
        let (status, _) = connection
            .send("POST", "/v1/eval", r#"{"code": "print(1)"}"#)
            .await?;
        samples.push((sent.elapsed(), status == 200));
    }
    Ok(samples)
}

/// One request: its latency, whether its status was `expect`, and its body.
async fn timed(
    connection: &mut Connection,
    method: &str,
    path: &str,
    body: &str,
    expect: u16,
) -> Result<(Duration, bool, String)> {
    let sent = Instant::now();
    let (status, response) = connection.send(method, path, body).await?;
    Ok((sent.elapsed(), status == expect, response))
}

/// A mix, in turn: a fresh evaluation, a session (open, two evaluations, close), a
/// timeout, and hostile code (an endless loop on a small budget, a memory bomb).
async fn mixed_client(addr: SocketAddr, started: Instant) -> Result<Samples> {
    const FRESH: &str = r#"{"code": "sum(range(100))"}"#;
    const SLEEPER: &str = r#"{"code": "import time\ntime.sleep(1)", "limits": {"timeout_ms": 20}}"#;
    const ENDLESS: &str = r#"{"code": "while True: pass", "limits": {"fuel": 1000000}}"#;
    const BOMB: &str = r#"{"code": "a = []\nwhile True: a.append(' ' * 10**6)", "limits": {"memory_bytes": 67108864}}"#;
    let mut connection = Connection::open(addr).await?;
    let mut samples = Vec::new();
    while started.elapsed() < WINDOW {
        let (t, ok, _) = timed(&mut connection, "POST", "/v1/eval", FRESH, 200).await?;
        samples.push((t, ok));
        let (t, ok, opened) = timed(&mut connection, "POST", "/v1/sessions", "", 201).await?;
        samples.push((t, ok));
        let id = serde_json::from_str::<Value>(&opened)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let session = format!("/v1/sessions/{id}");
        let in_session = format!("{session}/eval");
        for code in [r#"{"code": "x = 1"}"#, r#"{"code": "x + 1"}"#] {
            let (t, ok, _) = timed(&mut connection, "POST", &in_session, code, 200).await?;
            samples.push((t, ok));
        }
        let (t, ok, _) = timed(&mut connection, "DELETE", &session, "", 204).await?;
        samples.push((t, ok));
        for (body, expect) in [(SLEEPER, 408), (ENDLESS, 422), (BOMB, 200)] {
            let (t, ok, _) = timed(&mut connection, "POST", "/v1/eval", body, expect).await?;
            samples.push((t, ok));
        }
    }
    Ok(samples)
}
