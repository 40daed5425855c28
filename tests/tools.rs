//! Tools the host grants to evaluated code: async Python functions whose calls run on the
//! host, checked against their schemas, bounded per evaluation.

mod common;

use std::time::Duration;

use common::evaluator;
use pyeval::{EvalError, Grants, Limits, Outcome, Stopped, Tool, ToolError, ToolLimits};
use serde_json::{json, Value};

/// `search(query, limit=10)`: echoes its arguments.
fn search() -> Tool {
    Tool::new(
        "search",
        "Searches the web and returns the top results.",
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what to look for"},
                "limit": {"type": "integer", "default": 10},
            },
            "required": ["query"],
        }),
        |arguments: Value| async move { Ok(json!({"results": [arguments]})) },
    )
    .unwrap()
}

/// `name(seconds)`: sleeps, then returns its name.
fn sleeper(name: &str) -> Tool {
    let answer = name.to_string();
    Tool::new(
        name,
        "Sleeps.",
        json!({"type": "object", "properties": {"seconds": {"type": "number"}}}),
        move |arguments: Value| {
            let answer = answer.clone();
            async move {
                let seconds = arguments["seconds"].as_f64().unwrap_or(0.0);
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                Ok(json!(answer))
            }
        },
    )
    .unwrap()
}

/// A tool answered by `handler` with any arguments.
fn tool<F, Fut>(name: &str, handler: F) -> Tool
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = pyeval::ToolResult> + Send + 'static,
{
    Tool::new(name, "A test tool.", json!({"type": "object"}), handler).unwrap()
}

fn run(code: &str, grants: &Grants) -> Outcome {
    evaluator()
        .eval_with(code, &Limits::default(), grants)
        .unwrap()
}

fn value(code: &str, grants: &Grants) -> String {
    let outcome = run(code, grants);
    assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
    outcome.value.unwrap_or_default()
}

/// The exception's type and message the code raised.
fn raised(code: &str, grants: &Grants) -> (String, String) {
    let error = run(code, grants).error.expect("an exception");
    (error.type_name, error.message)
}

#[test]
fn a_tool_is_an_async_function_of_main_and_of_the_tools_module() {
    let grants = Grants::new().with_tool(search());
    assert_eq!(
        value("r = await search(query='wasm', limit=3)\nr", &grants),
        "{'results': [{'query': 'wasm', 'limit': 3}]}"
    );
    assert_eq!(
        value(
            "import tools\nfrom tools import ToolError, search as s\n\
             (s is search, tools.search is search, ToolError.__name__)",
            &grants
        ),
        "(True, True, 'ToolError')"
    );
    // help() shows the description and the signature from the schema.
    assert_eq!(
        value(
            "import inspect\n(str(inspect.signature(search)), search.__doc__, \
             inspect.iscoroutinefunction(search))",
            &grants
        ),
        "('(*, query: str, limit: int = 10)', 'Searches the web and returns the top results.', True)"
    );
    // asyncio.run from plain code works as well as a top-level await.
    assert_eq!(
        value(
            "import asyncio\nasync def main():\n    return await search(query='x')\n\
             asyncio.run(main())['results'][0]['query']",
            &grants
        ),
        "'x'"
    );
    // Without a grant there is no tools module.
    assert_eq!(
        raised("import tools", &Grants::new()).0,
        "ModuleNotFoundError"
    );
}

#[test]
fn gathered_calls_run_at_the_same_time_on_the_host() {
    let grants = Grants::new()
        .with_tool(sleeper("a"))
        .with_tool(sleeper("b"))
        .with_tool(sleeper("c"));
    let outcome = run(
        "import asyncio\nawait asyncio.gather(a(seconds=1), b(seconds=1), c(seconds=1))",
        &grants,
    );
    assert_eq!(outcome.value.as_deref(), Some("['a', 'b', 'c']"));
    // One after another they would take 3 s.
    assert!(
        outcome.wall_time < Duration::from_millis(2500),
        "{outcome:?}"
    );
}

