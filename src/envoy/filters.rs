//! The HTTP filter chain, in one ordered table, and the per-route filter settings.
//!
//! Order matters and never changes between reloads (a reordered chain would replace the
//! listener and drain connections). There is deliberately no buffer filter, no compressor and
//! no body-reading filter: nothing on the path may hold a response back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{ApiVersion, GrpcService, grpc_service};
use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    ExtAuthz, ExtAuthzPerRoute, ext_authz, ext_authz_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::lua::v3::{Lua, LuaPerRoute, lua_per_route};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{Any, BoolValue};

use super::common::{any, duration};
use crate::ir;

pub const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
pub const CLEAN_UPSTREAM: &str = "envoy.filters.http.lua";
pub const ROUTER: &str = "envoy.filters.http.router";

/// The script of the `CLEAN_UPSTREAM` filter; `COOKIE_NAME` is defined ahead of it.
const CLEAN_UPSTREAM_SCRIPT: &str = include_str!("clean_upstream.lua");

/// The HTTP filters of a connection manager, in order:
/// 1. ext_authz: decides before anything reaches an upstream.
/// 2. clean upstream (when browsers can sign in): removes sluice's cookies and tokens, which
///    ext_authz has read, from what the upstream sees. Request headers only.
/// 3. router: always last.
pub fn http_filters(
    ext_authz: Option<&ir::ExtAuthz>,
    clean_upstream: Option<&ir::CleanUpstream>,
) -> Vec<HttpFilter> {
    let mut filters = Vec::new();
    if let Some(authz) = ext_authz {
        filters.push(filter(
            EXT_AUTHZ,
            any(ext_authz_config(&authz.cluster, authz.timeout)),
        ));
    }
    if let Some(clean) = clean_upstream {
        filters.push(filter(CLEAN_UPSTREAM, any(clean_upstream_config(clean))));
    }
    filters.push(filter(ROUTER, any(Router::default())));
    filters
}

fn clean_upstream_config(clean: &ir::CleanUpstream) -> Lua {
    // The comments stay in the source file; Envoy gets the code.
    let code: Vec<&str> = CLEAN_UPSTREAM_SCRIPT
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    let script = format!(
        "local COOKIE_NAME = {}\n{}\n",
        lua_string(&clean.cookie_name),
        code.join("\n")
    );
    Lua {
        default_source_code: Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString(script)),
            ..Default::default()
        }),
        stat_prefix: "clean_upstream".into(),
        // Only credentials change, never what the route was chosen by.
        clear_route_cache: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// `text` as a Lua string literal.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
                    // The default, the cluster name, is not a valid :authority.
                    authority: crate::ir::names::SLUICE_AUTHORITY.into(),
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
pub fn per_route(authz: &ir::Authz, keeps_credentials: bool) -> HashMap<String, Any> {
    let mut out = HashMap::new();
    if keeps_credentials {
        let disabled = LuaPerRoute {
            r#override: Some(lua_per_route::Override::Disabled(true)),
            ..Default::default()
        };
        out.insert(CLEAN_UPSTREAM.to_string(), any(disabled));
    }
    match authz {
        ir::Authz::Check { context } => {
            out.insert(EXT_AUTHZ.to_string(), check_settings(context));
        }
        ir::Authz::Disabled => {
            let disabled = ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::Disabled(true)),
            };
            out.insert(EXT_AUTHZ.to_string(), any(disabled));
        }
        ir::Authz::None => {}
    }
    out
}

/// `ExtAuthzPerRoute { check_settings { context_extensions } }`, packed. prost keeps proto
/// maps in a `HashMap`, whose encoding order changes from one build to the next; encoding
/// this map with prost's BTreeMap encoder keeps every route's bytes identical across builds.
fn check_settings(context: &BTreeMap<String, String>) -> Any {
    use prost::encoding::{WireType, btree_map, encode_key, encode_varint, string};
    const CONTEXT_EXTENSIONS: u32 = 1; // CheckSettings.context_extensions
    const CHECK_SETTINGS: u32 = 2; // ExtAuthzPerRoute.check_settings
    let mut settings = Vec::new();
    btree_map::encode(
        string::encode,
        string::encoded_len,
        string::encode,
        string::encoded_len,
        CONTEXT_EXTENSIONS,
        context,
        &mut settings,
    );
    let mut value = Vec::with_capacity(settings.len() + 4);
    encode_key(CHECK_SETTINGS, WireType::LengthDelimited, &mut value);
    encode_varint(settings.len() as u64, &mut value);
    value.extend_from_slice(&settings);
    Any {
        type_url: <ExtAuthzPerRoute as prost::Name>::type_url(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::CheckSettings;
    use prost::Message;

    #[test]
    fn check_settings_encode_like_prost_and_deterministically() {
        let context = BTreeMap::from([
            ("route_id".to_string(), "abc".to_string()),
            ("route_checksum".to_string(), "0123".to_string()),
            ("z".to_string(), "last".to_string()),
        ]);
        let packed = check_settings(&context);
        let decoded = ExtAuthzPerRoute::decode(packed.value.as_slice()).unwrap();
        let expected = ExtAuthzPerRoute {
            r#override: Some(ext_authz_per_route::Override::CheckSettings(
                CheckSettings {
                    context_extensions: context.clone().into_iter().collect(),
                    ..Default::default()
                },
            )),
        };
        assert_eq!(decoded, expected);
        for _ in 0..20 {
            assert_eq!(check_settings(&context), packed);
        }
    }
}
