//! Model → IR. Pure and deterministic: the same model always builds the same IR.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::limits::{RouteTimeouts, route_timeouts};
use super::names;
use super::sign_in;
use super::*;
use crate::config::model::{
    self, CodecType, Global, Model, PathRewrite, RouteAction, ServiceAddress, UpstreamScheme,
};

/// Headers that carry sluice's identity assertion; removed from requests on routes that do
/// not pass identity headers, so a client can never forge one.
const IDENTITY_HEADERS: &[&str] = &["x-pomerium-jwt-assertion", "x-pomerium-jwt-assertion-for"];

pub fn build(model: &Model) -> Ir {
    let g = &model.global;
    let config_dir = model.config_dir();
    // Per-route work is independent (and parallel for large configs); grouping into virtual
    // hosts and sharing clusters happens afterwards, in file order.
    let parts = crate::parallel::map(model.routes.iter().collect(), |route| {
        route_parts(route, g, config_dir)
    });
    assemble(g, parts)
}

/// One config route's share of the IR.
pub struct RouteParts {
    /// The virtual host it joins: its host, or `*` for every wildcard host.
    pub host: String,
    pub routes: Vec<Route>,
    /// The cluster its routes send to, if any.
    pub cluster: Option<Cluster>,
}

pub fn route_parts(route: &model::Route, g: &Global, config_dir: &Path) -> RouteParts {
    let (host, authority) = match route.from.host.as_str() {
        "*" => ("*".to_string(), None),
        h if h.starts_with("*.") => ("*".to_string(), Some(wildcard_authority(h))),
        h => (h.to_string(), None),
    };
    let (routes, cluster) = build_routes(route, g, authority, config_dir);
    RouteParts {
        host,
        routes,
        cluster,
    }
}

/// The IR of a whole config from its routes' parts, in file order.
pub fn assemble(g: &Global, parts: Vec<RouteParts>) -> Ir {
    let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
    let sluice = build_service_cluster(
        &g.authorize_service,
        g.certificate_authority_file.as_deref(),
    );
    clusters.insert(sluice.name.clone(), sluice);
    let mut by_host: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for part in parts {
        if let Some(cluster) = part.cluster {
            clusters.entry(cluster.name.clone()).or_insert(cluster);
        }
        by_host.entry(part.host).or_default().extend(part.routes);
    }
    if let Some(host) = sign_in::authenticate_host(g) {
        by_host.entry(host).or_default();
    }
    let internal = internal_routes(g);
    let vhosts: BTreeMap<String, VirtualHost> = by_host
        .into_iter()
        .map(|(host, routes)| {
            let vhost = host_virtual_host(g, &host, routes, &internal);
            (host, vhost)
        })
        .collect();

    let secrets = secrets(g);

    let response_headers = main_response_headers(g);
    // With no routes at all there is no scope to list, and Envoy refuses an empty scope list.
    let main_routes = if !vhosts.is_empty() && vhosts.keys().all(|host| per_host_scopable(host)) {
        RouteTable::PerHost(names::MAIN_ROUTES.into())
    } else {
        RouteTable::Single(names::MAIN_ROUTES.into())
    };
    let mut route_configs = vec![RouteConfig {
        name: names::MAIN_ROUTES.into(),
        virtual_hosts: vhosts.into_values().collect(),
        response_headers,
    }];

    let mut listeners = main_listeners(g, &secrets, &main_routes);
    if let Some(addr) = g.http_redirect_addr {
        listeners.push(Listener {
            name: names::REDIRECT_LISTENER.into(),
            address: addr,
            transport: Transport::Tcp,
            tls: None,
            buffer_limit_bytes: BUFFER_LIMIT_BYTES,
            hcm: Hcm {
                stat_prefix: "http-redirect".into(),
                codec: Codec::Auto,
                routes: RouteTable::Single(names::REDIRECT_ROUTES.into()),
                ext_authz: None,
                clean_upstream: None,
                ..hcm(g, Codec::Auto, &main_routes)
            },
        });
        route_configs.push(redirect_routes(g));
    }
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    route_configs.sort_by(|a, b| a.name.cmp(&b.name));

    Ir {
        listeners,
        route_configs,
        clusters: clusters.into_values().collect(),
        secrets,
    }
}

