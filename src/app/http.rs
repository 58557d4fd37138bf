//! sluice's own HTTP endpoints, served on the gRPC port beside the gRPC services:
//! `/.sluice/status` (JSON: connected Envoys, reloads, xDS and ext_authz counters), `/metrics`
//! (sluice's own) and `/metrics/envoy` (Envoy's, from its admin), the JWKS and well-known
//! documents, and the stream probe.

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
        .route(ENVOY_METRICS_PATH, get(envoy_metrics))
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

async fn metrics(
    Extract(endpoints): Extract<Endpoints>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let (content_type, body) = telemetry::metrics::render(scraped(&endpoints), accept);
    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
}

/// The values metrics read from status at scrape time.
fn scraped(endpoints: &Endpoints) -> telemetry::metrics::Scraped {
    let reload = endpoints.state.reload_status();
    let xds = endpoints.registry.counters.view();
    let authz = endpoints.authz.view();
    telemetry::metrics::Scraped {
        generation: reload.generation,
        reloads_published: reload.succeeded,
        reloads_unchanged: reload.unchanged,
        reloads_failed: reload.failed,
        connected_envoys: endpoints.registry.connections().len() as u64,
        connections_total: xds.connections_total,
        response_bytes_total: xds.bytes_sent,
        checks_total: authz.checks,
        refused_credentials_total: authz.refused_credentials,
        stale_checksum_total: authz.stale_checksum,
    }
}

/// Envoy's own metrics, from its admin's `/stats/prometheus`, beside sluice's.
pub const ENVOY_METRICS_PATH: &str = "/metrics/envoy";

/// How long `/metrics/envoy` waits for Envoy's admin before answering 503.
const ENVOY_ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

static ENVOY_ADMIN_CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(ENVOY_ADMIN_TIMEOUT)
        .connect_timeout(ENVOY_ADMIN_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_default()
});

async fn envoy_metrics(Extract(endpoints): Extract<Endpoints>) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    let admin = endpoints.state.published().model.global.envoy_admin_address;
    let host = crate::config::validate::connect_host(&admin);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("http://{host}:{}/stats/prometheus", admin.port());
    let fetched = async {
        let reply = ENVOY_ADMIN_CLIENT
            .get(&url)
            .send()
            .await?
            .error_for_status()?;
        let content_type = reply
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or(telemetry::metrics::TEXT_CONTENT_TYPE)
            .to_string();
        Ok::<_, reqwest::Error>((content_type, reply.bytes().await?))
    };
    match fetched.await {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => {
            tracing::debug!(%url, error = %e, "Envoy's admin did not answer /stats/prometheus");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Envoy's admin (envoy_admin_address) did not answer\n",
            )
                .into_response()
        }
    }
}
