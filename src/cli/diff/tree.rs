//! Field-by-field comparison of two proto3 JSON renderings of one Envoy resource: the paths
//! that differ, with their old and new values where those are safe to print.

use serde::Serialize;
use serde_json::Value;

/// How a value appears in a report. In JSON: `null` when unset, the value as a string, or
/// `"[not shown]"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The field is absent on this side.
    Unset,
    /// A number, a boolean, an enum name or a duration.
    Value(String),
    /// A short name outside anything that can carry header values or key material (quoted
    /// in sentences).
    Text(String),
    /// Present, but not printed (an object, a list, or text that might be confidential).
    Hidden,
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Unset => s.serialize_none(),
            Shown::Value(v) | Shown::Text(v) => s.serialize_str(v),
            Shown::Hidden => s.serialize_str("[not shown]"),
        }
    }
}

impl Shown {
    fn sentence(&self) -> String {
        match self {
            Shown::Unset => "unset".into(),
            Shown::Value(v) => v.clone(),
            Shown::Text(t) => format!("{t:?}"),
            Shown::Hidden => "[not shown]".into(),
        }
    }
}

/// One differing field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Shown,
    pub new: Shown,
}

impl FieldChange {
    /// `path: old → new`, `path added`, `path removed`, or `path changed`.
    pub fn describe(&self, path: &str) -> String {
        match (&self.old, &self.new) {
            (Shown::Unset, Shown::Hidden) => format!("{path} added"),
            (Shown::Hidden, Shown::Unset) => format!("{path} removed"),
            (Shown::Hidden, _) | (_, Shown::Hidden) => format!("{path} changed"),
            (a, b) => format!("{path}: {} → {}", a.sentence(), b.sentence()),
        }
    }
}

/// Every field that differs between `old` and `new`, in key order. Lists whose entries all
/// carry a `name` are matched by name (`http_filters[envoy.filters.http.router]`), so an
/// inserted entry reads as one addition rather than a change of every later index.
pub fn diff(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(&mut String::new(), Some(old), Some(new), &mut out);
    out
}

/// How deep a comparison goes: Envoy resources nest about 15 levels, and the bound keeps a
/// malformed rendering from recursing without end.
const MAX_DEPTH: usize = 64;

fn walk(path: &mut String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    let depth = path.matches(['.', '[']).count();
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b)))
            if depth < MAX_DEPTH && a.get("@type") == b.get("@type") =>
        {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let len = path.len();
                push_key(path, key);
                walk(path, a.get(key), b.get(key), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if depth < MAX_DEPTH => {
            if let (Some(na), Some(nb)) = (names(a), names(b)) {
                let mut all: Vec<&str> = na.iter().chain(&nb).map(|(n, _)| *n).collect();
                all.sort_unstable();
                all.dedup();
                for name in all {
                    let len = path.len();
                    path.push('[');
                    path.push_str(name);
                    path.push(']');
                    walk(path, find(&na, name), find(&nb, name), out);
                    path.truncate(len);
                }
            } else {
                for i in 0..a.len().max(b.len()) {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(path, a.get(i), b.get(i), out);
                    path.truncate(len);
                }
            }
        }
        _ => out.push(FieldChange {
            path: path.clone(),
            old: shown(path, old),
            new: shown(path, new),
        }),
    }
}

fn find<'v>(list: &[(&str, &'v Value)], name: &str) -> Option<&'v Value> {
    list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The entries' names, when every entry is an object with a distinct, non-empty `name`.
fn names(list: &[Value]) -> Option<Vec<(&str, &Value)>> {
    let named: Vec<(&str, &Value)> = list
        .iter()
        .map(|v| Some((v.get("name")?.as_str()?, v)))
        .collect::<Option<_>>()?;
    let mut unique: Vec<&str> = named.iter().map(|(n, _)| *n).collect();
    unique.sort_unstable();
    unique.dedup();
    (unique.len() == named.len() && !unique.iter().any(|n| n.is_empty())).then_some(named)
}

fn push_key(path: &mut String, key: &str) {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(key);
        path.push(']');
    }
}

/// Path segments under which text may be a header value, a body, or key material: their
/// strings are never printed.
const CONFIDENTIAL: &[&str] = &[
    "header", "inline", "secret", "key", "body", "password", "token", "value",
];

fn shown(path: &str, value: Option<&Value>) -> Shown {
    let Some(value) = value else {
        return Shown::Unset;
    };
    match value {
        Value::Bool(b) => Shown::Value(b.to_string()),
        Value::Number(n) => Shown::Value(n.to_string()),
        Value::Null => Shown::Unset,
        Value::String(s) if is_duration(s) || is_enum(s) || is_integer(s) => {
            Shown::Value(s.clone())
        }
        Value::String(s) => {
            let lower = path.to_ascii_lowercase();
            let confidential = CONFIDENTIAL.iter().any(|c| lower.contains(c));
            if confidential || s.len() > 80 || s.chars().any(char::is_control) {
                Shown::Hidden
            } else {
                Shown::Text(s.clone())
            }
        }
        Value::Array(_) | Value::Object(_) => Shown::Hidden,
    }
}

/// Proto3 JSON durations: `30s`, `0.500s`.
fn is_duration(s: &str) -> bool {
    s.strip_suffix('s')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Enum value names: `HTTP1`, `ROUND_ROBIN`.
fn is_enum(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// 64-bit integers, which proto3 JSON writes as strings.
fn is_integer(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_shown_and_named_lists_matched_by_name() {
        let old = json!({
            "codec_type": "AUTO",
            "http_filters": [{"name": "a", "x": 1}, {"name": "b"}],
            "timeout": "30s",
        });
        let new = json!({
            "codec_type": "HTTP1",
            "http_filters": [{"name": "z"}, {"name": "a", "x": 2}, {"name": "b"}],
            "timeout": "45s",
        });
        let changes: Vec<String> = diff(&old, &new)
            .iter()
            .map(|c| c.describe(&c.path))
            .collect();
        assert_eq!(
            changes,
            [
                "codec_type: AUTO → HTTP1",
                "http_filters[a].x: 1 → 2",
                "http_filters[z] added",
                "timeout: 30s → 45s",
            ]
        );
    }

    #[test]
    fn header_values_are_never_shown() {
        let old = json!({"request_headers_to_add": [{"header": {"key": "a", "value": "s3cret"}}]});
        let new = json!({"request_headers_to_add": [{"header": {"key": "a", "value": "t0ken"}}]});
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].describe(&changes[0].path),
            "request_headers_to_add[0].header.value changed"
        );
    }

    #[test]
    fn equal_values_have_no_changes() {
        let v = json!({"a": [1, 2, {"b": "c"}]});
        assert!(diff(&v, &v).is_empty());
    }
}
