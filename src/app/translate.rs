//! Validated model → snapshot across reloads. With per-host route tables, an edit touches a
//! few hosts: a host whose routes are the very ones validated last time (the loader reuses an
//! unchanged route's `Arc`) under unchanged global settings keeps its scope, table and
//! clusters as encoded then; only the other hosts are built and encoded again. Anything else
//! (a global change, wildcard hosts and their single table, a new file) is translated whole.
//! The result is the snapshot a whole translation gives (a property test holds it to that).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::Model;
use crate::config::model::{Global, Route};
use crate::envoy::{self, Earlier, EncodedResource, Kind};
use crate::hashing::content_hash;
use crate::ir::{self, RouteTable, names, sign_in};
use crate::xds::{Resource, ResourceType, Snapshot};

/// The translator of one config file across reloads.
#[derive(Default)]
pub struct Translator {
    last: Option<Last>,
}

/// What the last translation built, for the next one to reuse.
struct Last {
    file: PathBuf,
    global: Global,
    /// The resources that follow from the global settings alone: listeners, the redirect
    /// table, sluice's own cluster.
    fixed: Vec<(ResourceType, Arc<Resource>)>,
    hosts: HashMap<String, Host>,
}

/// One host as last built.
struct Host {
    /// Its config routes in file order, as validated (compared by identity).
    routes: Vec<Arc<Route>>,
    scope: Arc<Resource>,
    table: Arc<Resource>,
    /// The clusters its routes send to.
    clusters: Vec<Arc<Resource>>,
}

/// What the last translation could take from the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    pub hosts_reused: usize,
    pub hosts_built: usize,
    /// Translated whole (the first time, a global change, or a single route table).
    pub whole: bool,
}

impl Translator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot for `model`, reusing what the last call built and, for anything built
    /// anew, the bytes `previous` holds for an unchanged resource.
    pub fn snapshot(&mut self, model: &Model, generation: u64, previous: &Snapshot) -> Snapshot {
        self.snapshot_and_reuse(model, generation, previous).0
    }

    pub fn snapshot_and_reuse(
        &mut self,
        model: &Model,
        generation: u64,
        previous: &Snapshot,
    ) -> (Snapshot, Reuse) {
        if let Some(done) = self.by_host(model, generation, previous) {
            return done;
        }
        let snapshot = self.whole(model, generation, previous);
        let reuse = Reuse {
            hosts_built: self.last.as_ref().map_or(0, |l| l.hosts.len()),
            whole: true,
            ..Reuse::default()
        };
        (snapshot, reuse)
    }

    fn whole(&mut self, model: &Model, generation: u64, previous: &Snapshot) -> Snapshot {
        self.last = None;
        let g = &model.global;
        let config_dir = model.config_dir();
        let parts = crate::parallel::map(model.routes.iter().collect(), |route| {
            ir::route_parts(route, g, config_dir)
        });
        let clusters: Vec<Option<String>> = parts
            .iter()
            .map(|p| p.cluster.as_ref().map(|c| c.name.clone()))
            .collect();
        let ir = ir::assemble(g, parts);
        let per_host = ir
            .listeners
            .iter()
            .any(|l| matches!(l.hcm.routes, RouteTable::PerHost(_)));
        let snapshot = snapshot_of(ir, generation, previous);
        if per_host {
            self.last = remember(model, &clusters, &snapshot);
        }
        snapshot
    }

    /// The snapshot built host by host, or None when it must be translated whole.
    fn by_host(
        &mut self,
        model: &Model,
        generation: u64,
        previous: &Snapshot,
    ) -> Option<(Snapshot, Reuse)> {
        let last = self.last.as_ref()?;
        if last.file != model.file || last.global != model.global {
            return None;
        }
        let g = &model.global;
        let authenticate = sign_in::authenticate_host(g);
        let by_host = group_by_host(model, authenticate.as_deref())?;
        let mut last = self.last.take()?;

        let mut hosts: HashMap<String, Host> = HashMap::with_capacity(by_host.len());
        let mut stale: Vec<(&str, Vec<&Arc<Route>>)> = Vec::new();
        for (host, routes) in by_host {
            match last.hosts.remove_entry(host) {
                Some((name, kept)) if same_routes(&kept.routes, &routes) => {
                    hosts.insert(name, kept);
                }
                _ => stale.push((host, routes)),
            }
        }
        let reuse = Reuse {
            hosts_reused: hosts.len(),
            hosts_built: stale.len(),
            whole: false,
        };
        let earlier = EarlierSnapshot(previous);
        let internal = ir::internal_routes(g);
        let built = crate::parallel::map(stale, |(host, routes)| {
            let host_name = host.to_string();
            let built = build_host(model, host_name.clone(), &routes, &internal, &earlier);
            (host_name, built)
        });
        hosts.extend(built);

        let mut resources: Vec<(ResourceType, Arc<Resource>)> = last.fixed.clone();
        resources.extend(secret_resources(&ir::secrets(g), &earlier));
        for host in hosts.values() {
            resources.push((ResourceType::ScopedRoute, Arc::clone(&host.scope)));
            resources.push((ResourceType::RouteConfiguration, Arc::clone(&host.table)));
            resources.extend(
                host.clusters
                    .iter()
                    .map(|c| (ResourceType::Cluster, Arc::clone(c))),
            );
        }
        last.hosts = hosts;
        self.last = Some(last);
        Some((Snapshot::from_shared(generation, resources), reuse))
    }
}