/// The virtual host of `host`: sluice's own routes, the stream probe, the sign-in endpoints
/// when this is the authenticate host, then `routes` (its config routes' Envoy routes, in
/// file order). The authenticate host with no config routes gets sluice's page for every path.
pub fn host_virtual_host(
    g: &Global,
    host: &str,
    routes: Vec<Route>,
    internal: &[Route],
) -> VirtualHost {
    let authenticate = sign_in::authenticate_host(g).is_some_and(|a| a == host);
    if routes.is_empty() && authenticate {
        return sign_in::authenticate_virtual_host(g, host, internal.to_vec());
    }
    let mut vhost = VirtualHost {
        name: names::virtual_host(host),
        domains: if host == "*" {
            vec!["*".into()]
        } else {
            // Any port: Pomerium matches a route's host whatever port the client used.
            vec![host.to_string(), format!("{host}:*")]
        },
        // Room for the probe and sign-in routes added below, so they never double the vector.
        routes: Vec::with_capacity(internal.len() + routes.len() + 4),
    };
    vhost.routes.extend_from_slice(internal);
    vhost.routes.extend(routes);
    super::probe::add(&mut vhost, g.stream_probe, internal.len());
    if authenticate {
        let at = internal.len();
        vhost
            .routes
            .splice(at..at, sign_in::authenticate_routes_on_route_host(g));
    }
    vhost
}

/// The listener certificates, from the global settings.
pub fn secrets(g: &Global) -> Vec<Secret> {
    g.certificates
        .iter()
        .enumerate()
        .map(|(i, c)| Secret {
            name: names::certificate(i),
            files: CertificateFiles {
                cert: c.cert.clone(),
                key: c.key.clone(),
            },
        })
        .collect()
}

/// The response headers the main route table adds to every response.
pub fn main_response_headers(g: &Global) -> BTreeMap<String, String> {
    let mut response_headers = BTreeMap::new();
    if g.codec_type == CodecType::Http3 {
        // Browsers learn that HTTP/3 is on offer from this header.
        response_headers.insert(
            "alt-svc".to_string(),
            format!("h3=\":{}\"; ma=86400", g.address.port()),
        );
    }
    response_headers
}

/// Paths sluice itself answers on every route host, ahead of the config's routes: the keys
/// that verify identity assertions, and Pomerium's well-known document (then the sign-in
/// endpoints, `sign_in::route_host_routes`).
const INTERNAL_PATHS: [(&str, &str); 2] = [
    ("route/sluice/jwks", "/.well-known/pomerium/jwks.json"),
    ("route/sluice/well-known", "/.well-known/pomerium"),
];

pub fn internal_routes(g: &Global) -> Vec<Route> {
    let mut routes: Vec<Route> = INTERNAL_PATHS
        .iter()
        .map(|(name, path)| Route {
            name: name.to_string(),
            config_route: None,
            path: PathMatch::Exact(path.to_string()),
            headers: Vec::new(),
            action: Action::Forward(Forward::to_sluice(Duration::from_secs(10))),
            request_headers_to_remove: Arc::default(),
            response_headers: Arc::default(),
            // Public by design: upstreams must be able to fetch the keys.
            authz: Authz::Disabled,
            keeps_credentials: false,
        })
        .collect();
    routes.extend(sign_in::route_host_routes(g));
    routes
}

/// Whether requests for `host` can find their table by an exact match on the `:authority`
/// up to its port, as per-host scopes do. A wildcard cannot, nor an IPv6 literal, whose
/// colons would be taken for the port's.
pub fn per_host_scopable(host: &str) -> bool {
    !host.contains('*') && !host.contains(':')
}

