//! What SotW and delta streams share: the stream's life (first request, connect, requests and
//! pushes until it ends), who the client is, nonces, and sending.

use std::future::Future;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::snapshot::{Resource, Snapshot, SnapshotSource};
use super::status::{ConnectionHandle, Flavour, Registry, Reply};
use super::types::ResourceType;
use crate::hashing::content_hash;

/// Responses queued per stream before its task waits: a slow Envoy holds up only itself.
pub const STREAM_QUEUE: usize = 4;

/// What every stream needs from the server.
#[derive(Clone)]
pub struct Shared {
    pub source: Arc<dyn SnapshotSource>,
    pub registry: Arc<Registry>,
}

/// The client stream went away.
#[derive(Debug)]
pub struct Closed;

/// One stream's sending side and identity.
pub struct Session<R> {
    pub node_id: String,
    pub handle: ConnectionHandle,
    out: mpsc::Sender<Result<R, Status>>,
    nonce: u64,
}

impl<R> Session<R> {
    pub fn new(
        node_id: String,
        handle: ConnectionHandle,
        out: mpsc::Sender<Result<R, Status>>,
    ) -> Self {
        Session {
            node_id,
            handle,
            out,
            nonce: 0,
        }
    }

    pub fn next_nonce(&mut self) -> String {
        self.nonce += 1;
        self.nonce.to_string()
    }

    /// Records the client's answer to the response `nonce` named (an ACK, or a NACK when
    /// `error` is set) and logs it; `None` when the nonce is not one awaiting an answer.
    pub fn record_reply(
        &mut self,
        ty: ResourceType,
        nonce: &str,
        error: Option<String>,
    ) -> Option<Reply> {
        let reply = self.handle.replied(ty, nonce, error);
        match &reply {
            Some(Reply::Nack { version, error }) => warn!(
                node_id = %self.node_id, %ty, %version, %error,
                "Envoy rejected an update (NACK); it keeps serving its last good config"
            ),
            Some(Reply::Ack { version }) => {
                debug!(node_id = %self.node_id, %ty, %version, "ACK")
            }
            None => {}
        }
        reply
    }

    pub async fn send(&self, response: R) -> Result<(), Closed> {
        self.out.send(Ok(response)).await.map_err(|_| Closed)
    }
}

/// One ADS flavour's half of a stream: how it answers a request and how it pushes a snapshot.
pub trait Protocol: Sized + Send {
    type Request: prost::Message + Default + Send + 'static;
    type Response: Send + 'static;
    const FLAVOUR: Flavour;
    /// How log lines name the flavour.
    const NAME: &'static str;

    /// The node, which comes with the first request only (`set_node_on_first_message_only`).
    fn node(first: &Self::Request) -> Option<Node>;
    /// A stream that has answered nothing yet; `seen` is the snapshot requests are answered
    /// from until the next push.
    fn start(shared: Shared, session: Session<Self::Response>, seen: Arc<Snapshot>) -> Self;
    fn on_request(
        &mut self,
        request: Self::Request,
    ) -> impl Future<Output = Result<(), Closed>> + Send;
    /// A new snapshot was published: send what changed, in make-before-break order, and
    /// answer later requests from it.
    fn push(&mut self) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// Runs one ADS stream until the client or the server goes away.
pub async fn drive<P: Protocol>(
    shared: Shared,
    mut requests: Streaming<P::Request>,
    out: mpsc::Sender<Result<P::Response, Status>>,
) {
    let mut changes = shared.source.subscribe();
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        _ => return,
    };
    let node = P::node(&first).unwrap_or_default();
    let handle = shared.registry.connect(&node.id, &node.cluster, P::FLAVOUR);
    info!(node_id = %node.id, node_cluster = %node.cluster, "Envoy connected (ADS, {})", P::NAME);
    changes.mark_unchanged();
    // After mark_unchanged: a publish in between is then both seen here and pushed again
    // (harmlessly: pushes send differences only), never missed.
    let seen = shared.source.current();
    let mut stream = P::start(shared, Session::new(node.id.clone(), handle, out), seen);
    let mut next = Some(first);
    let _ended: Result<(), Closed> = async {
        loop {
            if let Some(request) = next.take() {
                stream.on_request(request).await?;
            }
            tokio::select! {
                message = requests.message() => match message {
                    Ok(Some(request)) => next = Some(request),
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        debug!(node_id = %node.id, %status, "ADS stream ended");
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
    info!(node_id = %node.id, "Envoy disconnected (ADS, {})", P::NAME);
}

/// The version of a set of resources: changes exactly when a member or its version does.
pub fn version_of<'a>(resources: impl IntoIterator<Item = &'a Arc<Resource>>) -> String {
    let pairs: Vec<(&str, &str)> = resources
        .into_iter()
        .map(|r| (&*r.name, &*r.version))
        .collect();
    content_hash(&pairs)
}

pub fn payload_bytes(resources: &[Arc<Resource>]) -> usize {
    resources
        .iter()
        .map(|r| r.bytes.len() + r.name.len() + 16)
        .sum()
}
