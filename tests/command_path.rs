//! End-to-end tests of the command path: the `pyeval` binary running the stock
//! `python.wasm` that `just build-cpython` made.

mod binary;

use binary::{python, Run};

#[test]
fn hello_world() {
    let run = python(&["-c", "print('hello')"]);
    run.assert_status(0);
    assert_eq!(run.stdout, "hello\n");
    assert!(
        !run.stderr.contains("Could not find platform"),
        "stdlib warnings leaked: {}",
        run.stderr
    );
}

#[test]
fn exit_status_is_the_guests() {
    python(&["-c", "import sys; sys.exit(3)"]).assert_status(3);
    let run = python(&["-c", "raise ValueError('boom')"]);
    run.assert_status(1);
    assert!(run.stderr.contains("ValueError: boom"), "{}", run.stderr);
}

#[test]
fn stdlib_modules_with_optional_deps_import() {
    let code = "import json, re, decimal, zlib, bz2, lzma, sqlite3\n\
        data = b'pyeval' * 100\n\
        assert zlib.decompress(zlib.compress(data)) == data\n\
        assert bz2.decompress(bz2.compress(data)) == data\n\
        assert lzma.decompress(lzma.compress(data)) == data\n\
        db = sqlite3.connect(':memory:')\n\
        db.execute('create table t (x)')\n\
        db.execute('insert into t values (41)')\n\
        print(db.execute('select x + 1 from t').fetchone()[0], decimal.Decimal('0.1') * 3,\n\
              json.dumps({'a': re.sub('b', 'c', 'abc')}))";
    let run = python(&["-c", code]);
    run.assert_status(0);
    assert_eq!(run.stdout, "42 0.3 {\"a\": \"acc\"}\n");
}

#[test]
fn fuel_exhaustion_has_its_own_status_and_message() {
    let run = Run::command(&["--fuel", "50_000_000", "-c", "sum(range(10**7))"]).go();
    run.assert_status(125);
    assert!(run.stderr.contains("out of fuel"), "{}", run.stderr);
    assert!(run.stderr.contains("50,000,000"), "{}", run.stderr);
    assert!(run.stderr.contains("--fuel"), "{}", run.stderr);
}

#[test]
fn initial_fuel_env_sets_the_budget() {
    let small = Run::command(&["-c", "print(sum(range(10**7)))"])
        .env("INITIAL_FUEL", "50_000_000")
        .go();
    small.assert_status(125);
    let unlimited = Run::command(&["-c", "print(sum(range(10**7)))"])
        .env("INITIAL_FUEL", "-1")
        .go();
    unlimited.assert_status(0);
    assert_eq!(unlimited.stdout, "49999995000000\n");
}

#[test]
fn stats_report_fuel() {
    let run = python(&["--stats", "--fuel", "2_000_000_000", "-c", "pass"]);
    run.assert_status(0);
    assert!(
        run.stderr.contains("initial fuel: 2,000,000,000"),
        "{}",
        run.stderr
    );
    let remaining = stat_value(&run.stderr, "fuel remaining: ");
    let consumed = stat_value(&run.stderr, "fuel consumed: ");
    assert_eq!(remaining + consumed, 2_000_000_000);
    assert!(consumed > 0, "start-up consumes fuel");
    assert!(run.stderr.contains('%'), "{}", run.stderr);

    let off = python(&["--stats", "--fuel", "-1", "-c", "pass"]);
    off.assert_status(0);
    assert!(off.stderr.contains("unlimited"), "{}", off.stderr);
}

fn stat_value(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once(label).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {label:?} in {stderr}"));
    let digits: String = line
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.parse().unwrap()
}

#[test]
fn script_args_stdin_and_module() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("script.py"),
        "import sys\nprint(sys.argv[1:], open('/data/input.txt').read())\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("input.txt"), "from the host").unwrap();
    let mount = format!("{}:/data", dir.path().display());
    let run = python(&["--mount", &mount, "/data/script.py", "a", "-b"]);
    run.assert_status(0);
    assert_eq!(run.stdout, "['a', '-b'] from the host\n");

    let piped = Run::command(&["-"]).stdin("print(6 * 7)\n").go();
    piped.assert_status(0);
    assert_eq!(piped.stdout, "42\n");

    let module = Run::command(&["-m", "json.tool"])
        .stdin("{\"b\": [1]}")
        .go();
    module.assert_status(0);
    assert_eq!(module.stdout, "{\n    \"b\": [\n        1\n    ]\n}\n");
}

#[test]
fn read_only_mount_refuses_writes_and_rw_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    let ro = format!("{}:/data", dir.path().display());
    let run = python(&[
        "--mount",
        &ro,
        "-c",
        "open('/data/new.txt', 'w').write('x')",
    ]);
    run.assert_status(1);
    assert!(
        run.stderr.contains("PermissionError") || run.stderr.contains("OSError"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("new.txt").exists());

    let rw = format!("{}:/data:rw", dir.path().display());
    python(&[
        "--mount",
        &rw,
        "-c",
        "open('/data/new.txt', 'w').write('x')",
    ])
    .assert_status(0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "x"
    );
}

