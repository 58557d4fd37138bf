//! What sluice currently serves: one atomically swapped value holding both the xDS snapshot
//! and the config it came from, so Envoy and ext_authz never see different generations.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

use super::translate::Translator;
use crate::authz::signer::Signer;
use crate::authz::{Index, IndexSource};
use crate::config::Model;
use crate::config::validate::Incremental;
use crate::xds::{Snapshot, SnapshotSource};

pub struct Published {
    pub snapshot: Arc<Snapshot>,
    pub model: Arc<Model>,
    pub authz: Arc<Index>,
}

impl Published {
    /// `generated` signs assertions when the config names no `signing_key`.
    pub fn new(snapshot: Snapshot, model: Model, generated: &Arc<Signer>) -> Self {
        Self::after(snapshot, model, generated, None)
    }

    /// The generation after `previous`, reusing what of its index still holds.
    pub fn after(
        snapshot: Snapshot,
        model: Model,
        generated: &Arc<Signer>,
        previous: Option<&Published>,
    ) -> Self {
        let signer = match &model.global.signing_key {
            // Validation checked that the key parses; fall back rather than stop serving.
            Some(pem) => Signer::from_pem(pem.expose())
                .map(Arc::new)
                .unwrap_or_else(|_| Arc::clone(generated)),
            None => Arc::clone(generated),
        };
        let model = Arc::new(model);
        let authz = Arc::new(Index::reusing(
            Arc::clone(&model),
            signer,
            previous.map(|p| &*p.authz),
        ));
        Published {
            snapshot: Arc::new(snapshot),
            model,
            authz,
        }
    }
}

/// The outcome of reloads, for `sluice status` and metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReloadStatus {
    pub config_file: PathBuf,
    pub generation: u64,
    pub succeeded: u64,
    /// Reloads whose result equalled what was already served (nothing was sent).
    pub unchanged: u64,
    pub failed: u64,
    pub last_success_unix: Option<u64>,
    pub last_failure_unix: Option<u64>,
    /// Every diagnostic of the last failed reload, or None once a later reload succeeded.
    pub last_error: Option<Vec<String>>,
}

pub struct State {
    current: ArcSwap<Published>,
    /// Signs assertions when the config names no `signing_key`; kept across reloads.
    pub generated_signer: Arc<Signer>,
    changed: watch::Sender<u64>,
    pub reloads: Mutex<ReloadStatus>,
    /// The config loader, which keeps what it validated for the next reload to reuse.
    pub loader: Mutex<Incremental>,
    /// The translator, which keeps what it built per host for the next reload to reuse.
    pub translator: Mutex<Translator>,
}

impl State {
    pub fn new(
        published: Published,
        generated_signer: Arc<Signer>,
        config_file: PathBuf,
        (loader, translator): (Incremental, Translator),
    ) -> Arc<Self> {
        let generation = published.snapshot.generation;
        Arc::new(State {
            current: ArcSwap::from_pointee(published),
            generated_signer,
            changed: watch::Sender::new(generation),
            reloads: Mutex::new(ReloadStatus {
                config_file,
                generation,
                ..Default::default()
            }),
            loader: Mutex::new(loader),
            translator: Mutex::new(translator),
        })
    }

    pub fn published(&self) -> Arc<Published> {
        self.current.load_full()
    }

    /// Swaps in a new generation and wakes every stream.
    pub fn publish(&self, published: Published) {
        let generation = published.snapshot.generation;
        self.current.store(Arc::new(published));
        self.changed.send_replace(generation);
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl SnapshotSource for State {
    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.load().snapshot)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl IndexSource for State {
    fn index(&self) -> Arc<Index> {
        Arc::clone(&self.current.load().authz)
    }
}