/// The config routes of each host in file order (and the authenticate host, which has a
/// virtual host with or without them), or None when a host cannot have its own table.
fn group_by_host<'m>(
    model: &'m Model,
    authenticate: Option<&'m str>,
) -> Option<BTreeMap<&'m str, Vec<&'m Arc<Route>>>> {
    let mut by_host: BTreeMap<&str, Vec<&Arc<Route>>> = BTreeMap::new();
    for route in &model.routes {
        let host = route.from.host.as_str();
        if !ir::per_host_scopable(host) {
            return None;
        }
        by_host.entry(host).or_default().push(route);
    }
    if let Some(host) = authenticate {
        by_host.entry(host).or_default();
    }
    (!by_host.is_empty()).then_some(by_host)
}

fn same_routes(kept: &[Arc<Route>], now: &[&Arc<Route>]) -> bool {
    kept.len() == now.len() && kept.iter().zip(now).all(|(a, b)| Arc::ptr_eq(a, b))
}

/// One host's scope, table and clusters, built and encoded.
fn build_host(
    model: &Model,
    host: String,
    routes: &[&Arc<Route>],
    internal: &[ir::Route],
    earlier: &dyn Earlier,
) -> Host {
    let g = &model.global;
    let mut envoy_routes = Vec::new();
    let mut clusters: Vec<ir::Cluster> = Vec::new();
    for route in routes {
        let parts = ir::route_parts(route, g, model.config_dir());
        envoy_routes.extend(parts.routes);
        if let Some(c) = parts.cluster
            && !clusters.iter().any(|k| k.name == c.name)
        {
            clusters.push(c);
        }
    }
    let vhost = ir::host_virtual_host(g, &host, envoy_routes, internal);
    let table = envoy::host_table(
        names::MAIN_ROUTES,
        host,
        vec![vhost],
        ir::main_response_headers(g),
    );
    let (scope, table) = envoy::encode_host_table(&table, earlier);
    Host {
        routes: routes.iter().map(|r| Arc::clone(r)).collect(),
        scope: Arc::new(to_resource(scope)),
        table: Arc::new(to_resource(table)),
        clusters: clusters
            .iter()
            .map(|c| Arc::new(to_resource(envoy::encode_cluster(c, earlier))))
            .collect(),
    }
}

