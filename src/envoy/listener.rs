//! IR listeners → Envoy `Listener`s with their HTTP connection managers.

use envoy_types::pb::envoy::config::core::v3::{
    Http3ProtocolOptions, HttpProtocolOptions, TransportSocket,
    http_protocol_options::HeadersWithUnderscoresAction, transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, QuicProtocolOptions, UdpListenerConfig, filter,
};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager,
};
use envoy_types::pb::envoy::extensions::transport_sockets::quic::v3::QuicDownstreamTransport;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, TlsParameters, certificate_validation_context, common_tls_context,
    subject_alt_name_matcher::SanType, tls_parameters,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::Delivery;
use super::common::{ads_config_source, any, duration, file, socket_address};
use super::filters::http_filters;
use super::scope::scoped_routes;
use crate::ir;

const HCM: &str = "envoy.filters.network.http_connection_manager";

/// What a static bootstrap carries inside a connection manager in place of RDS and SRDS.
#[derive(Clone, Copy)]
pub enum Inline<'a> {
    Nothing,
    Table(&'a RouteConfiguration),
    /// The scopes of a per-host table, each holding its host's table.
    Scopes(&'a [ScopedRouteConfiguration]),
}

pub fn listener(l: &ir::Listener, inline: Inline<'_>, delivery: Delivery) -> Listener {
    let quic = l.transport == ir::Transport::Quic;
    let transport_socket = l.tls.as_ref().map(|tls| {
        let context = DownstreamTlsContext {
            common_tls_context: Some(common_tls(tls, delivery)),
            require_client_certificate: tls
                .client_validation
                .as_ref()
                .filter(|v| v.require)
                .map(|_| BoolValue { value: true }),
            ..Default::default()
        };
        if quic {
            TransportSocket {
                name: "envoy.transport_sockets.quic".into(),
                config_type: Some(transport_socket::ConfigType::TypedConfig(any(
                    QuicDownstreamTransport {
                        downstream_tls_context: Some(context),
                        ..Default::default()
                    },
                ))),
            }
        } else {
            TransportSocket {
                name: "envoy.transport_sockets.tls".into(),
                config_type: Some(transport_socket::ConfigType::TypedConfig(any(context))),
            }
        }
    });
    Listener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, quic)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: HCM.into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(connection_manager(
                    &l.hcm, inline, delivery,
                )))),
            }],
            transport_socket,
            ..Default::default()
        }],
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: l.buffer_limit_bytes,
        }),
        udp_listener_config: quic.then(|| UdpListenerConfig {
            quic_options: Some(QuicProtocolOptions::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn common_tls(tls: &ir::DownstreamTls, delivery: Delivery) -> CommonTlsContext {
    CommonTlsContext {
        tls_params: Some(TlsParameters {
            tls_minimum_protocol_version: tls_parameters::TlsProtocol::TlSv12 as i32,
            ..Default::default()
        }),
        // Certificates come by SDS so a rotation changes the secret, not the listener.
        tls_certificate_sds_secret_configs: tls
            .certificates
            .iter()
            .map(|name| SdsSecretConfig {
                name: name.clone(),
                sds_config: match delivery {
                    Delivery::Ads => Some(ads_config_source()),
                    Delivery::Static => None,
                },
            })
            .collect(),
        alpn_protocols: tls.alpn.clone(),
        validation_context_type: tls.client_validation.as_ref().map(|v| {
            common_tls_context::ValidationContextType::ValidationContext(client_validation(v))
        }),
        ..Default::default()
    }
}

/// Client certificate checks, as Pomerium sets them: a CRL only for the leaf's issuer, and
/// unless connections are to be refused, untrusted certificates pass so that ext_authz can
/// answer 495 (or let the route's policy decide).
fn client_validation(v: &ir::ClientValidation) -> CertificateValidationContext {
    use certificate_validation_context::TrustChainVerification;
    CertificateValidationContext {
        trusted_ca: Some(file(&v.ca_file)),
        crl: v.crl_file.as_deref().map(file),
        only_verify_leaf_cert_crl: v.crl_file.is_some(),
        match_typed_subject_alt_names: v
            .subject_alt_names
            .iter()
            .map(|(kind, pattern)| {
                let (san_type, oid) = match kind {
                    ir::ClientSan::Email => (SanType::Email, ""),
                    ir::ClientSan::Dns => (SanType::Dns, ""),
                    ir::ClientSan::Uri => (SanType::Uri, ""),
                    ir::ClientSan::IpAddress => (SanType::IpAddress, ""),
                    // Microsoft's UPN is an otherName with this OID.
                    ir::ClientSan::UserPrincipalName => {
                        (SanType::OtherName, "1.3.6.1.4.1.311.20.2.3")
                    }
                };
                SubjectAltNameMatcher {
                    san_type: san_type as i32,
                    matcher: Some(StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::SafeRegex(
                            RegexMatcher {
                                regex: pattern.clone(),
                                ..Default::default()
                            },
                        )),
                        ignore_case: false,
                    }),
                    oid: oid.into(),
                }
            })
            .collect(),
        max_verify_depth: v.max_verify_depth.map(|value| UInt32Value { value }),
        trust_chain_verification: if v.require {
            TrustChainVerification::VerifyTrustChain
        } else {
            TrustChainVerification::AcceptUntrusted
        } as i32,
        ..Default::default()
    }
}

fn connection_manager(
    h: &ir::Hcm,
    inline: Inline<'_>,
    delivery: Delivery,
) -> HttpConnectionManager {
    use http_connection_manager::{CodecType, PathWithEscapedSlashesAction, RouteSpecifier};
    let route_specifier = match (&h.routes, inline) {
        (ir::RouteTable::PerHost(table), inline) => {
            let scopes = match inline {
                Inline::Scopes(scopes) => scopes.to_vec(),
                _ => Vec::new(),
            };
            RouteSpecifier::ScopedRoutes(scoped_routes(table, delivery, scopes))
        }
        (ir::RouteTable::Single(_), Inline::Table(rc)) => RouteSpecifier::RouteConfig(rc.clone()),
        (ir::RouteTable::Single(name), _) => RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: name.clone(),
        }),
    };
    HttpConnectionManager {
        stat_prefix: h.stat_prefix.clone(),
        codec_type: match h.codec {
            ir::Codec::Auto => CodecType::Auto,
            ir::Codec::Http1 => CodecType::Http1,
            ir::Codec::Http2 => CodecType::Http2,
            ir::Codec::Http3 => CodecType::Http3,
        } as i32,
        route_specifier: Some(route_specifier),
        http_filters: http_filters(h.ext_authz.as_ref(), h.clean_upstream.as_ref()),
        request_timeout: Some(duration(h.request_timeout)),
        stream_idle_timeout: Some(duration(h.stream_idle_timeout)),
        drain_timeout: Some(duration(h.drain_timeout)),
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: Some(duration(h.connection_idle_timeout)),
            max_stream_duration: h.max_stream_duration.map(duration),
            headers_with_underscores_action: HeadersWithUnderscoresAction::RejectRequest as i32,
            ..Default::default()
        }),
        http3_protocol_options: (h.codec == ir::Codec::Http3).then(|| Http3ProtocolOptions {
            allow_extended_connect: true,
            ..Default::default()
        }),
        use_remote_address: Some(BoolValue { value: true }),
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        path_with_escaped_slashes_action: PathWithEscapedSlashesAction::RejectRequest as i32,
        always_set_request_id_in_response: true,
        ..Default::default()
    }
}
