//! End-to-end tests of the `pyeval` binary on its default path, the evaluator component.

mod binary;
mod ok_server;

use binary::{pyeval, Run, PYTHON_WASM};

#[test]
fn code_prints_output_and_the_trailing_value() {
    let run = pyeval(&["-c", "print('hello')"]);
    run.assert_status(0);
    assert_eq!(run.stdout, "hello\n");
    assert_eq!(run.stderr, "");
    let value = pyeval(&["-c", "1+1"]);
    assert_eq!(value.stdout, "2\n");
}

#[test]
fn errors_and_exit_statuses() {
    let run = pyeval(&["-c", "print('a'); 1/0"]);
    run.assert_status(1);
    assert_eq!(run.stdout, "a\n");
    assert!(
        run.stderr
            .ends_with("ZeroDivisionError: division by zero\n"),
        "{}",
        run.stderr
    );
    pyeval(&["-c", "import sys; sys.exit(3)"]).assert_status(3);
    let bad = pyeval(&["-X", "dev"]);
    bad.assert_status(2);
    assert!(
        bad.stderr.contains("unsupported Python option -X"),
        "{}",
        bad.stderr
    );
}

#[test]
fn json_gives_the_typed_outcome() {
    let run = pyeval(&["--json", "-c", "print('a'); 1/0"]);
    run.assert_status(1);
    let outcome: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(outcome["stdout"], "a\n");
    assert_eq!(outcome["value"], serde_json::Value::Null);
    assert_eq!(outcome["error"]["type_name"], "ZeroDivisionError");
    assert_eq!(outcome["error"]["message"], "division by zero");
    assert!(outcome["fuel_used"].as_u64().unwrap() > 0);

    let fuel = pyeval(&["--json", "--fuel", "1_000_000", "-c", "sum(range(10**7))"]);
    fuel.assert_status(125);
    let failure: serde_json::Value = serde_json::from_str(&fuel.stdout).unwrap();
    assert_eq!(failure["failure"]["kind"], "fuel_exhausted");
}

#[test]
fn fuel_limit_and_stats() {
    let run = pyeval(&["--fuel", "5_000_000", "-c", "sum(range(10**7))"]);
    run.assert_status(125);
    assert!(run.stderr.contains("out of fuel"), "{}", run.stderr);
    let unlimited = Run::new(&["-c", "sum(range(10**7))"])
        .env("INITIAL_FUEL", "-1")
        .go();
    unlimited.assert_status(0);
    assert_eq!(unlimited.stdout, "49999995000000\n");

    let memory = pyeval(&["--memory", "1", "-c", "1"]);
    memory.assert_status(122);
    assert!(
        memory.stderr.contains("memory limit exceeded"),
        "{}",
        memory.stderr
    );
    let time = pyeval(&["--timeout", "0.5", "-c", "import time; time.sleep(60)"]);
    time.assert_status(124);

    let stats = pyeval(&["--stats", "-c", "print(1)"]);
    stats.assert_status(0);
    assert!(
        stats.stderr.contains("initial fuel: 1,000,000,000"),
        "{}",
        stats.stderr
    );
    assert!(stats.stderr.contains("fuel consumed: "), "{}", stats.stderr);
}

#[test]
fn script_module_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.py");
    std::fs::write(&script, "import sys\nprint(sys.argv)\n").unwrap();
    let run = pyeval(&[script.to_str().unwrap(), "a", "-b"]);
    run.assert_status(0);
    assert_eq!(run.stdout, format!("['{}', 'a', '-b']\n", script.display()));

    let module = pyeval(&["-m", "this"]);
    module.assert_status(0);
    assert!(
        module
            .stdout
            .starts_with("The Zen of Python, by Tim Peters"),
        "{}",
        module.stdout
    );

    let piped = Run::new(&["-"]).stdin("x = 6\nprint(x * 7)\n").go();
    piped.assert_status(0);
    assert_eq!(piped.stdout, "42\n");

    let missing = pyeval(&["/no/such/script.py"]);
    missing.assert_status(2);
    assert!(
        missing.stderr.contains("/no/such/script.py"),
        "{}",
        missing.stderr
    );
}

