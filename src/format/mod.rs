//! Output formats for rendered configs and golden files.

pub mod yaml;
