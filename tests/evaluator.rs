//! The evaluator's contract, field by field, through the library API.

mod common;

use common::evaluator;
use std::time::Duration;

use pyeval::{EvalError, Evaluator, Grants, Limits, Outcome, SetupError, Stopped};

fn eval(code: &str) -> Outcome {
    evaluator()
        .eval(code, &Limits::default())
        .expect("evaluation succeeds")
}

#[test]
fn trailing_expression_value() {
    assert_eq!(eval("1 + 1").value.as_deref(), Some("2"));
    assert_eq!(eval("'a' * 2").value.as_deref(), Some("'aa'"));
    assert_eq!(eval("x = [1, 2]\nx").value.as_deref(), Some("[1, 2]"));
    assert_eq!(eval("None").value, None);
    assert_eq!(eval("x = 1").value, None);
    assert_eq!(eval("").value, None);
    let mixed = eval("print('out')\n{'k': (1,)}");
    assert_eq!(mixed.stdout, "out\n");
    assert_eq!(mixed.value.as_deref(), Some("{'k': (1,)}"));
    assert!(mixed.error.is_none() && mixed.exit_code.is_none());
    // Only a top-level expression statement at the very end gives a value.
    let both = eval("print('first'); 'second'");
    assert_eq!(both.stdout, "first\n");
    assert_eq!(both.value.as_deref(), Some("'second'"));
    assert_eq!(eval("if True:\n    7").value, None);
    assert_eq!(
        eval("'a docstring'").value.as_deref(),
        Some("'a docstring'")
    );
    // The code is text already: a coding declaration in it changes nothing.
    assert_eq!(
        eval("# -*- coding: latin-1 -*-\n'é'").value.as_deref(),
        Some("'é'")
    );
}

#[test]
fn nothing_runs_when_any_statement_fails_to_compile() {
    for (code, message) in [
        ("print('ran')\n(yield)", "'yield' outside function"),
        ("print('ran')\nreturn 1", "'return' outside function"),
        (
            "print('ran')\nnonlocal x\n1",
            "nonlocal declaration not allowed at module level",
        ),
        ("print('ran')\n1 +", "invalid syntax"),
    ] {
        let outcome = eval(code);
        assert_eq!(outcome.stdout, "", "{code:?}");
        let error = outcome.error.expect("a SyntaxError");
        assert_eq!(error.type_name, "SyntaxError", "{code:?}");
        assert_eq!(error.message.split(" (").next(), Some(message), "{code:?}");
        assert!(
            error.traceback.starts_with("  File \"<string>\", line "),
            "{code:?}: {}",
            error.traceback
        );
    }
}

#[test]
fn snapshot_objects_are_immortal_and_new_garbage_is_still_collected() {
    // Objects from the snapshot never change their reference count (see heap.rs).
    let sealed = eval(
        "import json, sys\nbefore = sys.getrefcount(json.dumps)\nrefs = [json.dumps] * 100\n\
         sys.getrefcount(json.dumps) == before",
    );
    assert_eq!(sealed.value.as_deref(), Some("True"));
    // The evaluation's own objects are counted and collected as usual, cycles included.
    let collected = eval(
        "import gc, weakref\nclass Node: pass\nn = Node()\nn.me = n\nr = weakref.ref(n)\n\
         del n\ngc.collect()\nr() is None",
    );
    assert_eq!(collected.value.as_deref(), Some("True"));
}

#[test]
fn a_session_keeps_capturing_after_code_breaks_its_streams() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    for breaker in [
        "import sys\nsys.stdout.close()",
        "import sys\nsys.stderr.detach()",
        "import sys\nsys.stdout = None\nsys.stderr = None",
    ] {
        session.eval(breaker).unwrap();
        let outcome = session
            .eval("import sys\nprint('out')\nprint('err', file=sys.stderr)")
            .unwrap();
        assert_eq!(
            (outcome.stdout.as_str(), outcome.stderr.as_str()),
            ("out\n", "err\n"),
            "after {breaker:?}"
        );
    }
    let big = session.eval("print('x' * 2**21)").unwrap();
    assert!(big.stdout_truncated);
    let small = session.eval("print('y')").unwrap();
    assert_eq!(
        (small.stdout.as_str(), small.stdout_truncated),
        ("y\n", false)
    );
}

