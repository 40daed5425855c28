//! Live output: a listener granted with the evaluation receives stdout and stderr as code
//! writes them, within the output limit, while the outcome still holds all of it.

mod common;

use std::sync::{Arc, Mutex};

use common::evaluator;
use pyeval::{Grants, Limits, LiveOutput, Stream, Tool};
use serde_json::{json, Value};

/// What a listener heard: `(stream, text)` pieces in order.
type Heard = Arc<Mutex<Vec<(Stream, String)>>>;

fn listener() -> (LiveOutput, Heard) {
    let heard = Heard::default();
    let log = heard.clone();
    let listener = LiveOutput::new(move |stream, text| {
        log.lock().unwrap().push((stream, text.to_string()));
    });
    (listener, heard)
}

/// The text of `stream` that `heard` holds.
fn text(heard: &Heard, stream: Stream) -> String {
    let heard = heard.lock().unwrap();
    heard
        .iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, t)| t.as_str())
        .collect()
}

#[test]
fn output_reaches_the_listener_while_code_runs_and_the_outcome_keeps_it() {
    let (listener, heard) = listener();
    // A tool reports what the listener had heard when code called it, mid-evaluation.
    let seen = heard.clone();
    let so_far = Tool::new(
        "so_far",
        "What was heard so far.",
        json!({"type": "object"}),
        move |_| {
            let text = text(&seen, Stream::Stdout) + "|" + &text(&seen, Stream::Stderr);
            async move { Ok(Value::String(text)) }
        },
    )
    .unwrap();
    let grants = Grants::new().with_tool(so_far).with_live_output(listener);
    let code = "import os, sys\n\
                print('one')\n\
                os.write(1, b'raw\\n')\n\
                print('ø' * 3, file=sys.stderr)\n\
                seen = await so_far()\n\
                print('two')\n\
                seen";
    let outcome = evaluator()
        .eval_with(code, &Limits::default(), &grants)
        .unwrap();
    assert_eq!(outcome.value.as_deref(), Some("'one\\nraw\\n|øøø\\n'"));
    assert_eq!(outcome.stdout, "one\nraw\ntwo\n");
    assert_eq!(outcome.stderr, "øøø\n");
    assert_eq!(text(&heard, Stream::Stdout), "one\nraw\ntwo\n");
    assert_eq!(text(&heard, Stream::Stderr), "øøø\n");
}

#[test]
fn the_output_limit_holds_for_what_is_heard_and_cuts_whole_characters() {
    let (listener, heard) = listener();
    let grants = Grants::new().with_live_output(listener);
    let limits = Limits::default().with_output_bytes(10);
    // Eleven bytes: the cut falls inside the last 'é', which is not sent in part.
    let code = "print('abcdefghi' + 'é')\nprint('more')\n'done'";
    let outcome = evaluator().eval_with(code, &limits, &grants).unwrap();
    assert_eq!(outcome.value.as_deref(), Some("'done'"));
    assert!(outcome.stdout_truncated);
    assert_eq!(outcome.stdout, "abcdefghi");
    assert_eq!(text(&heard, Stream::Stdout), "abcdefghi");
}

#[test]
fn a_session_hears_output_only_while_a_listener_is_set() {
    let (listener, heard) = listener();
    let evaluator = evaluator();
    let mut session = evaluator
        .session_with(
            &Limits::default(),
            &Grants::new().with_live_output(listener),
        )
        .unwrap();
    assert_eq!(session.eval("print('heard')").unwrap().stdout, "heard\n");
    session.set_live_output(None);
    assert_eq!(session.eval("print('kept')").unwrap().stdout, "kept\n");
    let (again, heard_again) = self::listener();
    session.set_live_output(Some(again));
    assert_eq!(session.eval("print('again')").unwrap().stdout, "again\n");
    assert_eq!(text(&heard, Stream::Stdout), "heard\n");
    assert_eq!(text(&heard_again, Stream::Stdout), "again\n");
}

#[test]
fn an_error_after_output_keeps_what_was_heard() {
    let (listener, heard) = listener();
    let grants = Grants::new().with_live_output(listener);
    let outcome = evaluator()
        .eval_with("print('before')\n1/0", &Limits::default(), &grants)
        .unwrap();
    assert_eq!(outcome.error.unwrap().type_name, "ZeroDivisionError");
    assert_eq!(outcome.stdout, "before\n");
    assert_eq!(text(&heard, Stream::Stdout), "before\n");
    // The traceback is the outcome's, not written to stderr.
    assert_eq!(text(&heard, Stream::Stderr), "");
}
