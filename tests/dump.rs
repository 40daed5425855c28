//! Sessions dumped to bytes, restored and forked: everything the interpreter held comes
//! back, and a dump that is not this component's, or is damaged, is refused or contained.

mod common;

use common::evaluator;

use pyeval::{DumpError, EvalError, Evaluator, Grants, Limits, Session};

fn value(session: &mut Session, code: &str) -> String {
    let outcome = session.eval(code).expect("the evaluation runs");
    assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
    outcome.value.unwrap_or_default()
}

fn restored(dump: &[u8]) -> Session {
    evaluator()
        .restore(dump, &Limits::default(), &Grants::default())
        .expect("the dump restores")
}

#[test]
fn a_restored_session_has_everything_the_dumped_one_had() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(
        &mut session,
        r#"
import json, random, collections
x = 41
def add(a, b=2):
    return a + b
class Point(collections.namedtuple("Point", "x y")):
    def norm(self):
        return abs(self.x) + abs(self.y)
def counter():
    n = 0
    def step():
        nonlocal n
        n += 1
        return n
    return step
step = counter(); step(); step()
gen = (i * i for i in range(10)); next(gen); next(gen)
random.seed(7); random.random()
with open("notes.txt", "w") as f:
    f.write("kept")
"#,
    );
    let expect = value(&mut session, "[random.random() for _ in range(3)]");
    value(&mut session, "random.seed(7); random.random()");
    let dump = session.dump().expect("the session dumps");
    let mut back = restored(&dump);
    assert_eq!(value(&mut back, "x + 1"), "42");
    assert_eq!(value(&mut back, "add(40)"), "42");
    assert_eq!(value(&mut back, "Point(3, -4).norm()"), "7");
    assert_eq!(value(&mut back, "step()"), "3");
    assert_eq!(value(&mut back, "next(gen)"), "4");
    assert_eq!(value(&mut back, "open('notes.txt').read()"), "'kept'");
    assert_eq!(value(&mut back, "json.dumps({'a': 1})"), "'{\"a\": 1}'");
    assert_eq!(
        value(&mut back, "[random.random() for _ in range(3)]"),
        expect
    );
    // It prints, raises and imports as any session does.
    let outcome = back
        .eval("import statistics\nprint(statistics.mean([1, 2, 3]))\n1/0")
        .unwrap();
    assert_eq!(outcome.stdout, "2\n");
    assert_eq!(outcome.error.unwrap().type_name, "ZeroDivisionError");
}

#[test]
fn a_fork_goes_its_own_way() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(
        &mut session,
        "items = [1, 2]\nwith open('log.txt', 'w') as f: f.write('a')",
    );
    let mut fork = session.fork().expect("the session forks");
    value(
        &mut session,
        "items.append('left')\nopen('log.txt', 'a').write('L')",
    );
    value(
        &mut fork,
        "items.append('right')\nopen('log.txt', 'a').write('R')",
    );
    assert_eq!(
        value(&mut session, "items, open('log.txt').read()"),
        "([1, 2, 'left'], 'aL')"
    );
    assert_eq!(
        value(&mut fork, "items, open('log.txt').read()"),
        "([1, 2, 'right'], 'aR')"
    );
    // A fork of a fork, and a dump of a fork.
    let mut again = fork.fork().unwrap();
    assert_eq!(value(&mut again, "len(items)"), "3");
    let mut back = restored(&fork.dump().unwrap());
    assert_eq!(value(&mut back, "items[-1]"), "'right'");
}

#[test]
fn a_session_that_never_ran_dumps_and_restores() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    let dump = session.dump().unwrap();
    assert_eq!(value(&mut restored(&dump), "6 * 7"), "42");
}

