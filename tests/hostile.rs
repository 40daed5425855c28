//! The hostile suite: code written to escape or exhaust the sandbox, each case with the exact
//! outcome it must produce. After every case the same evaluator must serve a normal
//! evaluation, so a case that damaged the host would also fail the next one.

mod common;

use common::evaluator;
use std::time::Duration;

use pyeval::{EvalError, Fuel, Grants, Limits, Mount, Outcome, Stopped};

/// What a case must end with.
enum Expect {
    /// The evaluation ran; `check` holds for its outcome.
    Outcome(fn(&Outcome) -> bool),
    /// An exception of this type escaped the code.
    Raises(&'static str),
    /// The value of the trailing expression.
    Value(&'static str),
    /// The evaluation was stopped with this typed error.
    Stopped(fn(&EvalError) -> bool),
}

/// Limits a case runs under.
#[derive(Clone, Copy)]
enum Budget {
    /// The defaults.
    Default,
    /// 50 M fuel.
    LowFuel,
    /// No fuel limit, 1 s of wall time.
    ShortTime,
    /// 64 MiB of memory, no fuel limit.
    SmallMemory,
}

impl Budget {
    fn limits(self) -> Limits {
        let defaults = Limits::default();
        match self {
            Budget::Default => defaults,
            Budget::LowFuel => defaults.with_fuel(Fuel::Limited(50_000_000)),
            Budget::ShortTime => defaults
                .with_fuel(Fuel::Unlimited)
                .with_wall_time(Duration::from_secs(1)),
            Budget::SmallMemory => defaults
                .with_fuel(Fuel::Unlimited)
                .with_memory_bytes(64 << 20),
        }
    }
}

struct Case {
    name: &'static str,
    code: &'static str,
    budget: Budget,
    expect: Expect,
}

const fn case(name: &'static str, code: &'static str, budget: Budget, expect: Expect) -> Case {
    Case {
        name,
        code,
        budget,
        expect,
    }
}

fn fuel(e: &EvalError) -> bool {
    matches!(e, EvalError::Stopped(Stopped::FuelExhausted { .. }))
}

fn timeout(e: &EvalError) -> bool {
    matches!(e, EvalError::Stopped(Stopped::Timeout { .. }))
}

fn refused(e: &EvalError) -> bool {
    matches!(e, EvalError::InvalidCode(_))
}

/// Runs every case with `grants`, then checks the host still evaluates normally; panics
/// listing every case that failed.
fn run_all(cases: &[Case], grants: &Grants) {
    let mut failures = Vec::new();
    // Made (and its component read) before any case's clock starts.
    let evaluator = evaluator();
    for case in cases {
        let started = std::time::Instant::now();
        let limits = case.budget.limits();
        let result = evaluator.eval_with(case.code, &limits, grants);
        let elapsed = started.elapsed();
        let ok = match (&case.expect, &result) {
            (Expect::Outcome(check), Ok(outcome)) => check(outcome),
            (Expect::Raises(name), Ok(outcome)) => {
                outcome.error.as_ref().map(|e| e.type_name.as_str()) == Some(*name)
            }
            (Expect::Value(value), Ok(outcome)) => {
                outcome.error.is_none() && outcome.value.as_deref() == Some(*value)
            }
            (Expect::Stopped(check), Err(error)) => check(error),
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {:?}", case.name, summarize(&result)));
        }
        if elapsed > limits.wall_time + Duration::from_millis(100) {
            failures.push(format!(
                "{}: took {elapsed:?}, past its deadline",
                case.name
            ));
        }
        let after = evaluator.eval("1 + 1", &Limits::default());
        if after.as_ref().ok().and_then(|o| o.value.as_deref()) != Some("2") {
            failures.push(format!(
                "{}: the next evaluation failed: {after:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn summarize(result: &Result<Outcome, EvalError>) -> String {
    match result {
        Ok(o) => format!(
            "value={:?} error={:?} exit={:?} stdout={}B{} stderr={}B{}",
            o.value
                .as_ref()
                .map(|v| v.chars().take(60).collect::<String>()),
            o.error
                .as_ref()
                .map(|e| (&e.type_name, e.message.chars().take(80).collect::<String>())),
            o.exit_code,
            o.stdout.len(),
            if o.stdout_truncated {
                " (truncated)"
            } else {
                ""
            },
            o.stderr.len(),
            if o.stderr_truncated {
                " (truncated)"
            } else {
                ""
            },
        ),
        Err(e) => format!("Err({e})"),
    }
}

const ONE_MIB: usize = 1 << 20;

#[test]
fn cpu() {
    run_all(
        &[
            case(
                "busy loop, fuel",
                "while True: pass",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "busy loop, time",
                "while True: pass",
                Budget::ShortTime,
                Expect::Stopped(timeout),
            ),
            case(
                "huge sum",
                "sum(range(10**10))",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "huge power",
                "2 ** (10 ** 9)",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "catastrophic regex",
                "import re\nre.match('(a*)*b', 'a' * 40)",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "endless generator",
                "import itertools\nfor _ in itertools.count(): pass",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "finally that never ends",
                "while True:\n    try:\n        pass\n    finally:\n        continue",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "clock in a loop",
                "import time\nwhile True: time.time()",
                Budget::ShortTime,
                Expect::Stopped(timeout),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn memory() {
    run_all(
        &[
            case(
                "billion-element list",
                "[0] * 10**9",
                Budget::Default,
                Expect::Raises("MemoryError"),
            ),
            case(
                "2 GiB bytearray",
                "bytearray(2**31)",
                Budget::Default,
                Expect::Raises("OverflowError"),
            ),
            case(
                "8 GiB string",
                "'x' * 2**33",
                Budget::Default,
                Expect::Raises("OverflowError"),
            ),
            case(
                "300 MiB bytes",
                "b'x' * (300 * 2**20)",
                Budget::Default,
                Expect::Raises("MemoryError"),
            ),
            case(
                "appending forever",
                "a = []\nwhile True: a.append(' ' * 10**6)",
                Budget::SmallMemory,
                Expect::Raises("MemoryError"),
            ),
            case(
                "bytearray over a small cap",
                "bytearray(200 * 2**20)",
                Budget::SmallMemory,
                Expect::Raises("MemoryError"),
            ),
            case(
                "huge array",
                "import array\narray.array('d', [0]) * 10**9",
                Budget::Default,
                Expect::Raises("MemoryError"),
            ),
            case(
                "dict growth",
                "d = {}\nfor i in range(10**8): d[i] = i",
                Budget::SmallMemory,
                Expect::Raises("MemoryError"),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn host_memory_through_output() {
    run_all(
        &[
            case(
                "10 MB print",
                "print('x' * 10**7)",
                Budget::Default,
                Expect::Outcome(|o| o.stdout_truncated && o.stdout.len() <= ONE_MIB),
            ),
            case(
                "printing forever",
                "while True: print('x' * 10**6)",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "raw writes forever",
                "import os\nwhile True: os.write(1, b'x' * 65536)",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "5 MiB to stderr",
                "import sys\nsys.stderr.write('e' * (5 * 2**20))",
                Budget::Default,
                Expect::Outcome(|o| o.stderr_truncated && o.stderr.len() <= ONE_MIB),
            ),
            case(
                "raw 3 MiB to fd 2",
                "import os\nos.write(2, b'y' * (3 * 2**20))",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "10 MB value",
                "'v' * 10**7",
                Budget::Default,
                Expect::Outcome(|o| {
                    o.value
                        .as_ref()
                        .is_some_and(|v| v.len() <= ONE_MIB && v.ends_with("..."))
                }),
            ),
            case(
                "10 MB exception message",
                "raise ValueError('m' * 10**7)",
                Budget::Default,
                Expect::Outcome(|o| {
                    o.error.as_ref().is_some_and(|e| {
                        e.type_name == "ValueError"
                            && e.message.len() <= ONE_MIB
                            && e.traceback.len() <= ONE_MIB
                    })
                }),
            ),
            case(
                "stdout cap tampered with in the guest",
                "import sys\nsys.stdout.buffer.raw._room = 10**9\nprint('x' * 3 * 10**6)",
                Budget::Default,
                Expect::Outcome(|o| o.stdout_truncated && o.stdout.len() <= ONE_MIB),
            ),
            case(
                "session limit tampered with in the guest",
                "import sys\nsys._getframe(1).f_locals['self'].output_limit = 10**9\n'v' * 3 * 10**6",
                Budget::Default,
                Expect::Outcome(|o| o.value.as_ref().is_some_and(|v| v.len() <= ONE_MIB)),
            ),
            case(
                "error cap tampered with in the guest",
                "import sys\nsys._getframe(1).f_locals['self'].output_limit = 10**9\nraise ValueError('m' * 3 * 10**6)",
                Budget::Default,
                Expect::Outcome(|o| {
                    o.error.as_ref().is_some_and(|e| {
                        e.message.len() <= ONE_MIB && e.traceback.len() <= ONE_MIB
                    })
                }),
            ),
            case(
                "unicode cut on a character boundary",
                "print('é' * 10**6)",
                Budget::Default,
                Expect::Outcome(|o| o.stdout_truncated && o.stdout.chars().all(|c| c == 'é')),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn recursion() {
    run_all(
        &[
            case(
                "python recursion",
                "def f(): f()\nf()",
                Budget::Default,
                Expect::Raises("RecursionError"),
            ),
            case(
                "nested json",
                "import json\njson.loads('[' * 100000)",
                Budget::Default,
                Expect::Raises("RecursionError"),
            ),
            case(
                "nested repr",
                "a = []\nfor i in range(100000): a = [a]\nrepr(a)",
                Budget::Default,
                Expect::Raises("RecursionError"),
            ),
            case(
                "raised recursion limit",
                "import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return f(n + 1)\nf(0)",
                Budget::LowFuel,
                Expect::Stopped(fuel),
            ),
            case(
                "nested parentheses",
                "eval('(' * 10000 + ')' * 10000)",
                Budget::Default,
                Expect::Raises("MemoryError"),
            ),
            case(
                "nested literal_eval",
                "import ast\nast.literal_eval('[' * 100000 + ']' * 100000)",
                Budget::Default,
                Expect::Raises("MemoryError"),
            ),
            case(
                "deep pickle",
                "import pickle\npickle.loads(b'(' * 100000 + b'l' * 100000 + b'.')",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_some()),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn blocking_calls() {
    run_all(
        &[
            case(
                "sleep a million seconds",
                "import time\ntime.sleep(10**6)",
                Budget::ShortTime,
                Expect::Stopped(timeout),
            ),
            case(
                "input with no stdin",
                "input()",
                Budget::Default,
                Expect::Raises("EOFError"),
            ),
            case(
                "read stdin",
                "import sys\nsys.stdin.read()",
                Budget::Default,
                Expect::Value("''"),
            ),
            case(
                "select on stdin",
                "import select\nselect.select([0], [], [], 100)",
                Budget::ShortTime,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "wait on an event",
                "import threading\nthreading.Event().wait(100)",
                Budget::ShortTime,
                Expect::Stopped(timeout),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn files_and_path_escapes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd-link")).unwrap();
    let grants = Grants::new().with_mount(
        format!("{}:/data", dir.path().display())
            .parse::<Mount>()
            .unwrap(),
    );
    run_all(
        &[
            case(
                "read the mount",
                "open('/data/file.txt').read()",
                Budget::Default,
                Expect::Value("'inside'"),
            ),
            case(
                "host file",
                "open('/etc/passwd')",
                Budget::Default,
                Expect::Raises("FileNotFoundError"),
            ),
            case(
                "stdlib source on disk",
                "open('/usr/local/lib/python3.13/os.py')",
                Budget::Default,
                Expect::Raises("FileNotFoundError"),
            ),
            case(
                "dot-dot",
                "open('/data/../etc/passwd')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "many dot-dots",
                "open('/data/../../../../etc/passwd')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "directory symlink",
                "open('/data/etc-link/passwd')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "file symlink",
                "open('/data/passwd-link')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "write to a read-only mount",
                "open('/data/new.txt', 'w')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "delete from a read-only mount",
                "import os\nos.remove('/data/file.txt')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "relative escape after chdir",
                "import os\nos.chdir('/data')\nopen('../../etc/passwd')",
                Budget::Default,
                Expect::Outcome(|o| {
                    o.error
                        .as_ref()
                        .is_some_and(|e| e.type_name.ends_with("Error"))
                }),
            ),
            case(
                "mkdir at the root is the scratch tree's, not the host's",
                "import os\nos.mkdir('/etc')\nos.listdir('/etc'), sorted(os.listdir('/'))",
                Budget::Default,
                Expect::Value("([], ['data', 'dev', 'etc', 'tmp'])"),
            ),
            case(
                "proc",
                "open('/proc/self/environ')",
                Budget::Default,
                Expect::Raises("FileNotFoundError"),
            ),
        ],
        &grants,
    );
    assert!(dir.path().join("file.txt").exists());
    assert!(!dir.path().join("new.txt").exists());
}

#[test]
fn scratch_file_system() {
    run_all(
        &[
            case(
                "fill it",
                "import errno\n\
                 f = open('big', 'wb')\n\
                 try:\n\
                 \x20   while True: f.write(b'x' * 2**20)\n\
                 except OSError as e:\n\
                 \x20   why = errno.errorcode[e.errno]\n\
                 why, 16 * 2**20 < f.tell() < 64 * 2**20",
                Budget::SmallMemory,
                Expect::Value("('ENOSPC', True)"),
            ),
            case(
                "fill it without catching",
                "f = open('big', 'wb')\nwhile True: f.write(b'x' * 2**20)",
                Budget::SmallMemory,
                Expect::Raises("OSError"),
            ),
            case(
                "many files",
                "i = 0\nwhile True:\n    open('x' * 200 + str(i), 'w').close(); i += 1",
                Budget::SmallMemory,
                Expect::Raises("MemoryError"),
            ),
            case(
                "a deep tree",
                "import os\n\
                 fd = os.open('.', os.O_RDONLY)\n\
                 for _ in range(3000):\n\
                 \x20   os.mkdir('d', dir_fd=fd)\n\
                 \x20   fd, old = os.open('d', os.O_RDONLY, dir_fd=fd), fd\n\
                 \x20   os.close(old)\n\
                 sum(1 for _ in os.walk('d'))",
                Budget::ShortTime,
                // Paths stop at 4,096 bytes, as on Linux: os.walk skips what lies deeper.
                Expect::Value("2046"),
            ),
            case(
                "too many open files",
                "import os\n[os.open(f'f{i}', os.O_CREAT | os.O_WRONLY) for i in range(5000)]",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "a write far past the end",
                "f = open('far', 'wb')\nf.seek(2**40)\nf.write(b'x')\nf.flush()",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "a sparse file of 2 GiB",
                "import os\nf = open('huge', 'wb')\nos.truncate(f.fileno(), 2**31)\nos.path.getsize('huge')",
                Budget::SmallMemory,
                Expect::Value("2147483648"),
            ),
            case(
                "a sparse file of 2 GiB read whole",
                "import os\nf = open('huge', 'wb')\nos.truncate(f.fileno(), 2**31)\nlen(open('huge', 'rb').read())",
                Budget::SmallMemory,
                Expect::Raises("MemoryError"),
            ),
            case(
                "a size past what the platform addresses",
                "import os\nf = open('huge', 'wb')\nos.truncate(f.fileno(), 2**40)",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "dot-dots stop at the root",
                "import os\n\
                 (sorted(os.listdir('/tmp/../../../..')), os.path.exists('../../etc/passwd'),\n\
                  os.path.exists('/tmp/../../etc/hostname'))",
                Budget::Default,
                Expect::Value("(['dev', 'tmp'], False, False)"),
            ),
            case(
                "a symbolic link",
                "import os\nopen('target', 'w').close()\nos.symlink('/etc/passwd', 'link')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "a hard link to a directory",
                "import os\nos.mkdir('dir')\nos.link('dir', 'again')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "a directory moved into itself",
                "import os\nos.makedirs('a/b')\nos.rename('a', 'a/b/c')",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "the root removed",
                "import os\nos.rmdir('/')",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "nothing left for the next evaluation",
                "import os\nos.listdir('/tmp')",
                Budget::Default,
                Expect::Value("[]"),
            ),
        ],
        &Grants::new(),
    );
}

#[test]
fn environment() {
    std::env::set_var("PYEVAL_HOSTILE_SECRET", "host-only");
    run_all(
        &[
            case(
                "no host environment",
                "import os\ndict(os.environ)",
                Budget::Default,
                Expect::Value("{}"),
            ),
            case(
                "getenv of a host variable",
                "import os\nos.getenv('PYEVAL_HOSTILE_SECRET')",
                Budget::Default,
                Expect::Outcome(|o| o.value.is_none() && o.error.is_none()),
            ),
            case(
                "set a variable",
                "import os\nos.environ['X'] = '1'",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "and it is gone",
                "import os\n'X' in os.environ",
                Budget::Default,
                Expect::Value("False"),
            ),
        ],
        &Grants::default(),
    );
    let granted = Grants::new().with_env("ONLY", "this");
    run_all(
        &[case(
            "granted variable",
            "import os\ndict(os.environ)",
            Budget::Default,
            Expect::Value("{'ONLY': 'this'}"),
        )],
        &granted,
    );
}

#[test]
fn network() {
    run_all(
        &[
            case(
                "socket",
                "import socket\nsocket.socket()",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "connect",
                "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_some()),
            ),
            case(
                "name lookup",
                "import socket\nsocket.getaddrinfo('example.com', 80)",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_some()),
            ),
            case(
                "http",
                "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)",
                Budget::Default,
                Expect::Outcome(|o| o.error.as_ref().is_some_and(|e| e.message.contains("no network is granted"))),
            ),
            case(
                "the host's HTTP function called directly",
                "import _pyeval\n_pyeval._http_request('GET', 'http', '169.254.169.254', '/', [], b'', 1.0)",
                Budget::Default,
                Expect::Value("(1, 'no network is granted')"),
            ),
            case(
                "the host's HTTP function given bad arguments",
                "import _pyeval\n_pyeval._http_request('GET', 'http', 'x', '/', [('a', 'str')], b'', 'soon')",
                Budget::Default,
                Expect::Raises("TypeError"),
            ),
            case(
                "the guest's HTTP layer replaced",
                "import _pyeval_network, http.client\n_pyeval_network._raise = lambda *a: None\nc = http.client.HTTPConnection('example.com')\nc.request('GET', '/')\nc.getresponse()",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_some()),
            ),
            case(
                "TLS on anything but the host's connections",
                "import io, ssl\nssl.create_default_context().wrap_socket(io.BytesIO())",
                Budget::Default,
                Expect::Raises("ssl.SSLError"),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn processes_threads_and_signals() {
    run_all(
        &[
            case(
                "subprocess",
                "import subprocess\nsubprocess.run(['ls'])",
                Budget::Default,
                Expect::Raises("OSError"),
            ),
            case(
                "system",
                "import os\nos.system('ls')",
                Budget::Default,
                Expect::Raises("AttributeError"),
            ),
            case(
                "fork",
                "import os\nos.fork()",
                Budget::Default,
                Expect::Raises("AttributeError"),
            ),
            case(
                "thread",
                "import threading\nthreading.Thread(target=print).start()",
                Budget::Default,
                Expect::Raises("RuntimeError"),
            ),
            case(
                "kill",
                "import os\nos.kill(1, 9)",
                Budget::Default,
                Expect::Raises("AttributeError"),
            ),
            case(
                "alarm",
                "import signal\nsignal.alarm(1)",
                Budget::Default,
                Expect::Raises("AttributeError"),
            ),
            case(
                "ctypes",
                "import ctypes",
                Budget::Default,
                Expect::Raises("ModuleNotFoundError"),
            ),
            case(
                "multiprocessing",
                "import multiprocessing\nmultiprocessing.Process(target=print).start()",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_some()),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn tampering_does_not_outlive_an_evaluation() {
    run_all(
        &[
            case(
                "replace print",
                "import builtins\nbuiltins.print = None",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "print still works",
                "print('ok')",
                Budget::Default,
                Expect::Outcome(|o| o.stdout == "ok\n"),
            ),
            case(
                "poison sys.modules",
                "import sys\nsys.modules['json'] = 'x'",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "json still imports",
                "import json\njson.dumps([1])",
                Budget::Default,
                Expect::Value("'[1]'"),
            ),
            case(
                "clear the import system",
                "import sys\nsys.meta_path.clear()\nsys.path_hooks.clear()",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "imports still work",
                "import zipfile, email.mime.text\nzipfile.__name__",
                Budget::Default,
                Expect::Value("'zipfile'"),
            ),
            case(
                "empty the stdlib importer",
                "import sys\nnext(f for f in sys.meta_path if hasattr(f, '_index'))._index.clear()",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "a module not yet imported",
                "import tomllib\ntomllib.loads('a = 1')",
                Budget::Default,
                Expect::Value("{'a': 1}"),
            ),
            case(
                "empty the sandbox's own importer",
                "import sys\nsys.meta_path[0]._code.clear()",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "its modules import again",
                "import ssl\nssl.OPENSSL_VERSION",
                Budget::Default,
                Expect::Value("'OpenSSL 3.0.0 compatible: TLS by the pyeval host (rustls)'"),
            ),
            case(
                "tiny recursion limit",
                "import sys\nsys.setrecursionlimit(50)",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "recursion limit restored",
                "def f(n): return 0 if n == 0 else f(n - 1)\nf(500)",
                Budget::Default,
                Expect::Value("0"),
            ),
            case(
                "fill memory",
                "x = bytearray(200 * 2**20)",
                Budget::Default,
                Expect::Outcome(|o| o.error.is_none()),
            ),
            case(
                "memory is back",
                "len(bytearray(200 * 2**20))",
                Budget::Default,
                Expect::Value("209715200"),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn malformed_input() {
    let big: &'static str = Box::leak(format!("x = 1\n{}", "#".repeat(2 << 20)).into_boxed_str());
    let long_line: &'static str =
        Box::leak(format!("x = 0\n{}\nx", "x += 1;".repeat(2_000)).into_boxed_str());
    run_all(
        &[
            case(
                "NUL byte",
                "print(1)\0print(2)",
                Budget::Default,
                Expect::Stopped(refused),
            ),
            case(
                "over the size limit",
                big,
                Budget::Default,
                Expect::Stopped(refused),
            ),
            case(
                "syntax error",
                "def (",
                Budget::Default,
                Expect::Raises("SyntaxError"),
            ),
            case(
                "bad indentation",
                "if True:\nprint(1)",
                Budget::Default,
                Expect::Raises("IndentationError"),
            ),
            case(
                "empty",
                "",
                Budget::Default,
                Expect::Outcome(|o| o.value.is_none() && o.error.is_none()),
            ),
            case(
                "byte order mark",
                "\u{feff}1 + 1",
                Budget::Default,
                Expect::Raises("SyntaxError"),
            ),
            case(
                "14 kB line",
                long_line,
                Budget::Default,
                Expect::Value("2000"),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn odd_values_crossing_the_boundary() {
    run_all(
        &[
            case(
                "repr raises",
                "class A:\n    def __repr__(self): raise ValueError('no')\nA()",
                Budget::Default,
                Expect::Raises("ValueError"),
            ),
            case(
                "repr returns a non-str",
                "class A:\n    def __repr__(self): return 1\nA()",
                Budget::Default,
                Expect::Raises("TypeError"),
            ),
            case(
                "str of the exception raises",
                "class E(Exception):\n    def __str__(self): raise RuntimeError\nraise E()",
                Budget::Default,
                Expect::Outcome(|o| o.error.as_ref().is_some_and(|e| e.type_name == "E")),
            ),
            case(
                "huge exit status",
                "raise SystemExit(2**100)",
                Budget::Default,
                Expect::Outcome(|o| o.exit_code == Some(i32::MAX)),
            ),
            case(
                "negative exit status",
                "raise SystemExit(-1)",
                Budget::Default,
                Expect::Outcome(|o| o.exit_code == Some(-1)),
            ),
            case(
                "object exit status",
                "raise SystemExit(object())",
                Budget::Default,
                Expect::Outcome(|o| {
                    o.exit_code == Some(1) && o.stderr.starts_with("<object object")
                }),
            ),
            case(
                "NUL in output",
                "print('a\\0b')",
                Budget::Default,
                Expect::Outcome(|o| o.stdout == "a\0b\n"),
            ),
            case(
                "lone surrogate",
                "'\\ud800'",
                Budget::Default,
                Expect::Value("'\\ud800'"),
            ),
            case(
                "surrogate printed",
                "print('\\udcff')",
                Budget::Default,
                Expect::Outcome(|o| o.stdout == "\\udcff\n"),
            ),
            case(
                "KeyboardInterrupt",
                "raise KeyboardInterrupt",
                Budget::Default,
                Expect::Raises("KeyboardInterrupt"),
            ),
            case(
                "BaseException subclass",
                "class Out(BaseException): pass\nraise Out('x')",
                Budget::Default,
                Expect::Raises("Out"),
            ),
        ],
        &Grants::default(),
    );
}

#[test]
fn a_session_that_traps_ends_and_a_new_one_works() {
    for (budget, code) in [
        (Budget::LowFuel, "while True: pass"),
        (Budget::ShortTime, "import time\ntime.sleep(100)"),
    ] {
        let mut session = evaluator().session(&budget.limits()).unwrap();
        session.eval("kept = 1").unwrap();
        let error = session.eval(code).unwrap_err();
        assert!(
            matches!(session.eval("kept"), Err(EvalError::SessionEnded(ref why)) if error.stopped() == Some(why))
        );
        let mut next = evaluator().session(&budget.limits()).unwrap();
        assert_eq!(
            next.eval("'kept' in globals()").unwrap().value.as_deref(),
            Some("False")
        );
    }
    let mut session = evaluator().session(&Limits::default()).unwrap();
    assert!(matches!(session.eval("\0"), Err(EvalError::InvalidCode(_))));
    assert_eq!(
        session.eval("1").unwrap().value.as_deref(),
        Some("1"),
        "a refused input does not end a session"
    );
}

#[test]
fn a_memory_cap_below_the_interpreter_is_a_typed_error() {
    let limits = Limits::default().with_memory_bytes(1 << 20);
    let error = evaluator().eval("1", &limits).unwrap_err();
    assert_eq!(
        error,
        EvalError::Stopped(Stopped::MemoryLimit { limit: 1 << 20 })
    );
    assert_eq!(
        evaluator()
            .eval("1", &Limits::default())
            .unwrap()
            .value
            .as_deref(),
        Some("1")
    );
}

/// A link the guest makes in a writable mount could later lead whatever follows it on the
/// host out of the mount: the guest cannot make one, on either path.
#[test]
fn guests_cannot_make_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let grants = Grants::new().with_mount(Mount::writable(dir.path(), "/w").unwrap());
    run_all(
        &[
            case(
                "a link climbing out",
                "import os\nos.symlink('../../../proc/self', '/w/in')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "an absolute link",
                "import os\nos.symlink('/etc', '/w/etc')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "a link inside the mount",
                "import os\nos.mkdir('/w/d')\nos.symlink('d', '/w/d-link')",
                Budget::Default,
                Expect::Raises("PermissionError"),
            ),
            case(
                "files and directories still work",
                "import os\nos.makedirs('/w/a/b', exist_ok=True)\n\
                 open('/w/a/b/f', 'w').write('x')\nos.listdir('/w/a/b')",
                Budget::Default,
                Expect::Value("['f']"),
            ),
        ],
        &grants,
    );
    let links: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.symlink_metadata().unwrap().file_type().is_symlink())
        .collect();
    assert!(links.is_empty(), "links made: {links:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.symlink_metadata().unwrap().is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// A mount is the directory opened when it was made: replacing its path by a link
/// afterwards (as code with an earlier rw mount of the parent could have) changes nothing,
/// and a path through a link is refused.
#[test]
fn mounts_are_opened_once_and_never_through_links() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "mine").unwrap();
    let grants = Grants::new().with_mount(Mount::read_only(&dir, "/in").unwrap());
    std::fs::rename(&dir, root.path().join("moved")).unwrap();
    std::os::unix::fs::symlink("/proc/self", &dir).unwrap();
    run_all(
        &[
            case(
                "the mount after its path became a link",
                "import os\nsorted(os.listdir('/in'))",
                Budget::Default,
                Expect::Value("['mine.txt']"),
            ),
            case(
                "the host's environment through the link",
                "open('/in/environ').read()",
                Budget::Default,
                Expect::Raises("FileNotFoundError"),
            ),
        ],
        &grants,
    );
    let refused = Mount::read_only(&dir, "/in");
    assert!(
        matches!(refused, Err(pyeval::MountError::Symlink { .. })),
        "{refused:?}"
    );
}

/// Opening a FIFO in a mount blocks in the host, where epochs cannot interrupt it: the
/// evaluation still ends at its deadline.
#[test]
fn a_fifo_in_a_mount_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let grants = Grants::new().with_mount(Mount::read_only(dir.path(), "/d").unwrap());
    run_all(
        &[case(
            "open a FIFO with no writer",
            "open('/d/p').read()",
            Budget::ShortTime,
            Expect::Stopped(timeout),
        )],
        &grants,
    );
}

/// Every generator of random numbers in the snapshot is reseeded in each instance: fresh
/// evaluations never share a sequence (a guessable sequence would let one user predict
/// another's tokens).
#[test]
fn no_random_sequence_is_shared_between_instances() {
    let sources = [
        "import sqlite3\nsqlite3.connect(':memory:').execute('select hex(randomblob(16))').fetchone()[0]",
        "import random\nrandom.getrandbits(128)",
        "import os\nos.urandom(16).hex()",
        "import uuid\nstr(uuid.uuid4())",
        "import tempfile\nnext(tempfile._get_candidate_names())",
    ];
    for code in sources {
        let values: std::collections::HashSet<_> = (0..4)
            .map(|_| {
                let outcome = evaluator().eval(code, &Limits::default()).unwrap();
                assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
                outcome.value.unwrap()
            })
            .collect();
        assert_eq!(
            values.len(),
            4,
            "{code} repeated across fresh instances: {values:?}"
        );
    }
}

#[test]
fn a_trap_is_blamed_on_memory_only_right_after_a_refused_growth() {
    let limits = Limits::default().with_memory_bytes(128 << 20);
    let mut session = evaluator().session(&limits).unwrap();
    let caught = "try:\n    bytearray(1 << 30)\nexcept MemoryError:\n    caught = True\n";
    assert_eq!(
        session
            .eval(&format!("{caught}caught"))
            .unwrap()
            .value
            .as_deref(),
        Some("True")
    );
    // A later evaluation's crash is its own.
    let later = session.eval("import os\nos.abort()").unwrap_err();
    assert!(
        matches!(later, EvalError::Stopped(Stopped::Trap(_))),
        "{later:?}"
    );

    // In one evaluation: memory granted after the refusal clears it.
    let regrown = format!("{caught}kept = bytearray(48 << 20)\nimport os\nos.abort()");
    let error = evaluator().eval(&regrown, &limits).unwrap_err();
    assert!(
        matches!(error, EvalError::Stopped(Stopped::Trap(_))),
        "{error:?}"
    );
    // A crash for want of memory still says so.
    let starved = format!("{caught}import os\nos.abort()");
    let error = evaluator().eval(&starved, &limits).unwrap_err();
    assert_eq!(
        error,
        EvalError::Stopped(Stopped::MemoryLimit { limit: 128 << 20 })
    );
}
