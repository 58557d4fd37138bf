//! sluice's integration tests, in one binary so the suite links once.

mod ads_protocol;
mod authz_burst;
mod authz_e2e;
mod cli;
mod common;
mod compat;
mod compose;
mod determinism;
mod diff;
mod drain;
mod golden;
mod incremental;
mod logs;
mod managed;
mod metrics;
mod mtls_e2e;
mod policy_fuzz;
mod policy_table;
mod probe;
mod reload;
mod sign_in_e2e;
mod sign_in_oidc;
mod streams;
mod tokens;
mod validate_errors;
mod xds_e2e;