#[test]
fn a_restored_session_runs_under_the_restoring_limits() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(&mut session, "data = []");
    let dump = session.dump().unwrap();
    let limits = Limits::default().with_fuel(pyeval::Fuel::Limited(20_000_000));
    let mut back = evaluator()
        .restore(&dump, &limits, &Grants::default())
        .unwrap();
    match back.eval("while True: data.append(1)") {
        Err(EvalError::Stopped(pyeval::Stopped::FuelExhausted { budget })) => {
            assert_eq!(budget, 20_000_000)
        }
        other => panic!("{other:?}"),
    }
    // Output beyond the restoring session's cap is cut at it.
    let small = Limits::default().with_output_bytes(64);
    let mut back = evaluator()
        .restore(&dump, &small, &Grants::default())
        .unwrap();
    let outcome = back.eval("print('x' * 1000)").unwrap();
    assert!(outcome.stdout_truncated && outcome.stdout.len() <= 64);
}

#[test]
fn a_dump_needing_more_memory_than_allowed_is_refused() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(&mut session, "big = bytearray(96 << 20)");
    let dump = session.dump().unwrap();
    let small = Limits::default().with_memory_bytes(64 << 20);
    match evaluator().restore(&dump, &small, &Grants::default()) {
        Err(EvalError::InvalidDump(DumpError::TooLarge { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_ended_session_does_not_dump() {
    let limits = Limits::default().with_fuel(pyeval::Fuel::Limited(1_000_000));
    let mut session = evaluator().session(&limits).unwrap();
    assert!(session.eval("while True: pass").is_err());
    assert!(matches!(session.dump(), Err(EvalError::SessionEnded(_))));
    assert!(matches!(session.fork(), Err(EvalError::SessionEnded(_))));
}

#[test]
fn dumps_of_other_components_and_other_directories_are_refused() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    let dump = session.dump().unwrap();
    let restore = |dump: &[u8], grants: &Grants| {
        evaluator()
            .restore(dump, &Limits::default(), grants)
            .map(drop)
    };
    // The component's SHA-256 follows the 16 bytes of the magic line.
    let mut other = dump.clone();
    other[16] = if other[16] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        restore(&other, &Grants::default()),
        Err(EvalError::InvalidDump(DumpError::OtherComponent { .. }))
    ));
    assert!(matches!(
        restore(b"{\"x\": 1}", &Grants::default()),
        Err(EvalError::InvalidDump(DumpError::NotADump))
    ));
    let dir = tempfile::tempdir().unwrap();
    let mounted = Grants::new().with_mount(pyeval::Mount::read_only(dir.path(), "/data").unwrap());
    match restore(&dump, &mounted) {
        Err(error @ EvalError::InvalidDump(DumpError::OtherMounts { .. })) => {
            assert!(error.to_string().contains("/data"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    // A dump taken with the directory restores with it, and reads it again.
    std::fs::write(dir.path().join("in.txt"), "host data").unwrap();
    let mut session = evaluator()
        .session_with(&Limits::default(), &mounted)
        .unwrap();
    value(&mut session, "first = open('/data/in.txt').read()");
    let mut back = evaluator()
        .restore(&session.dump().unwrap(), &Limits::default(), &mounted)
        .unwrap();
    assert_eq!(
        value(&mut back, "first, open('/data/in.txt').read()"),
        "('host data', 'host data')"
    );
}

/// Restores `dump` as far as it goes: refused, or a session whose evaluations end in an
/// outcome or a stop, never a panic or a hang.
fn restore_contained(dump: &[u8]) -> &'static str {
    let limits = Limits::default()
        .with_fuel(pyeval::Fuel::Limited(200_000_000))
        .with_wall_time(std::time::Duration::from_secs(10));
    match evaluator().restore(dump, &limits, &Grants::default()) {
        Err(EvalError::InvalidDump(_)) => "refused",
        Err(EvalError::Stopped(_)) => "stopped",
        Err(other) => panic!("a damaged dump gave {other:?}"),
        Ok(mut session) => match session.eval("x = 1\nprint(x)") {
            Ok(_) | Err(EvalError::Stopped(_)) => "contained",
            Err(other) => panic!("a damaged dump's session gave {other:?}"),
        },
    }
}

#[test]
fn damaged_dumps_are_refused_or_contained() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(
        &mut session,
        "words = ['alpha'] * 100\ndef f(): return words",
    );
    let dump = session.dump().unwrap();
    for len in [0, 10, 16, 40, 80, 81, 100, dump.len() / 2, dump.len() - 1] {
        assert_eq!(restore_contained(&dump[..len]), "refused", "cut to {len}");
    }
    let mut extra = dump.clone();
    extra.extend_from_slice(b"more");
    assert_eq!(restore_contained(&extra), "refused");
    for at in (80..dump.len()).step_by(dump.len() / 40) {
        let mut flipped = dump.clone();
        flipped[at] ^= 0x10;
        restore_contained(&flipped);
    }
}

#[test]
fn dumps_whose_pages_were_altered_are_contained() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(&mut session, "table = {i: str(i) for i in range(1000)}");
    let dump = session.dump().unwrap();
    // The header (the magic line and the component's SHA-256), then one zstd frame.
    let (header, frame) = dump.split_at(16 + 64);
    let body = zstd::decode_all(frame).unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    for at in (64..body.len()).step_by(body.len() / 30) {
        let mut altered = body.clone();
        for byte in &mut altered[at..(at + 64).min(body.len())] {
            *byte = !*byte;
        }
        let mut dump = header.to_vec();
        dump.extend(zstd::encode_all(&altered[..], 1).unwrap());
        *outcomes.entry(restore_contained(&dump)).or_insert(0) += 1;
    }
    // Most alterations land in pages, which restore (into whatever state they make).
    assert!(
        outcomes.get("contained").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
}

#[test]
fn a_secret_never_reaches_a_dump() {
    let value_of_secret = "s3cr3t-VALUE-never-in-the-guest";
    let network = pyeval::network::Network::new().with_secret(
        format!("TOKEN={value_of_secret}@example.com")
            .parse()
            .unwrap(),
    );
    let grants = Grants::new().with_network(network);
    let mut session = evaluator()
        .session_with(&Limits::default(), &grants)
        .unwrap();
    value(&mut session, "import os\ntoken = os.environ['TOKEN']");
    let dump = session.dump().unwrap();
    let body = zstd::decode_all(&dump[16 + 64..]).unwrap();
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"pyeval-secret:TOKEN"),
        "the placeholder is in the guest's memory"
    );
    assert!(!has(value_of_secret.as_bytes()));
}

/// The environment variable that makes [`restore_in_this_process`] a child's work.
const CHILD_DUMP: &str = "PYEVAL_TEST_DUMP_FILE";

#[test]
fn a_dump_restores_in_another_process() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(
        &mut session,
        "import fractions\nthird = fractions.Fraction(1, 3)\ndef twice(x): return 2 * x",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.dump");
    std::fs::write(&file, session.dump().unwrap()).unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "restore_in_this_process", "--nocapture"])
        .env(CHILD_DUMP, &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(stdout.contains("restored: Fraction(2, 3)"), "{stdout}");
}

