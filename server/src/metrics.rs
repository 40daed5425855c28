//! Counters of what the service did, in Prometheus's text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyeval::{EvalError, Outcome};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Metrics {
    /// Evaluations by how they ended: `ok`, `exception`, `exit`, or an error kind.
    by_outcome: Mutex<BTreeMap<&'static str, u64>>,
    /// Counts per bucket (the last is +Inf), and the sum of seconds in microseconds.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    fuel: AtomicU64,
    in_flight: AtomicI64,
}

impl Metrics {
    /// Counts an evaluation that took `elapsed` and ended as `result`.
    pub fn record(&self, result: Result<&Outcome, &EvalError>, elapsed: Duration) {
        let ending = match result {
            Ok(outcome) if outcome.exit_code.is_some() => "exit",
            Ok(outcome) if outcome.error.is_some() => "exception",
            Ok(_) => "ok",
            Err(error) => error.kind().as_str(),
        };
        *self.by_outcome.lock().unwrap().entry(ending).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Ok(outcome) = result {
            self.fuel.fetch_add(outcome.fuel_used, Ordering::Relaxed);
        }
    }

    /// Marks an evaluation running until the returned guard is dropped.
    pub fn running(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// The exposition text, with `sessions` open sessions.
    pub fn render(&self, sessions: usize) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "pyeval_evaluations_total",
            "counter",
            "Evaluations by how they ended.",
        );
        for (ending, count) in self.by_outcome.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "pyeval_evaluations_total{{outcome=\"{ending}\"}} {count}"
            );
        }
        family(
            &mut out,
            "pyeval_evaluation_seconds",
            "histogram",
            "Wall time of evaluations.",
        );
        let mut cumulative = 0;
        for (i, count) in self.latency.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "pyeval_evaluation_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "pyeval_evaluation_seconds_sum {sum}");
        let _ = writeln!(out, "pyeval_evaluation_seconds_count {cumulative}");
        for (name, kind, help, value) in [
            (
                "pyeval_fuel_consumed_total",
                "counter",
                "Fuel used by evaluations that ran to their end.",
                self.fuel.load(Ordering::Relaxed) as i64,
            ),
            (
                "pyeval_evaluations_in_flight",
                "gauge",
                "Evaluations running now.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "pyeval_sessions_open",
                "gauge",
                "Sessions open now.",
                sessions as i64,
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// An evaluation in flight, for the gauge.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
