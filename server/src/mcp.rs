//! A Model Context Protocol server with one tool, `run_python`: code runs in a fresh
//! interpreter, or in a named session that keeps its variables between calls of this
//! client. The result is text a model reads well: the output, the value, the traceback.
//! A client that asks for progress (a `progressToken`) gets the output as it is written, in
//! progress notifications.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyeval::{
    EvalError, Evaluator, Grants, InputFile, Limits, LiveOutput, Outcome, OutputFile, Stream,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken, ResourceContents,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    schemars, tool, tool_handler, tool_router, Peer, RoleServer, ServerHandler, ServiceExt,
};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::sessions::{OpenError, Refused, Sessions};

/// The arguments of `run_python`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunPython {
    /// Python 3.13 source to run. The value of a last expression is returned, as in a
    /// notebook cell.
    pub code: String,
    /// A name of your choosing: calls with the same name share variables, imports and
    /// files. Without it, the code runs in a fresh interpreter.
    #[serde(default)]
    pub session: Option<String>,
    /// Files to put in the working directory before the code runs: paths (relative, like
    /// `data.csv`) to their contents as text.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// The `run_python` server: one evaluator, the operator's limits, this client's sessions.
#[derive(Clone)]
pub struct PythonTool {
    evaluator: Evaluator,
    limits: Limits,
    /// What code is granted: the tools of other MCP servers, if any.
    grants: Grants,
    sessions: Arc<Sessions>,
    /// Where named sessions are kept between calls and across restarts, if anywhere.
    session_dir: Option<PathBuf>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PythonTool {
    /// A server whose evaluations run under `limits` with `grants`, with at most
    /// `max_sessions` named sessions, each closed after `idle` unused.
    pub fn new(
        evaluator: Evaluator,
        limits: Limits,
        grants: Grants,
        max_sessions: usize,
        idle: Duration,
    ) -> Self {
        let mut tool_router = Self::tool_router();
        if !grants.tools.is_empty() {
            // The model writing the code reads what it may call in the tool's description.
            if let Some(route) = tool_router.map.get_mut("run_python") {
                let described = route.attr.description.as_deref().unwrap_or_default();
                route.attr.description = Some(
                    format!(
                        "{described}\n\nThe code may call these async functions (top-level \
                         `await` works; `asyncio.gather` runs calls at once):\n\n```python\n{}```",
                        pyeval::tool_stubs(&grants.tools)
                    )
                    .into(),
                );
            }
        }
        PythonTool {
            evaluator,
            limits,
            grants,
            sessions: Arc::new(Sessions::new(max_sessions, idle)),
            session_dir: None,
            tool_router,
        }
    }

    /// This server, keeping each named session in a file of `dir` after each call that
    /// was not stopped (a dump; see `session_file`), and going on from it in a later
    /// process: a desktop assistant's sessions survive its restarts.
    pub fn with_session_dir(mut self, dir: PathBuf) -> Self {
        self.session_dir = Some(dir);
        self
    }

    #[tool(
        description = "Run Python 3.13 code in a sandbox (no network, no host files) and \
                       return what it printed, the value of its last expression and any \
                       traceback. Pass `session` to keep variables between calls, `files` \
                       to give the code files in its working directory; files it writes \
                       there come back (images as images)."
    )]
    async fn run_python(
        &self,
        Parameters(request): Parameters<RunPython>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        // A client that asked for progress is sent the output as it is written.
        let progress = context
            .meta
            .get_progress_token()
            .map(|token| Progress::new(token, context.peer.clone()));
        let live = progress.as_ref().map(Progress::listener);
        let files: Vec<InputFile> = request
            .files
            .iter()
            .map(|(path, text)| InputFile::new(path.clone(), text.clone()))
            .collect();
        let evaluation = async {
            match &request.session {
                None => {
                    let mut grants = self.grants.clone();
                    grants.live_output = live;
                    grants.files = files;
                    Ok(self
                        .evaluator
                        .eval_async(&request.code, &self.limits, &grants)
                        .await)
                }
                Some(name) => self.in_session(name, &request.code, files, live).await,
            }
        };
        let result = tokio::select! {
            result = Progress::forward(progress, evaluation) => result,
            () = context.ct.cancelled() => {
                return CallToolResult::error(vec![ContentBlock::text("[cancelled]\n")]);
            }
        };
        let result = match result {
            Ok(result) => result,
            Err(refused) => return CallToolResult::error(vec![ContentBlock::text(refused)]),
        };
        match result {
            Ok(outcome) => report(&outcome),
            Err(error) => {
                let kept = self.session_dir.is_some();
                let session = request.session.is_some().then_some(kept);
                CallToolResult::error(vec![ContentBlock::text(stopped(&error, session))])
            }
        }
    }
}

