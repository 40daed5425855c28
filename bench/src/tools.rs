//! Tool calls: the round trip of a no-op tool called from Python, and what granting tools
//! costs a fresh evaluation that calls none.

use std::time::{Duration, Instant};

use anyhow::Result;
use pyeval::{Evaluator, Grants, Limits, Tool};
use serde_json::{json, Value};

/// Calls timed per evaluation (the evaluation's cap is 1,000).
const CALLS: usize = 900;
/// Repetitions; the median is reported.
const REPEATS: usize = 9;

/// The measurements, as JSON, and the table's rows.
pub fn measure(evaluator: &Evaluator, fresh_p50: Duration) -> Result<(Value, Vec<String>)> {
    let noop = Tool::new(
        "noop",
        "Does nothing.",
        json!({"type": "object"}),
        |_| async { Ok(Value::Null) },
    )?;
    let grants = Grants::new().with_tool(noop);
    let limits = Limits::default();
    let run = |calls: usize| -> Result<Duration> {
        let code = format!("for _ in range({calls}):\n    await noop()\n");
        let started = Instant::now();
        let outcome = evaluator.eval_with(&code, &limits, &grants)?;
        anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
        Ok(started.elapsed())
    };
    run(1)?;
    let mut per_call = (0..REPEATS)
        .map(|_| Ok((run(CALLS + 1)?.saturating_sub(run(1)?)) / CALLS as u32))
        .collect::<Result<Vec<_>>>()?;
    per_call.sort();
    let round_trip = per_call[REPEATS / 2];

    // print(1) in a fresh instance that is granted the tool but does not call it.
    let mut granted = (0..500)
        .map(|_| {
            let started = Instant::now();
            evaluator.eval_with("print(1)", &limits, &grants)?;
            Ok(started.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    granted.sort();
    let granted_p50 = granted[granted.len() / 2];

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let results = json!({
        "noop_round_trip_us": us(round_trip),
        "fresh_print_1_granted_one_tool_p50_ms": ms(granted_p50),
        "granted_over_plain_fresh_p50": granted_p50.as_secs_f64() / fresh_p50.as_secs_f64(),
    });
    let rows = vec![
        format!(
            "| no-op Rust tool called from Python, round trip, median of {REPEATS} x {CALLS} calls | {:.1} µs |",
            us(round_trip)
        ),
        format!(
            "| fresh print(1) granted one tool (not called), p50 | {:.3} ms ({:.2}x without) |",
            ms(granted_p50),
            granted_p50.as_secs_f64() / fresh_p50.as_secs_f64()
        ),
    ];
    Ok((results, rows))
}
