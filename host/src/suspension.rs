//! An evaluation suspended at a tool call, to resume later (in this process or another,
//! after a restart) with the call's answer.
//!
//! A tool's handler answers [`crate::ToolError::suspend`] (to wait for a person's
//! approval, say): the evaluation stops, and [`crate::EvalError::Suspended`] carries a
//! [`Suspension`]: the code, the session's state before the evaluation (none for a fresh
//! instance), and the journal of the calls answered before the suspended one.
//! [`crate::Evaluator::resume`] restores that state and runs the code again, answering
//! its calls from the journal, in order, without calling their handlers, then the
//! suspended call with the answer given; later calls go to the handlers. Code that makes
//! other calls on the way back (it read the clock, say) gets a `ToolError` saying so.
//! Calls still running when the evaluation was suspended are made again.

use serde::{Deserialize, Serialize};

use crate::dump::DumpError;
use crate::error::EvalError;
use crate::limits::Limits;
use crate::tools::ToolResult;

/// The bytes a suspension starts with; the last is the format's version.
const MAGIC: &[u8; 20] = b"pyeval suspension\n\x00\x01";

/// A call the evaluation made, and its answer: the result as JSON text, or the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Which call of the evaluation it was (0 for the first started).
    pub call: u32,
    /// The tool's name.
    pub tool: String,
    /// Its arguments, as the code passed them (JSON text).
    pub arguments: String,
    /// Its result as JSON text, or its error message.
    pub outcome: Result<String, String>,
}

/// An evaluation stopped at a tool call that asked to suspend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    /// The code evaluated.
    pub code: String,
    /// Which call of the evaluation suspended it (0 for the first started).
    pub call: u32,
    /// The tool of that call.
    pub tool: String,
    /// That call's arguments (JSON text).
    pub arguments: String,
    /// Why its handler suspended it.
    pub reason: String,
    /// The calls answered before it, in the order the code made them.
    pub journal: Vec<JournalEntry>,
    /// The session's state before the evaluation (a dump); none for a fresh instance.
    pub(crate) state: Option<Vec<u8>>,
    /// SHA-256 of the component (hex).
    pub(crate) component: String,
}

/// The parts of a [`Suspension`] kept as JSON.
#[derive(Serialize, Deserialize)]
struct Header {
    code: String,
    call: u32,
    tool: String,
    arguments: String,
    reason: String,
    journal: Vec<JournalEntry>,
    component: String,
    has_state: bool,
}

impl Suspension {
    /// The suspension as bytes, to keep until it is resumed. It holds the session's state
    /// (the guest's memory) and the calls' results: treat it as the user's data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&Header {
            code: self.code.clone(),
            call: self.call,
            tool: self.tool.clone(),
            arguments: self.arguments.clone(),
            reason: self.reason.clone(),
            journal: self.journal.clone(),
            component: self.component.clone(),
            has_state: self.state.is_some(),
        })
        .expect("a header is JSON");
        let state = self.state.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + header.len() + state.len());
        out.extend(MAGIC);
        out.extend((header.len() as u64).to_le_bytes());
        out.extend(header);
        out.extend(state);
        out
    }

    /// A suspension from [`Suspension::to_bytes`]. Its state is checked when it is resumed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DumpError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(DumpError::NotADump)?;
        let damaged = |why: &str| DumpError::Damaged(format!("the suspension {why}"));
        let (len, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| damaged("ends in its header"))?;
        let len = usize::try_from(u64::from_le_bytes(*len))
            .ok()
            .filter(|len| *len <= rest.len())
            .ok_or_else(|| damaged("ends in its header"))?;
        let header: Header = serde_json::from_slice(&rest[..len])
            .map_err(|e| DumpError::Damaged(format!("the suspension's header: {e}")))?;
        let state = &rest[len..];
        if header.has_state == state.is_empty() {
            return Err(damaged(
                "has no state where it should, or one where it should not",
            ));
        }
        Ok(Suspension {
            code: header.code,
            call: header.call,
            tool: header.tool,
            arguments: header.arguments,
            reason: header.reason,
            journal: header.journal,
            state: header.has_state.then(|| state.to_vec()),
            component: header.component,
        })
    }

    /// Refuses a suspension of another component (SHA-256 `component`), or one carrying
    /// more than `limits` allow: it is the client's to keep and alter, so its code is held
    /// to the code limit and its journal to the tool-call count and result cap.
    pub(crate) fn check(&self, component: &str, limits: &Limits) -> Result<(), EvalError> {
        if self.component != component {
            return Err(DumpError::OtherComponent {
                dumped: self.component.clone(),
                ours: component.to_owned(),
            }
            .into());
        }
        crate::session::check_code(&self.code, limits.code_bytes)?;
        let tools = limits.tools;
        if self.journal.len() >= tools.calls as usize {
            return Err(DumpError::Damaged(format!(
                "its journal holds {} calls, and the limits allow {}",
                self.journal.len() + 1,
                tools.calls
            ))
            .into());
        }
        let answered = |entry: &JournalEntry| match &entry.outcome {
            Ok(text) | Err(text) => text.len(),
        };
        if let Some(entry) = self.journal.iter().find(|e| answered(e) > tools.bytes) {
            return Err(DumpError::Damaged(format!(
                "its journal's answer to call {} is {} bytes, over the cap of {}",
                entry.call + 1,
                answered(entry),
                tools.bytes
            ))
            .into());
        }
        Ok(())
    }

    /// The calls a resumed evaluation answers without their handlers: the journal's, then
    /// the suspended call's with `answer` (a result held to `cap` bytes, as any is).
    pub(crate) fn replay(&self, answer: ToolResult, cap: usize) -> Vec<JournalEntry> {
        let outcome = match answer {
            Ok(value) => crate::tools::result_text(&value, cap),
            Err(error) => Err(error.message().to_owned()),
        };
        let mut replay = self.journal.clone();
        replay.push(JournalEntry {
            call: self.call,
            tool: self.tool.clone(),
            arguments: self.arguments.clone(),
            outcome,
        });
        replay
    }
}

impl std::fmt::Display for Suspension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the evaluation was suspended at a call of {} ({})",
            self.tool, self.reason
        )
    }
}
