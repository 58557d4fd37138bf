//! sluice's integration tests, in one binary so the suite links once.

mod ads_protocol;
mod cli;
mod common;
mod determinism;
mod golden;
mod reload;
mod validate_errors;
mod xds_e2e;
