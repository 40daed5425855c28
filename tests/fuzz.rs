//! Seeded fuzzing through the library: random and mutated Python under random limits.
//!
//! Every evaluation must end with a typed result (an outcome, or a typed error that its
//! limits explain), within its deadline, without a host panic, and within its output cap.
//! `PYEVAL_FUZZ_RUNS` sets the number of evaluations (default: a short slice for CI;
//! `just fuzz` runs 100,000 in release) and `PYEVAL_FUZZ_SEED` the seed.

mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use pyeval::{EvalError, Fuel, Limits, Outcome, Stopped};

/// Evaluations when `PYEVAL_FUZZ_RUNS` is not set.
const DEFAULT_RUNS: u64 = 400;
/// How far past its deadline an evaluation may end: the host's grace for blocked calls
/// plus scheduling on a loaded two-core machine.
const DEADLINE_SLACK: Duration = Duration::from_millis(400);

/// Snippets to start from: ordinary code, code that fails, and code that attacks limits.
const SEEDS: &[&str] = &[
    "print('hello')",
    "6 * 7",
    "x = [i * i for i in range(100)]\nsum(x)",
    "import json\njson.dumps({'k': [1, 2, {'n': None}]})",
    "def f(n):\n    return 1 if n < 2 else n * f(n - 1)\nf(30)",
    "class A:\n    def __repr__(self): return 'A()'\nA()",
    "import re\nre.findall(r'(a+)+b', 'a' * 20)",
    "1 / 0",
    "raise SystemExit(3)",
    "import sys\nsys.exit('bye')",
    "def (",
    "'\\udcff'",
    "b'\\x00\\xff' * 10",
    "while True: pass",
    "x = 'a' * (1 << 20)\nwhile True: x += x",
    "print('y' * 100000)",
    "import sys\nsys.stdout.write('z' * 3000000)",
    "def r(): r()\nr()",
    "import os\nos.write(1, b'raw' * 1000)",
    "import time\ntime.sleep(5)",
    "eval('(' * 200 + ')' * 200)",
    "[[[[[[[[[[1]]]]]]]]]] * 1000",
    "import sqlite3\nsqlite3.connect(':memory:').execute('select randomblob(64)').fetchone()",
    "import gc\ngc.unfreeze()\ngc.collect()",
    "import builtins\nbuiltins.print = None",
    "import sys\nsys.modules.clear()",
    "open('/etc/passwd').read()",
    "import socket\nsocket.socket()",
    "exec(compile('x=1\\n' * 5000, 's', 'exec'))",
    "s = {}\nfor i in range(10**5): s[str(i)] = i\nlen(s)",
];

/// Fragments spliced into snippets.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "\n",
    "    ",
    "lambda",
    "yield",
    "await",
    "async def f():",
    "*",
    "**",
    "'",
    "\"\"\"",
    "\\",
    "\0",
    "#",
    "@",
    ",",
    ";",
    "=",
    "==",
    "->",
    "𝔘",
    "é",
    "\u{202e}",
    "\u{feff}",
    "9",
    "1e308",
    "-0",
    "None",
    "...",
    "import ",
    "from . import x",
    "global x",
    "del ",
    "not ",
    "if ",
    "else",
    "try:",
    "except:",
    "finally:",
    "with ",
    "as ",
    "__class__",
    "__subclasses__()",
    "__import__('os')",
    "print(",
    "repr(",
    "'%s' % ",
    "f'{",
    "}'",
];

