//! A YAML tree that keeps the line and column of every node, built from saphyr-parser events.
//!
//! We keep our own tree (instead of deserializing straight into structs) so that decoding can
//! report every problem in one pass, detect duplicate keys, and point each message at a line.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use super::diag::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Plain (unquoted) scalars may be null, booleans or numbers; quoted ones are strings.
    pub plain: bool,
}

impl Scalar {
    /// YAML 1.2 core-schema null.
    pub fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

impl Node {
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(s) if s.is_null() => "null",
            NodeKind::Scalar(s) if s.plain && parse_bool(&s.text).is_some() => "a boolean",
            NodeKind::Scalar(s) if s.plain && s.text.parse::<f64>().is_ok() => "a number",
            NodeKind::Scalar(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s) if s.is_null())
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) if !s.is_null() => Some(s),
            _ => None,
        }
    }

    /// The scalar text, or None for collections and null.
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    /// A JSON view of the node, used where Pomerium takes free-form values (claims, PPL).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar(s) if s.is_null() => Value::Null,
            NodeKind::Scalar(s) if s.plain => {
                if let Some(b) = parse_bool(&s.text) {
                    Value::Bool(b)
                } else if let Ok(i) = s.text.parse::<i64>() {
                    Value::from(i)
                } else if let Some(f) = s
                    .text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Value::Number(f)
                } else {
                    Value::String(s.text.clone())
                }
            }
            NodeKind::Scalar(s) => Value::String(s.text.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl Node {
    /// Moves the node and everything in it `by` lines down: for text parsed apart from the
    /// file it was cut from.
    pub fn shift_lines(&mut self, by: u32) {
        self.span.line = self.span.line.saturating_add(by);
        match &mut self.kind {
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => items.iter_mut().for_each(|n| n.shift_lines(by)),
            NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.shift_lines(by);
                v.shift_lines(by);
            }),
        }
    }
}

/// YAML booleans as Pomerium (Go, viper) reads them.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

impl From<ScanError> for SyntaxError {
    fn from(e: ScanError) -> Self {
        let m = e.marker();
        SyntaxError {
            span: Span::new(m.line(), m.col() + 1),
            message: format!("YAML syntax error: {}", e.info()),
        }
    }
}

/// The deepest nesting we accept; a config is never this deep, and a bound keeps hostile
/// input from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// The most nodes a document may expand to, aliases included; stops "billion laughs" input.
const MAX_NODES: usize = 1_000_000;

/// Parses the first YAML document of `text`. Returns `Ok(None)` for a file with no document
/// (empty, or only comments).
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        let at = Span::new(span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        span: at,
                        message: "the file holds more than one YAML document (`---`); put the whole config in one document".into(),
                    });
                }
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let node = Node {
                    span: at,
                    kind: NodeKind::Scalar(Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    }),
                };
                builder.count(at, 1)?;
                builder.value(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => builder.open(at, anchor, false)?,
            Event::MappingStart(anchor, _) => builder.open(at, anchor, true)?,
            Event::SequenceEnd | Event::MappingEnd => builder.close()?,
            Event::Alias(id) => {
                let (node, size) = builder.anchors.get(&id).cloned().ok_or(SyntaxError {
                    span: at,
                    message: "YAML alias refers to an unknown anchor".into(),
                })?;
                builder.count(at, size)?;
                builder.value(Node { span: at, ..node }, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(builder.root)
}

/// Builds the tree from events. Children of every open collection share one scratch stack,
/// so each finished collection is allocated once, at its exact size.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    scratch: Vec<Node>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

struct Open {
    span: Span,
    anchor: usize,
    is_map: bool,
    /// Where this collection's children start in `scratch`.
    start: usize,
}

impl Builder {
    fn count(&mut self, span: Span, nodes: usize) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                span,
                message: format!(
                    "the document expands to more than {MAX_NODES} values (check its aliases)"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, span: Span, anchor: usize, is_map: bool) -> Result<(), SyntaxError> {
        self.count(span, 1)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                span,
                message: format!("the document nests deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(Open {
            span,
            anchor,
            is_map,
            start: self.scratch.len(),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let open = self.stack.pop().ok_or(SyntaxError {
            span: Span::default(),
            message: "unbalanced YAML collection".into(),
        })?;
        let kind = {
            let mut children = self.scratch.drain(open.start..);
            if open.is_map {
                let mut entries = Vec::with_capacity(children.len() / 2);
                while let (Some(k), Some(v)) = (children.next(), children.next()) {
                    entries.push((k, v));
                }
                NodeKind::Map(entries)
            } else {
                NodeKind::Seq(children.collect())
            }
        };
        self.value(
            Node {
                span: open.span,
                kind,
            },
            open.anchor,
        )
    }

    fn value(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            let size = node_count(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        if self.stack.is_empty() {
            self.root = Some(node);
        } else {
            self.scratch.push(node);
        }
        Ok(())
    }
}

fn node_count(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_columns() {
        let root = parse("a: 1\nroutes:\n  - from: https://x\n")
            .unwrap()
            .unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("map expected")
        };
        assert_eq!(entries[1].0.span, Span::new(2, 1));
        let NodeKind::Seq(routes) = &entries[1].1.kind else {
            panic!("seq expected")
        };
        let NodeKind::Map(route) = &routes[0].kind else {
            panic!("map expected")
        };
        assert_eq!(route[0].1.span, Span::new(3, 11));
    }

    #[test]
    fn empty_and_comment_only_files_have_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing\n\n").unwrap(), None);
    }

    #[test]
    fn aliases_resolve() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert!(matches!(&entries[1].1.kind, NodeKind::Seq(v) if v.len() == 2));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.span.line >= 1);
        assert!(err.message.starts_with("YAML syntax error"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("aliases"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200);
        assert!(parse(&text).is_err());
    }
}
