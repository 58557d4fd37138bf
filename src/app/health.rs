//! `/healthz` (the process answers) and `/readyz` (a snapshot is published and, with a managed
//! Envoy, that Envoy is LIVE and has acknowledged everything it was sent), for load balancers,
//! Kubernetes probes and scripts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use super::state::State;
use crate::xds::Registry;

pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";

/// The managed Envoy readiness waits for.
#[derive(Clone, Debug)]
pub struct ManagedEnvoy {
    pub admin: SocketAddr,
    pub node_id: String,
}

#[derive(Clone)]
pub struct Health {
    pub state: Arc<State>,
    pub registry: Arc<Registry>,
    pub envoy: Option<ManagedEnvoy>,
    /// Set once a stop signal arrived: draining is not ready.
    pub stopping: Arc<AtomicBool>,
    pub client: reqwest::Client,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    /// What is missing, one short sentence each (empty when ready).
    missing: Vec<String>,
    generation: u64,
    envoy: EnvoyReadiness,
}

#[derive(Serialize)]
struct EnvoyReadiness {
    mode: &'static str,
    /// What Envoy's admin `/ready` said (`LIVE`, `PRE_INITIALIZING`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// Per type: whether the version last sent was acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    acked: Option<std::collections::BTreeMap<&'static str, bool>>,
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .with_state(health)
}

async fn healthz() -> impl IntoResponse {
    "ok\n"
}

async fn readyz(Extract(health): Extract<Health>) -> impl IntoResponse {
    let readiness = check(&health).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness))
}

async fn check(health: &Health) -> Readiness {
    let mut missing = Vec::new();
    if health.stopping.load(Ordering::Relaxed) {
        missing.push("sluice is stopping".to_string());
    }
    // The first snapshot is published before the server starts, so a generation is always
    // there; it is reported so a reader can tell reloads apart.
    let generation = health.state.published().snapshot.generation;
    let envoy = match &health.envoy {
        None => EnvoyReadiness {
            mode: "external",
            state: None,
            acked: None,
        },
        Some(managed) => {
            let state = envoy_state(&health.client, managed.admin).await;
            if state.as_deref() != Some("LIVE") {
                missing.push(format!(
                    "Envoy is not LIVE yet (admin /ready: {})",
                    state.as_deref().unwrap_or("no answer")
                ));
            }
            let acked = acked(&health.registry, &managed.node_id);
            match &acked {
                None => missing.push("Envoy has no ADS stream to sluice yet".into()),
                Some(types) if types.is_empty() => {
                    missing.push("Envoy has not been sent its config yet".into())
                }
                Some(types) => {
                    let pending: Vec<&str> = types
                        .iter()
                        .filter(|(_, ok)| !**ok)
                        .map(|(t, _)| *t)
                        .collect();
                    if !pending.is_empty() {
                        missing.push(format!(
                            "Envoy has not acknowledged the current {}",
                            pending.join(", ")
                        ));
                    }
                }
            }
            EnvoyReadiness {
                mode: "managed",
                state,
                acked,
            }
        }
    };
    Readiness {
        ready: missing.is_empty(),
        missing,
        generation,
        envoy,
    }
}

async fn envoy_state(client: &reqwest::Client, admin: SocketAddr) -> Option<String> {
    let reply = client
        .get(format!("http://{admin}/ready"))
        .send()
        .await
        .ok()?;
    Some(reply.text().await.ok()?.trim().to_string())
}

/// Per type the managed Envoy was sent: whether it acknowledged the version sent last. None
/// when that Envoy has no stream (the newest one counts when it reconnected).
fn acked(
    registry: &Registry,
    node_id: &str,
) -> Option<std::collections::BTreeMap<&'static str, bool>> {
    let connection = registry
        .connections()
        .into_iter()
        .filter(|c| c.node_id == node_id)
        .max_by_key(|c| c.id)?;
    Some(
        connection
            .types
            .iter()
            .filter(|(_, t)| t.sent_version.is_some())
            .map(|(name, t)| (*name, t.acked_version == t.sent_version))
            .collect(),
    )
}
