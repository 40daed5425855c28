//! `pyeval mcp` driven by a real MCP client (rmcp's) over the binary's stdio.

mod ok_server;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;

async fn client(args: &[&str]) -> RunningService<RoleClient, ()> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pyeval"));
    command.arg("mcp").args(args);
    let transport = TokioChildProcess::new(command).expect("pyeval mcp starts");
    ().serve(transport)
        .await
        .expect("the MCP handshake succeeds")
}

/// The result of calling `run_python` with `arguments`.
async fn call(client: &rmcp::Peer<RoleClient>, arguments: serde_json::Value) -> CallToolResult {
    let params = CallToolRequestParams::new("run_python")
        .with_arguments(arguments.as_object().unwrap().clone());
    client.call_tool(params).await.expect("the call completes")
}

/// A call's content blocks as JSON, as the client receives them.
fn blocks(result: &CallToolResult) -> serde_json::Value {
    serde_json::to_value(&result.content).unwrap()
}

async fn run(client: &rmcp::Peer<RoleClient>, arguments: serde_json::Value) -> (bool, String) {
    let result = call(client, arguments).await;
    let text = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(text) => text.text.clone(),
            other => panic!("unexpected content {other:?}"),
        })
        .collect();
    (result.is_error == Some(true), text)
}

/// The stdout of a command that must have succeeded (its stderr shown if it did not).
fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn run_python_with_sessions_and_errors() {
    let client = client(&["--fuel", "100_000_000"]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "run_python");
    let schema = serde_json::to_string(&tools[0].input_schema).unwrap();
    assert!(
        schema.contains("\"code\"") && schema.contains("\"session\""),
        "{schema}"
    );

    let (failed, text) = run(&client, json!({"code": "print('hi')\n6 * 7"})).await;
    assert!(!failed);
    assert_eq!(text, "[stdout]\nhi\n[value]\n42\n");

    // A session keeps its variables between calls; a fresh run does not see them.
    run(&client, json!({"code": "total = 40", "session": "s"})).await;
    let (_, kept) = run(&client, json!({"code": "total + 2", "session": "s"})).await;
    assert_eq!(kept, "[value]\n42\n");
    let (failed, fresh) = run(&client, json!({"code": "total"})).await;
    assert!(failed);
    assert!(
        fresh.contains("NameError: name 'total' is not defined"),
        "{fresh}"
    );

    // An exception is a tool error with its traceback.
    let (failed, raised) = run(&client, json!({"code": "1 / 0"})).await;
    assert!(failed);
    assert!(
        raised.starts_with("[traceback]\nTraceback (most recent call last):"),
        "{raised}"
    );
    assert!(raised.contains("ZeroDivisionError: division by zero"));

    // A stop is a tool error too; the session starts afresh next time.
    let (failed, stopped) = run(&client, json!({"code": "while True: pass", "session": "s"})).await;
    assert!(failed);
    assert!(stopped.starts_with("[stopped]\nout of fuel"), "{stopped}");
    assert!(stopped.contains("starts afresh"));
    let (failed, after) = run(
        &client,
        json!({"code": "'total' in globals()", "session": "s"}),
    )
    .await;
    assert!(!failed);
    assert_eq!(after, "[value]\nFalse\n");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sessions_are_bounded_and_a_full_table_says_so() {
    let client = client(&["--max-sessions", "1", "--session-idle", "1"]).await;
    run(&client, json!({"code": "a = 1", "session": "one"})).await;
    let (failed, full) = run(&client, json!({"code": "b = 2", "session": "two"})).await;
    assert!(failed);
    assert!(full.starts_with("[refused]\n1 sessions are open"), "{full}");
    assert!(!full.contains("code refused"), "{full}");
    // Idle past a second, the first expires and makes room.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (failed, _) = run(&client, json!({"code": "b = 2", "session": "two"})).await;
    assert!(!failed);
    let (failed, gone) = run(
        &client,
        json!({"code": "'a' in globals()", "session": "one"}),
    )
    .await;
    assert!(failed, "{gone}");
    client.cancel().await.unwrap();
}

/// Runs `pyeval --tools-config` on `code`, with the reference "everything" MCP server
/// (`just mcp-servers` installs it) configured as `everything`.
fn with_everything(code: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .arg("--tools-config")
        .arg(everything_config(dir.path()))
        .args(["-c", code])
        .output()
        .unwrap()
}

#[test]
fn the_tools_of_another_mcp_server_are_callable_from_the_code() {
    let out = with_everything(
        "import asyncio\nfrom tools import ToolError\n\
         echoed, total = await asyncio.gather(everything.echo(message='hi'), \
         everything['get-sum'](a=2, b=3))\nprint(echoed)\nprint(total)\n\
         try:\n    await everything['get-sum'](a='two', b=3)\nexcept TypeError as e:\n    \
         print('TypeError', 'a' in str(e))\n\
         print('echo' in dir(everything), 'get-sum' in dir(everything))",
    );
    let stdout = succeeded(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].contains("hi"), "{stdout}");
    assert!(lines[1].contains('5'), "{stdout}");
    assert_eq!(lines[2..], ["TypeError True", "True True"], "{stdout}");
}