#[test]
fn mounts_and_environment_are_granted_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "data").unwrap();
    let mount = format!("{}:/data", dir.path().display());
    let run = Run::new(&[
        "--mount",
        &mount,
        "--env",
        "K=v",
        "-c",
        "import os\nprint(open('/data/in.txt').read(), dict(os.environ))",
    ])
    .env("SECRET", "x")
    .go();
    run.assert_status(0);
    assert_eq!(run.stdout, "data {'K': 'v'}\n");
    let hidden = pyeval(&["-c", "open('/etc/passwd')"]);
    hidden.assert_status(1);
}

#[test]
fn the_component_runs_as_a_command() {
    let component = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval.wasm");
    let empty = tempfile::tempdir().unwrap();
    let stdlib = empty.path().to_str().unwrap();
    let run = pyeval(&[
        "--python",
        component,
        "--stdlib",
        stdlib,
        "-c",
        "import json, sys; print(json.dumps([1]), sys.argv)",
    ]);
    run.assert_status(0);
    assert_eq!(run.stdout, "[1] ['-c']\n");
    pyeval(&["--python", component, "-c", "import sys; sys.exit(4)"]).assert_status(4);
    let module = pyeval(&["--python", component, "-m", "this"]);
    assert!(
        module.stdout.starts_with("The Zen of Python"),
        "{}",
        module.stdout
    );
}

#[test]
fn repl_on_a_terminal_keeps_one_session() {
    // `script` gives pyeval a terminal for stdin, which is what starts the REPL.
    let command = format!("{} --fuel 100_000_000", env!("CARGO_BIN_EXE_pyeval"));
    let run = binary::Run::program("script", &["-qec", &command, "/dev/null"])
        .stdin("print(6 * 7)\nx = 5\nx + 1\nfor i in range(2):\n    print('loop', i)\n\nimport sys; sys.exit(7)\n")
        .go();
    run.assert_status(7);
    assert!(
        run.stdout.contains("pyeval: Python 3.13 in a sandbox"),
        "{}",
        run.stdout
    );
    for expected in ["42\r\n", ">>> 6\r\n", "loop 0\r\nloop 1\r\n"] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} missing from {:?}",
            run.stdout
        );
    }
}

#[test]
fn control_characters_are_escaped_only_on_a_terminal() {
    let code = r"print('\x1b[31mred\x1b[0m')";
    let command = format!("{} -c \"{code}\"", env!("CARGO_BIN_EXE_pyeval"));
    let tty = binary::Run::program("script", &["-qec", &command, "/dev/null"]).go();
    tty.assert_status(0);
    assert!(
        tty.stdout.contains("\\x1b[31mred\\x1b[0m"),
        "{:?}",
        tty.stdout
    );
    assert!(!tty.stdout.contains('\x1b'), "{:?}", tty.stdout);
    let piped = pyeval(&["-c", code]);
    assert_eq!(piped.stdout, "\x1b[31mred\x1b[0m\n");
}

#[test]
fn malformed_programs_are_refused_before_they_run() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "latin1.py",
            b"print('caf\xe9')\n".to_vec(),
            "not valid UTF-8",
        ),
        ("nul.py", b"print(1)\0\n".to_vec(), "NUL byte"),
        (
            "huge.py",
            [b"x = 1\n".as_slice(), &vec![b'#'; 2 << 20]].concat(),
            "over the limit",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = pyeval(&[path.to_str().unwrap()]);
        run.assert_status(2);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
    }
}

#[test]
fn limits_out_of_range_are_usage_errors() {
    for timeout in ["1e30", "0", "-1", "nan", "inf", "86401"] {
        let run = pyeval(&["--timeout", timeout, "-c", "print(1)"]);
        run.assert_status(2);
        assert!(
            run.stderr.contains("--timeout"),
            "{timeout}: {}",
            run.stderr
        );
    }
    let memory = pyeval(&["--memory", "18446744073709551615", "-c", "1"]);
    memory.assert_status(2);
    assert!(memory.stderr.contains("--memory"), "{}", memory.stderr);
}

