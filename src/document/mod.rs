//! YAML documents with positions: parsing, decoding into typed structs, and diagnostics.
//! Shared by `config` and `policy`, which both report problems by file, line and key path.

pub mod decode;
pub mod diag;
pub mod split;
pub mod yaml;

pub use decode::{Decode, KeyPath, Spanned};
pub use diag::{Diagnostic, Diagnostics, Rejected, Severity, Span};
pub use yaml::{Node, NodeKind};