#[test]
fn a_bad_tools_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    for (text, said) in [
        ("{}", "is not an mcpServers configuration"),
        (
            r#"{"mcpServers": {"a-b": {"command": "true"}}}"#,
            "must be an identifier",
        ),
        (
            r#"{"mcpServers": {"x": {"url": "http://127.0.0.1:9/mcp", "type": "sse"}}}"#,
            "old HTTP+SSE transport is not supported",
        ),
        (
            r#"{"mcpServers": {"x": {"url": "http://127.0.0.1:9/mcp", "command": "a"}}}"#,
            "both a command and a url",
        ),
        (
            r#"{"mcpServers": {"x": {"url": "http://127.0.0.1:9/mcp"}}}"#,
            "the MCP handshake failed",
        ),
        (
            r#"{"mcpServers": {"x": {"command": "/nonexistent/server"}}}"#,
            "cannot start",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pyeval"))
            .arg("--tools-config")
            .arg(&config)
            .args(["-c", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(said), "{text}: {stderr}");
    }
}

/// A tools configuration naming the "everything" server, in `dir`.
fn everything_config(dir: &std::path::Path) -> std::path::PathBuf {
    let server = std::env::var("PYEVAL_MCP_EVERYTHING")
        .expect("PYEVAL_MCP_EVERYTHING names mcp-server-everything (`just test` installs it)");
    let config = dir.join("mcp.json");
    let servers = json!({"mcpServers": {"everything": {"command": server, "args": ["stdio"]}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    config
}

#[tokio::test]
async fn pyeval_mcp_grants_another_servers_tools_to_run_python() {
    let dir = tempfile::tempdir().unwrap();
    let config = everything_config(dir.path());
    let client = client(&["--tools-config", config.to_str().unwrap()]).await;
    let tools = client.list_all_tools().await.unwrap();
    let described = tools[0].description.as_deref().unwrap_or_default();
    assert!(described.contains("class everything:"), "{described}");
    assert!(
        described.contains("async def echo(*, message: str) -> Any:"),
        "{described}"
    );
    let (failed, text) = run(
        &client,
        json!({"code": "print(await everything.echo(message='through two servers'))"}),
    )
    .await;
    assert!(!failed, "{text}");
    assert_eq!(text, "[stdout]\nEcho: through two servers\n");
    let (_, kept) = run(
        &client,
        json!({"code": "(await everything['get-sum'](a=1, b=2))", "session": "s"}),
    )
    .await;
    assert!(kept.contains("The sum of 1 and 2 is 3"), "{kept}");
}

#[test]
fn a_server_that_dies_mid_call_is_a_tool_error_and_the_evaluation_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/mcp-servers/dies_mid_call.py"
    );
    let servers = json!({"mcpServers": {"fragile": {"command": "python3", "args": [script]}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .arg("--tools-config")
        .arg(&config)
        .args([
            "-c",
            "from tools import ToolError\ntry:\n    await fragile.die()\nexcept ToolError as e:\n    \
             print('ToolError:', e)\nprint('still here')",
        ])
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert!(
        stdout.starts_with("ToolError: the MCP server failed"),
        "{stdout}"
    );
    assert!(stdout.ends_with("still here\n"), "{stdout}");
}

/// A client that keeps the messages of the progress notifications it is sent.
#[derive(Clone, Default)]
struct Listening(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl rmcp::ClientHandler for Listening {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(params.message.unwrap_or_default());
    }
}

#[tokio::test]
async fn a_client_that_asks_for_progress_gets_the_output_as_it_is_written() {
    use rmcp::model::{NumberOrString, ProgressToken, RequestMetaObject};

    let listening = Listening::default();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pyeval"));
    command.arg("mcp");
    let client = listening
        .clone()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    let code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')";
    for session in [None, Some("s")] {
        let mut arguments = json!({"code": code});
        if let Some(name) = session {
            arguments["session"] = json!(name);
        }
        let mut params = CallToolRequestParams::new("run_python")
            .with_arguments(arguments.as_object().unwrap().clone());
        params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
            NumberOrString::Number(7),
        )));
        let result = client.call_tool(params).await.unwrap();
        assert_ne!(result.is_error, Some(true));
        let expected = ["one\n", "[stderr] two\n", "three\n"];
        let started = std::time::Instant::now();
        while listening.0.lock().unwrap().len() < expected.len()
            && started.elapsed() < std::time::Duration::from_secs(5)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(*listening.0.lock().unwrap(), expected, "{session:?}");
        listening.0.lock().unwrap().clear();
    }
    client.cancel().await.unwrap();
}

/// The "everything" server serving streamable HTTP on 127.0.0.1 (see
/// tests/mcp-servers/loopback.mjs), killed when dropped.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start() -> HttpServer {
        use std::io::BufRead;

        let server = std::env::var("PYEVAL_MCP_EVERYTHING")
            .expect("PYEVAL_MCP_EVERYTHING names mcp-server-everything (`just test` installs it)");
        let loopback = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/mcp-servers/loopback.mjs"
        );
        let mut child = std::process::Command::new("node")
            .args(["--import", loopback, &server, "streamableHttp"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let address = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("the HTTP MCP server exited");
            }
            if let Some(address) = line.trim().strip_prefix("listening on ") {
                break address.to_owned();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        HttpServer {
            child,
            url: format!("http://{address}/mcp"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_tools_of_a_server_at_a_url_are_callable_from_the_code() {
    let server = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let servers = json!({"mcpServers": {"remote": {
        "url": server.url, "type": "http", "headers": {"X-Client": "pyeval-test"}}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .arg("--tools-config")
        .arg(&config)
        .args([
            "-c",
            "import asyncio\nfar, total = await asyncio.gather(remote.echo(message='far'), \
             remote['get-sum'](a=20, b=22))\nprint(far)\nprint(total)",
        ])
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("Echo: far"), "{stdout}");
    assert!(lines[1].contains("42"), "{stdout}");
}

#[tokio::test]
async fn files_go_in_as_text_and_come_back_as_resources_and_images() {
    let client = client(&[]).await;
    let code = "import csv\nrows = list(csv.reader(open('t.csv')))\n\
                open('n.txt', 'w').write(str(len(rows)))\n\
                open('p.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n')\n\
                open('b.bin', 'wb').write(b'\\xff')";
    let result = call(
        &client,
        json!({"code": code, "files": {"t.csv": "a,b\n1,2\n"}}),
    )
    .await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let blocks = blocks(&result);
    // The text first, then the files in path order: a blob, a text resource, an image.
    assert_eq!(blocks[0]["text"], "[value]\n1\n");
    assert_eq!(blocks[1]["resource"]["uri"], "file:///tmp/b.bin");
    assert_eq!(blocks[1]["resource"]["blob"], "/w==");
    assert_eq!(blocks[2]["resource"]["text"], "2");
    assert_eq!(blocks[2]["resource"]["mimeType"], "text/plain");
    assert_eq!(blocks[3]["type"], "image");
    assert_eq!(blocks[3]["mimeType"], "image/png");
    assert_eq!(blocks[3]["data"], "iVBORw0KGgo=");

    // In a session, files given later join those already there.
    run(
        &client,
        json!({"code": "x = 1", "session": "f", "files": {"a.txt": "A"}}),
    )
    .await;
    let (failed, text) = run(
        &client,
        json!({"code": "open('a.txt').read() + open('b.txt').read()", "session": "f", "files": {"b.txt": "B"}}),
    )
    .await;
    assert!(!failed, "{text}");
    assert_eq!(text, "[value]\n'AB'\n");
    let (failed, text) = run(&client, json!({"code": "1", "files": {"/abs": ""}})).await;
    assert!(failed);
    assert!(text.contains("absolute"), "{text}");
}

#[tokio::test]
async fn files_past_the_limits_are_named_in_a_note() {
    let client = client(&["--max-files", "2", "--max-file-bytes", "10"]).await;
    let code = "open('a.txt', 'w').write('a' * 20); open('b.txt', 'w').write('b'); \
                open('c.txt', 'w').write('c')";
    let blocks = blocks(&call(&client, json!({"code": code})).await);
    let text = blocks[0]["text"].as_str().unwrap();
    assert!(
        text.contains("files too large to return: a.txt (20 bytes)"),
        "{text}"
    );
    assert!(
        text.contains("1 more changed files were not returned"),
        "{text}"
    );
    // Only b.txt's bytes come back.
    assert_eq!(blocks.as_array().unwrap().len(), 2, "{blocks}");
    assert_eq!(blocks[1]["resource"]["text"], "b");
}

#[tokio::test]
async fn charts_come_back_as_images_the_model_sees() {
    let sci = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval-sci.wasm");
    let client = client(&["--component", sci]).await;
    let code =
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nprint('drawn')";
    let result = call(&client, json!({"code": code})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let blocks = blocks(&result);
    assert_eq!(blocks[0]["text"], "[stdout]\ndrawn\n");
    assert_eq!(blocks[1]["type"], "image");
    assert_eq!(blocks[1]["mimeType"], "image/png");
    assert!(blocks[1]["data"]
        .as_str()
        .unwrap()
        .starts_with("iVBORw0KGgo"));
    assert_eq!(blocks.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn charts_past_the_limits_are_named_in_a_note() {
    let sci = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval-sci.wasm");
    // (Two charts take more than the default fuel.)
    let args = [
        "--component",
        sci,
        "--fuel",
        "3000000000",
        "--max-files",
        "1",
        "--max-file-bytes",
        "10",
    ];
    let client = client(&args).await;
    let code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nplt.plot([2, 1])";
    let blocks = blocks(&call(&client, json!({"code": code})).await);
    let text = blocks[0]["text"].as_str().unwrap();
    // The first chart is named without its bytes, the second counted.
    assert!(
        text.contains("files too large to return: chart-1.png ("),
        "{text}"
    );
    assert!(text.contains("1 more charts were not returned"), "{text}");
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
}

#[tokio::test]
async fn run_python_reaches_the_hosts_the_operator_allows() {
    let port = ok_server::start();
    let rule = format!("127.0.0.1:{port}");
    let code = format!(
        "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/').read())"
    );
    let granted = client(&["--allow-host", &rule, "--allow-address", "127.0.0.1"]).await;
    assert_eq!(
        run(&granted, json!({"code": code})).await,
        (false, "[stdout]\nb'ok'\n".to_string())
    );
    granted.cancel().await.unwrap();
    let none = client(&[]).await;
    let (failed, text) = run(&none, json!({"code": code})).await;
    assert!(failed && text.contains("no network is granted"), "{text}");
    none.cancel().await.unwrap();
}

#[tokio::test]
async fn a_session_directory_keeps_named_sessions_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let args = ["--fuel", "100_000_000", "--session-dir", path];
    let first = client(&args).await;
    run(
        &first,
        json!({"code": "import json\nnotes = ['a']", "session": "work"}),
    )
    .await;
    run(&first, json!({"code": "seen = 1", "session": "a/b"})).await;
    first.cancel().await.unwrap();
    assert!(dir.path().join("work.session").is_file());
    assert!(
        dir.path().join("a%2Fb.session").is_file(),
        "a name is never a path"
    );

    let second = client(&args).await;
    let (failed, text) = run(
        &second,
        json!({"code": "notes.append('b')\njson.dumps(notes)", "session": "work"}),
    )
    .await;
    assert!(!failed, "{text}");
    assert_eq!(text, "[value]\n'[\"a\", \"b\"]'\n");
    // A stop leaves the file as it was before the call, and the session goes on from it.
    let (failed, stopped) = run(
        &second,
        json!({"code": "notes.clear()\nwhile True: pass", "session": "work"}),
    )
    .await;
    assert!(failed);
    assert!(
        stopped.contains("goes on from its state before this call"),
        "{stopped}"
    );
    let (_, after) = run(&second, json!({"code": "notes", "session": "work"})).await;
    assert_eq!(after, "[value]\n['a', 'b']\n");
    // A file that is not a session is refused, and left alone.
    std::fs::write(dir.path().join("junk.session"), "not a dump").unwrap();
    let (failed, refused) = run(&second, json!({"code": "1", "session": "junk"})).await;
    assert!(
        failed && refused.contains("not a session dump"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("junk.session")).unwrap(),
        "not a dump"
    );
    second.cancel().await.unwrap();
}