/// The other process of [`a_dump_restores_in_another_process`] (nothing to do otherwise).
#[test]
fn restore_in_this_process() {
    let Some(file) = std::env::var_os(CHILD_DUMP) else {
        return;
    };
    let dump = std::fs::read(file).unwrap();
    let mut session = Evaluator::new()
        .unwrap()
        .restore(&dump, &Limits::default(), &Grants::default())
        .unwrap();
    println!("restored: {}", value(&mut session, "twice(third)"));
}

/// A tool that counts its calls and answers `{"found": key}`.
fn lookup(calls: &'static std::sync::atomic::AtomicUsize) -> pyeval::Tool {
    pyeval::Tool::new(
        "lookup",
        "Looks a key up.",
        serde_json::json!({"type": "object", "properties": {"key": {"type": "string"}}}),
        move |args| async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(serde_json::json!({"found": args["key"]}))
        },
    )
    .unwrap()
}

/// A tool that always suspends, to wait for a person's approval.
fn approve() -> pyeval::Tool {
    pyeval::Tool::new(
        "approve",
        "Asks a person to approve a payment.",
        serde_json::json!({"type": "object", "properties": {"amount": {"type": "integer"}}}),
        |_| async { Err(pyeval::ToolError::suspend("waiting for a person")) },
    )
    .unwrap()
    .may_suspend()
}

