//! sluice's own HTTP endpoints, served on the gRPC port beside the gRPC services:
//! `/.sluice/status` (JSON: connected Envoys, reloads, counters) and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as Extract;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use super::state::{ReloadStatus, State};
use crate::telemetry;
use crate::xds::Registry;
use crate::xds::status::{ConnectionStatus, CountersView};

pub const STATUS_PATH: &str = "/.sluice/status";

#[derive(Clone)]
pub struct Endpoints {
    pub state: Arc<State>,
    pub registry: Arc<Registry>,
}

#[derive(Serialize)]
pub struct StatusReport {
    pub version: String,
    pub reload: ReloadStatusView,
    pub counters: CountersView,
    pub envoys: Vec<ConnectionStatus>,
}

pub type ReloadStatusView = ReloadStatus;

pub fn report(endpoints: &Endpoints) -> StatusReport {
    StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        reload: endpoints.state.reload_status(),
        counters: endpoints.registry.counters.view(),
        envoys: endpoints.registry.connections(),
    }
}

pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route("/metrics", get(metrics))
        .with_state(endpoints)
}

async fn status(Extract(endpoints): Extract<Endpoints>) -> impl IntoResponse {
    axum::Json(report(&endpoints))
}

async fn metrics(Extract(endpoints): Extract<Endpoints>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        telemetry::metrics::render(&report(&endpoints)),
    )
}