#[test]
fn exceptions_carry_type_message_and_traceback() {
    let outcome = eval("x = 1\n1 / 0");
    let error = outcome.error.expect("an error");
    assert_eq!(error.type_name, "ZeroDivisionError");
    assert_eq!(error.message, "division by zero");
    assert!(
        error
            .traceback
            .starts_with("Traceback (most recent call last):\n"),
        "{}",
        error.traceback
    );
    assert!(
        error.traceback.contains("File \"<string>\", line 2"),
        "{}",
        error.traceback
    );
    assert!(
        error.traceback.contains("1 / 0"),
        "source line shown: {}",
        error.traceback
    );
    assert!(error
        .traceback
        .ends_with("ZeroDivisionError: division by zero\n"));
    assert!(
        !error.traceback.contains("<pyeval>"),
        "guest frames hidden: {}",
        error.traceback
    );
    assert_eq!(outcome.value, None);

    let custom = eval("class Oops(Exception): pass\nraise Oops('custom')")
        .error
        .unwrap();
    assert_eq!(
        (custom.type_name.as_str(), custom.message.as_str()),
        ("Oops", "custom")
    );
    let qualified = eval("import json\njson.loads('{')").error.unwrap();
    assert_eq!(qualified.type_name, "json.decoder.JSONDecodeError");
    let syntax = eval("def broken(:\n  pass").error.unwrap();
    assert_eq!(syntax.type_name, "SyntaxError");
    assert!(
        syntax.traceback.contains("SyntaxError"),
        "{}",
        syntax.traceback
    );
}

#[test]
fn system_exit_gives_exit_code() {
    assert_eq!(eval("import sys\nsys.exit(3)").exit_code, Some(3));
    assert_eq!(eval("import sys\nsys.exit()").exit_code, Some(0));
    let message = eval("raise SystemExit('bye')");
    assert_eq!(message.exit_code, Some(1));
    assert_eq!(message.stderr, "bye\n");
    assert!(message.error.is_none());
}

#[test]
fn output_is_unicode_and_capped() {
    let outcome = eval("import sys\nprint('héllo ✓ 🐍')\nprint('warn', file=sys.stderr)");
    assert_eq!(outcome.stdout, "héllo ✓ 🐍\n");
    assert_eq!(outcome.stderr, "warn\n");
    assert_eq!(eval("print('\\ud800')").stdout, "\\ud800\n");

    let limits = Limits::default().with_output_bytes(1000);
    let big = evaluator()
        .eval("print('x' * 5000)\nprint('é' * 5000)", &limits)
        .unwrap();
    assert_eq!(big.stdout.len(), 1000);
    assert!(big.stdout_truncated && !big.stderr_truncated);
    let small = evaluator().eval("print('x' * 10)", &limits).unwrap();
    assert!(!small.stdout_truncated);

    let mixed =
        eval("import sys\nsys.stdout.write('a')\nsys.stdout.buffer.write(b'b')\nprint('c')");
    assert_eq!(mixed.stdout, "abc\n");

    let raw = eval("import os\nos.write(1, b'raw\\n')\nos.write(2, b'err\\n')");
    assert_eq!(raw.stdout, "raw\n");
    assert_eq!(raw.stderr, "err\n");
}

#[test]
fn session_keeps_state_and_fresh_evaluations_share_nothing() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    session
        .eval("x = 41\nimport builtins\nbuiltins.marker = 'kept'")
        .unwrap();
    assert_eq!(session.eval("x + 1").unwrap().value.as_deref(), Some("42"));
    assert_eq!(
        session.eval("marker").unwrap().value.as_deref(),
        Some("'kept'")
    );
    session.eval("raise ValueError('still usable')").unwrap();
    assert_eq!(session.eval("x").unwrap().value.as_deref(), Some("41"));

    eval("leak = 1\nimport builtins, sys\nbuiltins.len = None\nsys.modules['json'] = None");
    assert_eq!(eval("'leak' in globals()").value.as_deref(), Some("False"));
    assert_eq!(eval("len([1, 2])").value.as_deref(), Some("2"));
    assert_eq!(
        eval("import json\njson.dumps(1)").value.as_deref(),
        Some("'1'")
    );
}

