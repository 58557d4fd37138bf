//! IR → encoded Envoy resources, the form xDS sends. Each resource is built, encoded and
//! dropped in turn (the route table one virtual host at a time), so a large config never
//! holds every Envoy proto struct at once. Versions hash the IR, which is deterministic,
//! where hashing encoded bytes would not be (prost keeps proto maps in `HashMap`s).

use prost::Message;

use super::{Delivery, cluster, listener, per_host_tables, route, scope, secret};
use crate::hashing::{content_hash, content_hash_u64};
use crate::ir;

/// One Envoy resource as xDS serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedResource {
    pub name: String,
    /// Changes exactly when the resource's content does.
    pub version: String,
    /// The resource message, protobuf-encoded (the `value` of its `Any`).
    pub bytes: Vec<u8>,
}

/// Every resource for one config, each kind sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedResources {
    pub listeners: Vec<EncodedResource>,
    pub route_configs: Vec<EncodedResource>,
    pub scopes: Vec<EncodedResource>,
    pub clusters: Vec<EncodedResource>,
    pub secrets: Vec<EncodedResource>,
}

/// `RouteConfiguration.virtual_hosts`, appended one entry at a time.
const VIRTUAL_HOSTS_FIELD: u32 = 2;

pub fn encode(ir: ir::Ir) -> EncodedResources {
    let per_host: Vec<String> = per_host_tables(&ir).into_iter().map(String::from).collect();
    let ir::Ir {
        listeners,
        route_configs: tables,
        clusters,
        secrets,
    } = ir;
    let mut route_configs = Vec::new();
    let mut scopes = Vec::new();
    for rc in tables {
        if !per_host.contains(&rc.name) {
            route_configs.push(encode_route_config(rc));
            continue;
        }
        let encoded = crate::parallel::map(scope::split(rc), |t| {
            let scope_resource = resource(
                &t.scope,
                &(&t.host, &t.table.name),
                scope::scope(&t, None).encode_to_vec(),
            );
            let table = route::route_configuration(&t.table).encode_to_vec();
            (scope_resource, resource(&t.table.name, &t.table, table))
        });
        for (scope_resource, table) in encoded {
            scopes.push(scope_resource);
            route_configs.push(table);
        }
    }
    route_configs.sort_by(|a, b| a.name.cmp(&b.name));
    scopes.sort_by(|a, b| a.name.cmp(&b.name));
    EncodedResources {
        listeners: listeners
            .into_iter()
            .map(|l| {
                resource(
                    &l.name,
                    &l,
                    listener::listener(&l, listener::Inline::Nothing, Delivery::Ads)
                        .encode_to_vec(),
                )
            })
            .collect(),
        route_configs,
        scopes,
        clusters: crate::parallel::map(clusters, |c| {
            resource(&c.name, &c, cluster::cluster(&c).encode_to_vec())
        }),
        secrets: secrets
            .into_iter()
            .map(|s| resource(&s.name, &s, secret::secret(&s).encode_to_vec()))
            .collect(),
    }
}

fn resource(name: &str, ir: &impl std::hash::Hash, bytes: Vec<u8>) -> EncodedResource {
    EncodedResource {
        name: name.to_string(),
        version: content_hash(ir),
        bytes,
    }
}

/// A protobuf message may carry a repeated field's entries after its other fields, so the
/// table is encoded as its header followed by each virtual host, built and dropped in turn
/// (in parallel for large tables). The version combines the header's hash with each virtual
/// host's, computed alongside.
fn encode_route_config(mut rc: ir::RouteConfig) -> EncodedResource {
    let virtual_hosts = std::mem::take(&mut rc.virtual_hosts);
    let mut bytes = route::route_configuration(&rc).encode_to_vec();
    let encoded = crate::parallel::map(virtual_hosts, |vhost| {
        let proto = route::virtual_host(&vhost);
        let mut field = Vec::with_capacity(proto.encoded_len() + 8);
        prost::encoding::message::encode(VIRTUAL_HOSTS_FIELD, &proto, &mut field);
        (content_hash_u64(&vhost), field)
    });
    let hashes: Vec<u64> = encoded.iter().map(|(h, _)| *h).collect();
    bytes.reserve(encoded.iter().map(|(_, f)| f.len()).sum());
    for (_, field) in encoded {
        bytes.extend_from_slice(&field);
    }
    let version = content_hash(&(&rc, hashes));
    EncodedResource {
        name: rc.name,
        version,
        bytes,
    }
}
