//! A small, deterministic YAML writer for JSON values (block style, strings quoted whenever a
//! YAML reader could take them for anything but a string).

use serde_json::Value;

pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, value, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, value, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, value: &Value, depth: usize) {
    let Value::Object(map) = value else { return };
    for (k, v) in map {
        indent(out, depth);
        out.push_str(&string_text(k));
        out.push(':');
        write_child(out, v, depth);
    }
}

fn write_seq(out: &mut String, value: &Value, depth: usize) {
    let Value::Array(items) = value else { return };
    for item in items {
        indent(out, depth);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key sits on the dash line; the rest align under it.
                let mut first = String::new();
                write_map(&mut first, item, depth + 2);
                out.push(' ');
                out.push_str(first.trim_start());
            }
            _ => write_child(out, item, depth),
        }
    }
}

fn write_child(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, v, depth + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, v, depth + 2);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// Plain when unambiguous, otherwise a JSON string (which is valid YAML).
fn string_text(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-@+".contains(c))
        && !s.starts_with(['-', '.', '@'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true"
                | "false"
                | "null"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "y"
                | "n"
                | "~"
                | ".inf"
                | ".nan"
        );
    if plain_safe {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_that_reads_back_the_same() {
        let v = json!({
            "name": "listener/ingress",
            "port": 443,
            "empty": {},
            "list": [{"a": 1, "b": "true"}, "x: y", [], "30s"],
            "nested": {"deep": {"k": null}},
            "odd": "-dash",
        });
        let text = to_string(&v);
        let back = crate::document::yaml::parse(&text)
            .unwrap()
            .unwrap()
            .to_json();
        assert_eq!(back, v, "{text}");
    }
}
