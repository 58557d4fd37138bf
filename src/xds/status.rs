//! What every connected Envoy has been sent and has acknowledged, its last rejection (NACK),
//! and counters for the whole server. Streams write; `sluice status` and metrics read.
//! Responses, ACKs and NACKs are also counted by resource type in the Prometheus metrics, with
//! the time from a generation's publish to each Envoy's ACK of it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::types::ResourceType;
use crate::telemetry::metrics::{TypeLabel, metrics};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// State of the world.
    Sotw,
    /// Incremental.
    Delta,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Nack {
    pub version: String,
    /// Envoy's own explanation (`error_detail.message`).
    pub error: String,
    pub at_unix: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TypeStatus {
    pub sent_version: Option<String>,
    pub sent_at_unix: Option<u64>,
    pub acked_version: Option<String>,
    pub acked_at_unix: Option<u64>,
    /// Resources of this type the Envoy holds (as far as sluice knows).
    pub resources: usize,
    pub nacks: u64,
    pub last_nack: Option<Nack>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectionStatus {
    pub id: u64,
    pub node_id: String,
    pub node_cluster: String,
    pub flavour: Flavour,
    pub connected_at_unix: u64,
    /// Keyed `CDS`, `LDS`, `RDS`, `SDS`.
    pub types: BTreeMap<&'static str, TypeStatus>,
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub responses: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub acks: AtomicU64,
    pub nacks: AtomicU64,
    pub connections: AtomicU64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CountersView {
    pub responses: u64,
    pub bytes_sent: u64,
    pub acks: u64,
    pub nacks: u64,
    pub connections_total: u64,
}

impl Counters {
    pub fn view(&self) -> CountersView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersView {
            responses: get(&self.responses),
            bytes_sent: get(&self.bytes_sent),
            acks: get(&self.acks),
            nacks: get(&self.nacks),
            connections_total: get(&self.connections),
        }
    }
}

#[derive(Debug)]
pub struct Registry {
    next_id: AtomicU64,
    connections: Mutex<BTreeMap<u64, ConnectionStatus>>,
    pub counters: Counters,
}

impl Default for Registry {
    fn default() -> Self {
        metrics().know_types(ResourceType::ALL.map(ResourceType::type_url));
        Registry {
            next_id: AtomicU64::new(0),
            connections: Mutex::default(),
            counters: Counters::default(),
        }
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, ConnectionStatus>> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a stream; it is removed again when the returned handle drops.
    pub fn connect(
        self: &Arc<Self>,
        node_id: &str,
        node_cluster: &str,
        flavour: Flavour,
    ) -> ConnectionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            ConnectionStatus {
                id,
                node_id: node_id.to_string(),
                node_cluster: node_cluster.to_string(),
                flavour,
                connected_at_unix: now_unix(),
                types: BTreeMap::new(),
            },
        );
        ConnectionHandle {
            id,
            registry: Arc::clone(self),
            in_flight: Default::default(),
            connected: Instant::now(),
            acked_generation: [0; ResourceType::COUNT],
        }
    }

    pub fn connections(&self) -> Vec<ConnectionStatus> {
        self.lock().values().cloned().collect()
    }

    fn update(&self, id: u64, ty: ResourceType, f: impl FnOnce(&mut TypeStatus)) {
        if let Some(c) = self.lock().get_mut(&id) {
            f(c.types.entry(ty.short()).or_default());
        }
    }
}

/// Most responses in flight per type that an ACK or NACK can still be matched to.
const IN_FLIGHT: usize = 16;

/// One stream's entry in the registry.
#[derive(Debug)]
pub struct ConnectionHandle {
    pub id: u64,
    registry: Arc<Registry>,
    /// Per type: responses not yet acknowledged.
    in_flight: [VecDeque<InFlight>; ResourceType::COUNT],
    connected: Instant,
    /// Per type: the newest generation whose publish → ACK time was observed.
    acked_generation: [u64; ResourceType::COUNT],
}

#[derive(Debug)]
struct InFlight {
    nonce: String,
    version: String,
    /// The publish this response may carry (the last one before it was sent), when it
    /// happened while this Envoy was connected; the response to a fresh connection measures
    /// the connection, not an edit.
    publish: Option<(u64, Instant)>,
}

/// What a request said about an earlier response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ack { version: String },
    Nack { version: String, error: String },
}

