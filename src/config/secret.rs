//! Secret values: kept in memory for use, never printed.

use std::fmt;

use crate::document::decode::{Decode, KeyPath, wrong_type};
use crate::document::diag::Diagnostics;
use crate::document::yaml::Node;

/// A secret string. `Debug` and `Display` print `[redacted]`, so a secret cannot reach a log,
/// a diagnostic or rendered output by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl Decode for Secret {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        if node.as_scalar().is_none() {
            wrong_type(&node, path, diags, "a string");
            return None;
        }
        String::decode(node, path, diags).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
