//! An outcome as a JSON response of bounded size, whose bytes count against the memory all
//! responses in flight may hold (a client that reads slowly keeps its response that long).
//!
//! JSON escapes a control character as six bytes, so an outcome whose five texts are each
//! at the output limit could become thirty times that limit; past the response limit the
//! longest texts are cut (marked truncated) until it fits.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pyeval::Outcome;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::wire::Failure;

/// Added to a text cut to fit the response limit.
pub const CUT: &str = "\n[cut to fit the server's response limit]";

/// A JSON response body whose bytes hold their share of the response memory for as long as
/// anything (the connection's write buffer included) holds them.
pub struct BoundedJson(Bytes);

/// The bytes of a body and the share of the response memory they take.
struct Held {
    /// The body (JSON, or a file's bytes).
    json: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.json
    }
}

impl BoundedJson {
    /// `outcome` as JSON of at most `max` bytes; a 503 when the responses in flight
    /// already hold what `memory` (in KiB) allows.
    pub fn new(outcome: &Outcome, max: usize, memory: &Arc<Semaphore>) -> Result<Self, Failure> {
        held(bounded(outcome, max), memory).map(BoundedJson)
    }
}

/// `bytes` as a body that holds its share of `memory` (in KiB) while anything holds it; a
/// 503 when the responses in flight already hold what `memory` allows.
pub fn held(bytes: Vec<u8>, memory: &Arc<Semaphore>) -> Result<Bytes, Failure> {
    let kib = u32::try_from(bytes.len().div_ceil(1024)).unwrap_or(u32::MAX);
    let permit = memory.clone().try_acquire_many_owned(kib).map_err(|_| {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "responses waiting for their clients hold all the memory this server \
             gives them; retry shortly",
        )
        .retry_after(1)
    })?;
    Ok(Bytes::from_owner(Held {
        json: bytes,
        _permit: permit,
    }))
}

/// The outcome's JSON, with its texts cut until it is at most `max` bytes long besides its
/// files (which the files limits bound).
pub fn bounded(outcome: &Outcome, max: usize) -> Vec<u8> {
    bounded_json(
        serde_json::to_value(outcome).expect("outcomes serialize"),
        max.saturating_add(files_json_bytes(&outcome.files)),
    )
}

/// Most bytes `files` take in an outcome's JSON, counted without writing them: their
/// bytes in base64, their paths and media types with every byte escaped, and the rest of
/// each record.
fn files_json_bytes(files: &[pyeval::OutputFile]) -> usize {
    files
        .iter()
        .map(|file| {
            let data = file
                .data
                .as_ref()
                .map_or(0, |data| data.len().div_ceil(3) * 4);
            data + 6 * (file.path.len() + file.media_type.len()) + 128
        })
        .sum()
}

/// `outcome` (an outcome as JSON) written out within `max` bytes.
fn bounded_json(outcome: Value, max: usize) -> Vec<u8> {
    let mut json = outcome.to_string().into_bytes();
    // Each round keeps a smaller share of every text (escapes vary, so one guess may not
    // do); the last keeps none, which always fits.
    let mut keep = 1.0;
    for round in 0..8 {
        if json.len() <= max {
            break;
        }
        keep = if round == 7 {
            0.0
        } else {
            keep * 0.9 * max as f64 / json.len() as f64
        };
        let mut cut = outcome.clone();
        for (text, flag) in [
            ("stdout", Some("stdout_truncated")),
            ("stderr", Some("stderr_truncated")),
            ("value", None),
        ] {
            if shorten(&mut cut[text], keep) {
                if let Some(flag) = flag {
                    cut[flag] = Value::Bool(true);
                }
            }
        }
        if let Some(error) = cut.get_mut("error").filter(|e| e.is_object()) {
            shorten(&mut error["message"], keep);
            shorten(&mut error["traceback"], keep);
        }
        json = cut.to_string().into_bytes();
    }
    json
}

/// Keeps the first `keep` share of a JSON string (at a character boundary) and marks the
/// cut; whether it cut anything (anything but a string is left alone).
fn shorten(text: &mut Value, keep: f64) -> bool {
    let Value::String(text) = text else {
        return false;
    };
    let mut end = (text.len() as f64 * keep) as usize;
    if end >= text.len() {
        return false;
    }
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT);
    true
}

impl IntoResponse for BoundedJson {
    fn into_response(self) -> Response {
        let mut response = Response::new(axum::body::Body::from(self.0));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outcome's JSON with `text` as its stdout, stderr, value and exception.
    fn outcome(text: &str) -> Value {
        serde_json::json!({
            "stdout": text, "stderr": text, "stdout_truncated": false,
            "stderr_truncated": false, "value": text,
            "error": {"type_name": "E", "message": text, "traceback": text},
            "exit_code": null, "fuel_used": 0, "wall_time_us": 0,
        })
    }

    #[test]
    fn an_outcome_within_the_limit_is_untouched() {
        let small = outcome("hi");
        assert_eq!(
            bounded_json(small.clone(), 1 << 20),
            small.to_string().into_bytes()
        );
    }

    #[test]
    fn escapes_past_the_limit_are_cut_to_fit() {
        // Each control character is six bytes of JSON: 1.2 MB for 200,000 of them, five
        // times over.
        let big = outcome(&"\u{1}".repeat(200_000));
        for max in [1 << 20, 100_000, 1_000] {
            let json = bounded_json(big.clone(), max);
            assert!(json.len() <= max, "{} > {max}", json.len());
            let cut: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(cut["stdout_truncated"], true);
            assert_eq!(cut["stderr_truncated"], true);
            assert!(cut["value"].as_str().unwrap().ends_with(CUT));
            assert!(cut["error"]["traceback"].as_str().unwrap().ends_with(CUT));
            assert_eq!(cut["error"]["type_name"], "E");
        }
    }
}
