//! The resource types sluice serves, their type URLs, and the order updates go out in.

use std::fmt;

/// Every resource type sluice serves. Envoy asks for listeners and clusters by wildcard, for
/// route tables and secrets by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Cluster,
    Listener,
    RouteConfiguration,
    Secret,
}

impl ResourceType {
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Cluster,
        ResourceType::Listener,
        ResourceType::RouteConfiguration,
        ResourceType::Secret,
    ];

    pub const fn type_url(self) -> &'static str {
        match self {
            ResourceType::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            ResourceType::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            ResourceType::RouteConfiguration => {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            }
            ResourceType::Secret => {
                "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
            }
        }
    }

    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// Short name for logs and status (`CDS`, `LDS`, `RDS`, `SDS`).
    pub const fn short(self) -> &'static str {
        match self {
            ResourceType::Cluster => "CDS",
            ResourceType::Listener => "LDS",
            ResourceType::RouteConfiguration => "RDS",
            ResourceType::Secret => "SDS",
        }
    }

    /// Types whose every resource goes to every client that asks (xDS "wildcard" types).
    pub const fn is_wildcard(self) -> bool {
        matches!(self, ResourceType::Cluster | ResourceType::Listener)
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
/// clusters first (removed ones kept), then listeners, route tables and secrets, and only then
/// the clusters nothing refers to any more are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send changes of this type.
    Update(ResourceType),
    /// Send clusters, keeping removed ones until routes have moved away from them.
    AddClusters,
    /// Remove clusters that are gone.
    RemoveClusters,
}

pub const PUSH_ORDER: [Step; 5] = [
    Step::AddClusters,
    Step::Update(ResourceType::Listener),
    Step::Update(ResourceType::RouteConfiguration),
    Step::Update(ResourceType::Secret),
    Step::RemoveClusters,
];