fn hcm(g: &Global, codec: Codec, routes: &RouteTable) -> Hcm {
    Hcm {
        stat_prefix: "ingress".into(),
        codec,
        routes: routes.clone(),
        request_timeout: g.timeout_read.value,
        stream_idle_timeout: g.timeout_idle.value,
        connection_idle_timeout: g.timeout_idle.value,
        max_stream_duration: (!g.timeout_write.value.is_zero()).then_some(g.timeout_write.value),
        drain_timeout: g.http2_drain_timeout.value,
        ext_authz: Some(ExtAuthz {
            cluster: names::SLUICE_CLUSTER.into(),
            timeout: g.grpc_client_timeout.value,
        }),
        clean_upstream: sign_in::clean_upstream(g),
    }
}

fn main_listeners(g: &Global, secrets: &[Secret], routes: &RouteTable) -> Vec<Listener> {
    let certificates: Vec<String> = secrets.iter().map(|s| s.name.clone()).collect();
    let (codec, alpn) = match g.codec_type {
        CodecType::Auto | CodecType::Http3 => (Codec::Auto, vec!["h2", "http/1.1"]),
        CodecType::Http1 => (Codec::Http1, vec!["http/1.1"]),
        CodecType::Http2 => (Codec::Http2, vec!["h2"]),
    };
    let client_validation = client_validation(g);
    let tls = (!g.insecure_server).then(|| DownstreamTls {
        certificates: certificates.clone(),
        alpn: alpn.into_iter().map(String::from).collect(),
        client_validation: client_validation.clone(),
    });
    let mut out = vec![Listener {
        name: names::MAIN_LISTENER.into(),
        address: g.address,
        transport: Transport::Tcp,
        tls,
        buffer_limit_bytes: BUFFER_LIMIT_BYTES,
        hcm: hcm(g, codec, routes),
    }];
    if g.codec_type == CodecType::Http3 {
        out.push(Listener {
            name: names::QUIC_LISTENER.into(),
            address: g.address,
            transport: Transport::Quic,
            tls: Some(DownstreamTls {
                certificates,
                alpn: vec!["h3".into()],
                client_validation,
            }),
            buffer_limit_bytes: BUFFER_LIMIT_BYTES,
            hcm: hcm(g, Codec::Http3, routes),
        });
    }
    out
}

fn client_validation(g: &Global) -> Option<ClientValidation> {
    use crate::config::model::{MtlsEnforcement, SanType};
    let ca_file = g.client_ca_bundle.clone()?;
    let mtls = g.downstream_mtls.as_ref();
    Some(ClientValidation {
        ca_file,
        crl_file: mtls.and_then(|m| m.crl_file.clone()),
        subject_alt_names: mtls
            .map(|m| {
                m.match_subject_alt_names
                    .iter()
                    .map(|s| {
                        let kind = match s.san_type {
                            SanType::Email => ClientSan::Email,
                            SanType::Dns => ClientSan::Dns,
                            SanType::Uri => ClientSan::Uri,
                            SanType::IpAddress => ClientSan::IpAddress,
                            SanType::UserPrincipalName => ClientSan::UserPrincipalName,
                        };
                        (kind, s.pattern.clone())
                    })
                    .collect()
            })
            .unwrap_or_default(),
        max_verify_depth: Some(mtls.map(|m| m.max_verify_depth).unwrap_or(1)).filter(|d| *d > 0),
        require: mtls.is_some_and(|m| m.enforcement == MtlsEnforcement::RejectConnection),
    })
}

fn redirect_routes(g: &Global) -> RouteConfig {
    let port = g.address.port();
    RouteConfig {
        name: names::REDIRECT_ROUTES.into(),
        virtual_hosts: vec![VirtualHost {
            name: names::virtual_host("*"),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "route/https-redirect".into(),
                config_route: None,
                path: PathMatch::Prefix("/".into()),
                headers: Vec::new(),
                action: Action::Redirect(Redirect {
                    https_redirect: true,
                    scheme: None,
                    host: None,
                    port: (port != 443).then_some(port),
                    path: None,
                    prefix_rewrite: None,
                    response_code: 301,
                    strip_query: false,
                }),
                request_headers_to_remove: Arc::default(),
                response_headers: Arc::default(),
                authz: Authz::None,
                keeps_credentials: false,
            }],
        }],
        response_headers: BTreeMap::new(),
    }
}

