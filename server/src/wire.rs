//! The JSON of the HTTP API: requests, and failures as `{"error": {"kind", "message"}}`
//! with an HTTP status per kind.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pyeval::{EvalError, Grants, Stdin};
use serde::Deserialize;
use serde_json::json;

use crate::client_tools::Declared;
use crate::policy::RequestLimits;

/// `POST /v1/eval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    pub code: String,
    #[serde(default)]
    pub limits: RequestLimits,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub stdin: Option<String>,
    /// Which of the configured tools the code gets, by server (group) or tool name; all of
    /// them when absent. Names the server was not configured with are refused.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// The client's own tools (answered over `POST /v1/calls/{id}`; called only by
    /// streamed evaluations).
    #[serde(default)]
    pub client_tools: Vec<Declared>,
    /// Files in the code's working directory: paths to their bytes in base64.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The network the code gets of what the operator granted (`--allow-host`): all of it
    /// (`true`, the default), none (`false`), or only the rules named (each as the
    /// operator wrote it). A request cannot widen what the operator granted.
    #[serde(default)]
    pub network: NetworkChoice,
}

/// `POST /v1/sessions` (every field optional; the body may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[serde(default)]
    pub limits: RequestLimits,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub stdin: Option<String>,
    /// Which of the configured tools the code gets, by server (group) or tool name; all of
    /// them when absent. Names the server was not configured with are refused.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// The client's own tools (answered over `POST /v1/calls/{id}`; called only by
    /// streamed evaluations).
    #[serde(default)]
    pub client_tools: Vec<Declared>,
    /// Files in the code's working directory: paths to their bytes in base64.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The network the code gets of what the operator granted (`--allow-host`): all of it
    /// (`true`, the default), none (`false`), or only the rules named (each as the
    /// operator wrote it). A request cannot widen what the operator granted.
    #[serde(default)]
    pub network: NetworkChoice,
    /// A session's dump (`GET /v1/sessions/{id}/dump`) in base64: the new session starts in
    /// its state.
    #[serde(default)]
    pub dump: Option<String>,
}

/// The JSON of a session request as a session store keeps it: without its files and
/// dump (or a resume's suspension and answer), which the session's state holds.
pub fn kept_request(body: &[u8]) -> String {
    let mut request: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(fields) = request.as_object_mut() {
        for field in ["files", "dump", "suspension", "result", "error"] {
            fields.remove(field);
        }
    }
    request.to_string()
}

/// `POST /v1/resume`'s body: `suspension` (base64, as the `suspended` event gave it), the
/// suspended call's answer (`result`, or `error` for a `ToolError`), and the fields of a
/// session request (the code's tools among them; no `dump`): the suspension, the answer,
/// and that session request.
pub fn resume_request(
    body: &[u8],
) -> Result<(pyeval::Suspension, pyeval::ToolResult, SessionRequest), Failure> {
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| bad(format!("bad JSON body: {e}")))?;
    let suspension = match fields.remove("suspension") {
        Some(serde_json::Value::String(base64)) => base64,
        _ => return Err(bad("suspension: the suspension in base64 is missing".into())),
    };
    let answer = match (fields.remove("result"), fields.remove("error")) {
        (_, Some(serde_json::Value::String(message))) => Err(pyeval::ToolError::new(message)),
        (_, Some(_)) => return Err(bad("error: a message is a string".into())),
        (result, None) => Ok(result.unwrap_or(serde_json::Value::Null)),
    };
    if fields.contains_key("dump") {
        return Err(bad(
            "dump: a resumed session's state is its suspension's".into()
        ));
    }
    let request: SessionRequest = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| bad(format!("bad JSON body: {e}")))?;
    let suspension = pyeval::Suspension::from_bytes(&dump(&suspension)?)
        .map_err(|e| Failure::from(EvalError::InvalidDump(e)))?;
    Ok((suspension, answer, request))
}

/// A dump sent in base64.
pub fn dump(base64: &str) -> Result<Vec<u8>, Failure> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("dump: not base64: {e}"),
            )
        })
}

/// Which of the operator's network a request takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NetworkChoice {
    /// All of it, or none.
    All(bool),
    /// These of its host rules.
    Rules(Vec<String>),
}

impl Default for NetworkChoice {
    fn default() -> Self {
        NetworkChoice::All(true)
    }
}

/// `POST /v1/sessions/{id}/eval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionEvalRequest {
    pub code: String,
}

/// What a request may grant its code: environment, `sys.argv`, stdin, files. (Host
/// directories are the operator's to grant, not a client's.)
pub fn grants(
    env: BTreeMap<String, String>,
    argv: Vec<String>,
    stdin: Option<String>,
    files: BTreeMap<String, String>,
) -> Result<Grants, Failure> {
    let mut grants = Grants::new().with_argv(argv);
    for (path, data) in files {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("files: {path:?} is not base64: {e}"),
                )
            })?;
        grants = grants.with_file(path, data);
    }
    for (key, value) in env {
        grants = grants.with_env(key, value);
    }
    if let Some(stdin) = stdin {
        grants = grants.with_stdin(Stdin::Bytes(stdin.into_bytes()));
    }
    Ok(grants)
}

/// A request that produced no outcome.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl Failure {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl From<EvalError> for Failure {
    fn from(error: EvalError) -> Self {
        use pyeval::FailureKind as K;
        let kind = error.kind();
        let status = match kind {
            K::FuelExhausted => StatusCode::UNPROCESSABLE_ENTITY,
            K::Timeout => StatusCode::REQUEST_TIMEOUT,
            K::MemoryLimit => StatusCode::INSUFFICIENT_STORAGE,
            K::InvalidCode | K::InvalidFiles | K::InvalidDump => StatusCode::BAD_REQUEST,
            K::NoSuchFile => StatusCode::NOT_FOUND,
            K::SessionEnded => StatusCode::GONE,
            K::TooManyInstances | K::MemoryBudget => StatusCode::SERVICE_UNAVAILABLE,
            // (No tool the server grants suspends an evaluation.)
            K::Trap | K::Cancelled | K::Setup | K::Suspended => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let failure = Failure::new(status, kind.as_str(), error.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            failure.retry_after(1)
        } else {
            failure
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "kind": self.kind, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
