//! Files in and out without mounts: given in the working directory before code runs,
//! returned when an evaluation creates or changes them there, read from a session by path.

mod common;

use common::evaluator;
use pyeval::{EvalError, FileLimits, Grants, InputFile, Limits, OutputFile};

fn paths(files: &[OutputFile]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn given_files_are_read_and_written_files_come_back() {
    let grants = Grants::new()
        .with_file("data.csv", "x,y\n1,2\n3,4\n")
        .with_file("in/notes.txt", "kept as given");
    let code = r#"
import csv, os
rows = list(csv.DictReader(open("data.csv")))
os.makedirs("out", exist_ok=True)
with open("out/sums.csv", "w") as f:
    f.write("x,y\n%d,%d\n" % (sum(int(r["x"]) for r in rows), sum(int(r["y"]) for r in rows)))
open("raw.bin", "wb").write(bytes(range(256)))
print(open("in/notes.txt").read(), os.getcwd())
"#;
    let outcome = evaluator()
        .eval_with(code, &Limits::default(), &grants)
        .unwrap();
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.stdout, "kept as given /tmp\n");
    // Only what the code changed, in path order; the given files are not echoed back.
    assert_eq!(paths(&outcome.files), ["out/sums.csv", "raw.bin"]);
    let sums = &outcome.files[0];
    assert_eq!(sums.data.as_deref(), Some(&b"x,y\n4,6\n"[..]));
    assert_eq!((sums.size, sums.media_type.as_str()), (8, "text/csv"));
    let raw = &outcome.files[1];
    assert_eq!(
        raw.data.as_deref(),
        Some(&(0..=255).collect::<Vec<u8>>()[..])
    );
    assert_eq!(raw.media_type, "application/octet-stream");
    assert_eq!(outcome.files_dropped, 0);
}

#[test]
fn an_evaluation_that_writes_nothing_returns_no_files() {
    let grants = Grants::new().with_file("a.txt", "a");
    let outcome = evaluator()
        .eval_with("open('a.txt').read()", &Limits::default(), &grants)
        .unwrap();
    assert_eq!(outcome.value.as_deref(), Some("'a'"));
    assert!(outcome.files.is_empty());
}

#[test]
fn bad_files_are_refused_before_anything_runs() {
    let limits = Limits::default().with_file_limits(FileLimits::new(2, 10));
    let cases: Vec<(Vec<InputFile>, &str)> = vec![
        (vec![InputFile::new("../escape", "x")], "`..`"),
        (vec![InputFile::new("/etc/passwd", "x")], "absolute"),
        (vec![InputFile::new("a//b", "x")], "empty"),
        (vec![InputFile::new("a\0b", "x")], "NUL"),
        (
            vec![InputFile::new("a", "x"), InputFile::new("a", "y")],
            "twice",
        ),
        (
            vec![
                InputFile::new("a", ""),
                InputFile::new("b", ""),
                InputFile::new("c", ""),
            ],
            "3 files",
        ),
        (vec![InputFile::new("big", vec![0; 11])], "11 bytes"),
    ];
    for (files, words) in cases {
        let mut grants = Grants::new();
        grants.files = files;
        // The code would leave a file behind if it ran.
        match evaluator().eval_with("open('ran', 'w')", &limits, &grants) {
            Err(EvalError::InvalidFiles(why)) => assert!(why.contains(words), "{why}"),
            other => panic!("{words}: {other:?}"),
        }
    }
}

