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
mod scope;
mod secret;

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;

use crate::ir::{Ir, RouteTable};

pub use encode::{
    Earlier, EncodedResource, EncodedResources, Kind, encode, encode_cluster, encode_host_table,
    encode_reusing, encode_secret,
};
pub use scope::{HostTable, host_table};

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
    /// Whole tables, and the per-host tables split out of the others.
    pub route_configs: Vec<RouteConfiguration>,
    /// The scopes that pick a per-host table (each naming its table, as served over ADS).
    pub scopes: Vec<ScopedRouteConfiguration>,
    pub clusters: Vec<Cluster>,
    pub secrets: Vec<Secret>,
}

/// The IR route tables that connection managers read per host.
fn per_host_tables(ir: &Ir) -> BTreeSet<&str> {
    ir.listeners
        .iter()
        .filter_map(|l| match &l.hcm.routes {
            RouteTable::PerHost(name) => Some(name.as_str()),
            RouteTable::Single(_) => None,
        })
        .collect()
}

pub fn translate(ir: &Ir, delivery: Delivery) -> Resources {
    let per_host = per_host_tables(ir);
    let mut route_configs = Vec::new();
    let mut scopes = Vec::new();
    // Per table, the scopes a static bootstrap carries inline (each with its host's table).
    let mut inline_scopes: BTreeMap<&str, Vec<ScopedRouteConfiguration>> = BTreeMap::new();
    for rc in &ir.route_configs {
        if !per_host.contains(rc.name.as_str()) {
            route_configs.push(route::route_configuration(rc));
            continue;
        }
        for t in scope::split(rc.clone()) {
            let table = route::route_configuration(&t.table);
            scopes.push(scope::scope(&t, None));
            if delivery == Delivery::Static {
                inline_scopes
                    .entry(rc.name.as_str())
                    .or_default()
                    .push(scope::scope(&t, Some(table.clone())));
            }
            route_configs.push(table);
        }
    }
    route_configs.sort_by(|a, b| a.name.cmp(&b.name));
    let listeners = ir
        .listeners
        .iter()
        .map(|l| {
            let inline = match (delivery, &l.hcm.routes) {
                (Delivery::Ads, _) => listener::Inline::Nothing,
                (Delivery::Static, RouteTable::Single(name)) => route_configs
                    .iter()
                    .find(|rc| &rc.name == name)
                    .map_or(listener::Inline::Nothing, listener::Inline::Table),
                (Delivery::Static, RouteTable::PerHost(name)) => listener::Inline::Scopes(
                    inline_scopes
                        .get(name.as_str())
                        .map_or(&[][..], Vec::as_slice),
                ),
            };
            listener::listener(l, inline, delivery)
        })
        .collect();
    Resources {
        listeners,
        route_configs,
        scopes,
        clusters: ir.clusters.iter().map(cluster::cluster).collect(),
        secrets: ir.secrets.iter().map(secret::secret).collect(),
    }
}