#[test]
fn arguments_are_checked_against_the_schema_before_the_handler_runs() {
    let grants = Grants::new().with_tool(search());
    let (kind, message) = raised("await search(limit=3)", &grants);
    assert_eq!(kind, "TypeError");
    assert!(
        message.contains("\"query\" is a required property"),
        "{message}"
    );
    let (kind, message) = raised("await search(query='q', page=2)", &grants);
    assert_eq!(kind, "TypeError");
    assert!(message.contains("'page' was unexpected"), "{message}");
    let (kind, message) = raised("await search(query=3)", &grants);
    assert_eq!(kind, "TypeError");
    assert!(message.starts_with("search(): query:"), "{message}");
    let (kind, _) = raised("await search(query=object())", &grants);
    assert_eq!(kind, "TypeError");
    let (kind, _) = raised("await search('positional')", &grants);
    assert_eq!(kind, "TypeError");
    // Code that goes around the Python function meets the same check on the host.
    assert_eq!(
        value(
            "import _pyeval\n_pyeval._tool_start('search', '{\"page\": 1}')[0]",
            &grants
        ),
        "1"
    );
    assert_eq!(
        value(
            "import _pyeval\n_pyeval._tool_start('rm_rf', '{}')",
            &grants
        ),
        "(2, 'no tool \"rm_rf\" is granted')"
    );
    let (kind, _) = raised("import _pyeval\n_pyeval._tool_start('search')", &grants);
    assert_eq!(kind, "TypeError");
}

#[test]
fn a_tools_failure_is_a_tool_error_code_can_catch() {
    let grants = Grants::new()
        .with_tool(tool("fail", |_| async {
            Err(ToolError::new("quota exceeded"))
        }))
        .with_tool(tool("boom", |_| async { panic!("handler bug") }))
        .with_tool(tool("boom_later", |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            panic!("handler bug, later")
        }));
    assert_eq!(
        value(
            "from tools import ToolError\ntry:\n    await fail()\nexcept ToolError as e:\n    \
             caught = str(e)\ncaught",
            &grants
        ),
        "'quota exceeded'"
    );
    for call in ["await boom()", "await boom_later()"] {
        let (kind, message) = raised(call, &grants);
        assert_eq!(kind, "tools.ToolError");
        assert!(message.contains("panicked"), "{message}");
    }
    // The host carries on.
    assert_eq!(value("fail.__name__", &grants), "'fail'");
}

#[test]
fn arguments_and_results_are_capped_in_bytes() {
    let big = tool("big", |_| async { Ok(json!("x".repeat(2000))) });
    let grants = Grants::new().with_tool(big).with_tool(search());
    let limits = Limits::default().with_tool_limits(ToolLimits::default().with_bytes(1000));
    let outcome = evaluator()
        .eval_with(
            "from tools import ToolError\nresults = []\nfor call in (lambda: big(), \
             lambda: search(query='q' * 2000)):\n    try:\n        await call()\n    \
             except Exception as e:\n        results.append(type(e).__name__)\nresults",
            &limits,
            &grants,
        )
        .unwrap();
    assert_eq!(
        outcome.value.as_deref(),
        Some("['ToolError', 'TypeError']"),
        "{outcome:?}"
    );
}

