//! State-of-the-world ADS streams: each response carries the whole set of a type (listeners,
//! clusters) or every subscribed resource (route tables, secrets).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::snapshot::{Resource, Snapshot};
use super::status::{Flavour, Reply};
use super::stream::{Closed, Session, Shared, payload_bytes, version_of};
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
    sent: BTreeMap<String, Arc<Resource>>,
}

impl TypeState {
    fn wanted(&self, ty: ResourceType, snapshot: &Snapshot) -> BTreeMap<String, Arc<Resource>> {
        let all = snapshot.resources(ty);
        if self.wildcard {
            all.clone()
        } else {
            self.names
                .iter()
                .filter_map(|n| all.get(n).map(|r| (n.clone(), Arc::clone(r))))
                .collect()
        }
    }

    fn differs(&self, wanted: &BTreeMap<String, Arc<Resource>>) -> bool {
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
    types: [TypeState; 4],
    /// The snapshot this stream last pushed from. Requests are answered from it, not from the
    /// newest one: an ACK that arrives just after a publish must not send routes ahead of the
    /// clusters they name; the push that follows sends everything in make-before-break order.
    seen: Arc<Snapshot>,
}

pub async fn run(
    shared: Shared,
    mut requests: Streaming<DiscoveryRequest>,
    out: mpsc::Sender<Result<SotwResponse, Status>>,
) {
    let mut changes = shared.source.subscribe();
    // The node comes with the first request only (`set_node_on_first_message_only`).
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        _ => return,
    };
    let node = first.node.clone().unwrap_or_default();
    let handle = shared
        .registry
        .connect(&node.id, &node.cluster, Flavour::Sotw);
    info!(node_id = %node.id, node_cluster = %node.cluster, "Envoy connected (ADS, state of the world)");
    let session = Session::new(node.id.clone(), handle, out);
    let mut stream = Stream {
        shared,
        session,
        types: Default::default(),
        seen: Arc::new(Snapshot::default()),
    };
    changes.mark_unchanged();
    // After mark_unchanged: a publish in between is then both seen here and pushed again
    // (harmlessly: pushes send differences only), never missed.
    stream.seen = stream.shared.source.current();
    let mut next = Some(first);
    let result: Result<(), Closed> = async {
        loop {
            if let Some(request) = next.take() {
                stream.on_request(request).await?;
            }
            tokio::select! {
                message = requests.message() => match message {
                    Ok(Some(request)) => next = Some(request),
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        debug!(node_id = %stream.session.node_id, %status, "ADS stream ended");
                        return Ok(());
                    }
                },
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    stream.push().await?;
                }
            }
        }
    }
    .await;
    let _ = result;
    info!(node_id = %stream.session.node_id, "Envoy disconnected (ADS, state of the world)");
}

impl Stream {
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

    fn record_reply(&mut self, ty: ResourceType, req: &DiscoveryRequest) {
        if req.response_nonce.is_empty() {
            return;
        }
        let error = req.error_detail.as_ref().map(|e| e.message.clone());
        match self.session.handle.replied(ty, &req.response_nonce, error) {
            Some(Reply::Nack { version, error }) => warn!(
                node_id = %self.session.node_id, %ty, %version, %error,
                "Envoy rejected an update (NACK); it keeps serving its last good config"
            ),
            Some(Reply::Ack { version }) => {
                debug!(node_id = %self.session.node_id, %ty, %version, "ACK")
            }
            None => {}
        }
    }

    /// A new snapshot: send what changed, in make-before-break order.
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
                    wanted.entry(name.clone()).or_insert_with(|| Arc::clone(r));
                }
            }
            if state.differs(&wanted) && (ty.is_wildcard() || state.wildcard || !wanted.is_empty())
            {
                self.send(ty, wanted).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        ty: ResourceType,
        wanted: BTreeMap<String, Arc<Resource>>,
    ) -> Result<(), Closed> {
        let resources: Vec<Arc<Resource>> = wanted.values().cloned().collect();
        let version_info = version_of(&resources);
        let nonce = self.session.next_nonce();
        let bytes = payload_bytes(&resources);
        self.session
            .handle
            .sent(ty, &nonce, &version_info, resources.len(), bytes);
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
