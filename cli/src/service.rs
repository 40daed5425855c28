//! `pyeval serve` (the HTTP/JSON API) and `pyeval mcp` (a Model Context Protocol server on
//! stdio), both from the `pyeval-server` crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use pyeval_server::{mcp, ConnectionLimits, Policy};

use crate::args::{BudgetArg, ComponentArg, LimitArgs, NetworkArgs, ToolsArg};

/// Serve the evaluator over HTTP/JSON: POST /v1/eval, sessions under /v1/sessions,
/// GET /healthz and /metrics. The limits are each request's default and the most a request
/// may ask for.
#[derive(Parser, Debug)]
#[command(name = "pyeval serve")]
pub struct ServeCli {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,

    /// A file holding the bearer token every request but /healthz must send. Required
    /// unless the address is a loopback one.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Live interpreters at most (evaluations in flight plus sessions that have run); past
    /// it, requests get 503 with Retry-After at once.
    #[arg(long, value_name = "N", default_value_t = pyeval::DEFAULT_MAX_INSTANCES)]
    max_instances: u32,

    /// Sessions open at once at most.
    #[arg(long, value_name = "N", default_value_t = Policy::default().max_sessions)]
    max_sessions: usize,

    /// Keep sessions in this Redis server too (redis://[:PASSWORD@]HOST[:PORT][/DB]), so
    /// that every replica pointed at it serves every session, and sessions survive a
    /// restart. Each change of a session writes its dump there.
    #[arg(long, value_name = "URL")]
    session_store: Option<String>,

    /// Seconds a client may take to send a request's whole body.
    #[arg(long, value_name = "SECONDS", default_value_t = Policy::default().body_timeout.as_secs_f64())]
    body_timeout: f64,

    /// Connections open at once at most; more are answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = Policy::default().connections.max_connections)]
    max_connections: usize,

    /// Seconds a client may take to send a request's header, and may stay idle between
    /// requests on one connection.
    #[arg(long, value_name = "SECONDS", default_value_t = Policy::default().connections.header_timeout.as_secs_f64())]
    header_timeout: f64,

    /// Seconds a response may wait on a client that does not read it (16 KiB must go out
    /// in each such period).
    #[arg(long, value_name = "SECONDS", default_value_t = Policy::default().connections.write_timeout.as_secs_f64())]
    write_timeout: f64,

    /// MiB that responses in flight may hold at once (those waiting on slow clients
    /// included); past it, evaluations are answered 503.
    #[arg(long, value_name = "MIB", default_value_t = Policy::default().response_memory >> 20)]
    response_memory: usize,

    /// Seconds after which an unused session is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = Policy::default().session_idle.as_secs_f64())]
    session_idle: f64,

    #[command(flatten)]
    component: ComponentArg,

    #[command(flatten)]
    budget: BudgetArg,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    tools: ToolsArg,

    #[command(flatten)]
    network: NetworkArgs,
}

/// Serve a Model Context Protocol server on stdin/stdout with one tool, `run_python`
/// (code, optional session name). The limits apply to every call.
#[derive(Parser, Debug)]
#[command(name = "pyeval mcp")]
pub struct McpCli {
    /// Named sessions kept at most.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_sessions: usize,

    /// Keep each named session in a file of DIR (NAME.session, a dump), written after
    /// each call a limit did not stop: a later `pyeval mcp` goes on from it. The files
    /// hold the interpreter's memory: keep DIR as private as the data the code handles.
    #[arg(long, value_name = "DIR")]
    session_dir: Option<PathBuf>,

    /// Seconds after which an unused session is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = Policy::default().session_idle.as_secs_f64())]
    session_idle: f64,

    #[command(flatten)]
    component: ComponentArg,

    #[command(flatten)]
    budget: BudgetArg,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    tools: ToolsArg,

    #[command(flatten)]
    network: NetworkArgs,
}

pub fn serve(cli: ServeCli) -> Result<u8> {
    let token = match &cli.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            let token = token.trim().to_owned();
            if token.is_empty() {
                bail!("the token file {} is empty", path.display());
            }
            Some(token)
        }
        None if cli.listen.ip().is_loopback() => None,
        None => bail!(
            "{} is reachable from other machines: give --token-file, so that only clients \
             with the token can run code",
            cli.listen
        ),
    };
    let mut policy = Policy {
        limits: cli.limits.limits()?,
        max_sessions: cli.max_sessions,
        session_idle: seconds(cli.session_idle, "--session-idle")?,
        body_timeout: seconds(cli.body_timeout, "--body-timeout")?,
        connections: ConnectionLimits {
            max_connections: cli.max_connections.max(1),
            header_timeout: seconds(cli.header_timeout, "--header-timeout")?,
            write_timeout: seconds(cli.write_timeout, "--write-timeout")?,
            ..Policy::default().connections
        },
        response_memory: cli.response_memory.saturating_mul(1 << 20),
        tools: Vec::new(),
        network: cli.network.network()?,
    };
    let evaluator = cli
        .budget
        .apply(cli.component.builder())?
        .max_instances(cli.max_instances)
        .metered(cli.limits.fuel.needs_metering())
        .on_compile(|| eprintln!("pyeval: compiling the evaluator for this machine (once)"))
        .build()?;
    let runtime = runtime()?;
    let servers = cli.tools.connect(&runtime)?;
    policy.tools = servers.iter().flat_map(|s| s.tools()).cloned().collect();
    runtime.block_on(async move {
        let store = match &cli.session_store {
            Some(url) => Some(
                pyeval_server::SessionStore::connect(url, policy.session_idle)
                    .await
                    .with_context(|| format!("cannot reach the session store at {url}"))?,
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        eprintln!("pyeval: serving on http://{}", listener.local_addr()?);
        pyeval_server::http::serve(listener, evaluator, policy, token, store, shutdown()).await?;
        eprintln!("pyeval: stopped");
        Ok(0)
    })
}

pub fn mcp(cli: McpCli) -> Result<u8> {
    let evaluator = cli
        .budget
        .apply(cli.component.builder())?
        .metered(cli.limits.fuel.needs_metering())
        .build()?;
    let runtime = runtime()?;
    let servers = cli.tools.connect(&runtime)?;
    let mut grants = pyeval::Grants::new();
    grants.tools = servers.iter().flat_map(|s| s.tools()).cloned().collect();
    grants.network = cli.network.network()?;
    let mut tool = mcp::PythonTool::new(
        evaluator,
        cli.limits.limits()?,
        grants,
        cli.max_sessions,
        seconds(cli.session_idle, "--session-idle")?,
    );
    if let Some(dir) = cli.session_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot make the session directory {}", dir.display()))?;
        tool = tool.with_session_dir(dir);
    }
    runtime.block_on(mcp::serve_stdio(tool))?;
    Ok(0)
}

/// A duration flag: seconds above 0.
fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a number of seconds above 0"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Resolves at SIGTERM or Ctrl-C: the server then stops accepting and finishes what is in
/// flight.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("pyeval: shutting down; finishing the requests in flight");
}
