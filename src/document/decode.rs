//! Decoding the YAML tree into raw config structs, collecting every problem instead of
//! stopping at the first (serde's derive stops at the first error, which is why this exists).

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use super::diag::{Diagnostics, Span};
use super::yaml::{Node, NodeKind, parse_bool};

/// A value together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A key path such as `routes[3].to[1]`, used in every diagnostic. Built for every value
/// decoded, so it lives inline (no allocation) and names keys by `&'static str` where it can.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(SmallVec<[Segment; 8]>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(Cow<'static, str>),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: impl Into<Cow<'static, str>>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Turns a YAML node into a typed value, reporting problems into `diags`. Takes the node by
/// value so strings move out of the tree instead of being copied.
/// Returns None when the value is unusable (the problem has been reported).
pub trait Decode: Sized {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self>;
}

/// Reports a node of the wrong shape. Values are never echoed: the node might hold a secret.
pub fn wrong_type(node: &Node, path: &KeyPath, diags: &mut Diagnostics, expected: &str) {
    diags.error(
        node.span,
        path,
        format!("expected {expected}, found {}", node.describe()),
    );
}

impl Decode for Node {
    fn decode(node: Node, _: &KeyPath, _: &mut Diagnostics) -> Option<Self> {
        Some(node)
    }
}

impl Decode for String {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        if node.as_scalar().is_none() {
            wrong_type(&node, path, diags, "a string");
            return None;
        }
        match node.kind {
            NodeKind::Scalar(s) => Some(s.text),
            _ => None,
        }
    }
}

impl Decode for bool {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        let text = node.as_str();
        if let Some(b) = text.and_then(parse_bool) {
            return Some(b);
        }
        let yaml11 = text.is_some_and(|t| {
            matches!(
                t.to_ascii_lowercase().as_str(),
                "yes" | "no" | "on" | "off" | "y" | "n"
            )
        });
        if yaml11 {
            diags.error(
                node.span,
                path,
                "expected true or false; YAML 1.1 words such as yes/no/on/off are strings in this file",
            );
        } else {
            wrong_type(&node, path, diags, "true or false");
        }
        None
    }
}

macro_rules! decode_integer {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
                match node.as_str().map(|t| t.parse::<$t>()) {
                    Some(Ok(n)) => Some(n),
                    Some(Err(_)) if node.as_str().is_some_and(|t| t.parse::<i128>().is_ok()) => {
                        diags.error(node.span, path, format!(
                            "the number is out of range ({} to {})", <$t>::MIN, <$t>::MAX));
                        None
                    }
                    _ => {
                        wrong_type(&node, path, diags, "a whole number");
                        None
                    }
                }
            }
        }
    )*};
}
decode_integer!(u16, u32, i32, i64, u64);

impl<T: Decode> Decode for Spanned<T> {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        let span = node.span;
        T::decode(node, path, diags).map(|value| Spanned::new(value, span))
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        if !matches!(node.kind, NodeKind::Seq(_)) {
            wrong_type(&node, path, diags, "a list");
            return None;
        }
        let NodeKind::Seq(items) = node.kind else {
            return None;
        };
        Some(
            items
                .into_iter()
                .enumerate()
                .filter_map(|(i, item)| T::decode(item, &path.index(i), diags))
                .collect(),
        )
    }
}

/// A list that may also be written as one comma-separated string, as Pomerium (viper's
/// string-to-slice hook) accepts for lists of strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringList(pub Vec<Spanned<String>>);

impl Decode for StringList {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        if let Some(text) = node.as_str() {
            return Some(StringList(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Spanned::new(s.to_string(), node.span))
                    .collect(),
            ));
        }
        Vec::<Spanned<String>>::decode(node, path, diags).map(StringList)
    }
}

/// A mapping kept in file order, with duplicate keys reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Pairs<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Pairs<V> {
    fn default() -> Self {
        Pairs(Vec::new())
    }
}

impl<V: Decode> Decode for Pairs<V> {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        let entries = expect_map(node, path, diags)?;
        let mut out: Vec<(Spanned<String>, V)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Some(key) = map_key(&k, path, diags) else {
                continue;
            };
            let child = path.key(key.to_string());
            if out.iter().any(|(seen, _)| seen.value == key) {
                diags.error(
                    k.span,
                    &child,
                    format!("`{key}` appears more than once in this mapping"),
                );
                continue;
            }
            if let Some(value) = V::decode(v, &child, diags) {
                out.push((Spanned::new(key.to_string(), k.span), value));
            }
        }
        Some(Pairs(out))
    }
}

