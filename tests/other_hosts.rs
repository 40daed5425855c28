//! The same component in other hosts: one corpus of snippets gives the same stdout, value
//! and error kind through pyeval, the wasmtime CLI and Node (jco); the wasmtime CLI runs
//! it as a command; and a component composed with it (examples/calculator) works.
//!
//! `just test` prepares what these need: the wasmtime CLI (its path in `PYEVAL_WASMTIME`),
//! `examples/node/generated`, and `target/calculator.wasm`.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use std::path::PathBuf;
use std::process::Command;

use common::evaluator;
use corpus::{wave_string, Snippet, Summary};
use pyeval::Limits;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn corpus() -> Vec<Snippet> {
    corpus::read(&repo().join("tests/corpus.json"))
}

/// `wasmtime run` with `wasi:http` linked (`-S http`), as the component imports it.
fn wasmtime_run() -> Command {
    let path = std::env::var_os("PYEVAL_WASMTIME")
        .expect("PYEVAL_WASMTIME names the wasmtime CLI (`just test` installs it)");
    let mut command = Command::new(path);
    command.current_dir(repo()).args(["run", "-S", "http"]);
    command
}

#[test]
fn corpus_through_pyeval() {
    for snippet in corpus() {
        let outcome = evaluator().eval(&snippet.code, &Limits::default()).unwrap();
        let got = Summary::of(outcome);
        assert_eq!(got, snippet.expected, "{:?}", snippet.code);
    }
}

#[test]
fn corpus_through_the_wasmtime_cli() {
    for snippet in corpus() {
        let wave = invoke("target/pyeval-portable.wasm", "eval", &snippet.code);
        let got = Summary::from_wave(&wave);
        assert_eq!(got, snippet.expected, "{:?} gave {wave}", snippet.code);
    }
}

#[test]
fn corpus_through_node() {
    let out = Command::new("node")
        .current_dir(repo().join("examples/node"))
        .args(["eval.mjs", "--corpus", "../../tests/corpus.json"])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Summary> = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Vec<Summary> = corpus().into_iter().map(|s| s.expected).collect();
    assert_eq!(got, expected);
}

#[test]
fn the_wasmtime_cli_runs_the_component_as_a_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.py"),
        "import sys\nprint('script', sys.argv)\n",
    )
    .unwrap();
    let run = |args: &[&str]| wasmtime_run().args(args).output().unwrap();

    let code = run(&[
        "target/pyeval-portable.wasm",
        "-c",
        "import json; print(json.dumps([1]))",
    ]);
    assert_eq!(String::from_utf8_lossy(&code.stdout), "[1]\n");
    let exit = run(&[
        "target/pyeval-portable.wasm",
        "-c",
        "import sys; sys.exit(3)",
    ]);
    assert_eq!(exit.status.code(), Some(3));
    let dir_arg = format!("{}::/work", dir.path().display());
    let script = run(&[
        "--dir",
        &dir_arg,
        "target/pyeval-portable.wasm",
        "/work/s.py",
        "a",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&script.stdout),
        "script ['/work/s.py', 'a']\n"
    );
    let module = run(&["target/pyeval-portable.wasm", "-m", "this"]);
    assert!(String::from_utf8_lossy(&module.stdout).starts_with("The Zen of Python"));
}

#[test]
fn a_composed_component_uses_the_evaluator() {
    let calc = |expression: &str| {
        invoke("target/calculator.wasm", "calc", expression)
            .trim()
            .to_owned()
    };
    assert_eq!(calc("2 + 3 * 4"), "ok(\"14\")");
    assert_eq!(calc("2 ** 70"), "ok(\"1180591620717411303424\")");
    assert_eq!(
        calc("1 / 0"),
        "err(\"ZeroDivisionError: division by zero\")"
    );
    assert!(calc("__import__('os')").starts_with("err(\"not an arithmetic expression"));
}

/// What `wasmtime run --invoke 'FUNCTION("ARGUMENT")' COMPONENT` prints (WAVE text).
fn invoke(component: &str, function: &str, argument: &str) -> String {
    let call = format!("{function}({})", wave_string(argument));
    let out = wasmtime_run()
        .args(["--invoke", &call, component])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
