//! Envoy bootstraps: the self-contained one `render` prints, and the one an external Envoy
//! needs to take its config from sluice over ADS (`sluice bootstrap`).

use envoy_types::pb::envoy::config::bootstrap::v3::{
    Admin, Bootstrap, LayeredRuntime, RuntimeLayer, bootstrap, runtime_layer,
};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, GrpcService, Node, api_config_source, grpc_service,
};
use envoy_types::pb::envoy::config::overload::v3::{
    OverloadManager, ResourceMonitor, resource_monitor,
};
use envoy_types::pb::envoy::extensions::resource_monitors::downstream_connections::v3::DownstreamConnectionsConfig;
use envoy_types::pb::google::protobuf::{Struct, Value, value};

use std::net::SocketAddr;

use super::common::{ads_config_source, any, socket_address};
use super::{Delivery, Resources, translate};
use crate::config::Model;
use crate::config::model::Global;
use crate::ir::{self, Ir, names};

/// Enough for a busy edge proxy; without a limit Envoy warns at start-up.
const MAX_DOWNSTREAM_CONNECTIONS: i64 = 50_000;

/// The command-line flags Envoy needs beside its bootstrap. The listener drain window is a
/// flag, not config: `sluice_drain_time` as `--drain-time-s`. The drain is immediate: when a
/// listener-level setting changes, every client is told at once (HTTP/2 GOAWAY, HTTP/1.1
/// `Connection: close` on its next response) so new requests reach the new listener, while
/// open streams keep flowing until the window ends.
pub fn envoy_flags(g: &Global) -> Vec<String> {
    vec![
        "--drain-time-s".into(),
        g.drain_time.value.as_secs().to_string(),
        "--drain-strategy".into(),
        "immediate".into(),
    ]
}

/// Which ADS flavour an external Envoy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdsFlavour {
    /// Incremental (delta) xDS, as Pomerium uses.
    Delta,
    /// State of the world.
    Sotw,
}

/// Identifies an Envoy to sluice.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub id: String,
    pub cluster: String,
}

fn overload_manager() -> OverloadManager {
    OverloadManager {
        resource_monitors: vec![ResourceMonitor {
            name: "envoy.resource_monitors.global_downstream_max_connections".into(),
            config_type: Some(resource_monitor::ConfigType::TypedConfig(any(
                DownstreamConnectionsConfig {
                    max_active_downstream_connections: MAX_DOWNSTREAM_CONNECTIONS,
                },
            ))),
        }],
        ..Default::default()
    }
}

/// Envoy's default RE2 program size limit (100) rejects ordinary route regexes; raise it as
/// Pomerium does, keeping a warning for very large ones. The admin layer keeps `/runtime_modify`
/// working.
fn runtime() -> LayeredRuntime {
    let number = |n: f64| Value {
        kind: Some(value::Kind::NumberValue(n)),
    };
    LayeredRuntime {
        layers: vec![
            RuntimeLayer {
                name: "sluice".into(),
                layer_specifier: Some(runtime_layer::LayerSpecifier::StaticLayer(Struct {
                    fields: [
                        (
                            "re2.max_program_size.error_level".to_string(),
                            number(1_048_576.0),
                        ),
                        (
                            "re2.max_program_size.warn_level".to_string(),
                            number(1_024.0),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                })),
            },
            RuntimeLayer {
                name: "admin".into(),
                layer_specifier: Some(runtime_layer::LayerSpecifier::AdminLayer(
                    runtime_layer::AdminLayer::default(),
                )),
            },
        ],
    }
}

fn admin(address: &SocketAddr) -> Admin {
    Admin {
        address: Some(socket_address(address, false)),
        ..Default::default()
    }
}

/// A complete static bootstrap holding the resources xDS serves (route tables inline, secrets
/// static), for inspection and `envoy --mode validate`.
pub fn render(ir: &Ir, admin_address: &SocketAddr, node: &NodeIdentity) -> Bootstrap {
    let Resources {
        listeners,
        route_configs: _,
        scopes: _,
        clusters,
        secrets,
    } = translate(ir, Delivery::Static);
    Bootstrap {
        node: Some(Node {
            id: node.id.clone(),
            cluster: node.cluster.clone(),
            ..Default::default()
        }),
        admin: Some(admin(admin_address)),
        static_resources: Some(bootstrap::StaticResources {
            listeners,
            clusters,
            secrets,
        }),
        overload_manager: Some(overload_manager()),
        layered_runtime: Some(runtime()),
        ..Default::default()
    }
}

/// The bootstrap of an Envoy that takes everything from sluice over ADS.
pub fn ads(model: &Model, flavour: AdsFlavour, node: &NodeIdentity) -> Bootstrap {
    let service = &model.global.authorize_service;
    let xds = ir::Cluster {
        name: names::XDS_CLUSTER.into(),
        ..ir::build_service_cluster(service, model.global.certificate_authority_file.as_deref())
    };
    let api_type = match flavour {
        AdsFlavour::Delta => api_config_source::ApiType::DeltaGrpc,
        AdsFlavour::Sotw => api_config_source::ApiType::Grpc,
    };
    Bootstrap {
        node: Some(Node {
            id: node.id.clone(),
            cluster: node.cluster.clone(),
            ..Default::default()
        }),
        admin: Some(admin(&model.global.envoy_admin_address)),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_type as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: names::XDS_CLUSTER.into(),
                            // The default, the cluster name, is not a valid :authority.
                            authority: names::SLUICE_AUTHORITY.into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                set_node_on_first_message_only: true,
                ..Default::default()
            }),
            lds_config: Some(ads_config_source()),
            cds_config: Some(ads_config_source()),
            ..Default::default()
        }),
        static_resources: Some(bootstrap::StaticResources {
            clusters: vec![super::cluster::cluster(&xds)],
            ..Default::default()
        }),
        overload_manager: Some(overload_manager()),
        layered_runtime: Some(runtime()),
        ..Default::default()
    }
}

/// A static cluster named like the bootstrap's xDS cluster, for tests that validate
/// ADS-shaped resources without a running sluice.
pub fn xds_cluster_for_tests() -> envoy_types::pb::envoy::config::cluster::v3::Cluster {
    let service = crate::config::model::ServiceAddress {
        host: "127.0.0.1".into(),
        port: 5443,
        tls: false,
    };
    super::cluster::cluster(&ir::Cluster {
        name: names::XDS_CLUSTER.into(),
        ..ir::build_service_cluster(&service, None)
    })
}