#[test]
fn fresh_instance_imports_the_stdlib() {
    let code = "import json, re, decimal, sqlite3, email, zlib, lzma, bz2\n\
        import xml.dom.minidom, email.mime.text, zipfile, tomllib\n\
        db = sqlite3.connect(':memory:')\n\
        (db.execute('select 40 + 2').fetchone()[0], str(decimal.Decimal(1) / 8),\n\
         xml.dom.minidom.parseString('<a>t</a>').documentElement.tagName)";
    let outcome = eval(code);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.value.as_deref(), Some("(42, '0.125', 'a')"));
}

#[test]
fn every_instance_draws_its_own_random_numbers() {
    let a = eval("import random\nrandom.random()").value;
    let b = eval("import random\nrandom.random()").value;
    assert_ne!(a, b);
}

#[test]
fn print_costs_little_fuel() {
    let outcome = eval("print(1)");
    assert_eq!(outcome.stdout, "1\n");
    assert!(
        outcome.fuel_used < 1_000_000,
        "print(1) used {} fuel",
        outcome.fuel_used
    );
    assert!(outcome.fuel_used > 0);
}

#[test]
fn fuel_exhaustion_ends_the_session() {
    let limits = Limits::default().with_fuel(pyeval::Fuel::Limited(5_000_000));
    let mut session = evaluator().session(&limits).unwrap();
    let err = session.eval("sum(range(10**8))").unwrap_err();
    assert_eq!(
        err,
        EvalError::Stopped(Stopped::FuelExhausted { budget: 5_000_000 })
    );
    assert!(matches!(session.eval("1"), Err(EvalError::SessionEnded(_))));
    let mut next = evaluator().session(&limits).unwrap();
    assert_eq!(next.eval("1 + 1").unwrap().value.as_deref(), Some("2"));
}

#[test]
fn a_full_pool_refuses_new_instances_until_one_ends() {
    let small = Evaluator::builder().max_instances(2).build().unwrap();
    let limits = Limits::default();
    let mut first = small.session(&limits).unwrap();
    let mut second = small.session(&limits).unwrap();
    first.eval("a = 1").unwrap();
    second.eval("b = 2").unwrap();
    let mut third = small.session(&limits).unwrap();
    let refused = third.eval("c = 3");
    assert!(
        matches!(refused, Err(EvalError::TooManyInstances { limit: 2 })),
        "{refused:?}"
    );
    assert!(matches!(
        small.eval("1", &limits),
        Err(EvalError::TooManyInstances { .. })
    ));
    // The open sessions are untouched, and a refused session is not ended: it runs once a
    // slot is free, in a fresh interpreter.
    assert_eq!(first.eval("a").unwrap().value.as_deref(), Some("1"));
    drop(second);
    assert_eq!(third.eval("c = 3\nc").unwrap().value.as_deref(), Some("3"));
    let undefined = third.eval("b").unwrap().error.unwrap();
    assert_eq!(undefined.type_name, "NameError");
    // More slots than the address space holds is a setup error that says why.
    let huge = Evaluator::builder().max_instances(1 << 20).build();
    match huge {
        Err(SetupError::Host(message)) => assert!(message.contains("instance slots"), "{message}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a pool of 2^20 slots of 4 GiB was reserved"),
    }
    assert!(matches!(
        Evaluator::builder().max_instances(0).build(),
        Err(SetupError::Config(_))
    ));
}

#[test]
fn an_unmetered_evaluator_takes_only_unlimited_budgets() {
    let unmetered = Evaluator::builder().metered(false).build().unwrap();
    let limited = unmetered.eval("1", &Limits::default());
    assert!(matches!(limited, Err(EvalError::Setup(_))), "{limited:?}");
    let limits = Limits::default().with_fuel(pyeval::Fuel::Unlimited);
    let outcome = unmetered.eval("sum(range(10**6))", &limits).unwrap();
    assert_eq!(outcome.value.as_deref(), Some("499999500000"));
    assert_eq!(outcome.fuel_used, 0);
    // Without fuel, the epoch is what stops a busy loop at its deadline.
    let short = limits.with_wall_time(Duration::from_millis(200));
    let endless = unmetered.eval("while True: pass", &short);
    assert!(
        matches!(endless, Err(EvalError::Stopped(Stopped::Timeout { .. }))),
        "{endless:?}"
    );
}

