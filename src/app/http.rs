//! sluice's own HTTP endpoints, served on the gRPC port beside the gRPC services:
//! `/.sluice/status` (JSON: connected Envoys, reloads, xDS and ext_authz counters), `/metrics`,
//! the JWKS and well-known documents, and the stream probe.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as Extract;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use super::state::{ReloadStatus, State};
use crate::authz::AuthzCounters;
use crate::authz::service::AuthzCountersView;
use crate::telemetry;
use crate::xds::Registry;
use crate::xds::status::{ConnectionStatus, CountersView};

pub const STATUS_PATH: &str = "/.sluice/status";

#[derive(Clone)]
pub struct Endpoints {
    pub state: Arc<State>,
    pub registry: Arc<Registry>,
    pub authz: Arc<AuthzCounters>,
}

#[derive(Serialize)]
pub struct StatusReport {
    pub version: String,
    pub reload: ReloadStatusView,
    pub counters: CountersView,
    pub authz: AuthzCountersView,
    pub envoys: Vec<ConnectionStatus>,
}

pub type ReloadStatusView = ReloadStatus;

pub fn report(endpoints: &Endpoints) -> StatusReport {
    StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        reload: endpoints.state.reload_status(),
        counters: endpoints.registry.counters.view(),
        authz: endpoints.authz.view(),
        envoys: endpoints.registry.connections(),
    }
}

pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route("/metrics", get(metrics))
        .route(JWKS_PATH, get(jwks))
        .route(WELL_KNOWN_PATH, get(well_known))
        .route(
            crate::ir::names::STREAM_PROBE_PATH,
            get(super::probe::stream_probe),
        )
        .with_state(endpoints)
}

/// Where upstreams fetch the keys that verify `x-pomerium-jwt-assertion` (on every route host,
/// through Envoy).
pub const JWKS_PATH: &str = "/.well-known/pomerium/jwks.json";
pub const WELL_KNOWN_PATH: &str = "/.well-known/pomerium";

fn public_json(value: serde_json::Value) -> impl IntoResponse {
    (
        [
            (axum::http::header::CACHE_CONTROL, "max-age=60"),
            (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        axum::Json(value),
    )
}

async fn jwks(Extract(endpoints): Extract<Endpoints>) -> impl IntoResponse {
    public_json(endpoints.state.published().authz.signer.jwks())
}

async fn well_known(
    Extract(endpoints): Extract<Endpoints>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let authenticate = endpoints
        .state
        .published()
        .model
        .global
        .authenticate_service_url
        .clone();
    public_json(serde_json::json!({
        "issuer": format!("https://{host}/"),
        "jwks_uri": format!("https://{host}{JWKS_PATH}"),
        "authentication_callback_endpoint": authenticate.map(|a| format!("{}/oauth2/callback", a.trim_end_matches('/'))),
    }))
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