/// `*.example.com` → a regex over `:authority` that also allows a port, as Pomerium does for
/// wildcard routes in the catch-all virtual host.
fn wildcard_authority(host: &str) -> HeaderMatch {
    let suffix = regex::escape(&host[1..]);
    HeaderMatch {
        name: ":authority".into(),
        rule: HeaderRule::Regex(format!("^[^.]+(\\.[^.]+)*{suffix}(:[0-9]+)?$")),
    }
}

/// The Envoy routes for one config route, and the cluster they send to (if any).
fn build_routes(
    route: &model::Route,
    g: &Global,
    authority: Option<HeaderMatch>,
    config_dir: &Path,
) -> (Vec<Route>, Option<Cluster>) {
    let context = Arc::new(BTreeMap::from([
        ("route_id".to_string(), route.id.clone()),
        ("route_checksum".to_string(), route.checksum(config_dir)),
    ]));
    let mut remove = route.remove_request_headers.clone();
    // Envoy applies these after ext_authz has run, so sluice's own identity headers survive
    // only where they are wanted; on routes that skip ext_authz sluice adds none, and a client's
    // must never pass as if sluice had sent them.
    if !route.pass_identity_headers || route.authz_is_constant() {
        remove.extend(IDENTITY_HEADERS.iter().map(|h| h.to_string()));
        remove.extend(g.jwt_claims_headers.keys().cloned());
    }
    remove.sort();
    remove.dedup();
    let remove: Arc<[String]> = remove.into();
    let base = Route {
        name: names::route(&route.id),
        config_route: Some(route.id.clone()),
        path: match &route.path_match {
            model::PathMatch::Prefix(p) => PathMatch::Prefix(p.clone()),
            model::PathMatch::Exact(p) => PathMatch::Exact(p.clone()),
            model::PathMatch::Regex(r) => PathMatch::Regex(r.clone()),
        },
        headers: authority.into_iter().collect(),
        action: Action::Respond {
            status: 0,
            body: String::new(),
        },
        request_headers_to_remove: remove,
        response_headers: Arc::clone(&route.set_response_headers),
        authz: if route.authz_is_constant() {
            Authz::Disabled
        } else {
            Authz::Check { context }
        },
        keeps_credentials: false,
    };
    match &route.action {
        RouteAction::Redirect(r) => (
            vec![Route {
                action: Action::Redirect(Redirect {
                    https_redirect: r.https_redirect,
                    scheme: r.scheme_redirect.clone(),
                    host: r.host_redirect.clone(),
                    port: r.port_redirect,
                    path: r.path_redirect.clone(),
                    prefix_rewrite: r.prefix_rewrite.clone(),
                    response_code: r.response_code,
                    strip_query: r.strip_query,
                }),
                ..base
            }],
            None,
        ),
        RouteAction::Respond(r) => (
            vec![Route {
                action: Action::Respond {
                    status: r.status,
                    body: r.body.clone(),
                },
                ..base
            }],
            None,
        ),
        RouteAction::Forward(f) => {
            let cluster = upstream_cluster(f, route.allow_websockets, g, config_dir);
            let routes = forward_routes(route, f, g, base, cluster.name.clone(), cluster.lb_policy);
            (routes, Some(cluster))
        }
    }
}

