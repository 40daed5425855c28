//! The tools an evaluation is granted, written as Python stubs: what a model is shown so
//! that the code it writes calls them right.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::Tool;

/// Python stubs of `tools`: an `async def` with keyword-only, typed parameters and the
/// description as docstring for each, inside a class named after the group for tools
/// named `group.tool`, after a `TypedDict` for each parameter that is an object with
/// properties.
pub fn stubs(tools: &[Tool]) -> String {
    let mut out = String::from("from typing import Any, Literal, TypedDict\n");
    let mut groups: Vec<(&str, Vec<&Tool>)> = Vec::new();
    for tool in tools {
        let group = tool.name.split_once('.').map_or("", |(group, _)| group);
        match groups.iter_mut().find(|(name, _)| *name == group) {
            Some((_, members)) => members.push(tool),
            None => groups.push((group, vec![tool])),
        }
    }
    for (group, members) in groups {
        let mut functions = String::new();
        for tool in members {
            let short = tool.name.rsplit('.').next().unwrap_or(&tool.name);
            let (typed_dicts, function) = stub(short, &tool.description, &tool.parameters);
            out.push_str(&typed_dicts);
            functions.push_str(&function);
        }
        if group.is_empty() {
            out.push('\n');
            out.push_str(&functions);
        } else {
            let _ = write!(out, "\n\nclass {group}:\n");
            for line in functions.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    out
}

/// The `TypedDict`s a tool's parameters need, and its `async def`.
fn stub(name: &str, description: &str, parameters: &Value) -> (String, String) {
    let mut typed_dicts = String::new();
    let empty = Map::new();
    let properties = parameters["properties"].as_object().unwrap_or(&empty);
    let required: Vec<&str> = parameters["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut params = Vec::new();
    let mut documented = Vec::new();
    // (A parameter whose name is no identifier is passed as `**{"page-size": 5}`.)
    for (key, schema) in properties.iter().filter(|(key, _)| is_identifier(key)) {
        let hint = python_type(schema, &camel(&[name, key]), &mut typed_dicts);
        let param = if required.contains(&key.as_str()) {
            format!("{key}: {hint}")
        } else {
            match schema.get("default") {
                Some(default) => format!("{key}: {hint} = {}", python_value(default)),
                None => format!("{key}: {hint} | None = None"),
            }
        };
        params.push(param);
        if let Some(text) = schema["description"].as_str() {
            documented.push(format!("{key}: {text}"));
        }
    }
    let open = properties.is_empty()
        || !matches!(
            parameters.get("additionalProperties"),
            None | Some(Value::Bool(false))
        );
    let signature = match (params.is_empty(), open) {
        (true, true) => "**arguments: Any".to_string(),
        (true, false) => String::new(),
        (false, false) => format!("*, {}", params.join(", ")),
        (false, true) => format!("*, {}, **arguments: Any", params.join(", ")),
    };
    let mut doc = description.trim().to_string();
    if !documented.is_empty() {
        doc.push_str("\n\n");
        doc.push_str(&documented.join("\n"));
    }
    let doc = doc.replace('\\', "\\\\").replace("\"\"\"", "\\\"\"\"");
    let mut function = String::from("\n");
    let def = if is_identifier(name) {
        name.to_string()
    } else {
        // Reached by item access only: `group["list-repos"](...)`.
        let _ = writeln!(
            function,
            "# [{}]",
            python_value(&Value::String(name.into()))
        );
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    };
    let _ = writeln!(function, "async def {def}({signature}) -> Any:");
    let doc: Vec<String> = doc
        .lines()
        .map(|line| match line {
            "" => String::new(),
            line => format!("    {line}"),
        })
        .collect();
    let _ = writeln!(function, "    \"\"\"{}\"\"\"", doc.join("\n").trim_start());
    (typed_dicts, function)
}

/// The Python annotation of a property's schema; an object with properties becomes a
/// `TypedDict` named `name`, written to `typed_dicts`.
fn python_type(schema: &Value, name: &str, typed_dicts: &mut String) -> String {
    if let Some(choices) = schema["enum"].as_array() {
        let values: Vec<String> = choices.iter().map(python_value).collect();
        return format!("Literal[{}]", values.join(", "));
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if kinds.is_empty() {
        return "Any".into();
    }
    let hints: Vec<String> = kinds
        .iter()
        .map(|kind| match *kind {
            "string" => "str".into(),
            "integer" => "int".into(),
            "number" => "float".into(),
            "boolean" => "bool".into(),
            "null" => "None".into(),
            "array" => {
                let items = python_type(&schema["items"], &format!("{name}Item"), typed_dicts);
                format!("list[{items}]")
            }
            "object" => match schema["properties"].as_object() {
                Some(properties) if !properties.is_empty() => {
                    let mut fields = String::new();
                    for (key, field) in properties {
                        let hint = python_type(field, &camel(&[name, key]), typed_dicts);
                        let _ = writeln!(fields, "    {key}: {hint}");
                    }
                    let _ = write!(
                        typed_dicts,
                        "\n\nclass {name}(TypedDict, total=False):\n{fields}"
                    );
                    name.to_string()
                }
                _ => "dict[str, Any]".into(),
            },
            _ => "Any".into(),
        })
        .collect();
    hints.join(" | ")
}

/// A JSON value as a Python literal.
fn python_value(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(python_value)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_value(&Value::String(k.clone())),
                    python_value(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // JSON's numbers and strings are Python literals too.
        other => other.to_string(),
    }
}

/// `parts` joined in CamelCase: `["search", "filters"]` gives `SearchFilters`.
fn camel(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|part| part.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn is_identifier(name: &str) -> bool {
    super::valid_name(name) && !name.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, description: &str, parameters: Value) -> Tool {
        Tool::new(name, description, parameters, |_| async { Ok(Value::Null) }).unwrap()
    }

    #[test]
    fn tools_become_typed_async_stubs() {
        let search = tool(
            "search",
            "Searches the web.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "what to look for"},
                    "limit": {"type": "integer", "default": 10},
                    "filters": {"type": "object", "properties": {"site": {"type": "string"}}},
                    "order": {"enum": ["new", "top"]},
                },
                "required": ["query"],
            }),
        );
        let issues = tool(
            "github.list-issues",
            "Lists issues.",
            json!({"type": "object"}),
        );
        assert_eq!(
            stubs(&[search, issues]),
            r#"from typing import Any, Literal, TypedDict


class SearchFilters(TypedDict, total=False):
    site: str


async def search(*, query: str, limit: int = 10, filters: SearchFilters | None = None, order: Literal["new", "top"] | None = None) -> Any:
    """Searches the web.

    query: what to look for"""


class github:

    # ["list-issues"]
    async def list_issues(**arguments: Any) -> Any:
        """Lists issues."""
"#
        );
    }
}
