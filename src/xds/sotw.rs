//! State-of-the-world ADS streams: each response carries the whole set of a type (listeners,
//! clusters, scopes), every subscribed secret, or the subscribed route tables that changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::debug;

use super::snapshot::{Resource, Snapshot};
use super::status::Flavour;
use super::stream::{Closed, Protocol, Session, Shared, drive, payload_bytes, version_of};
use super::types::{PUSH_ORDER, ResourceType, Step};
use super::wire::SotwResponse;

/// One type's subscription and what was last sent for it.
#[derive(Default)]
struct TypeState {
    requested: bool,
    wildcard: bool,
    /// Whether the client ever named resources (after which an empty list means "none").
    ever_named: bool,
    names: BTreeSet<String>,
    last_nonce: Option<String>,
    sent: Held,
}

/// Resources by name, sharing the snapshot's names.
type Held = BTreeMap<Arc<str>, Arc<Resource>>;

impl TypeState {
    fn wanted(&self, ty: ResourceType, snapshot: &Snapshot) -> Held {
        let all = snapshot.resources(ty);
        let mut wanted: Held = if self.wildcard {
            all.clone()
        } else {
            self.names
                .iter()
                .filter_map(|n| {
                    all.get_key_value(n.as_str())
                        .map(|(k, r)| (Arc::clone(k), Arc::clone(r)))
                })
                .collect()
        };
        // What the client must keep though the config dropped it: still sent, as it is.
        if snapshot.keeps_removed(ty) {
            for (name, r) in &self.sent {
                if self.in_scope(name) {
                    wanted
                        .entry(Arc::clone(name))
                        .or_insert_with(|| Arc::clone(r));
                }
            }
        }
        wanted
    }

    fn in_scope(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    fn differs(&self, wanted: &Held) -> bool {
        wanted.len() != self.sent.len()
            || wanted
                .iter()
                .zip(&self.sent)
                .any(|((na, a), (nb, b))| na != nb || a.version != b.version)
    }
}

struct Stream {
    shared: Shared,
    session: Session<SotwResponse>,
    types: [TypeState; ResourceType::COUNT],
    /// The snapshot this stream last pushed from. Requests are answered from it, not from the
    /// newest one: an ACK that arrives just after a publish must not send routes ahead of the
    /// clusters they name; the push that follows sends everything in make-before-break order.
    seen: Arc<Snapshot>,
}

pub async fn run(
    shared: Shared,
    requests: Streaming<DiscoveryRequest>,
    out: mpsc::Sender<Result<SotwResponse, Status>>,
) {
    drive::<Stream>(shared, requests, out).await
}

impl Protocol for Stream {
    type Request = DiscoveryRequest;
    type Response = SotwResponse;
    const FLAVOUR: Flavour = Flavour::Sotw;
    const NAME: &'static str = "state of the world";

    fn node(first: &DiscoveryRequest) -> Option<Node> {
        first.node.clone()
    }

    fn start(shared: Shared, session: Session<SotwResponse>, seen: Arc<Snapshot>) -> Self {
        Stream {
            shared,
            session,
            types: Default::default(),
            seen,
        }
    }