pub fn expect_map(
    node: Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> Option<Vec<(Node, Node)>> {
    match node.kind {
        NodeKind::Map(entries) => Some(entries),
        _ => {
            wrong_type(&node, path, diags, "a mapping of keys to values");
            None
        }
    }
}

pub fn map_key<'n>(key: &'n Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<&'n str> {
    match key.as_str() {
        Some(k) => Some(k),
        None => {
            diags.error(
                key.span,
                path,
                format!("keys must be strings, found {}", key.describe()),
            );
            None
        }
    }
}

/// What a struct knows about keys it does not accept, to explain unknown keys well.
pub struct KeyHints {
    /// Pomerium settings sluice does not implement, each with why (empty: no particular
    /// reason to give): an error that says so.
    pub unsupported: &'static [(&'static str, &'static str)],
    /// Keys that belong to another level of the file, with where they go.
    pub elsewhere: &'static [(&'static [&'static str], &'static str)],
}

pub const NO_HINTS: KeyHints = KeyHints {
    unsupported: &[],
    elsewhere: &[],
};

/// Reports a key the struct does not know, with the most useful explanation available.
pub fn unknown_key(
    key: &str,
    span: Span,
    path: &KeyPath,
    known: &[&str],
    hints: &KeyHints,
    diags: &mut Diagnostics,
) {
    let at = path.key(key.to_string());
    if let Some((_, why)) = hints.unsupported.iter().find(|(k, _)| *k == key) {
        let message = if why.is_empty() {
            format!("`{key}` is a Pomerium setting that sluice does not support; remove it")
        } else {
            format!("`{key}` is a Pomerium setting that sluice does not support: {why}; remove it")
        };
        diags.error(span, &at, message);
        return;
    }
    for (keys, place) in hints.elsewhere {
        if keys.contains(&key) {
            diags.error(
                span,
                &at,
                format!("`{key}` is not allowed here; it belongs {place}"),
            );
            return;
        }
    }
    match did_you_mean(key, known) {
        Some(close) => diags.error(
            span,
            &at,
            format!("unknown key `{key}`; did you mean `{close}`?"),
        ),
        None => diags.error(span, &at, format!("unknown key `{key}`")),
    }
}

/// The closest known key, if it is close enough to be a likely typo.
pub fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lowered = key.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lowered, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 4).max(2))
        .min()
        .map(|(_, k)| k)
}

/// Declares a raw config struct: every field optional and spanned, every key known.
/// Generates `KEYS` and a `Decode` impl that reports unknown and duplicate keys.
macro_rules! raw_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident hints($hints:expr) {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            /// Where the mapping starts.
            pub span: $crate::document::diag::Span,
            $( $(#[$fmeta])* pub $field: Option<$crate::document::decode::Spanned<$ty>>, )*
        }

        impl $name {
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl $crate::document::decode::Decode for $name {
            fn decode(
                node: $crate::document::yaml::Node,
                path: &$crate::document::decode::KeyPath,
                diags: &mut $crate::document::diag::Diagnostics,
            ) -> Option<Self> {
                use $crate::document::decode::{map_key, unknown_key, expect_map, Spanned};
                const _: () = assert!($name::KEYS.len() <= 64, "duplicate tracking uses a u64");
                let span = node.span;
                let entries = expect_map(node, path, diags)?;
                let mut out = Self { span, ..Default::default() };
                let mut seen: u64 = 0;
                for (k, v) in entries {
                    let Some(key) = map_key(&k, path, diags) else { continue };
                    let Some(index) = Self::KEYS.iter().position(|known| *known == key) else {
                        unknown_key(key, k.span, path, Self::KEYS, &$hints, diags);
                        continue;
                    };
                    if seen & (1 << index) != 0 {
                        diags.error(k.span, &path.key(key.to_string()),
                            format!("`{key}` appears more than once; keep one"));
                        continue;
                    }
                    seen |= 1 << index;
                    // An empty value (`key:`) means "not set", as in Pomerium.
                    if v.is_null() {
                        continue;
                    }
                    match key {
                        $( stringify!($field) => {
                            out.$field = Spanned::<$ty>::decode(v, &path.key(stringify!($field)), diags);
                        } )*
                        _ => {}
                    }
                }
                Some(out)
            }
        }
    };
}
pub(crate) use raw_struct;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_the_config() {
        let p = KeyPath::root().key("routes").index(3).key("to").index(1);
        assert_eq!(p.to_string(), "routes[3].to[1]");
    }

    #[test]
    fn typos_get_suggestions() {
        let known = ["allowed_users", "allowed_domains", "timeout"];
        assert_eq!(did_you_mean("allowed_user", &known), Some("allowed_users"));
        assert_eq!(did_you_mean("timout", &known), Some("timeout"));
        assert_eq!(did_you_mean("zzzzzz", &known), None);
    }
}
