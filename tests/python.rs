//! Python as people write it, in the evaluator: asyncio, `exit()` and `help()`, stdin,
//! `PYTHONPATH`, warnings that point at the user's line, SQLite with several connections,
//! a clear word on threads, time zones, and scratch files in memory.

mod common;

use std::time::Duration;

use common::evaluator;
use pyeval::{EvalError, Grants, Limits, Mount, Outcome, Stdin, Stopped};

fn run(code: &str, grants: &Grants) -> Outcome {
    let outcome = evaluator()
        .eval_with(code, &Limits::default(), grants)
        .unwrap();
    assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
    outcome
}

#[test]
fn asyncio_runs_coroutines_tasks_and_timers() {
    let code = "import asyncio\n\
        async def main():\n\
        \x20   a, b = await asyncio.gather(asyncio.sleep(0.01, 'a'), asyncio.sleep(0.02, 'b'))\n\
        \x20   task = asyncio.create_task(asyncio.sleep(0, 'c'))\n\
        \x20   try:\n\
        \x20       await asyncio.wait_for(asyncio.sleep(5), 0.05)\n\
        \x20   except TimeoutError:\n\
        \x20       print('timed out')\n\
        \x20   return a + b + await task\n\
        asyncio.run(main())";
    let outcome = run(code, &Grants::new());
    assert_eq!(outcome.value.as_deref(), Some("'abc'"));
    assert_eq!(outcome.stdout, "timed out\n");
    assert_eq!(
        outcome.stderr, "",
        "nothing stray from the sandbox's own frames"
    );
    // A reset policy, or a loop class named outright, is still the sandbox's loop.
    let reset = run(
        "import asyncio\n\
         asyncio.set_event_loop_policy(None)\n\
         a = asyncio.run(asyncio.sleep(0, 'a'))\n\
         a + asyncio.run(asyncio.sleep(0, 'b'), loop_factory=asyncio.EventLoop)",
        &Grants::new(),
    );
    assert_eq!(reset.value.as_deref(), Some("'ab'"));
    // A loop sleeping past the wall-time limit is stopped like any other code.
    let limits = Limits::default().with_wall_time(Duration::from_millis(300));
    let slept = evaluator().eval("import asyncio\nasyncio.run(asyncio.sleep(60))", &limits);
    assert!(
        matches!(slept, Err(EvalError::Stopped(Stopped::Timeout { .. }))),
        "{slept:?}"
    );
}

#[test]
fn the_site_builtins_are_there() {
    for (code, status) in [("exit()", 0), ("exit(3)", 3), ("quit(4)", 4)] {
        let outcome = evaluator().eval(code, &Limits::default()).unwrap();
        assert_eq!(outcome.exit_code, Some(status), "{code}");
    }
    let help = run("help(len)", &Grants::new());
    assert!(
        help.stdout.starts_with("Help on built-in function len"),
        "{}",
        help.stdout
    );
    let shown = run(
        "repr(copyright), repr(credits), type(license).__name__",
        &Grants::new(),
    );
    assert!(shown.value.unwrap().contains("Copyright"));
}

#[test]
fn stdin_is_what_the_grants_give() {
    let grants = Grants::new().with_stdin(Stdin::Bytes(b"first\nsecond\n".to_vec()));
    let outcome = run("input(), input()", &grants);
    assert_eq!(outcome.value.as_deref(), Some("('first', 'second')"));
    let none = evaluator().eval("input()", &Limits::default()).unwrap();
    assert_eq!(none.error.unwrap().type_name, "EOFError");
}

#[test]
fn pythonpath_in_the_environment_extends_the_import_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mymod.py"), "X = 42\n").unwrap();
    let grants = Grants::new()
        .with_mount(Mount::read_only(dir.path(), "/mnt").unwrap())
        .with_env("PYTHONPATH", "/mnt:/nowhere");
    let outcome = run("import sys, mymod\nmymod.X, sys.path[:3]", &grants);
    assert_eq!(
        outcome.value.as_deref(),
        Some("(42, ['', '/mnt', '/nowhere'])")
    );
}

