//! IR clusters → Envoy `Cluster`s, endpoints inline (no EDS: endpoints change with the config,
//! and inline endpoints keep one resource per upstream set).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, TransportSocket, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, TlsCertificate,
    UpstreamTlsContext, common_tls_context, subject_alt_name_matcher,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};

use super::common::{any, duration, file, host_address};
use crate::ir;

const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

pub fn cluster(c: &ir::Cluster) -> Cluster {
    use cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, LbPolicy};
    let discovery = match c.discovery {
        ir::Discovery::Static => DiscoveryType::Static,
        ir::Discovery::StrictDns => DiscoveryType::StrictDns,
    };
    Cluster {
        name: c.name.clone(),
        connect_timeout: Some(duration(c.connect_timeout)),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: c.buffer_limit_bytes,
        }),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(discovery as i32)),
        lb_policy: match c.lb_policy {
            ir::LbPolicy::RoundRobin => LbPolicy::RoundRobin,
            ir::LbPolicy::LeastRequest => LbPolicy::LeastRequest,
            ir::LbPolicy::Random => LbPolicy::Random,
            ir::LbPolicy::RingHash => LbPolicy::RingHash,
            ir::LbPolicy::Maglev => LbPolicy::Maglev,
        } as i32,
        // Upstreams named by host often resolve to both families; IPv4 is the safer first try.
        dns_lookup_family: DnsLookupFamily::V4Preferred as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: c.name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: c.endpoints.iter().map(endpoint).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        typed_extension_protocol_options: protocol_options(c.protocol),
        transport_socket: c.tls.as_ref().map(tls),
        circuit_breakers: Some(circuit_breakers(c.max_requests)),
        ..Default::default()
    }
}

fn circuit_breakers(max: u32) -> CircuitBreakers {
    let limit = Some(UInt32Value { value: max });
    CircuitBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            max_connections: limit,
            max_pending_requests: limit,
            max_requests: limit,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn endpoint(e: &ir::Endpoint) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(host_address(&e.address, e.port)),
            hostname: e.hostname.clone(),
            ..Default::default()
        })),
        load_balancing_weight: e.weight.map(|value| UInt32Value { value }),
        ..Default::default()
    }
}

fn protocol_options(p: ir::UpstreamProtocol) -> HashMap<String, Any> {
    use http_protocol_options::{
        AutoHttpConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        explicit_http_config::ProtocolConfig,
    };
    let options = match p {
        ir::UpstreamProtocol::Http1 => {
            UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                    Http1ProtocolOptions::default(),
                )),
            })
        }
        ir::UpstreamProtocol::Http2 => {
            UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            })
        }
        ir::UpstreamProtocol::Negotiated => UpstreamProtocolOptions::AutoConfig(AutoHttpConfig {
            http_protocol_options: Some(Http1ProtocolOptions::default()),
            http2_protocol_options: Some(Http2ProtocolOptions::default()),
            ..Default::default()
        }),
    };
    HashMap::from([(
        HTTP_PROTOCOL_OPTIONS.to_string(),
        any(HttpProtocolOptions {
            upstream_protocol_options: Some(options),
            ..Default::default()
        }),
    )])
}

fn tls(t: &ir::UpstreamTls) -> TransportSocket {
    let validation = t.verify.as_ref().map(|v| {
        let san_type = if v.san.parse::<std::net::IpAddr>().is_ok() {
            subject_alt_name_matcher::SanType::IpAddress
        } else {
            subject_alt_name_matcher::SanType::Dns
        };
        common_tls_context::ValidationContextType::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(file(&v.ca_file)),
            match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                san_type: san_type as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(v.san.clone())),
                    ignore_case: true,
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    });
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: t.alpn.clone(),
            validation_context_type: validation,
            tls_certificates: t
                .client_certificate
                .iter()
                .map(|c| TlsCertificate {
                    certificate_chain: Some(file(&c.cert)),
                    private_key: Some(file(&c.key)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        sni: t.sni.clone(),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(context))),
    }
}
