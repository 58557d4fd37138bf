//! Pomerium Policy Language: parsing (at config load, never per request), the route
//! shorthands, and (with ext_authz) evaluation.

pub mod ast;
pub mod eval;
pub mod parse;
pub mod shorthand;

pub use ast::{Action, Criterion, Policy, Rule};
pub use parse::parse_policy;
pub use shorthand::Shorthands;