const PAYMENT: &str = "import os\n\
    found = await lookup(key=os.environ.get('KEY', 'k1'))\n\
    approved = await approve(amount=5)\n\
    print(found['found'], approved)\n\
    approved";

fn suspended(result: Result<pyeval::Outcome, EvalError>) -> pyeval::Suspension {
    match result {
        Err(EvalError::Suspended(suspension)) => *suspension,
        other => panic!("not suspended: {other:?}"),
    }
}

/// The environment variable that makes [`resume_in_this_process`] a child's work.
const CHILD_SUSPENSION: &str = "PYEVAL_TEST_SUSPENSION_FILE";

#[test]
fn a_suspended_evaluation_resumes_in_another_process_without_calling_again() {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let grants = Grants::new().with_tool(lookup(&CALLS)).with_tool(approve());
    let suspension = suspended(evaluator().eval_with(PAYMENT, &Limits::default(), &grants));
    assert_eq!(
        (suspension.tool.as_str(), suspension.reason.as_str()),
        ("approve", "waiting for a person")
    );
    assert_eq!(suspension.arguments, r#"{"amount": 5}"#);
    assert_eq!(suspension.journal.len(), 1);
    assert_eq!(
        suspension.journal[0].outcome,
        Ok(r#"{"found":"k1"}"#.to_owned())
    );
    assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suspension");
    std::fs::write(&file, suspension.to_bytes()).unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "resume_in_this_process", "--nocapture"])
        .env(CHILD_SUSPENSION, &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(
        stdout.contains("resumed: k1 True | lookups made: 0"),
        "{stdout}"
    );
}

/// The other process of [`a_suspended_evaluation_resumes_in_another_process_without_calling_again`].
#[test]
fn resume_in_this_process() {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(file) = std::env::var_os(CHILD_SUSPENSION) else {
        return;
    };
    let suspension = pyeval::Suspension::from_bytes(&std::fs::read(file).unwrap()).unwrap();
    let grants = Grants::new().with_tool(lookup(&CALLS)).with_tool(approve());
    let (_, outcome) = Evaluator::new()
        .unwrap()
        .resume(
            &suspension,
            Ok(serde_json::json!(true)),
            &Limits::default(),
            &grants,
        )
        .unwrap();
    print!(
        "resumed: {}",
        outcome.stdout.trim_end().to_owned()
            + &format!(
                " | lookups made: {}",
                CALLS.load(std::sync::atomic::Ordering::SeqCst)
            )
    );
}

#[test]
fn a_session_suspended_mid_evaluation_resumes_from_its_state_before_it() {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let grants = Grants::new().with_tool(lookup(&CALLS)).with_tool(approve());
    let mut session = evaluator()
        .session_with(&Limits::default(), &grants)
        .unwrap();
    value(&mut session, "total = 10\nlog = []");
    let code = "log.append('before')\ntotal += 1\nif await approve(amount=total): total += 100\nlog.append('after')\ntotal";
    let suspension = suspended(session.eval(code));
    // The suspended session has ended; the suspension holds its state before the code.
    assert!(matches!(
        session.eval("total"),
        Err(EvalError::SessionEnded(_))
    ));
    let (mut resumed, outcome) = evaluator()
        .resume(
            &suspension,
            Ok(serde_json::json!(true)),
            &Limits::default(),
            &grants,
        )
        .unwrap();
    assert_eq!(outcome.value.as_deref(), Some("111"));
    assert_eq!(value(&mut resumed, "log"), "['before', 'after']");
    // An error as the answer is the call's ToolError.
    let (_, refused) = evaluator()
        .resume(
            &suspension,
            Err(pyeval::ToolError::new("declined")),
            &Limits::default(),
            &grants,
        )
        .unwrap();
    assert_eq!(refused.error.unwrap().message, "declined");
}

#[test]
fn a_tool_not_granted_as_suspending_cannot_suspend_a_session_that_ran() {
    let sneaky = pyeval::Tool::new(
        "sneaky",
        "Tries to suspend.",
        serde_json::json!({"type": "object"}),
        |_| async { Err(pyeval::ToolError::suspend("later")) },
    )
    .unwrap();
    let grants = Grants::new().with_tool(sneaky);
    let mut session = evaluator()
        .session_with(&Limits::default(), &grants)
        .unwrap();
    value(&mut session, "x = 1");
    let outcome = session.eval("await sneaky()").unwrap();
    let error = outcome.error.unwrap();
    assert!(error.message.contains("may_suspend"), "{}", error.message);
    assert_eq!(value(&mut session, "x"), "1");
}

#[test]
fn a_resumed_evaluation_that_calls_otherwise_is_told_so() {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let grants = Grants::new().with_tool(lookup(&CALLS)).with_tool(approve());
    let suspension = suspended(evaluator().eval_with(PAYMENT, &Limits::default(), &grants));
    let other = grants.clone().with_env("KEY", "k2");
    let (_, outcome) = evaluator()
        .resume(
            &suspension,
            Ok(serde_json::json!(true)),
            &Limits::default(),
            &other,
        )
        .unwrap();
    let error = outcome.error.unwrap();
    assert!(
        error
            .message
            .contains("cannot be answered from the journal"),
        "{}",
        error.message
    );
    // Suspensions that are damaged, or of another component, are refused.
    let bytes = suspension.to_bytes();
    assert!(pyeval::Suspension::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    assert!(pyeval::Suspension::from_bytes(b"pyeval suspension?").is_err());
}

#[test]
fn a_session_at_its_memory_limit_restores_under_it_again_and_again() {
    let limits = Limits::default().with_memory_bytes(96 << 20);
    let mut session = evaluator().session(&limits).unwrap();
    value(
        &mut session,
        "chunks = []\ntry:\n    while True: chunks.append(bytearray(1 << 20))\nexcept MemoryError:\n    pass",
    );
    let held = value(&mut session, "len(chunks)");
    let mut dump = session.dump().unwrap();
    for generation in 0..3 {
        let mut back = evaluator()
            .restore(&dump, &limits, &Grants::default())
            .unwrap_or_else(|e| panic!("generation {generation}: {e}"));
        assert_eq!(value(&mut back, "len(chunks)"), held);
        dump = back.dump().unwrap();
    }
}

#[test]
fn restoring_costs_the_code_no_fuel() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    value(&mut session, "data = list(range(200_000))");
    let dump = session.dump().unwrap();
    // A budget far smaller than copying the pages would take, were it counted.
    let limits = Limits::default().with_fuel(pyeval::Fuel::Limited(1_000_000));
    let mut back = evaluator()
        .restore(&dump, &limits, &Grants::default())
        .unwrap();
    assert_eq!(value(&mut back, "len(data)"), "200000");
}

#[test]
fn a_suspension_is_held_to_the_limits_of_code_and_tool_results() {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let grants = Grants::new().with_tool(lookup(&CALLS)).with_tool(approve());
    let suspension = suspended(evaluator().eval_with(PAYMENT, &Limits::default(), &grants));
    let resume = |suspension: &pyeval::Suspension, limits: &Limits| {
        evaluator()
            .resume(suspension, Ok(serde_json::json!(true)), limits, &grants)
            .map(|(_, outcome)| outcome)
    };
    let mut long = suspension.clone();
    long.code = format!("{PAYMENT}\n#{}", "x".repeat(pyeval::DEFAULT_CODE_BYTES));
    assert!(matches!(
        resume(&long, &Limits::default()),
        Err(EvalError::InvalidCode(_))
    ));
    let mut nul = suspension.clone();
    nul.code.push('\0');
    assert!(matches!(
        resume(&nul, &Limits::default()),
        Err(EvalError::InvalidCode(_))
    ));
    let mut big = suspension.clone();
    big.journal[0].outcome = Ok(format!("\"{}\"", "y".repeat(2 << 20)));
    assert!(matches!(
        resume(&big, &Limits::default()),
        Err(EvalError::InvalidDump(_))
    ));
    let few = Limits::default().with_tool_limits(pyeval::ToolLimits::default().with_calls(1));
    assert!(matches!(
        resume(&suspension, &few),
        Err(EvalError::InvalidDump(_))
    ));
    assert!(resume(&suspension, &Limits::default()).is_ok());
}
