//! One evaluator shared by the tests of a test binary.

use std::sync::OnceLock;

use pyeval::Evaluator;

/// One evaluator per test binary (compiling it is the slow part).
pub fn evaluator() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    EVALUATOR.get_or_init(|| Evaluator::new().expect("the evaluator loads"))
}