#[test]
fn host_outside_mounts_environment_and_escapes_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let mount = format!("{}:/data", dir.path().display());
    let code = r#"
import os
def visible(path):
    try:
        open(path).read()
        return True
    except OSError:
        return False
print(visible('/etc/passwd'), visible('/data/../etc/passwd'),
      visible('/data/../../../../etc/passwd'), dict(os.environ))
"#;
    let run = Run::command(&["--mount", &mount, "-c", code])
        .env("SECRET_TOKEN", "leak")
        .go();
    run.assert_status(0);
    assert_eq!(run.stdout, "False False False {}\n");

    let given = python(&[
        "--env",
        "GREETING=hi",
        "-c",
        "import os; print(dict(os.environ))",
    ]);
    assert_eq!(given.stdout, "{'GREETING': 'hi'}\n");
}

#[test]
fn bad_input_is_a_pyeval_error() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x01\0\0\0garbage").unwrap();
    let run = binary::pyeval(&["--python", corrupt.to_str().unwrap(), "-c", "pass"]);
    run.assert_status(2);
    assert!(run.stderr.contains("cannot load"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    let missing = binary::pyeval(&["--python", "/no/such/python.wasm", "-c", "pass"]);
    missing.assert_status(2);
    assert!(
        missing.stderr.contains("/no/such/python.wasm"),
        "{}",
        missing.stderr
    );

    python(&["--fuel", "lots", "-c", "pass"]).assert_status(2);
    python(&["--mount", "/no/such/dir:/x", "-c", "pass"]).assert_status(2);
    python(&["--mount", ".:relative", "-c", "pass"]).assert_status(2);
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let first = Run::command(&["-c", "print(1)"])
        .env("PYEVAL_CACHE_DIR", cache.path().to_str().unwrap())
        .go();
    first.assert_status(0);
    assert!(first.stderr.contains("compiling"), "{}", first.stderr);
    let second = Run::command(&["-c", "print(1)"])
        .env("PYEVAL_CACHE_DIR", cache.path().to_str().unwrap())
        .go();
    second.assert_status(0);
    assert_eq!(second.stderr, "");
}

/// The hostile cases that apply to a stock interpreter: each must end with the documented
/// status and leave nothing of the host reachable.
#[test]
fn hostile_code_is_contained_on_the_command_path() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    let mount = format!("{}:/data", dir.path().display());
    let writable = tempfile::tempdir().unwrap();
    let rw = format!("{}:/w:rw", writable.path().display());
    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &["--fuel", "100_000_000"],
            "while True: pass",
            125,
            "out of fuel",
        ),
        (
            &["--fuel", "-1", "--timeout", "1"],
            "while True: pass",
            124,
            "time limit",
        ),
        (
            &["--timeout", "1"],
            "import time; time.sleep(10**6)",
            124,
            "time limit",
        ),
        (&[], "[0] * 10**9", 1, "MemoryError"),
        (
            &["--memory", "64"],
            "bytearray(200 * 2**20)",
            1,
            "MemoryError",
        ),
        (&[], "def f(): f()\nf()", 1, "RecursionError"),
        (
            &[],
            "import json; json.loads('[' * 100000)",
            1,
            "RecursionError",
        ),
        (&[], "open('/etc/passwd')", 1, "FileNotFoundError"),
        (
            &["--mount", &mount],
            "open('/data/../etc/passwd')",
            1,
            "PermissionError",
        ),
        (
            &["--mount", &mount],
            "open('/data/etc-link/passwd')",
            1,
            "PermissionError",
        ),
        (
            &["--mount", &mount],
            "open('/data/x', 'w')",
            1,
            "PermissionError",
        ),
        (&[], "import socket; socket.socket()", 1, "OSError"),
        (
            &[],
            "import subprocess; subprocess.run(['ls'])",
            1,
            "OSError",
        ),
        (
            &[],
            "import threading; threading.Thread(target=print).start()",
            1,
            "RuntimeError",
        ),
        (&[], "import os; assert not os.environ, os.environ", 0, ""),
        (
            &["--mount", &rw],
            "import os; os.symlink('/etc', '/w/etc')",
            1,
            "PermissionError",
        ),
        (
            // 10,000 opens take seconds on a loaded machine.
            &["--fuel", "-1", "--timeout", "120"],
            "held = [open('/usr/local/lib/python3.13/os.py') for _ in range(20_000)]",
            123,
            "resource table",
        ),
    ];
    for (flags, code, status, stderr) in cases {
        let args: Vec<&str> = flags.iter().copied().chain(["-c", code]).collect();
        let run = Run::command(&args).env("HOST_SECRET", "x").go();
        assert_eq!(run.status, Some(*status), "{code}: {}", run.stderr);
        assert!(run.stderr.contains(stderr), "{code}: {}", run.stderr);
    }
}