#[test]
fn calls_are_bounded_in_number_and_time() {
    let grants = Grants::new().with_tool(search()).with_tool(sleeper("slow"));
    let limits = Limits::default().with_tool_limits(
        ToolLimits::default()
            .with_calls(3)
            .with_call_time(Duration::from_millis(200)),
    );
    let eval = |code: &str| evaluator().eval_with(code, &limits, &grants).unwrap();
    let capped = eval(
        "from tools import ToolError\nn = 0\ntry:\n    for _ in range(5):\n        \
         await search(query='q')\n        n += 1\nexcept ToolError as e:\n    error = str(e)\n(n, error)",
    );
    assert_eq!(
        capped.value.as_deref(),
        Some("(3, 'this evaluation has used all 3 of its tool calls')")
    );
    // Calls started without being awaited run at most so many at once.
    let crowd = evaluator()
        .eval_with(
            "import asyncio\ntasks = [asyncio.ensure_future(slow(seconds=0.05)) for _ in range(4)]\n\
             [str(r) for r in await asyncio.gather(*tasks, return_exceptions=True)]",
            &Limits::default().with_tool_limits(ToolLimits::default().with_running(2)),
            &grants,
        )
        .unwrap();
    let busy = "2 tool calls are running or unclaimed; await some first";
    assert_eq!(
        crowd.value,
        Some(format!("['slow', 'slow', '{busy}', '{busy}']")),
        "{crowd:?}"
    );
    let late = eval("await slow(seconds=5)").error.unwrap();
    assert_eq!(late.type_name, "tools.ToolError");
    assert!(late.message.contains("did not answer within"), "{late:?}");

    // A tool that never answers costs the evaluation its deadline, no more.
    let short = Limits::default().with_wall_time(Duration::from_secs(1));
    let stopped = evaluator()
        .eval_with("await slow(seconds=3600)", &short, &grants)
        .unwrap_err();
    assert_eq!(
        stopped,
        EvalError::Stopped(Stopped::Timeout {
            limit: Duration::from_secs(1)
        })
    );
}

#[test]
fn a_session_keeps_its_tools_and_each_evaluation_its_own_calls() {
    let grants = Grants::new().with_tool(search());
    let limits = Limits::default().with_tool_limits(ToolLimits::default().with_calls(1));
    let mut session = evaluator().session_with(&limits, &grants).unwrap();
    for round in 0..3 {
        let outcome = session
            .eval(&format!(
                "(await search(query='{round}'))['results'][0]['query']"
            ))
            .unwrap();
        assert_eq!(outcome.value, Some(format!("'{round}'")), "{outcome:?}");
    }
}

#[test]
fn tools_of_a_group_are_its_attributes_and_items() {
    let grants = Grants::new()
        .with_tool(tool("github.search_issues", |a| async move { Ok(a) }))
        .with_tool(tool("github.list-repos", |_| async {
            Ok(json!(["pyeval"]))
        }));
    assert_eq!(
        value(
            "(await github.search_issues(q='bug'), await github['list-repos'](), sorted(dir(github)))",
            &grants
        ),
        "({'q': 'bug'}, ['pyeval'], ['list-repos', 'search_issues'])"
    );
    assert_eq!(
        raised("github.nothing", &grants),
        (
            "AttributeError".to_string(),
            "github has no tool 'nothing'".to_string()
        )
    );
}

#[test]
fn bad_definitions_are_refused() {
    let handler = |_: Value| async { Ok(Value::Null) };
    for name in ["", "1up", "a b", "a.b.c", ".x", "x."] {
        assert!(
            Tool::new(name, "", json!({"type": "object"}), handler).is_err(),
            "{name:?}"
        );
    }
    for schema in [json!([]), json!({"type": "string"}), json!({"type": 7})] {
        assert!(
            Tool::new("t", "", schema.clone(), handler).is_err(),
            "{schema}"
        );
    }
}

#[test]
fn the_stubs_for_a_model_are_python_that_compiles() {
    let tools = [
        search(),
        sleeper("nap"),
        tool("github.list-repos", |_| async { Ok(Value::Null) }),
    ];
    let stubs = pyeval::tool_stubs(&tools);
    assert!(stubs.contains("async def search(*, query: str, limit: int = 10) -> Any:"));
    assert_eq!(
        value(
            &format!("{stubs}\nimport inspect\nstr(inspect.signature(nap))"),
            &Grants::new()
        ),
        "'(*, seconds: float | None = None) -> Any'"
    );
}
