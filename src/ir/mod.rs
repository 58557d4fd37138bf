//! The intermediate form: Envoy-shaped, sorted, stably named, free of Envoy proto types.
//! Built from the `Model` by `build`; turned into envoy-types protos by `crate::envoy`.
//! Serializable, so golden tests can show it as YAML.

mod build;
pub mod limits;
pub mod matching;
pub mod names;
mod probe;
pub mod sign_in;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use build::{
    RouteParts, assemble, build, build_service_cluster, host_virtual_host, internal_routes,
    main_response_headers, per_host_scopable, route_parts, secrets,
};

/// Envoy's soft per-connection buffer limit on every listener and cluster (Envoy's default
/// is 1 MiB; 32 KiB is the edge-proxy guidance, and flow control keeps streams moving).
pub const BUFFER_LIMIT_BYTES: u32 = 32 * 1024;

/// Every upstream connection attempt gives up after this long (Pomerium's value).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Envoy's default circuit breakers allow 1,024 connections, pending and active requests per
/// cluster: every HTTP/1.1 stream holds a connection, so the 1,025th concurrent SSE stream to
/// one upstream (or ext_authz check in a burst of new streams) would get a 503. The real limit
/// is the overload manager's cap on downstream connections (50,000).
pub const MAX_REQUESTS: u32 = 100_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Ir {
    pub listeners: Vec<Listener>,
    pub route_configs: Vec<RouteConfig>,
    pub clusters: Vec<Cluster>,
    pub secrets: Vec<Secret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    /// HTTP/3 over UDP.
    Quic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub transport: Transport,
    pub tls: Option<DownstreamTls>,
    pub buffer_limit_bytes: u32,
    pub hcm: Hcm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct DownstreamTls {
    /// SDS secret names.
    pub certificates: Vec<String>,
    pub alpn: Vec<String>,
    /// Client certificates are asked for when a client CA is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<ClientValidation>,
}

/// How the listener checks client certificates (downstream mTLS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct ClientValidation {
    /// Every client CA (global and per route) in one PEM file.
    pub ca_file: PathBuf,
    pub crl_file: Option<PathBuf>,
    /// (SAN type, full-match RE2 pattern); Envoy enforces them only with `require`.
    pub subject_alt_names: Vec<(ClientSan, String)>,
    pub max_verify_depth: Option<u32>,
    /// `reject_connection`: no handshake without a certificate the CA signed. Otherwise a
    /// certificate is asked for, untrusted ones are let through, and ext_authz decides.
    pub require: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ClientSan {
    Email,
    Dns,
    Uri,
    IpAddress,
    UserPrincipalName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    Auto,
    Http1,
    Http2,
    Http3,
}

/// The HTTP connection manager: every timeout from the streaming table in DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Hcm {
    pub stat_prefix: String,
    pub codec: Codec,
    /// Where the route table comes from (routes are never inline, so route edits never
    /// touch the listener).
    pub routes: RouteTable,
    /// Bounds receiving the request, never the response.
    #[serde(with = "go_duration")]
    pub request_timeout: Duration,
    #[serde(with = "go_duration")]
    pub stream_idle_timeout: Duration,
    /// Closes connections with no active stream.
    #[serde(with = "go_duration")]
    pub connection_idle_timeout: Duration,
    /// Only when `timeout_write` is above 0.
    #[serde(with = "go_duration::option")]
    pub max_stream_duration: Option<Duration>,
    /// Between the first HTTP/2 GOAWAY of a drain and the final one.
    #[serde(with = "go_duration")]
    pub drain_timeout: Duration,
    pub ext_authz: Option<ExtAuthz>,
    /// Removes sluice's credentials from requests before they reach upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_upstream: Option<CleanUpstream>,
}

/// What the upstream-cleaning filter removes: the session cookies named after
/// `cookie_name`, `Authorization: Pomerium …` and `X-Pomerium-Authorization`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct CleanUpstream {
    pub cookie_name: String,
}

/// How a connection manager finds its route table, named after the IR `RouteConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RouteTable {
    /// The whole table as one RouteConfiguration over RDS. Needed when a route matches many
    /// hosts (`*` or `*.example.com`), since only one table can hold such a route.
    Single(String),
    /// The table split into one RouteConfiguration per host, picked by the request's host
    /// through scoped routes (SRDS). An edit to one host's routes re-sends and rebuilds only
    /// that host's table, so a large config updates in time proportional to the edit.
    PerHost(String),
}

