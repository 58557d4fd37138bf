//! Stable, readable resource names. Renaming a resource disrupts live Envoys, so every name
//! is derived from what the resource is, never from its position or a counter.

pub const MAIN_LISTENER: &str = "listener/ingress";
pub const QUIC_LISTENER: &str = "listener/ingress-quic";
pub const REDIRECT_LISTENER: &str = "listener/http-redirect";
pub const MAIN_ROUTES: &str = "routes/ingress";
pub const REDIRECT_ROUTES: &str = "routes/http-redirect";
/// The cluster through which Envoy reaches sluice (ext_authz, sign-in endpoints).
pub const SLUICE_CLUSTER: &str = "sluice/grpc";
/// The bootstrap's static cluster for xDS itself (never served over xDS).
pub const XDS_CLUSTER: &str = "sluice/xds";
/// The `:authority` Envoy's gRPC calls to sluice carry.
pub const SLUICE_AUTHORITY: &str = "sluice";
/// sluice's SSE test stream, on every route host (see `sluice probe`).
pub const STREAM_PROBE_PATH: &str = "/.sluice/stream-probe";

pub fn virtual_host(host: &str) -> String {
    format!("vhost/{host}")
}

pub fn route(id: &str) -> String {
    format!("route/{id}")
}

pub fn route_variant(id: &str, variant: &str) -> String {
    format!("route/{id}/{variant}")
}

pub fn certificate(index: usize) -> String {
    format!("secret/certificate-{index}")
}

/// A cluster is named after its first upstream plus a hash of everything that makes it
/// distinct, so equal upstream sets share one cluster and a changed set gets a new name
/// (added before routes switch to it, removed after).
pub fn cluster(first_host: &str, first_port: u16, identity: &str) -> String {
    let host: String = first_host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("cluster/{host}-{first_port}-{identity}")
}

pub use crate::hashing::content_hash;

/// The route table of one host, split out of `table` (see `ir::RouteTable::PerHost`).
pub fn host_routes(table: &str, host: &str) -> String {
    format!("{table}/{host}")
}

/// The scope that sends requests for `host` to its table (`host_routes`).
pub fn host_scope(table: &str, host: &str) -> String {
    format!("scope/{}/{host}", table.trim_start_matches("routes/"))
}