/// The ordinary route, preceded by stream variants when streams get a different timeout.
/// Envoy matches routes in order, so the variants must come first.
fn forward_routes(
    route: &model::Route,
    f: &model::Forward,
    g: &Global,
    base: Route,
    cluster: String,
    lb: LbPolicy,
) -> Vec<Route> {
    let timeouts: RouteTimeouts = route_timeouts(route, g);
    let mut upgrades = Vec::new();
    if route.allow_websockets {
        upgrades.push("websocket".to_string());
    }
    if route.allow_spdy {
        upgrades.push("spdy/3.1".to_string());
    }
    let forward = Forward {
        cluster,
        timeout: timeouts.ordinary.value,
        idle_timeout: timeouts.idle.as_ref().map(|i| i.value),
        grpc_timeout_header_max: None,
        prefix_rewrite: match &f.path_rewrite {
            PathRewrite::Prefix(p) => Some(p.clone()),
            _ => None,
        },
        regex_rewrite: match &f.path_rewrite {
            PathRewrite::Regex {
                pattern,
                substitution,
            } => Some(RegexRewrite {
                pattern: pattern.clone(),
                substitution: substitution.clone(),
            }),
            _ => None,
        },
        host_rewrite: match &f.host_rewrite {
            model::HostRewrite::Auto => HostRewrite::Auto,
            model::HostRewrite::Literal(h) => HostRewrite::Literal(h.clone()),
            model::HostRewrite::Header(h) => HostRewrite::Header(h.clone()),
            model::HostRewrite::PathRegex {
                pattern,
                substitution,
            } => HostRewrite::PathRegex(RegexRewrite {
                pattern: pattern.clone(),
                substitution: substitution.clone(),
            }),
            model::HostRewrite::Preserve => HostRewrite::Preserve,
        },
        // Pomerium: the original host travels as X-Forwarded-Host unless the host is preserved
        // or the route removes that header.
        append_x_forwarded_host: f.host_rewrite != model::HostRewrite::Preserve
            && !route
                .remove_request_headers
                .iter()
                .any(|h| h == "x-forwarded-host"),
        upgrades: upgrades.clone(),
        hash_on_routing_key: matches!(lb, LbPolicy::RingHash | LbPolicy::Maglev),
    };
    let mut out = Vec::new();
    if timeouts.streams_differ() {
        let stream = |variant: &str, header: HeaderMatch, grpc: bool| {
            let mut r = base.clone();
            r.name = names::route_variant(&route.id, variant);
            r.headers.push(header);
            r.action = Action::Forward(Forward {
                timeout: timeouts.streams.value,
                grpc_timeout_header_max: grpc.then_some(Duration::ZERO),
                ..forward.clone()
            });
            r
        };
        out.push(stream(
            "sse",
            HeaderMatch {
                name: "accept".into(),
                rule: HeaderRule::Contains("text/event-stream".into()),
            },
            false,
        ));
        out.push(stream(
            "grpc",
            HeaderMatch {
                name: "content-type".into(),
                rule: HeaderRule::Prefix("application/grpc".into()),
            },
            true,
        ));
        if !upgrades.is_empty() {
            out.push(stream(
                "upgrade",
                HeaderMatch {
                    name: "upgrade".into(),
                    rule: HeaderRule::Present,
                },
                false,
            ));
        }
    }
    out.push(Route {
        action: Action::Forward(forward),
        ..base
    });
    out
}

fn endpoint_address(host: &str) -> String {
    // Pomerium resolves localhost itself: DNS might answer ::1 where the upstream listens on
    // 127.0.0.1 only.
    if host == "localhost" {
        "127.0.0.1".into()
    } else {
        host.to_string()
    }
}

fn discovery(endpoints: &[Endpoint]) -> Discovery {
    if endpoints
        .iter()
        .all(|e| e.address.parse::<IpAddr>().is_ok())
    {
        Discovery::Static
    } else {
        Discovery::StrictDns
    }
}