#[test]
fn warnings_point_at_the_users_line() {
    let outcome = run(
        "import warnings\nwarnings.simplefilter('always')\nimport sre_compile",
        &Grants::new(),
    );
    assert!(
        outcome.stderr.starts_with("<string>:3: DeprecationWarning"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn sqlite_takes_several_connections_to_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let grants = Grants::new().with_mount(Mount::writable(dir.path(), "/w").unwrap());
    let code = "import sqlite3\n\
        a = sqlite3.connect('/w/t.db')\n\
        a.execute('create table t(x)')\n\
        a.commit()\n\
        b = sqlite3.connect('/w/t.db')\n\
        b.execute('insert into t values (1)')\n\
        b.commit()\n\
        a.execute('select count(*) from t').fetchone()";
    assert_eq!(run(code, &grants).value.as_deref(), Some("(1,)"));
}

#[test]
fn threads_say_why_they_cannot_start() {
    let outcome = evaluator()
        .eval(
            "import threading\nthreading.Thread(target=print).start()",
            &Limits::default(),
        )
        .unwrap();
    let error = outcome.error.unwrap();
    assert_eq!(error.type_name, "RuntimeError");
    assert!(error.message.contains("no threads"), "{}", error.message);
}

#[test]
fn await_works_at_the_top_level() {
    let outcome = run(
        "import asyncio\nawait asyncio.sleep(0.01)\nawait asyncio.sleep(0, 'done')",
        &Grants::new(),
    );
    assert_eq!(outcome.value.as_deref(), Some("'done'"));
    // A session keeps its loop: a task made in one evaluation finishes in the next.
    let mut session = evaluator().session(&Limits::default()).unwrap();
    session
        .eval("import asyncio\ntask = asyncio.ensure_future(asyncio.sleep(0.01, 42))\nawait asyncio.sleep(0)")
        .unwrap();
    let second = session.eval("await task").unwrap();
    assert_eq!(second.value.as_deref(), Some("42"), "{second:?}");
    // Plain code is untouched, and asyncio.run still works beside it.
    let outcome = run(
        "import asyncio\nasync def f():\n    return 7\nasyncio.run(f())",
        &Grants::new(),
    );
    assert_eq!(outcome.value.as_deref(), Some("7"));
}

#[test]
fn zoneinfo_has_the_iana_data() {
    let outcome = run(
        "from zoneinfo import ZoneInfo, available_timezones\n\
         from datetime import datetime\n\
         d = datetime(2024, 7, 1, 12, tzinfo=ZoneInfo('Europe/Paris'))\n\
         (d.isoformat(), d.astimezone(ZoneInfo('America/New_York')).isoformat(),\n\
          'Asia/Tokyo' in available_timezones())",
        &Grants::new(),
    );
    assert_eq!(
        outcome.value.as_deref(),
        Some("('2024-07-01T12:00:00+02:00', '2024-07-01T06:00:00-04:00', True)")
    );
    // The data is the `tzdata` package, its files reachable as resources.
    let resources = run(
        "import importlib.resources as r\n\
         (r.files('tzdata').joinpath('zones').read_text().split()[:2],\n\
          r.files('tzdata.zoneinfo.Europe').joinpath('Paris').read_bytes()[:4])",
        &Grants::new(),
    );
    assert_eq!(
        resources.value.as_deref(),
        Some("(['Africa/Abidjan', 'Africa/Algiers'], b'TZif')")
    );
    let unknown = evaluator()
        .eval(
            "import zoneinfo\nzoneinfo.ZoneInfo('Nowhere/City')",
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(
        unknown.error.unwrap().type_name,
        "zoneinfo._common.ZoneInfoNotFoundError"
    );
}

#[test]
fn scratch_files_are_written_and_read_back_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let grants = Grants::new().with_mount(Mount::read_only(dir.path(), "/data").unwrap());
    let code = r#"
import os, shutil, tempfile, pathlib
log = [os.getcwd(), sorted(os.listdir('/'))]
with open('out.txt', 'w') as f:
    f.write('hello\n')
with open('out.txt', 'a') as f:
    f.write('again\n')
log.append(open('/tmp/out.txt').read())
with tempfile.NamedTemporaryFile('w+b') as f:
    f.write(b'abc'); f.seek(0)
    log.append((os.path.dirname(f.name), f.read()))
with tempfile.TemporaryDirectory() as d:
    p = pathlib.Path(d, 'a', 'b'); p.mkdir(parents=True)
    (p / 'c.bin').write_bytes(bytes(range(256)) * 1000)
    log.append([(os.path.relpath(r, d), ds, fs) for r, ds, fs in os.walk(d)])
    shutil.copytree(d, 'copy')
    log.append(os.path.getsize('copy/a/b/c.bin'))
open('café.txt', 'w').write('é')
log.append(sorted(os.listdir()))
f = open('sparse', 'w+b'); f.seek(100_000); f.write(b'end'); f.truncate(100_001); f.seek(0)
data = f.read(); log.append((len(data), data.count(0), data[-1:])); f.close()
os.rename('sparse', 'moved'); os.link('moved', 'hard')
log.append((os.stat('hard').st_nlink, os.path.exists('sparse')))
shutil.rmtree('copy'); os.remove('moved'); os.remove('hard')
open('helper.py', 'w').write('ANSWER = 42\n')
import helper
log.append(helper.ANSWER)
log
"#;
    let outcome = run(code, &grants);
    assert_eq!(
        outcome.value.as_deref(),
        Some(
            "['/tmp', ['data', 'dev', 'tmp'], 'hello\\nagain\\n', ('/tmp', b'abc'), \
             [('.', ['a'], []), ('a', ['b'], []), ('a/b', [], ['c.bin'])], 256000, \
             ['café.txt', 'copy', 'out.txt'], (100001, 100000, b'e'), (2, False), 42]"
        )
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_session_keeps_its_files_and_a_fresh_evaluation_starts_empty() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    let first = session
        .eval("open('notes.txt', 'w').write('kept')\nopen('/tmp/notes.txt').read()")
        .unwrap();
    assert_eq!(first.value.as_deref(), Some("'kept'"));
    let second = session.eval("open('notes.txt').read()").unwrap();
    assert_eq!(second.value.as_deref(), Some("'kept'"));
    let fresh = run(
        "import os\nos.listdir('/tmp'), os.listdir('/')",
        &Grants::new(),
    );
    assert_eq!(fresh.value.as_deref(), Some("([], ['dev', 'tmp'])"));
}

#[test]
fn mounts_sit_beside_the_scratch_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "a,b\n1,2\n").unwrap();
    let grants = Grants::new().with_mount(Mount::writable(dir.path(), "/work/io").unwrap());
    let code = "import os, shutil, errno\n\
        shutil.copy('/work/io/in.csv', 'local.csv')\n\
        try:\n\
        \x20   os.rename('local.csv', '/work/io/out.csv')\n\
        except OSError as e:\n\
        \x20   crossed = errno.errorcode[e.errno]\n\
        shutil.move('local.csv', '/work/io/out.csv')\n\
        crossed, sorted(os.listdir('/')), os.listdir('/work'), os.path.exists('local.csv')";
    assert_eq!(
        run(code, &grants).value.as_deref(),
        Some("('EXDEV', ['dev', 'tmp', 'work'], ['io'], False)")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.csv")).unwrap(),
        "a,b\n1,2\n"
    );
}

#[test]
fn dev_null_drops_what_is_written() {
    // 64 MiB written cost no memory: more than the limit allows would fail otherwise.
    let code = "import os\n\
        with open(os.devnull, 'wb') as f:\n\
        \x20   for _ in range(64):\n\
        \x20       f.write(bytes(1 << 20))\n\
        (open(os.devnull).read(), os.path.getsize(os.devnull))";
    let limits = Limits::default().with_memory_bytes(48 << 20);
    let outcome = evaluator().eval(code, &limits).unwrap();
    assert_eq!(
        outcome.value.as_deref(),
        Some("('', 0)"),
        "{:?}",
        outcome.error
    );
}
