//! The HTTP filter chain, in one ordered table, and the per-route filter settings.
//!
//! Order matters and never changes between reloads (a reordered chain would replace the
//! listener and drain connections). There is deliberately no buffer filter, no compressor and
//! no body-reading filter: nothing on the path may hold a response back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{ApiVersion, GrpcService, grpc_service};
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    CheckSettings, ExtAuthz, ExtAuthzPerRoute, ext_authz, ext_authz_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::Any;

use super::common::{any, duration};
use crate::ir;

pub const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
pub const ROUTER: &str = "envoy.filters.http.router";

/// The HTTP filters of a connection manager, in order:
/// 1. ext_authz: decides before anything reaches an upstream.
/// 2. router: always last.
pub fn http_filters(ext_authz: Option<&ir::ExtAuthz>) -> Vec<HttpFilter> {
    let mut filters = Vec::new();
    if let Some(authz) = ext_authz {
        filters.push(filter(
            EXT_AUTHZ,
            any(ext_authz_config(&authz.cluster, authz.timeout)),
        ));
    }
    filters.push(filter(ROUTER, any(Router::default())));
    filters
}

fn filter(name: &str, config: Any) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

fn ext_authz_config(cluster: &str, timeout: Duration) -> ExtAuthz {
    ExtAuthz {
        services: Some(ext_authz::Services::GrpcService(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: cluster.to_string(),
                    ..Default::default()
                },
            )),
            timeout: Some(duration(timeout)),
            ..Default::default()
        })),
        transport_api_version: ApiVersion::V3 as i32,
        // Fail closed: if sluice cannot answer, nobody gets in.
        failure_mode_allow: false,
        // 503 says "try again" where Envoy's default 403 would say "you may not".
        status_on_error: Some(HttpStatus { code: 503 }),
        // Client certificates feed the client_certificate criteria.
        include_peer_certificate: true,
        // No with_request_body: reading bodies would buffer uploads and streams.
        ..Default::default()
    }
}

/// Per-route `typed_per_filter_config` entries.
pub fn per_route(authz: &ir::Authz) -> HashMap<String, Any> {
    let mut out = HashMap::new();
    if let ir::Authz::Check { context } = authz {
        out.insert(EXT_AUTHZ.to_string(), any(check_settings(context)));
    }
    out
}

fn check_settings(context: &BTreeMap<String, String>) -> ExtAuthzPerRoute {
    ExtAuthzPerRoute {
        r#override: Some(ext_authz_per_route::Override::CheckSettings(
            CheckSettings {
                context_extensions: context
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                ..Default::default()
            },
        )),
    }
}
