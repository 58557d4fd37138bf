//! The config file: raw YAML structs with spans, validation into the typed `Model`, secrets.

pub mod duration;
pub mod generated;
pub mod log_fields;
pub mod model;
pub mod raw;
pub mod secret;
pub mod shared;
pub mod template;
pub mod validate;

pub use model::Model;
pub use validate::{load, load_bytes};
