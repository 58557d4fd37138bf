//! Reload triggers: changes to the config file (written in place, replaced by an atomic
//! rename, or swapped by symlink as Kubernetes ConfigMaps do), changes to the certificate files
//! it names, and SIGHUP. Bursts of file events are debounced into one reload.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::reload::reload;
use super::state::State;

/// Editors and ConfigMap updates touch a file several times; wait for quiet before reloading.
/// The events of one save (truncate, write, close; or write a temporary file and rename it;
/// or Kubernetes' new folder and symlink swap) arrive within a millisecond or two of each
/// other, so 10 ms of quiet covers them with room to spare and adds 10 ms, not 50, to every
/// edit's way to Envoy. A writer slower than that at worst gets one reload of a half-written
/// file, which is rejected (the last good config keeps serving) and followed by the reload of
/// the finished one.
const DEBOUNCE: Duration = Duration::from_millis(10);

/// The folders to watch and the file names in them that matter.
#[derive(Default, PartialEq, Eq)]
struct Targets {
    dirs: BTreeSet<PathBuf>,
    names: BTreeSet<OsString>,
}

fn targets(config: &Path, state: &State) -> Targets {
    let mut t = Targets::default();
    let mut add = |file: &Path| {
        if let (Some(dir), Some(name)) = (file.parent(), file.file_name()) {
            t.dirs.insert(if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir.to_path_buf()
            });
            t.names.insert(name.to_os_string());
        }
    };
    let model = Arc::clone(&state.published().model);
    // Pomerium's `config_hot_reload: false`: reload on SIGHUP only.
    if !model.global.runtime_flags.get("config_hot_reload") {
        return t;
    }
    add(config);
    for pair in &model.global.certificates {
        add(&pair.cert);
        add(&pair.key);
    }
    t
}

/// Kubernetes swaps a `..data` symlink (and `..<timestamp>` folders) beside the files.
fn relevant(event: &notify::Event, names: &BTreeSet<OsString>) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event
        .paths
        .iter()
        .filter_map(|p| p.file_name())
        .any(|name| names.contains(name) || name.to_string_lossy().starts_with(".."))
}

/// Starts watching what the config names and listening for SIGHUP before it returns, so that
/// an edit or a signal that comes once sluice answers (its readiness) is never missed, and
/// SIGHUP never meets its default action (exit). The returned loop reloads on each change.
pub fn start(state: Arc<State>, config: PathBuf) -> impl Future<Output = ()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let names: Arc<Mutex<BTreeSet<OsString>>> = Arc::default();
    let filter = Arc::clone(&names);
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let names = filter.lock().unwrap_or_else(|p| p.into_inner());
                if relevant(&event, &names) {
                    let _ = tx.send(());
                }
            }
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch files; reload with SIGHUP instead");
                None
            }
        };
    let mut watching = Targets::default();
    // (Re)watches what the current config names.
    let mut rewatch = {
        let (state, config) = (Arc::clone(&state), config.clone());
        move || {
            let wanted = targets(&config, &state);
            if wanted == watching {
                return;
            }
            if let Some(w) = watcher.as_mut() {
                for dir in watching.dirs.difference(&wanted.dirs) {
                    let _ = w.unwatch(dir);
                }
                for dir in wanted.dirs.difference(&watching.dirs) {
                    if let Err(e) = w.watch(dir, RecursiveMode::NonRecursive) {
                        warn!(dir = %dir.display(), error = %e, "cannot watch folder");
                    }
                }
            }
            *names.lock().unwrap_or_else(|p| p.into_inner()) = wanted.names.clone();
            watching = wanted;
        }
    };
    rewatch();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    async move {
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                    // Quiet period: keep absorbing events until none arrives for DEBOUNCE.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                    info!(file = %config.display(), "config files changed; reloading");
                }
                _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {
                    info!("SIGHUP: reloading");
                }
            }
            let (state, config) = (Arc::clone(&state), config.clone());
            // Parsing and translating a large config is CPU work; keep it off the async threads.
            let _ = tokio::task::spawn_blocking(move || reload(&state, &config)).await;
            // The new config may name other certificate files.
            rewatch();
        }
    }
}
