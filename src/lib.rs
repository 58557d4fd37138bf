//! sluice: an xDS control plane, ext_authz service and sign-in service for Envoy, configured
//! with Pomerium's YAML, built so that streams never stall.

pub mod app;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod config;
pub mod document;
pub mod envoy;
pub mod format;
pub mod hashing;
pub mod ir;
pub mod parallel;
pub mod policy;
pub mod request_headers;
pub mod telemetry;
pub mod xds;