impl RouteTable {
    /// The IR route table this refers to.
    pub fn name(&self) -> &str {
        match self {
            RouteTable::Single(name) | RouteTable::PerHost(name) => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct ExtAuthz {
    pub cluster: String,
    #[serde(with = "go_duration")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    /// Added to every response of this route table (e.g. `alt-svc` for HTTP/3).
    pub response_headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct HeaderMatch {
    pub name: String,
    pub rule: HeaderRule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HeaderRule {
    Present,
    Contains(String),
    Prefix(String),
    Regex(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Route {
    pub name: String,
    /// The id of the config route this Envoy route comes from (None for sluice's own).
    pub config_route: Option<String>,
    pub path: PathMatch,
    pub headers: Vec<HeaderMatch>,
    pub action: Action,
    /// Shared between a route and its stream variants.
    pub request_headers_to_remove: Arc<[String]>,
    /// Set on the response, replacing any upstream value.
    pub response_headers: Arc<BTreeMap<String, String>>,
    pub authz: Authz,
    /// sluice's own sign-in routes: the credentials reach sluice, uncleaned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keeps_credentials: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// What the ext_authz filter does on this route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Authz {
    /// Call sluice with these context extensions (route id and checksum).
    Check {
        context: Arc<BTreeMap<String, String>>,
    },
    /// Skip the call: the answer is known in advance (a public route that adds nothing).
    Disabled,
    /// The listener has no ext_authz filter (the HTTP→HTTPS redirect listener).
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    Respond { status: u16, body: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Forward {
    pub cluster: String,
    /// 0 disables the route timeout.
    #[serde(with = "go_duration")]
    pub timeout: Duration,
    /// None leaves the HCM's stream idle timeout in force.
    #[serde(with = "go_duration::option")]
    pub idle_timeout: Option<Duration>,
    /// For gRPC requests: honour the client's `grpc-timeout` header (0 = no cap).
    #[serde(with = "go_duration::option")]
    pub grpc_timeout_header_max: Option<Duration>,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<RegexRewrite>,
    pub host_rewrite: HostRewrite,
    pub append_x_forwarded_host: bool,
    /// Enabled upgrade types (`websocket`, `spdy/3.1`).
    pub upgrades: Vec<String>,
    /// Consistent hashing input for ring_hash and maglev clusters.
    pub hash_on_routing_key: bool,
}

impl Forward {
    /// To sluice's own port (JWKS, the stream probe), as the request came: no rewrites.
    pub fn to_sluice(timeout: Duration) -> Forward {
        Forward {
            cluster: names::SLUICE_CLUSTER.into(),
            timeout,
            idle_timeout: None,
            grpc_timeout_header_max: None,
            prefix_rewrite: None,
            regex_rewrite: None,
            host_rewrite: HostRewrite::Preserve,
            append_x_forwarded_host: false,
            upgrades: Vec::new(),
            hash_on_routing_key: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct RegexRewrite {
    pub pattern: String,
    pub substitution: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HostRewrite {
    Auto,
    Literal(String),
    Header(String),
    PathRegex(RegexRewrite),
    Preserve,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Redirect {
    pub https_redirect: bool,
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub response_code: u16,
    pub strip_query: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// Every endpoint is an IP address.
    Static,
    /// Some endpoint is a host name, resolved by Envoy.
    StrictDns,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    Http1,
    Http2,
    /// ALPN picks h2 or http/1.1 (TLS upstreams).
    Negotiated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
    Maglev,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct Cluster {
    pub name: String,
    pub discovery: Discovery,
    pub endpoints: Vec<Endpoint>,
    pub lb_policy: LbPolicy,
    #[serde(with = "go_duration")]
    pub connect_timeout: Duration,
    pub buffer_limit_bytes: u32,
    /// Circuit breaker ceiling for connections, pending and active requests alike.
    pub max_requests: u32,
    pub protocol: UpstreamProtocol,
    pub tls: Option<UpstreamTls>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    /// The host name as written in `to` (used for Host rewriting and health output).
    pub hostname: String,
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Hash)]
pub struct UpstreamTls {
    pub sni: String,
    pub verify: Option<Verify>,
    pub client_certificate: Option<CertificateFiles>,
    pub alpn: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Verify {
    pub ca_file: PathBuf,
    /// The DNS SAN the upstream certificate must carry.
    pub san: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A TLS certificate served to Envoy over SDS. It names files, so key material never passes
/// through sluice's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Secret {
    pub name: String,
    pub files: CertificateFiles,
}

/// Durations in golden files and logs read like the config (`30s`, `5m0s`).
mod go_duration {
    use std::time::Duration;

    use serde::Deserialize;

    use crate::config::duration::GoDuration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&GoDuration(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        GoDuration::parse(&text)
            .map(|g| g.0)
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(&GoDuration(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    GoDuration::parse(&text)
                        .map(|g| g.0)
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}