    async fn on_request(&mut self, req: DiscoveryRequest) -> Result<(), Closed> {
        let Some(ty) = ResourceType::from_type_url(&req.type_url) else {
            debug!(node_id = %self.session.node_id, type_url = %req.type_url, "request for a type sluice does not serve");
            return Ok(());
        };
        let state = &mut self.types[ty.index()];
        // A nonce older than the last response is stale: the client has not seen our newest
        // response yet and will send its subscription again with the newer nonce.
        let stale = !req.response_nonce.is_empty()
            && state
                .last_nonce
                .as_ref()
                .is_some_and(|last| last != &req.response_nonce);
        if stale {
            self.record_reply(ty, &req);
            debug!(node_id = %self.session.node_id, %ty, nonce = %req.response_nonce, "stale nonce");
            return Ok(());
        }
        self.record_reply(ty, &req);

        let state = &mut self.types[ty.index()];
        let before = (state.wildcard, state.names.clone());
        let mut names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
        if names.is_empty() {
            // Legacy wildcard: an empty list means "everything" until names were ever given.
            state.wildcard = !state.ever_named;
            state.names.clear();
        } else {
            state.ever_named = true;
            state.wildcard = names.remove("*");
            state.names = names;
        }
        let first = !state.requested;
        state.requested = true;
        let subscription_changed = before != (state.wildcard, state.names.clone());

        let snapshot = Arc::clone(&self.seen);
        let wanted = state.wanted(ty, &snapshot);
        if first && !req.version_info.is_empty() && req.version_info == version_of(wanted.values())
        {
            // Reconnected, and already holding exactly this: nothing to send.
            self.session
                .handle
                .already_has(ty, &req.version_info, wanted.len());
            state.sent = wanted;
            return Ok(());
        }
        let must = first || subscription_changed || state.differs(&wanted);
        // Named types with nothing to name get no response (Envoy waits for the resource).
        if must && (ty.is_wildcard() || state.wildcard || !wanted.is_empty()) {
            self.send(ty, wanted).await?;
        }
        Ok(())
    }

    async fn push(&mut self) -> Result<(), Closed> {
        let snapshot = self.shared.source.current();
        self.seen = Arc::clone(&snapshot);
        for step in PUSH_ORDER {
            let (ty, keep_removed) = match step {
                Step::AddClusters => (ResourceType::Cluster, true),
                Step::RemoveClusters => (ResourceType::Cluster, false),
                Step::Update(ty) => (ty, false),
            };
            let state = &self.types[ty.index()];
            if !state.requested {
                continue;
            }
            let mut wanted = state.wanted(ty, &snapshot);
            if keep_removed {
                for (name, r) in &state.sent {
                    wanted
                        .entry(Arc::clone(name))
                        .or_insert_with(|| Arc::clone(r));
                }
            }
            if state.differs(&wanted) && (ty.is_wildcard() || state.wildcard || !wanted.is_empty())
            {
                self.send(ty, wanted).await?;
            }
        }
        Ok(())
    }
}

impl Stream {
    fn record_reply(&mut self, ty: ResourceType, req: &DiscoveryRequest) {
        if req.response_nonce.is_empty() {
            return;
        }
        let error = req.error_detail.as_ref().map(|e| e.message.clone());
        self.session.record_reply(ty, &req.response_nonce, error);
    }

    async fn send(&mut self, ty: ResourceType, wanted: Held) -> Result<(), Closed> {
        // The version names everything the client holds of the type once it applies this.
        let version_info = version_of(wanted.values());
        let state = &self.types[ty.index()];
        let resources: Vec<Arc<Resource>> = if ty.sotw_sends_changes_only() {
            wanted
                .iter()
                .filter(|(name, r)| state.sent.get(*name).is_none_or(|s| s.version != r.version))
                .map(|(_, r)| Arc::clone(r))
                .collect()
        } else {
            wanted.values().cloned().collect()
        };
        if resources.is_empty() && ty.sotw_sends_changes_only() {
            // Only unsubscribed tables went away: the client expects no answer to that.
            self.types[ty.index()].sent = wanted;
            return Ok(());
        }
        let nonce = self.session.next_nonce();
        let bytes = payload_bytes(&resources);
        self.session
            .handle
            .sent(ty, &nonce, &version_info, wanted.len(), bytes);
        debug!(node_id = %self.session.node_id, %ty, version = %version_info, resources = resources.len(), bytes, "sending");
        let state = &mut self.types[ty.index()];
        state.last_nonce = Some(nonce.clone());
        state.sent = wanted;
        self.session
            .send(SotwResponse {
                version_info,
                type_url: ty.type_url(),
                nonce,
                resources,
            })
            .await
    }
}
