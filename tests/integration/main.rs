//! sluice's integration tests, in one binary so the suite links once.

mod cli;
mod common;
mod determinism;
mod golden;
mod validate_errors;
