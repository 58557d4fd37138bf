//! The resource types sluice serves, their type URLs, and the order updates go out in.

use std::fmt;

/// Every resource type sluice serves. Envoy asks for listeners, clusters and scopes by
/// wildcard, for route tables and secrets by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Cluster,
    Listener,
    RouteConfiguration,
    /// Scoped routes (SRDS): which per-host route table serves which host.
    ScopedRoute,
    Secret,
}

impl ResourceType {
    pub const COUNT: usize = 5;
    pub const ALL: [ResourceType; Self::COUNT] = [
        ResourceType::Cluster,
        ResourceType::Listener,
        ResourceType::RouteConfiguration,
        ResourceType::ScopedRoute,
        ResourceType::Secret,
    ];

    pub const fn type_url(self) -> &'static str {
        match self {
            ResourceType::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            ResourceType::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            ResourceType::RouteConfiguration => {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            }
            ResourceType::ScopedRoute => {
                "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration"
            }
            ResourceType::Secret => {
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            }
        }
    }

    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// Short name for logs and status (`CDS`, `LDS`, `RDS`, `SRDS`, `SDS`).
    pub const fn short(self) -> &'static str {
        match self {
            ResourceType::Cluster => "CDS",
            ResourceType::Listener => "LDS",
            ResourceType::RouteConfiguration => "RDS",
            ResourceType::ScopedRoute => "SRDS",
            ResourceType::Secret => "SDS",
        }
    }

    /// Types whose every resource goes to every client that asks (xDS "wildcard" types).
    /// Envoy subscribes to scopes without names, and takes a scope missing from a
    /// state-of-the-world response as removed.
    pub const fn is_wildcard(self) -> bool {
        matches!(
            self,
            ResourceType::Cluster | ResourceType::Listener | ResourceType::ScopedRoute
        )
    }

    /// Types whose state-of-the-world responses need carry only what changed: Envoy keeps a
    /// route table that a response leaves out (the xDS protocol allows this for every type
    /// but listeners and clusters; Envoy's secret watchers, though, reject an empty update).
    pub const fn sotw_sends_changes_only(self) -> bool {
        matches!(self, ResourceType::RouteConfiguration)
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// One step of pushing an update to a client, in make-before-break order: new and changed
/// clusters first (removed ones kept), then listeners, route tables, the scopes that name
/// route tables, and secrets, and only then the clusters nothing refers to any more are
/// removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send changes of this type.
    Update(ResourceType),
    /// Send clusters, keeping removed ones until routes have moved away from them.
    AddClusters,
    /// Remove clusters that are gone.
    RemoveClusters,
}

pub const PUSH_ORDER: [Step; 6] = [
    Step::AddClusters,
    Step::Update(ResourceType::Listener),
    Step::Update(ResourceType::RouteConfiguration),
    Step::Update(ResourceType::ScopedRoute),
    Step::Update(ResourceType::Secret),
    Step::RemoveClusters,
];