/// SplitMix64: a small, seedable generator (quality enough to pick mutations).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A snippet, mutated a few times.
fn program(rng: &mut Rng) -> String {
    let mut code = rng.pick(SEEDS).to_string();
    for _ in 0..rng.below(4) {
        let at = floor_boundary(&code, rng.below(code.len() as u64 + 1) as usize);
        match rng.below(6) {
            0 => {
                let token = *rng.pick(TOKENS);
                code.insert_str(at, token)
            }
            1 => code.truncate(at),
            2 => {
                let other = rng.pick(SEEDS);
                code.insert_str(at, &format!("\n{other}\n"));
            }
            3 => {
                let end = floor_boundary(&code, at + rng.below(16) as usize);
                code.replace_range(at..end, "");
            }
            4 => code = code.repeat(1 + rng.below(3) as usize),
            _ => {
                let c = char::from_u32(rng.below(0x3_0000) as u32).unwrap_or('?');
                code.insert(at, c);
            }
        }
    }
    code
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Random limits: small budgets mostly, so that hostile code ends quickly.
fn limits(rng: &mut Rng) -> Limits {
    let fuel = match rng.below(10) {
        0 => Fuel::Unlimited,
        1 => Fuel::Limited(rng.below(1000)),
        _ => Fuel::Limited(1_000_000 + rng.below(40_000_000)),
    };
    let memory = match rng.below(10) {
        0 => (1 + rng.below(48)) as usize * (1 << 20),
        _ => (64 + rng.below(192)) as usize * (1 << 20),
    };
    Limits::default()
        .with_fuel(fuel)
        .with_memory_bytes(memory)
        .with_wall_time(Duration::from_millis(20 + rng.below(300)))
        .with_output_bytes(rng.below(70_000) as u32)
        .with_code_bytes(1 + rng.below(200_000) as usize)
}

/// Why `result` is not a proper ending of an evaluation under `limits`, if it is not.
fn judge(result: &Result<Outcome, EvalError>, limits: &Limits) -> Option<String> {
    let cap = limits.output_bytes as usize;
    match result {
        Ok(outcome) => {
            let texts = [
                ("stdout", Some(&outcome.stdout)),
                ("stderr", Some(&outcome.stderr)),
                ("value", outcome.value.as_ref()),
                ("traceback", outcome.error.as_ref().map(|e| &e.traceback)),
            ];
            texts
                .into_iter()
                .find(|(_, text)| text.is_some_and(|t| t.len() > cap))
                .map(|(name, _)| format!("{name} over the output cap of {cap}"))
        }
        Err(EvalError::Stopped(Stopped::FuelExhausted { budget })) => {
            (Fuel::Limited(*budget) != limits.fuel).then(|| format!("fuel {budget} not ours"))
        }
        Err(
            EvalError::Stopped(
                Stopped::Timeout { .. }
                | Stopped::MemoryLimit { .. }
                | Stopped::Trap(_)
                | Stopped::MemoryBudget { .. },
            )
            | EvalError::InvalidCode(_)
            | EvalError::SessionEnded(_),
        ) => None,
        Err(other) => Some(format!("unexpected error {other:?}")),
    }
}

/// A name for how an evaluation ended, for the summary.
fn kind(result: &std::thread::Result<Result<Outcome, EvalError>>) -> &'static str {
    match result {
        Err(_) => "panic",
        Ok(Ok(outcome)) if outcome.error.is_some() => "exception",
        Ok(Ok(outcome)) if outcome.exit_code.is_some() => "exit",
        Ok(Ok(_)) => "ok",
        Ok(Err(EvalError::Stopped(Stopped::FuelExhausted { .. }))) => "fuel",
        Ok(Err(EvalError::Stopped(Stopped::Timeout { .. }))) => "timeout",
        Ok(Err(EvalError::Stopped(Stopped::MemoryLimit { .. }))) => "memory",
        Ok(Err(EvalError::Stopped(_))) => "trap",
        Ok(Err(EvalError::InvalidCode(_))) => "refused",
        Ok(Err(_)) => "other",
    }
}

#[test]
fn random_programs_under_random_limits_end_typed_and_on_time() {
    let runs: u64 = std::env::var("PYEVAL_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let seed: u64 = std::env::var("PYEVAL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED);
    let threads = 2;
    let started = Instant::now();
    let reports: Vec<(std::collections::BTreeMap<&str, u64>, Vec<String>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|worker| {
                    scope.spawn(move || {
                        let mut rng = Rng(seed ^ (worker as u64).wrapping_mul(0xA5A5_A5A5));
                        let mut failures = Vec::new();
                        let mut kinds = std::collections::BTreeMap::new();
                        let mut session = None;
                        for run in (worker as u64..runs).step_by(threads) {
                            let code = program(&mut rng);
                            let fresh_limits = limits(&mut rng);
                            let in_session = rng.below(4) == 0;
                            if in_session && session.is_none() {
                                let started = common::evaluator().session(&fresh_limits).unwrap();
                                session = Some((started, fresh_limits.clone()));
                            }
                            let limits = match &session {
                                Some((_, limits)) if in_session => limits.clone(),
                                _ => fresh_limits,
                            };
                            let begun = Instant::now();
                            let result =
                                std::panic::catch_unwind(AssertUnwindSafe(|| {
                                    match session.as_mut() {
                                        Some((session, _)) if in_session => session.eval(&code),
                                        _ => common::evaluator().eval(&code, &limits),
                                    }
                                }));
                            let took = begun.elapsed();
                            if in_session && !matches!(result, Ok(Ok(_))) {
                                session = None;
                            }
                            let verdict = match &result {
                                Err(_) => Some("the host panicked".to_owned()),
                                Ok(result) => judge(result, &limits),
                            };
                            let wall = limits.wall_time;
                            *kinds.entry(kind(&result)).or_insert(0u64) += 1;
                            if took > wall + DEADLINE_SLACK {
                                failures.push(format!("run {run}: took {took:?} for {:?}", wall));
                            }
                            if let Some(why) = verdict {
                                failures.push(format!("run {run}: {why}; code {code:?}"));
                            }
                        }
                        (kinds, failures)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
    let mut kinds = std::collections::BTreeMap::new();
    for (counts, _) in &reports {
        for (name, count) in counts {
            *kinds.entry(*name).or_insert(0) += count;
        }
    }
    let failures: Vec<_> = reports.into_iter().flat_map(|(_, f)| f).collect();
    eprintln!(
        "fuzz: {runs} evaluations (seed {seed}) in {:.1}s, {} failures; endings: {kinds:?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {runs} evaluations failed:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    // The evaluator still works normally afterwards.
    let after = common::evaluator()
        .eval("1 + 1", &Limits::default())
        .unwrap();
    assert_eq!(after.value.as_deref(), Some("2"));
}
