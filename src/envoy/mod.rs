//! IR → envoy-types protos: one file per resource kind, the HTTP filter table, bootstraps,
//! and proto3 JSON rendering by reflection.

pub mod bootstrap;
mod cluster;
mod common;
mod encode;
pub mod filters;
pub mod json;
mod listener;
mod route;
mod secret;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;

use crate::ir::Ir;

pub use encode::{EncodedResource, EncodedResources, encode};

/// How the resources reach Envoy. Only two things differ: a static bootstrap cannot use RDS,
/// so the route table sits inside the connection manager, and its secrets are found by name
/// among the bootstrap's own instead of over SDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Ads,
    Static,
}

/// The Envoy resources for one config, each kind sorted by name.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resources {
    pub listeners: Vec<Listener>,
    pub route_configs: Vec<RouteConfiguration>,
    pub clusters: Vec<Cluster>,
    pub secrets: Vec<Secret>,
}

pub fn translate(ir: &Ir, delivery: Delivery) -> Resources {
    let route_configs: Vec<RouteConfiguration> = ir
        .route_configs
        .iter()
        .map(route::route_configuration)
        .collect();
    let listeners = ir
        .listeners
        .iter()
        .map(|l| {
            let table = route_configs
                .iter()
                .find(|rc| rc.name == l.hcm.route_config);
            listener::listener(l, table, delivery)
        })
        .collect();
    Resources {
        listeners,
        route_configs,
        clusters: ir.clusters.iter().map(cluster::cluster).collect(),
        secrets: ir.secrets.iter().map(secret::secret).collect(),
    }
}