impl ConnectionHandle {
    pub fn sent(
        &mut self,
        ty: ResourceType,
        nonce: &str,
        version: &str,
        resources: usize,
        bytes: usize,
    ) {
        let queue = &mut self.in_flight[ty.index()];
        if queue.len() == IN_FLIGHT {
            queue.pop_front();
        }
        let publish = metrics()
            .last_publish()
            .filter(|(_, at)| *at >= self.connected);
        queue.push_back(InFlight {
            nonce: nonce.to_string(),
            version: version.to_string(),
            publish,
        });
        metrics()
            .xds_responses
            .get_or_create(&TypeLabel {
                type_url: ty.type_url(),
            })
            .inc();
        let c = &self.registry.counters;
        c.responses.fetch_add(1, Ordering::Relaxed);
        c.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.registry.update(self.id, ty, |t| {
            t.sent_version = Some(version.to_string());
            t.sent_at_unix = Some(now_unix());
            t.resources = resources;
        });
    }

    /// Records what a reconnecting client says it already holds, when that is current and so
    /// nothing is sent: for status it has this version, sent and acknowledged before.
    pub fn holds(&mut self, ty: ResourceType, version: &str, resources: usize) {
        self.registry.update(self.id, ty, |t| {
            t.sent_version = Some(version.to_string());
            t.acked_version = Some(version.to_string());
            t.resources = resources;
        });
    }

    /// Records an ACK or NACK of the response with this nonce. Returns what it was, or None
    /// when the nonce is unknown (too old, or from another stream).
    pub fn replied(
        &mut self,
        ty: ResourceType,
        nonce: &str,
        error: Option<String>,
    ) -> Option<Reply> {
        let queue = &mut self.in_flight[ty.index()];
        let at = queue.iter().position(|f| f.nonce == nonce)?;
        let InFlight {
            nonce: _,
            version,
            publish,
        } = queue.drain(..=at).next_back()?;
        let c = &self.registry.counters;
        let label = TypeLabel {
            type_url: ty.type_url(),
        };
        let reply = match error {
            None => {
                c.acks.fetch_add(1, Ordering::Relaxed);
                metrics().xds_acks.get_or_create(&label).inc();
                // Once per generation and type: later responses of the same generation (a
                // route table asked for after its listener) add nothing about the edit.
                let acked = &mut self.acked_generation[ty.index()];
                if let Some((generation, published)) = publish
                    && generation > *acked
                {
                    *acked = generation;
                    metrics()
                        .xds_publish_to_ack
                        .get_or_create(&label)
                        .observe(published.elapsed().as_secs_f64());
                }
                Reply::Ack { version }
            }
            Some(error) => {
                c.nacks.fetch_add(1, Ordering::Relaxed);
                metrics().xds_nacks.get_or_create(&label).inc();
                Reply::Nack { version, error }
            }
        };
        let recorded = reply.clone();
        self.registry.update(self.id, ty, move |t| match recorded {
            Reply::Ack { version } => {
                t.acked_version = Some(version);
                t.acked_at_unix = Some(now_unix());
            }
            Reply::Nack { version, error } => {
                t.nacks += 1;
                t.last_nack = Some(Nack {
                    version,
                    error,
                    at_unix: now_unix(),
                });
            }
        });
        Some(reply)
    }

    /// An Envoy that reconnects already holding a version (SotW `version_info`) counts as
    /// having acknowledged it.
    pub fn already_has(&mut self, ty: ResourceType, version: &str, resources: usize) {
        self.registry.update(self.id, ty, |t| {
            t.sent_version = Some(version.to_string());
            t.acked_version = Some(version.to_string());
            t.acked_at_unix = Some(now_unix());
            t.resources = resources;
        });
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}
