//! What SotW and delta streams share: who the client is, nonces, and sending.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::Status;

use super::snapshot::{Resource, SnapshotSource};
use super::status::{ConnectionHandle, Registry};
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

    pub async fn send(&self, response: R) -> Result<(), Closed> {
        self.out.send(Ok(response)).await.map_err(|_| Closed)
    }
}

/// The version of a set of resources: changes exactly when a member or its version does.
pub fn version_of<'a>(resources: impl IntoIterator<Item = &'a Arc<Resource>>) -> String {
    let pairs: Vec<(&str, &str)> = resources
        .into_iter()
        .map(|r| (r.name.as_str(), r.version.as_str()))
        .collect();
    content_hash(&pairs)
}

pub fn payload_bytes(resources: &[Arc<Resource>]) -> usize {
    resources
        .iter()
        .map(|r| r.bytes.len() + r.name.len() + 16)
        .sum()
}
