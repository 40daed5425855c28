//! Running the `pyeval` binary from tests.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Once;

/// The stock interpreter that `just build-cpython` made.
pub const PYTHON_WASM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cpython/python.wasm");

/// What a finished run printed and returned.
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Fails the test, showing everything the run printed, unless it exited with `code`.
    pub fn assert_status(&self, code: i32) {
        assert_eq!(
            self.status,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// A `pyeval` invocation under construction.
pub struct Run {
    command: Command,
    stdin: Vec<u8>,
}

impl Run {
    /// `pyeval ARGS...`: the evaluator path unless ARGS choose `--python`.
    pub fn new(args: &[&str]) -> Self {
        warm_compile_cache();
        let mut command = Command::new(env!("CARGO_BIN_EXE_pyeval"));
        command
            .args(args)
            .env_remove("INITIAL_FUEL")
            .env_remove("PYEVAL_CPYTHON_DIR");
        Run {
            command,
            stdin: Vec::new(),
        }
    }

    /// Any program with ARGS (for wrappers such as `script`).
    pub fn program(program: &str, args: &[&str]) -> Self {
        warm_compile_cache();
        let mut command = Command::new(program);
        command.args(args);
        Run {
            command,
            stdin: Vec::new(),
        }
    }

    /// `pyeval --python PYTHON_WASM ARGS...`: the command path with the stock python.wasm.
    pub fn command(args: &[&str]) -> Self {
        Run::new(&[&["--python", PYTHON_WASM], args].concat())
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = input.as_bytes().to_vec();
        self
    }

    pub fn go(mut self) -> Output {
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pyeval starts");
        let mut stdin = child.stdin.take().unwrap();
        let input = std::mem::take(&mut self.stdin);
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("pyeval finishes");
        writer.join().unwrap();
        Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `pyeval ARGS...` with empty stdin.
pub fn pyeval(args: &[&str]) -> Output {
    Run::new(args).go()
}

/// Runs `pyeval --python ARGS...` with empty stdin.
pub fn python(args: &[&str]) -> Output {
    Run::command(args).go()
}

/// Compiles the evaluator and python.wasm (metered and not) into the shared cache once per
/// test binary, so parallel tests do not each compile them.
fn warm_compile_cache() {
    static WARM: Once = Once::new();
    WARM.call_once(|| {
        for args in [
            &["-c", "pass"][..],
            &["--python", PYTHON_WASM, "-c", "pass"],
            &["--python", PYTHON_WASM, "--fuel", "-1", "-c", "pass"],
        ] {
            let status = Command::new(env!("CARGO_BIN_EXE_pyeval"))
                .args(args)
                .stdin(Stdio::null())
                .status()
                .expect("pyeval starts");
            assert!(status.success(), "warm-up run {args:?} failed");
        }
    });
}
