//! Turning the config file into a published generation. A reload that fails at any stage
//! publishes nothing: the last good generation keeps serving, and the failure is logged with
//! every diagnostic, counted, and shown in status. Each stage's duration (read, validate,
//! translate, publish) goes to the `sluice_config_reload_duration_seconds` histogram.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::{error, info, warn};

use super::state::{Published, State};
use crate::config::{self, Model};
use crate::document::Severity;
use crate::envoy::{self, Earlier, EncodedResource, Kind};
use crate::hashing::content_hash;
use crate::ir::{self, Ir};
use crate::telemetry::metrics::metrics;
use crate::xds::status::now_unix;
use crate::xds::{Resource, ResourceType, Snapshot};

/// Builds a snapshot for a validated model.
pub fn snapshot_for(model: &Model, generation: u64) -> Snapshot {
    snapshot_reusing(model, generation, &Snapshot::default())
}

/// The resources of an earlier snapshot, for encoding only what changed.
struct EarlierSnapshot<'a>(&'a Snapshot);

impl Earlier for EarlierSnapshot<'_> {
    fn bytes(&self, kind: Kind, name: &str, version: &str) -> Option<Bytes> {
        let ty = match kind {
            Kind::Listener => ResourceType::Listener,
            Kind::RouteConfig => ResourceType::RouteConfiguration,
            Kind::Scope => ResourceType::ScopedRoute,
            Kind::Cluster => ResourceType::Cluster,
            Kind::Secret => ResourceType::Secret,
        };
        self.0
            .resources(ty)
            .get(name)
            .filter(|r| &*r.version == version)
            .map(|r| r.bytes.clone())
    }
}

/// As `snapshot_for`, taking unchanged resources' bytes from `previous` instead of encoding
/// them again (the result is the same).
pub fn snapshot_reusing(model: &Model, generation: u64, previous: &Snapshot) -> Snapshot {
    let ir: Ir = ir::build(model);
    // A certificate rotation changes the files, not the config: the secret's version follows
    // the files' contents too, so a rotation is re-announced.
    let secret_files: Vec<(String, String)> = ir
        .secrets
        .iter()
        .map(|s| (s.name.clone(), files_hash(&[&s.files.cert, &s.files.key])))
        .collect();
    let encoded = envoy::encode_reusing(ir, &EarlierSnapshot(previous));
    let to_resource = |e: EncodedResource| Resource {
        name: e.name.into(),
        version: e.version.into(),
        bytes: e.bytes,
    };
    let mut resources: Vec<(ResourceType, Resource)> = Vec::new();
    resources.extend(
        encoded
            .listeners
            .into_iter()
            .map(|e| (ResourceType::Listener, to_resource(e))),
    );
    resources.extend(
        encoded
            .route_configs
            .into_iter()
            .map(|e| (ResourceType::RouteConfiguration, to_resource(e))),
    );
    resources.extend(
        encoded
            .scopes
            .into_iter()
            .map(|e| (ResourceType::ScopedRoute, to_resource(e))),
    );
    resources.extend(
        encoded
            .clusters
            .into_iter()
            .map(|e| (ResourceType::Cluster, to_resource(e))),
    );
    resources.extend(encoded.secrets.into_iter().map(|e| {
        let mut r = to_resource(e);
        if let Some((_, files)) = secret_files.iter().find(|(name, _)| **name == *r.name) {
            r.version = content_hash(&(&*r.version, files)).into();
        }
        (ResourceType::Secret, r)
    }));
    Snapshot::new(generation, resources)
}

fn files_hash(paths: &[&PathBuf]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for p in paths {
        // An unreadable file hashes as empty; Envoy reports the real problem when it loads it.
        std::fs::read(p).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

pub enum Outcome {
    Published(u64),
    Unchanged,
    Failed,
}

/// Reloads the config file into `state`.
pub fn reload(state: &Arc<State>, path: &Path) -> Outcome {
    let started = std::time::Instant::now();
    let stage = |name: &'static str, since: std::time::Instant| {
        metrics().observe_stage(name, since.elapsed());
        std::time::Instant::now()
    };
    let loaded = match std::fs::read(path) {
        Ok(bytes) => {
            let validating = stage("read", started);
            // YAML parsing and validation are one pass; routes whose text did not change
            // are taken as validated at the last reload.
            let (loaded, reuse) = state
                .loader
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .load(path, &bytes);
            stage("validate", validating);
            tracing::debug!(
                reused = reuse.reused,
                validated = reuse.validated,
                whole = reuse.whole,
                "config validated"
            );
            loaded
        }
        // Unreadable: `load` words the diagnostic as every other path reports it.
        Err(_) => config::load(path),
    };
    let model = match loaded {
        Ok(model) => model,
        Err(rejected) => {
            for d in &rejected.diagnostics {
                match d.severity {
                    Severity::Error => error!(diagnostic = %d, "config rejected"),
                    Severity::Warning => warn!(diagnostic = %d, "config warning"),
                }
            }
            error!(errors = rejected.errors, file = %path.display(), "config reload failed; still serving the last good config");
            let mut status = state.reloads.lock().unwrap_or_else(|p| p.into_inner());
            status.failed += 1;
            status.last_failure_unix = Some(now_unix());
            status.last_error = Some(
                rejected
                    .diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            );
            return Outcome::Failed;
        }
    };
    for w in &model.warnings {
        warn!(diagnostic = %w, "config warning");
    }
    let translating = std::time::Instant::now();
    let current = state.published();
    let generation = current.snapshot.generation + 1;
    let snapshot = snapshot_reusing(&model, generation, &current.snapshot);
    // Settings only sluice reads (none of Envoy's resources show them) must still take effect.
    let same = snapshot.same_content(&current.snapshot)
        && model.global.authorize_log_fields == current.model.global.authorize_log_fields;
    let publishing = stage("translate", translating);
    let mut status = state.reloads.lock().unwrap_or_else(|p| p.into_inner());
    status.last_error = None;
    status.last_success_unix = Some(now_unix());
    if same {
        status.unchanged += 1;
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "config reloaded: nothing changed, nothing sent"
        );
        return Outcome::Unchanged;
    }
    status.succeeded += 1;
    status.generation = generation;
    drop(status);
    let listeners = snapshot.changed_since(&current.snapshot, ResourceType::Listener);
    if !listeners.is_empty() {
        // Route edits never get here; listener settings, and a switch between one route table
        // and per-host tables (the first or last wildcard route), do.
        warn!(
            ?listeners,
            "listener settings changed: Envoy replaces these listeners and drains their open connections gracefully (sluice_drain_time)"
        );
    }
    let routes = model.routes.len();
    let published = Published::new(snapshot, model, &state.generated_signer);
    metrics().mark_publish(generation);
    state.publish(published);
    stage("publish", publishing);
    info!(
        generation,
        routes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "config reloaded and published"
    );
    Outcome::Published(generation)
}