/// What a whole translation built, kept per host; None if the snapshot is not laid out as
/// expected (then the next reload translates whole again).
fn remember(model: &Model, clusters: &[Option<String>], snapshot: &Snapshot) -> Option<Last> {
    let g = &model.global;
    let authenticate = sign_in::authenticate_host(g);
    let by_host = group_by_host(model, authenticate.as_deref())?;
    let cluster_of: HashMap<*const Route, &str> = model
        .routes
        .iter()
        .zip(clusters)
        .filter_map(|(r, c)| Some((Arc::as_ptr(r), c.as_deref()?)))
        .collect();
    let find = |ty: ResourceType, name: &str| snapshot.resources(ty).get(name).cloned();
    let mut hosts = HashMap::with_capacity(by_host.len());
    let mut host_tables = std::collections::HashSet::new();
    let mut upstream_clusters = std::collections::HashSet::new();
    for (host, routes) in by_host {
        let table_name = names::host_routes(names::MAIN_ROUTES, host);
        let mut host_clusters: Vec<Arc<Resource>> = Vec::new();
        for route in &routes {
            let Some(name) = cluster_of.get(&Arc::as_ptr(route)) else {
                continue;
            };
            if !host_clusters.iter().any(|c| &*c.name == *name) {
                host_clusters.push(find(ResourceType::Cluster, name)?);
                upstream_clusters.insert(*name);
            }
        }
        hosts.insert(
            host.to_string(),
            Host {
                routes: routes.into_iter().cloned().collect(),
                scope: find(
                    ResourceType::ScopedRoute,
                    &names::host_scope(names::MAIN_ROUTES, host),
                )?,
                table: find(ResourceType::RouteConfiguration, &table_name)?,
                clusters: host_clusters,
            },
        );
        host_tables.insert(table_name);
    }
    let mut fixed: Vec<(ResourceType, Arc<Resource>)> = Vec::new();
    for ty in [
        ResourceType::Listener,
        ResourceType::RouteConfiguration,
        ResourceType::Cluster,
    ] {
        fixed.extend(
            snapshot
                .resources(ty)
                .iter()
                .filter(|(name, _)| match ty {
                    ResourceType::RouteConfiguration => !host_tables.contains(&***name),
                    ResourceType::Cluster => !upstream_clusters.contains(&***name),
                    _ => true,
                })
                .map(|(_, r)| (ty, Arc::clone(r))),
        );
    }
    Some(Last {
        file: model.file.clone(),
        global: g.clone(),
        fixed,
        hosts,
    })
}

/// The resources of an earlier snapshot, for encoding only what changed.
pub struct EarlierSnapshot<'a>(pub &'a Snapshot);

impl Earlier for EarlierSnapshot<'_> {
    fn bytes(&self, kind: Kind, name: &str, version: &str) -> Option<Bytes> {
        let ty = match kind {
            Kind::Listener => ResourceType::Listener,
            Kind::RouteConfig => ResourceType::RouteConfiguration,
            Kind::Scope => ResourceType::ScopedRoute,
            Kind::Cluster => ResourceType::Cluster,
            Kind::Secret => ResourceType::Secret,
        };
        self.0
            .resources(ty)
            .get(name)
            .filter(|r| &*r.version == version)
            .map(|r| r.bytes.clone())
    }
}

fn to_resource(e: EncodedResource) -> Resource {
    Resource {
        name: e.name.into(),
        version: e.version.into(),
        bytes: e.bytes,
    }
}

/// Whether a listener picks its route table by host, through scopes.
fn reads_scopes(ir: &ir::Ir) -> bool {
    ir.listeners
        .iter()
        .any(|l| matches!(l.hcm.routes, RouteTable::PerHost(_)))
}

/// The snapshot of a whole IR, taking unchanged resources' bytes from `previous`.
pub fn snapshot_of(mut ir: ir::Ir, generation: u64, previous: &Snapshot) -> Snapshot {
    let secrets = std::mem::take(&mut ir.secrets);
    let per_host = reads_scopes(&ir);
    let earlier = EarlierSnapshot(previous);
    let encoded = envoy::encode_reusing(ir, &earlier);
    let mut resources: Vec<(ResourceType, Arc<Resource>)> = Vec::new();
    let typed = |ty: ResourceType, list: Vec<EncodedResource>| {
        list.into_iter()
            .map(move |e| (ty, Arc::new(to_resource(e))))
    };
    resources.extend(typed(ResourceType::Listener, encoded.listeners));
    resources.extend(typed(
        ResourceType::RouteConfiguration,
        encoded.route_configs,
    ));
    resources.extend(typed(ResourceType::ScopedRoute, encoded.scopes));
    resources.extend(typed(ResourceType::Cluster, encoded.clusters));
    resources.extend(secret_resources(&secrets, &earlier));
    Snapshot::from_shared(generation, resources).with_scopes_unread(!per_host)
}

/// The listener certificates. A certificate rotation changes the files, not the config: the
/// secret's version follows the files' contents too, so a rotation is re-announced.
fn secret_resources(
    secrets: &[ir::Secret],
    earlier: &dyn Earlier,
) -> Vec<(ResourceType, Arc<Resource>)> {
    secrets
        .iter()
        .map(|s| {
            let mut r = to_resource(envoy::encode_secret(s, earlier));
            let files = files_hash(&[&s.files.cert, &s.files.key]);
            r.version = content_hash(&(&*r.version, &files)).into();
            (ResourceType::Secret, Arc::new(r))
        })
        .collect()
}

fn files_hash(paths: &[&PathBuf]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for p in paths {
        // An unreadable file hashes as empty; Envoy reports the real problem when it loads it.
        std::fs::read(p).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}
