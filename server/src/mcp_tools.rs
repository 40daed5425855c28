//! The tools of other MCP servers, granted to evaluated code: `--tools-config FILE` takes
//! the `{"mcpServers": {...}}` file MCP clients use (servers started as commands, and
//! servers at streamable-HTTP URLs); each server's tools become `server.tool(...)` in the
//! sandbox (`server["tool-name"](...)` for names that are not identifiers), called through
//! rmcp's client.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::http::{HeaderName, HeaderValue};
use pyeval::{Tool, ToolError};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde::Deserialize;
use serde_json::Value;

/// The configuration file: servers by the name code reaches their tools by.
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(rename = "mcpServers")]
    servers: BTreeMap<String, Server>,
}

/// One server: a command speaking MCP on its stdio, or a URL speaking streamable HTTP
/// (with `headers`, such as `Authorization`, sent with every request).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// The connected servers and their tools. The servers live as long as this does.
pub struct McpTools {
    tools: Vec<Tool>,
    _clients: Vec<RunningService<RoleClient, ()>>,
}

impl McpTools {
    /// Starts every server `path` names and lists its tools. Call on the runtime that is
    /// to drive the connections.
    pub async fn connect(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the tools configuration {}", path.display()))?;
        let config: Config = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an mcpServers configuration", path.display()))?;
        let mut tools = Vec::new();
        let mut clients = Vec::new();
        for (name, server) in config.servers {
            let client = start(&name, &server)
                .await
                .with_context(|| format!("MCP server {name:?} of {}", path.display()))?;
            for tool in client
                .list_all_tools()
                .await
                .with_context(|| format!("listing the tools of MCP server {name:?}"))?
            {
                tools.push(remote_tool(&name, &tool, client.peer().clone())?);
            }
            clients.push(client);
        }
        Ok(McpTools {
            tools,
            _clients: clients,
        })
    }

    /// The tools, to grant.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }
}

/// Starts the server `name` and completes the MCP handshake.
async fn start(name: &str, server: &Server) -> Result<RunningService<RoleClient, ()>> {
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("its name must be an identifier: code reaches its tools as {name}.TOOL");
    }
    let program = match (&server.command, &server.url) {
        (Some(program), None) => program,
        (None, Some(url)) => return connect(url, server).await,
        (Some(_), Some(_)) => bail!("it names both a command and a url; give one"),
        (None, None) => bail!("it names neither a command nor a url"),
    };
    let mut command = tokio::process::Command::new(program);
    command.args(&server.args).envs(&server.env);
    // Its log lines are its own, not the evaluated code's output.
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    ().serve(transport)
        .await
        .context("the MCP handshake failed")
}

/// Connects to the server at `url` over streamable HTTP and completes the MCP handshake.
async fn connect(url: &str, server: &Server) -> Result<RunningService<RoleClient, ()>> {
    match server.kind.as_deref() {
        None | Some("http" | "streamable-http" | "streamableHttp") => {}
        Some("sse") => bail!(
            "{url}: the old HTTP+SSE transport is not supported; give the server's \
             streamable HTTP endpoint"
        ),
        Some(other) => bail!("{url}: unknown transport type {other:?}"),
    }
    if !server.args.is_empty() || !server.env.is_empty() {
        bail!("{url}: args and env are for servers started as a command");
    }
    // HTTPS is verified against the system's roots, with ring's cryptography, installed
    // once for the process (a second install is refused, harmlessly). rustls now prefers
    // aws-lc for its post-quantum key exchange, but ring is what wasmtime-wasi-http uses
    // too, and aws-lc takes minutes more to build.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = HashMap::new();
    for (name, value) in &server.headers {
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("{url}: header name {name:?}"))?;
        let value = HeaderValue::try_from(value.as_str())
            .with_context(|| format!("{url}: the value of header {name}"))?;
        headers.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .with_context(|| format!("{url}: the MCP handshake failed"))
}

/// The server `server`'s tool as a pyeval tool named `server.tool`.
fn remote_tool(server: &str, tool: &rmcp::model::Tool, peer: Peer<RoleClient>) -> Result<Tool> {
    let name = tool.name.to_string();
    let description = tool.description.as_deref().unwrap_or_default().to_string();
    let schema = Value::Object((*tool.input_schema).clone());
    let peer = Arc::new(peer);
    let remote = name.clone();
    Ok(Tool::new(
        format!("{server}.{name}"),
        description,
        schema,
        move |arguments: Value| {
            let (peer, name) = (peer.clone(), remote.clone());
            async move {
                let mut params = CallToolRequestParams::new(name);
                if let Value::Object(arguments) = arguments {
                    params = params.with_arguments(arguments);
                }
                let result = peer
                    .call_tool(params)
                    .await
                    .map_err(|e| ToolError::new(format!("the MCP server failed: {e}")))?;
                outcome(result)
            }
        },
    )?)
}

/// What code gets from a call: the structured result if there is one, else the text
/// content (parsed as JSON when it is JSON); an error result is a `ToolError`.
fn outcome(result: CallToolResult) -> pyeval::ToolResult {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(ContentBlock::as_text)
        .map(|text| text.text.as_str())
        .collect();
    let text = text.join("\n");
    if result.is_error == Some(true) {
        return Err(ToolError::new(text));
    }
    if let Some(structured) = result.structured_content {
        return Ok(structured);
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
