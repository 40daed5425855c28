//! Python as people write it, in the evaluator: asyncio, `exit()` and `help()`, stdin,
//! `PYTHONPATH`, warnings that point at the user's line, SQLite with several connections,
//! and a clear word on threads.

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
    let outcome = run("import sys, mymod\nmymod.X, sys.path[:2]", &grants);
    assert_eq!(outcome.value.as_deref(), Some("(42, ['/mnt', '/nowhere'])"));
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