/// Output sent to a client as progress notifications while code runs: each piece of
/// output is a notification's message (stderr's marked `[stderr] `), its progress the
/// count of pieces so far.
struct Progress {
    token: ProgressToken,
    peer: Peer<RoleServer>,
    sender: mpsc::UnboundedSender<(Stream, String)>,
    received: mpsc::UnboundedReceiver<(Stream, String)>,
}

impl Progress {
    fn new(token: ProgressToken, peer: Peer<RoleServer>) -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        Progress {
            token,
            peer,
            sender,
            received,
        }
    }

    /// A listener handing output to [`Progress::forward`] (the output limit bounds what
    /// waits in between).
    fn listener(&self) -> LiveOutput {
        let sender = self.sender.clone();
        LiveOutput::new(move |stream, text| {
            let _ = sender.send((stream, text.to_owned()));
        })
    }

    /// Runs `evaluation`, sending its output to the client as it comes (all of it before
    /// the evaluation's result).
    async fn forward<T>(progress: Option<Progress>, evaluation: impl Future<Output = T>) -> T {
        let Some(mut progress) = progress else {
            return evaluation.await;
        };
        tokio::pin!(evaluation);
        let mut sent = 0;
        let result = loop {
            tokio::select! {
                biased;
                Some(piece) = progress.received.recv() => progress.send(piece, &mut sent).await,
                result = &mut evaluation => break result,
            }
        };
        while let Ok(piece) = progress.received.try_recv() {
            progress.send(piece, &mut sent).await;
        }
        result
    }

    async fn send(&self, (stream, text): (Stream, String), sent: &mut u32) {
        *sent += 1;
        let message = match stream {
            Stream::Stdout => text,
            Stream::Stderr => format!("[stderr] {text}"),
        };
        let mut note = ProgressNotificationParam::new(self.token.clone(), f64::from(*sent));
        note.message = Some(message);
        // A client that went away is the evaluation's business, not the notification's.
        let _ = self.peer.notify_progress(note).await;
    }
}

impl PythonTool {
    /// Runs `code` in the session `name`, started on first use (or after a stop); a
    /// refusal is the text the model reads.
    async fn in_session(
        &self,
        name: &str,
        code: &str,
        files: Vec<InputFile>,
        live: Option<LiveOutput>,
    ) -> Result<Result<Outcome, EvalError>, String> {
        let file = self
            .session_dir
            .as_ref()
            .map(|dir| dir.join(file_name(name)));
        if let Some(file) = file
            .as_deref()
            .filter(|_| self.sessions.version(name).is_none())
        {
            let kept = crate::session_file::open(&self.evaluator, file, &self.limits, &self.grants)
                .map_err(|e| format!("[refused]\n{e:#}\n"))?;
            self.sessions
                .put(name, kept, 0)
                .map_err(|refused| refusal(name, refused))?;
        }
        let start = || self.evaluator.session_with(&self.limits, &self.grants);
        match self.sessions.open_named(name, start) {
            Ok(()) => {}
            Err(OpenError::Eval(error)) => return Ok(Err(error)),
            Err(OpenError::Refused(refused)) => return Err(refusal(name, refused)),
        }
        self.sessions
            .with(name, async |session: &mut pyeval::Session| {
                if !files.is_empty() {
                    session.add_files(files)?;
                }
                session.set_live_output(live);
                let outcome = session.eval_async(code).await?;
                if let Some(file) = &file {
                    if let Err(e) = crate::session_file::save(session, file) {
                        eprintln!("pyeval mcp: {e:#}");
                    }
                }
                Ok(outcome)
            })
            .await
            .map_err(|refused| refusal(name, refused))
    }
}

/// The file of the session `name` in a session directory: the name with every byte but
/// ASCII letters, digits, `-` and `_` written as `%XX`, then `.session`.
fn file_name(name: &str) -> String {
    let mut file = String::with_capacity(name.len() + 8);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            file.push(byte as char);
        } else {
            file.push_str(&format!("%{byte:02X}"));
        }
    }
    file + ".session"
}