#[test]
fn async_callers_await_evaluations_on_their_own_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let grants = pyeval::Grants::default();
        let outcome = evaluator()
            .eval_async("6 * 7", &Limits::default(), &grants)
            .await
            .unwrap();
        assert_eq!(outcome.value.as_deref(), Some("42"));
        let mut session = evaluator().session(&Limits::default()).unwrap();
        session.eval_async("x = 1").await.unwrap();
        assert_eq!(
            session.eval_async("x + 1").await.unwrap().value.as_deref(),
            Some("2")
        );
    });
}

#[test]
fn blocking_calls_work_inside_a_tokio_runtime() {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = current.block_on(async { evaluator().eval("6 * 7", &Limits::default()) });
    assert_eq!(value.unwrap().value.as_deref(), Some("42"));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let value = multi.block_on(async {
        tokio::spawn(async {
            let mut session = evaluator().session(&Limits::default()).unwrap();
            session.eval("x = 20").unwrap();
            session.eval("x + 22").unwrap().value
        })
        .await
        .unwrap()
    });
    assert_eq!(value.as_deref(), Some("42"));
}

#[test]
fn the_embedded_component_loads_without_compiling() {
    assert!(
        pyeval::embedded_is_precompiled(),
        "no compiled form was embedded"
    );
    let compiled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = compiled.clone();
    let evaluator = Evaluator::builder()
        .cache(pyeval::CacheLocation::Disabled)
        .max_instances(1)
        .on_compile(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
        .build()
        .unwrap();
    assert!(
        !compiled.load(std::sync::atomic::Ordering::SeqCst),
        "it compiled"
    );
    assert_eq!(
        evaluator
            .eval("1 + 1", &Limits::default())
            .unwrap()
            .value
            .as_deref(),
        Some("2")
    );
    // Into an empty cache, the embedded form is written, so later starts map it from disk.
    let cache = tempfile::tempdir().unwrap();
    Evaluator::builder()
        .cache(pyeval::CacheLocation::Dir(cache.path().to_owned()))
        .max_instances(1)
        .build()
        .unwrap();
    let written = std::fs::read_dir(cache.path().join("compiled"))
        .unwrap()
        .count();
    assert_eq!(written, 1, "the embedded compiled form was not cached");
}

#[test]
fn components_from_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Evaluator::builder()
        .component_file(dir.path().join("none.wasm"))
        .build();
    assert!(
        matches!(missing, Err(SetupError::Read { .. })),
        "{missing:?}"
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm but not really").unwrap();
    let refused = Evaluator::builder()
        .component_file(&garbage)
        .cache(pyeval::CacheLocation::Disabled)
        .build();
    assert!(
        matches!(refused, Err(SetupError::Load { .. })),
        "{refused:?}"
    );

    // A valid component that pyeval did not build: refused before it is compiled.
    let other = wat::parse_str("(component)").unwrap();
    let refused = Evaluator::builder()
        .component_bytes(other)
        .cache(pyeval::CacheLocation::Disabled)
        .build();
    match refused {
        Err(SetupError::Load { reason, .. }) => {
            assert!(
                reason.contains("not a pyeval evaluator component"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }

    // The component as another version of pyeval would have stamped it.
    let component = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyeval.wasm");
    let mut older = std::fs::read(component).unwrap();
    let stamp = pyeval_engine::stamp();
    let at = older
        .windows(stamp.len())
        .rposition(|w| w == stamp.as_bytes())
        .expect("the component names its pyeval version");
    older[at..at + 12].copy_from_slice(b"pyeval 0.0.9");
    let refused = Evaluator::builder()
        .component_bytes(older)
        .cache(pyeval::CacheLocation::Disabled)
        .build();
    match refused {
        Err(SetupError::Load { reason, .. }) => {
            assert!(reason.contains("it was built for pyeval 0.0.9"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // The component itself, from its file, with a cache of its own.
    let cache = dir.path().join("cache");
    let from_file = Evaluator::builder()
        .component_file(component)
        .cache(pyeval::CacheLocation::Dir(cache.clone()))
        .max_instances(1)
        .build()
        .unwrap();
    assert_eq!(
        from_file
            .eval("'from a file'", &Limits::default())
            .unwrap()
            .value
            .as_deref(),
        Some("'from a file'")
    );
    let entries = std::fs::read_dir(cache.join("compiled")).unwrap().count();
    assert_eq!(entries, 1, "the compiled component is cached");
}

#[test]
fn limits_out_of_range_are_refused() {
    for wall_time in [
        Duration::ZERO,
        pyeval::MAX_WALL_TIME + Duration::from_secs(1),
    ] {
        let limits = Limits::default().with_wall_time(wall_time);
        let refused = evaluator().eval("1", &limits);
        assert!(
            matches!(refused, Err(EvalError::Setup(SetupError::Config(_)))),
            "{wall_time:?}: {refused:?}"
        );
    }
}

#[test]
fn async_evaluations_yield_to_their_runtime() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits::default().with_fuel(pyeval::Fuel::Unlimited);
    let ticks = std::sync::Arc::new(AtomicU32::new(0));
    let counted = ticks.clone();
    let wall = runtime.block_on(async move {
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        let outcome = evaluator()
            .eval_async(
                "sum(i * i for i in range(3 * 10**6))",
                &limits,
                &pyeval::Grants::default(),
            )
            .await
            .unwrap();
        ticker.abort();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        outcome.wall_time
    });
    // One thread ran both: the other task ran only when the evaluation yielded.
    let ticks = ticks.load(Ordering::SeqCst);
    assert!(
        wall > Duration::from_millis(50),
        "too quick to tell: {wall:?}"
    );
    assert!(
        ticks >= 10,
        "{ticks} ticks during an evaluation of {wall:?}"
    );
}

#[test]
fn other_tasks_run_and_a_dropped_evaluation_ends_its_session() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits::default()
        .with_fuel(pyeval::Fuel::Unlimited)
        .with_wall_time(Duration::from_secs(5));
    let mut session = evaluator().session(&limits).unwrap();
    session.eval("x = 1").unwrap();
    let started = std::time::Instant::now();
    let cancelled = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(100),
            session.eval_async("while True: pass"),
        )
        .await
    });
    assert!(
        cancelled.is_err(),
        "the timeout did not fire: {cancelled:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the evaluation held the runtime for {:?}",
        started.elapsed()
    );
    assert_eq!(
        session.eval("x"),
        Err(EvalError::SessionEnded(Stopped::Cancelled))
    );
}

#[test]
fn instances_share_the_evaluators_memory_budget() {
    // Each instance is charged its memory image (about 32 MiB) and 2 MiB of output
    // buffers; an eighth of the budget is set aside for the pool's resident pages.
    let shared = Evaluator::builder()
        .max_instances(3)
        .memory_budget(Some(160 << 20))
        .build()
        .unwrap();
    assert_eq!(shared.memory_budget(), Some(160 << 20));
    let limits = Limits::default().with_fuel(pyeval::Fuel::Unlimited);
    let mut first = shared.session(&limits).unwrap();
    first.eval("held = bytearray(48 << 20)").unwrap();
    let mut second = shared.session(&limits).unwrap();
    let refused = second.eval("more = bytearray(48 << 20)").unwrap();
    assert_eq!(
        refused.error.map(|e| e.type_name).as_deref(),
        Some("MemoryError")
    );
    drop(first);
    let granted = second
        .eval("more = bytearray(48 << 20)\nlen(more)")
        .unwrap();
    assert_eq!(granted.value.as_deref(), Some("50331648"));
}

#[test]
fn an_instance_is_charged_its_whole_memory_image() {
    // Mapped copy-on-write, the image costs nothing until written, but code can write it
    // all: an instance that could not afford it is not made.
    let small = Evaluator::builder()
        .memory_budget(Some(16 << 20))
        .build()
        .unwrap();
    assert_eq!(
        small.eval("1", &Limits::default()),
        Err(EvalError::Stopped(Stopped::MemoryBudget {
            budget: 16 << 20
        }))
    );
}

#[test]
fn raw_fd_output_is_capped_per_evaluation_not_per_session() {
    let limits = Limits::default().with_output_bytes(1000);
    let mut session = evaluator().session(&limits).unwrap();
    for round in 0..4 {
        let outcome = session.eval("import os\nos.write(1, b'x' * 600)").unwrap();
        assert_eq!(outcome.stdout.len(), 600, "round {round}: {outcome:?}");
        assert!(!outcome.stdout_truncated, "round {round}");
    }
    // Within one evaluation the cap still holds: a write past it fails like a closed pipe.
    let outcome = session
        .eval("import os\nos.write(1, b'y' * 600)\nos.write(1, b'y' * 600)\nos.write(1, b'y')")
        .unwrap();
    assert_eq!(outcome.stdout, "y".repeat(1000));
    assert!(outcome.stdout_truncated);
    assert_eq!(outcome.error.unwrap().type_name, "OSError");
}

#[test]
fn sqlite_locks_a_database_on_a_mount_against_other_instances() {
    let dir = tempfile::tempdir().unwrap();
    let grants = Grants::new().with_mount(pyeval::Mount::writable(dir.path(), "/data").unwrap());
    let limits = Limits::default();
    let open =
        "import sqlite3\nc = sqlite3.connect('/data/db.sqlite', timeout=0, isolation_level=None)\n";
    let mut writer = evaluator().session_with(&limits, &grants).unwrap();
    writer
        .eval(&format!(
            "{open}c.execute('create table t (x)')\nc.execute('begin immediate')\n\
             c.execute('insert into t values (1)')"
        ))
        .unwrap();
    // While the first instance's transaction runs, another instance is told to wait.
    let mut other = evaluator().session_with(&limits, &grants).unwrap();
    let refused = other
        .eval(&format!("{open}c.execute('insert into t values (2)')"))
        .unwrap();
    let error = refused.error.expect("the database is busy");
    assert_eq!(error.type_name, "sqlite3.OperationalError");
    assert!(error.message.contains("locked"), "{error:?}");
    writer.eval("c.execute('commit')").unwrap();
    let done = other
        .eval("c.execute('insert into t values (2)')\nc.execute('select x from t order by x').fetchall()")
        .unwrap();
    assert_eq!(done.value.as_deref(), Some("[(1,), (2,)]"), "{done:?}");

    // On the scratch tree, where a file is the instance's alone, connections take no locks.
    let scratch = "import sqlite3\na = sqlite3.connect('s.db', timeout=0, isolation_level=None)\n\
                   b = sqlite3.connect('s.db', timeout=0, isolation_level=None)\n\
                   a.execute('create table t (x)')\na.execute('begin')\n\
                   a.execute('insert into t values (1)')\nb.execute('select count(*) from t').fetchone()";
    assert_eq!(
        evaluator().eval(scratch, &limits).unwrap().value.as_deref(),
        Some("(0,)")
    );
}

/// A fresh instance may have been made before the evaluation asked for it: it is held to
/// that evaluation's limits all the same, memory cap included.
#[test]
fn an_instance_made_ahead_is_held_to_the_limits_of_the_evaluation_that_takes_it() {
    let evaluator = Evaluator::new().unwrap();
    let limits = Limits::default();
    for _ in 0..3 {
        evaluator.eval("print(1)", &limits).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let tiny = evaluator.eval("print(1)", &limits.clone().with_memory_bytes(4 << 20));
        assert!(
            matches!(tiny, Err(EvalError::Stopped(Stopped::MemoryLimit { .. }))),
            "{tiny:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let fuel = evaluator.eval(
            "while True: pass",
            &limits.clone().with_fuel(pyeval::Fuel::Limited(1_000_000)),
        );
        assert!(
            matches!(fuel, Err(EvalError::Stopped(Stopped::FuelExhausted { .. }))),
            "{fuel:?}"
        );
    }
}

/// Instances made ahead, or being ended, hold pool slots for a while: they give them back
/// to an evaluation that needs one, so an evaluator of one instance runs fresh evaluations
/// back to back, and one of two runs them beside an open session.
#[test]
fn instances_made_ahead_or_ending_never_keep_a_slot_from_an_evaluation() {
    let limits = Limits::default();
    let one = Evaluator::builder().max_instances(1).build().unwrap();
    for i in 0..30 {
        let outcome = one.eval(&format!("{i} * 2"), &limits).unwrap();
        assert_eq!(outcome.value, Some((i * 2).to_string()));
    }
    let two = Evaluator::builder().max_instances(2).build().unwrap();
    let mut session = two.session(&limits).unwrap();
    session.eval("x = 1").unwrap();
    for _ in 0..30 {
        two.eval("1", &limits).unwrap();
    }
    assert_eq!(session.eval("x").unwrap().value.as_deref(), Some("1"));
}
