//! Turning the config file into a published generation. A reload that fails at any stage
//! publishes nothing: the last good generation keeps serving, and the failure is logged with
//! every diagnostic, counted, and shown in status. Each stage's duration (read, validate,
//! translate, publish) goes to the `sluice_config_reload_duration_seconds` histogram.

use std::path::Path;
use std::sync::Arc;

use tracing::{error, info, warn};

use super::state::{Published, State};
use super::translate;
use crate::config::{self, Model};
use crate::document::Severity;
use crate::ir;
use crate::telemetry::metrics::metrics;
use crate::xds::status::now_unix;
use crate::xds::{ResourceType, Snapshot};

/// Builds a snapshot for a validated model.
pub fn snapshot_for(model: &Model, generation: u64) -> Snapshot {
    snapshot_reusing(model, generation, &Snapshot::default())
}

/// As `snapshot_for`, taking unchanged resources' bytes from `previous` instead of encoding
/// them again (the result is the same).
pub fn snapshot_reusing(model: &Model, generation: u64, previous: &Snapshot) -> Snapshot {
    translate::snapshot_of(ir::build(model), generation, previous)
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
    // Hosts whose routes did not change keep what the last reload built for them.
    let (snapshot, reuse) = state
        .translator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .snapshot_and_reuse(&model, generation, &current.snapshot);
    tracing::debug!(
        hosts_reused = reuse.hosts_reused,
        hosts_built = reuse.hosts_built,
        whole = reuse.whole,
        "config translated"
    );
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
    let published = Published::after(snapshot, model, &state.generated_signer, Some(&current));
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