#[test]
fn a_file_where_a_directory_is_fails_before_the_code_runs_and_the_session_goes_on() {
    let mut session = evaluator().session(&Limits::default()).unwrap();
    session.eval("import os; os.mkdir('d')").unwrap();
    session.add_files(vec![InputFile::new("d", "x")]).unwrap();
    match session.eval("print('ran')") {
        Err(EvalError::InvalidFiles(why)) => assert!(why.contains("d: a directory"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(session.eval("print('ran')").unwrap().stdout, "ran\n");
}

#[test]
fn files_larger_than_the_memory_limit_are_refused_not_a_crash() {
    let limits = Limits::default()
        .with_memory_bytes(64 << 20)
        .with_file_limits(FileLimits::new(10, 200 << 20));
    // More than the limit: refused before an instance is made.
    let grants = Grants::new().with_file("huge.bin", vec![7u8; 80 << 20]);
    match evaluator().eval_with("print('ran')", &limits, &grants) {
        Err(EvalError::InvalidFiles(why)) => assert!(why.contains("memory limit"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Within the limit, but not beside the interpreter and the copy on its way in: the
    // instance refuses it, and a session goes on without it.
    let mut session = evaluator().session(&limits).unwrap();
    session.eval("x = 1").unwrap();
    session
        .add_files(vec![InputFile::new("big.bin", vec![7u8; 30 << 20])])
        .unwrap();
    match session.eval("print('ran')") {
        Err(EvalError::InvalidFiles(why)) => {
            assert!(why.contains("big.bin: the memory limit"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.eval("x").unwrap().value.as_deref(), Some("1"));
    assert!(
        session
            .eval("import os; os.path.exists('big.bin')")
            .unwrap()
            .value
            .as_deref()
            == Some("False")
    );
}

#[test]
fn past_the_limits_the_first_files_are_kept_and_the_rest_counted_or_left_without_bytes() {
    let limits = Limits::default().with_file_limits(FileLimits::new(3, 100));
    let code = "for name in 'edcba': open(name, 'w').write(name * 30)";
    let outcome = evaluator()
        .eval_with(code, &limits, &Grants::new())
        .unwrap();
    assert_eq!(paths(&outcome.files), ["a", "b", "c"]);
    assert_eq!(outcome.files_dropped, 2);
    assert!(outcome.files.iter().all(|f| f.data.is_some()));

    let code =
        "open('a', 'w').write('a' * 60); open('b', 'w').write('b' * 60); open('c', 'w').write('c')";
    let outcome = evaluator()
        .eval_with(code, &limits, &Grants::new())
        .unwrap();
    let kept: Vec<_> = outcome
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size, f.data.as_ref().map(Vec::len)))
        .collect();
    // b would take the bytes past 100: it is named, with its size, without its bytes.
    assert_eq!(
        kept,
        [("a", 60, Some(60)), ("b", 60, None), ("c", 1, Some(1))]
    );
}

#[test]
fn a_session_reports_each_evaluations_own_changes_and_reads_files_by_path() {
    let grants = Grants::new().with_file("given.txt", "given");
    let mut session = evaluator()
        .session_with(&Limits::default(), &grants)
        .unwrap();
    let first = session
        .eval("open('a.txt', 'w').write('one')\nopen('b.txt', 'w').write('two')")
        .unwrap();
    assert_eq!(paths(&first.files), ["a.txt", "b.txt"]);
    // Renamed, appended to, removed, left alone.
    let second = session
        .eval(
            "import os\nos.makedirs('moved')\nos.rename('a.txt', 'moved/a.txt')\n\
             open('given.txt', 'a').write('+')\nos.remove('b.txt')",
        )
        .unwrap();
    assert_eq!(second.error, None, "{:?}", second.error);
    assert_eq!(paths(&second.files), ["given.txt", "moved/a.txt"]);
    assert!(session.eval("x = 1").unwrap().files.is_empty());

    assert_eq!(session.read_file("given.txt").unwrap(), b"given+");
    assert_eq!(session.read_file("moved/a.txt").unwrap(), b"one");
    session
        .add_files(vec![InputFile::new("later.txt", "later")])
        .unwrap();
    assert_eq!(
        session
            .eval("open('later.txt').read()")
            .unwrap()
            .value
            .as_deref(),
        Some("'later'")
    );
    for (path, words) in [
        ("b.txt", "no such file"),
        ("moved", "a directory"),
        ("../etc", "`..`"),
    ] {
        match session.read_file(path) {
            Err(EvalError::NoSuchFile(why) | EvalError::InvalidFiles(why)) => {
                assert!(why.contains(words), "{path}: {why}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // The session goes on after a refused read.
    assert_eq!(session.eval("1 + 1").unwrap().value.as_deref(), Some("2"));
}

#[test]
fn a_file_larger_than_the_byte_limit_is_not_read_back() {
    let limits = Limits::default().with_file_limits(FileLimits::new(10, 1000));
    let mut session = evaluator().session(&limits).unwrap();
    session
        .eval("open('big', 'wb').write(bytes(2000))")
        .unwrap();
    match session.read_file("big") {
        Err(EvalError::NoSuchFile(why)) => assert!(why.contains("2000 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn files_outside_the_working_directory_are_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mount: pyeval::Mount = format!("{}:/data:rw", dir.path().display())
        .parse()
        .unwrap();
    let grants = Grants::new().with_mount(mount);
    let code = "open('/data/host.txt', 'w').write('h')\nimport os\nos.makedirs('/elsewhere')\n\
                open('/elsewhere/x', 'w').write('x')\nopen('here.txt', 'w').write('t')";
    let outcome = evaluator()
        .eval_with(code, &Limits::default(), &grants)
        .unwrap();
    assert_eq!(outcome.error, None, "{:?}", outcome.error);
    assert_eq!(paths(&outcome.files), ["here.txt"]);
}

#[test]
fn files_that_fill_the_memory_are_still_listed_or_counted() {
    let limits = Limits::default()
        .with_memory_bytes(40 << 20)
        .with_fuel(pyeval::Fuel::Limited(20_000_000_000));
    let code =
        "n = 0\ntry:\n    while True:\n        open('f' * 200 + str(n), 'w').close(); n += 1\n\
                except MemoryError:\n    pass\nn";
    let outcome = evaluator()
        .eval_with(code, &limits, &Grants::new())
        .unwrap();
    let made: u64 = outcome.value.as_deref().unwrap().parse().unwrap();
    assert!(made > 10_000, "{made}");
    // (The file whose making ran out of memory may exist without having been counted.)
    let listed = outcome.files.len() as u64 + outcome.files_dropped as u64;
    assert!((made..=made + 1).contains(&listed), "{listed} of {made}");
    assert!(outcome.files.len() <= 100);
}

#[test]
fn files_given_to_a_session_wait_out_a_full_pool() {
    let small = pyeval::Evaluator::builder()
        .max_instances(1)
        .build()
        .unwrap();
    let mut holder = small.session(&Limits::default()).unwrap();
    holder.eval("1").unwrap();
    let grants = Grants::new().with_file("kept.txt", "still here");
    let mut session = small.session_with(&Limits::default(), &grants).unwrap();
    assert!(matches!(
        session.eval("1"),
        Err(EvalError::TooManyInstances { .. })
    ));
    drop(holder);
    let read = session.eval("open('kept.txt').read()").unwrap();
    assert_eq!(read.value.as_deref(), Some("'still here'"));
}

#[test]
fn an_evaluation_that_changes_no_file_is_not_asked_for_its_files() {
    // The outcome says no file changed, so the host asks nothing more: the fuel of one
    // with no files allowed at all. (Asking would cost the guest about 90 fuel; a fresh
    // evaluation's fuel varies by a few units from one to the next, so means are compared.)
    let mean_fuel = |limits: &Limits| {
        let runs = 30;
        let total: u64 = (0..runs)
            .map(|_| {
                evaluator()
                    .eval_with("print(1)", limits, &Grants::new())
                    .unwrap()
                    .fuel_used
            })
            .sum();
        total as f64 / runs as f64
    };
    let without = Limits::default().with_file_limits(FileLimits::new(0, 0));
    let (asked, not_asked) = (mean_fuel(&Limits::default()), mean_fuel(&without));
    assert!(
        (asked - not_asked).abs() < 40.0,
        "{asked} against {not_asked}"
    );
}
