//! IR → encoded Envoy resources, the form xDS sends. Each resource is built, encoded and
//! dropped in turn (the route table one virtual host at a time), so a large config never
//! holds every Envoy proto struct at once. Versions hash the IR, which is deterministic,
//! where hashing encoded bytes would not be (prost keeps proto maps in `HashMap`s).

use bytes::Bytes;
use prost::Message;

use super::scope::HostTable;
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
    pub bytes: Bytes,
}

/// The kinds of resource, for looking up what an earlier encoding produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Listener,
    RouteConfig,
    Scope,
    Cluster,
    Secret,
}

/// The bytes an earlier encoding gave a resource of this kind, name and version, if any: an
/// unchanged resource is not encoded again.
pub trait Earlier: Sync {
    fn bytes(&self, kind: Kind, name: &str, version: &str) -> Option<Bytes>;
}

/// Nothing encoded before.
pub struct Nothing;

impl Earlier for Nothing {
    fn bytes(&self, _: Kind, _: &str, _: &str) -> Option<Bytes> {
        None
    }
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
    encode_reusing(ir, &Nothing)
}

/// As `encode`, taking each resource whose version is unchanged from `earlier`.
pub fn encode_reusing(ir: ir::Ir, earlier: &dyn Earlier) -> EncodedResources {
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
            route_configs.push(encode_route_config(rc, earlier));
            continue;
        }
        let encoded = crate::parallel::map(scope::split(rc), |t| encode_host_table(&t, earlier));
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
                resource(Kind::Listener, &l.name, &l, earlier, || {
                    listener::listener(&l, listener::Inline::Nothing, Delivery::Ads).encode_to_vec()
                })
            })
            .collect(),
        route_configs,
        scopes,
        clusters: crate::parallel::map(clusters, |c| encode_cluster(&c, earlier)),
        secrets: secrets.iter().map(|s| encode_secret(s, earlier)).collect(),
    }
}

/// One host's share of a per-host table: its scope and its table.
pub fn encode_host_table(
    t: &HostTable,
    earlier: &dyn Earlier,
) -> (EncodedResource, EncodedResource) {
    let scope_resource = resource(
        Kind::Scope,
        &t.scope,
        &(&t.host, &t.table.name),
        earlier,
        || scope::scope(t, None).encode_to_vec(),
    );
    let table = resource(Kind::RouteConfig, &t.table.name, &t.table, earlier, || {
        route::route_configuration(&t.table).encode_to_vec()
    });
    (scope_resource, table)
}

pub fn encode_cluster(c: &ir::Cluster, earlier: &dyn Earlier) -> EncodedResource {
    resource(Kind::Cluster, &c.name, c, earlier, || {
        cluster::cluster(c).encode_to_vec()
    })
}

pub fn encode_secret(s: &ir::Secret, earlier: &dyn Earlier) -> EncodedResource {
    resource(Kind::Secret, &s.name, s, earlier, || {
        secret::secret(s).encode_to_vec()
    })
}

/// The resource named `name`: versioned by its IR's hash, encoded by `encode` unless an
/// earlier encoding of the same version is at hand.
fn resource(
    kind: Kind,
    name: &str,
    ir: &impl std::hash::Hash,
    earlier: &dyn Earlier,
    encode: impl FnOnce() -> Vec<u8>,
) -> EncodedResource {
    let version = content_hash(ir);
    let bytes = earlier
        .bytes(kind, name, &version)
        .unwrap_or_else(|| Bytes::from(encode()));
    EncodedResource {
        name: name.to_string(),
        version,
        bytes,
    }
}

/// A protobuf message may carry a repeated field's entries after its other fields, so the
/// table is encoded as its header followed by each virtual host, built and dropped in turn
/// (in parallel for large tables). The version combines the header's hash with each virtual
/// host's, computed alongside.
fn encode_route_config(mut rc: ir::RouteConfig, earlier: &dyn Earlier) -> EncodedResource {
    let virtual_hosts = std::mem::take(&mut rc.virtual_hosts);
    let hashes: Vec<u64> = crate::parallel::map(virtual_hosts.iter().collect(), content_hash_u64);
    let version = content_hash(&(&rc, &hashes));
    if let Some(bytes) = earlier.bytes(Kind::RouteConfig, &rc.name, &version) {
        return EncodedResource {
            name: rc.name,
            version,
            bytes,
        };
    }
    let mut bytes = route::route_configuration(&rc).encode_to_vec();
    let encoded = crate::parallel::map(virtual_hosts, |vhost| {
        let proto = route::virtual_host(&vhost);
        let mut field = Vec::with_capacity(proto.encoded_len() + 8);
        prost::encoding::message::encode(VIRTUAL_HOSTS_FIELD, &proto, &mut field);
        field
    });
    bytes.reserve(encoded.iter().map(Vec::len).sum());
    for field in encoded {
        bytes.extend_from_slice(&field);
    }
    EncodedResource {
        name: rc.name,
        version,
        bytes: Bytes::from(bytes),
    }
}
