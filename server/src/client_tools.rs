//! A client's own tools over HTTP. A streamed request declares them (`client_tools`: name,
//! description, JSON Schema of the arguments); each call the code makes arrives as a `call`
//! event `{"id", "tool", "arguments"}`, and the client answers it with `POST
//! /v1/calls/{id}` and `{"result": ...}` or `{"error": "message"}` while the evaluation
//! waits, or `{"suspend": "reason"}` to suspend the evaluation (a `suspended` event, to
//! resume with `POST /v1/resume`). Calls are bounded like any tool's (count, time, bytes);
//! one never answered costs the evaluation its call time or deadline, nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use pyeval::{Tool, ToolError};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::events;
use crate::wire::Failure;

/// Most tools one request may declare.
pub const MAX_DECLARED: usize = 100;

/// A tool as a request declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A JSON Schema of an object; any object when absent.
    #[serde(default = "any_object")]
    pub parameters: Value,
}

fn any_object() -> Value {
    json!({"type": "object"})
}

/// An answer to a call, as `POST /v1/calls/{id}` carries it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Answer {
    Result(Value),
    Error(String),
    Suspend(String),
}

/// The calls of client tools waiting for their answers, by id.
#[derive(Default)]
pub struct Calls {
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

impl Calls {
    /// Hands `answer` to the call `id`; false when no call waits under that id (never
    /// made, answered already, or given up).
    pub fn answer(&self, id: &str, answer: Answer) -> bool {
        let waiting = self.waiting.lock().unwrap().remove(id);
        waiting.is_some_and(|call| call.send(answer).is_ok())
    }

    /// Waits under a new random id (122 bits: a call cannot be answered by someone who was
    /// not sent it); the id is forgotten when the returned guard drops.
    fn wait(self: &Arc<Self>) -> (Waiting, oneshot::Receiver<Answer>) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), sender);
        let calls = self.clone();
        (Waiting { calls, id }, receiver)
    }
}

/// A call's place among the waiting; dropping it (answered, timed out, or its evaluation
/// ended) removes it.
struct Waiting {
    calls: Arc<Calls>,
    id: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.calls.waiting.lock().unwrap().remove(&self.id);
    }
}

/// The declared tools as tools whose calls go to the streaming client, refusing more than
/// [`MAX_DECLARED`], bad definitions, and names taken by `configured` tools.
pub fn tools(
    declared: Vec<Declared>,
    configured: &[Tool],
    calls: &Arc<Calls>,
) -> Result<Vec<Tool>, Failure> {
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message);
    if declared.len() > MAX_DECLARED {
        return Err(bad(format!(
            "{} client tools declared; at most {MAX_DECLARED} are accepted",
            declared.len()
        )));
    }
    let mut tools: Vec<Tool> = Vec::new();
    for Declared {
        name,
        description,
        parameters,
    } in declared
    {
        if configured.iter().chain(&tools).any(|t| t.name() == name) {
            return Err(bad(format!(
                "tool {name:?} is declared twice, or configured"
            )));
        }
        let calls = calls.clone();
        let tool_name = name.clone();
        let tool = Tool::new(name, description, parameters, move |arguments| {
            // Made while the evaluation runs: the events of the stream it writes to.
            let stream = events::current();
            let (calls, tool) = (calls.clone(), tool_name.clone());
            async move {
                let Some(stream) = stream else {
                    return Err(ToolError::new(format!(
                        "{tool} is the client's, and this evaluation is not streamed to it \
                         (Accept: text/event-stream)"
                    )));
                };
                let (waiting, answer) = calls.wait();
                let call = json!({"id": waiting.id, "tool": tool, "arguments": arguments});
                if !stream.send("call", call.to_string()) {
                    return Err(ToolError::new("the call could not be sent to the client"));
                }
                match answer.await {
                    Ok(Answer::Result(value)) => Ok(value),
                    Ok(Answer::Error(message)) => Err(ToolError::new(message)),
                    Ok(Answer::Suspend(reason)) => Err(ToolError::suspend(reason)),
                    Err(_) => Err(ToolError::new("the call was given up")),
                }
            }
        })
        .map_err(|e| bad(e.to_string()))?
        // The client may answer a call with a suspension.
        .may_suspend();
        tools.push(tool);
    }
    Ok(tools)
}