/// Why the session `name` could not run code, for the model.
fn refusal(name: &str, refused: Refused) -> String {
    match refused {
        Refused::Full(max) => format!(
            "[refused]\n{max} sessions are open, the most this server keeps; run without \
             `session`, or reuse a session's name\n"
        ),
        Refused::Busy => format!(
            "[refused]\nsession {name:?} is running another call; call again when it has \
             finished\n"
        ),
        Refused::Ended(stop) => stopped(&EvalError::SessionEnded(stop), Some(false)),
        Refused::Closed | Refused::Unknown => {
            format!("[refused]\nsession {name:?} was closed; call again to start it afresh\n")
        }
    }
}

/// The outcome as sections a model reads well; an exception makes it a tool error.
fn report(outcome: &Outcome) -> CallToolResult {
    let mut text = String::new();
    let mut section = |title: &str, body: &str| {
        if !body.is_empty() {
            text.push_str(&format!("[{title}]\n{}\n", body.trim_end_matches('\n')));
        }
    };
    section("stdout", &outcome.stdout);
    section("stderr", &outcome.stderr);
    if let Some(value) = &outcome.value {
        section("value", value);
    }
    if let Some(error) = &outcome.error {
        section("traceback", &error.traceback);
    }
    if let Some(code) = outcome.exit_code {
        section("exit status", &code.to_string());
    }
    if outcome.stdout_truncated || outcome.stderr_truncated {
        section("note", "output past the limit was cut");
    }
    let unkept: Vec<String> = outcome
        .files
        .iter()
        .chain(&outcome.charts)
        .filter(|file| file.data.is_none())
        .map(|file| format!("{} ({} bytes)", file.path, file.size))
        .collect();
    if !unkept.is_empty() {
        section(
            "note",
            &format!("files too large to return: {}", unkept.join(", ")),
        );
    }
    if outcome.files_dropped > 0 {
        section(
            "note",
            &format!(
                "{} more changed files were not returned (over the limit on files)",
                outcome.files_dropped
            ),
        );
    }
    if outcome.charts_dropped > 0 {
        section(
            "note",
            &format!(
                "{} more charts were not returned (over the limit on files)",
                outcome.charts_dropped
            ),
        );
    }
    if text.is_empty() {
        text.push_str("(no output)\n");
    }
    let mut content = vec![ContentBlock::text(text)];
    content.extend(outcome.files.iter().filter_map(file_content));
    // Charts are PNG images: image content the model sees.
    content.extend(outcome.charts.iter().filter_map(file_content));
    if outcome.error.is_some() {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

/// A file the code wrote, for the client: an image as image content (so a model sees it),
/// text as an embedded text resource, anything else as an embedded blob; its URI is its
/// path in the sandbox.
fn file_content(file: &OutputFile) -> Option<ContentBlock> {
    use base64::Engine as _;
    let data = file.data.as_ref()?;
    let encode = || base64::engine::general_purpose::STANDARD.encode(data);
    let uri = format!("file:///tmp/{}", file.path);
    let textual = file.media_type.starts_with("text/")
        || ["application/json", "application/xml"].contains(&file.media_type.as_str());
    Some(if file.media_type.starts_with("image/") {
        ContentBlock::image(encode(), &file.media_type)
    } else if let (true, Ok(text)) = (textual, std::str::from_utf8(data)) {
        ContentBlock::resource(ResourceContents::TextResourceContents {
            uri,
            mime_type: Some(file.media_type.clone()),
            text: text.to_owned(),
            meta: None,
        })
    } else {
        ContentBlock::resource(
            ResourceContents::blob(encode(), uri).with_mime_type(&file.media_type),
        )
    })
}

/// A stop, for the model; `session` says whether it happened in a session, and whether
/// that session is kept in a file (its state from before the call goes on).
fn stopped(error: &EvalError, session: Option<bool>) -> String {
    let mut text = format!("[stopped]\n{error}\n");
    match session {
        Some(_) if error.stopped().is_none() => {}
        Some(false) => text
            .push_str("The session's state is lost; the next call with its name starts afresh.\n"),
        Some(true) => text.push_str(
            "The next call with the session's name goes on from its state before this call.\n",
        ),
        None => {}
    }
    text
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PythonTool {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "run_python runs Python 3.13 with its standard library in a WebAssembly sandbox \
             under fuel, memory, time and output limits; files live in memory (/tmp).",
        )
    }
}

/// Serves `tool` over this process's stdin and stdout until the client disconnects.
pub async fn serve_stdio(tool: PythonTool) -> anyhow::Result<()> {
    let sweeper = tool.sessions.sweeper();
    let running = tool.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    sweeper.abort();
    Ok(())
}