#[test]
fn hints_name_the_options_that_raise_a_limit() {
    let run = pyeval(&["--fuel", "1_000_000", "-c", "sum(range(10**7))"]);
    run.assert_status(125);
    assert!(
        run.stderr.contains("raise it with --fuel"),
        "{}",
        run.stderr
    );
    let time = pyeval(&["--fuel", "-1", "--timeout", "0.2", "-c", "while True: pass"]);
    time.assert_status(124);
    assert!(time.stderr.contains("--timeout SECONDS"), "{}", time.stderr);
}

#[test]
fn python_options_the_guest_ignores_are_ignored_here_too() {
    let run = pyeval(&["-u", "-B", "-c", "import sys; print(sys.argv)"]);
    run.assert_status(0);
    assert_eq!(run.stdout, "['-c']\n");
    let version = pyeval(&["-V"]);
    version.assert_status(0);
    assert!(
        version.stdout.starts_with("Python 3.13."),
        "{}",
        version.stdout
    );
    // The same arguments through the component's own `wasi:cli/run`.
    let component = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval.wasm");
    let guest = pyeval(&[
        "--python",
        component,
        "-u",
        "-B",
        "-c",
        "import sys; print(sys.argv)",
    ]);
    guest.assert_status(0);
    assert_eq!(guest.stdout, run.stdout);
}

/// The process exits at the deadline even with a host thread still blocked on a FIFO.
#[test]
fn a_blocked_host_call_does_not_hold_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("p"))
        .status()
        .unwrap();
    assert!(status.success());
    let mount = format!("{}:/d", dir.path().display());
    let component = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval.wasm");
    for python in [None, Some(binary::PYTHON_WASM), Some(component)] {
        let mut args = vec!["--mount", &mount, "--timeout", "1"];
        if let Some(wasm) = python {
            args.extend(["--python", wasm]);
        }
        args.extend(["-c", "open('/d/p').read()"]);
        // Killed if it hangs, instead of hanging the test (timeout then exits with 124 too,
        // so the time taken is what tells).
        let watched = [
            &["-s", "KILL", "10", env!("CARGO_BIN_EXE_pyeval")],
            &args[..],
        ]
        .concat();
        // Made before the clock starts: the first run of a test binary waits for the
        // shared compile-cache warm-up.
        let command = Run::program("timeout", &watched);
        let started = std::time::Instant::now();
        let run = command.go();
        run.assert_status(124);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{python:?}: took {:?}",
            started.elapsed()
        );
    }
}

