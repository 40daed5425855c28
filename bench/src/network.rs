//! Network egress: one HTTP request to a local server from evaluated code (urllib, through
//! the host's `wasi:http`) against the same request from native python3, and what
//! granting the network costs a fresh evaluation that sends nothing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pyeval::network::Network;
use pyeval::{Evaluator, Grants, Limits};
use serde_json::{json, Value};

/// Requests timed per run.
const REQUESTS: usize = 50;
/// Runs; the median is reported.
const REPEATS: usize = 9;

/// A server on 127.0.0.1 answering every request with a 2-byte body; its port.
fn serve() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut chunk = [0; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    Ok(port)
}

/// `REQUESTS` GETs of `url` with urllib, timed inside Python (as milliseconds, printed).
fn requests_code(url: &str) -> String {
    format!(
        "import time, urllib.request\n\
         urllib.request.urlopen('{url}').read()\n\
         t = time.perf_counter()\n\
         for _ in range({REQUESTS}):\n    urllib.request.urlopen('{url}').read()\n\
         print((time.perf_counter() - t) * 1e3)\n"
    )
}

/// The measurements, as JSON, and the table's rows.
pub fn measure(evaluator: &Evaluator) -> Result<(Value, Vec<String>)> {
    let port = serve()?;
    let url = format!("http://127.0.0.1:{port}/");
    let network = Network::new()
        .allow_host(format!("127.0.0.1:{port}").parse()?)
        .allow_addresses("127.0.0.1".parse()?);
    let grants = Grants::new().with_network(network);
    let limits = Limits::default();
    // print(1) in a fresh instance, granted the network (sending nothing) or not: first,
    // before requests leave the pool's slots with more written pages to restore.
    let fresh = |grants: &Grants| -> Result<Duration> {
        let mut runs = (0..500)
            .map(|_| {
                let started = Instant::now();
                evaluator.eval_with("print(1)", &limits, grants)?;
                Ok(started.elapsed())
            })
            .collect::<Result<Vec<_>>>()?;
        runs.sort();
        Ok(runs[runs.len() / 2])
    };
    fresh(&grants)?;
    let plain_p50 = fresh(&Grants::new())?;
    let granted_p50 = fresh(&grants)?;

    let code = requests_code(&url);
    let per_request = |stdout: &str| -> Result<f64> {
        let ms: f64 = stdout.trim().parse().context("a time")?;
        Ok(ms / REQUESTS as f64)
    };
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let sandboxed = median(
        (0..REPEATS)
            .map(|_| {
                let outcome = evaluator.eval_with(&code, &limits, &grants)?;
                anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
                per_request(&outcome.stdout)
            })
            .collect::<Result<Vec<_>>>()?,
    );
    let native = median(
        (0..REPEATS)
            .map(|_| {
                let out = std::process::Command::new("python3")
                    .args(["-c", &code])
                    .output()?;
                anyhow::ensure!(out.status.success(), "native python3 failed");
                per_request(&String::from_utf8_lossy(&out.stdout))
            })
            .collect::<Result<Vec<_>>>()?,
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let results = json!({
        "urllib_get_local_ms": sandboxed,
        "native_python3_urllib_get_local_ms": native,
        "ratio": sandboxed / native,
        "fresh_print_1_granted_network_p50_ms": ms(granted_p50),
        "fresh_print_1_p50_ms": ms(plain_p50),
        "granted_over_plain_fresh_p50": granted_p50.as_secs_f64() / plain_p50.as_secs_f64(),
    });
    let rows = vec![
        format!(
            "| urllib GET to a local server, per request (median of {REPEATS} x {REQUESTS}): evaluator / native python3 | {sandboxed:.3} / {native:.3} ms ({:.1}x) |",
            sandboxed / native
        ),
        format!(
            "| fresh print(1) granted the network (no request), p50 | {:.3} ms ({:.3} ms without) |",
            ms(granted_p50),
            ms(plain_p50)
        ),
    ];
    Ok((results, rows))
}
