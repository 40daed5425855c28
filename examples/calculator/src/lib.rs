//! A component of its own that delegates to pyeval: composed with pyeval.wasm, its `calc`
//! export evaluates arithmetic in the sandboxed interpreter.

wit_bindgen::generate!({
    world: "pyeval:calculator/calculator",
    path: ["../../wit", "wit"],
    generate_all,
});

use pyeval::sandbox::evaluator;

struct Calculator;

/// Characters an arithmetic expression may hold; anything else is refused before it
/// reaches Python.
fn is_arithmetic(expression: &str) -> bool {
    expression
        .chars()
        .all(|c| c.is_ascii_digit() || " \t.+-*/%()_eEjJ".contains(c))
}

impl Guest for Calculator {
    fn calc(expression: String) -> Result<String, String> {
        if expression.trim().is_empty() || !is_arithmetic(&expression) {
            return Err(format!("not an arithmetic expression: {expression:?}"));
        }
        let outcome = evaluator::eval(&format!("({expression}\n)"));
        match (outcome.value, outcome.error) {
            (_, Some(error)) => Err(format!("{}: {}", error.type_name, error.message)),
            (Some(value), None) => Ok(value),
            (None, None) => Err("the expression has no value".into()),
        }
    }
}

export!(Calculator);
