//! Incremental (delta) ADS streams: only resources the client does not already hold at the
//! current version are sent, and removals are named.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::debug;

use super::snapshot::{Resource, Snapshot};
use super::status::Flavour;
use super::stream::{Closed, Protocol, Session, Shared, drive, payload_bytes};
use super::types::{PUSH_ORDER, ResourceType, Step};
use super::wire::DeltaResponse;
use crate::hashing::content_hash;

/// One type's subscription and what the client holds.
#[derive(Default)]
struct TypeState {
    requested: bool,
    wildcard: bool,
    names: BTreeSet<String>,
    /// Resource name → version the client has (as far as sluice knows), sharing the
    /// snapshot's strings.
    known: BTreeMap<Arc<str>, Arc<str>>,
    /// Subscribed names already reported as not existing.
    reported_missing: BTreeSet<String>,
}

/// What to send for one type.
#[derive(Default)]
struct Changes {
    updates: Vec<Arc<Resource>>,
    removed: Vec<String>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.removed.is_empty()
    }
}

impl TypeState {
    fn in_scope(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    fn changes(
        &self,
        ty: ResourceType,
        snapshot: &Snapshot,
        updates: bool,
        removals: bool,
    ) -> Changes {
        let all = snapshot.resources(ty);
        let mut c = Changes::default();
        if updates {
            let candidates: Box<dyn Iterator<Item = &Arc<Resource>>> = if self.wildcard {
                Box::new(all.values())
            } else {
                Box::new(self.names.iter().filter_map(|n| all.get(n.as_str())))
            };
            c.updates = candidates
                .filter(|r| self.known.get(&*r.name) != Some(&r.version))
                .cloned()
                .collect();
        }
        if removals {
            let keep = snapshot.keeps_removed(ty);
            c.removed = self
                .known
                .keys()
                .filter(|n| !self.in_scope(n) || (!keep && !all.contains_key(&**n)))
                .map(|n| n.to_string())
                .collect();
            // A subscribed name that does not exist is reported once, so the client stops waiting.
            c.removed.extend(
                self.names
                    .iter()
                    .filter(|n| {
                        !all.contains_key(n.as_str())
                            && !self.known.contains_key(n.as_str())
                            && !self.reported_missing.contains(*n)
                    })
                    .cloned(),
            );
        }
        c
    }
}

struct Stream {
    shared: Shared,
    session: Session<DeltaResponse>,
    types: [TypeState; ResourceType::COUNT],
    /// The snapshot this stream last pushed from. Requests are answered from it, not from the
    /// newest one: an ACK that arrives just after a publish must not send routes ahead of the
    /// clusters they name; the push that follows sends everything in make-before-break order.
    seen: Arc<Snapshot>,
}

pub async fn run(
    shared: Shared,
    requests: Streaming<DeltaDiscoveryRequest>,
    out: mpsc::Sender<Result<DeltaResponse, Status>>,
) {
    drive::<Stream>(shared, requests, out).await
}

impl Protocol for Stream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaResponse;
    const FLAVOUR: Flavour = Flavour::Delta;
    const NAME: &'static str = "delta";

    fn node(first: &DeltaDiscoveryRequest) -> Option<Node> {
        first.node.clone()
    }

    fn start(shared: Shared, session: Session<DeltaResponse>, seen: Arc<Snapshot>) -> Self {
        Stream {
            shared,
            session,
            types: Default::default(),
            seen,
        }
    }