/// A program is read no further than the code limit: an endless one is refused, not read.
#[test]
fn program_input_is_bounded() {
    let command = Run::new(&["/dev/zero"]);
    let started = std::time::Instant::now();
    let endless = command.go();
    endless.assert_status(2);
    assert!(
        endless.stderr.contains("over the limit"),
        "{}",
        endless.stderr
    );
    let large = "x = 1\n".repeat(200_000);
    let piped = Run::new(&["-"]).stdin(&large).go();
    piped.assert_status(2);
    assert!(piped.stderr.contains("over the limit"), "{}", piped.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// As under python, a program given with -c, as a script or with -m reads this process's
/// stdin.
#[test]
fn the_program_reads_stdin() {
    let run = Run::new(&["-c", "print(input().upper())"])
        .stdin("abc\n")
        .go();
    run.assert_status(0);
    assert_eq!(run.stdout, "ABC\n");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.py");
    std::fs::write(&script, "import sys\nprint(len(sys.stdin.read()))\n").unwrap();
    let run = Run::new(&[script.to_str().unwrap()]).stdin("12345").go();
    assert_eq!(run.stdout, "5\n");
}

#[test]
fn another_component_is_loaded_with_component() {
    let sci = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval-sci.wasm");
    let run = pyeval(&[
        "--component",
        sci,
        "-c",
        "import numpy as np; print(np.linalg.det(np.eye(3)))",
    ]);
    run.assert_status(0);
    assert_eq!(run.stdout, "1.0\n");

    // A chart is saved under --output-dir; without, the CLI says how to keep it.
    let chart = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = pyeval(&["--component", sci, "--output-dir", out, "-c", chart]);
    run.assert_status(0);
    let png = std::fs::read(dir.path().join("chart-1.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let run = pyeval(&["--component", sci, "-c", chart]);
    run.assert_status(0);
    assert_eq!(
        run.stderr,
        "pyeval: 1 chart(s) drawn; --output-dir DIR saves them as chart-N.png\n"
    );
    // Charts past --max-files are counted on stderr, not written.
    let two = format!("{chart}\nplt.plot([2, 1])");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let limits = ["--fuel", "3000000000", "--max-files", "1"];
    let run = pyeval(
        &[
            &["--component", sci, "--output-dir", out][..],
            &limits,
            &["-c", &two],
        ]
        .concat(),
    );
    run.assert_status(0);
    assert!(dir.path().join("chart-1.png").is_file());
    assert!(!dir.path().join("chart-2.png").exists());
    assert_eq!(
        run.stderr,
        "pyeval: 1 more charts were not written: over the limit on files (--max-files)\n"
    );

    let missing = pyeval(&["--component", "/nonexistent/x.wasm", "-c", "1"]);
    missing.assert_status(2);
    assert!(
        missing.stderr.contains("cannot read /nonexistent/x.wasm"),
        "{}",
        missing.stderr
    );
    let not_ours = pyeval(&["--component", PYTHON_WASM, "-c", "1"]);
    not_ours.assert_status(2);
    assert!(
        not_ours.stderr.contains("not a pyeval evaluator component"),
        "{}",
        not_ours.stderr
    );
    let both = pyeval(&["--component", sci, "--python", PYTHON_WASM, "-c", "1"]);
    both.assert_status(2);
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
}

#[test]
fn output_shows_as_it_is_written() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    // The program prints, then waits for a line of input: its first line must reach us
    // while it waits.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .args(["-c", "print('waiting')\nprint(input().upper())"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "waiting\n");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "GO\n");
    assert!(child.wait().unwrap().success());
    // With --json the output is the outcome's, printed once.
    let run = pyeval(&["--json", "-c", "print('once')"]);
    assert_eq!(run.stdout.matches("once").count(), 1);
}

#[test]
fn files_go_in_with_file_and_come_out_under_output_dir() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("prices.csv");
    std::fs::write(&input, "item,price\na,2\nb,3\n").unwrap();
    let out = dir.path().join("out");
    let code = "import csv\nrows = list(csv.DictReader(open('data/p.csv')))\n\
                open('total.txt', 'w').write(str(sum(int(r['price']) for r in rows)))\n\
                import os; os.makedirs('charts'); open('charts/c.bin', 'wb').write(b'\\x00\\x01')";
    let run = pyeval(&[
        "--file",
        &format!("{}:data/p.csv", input.display()),
        "--file",
        &input.display().to_string(),
        "--output-dir",
        &out.display().to_string(),
        "-c",
        &format!("{code}\nprint(sorted(os.listdir('.')))"),
    ]);
    run.assert_status(0);
    assert_eq!(
        run.stdout,
        "['charts', 'data', 'prices.csv', 'total.txt']\n"
    );
    assert_eq!(std::fs::read_to_string(out.join("total.txt")).unwrap(), "5");
    assert_eq!(std::fs::read(out.join("charts/c.bin")).unwrap(), [0, 1]);
    // Only what the code wrote comes out.
    assert!(!out.join("prices.csv").exists());

    // Over the limits: a note names what was left out.
    let run = pyeval(&[
        "--max-files",
        "1",
        "--output-dir",
        &out.display().to_string(),
        "-c",
        "open('a', 'w').write('a'); open('b', 'w').write('b')",
    ]);
    run.assert_status(0);
    assert!(
        run.stderr.contains("1 more changed files were not written"),
        "{}",
        run.stderr
    );

    // As JSON, the files are in the outcome.
    let run = pyeval(&["--json", "-c", "open('t.txt', 'w').write('hi')"]);
    let outcome: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["files"][0]["path"], "t.txt");
    assert_eq!(outcome["files"][0]["data"], "aGk=");
    assert_eq!(outcome["files"][0]["media_type"], "text/plain");
}

#[test]
fn bad_files_are_usage_errors() {
    for (args, words) in [
        (
            vec!["--file", "/nonexistent/x.csv", "-c", "1"],
            "cannot read /nonexistent/x.csv",
        ),
        (vec!["--file", "/etc/hostname:../x", "-c", "1"], "`..`"),
        (vec!["--file", "/etc/hostname:/abs", "-c", "1"], "absolute"),
    ] {
        let run = pyeval(&args);
        run.assert_status(2);
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn the_network_is_granted_by_flags_only() {
    let port = ok_server::start();
    let code = format!(
        "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/').read())"
    );
    let refused = pyeval(&["-c", &code]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains("no network is granted"),
        "{}",
        refused.stderr
    );
    let rule = format!("GET 127.0.0.1:{port}");
    let run = pyeval(&[
        "--allow-host",
        &rule,
        "--allow-address",
        "127.0.0.1",
        "-c",
        &code,
    ]);
    run.assert_status(0);
    assert_eq!(run.stdout, "b'ok'\n");
    // A secret's value from the host's environment: the code sees the placeholder only.
    let secret = Run::new(&[
        "--allow-host",
        "x.com",
        "--secret",
        "PYEVAL_TEST_TOKEN@x.com",
        "-c",
        "import os; print(os.environ['PYEVAL_TEST_TOKEN'])",
    ])
    .env("PYEVAL_TEST_TOKEN", "value-from-the-host")
    .go();
    secret.assert_status(0);
    assert_eq!(secret.stdout, "pyeval-secret:PYEVAL_TEST_TOKEN\n");

    for (args, says) in [
        (
            &["--allow-host", "get example.com"][..],
            "a rule is [METHOD,...] HOST[:PORT]",
        ),
        (&["--secret", "A=b@example.com"], "--allow-host"),
        (
            &["--allow-host", "x.com", "--allow-address", "nowhere"],
            "not an address",
        ),
        (
            &[
                "--allow-host",
                "x.com",
                "--secret",
                "PYEVAL_NO_SUCH_VARIABLE@x.com",
            ],
            "no environment variable",
        ),
        (
            &["--allow-host", "x.com", "--ca-cert", "Cargo.toml"],
            "no certificate",
        ),
        (
            &["--python", PYTHON_WASM, "--allow-host", "x.com"],
            "cannot be used with",
        ),
    ] {
        let bad = pyeval(&[args, &["-c", "1"]].concat());
        bad.assert_status(2);
        assert!(bad.stderr.contains(says), "{args:?}: {}", bad.stderr);
    }
}

#[test]
fn a_session_file_keeps_state_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.session");
    let file = file.to_str().unwrap();
    pyeval(&["--session", file, "-c", "import json\nrows = [1, 2]"]).assert_status(0);
    let run = pyeval(&[
        "--session",
        file,
        "-c",
        "rows.append(3)\nprint(json.dumps(rows))",
    ]);
    run.assert_status(0);
    assert_eq!(run.stdout, "[1, 2, 3]\n");
    // A run stopped by a limit leaves the file as it was before it.
    let before = std::fs::read(file).unwrap();
    let stopped = pyeval(&[
        "--session",
        file,
        "--fuel",
        "1000000",
        "-c",
        "rows.clear()\nwhile True: pass",
    ]);
    stopped.assert_status(125);
    assert!(
        stopped.stderr.contains("left as it was before this run"),
        "{}",
        stopped.stderr
    );
    assert_eq!(std::fs::read(file).unwrap(), before);
    // The REPL keeps its session in the file too, and after a stopped input goes on from
    // the file rather than a new session (which it would then write over the file).
    let command = format!(
        "{} --session {file} --fuel 10_000_000",
        env!("CARGO_BIN_EXE_pyeval")
    );
    binary::Run::program("script", &["-qec", &command, "/dev/null"])
        .stdin("rows.append(4)\nwhile True: pass\nrows.append(5)\n")
        .go()
        .assert_status(0);
    assert_eq!(
        pyeval(&["--session", file, "-c", "rows"]).stdout,
        "[1, 2, 3, 4, 5]\n"
    );
    // A file that is not a session is refused, and left alone.
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "my notes").unwrap();
    let refused = pyeval(&["--session", other.to_str().unwrap(), "-c", "1"]);
    refused.assert_status(2);
    assert!(
        refused.stderr.contains("not a session dump"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "my notes");
    let python = pyeval(&["--python", PYTHON_WASM, "--session", file, "-c", "1"]);
    python.assert_status(2);
}
