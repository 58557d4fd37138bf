//! Snapshots: every resource sluice serves at one config generation, each with a content
//! version, and the trait streams use to read the current one and hear of new ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::types::ResourceType;

/// One encoded resource, shared by every stream that sends it. Name and version are shared
/// too: every stream keeps a map of what its Envoy holds, and with ten Envoys and 13,000
/// resources, copies of the strings would cost megabytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: Arc<str>,
    /// Changes exactly when the content does.
    pub version: Arc<str>,
    /// The resource message, protobuf-encoded.
    pub bytes: Bytes,
}

pub type Resources = BTreeMap<Arc<str>, Arc<Resource>>;

/// Everything served at one generation.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Counts published snapshots; for logs and status only.
    pub generation: u64,
    by_type: [Resources; ResourceType::COUNT],
    /// The listeners read one route table, not scopes (a wildcard route needs that). Scopes a
    /// client still holds then belong to a listener on its way out, warming its successor or
    /// draining its connections, and taking them away would leave its requests without a
    /// route: they stay until the client lets go of them.
    scopes_unread: bool,
}

impl Snapshot {
    pub fn new(
        generation: u64,
        resources: impl IntoIterator<Item = (ResourceType, Resource)>,
    ) -> Self {
        Self::from_shared(
            generation,
            resources.into_iter().map(|(ty, r)| (ty, Arc::new(r))),
        )
    }

    /// As `new`, with resources shared with other snapshots (an unchanged resource is kept
    /// from one generation to the next, not copied).
    pub fn from_shared(
        generation: u64,
        resources: impl IntoIterator<Item = (ResourceType, Arc<Resource>)>,
    ) -> Self {
        let mut by_type: [Resources; ResourceType::COUNT] = Default::default();
        for (ty, r) in resources {
            by_type[ty.index()].insert(Arc::clone(&r.name), r);
        }
        Snapshot {
            generation,
            by_type,
            scopes_unread: false,
        }
    }

    /// Marks the listeners as reading one route table, not scopes (see `keeps_removed`).
    pub fn with_scopes_unread(mut self, unread: bool) -> Self {
        self.scopes_unread = unread;
        self
    }

    /// Whether resources of `ty` that this snapshot no longer has stay with a client that
    /// holds them. Route tables always do: Envoy subscribes to exactly the tables its
    /// listeners read, draining ones included, and unsubscribes when the last reader goes; a
    /// removal would empty a table a draining listener still routes by. Scopes do while no
    /// listener of this snapshot reads them.
    pub fn keeps_removed(&self, ty: ResourceType) -> bool {
        match ty {
            ResourceType::RouteConfiguration => true,
            ResourceType::ScopedRoute => self.scopes_unread,
            _ => false,
        }
    }

    pub fn resources(&self, ty: ResourceType) -> &Resources {
        &self.by_type[ty.index()]
    }

    /// Same resources with the same versions (then publishing it would send nothing).
    pub fn same_content(&self, other: &Snapshot) -> bool {
        ResourceType::ALL.iter().all(|ty| {
            let (a, b) = (self.resources(*ty), other.resources(*ty));
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((na, ra), (nb, rb))| na == nb && ra.version == rb.version)
        })
    }

    /// Names of the resources of `ty` that are new, changed or gone since `previous`.
    pub fn changed_since<'a>(&'a self, previous: &'a Snapshot, ty: ResourceType) -> Vec<&'a str> {
        let (now, before) = (self.resources(ty), previous.resources(ty));
        let mut names: Vec<&str> = now
            .iter()
            .filter(|(name, r)| before.get(*name).is_none_or(|b| b.version != r.version))
            .map(|(name, _)| &**name)
            .chain(
                before
                    .keys()
                    .filter(|name| !now.contains_key(*name))
                    .map(|name| &**name),
            )
            .collect();
        names.sort_unstable();
        names
    }

    pub fn total_bytes(&self) -> usize {
        self.by_type
            .iter()
            .flat_map(|m| m.values())
            .map(|r| r.bytes.len())
            .sum()
    }
}

/// Where streams read the current snapshot and learn that a new one was published.
pub trait SnapshotSource: Send + Sync + 'static {
    fn current(&self) -> Arc<Snapshot>;
    /// Changes (to the new generation) whenever a snapshot is published.
    fn subscribe(&self) -> watch::Receiver<u64>;
}