    async fn on_request(&mut self, req: DeltaDiscoveryRequest) -> Result<(), Closed> {
        let Some(ty) = ResourceType::from_type_url(&req.type_url) else {
            debug!(node_id = %self.session.node_id, type_url = %req.type_url, "request for a type sluice does not serve");
            return Ok(());
        };
        if !req.response_nonce.is_empty() {
            let error = req.error_detail.as_ref().map(|e| e.message.clone());
            if self
                .session
                .record_reply(ty, &req.response_nonce, error)
                .is_none()
            {
                debug!(node_id = %self.session.node_id, %ty, nonce = %req.response_nonce, "stale nonce");
            }
        }
        // Subscription changes apply even with a stale nonce (xDS delta protocol).
        let state = &mut self.types[ty.index()];
        let first = !state.requested;
        state.requested = true;
        if first {
            // A reconnecting client says what it holds; unchanged resources are not resent.
            state.known = req
                .initial_resource_versions
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
                .collect();
            if req.resource_names_subscribe.is_empty() && ty.is_wildcard() {
                state.wildcard = true;
            }
        }
        let mut subscription_changed = false;
        for name in &req.resource_names_subscribe {
            subscription_changed = true;
            if name == "*" {
                state.wildcard = true;
                // A wildcard asked for again (a new watcher after the last one went): the
                // client holds nothing of it any more, so everything is sent.
                if !first {
                    state.known.clear();
                }
            } else {
                state.names.insert(name.clone());
                // Asked for again: send it again, even if the client should have it.
                if !first {
                    state.known.remove(name.as_str());
                }
                state.reported_missing.remove(name);
            }
        }
        for name in &req.resource_names_unsubscribe {
            subscription_changed = true;
            if name == "*" {
                state.wildcard = false;
            } else {
                state.names.remove(name);
                state.known.remove(name.as_str());
                state.reported_missing.remove(name);
            }
        }
        // Clients do not expect removals for names they just unsubscribed.
        let known = std::mem::take(&mut state.known);
        state.known = known
            .into_iter()
            .filter(|(n, _)| state.in_scope(n))
            .collect();

        if first || subscription_changed {
            let snapshot = Arc::clone(&self.seen);
            let changes = self.types[ty.index()].changes(ty, &snapshot, true, true);
            // A fresh Envoy's first wildcard request is always answered, even with nothing,
            // so it finishes initialising; one reconnecting with what it holds needs no
            // answer when that is current (a restarted sluice sends nothing).
            let fresh = first && req.initial_resource_versions.is_empty();
            if !changes.is_empty() || (fresh && self.types[ty.index()].wildcard) {
                self.send(ty, changes).await?;
            } else if first && !req.initial_resource_versions.is_empty() {
                let state = &self.types[ty.index()];
                let version = content_hash(&state.known);
                let held = state.known.len();
                self.session.handle.holds(ty, &version, held);
            }
        }
        Ok(())
    }

    async fn push(&mut self) -> Result<(), Closed> {
        let snapshot = self.shared.source.current();
        self.seen = Arc::clone(&snapshot);
        for step in PUSH_ORDER {
            let (ty, updates, removals) = match step {
                Step::AddClusters => (ResourceType::Cluster, true, false),
                Step::RemoveClusters => (ResourceType::Cluster, false, true),
                Step::Update(ty) => (ty, true, true),
            };
            let state = &self.types[ty.index()];
            if !state.requested {
                continue;
            }
            let changes = state.changes(ty, &snapshot, updates, removals);
            if !changes.is_empty() {
                self.send(ty, changes).await?;
            }
        }
        Ok(())
    }
}

impl Stream {
    async fn send(&mut self, ty: ResourceType, changes: Changes) -> Result<(), Closed> {
        let state = &mut self.types[ty.index()];
        for r in &changes.updates {
            state
                .known
                .insert(Arc::clone(&r.name), Arc::clone(&r.version));
        }
        for name in &changes.removed {
            if state.known.remove(name.as_str()).is_none() {
                state.reported_missing.insert(name.clone());
            }
        }
        // The version of what the client holds of this type once it applies this response.
        let version = content_hash(&state.known);
        let held = state.known.len();
        let nonce = self.session.next_nonce();
        let bytes = payload_bytes(&changes.updates);
        self.session.handle.sent(ty, &nonce, &version, held, bytes);
        debug!(node_id = %self.session.node_id, %ty, %version, updates = changes.updates.len(), removed = changes.removed.len(), bytes, "sending");
        let generation = self.seen.generation;
        self.session
            .send(DeltaResponse {
                system_version_info: format!("generation-{generation}"),
                type_url: ty.type_url(),
                nonce,
                resources: changes.updates,
                removed: changes.removed,
            })
            .await
    }
}