fn upstream_cluster(
    f: &model::Forward,
    websockets: bool,
    g: &Global,
    config_dir: &Path,
) -> Cluster {
    let endpoints: Vec<Endpoint> = f
        .upstreams
        .iter()
        .map(|u| Endpoint {
            address: endpoint_address(&u.host),
            port: u.port,
            hostname: u.host.clone(),
            weight: u.weight,
        })
        .collect();
    let scheme = f.upstreams[0].scheme;
    // WebSocket upgrades need HTTP/1.1 to the upstream (Pomerium #2388).
    let protocol = match (scheme, websockets) {
        (_, true) | (UpstreamScheme::Http, false) => UpstreamProtocol::Http1,
        (UpstreamScheme::H2c, false) => UpstreamProtocol::Http2,
        (UpstreamScheme::Https, false) => UpstreamProtocol::Negotiated,
    };
    let tls = (scheme == UpstreamScheme::Https).then(|| {
        let first = &f.upstreams[0].host;
        let name = f.tls.server_name.clone().unwrap_or_else(|| first.clone());
        UpstreamTls {
            // SNI cannot be an IP address.
            sni: if name.parse::<IpAddr>().is_ok() {
                String::new()
            } else {
                name.clone()
            },
            verify: (!f.tls.skip_verify).then(|| Verify {
                ca_file: f
                    .tls
                    .custom_ca_file
                    .clone()
                    .or_else(|| g.certificate_authority_file.clone())
                    .unwrap_or_default(),
                san: name,
            }),
            client_certificate: f.tls.client_cert.as_ref().map(|c| CertificateFiles {
                cert: c.cert.clone(),
                key: c.key.clone(),
            }),
            alpn: match protocol {
                UpstreamProtocol::Http1 => vec!["http/1.1".into()],
                UpstreamProtocol::Http2 => vec!["h2".into()],
                UpstreamProtocol::Negotiated => vec!["h2".into(), "http/1.1".into()],
            },
        }
    });
    let mut cluster = Cluster {
        name: String::new(),
        discovery: discovery(&endpoints),
        endpoints,
        lb_policy: match f.lb_policy {
            model::LbPolicy::RoundRobin => LbPolicy::RoundRobin,
            model::LbPolicy::LeastRequest => LbPolicy::LeastRequest,
            model::LbPolicy::Random => LbPolicy::Random,
            model::LbPolicy::RingHash => LbPolicy::RingHash,
            model::LbPolicy::Maglev => LbPolicy::Maglev,
        },
        connect_timeout: CONNECT_TIMEOUT,
        buffer_limit_bytes: BUFFER_LIMIT_BYTES,
        max_requests: MAX_REQUESTS,
        protocol,
        tls,
    };
    let identity = portable_identity(&cluster, config_dir);
    let first = &f.upstreams[0];
    cluster.name = names::cluster(&first.host, first.port, &identity);
    cluster
}

/// A cluster's content hash with its TLS file paths taken relative to the config's directory,
/// so the same config checked out in another place names its clusters the same way.
fn portable_identity(cluster: &Cluster, config_dir: &Path) -> String {
    let relative = |p: &mut PathBuf| *p = crate::hashing::portable_path(p, config_dir);
    let mut portable = cluster.clone();
    if let Some(tls) = portable.tls.as_mut() {
        if let Some(v) = tls.verify.as_mut() {
            relative(&mut v.ca_file);
        }
        if let Some(c) = tls.client_certificate.as_mut() {
            relative(&mut c.cert);
            relative(&mut c.key);
        }
    }
    names::content_hash(&portable)
}

/// The cluster through which Envoy reaches sluice's gRPC port (h2; TLS when the
/// `authorize_service_url` is https).
pub fn build_service_cluster(
    service: &ServiceAddress,
    ca_file: Option<&std::path::Path>,
) -> Cluster {
    let endpoints = vec![Endpoint {
        address: endpoint_address(&service.host),
        port: service.port,
        hostname: service.host.clone(),
        weight: None,
    }];
    Cluster {
        name: names::SLUICE_CLUSTER.into(),
        discovery: discovery(&endpoints),
        endpoints,
        lb_policy: LbPolicy::RoundRobin,
        connect_timeout: CONNECT_TIMEOUT,
        buffer_limit_bytes: BUFFER_LIMIT_BYTES,
        max_requests: MAX_REQUESTS,
        protocol: UpstreamProtocol::Http2,
        tls: service.tls.then(|| UpstreamTls {
            sni: service.host.clone(),
            verify: ca_file.map(|ca| Verify {
                ca_file: ca.to_path_buf(),
                san: service.host.clone(),
            }),
            client_certificate: None,
            alpn: vec!["h2".into()],
        }),
    }
}
