//! Wiring: load the config, publish the first generation, serve gRPC (ADS) and sluice's HTTP
//! endpoints on `grpc_address`, metrics on `metrics_address`, reload on change, stop on signal.

pub mod http;
mod probe;
pub mod reload;
mod serve;
pub mod state;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use self::state::{Published, State};
use crate::authz::signer::Signer;
use crate::authz::tokens::IdpTokens;
use crate::authz::{AuthzCounters, AuthzService, IndexSource};
use crate::config::Model;
use crate::xds::{AdsServer, Registry, SnapshotSource};
use envoy_types::ext_authz::v3::pb::AuthorizationServer;

/// How long open streams get to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub async fn serve(config: PathBuf, model: Model) -> anyhow::Result<ExitCode> {
    let grpc_address = model.global.grpc_address;
    let metrics_address = model.global.metrics_address;
    let snapshot = reload::snapshot_for(&model, 1);
    info!(
        routes = model.routes.len(),
        bytes = snapshot.total_bytes(),
        "config loaded"
    );
    let generated = Arc::new(Signer::generate());
    let http_client = idp_client(model.global.certificate_authority_file.as_deref())?;
    let state = State::new(
        Published::new(snapshot, model, &generated),
        generated,
        config.clone(),
    );
    let registry = Arc::new(Registry::default());
    let authz_counters = Arc::new(AuthzCounters::default());
    let source: Arc<dyn SnapshotSource> = Arc::clone(&state) as Arc<dyn SnapshotSource>;
    let endpoints = http::Endpoints {
        state: Arc::clone(&state),
        registry: Arc::clone(&registry),
        authz: Arc::clone(&authz_counters),
    };

    let authz = AuthzService {
        source: Arc::clone(&state) as Arc<dyn IndexSource>,
        identities: Arc::new(IdpTokens::new(http_client)),
        counters: Arc::clone(&authz_counters),
    };
    let app = tonic::service::Routes::new(AdsServer::new(source, Arc::clone(&registry)))
        .add_service(AuthorizationServer::new(authz))
        .into_axum_router()
        .merge(http::router(endpoints.clone()));

    let listener = tokio::net::TcpListener::bind(grpc_address)
        .await
        .with_context(|| format!("cannot listen on grpc_address {grpc_address}"))?;
    info!(%grpc_address, "serving ADS (state of the world and delta), ext_authz and {}", http::STATUS_PATH);

    if let Some(addr) = metrics_address {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on metrics_address {addr}"))?;
        info!(metrics_address = %addr, "serving /metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, http::router(endpoints)).await {
                warn!(error = %e, "metrics server stopped");
            }
        });
    }

    tokio::spawn(watch::run(Arc::clone(&state), config));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve::serve(listener, app, async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(server);
    stop_signal().await;
    info!("stopping");
    let _ = stop_tx.send(());
    // ADS streams never end by themselves; give them a moment, then go.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    Ok(ExitCode::SUCCESS)
}

/// The client sluice fetches IdP discovery documents and keys with: short timeouts, no
/// redirects (the URLs come from the IdP's own documents), the system's CAs plus
/// `certificate_authority_file`.
fn idp_client(ca_file: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM bundle", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
