//! Many fresh evaluations at once on one evaluator: no failure, no cross-talk. A test binary
//! of its own, so its load does not delay the deadline checks of the hostile suite.

mod common;

use common::evaluator;
use pyeval::Limits;

#[test]
fn parallel_fresh_evaluations_do_not_cross_talk() {
    std::thread::scope(|scope| {
        for thread in 0..8 {
            scope.spawn(move || {
                for i in 0..250 {
                    let code = format!("x = {thread} * 1000 + {i}\nprint(x)\nx * 2");
                    let outcome = evaluator().eval(&code, &Limits::default()).unwrap();
                    let x = thread * 1000 + i;
                    assert_eq!(outcome.stdout, format!("{x}\n"));
                    assert_eq!(outcome.value, Some((x * 2).to_string()));
                }
            });
        }
    });
}
