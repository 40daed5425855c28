//! A corpus of snippets with the outcome each must give, compared across hosts, and WAVE
//! (the text the wasmtime CLI prints values in): just what the tests read and write.

use std::path::Path;

/// What hosts are compared on.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Summary {
    pub stdout: String,
    pub value: Option<String>,
    pub error: Option<String>,
}

impl Summary {
    /// The summary of an outcome.
    pub fn of(outcome: pyeval::Outcome) -> Self {
        Summary {
            stdout: outcome.stdout,
            value: outcome.value,
            error: outcome.error.map(|e| e.type_name),
        }
    }

    /// The summary of an outcome the wasmtime CLI printed as WAVE.
    pub fn from_wave(wave: &str) -> Self {
        Summary {
            stdout: wave_field(wave, "stdout: ").unwrap_or_default(),
            value: wave_field(wave, "value: some("),
            error: wave_field(wave, "type-name: "),
        }
    }
}

/// A snippet and what it must give.
#[derive(Debug, serde::Deserialize)]
pub struct Snippet {
    pub code: String,
    #[serde(flatten)]
    pub expected: Summary,
}

/// The snippets of a corpus file (JSON).
pub fn read(path: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `text` as a WAVE string literal.
pub fn wave_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The string literal that follows `label` in WAVE text, unescaped.
fn wave_field(wave: &str, label: &str) -> Option<String> {
    let start = wave.find(label)? + label.len();
    let mut chars = wave[start..].chars();
    if chars.next()? != '"' {
        return None;
    }
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}
