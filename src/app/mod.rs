//! Wiring: load the config, publish the first generation, serve gRPC (ADS) and sluice's HTTP
//! endpoints on `grpc_address`, metrics on `metrics_address`, reload on change, run (or not)
//! the managed Envoy, drain and stop on signal.

mod connection;
pub mod envoy;
mod h2_body;
pub mod health;
pub mod http;
mod probe;
pub mod reload;
mod serve;
pub mod state;
pub mod translate;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use self::envoy::{EnvoyMode, Managed};
use self::state::{Published, State};
use self::translate::Translator;
use crate::authn;
use crate::authn::identity::{CookieSessions, Credentials};
use crate::authn::oidc::OidcClient;
use crate::authz::signer::Signer;
use crate::authz::tokens::IdpTokens;
use crate::authz::{AuthzCounters, AuthzService, IndexSource};
use crate::config::Model;
use crate::config::validate::Incremental;
use crate::xds::Snapshot;
use crate::xds::{AdsServer, Registry, SnapshotSource};

/// How long open streams get to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub async fn serve(
    config: PathBuf,
    model: Model,
    loader: Incremental,
    mode: EnvoyMode,
) -> anyhow::Result<ExitCode> {
    // Installed first, so a stop signal during start-up is handled rather than fatal.
    let mut signals = Signals::install()?;
    let binary = envoy_binary(&model, mode)?;
    let grpc_address = model.global.grpc_address;
    let metrics_address = model.global.metrics_address;
    let envoy_admin = model.global.envoy_admin_address;
    // Translated by the translator reloads use, so the first reload reuses this work.
    let mut translator = Translator::new();
    let snapshot = translator.snapshot(&model, 1, &Snapshot::default());
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
        (loader, translator),
    );
    let registry = Arc::new(Registry::default());
    let authz_counters = Arc::new(AuthzCounters::default());
    let source: Arc<dyn SnapshotSource> = Arc::clone(&state) as Arc<dyn SnapshotSource>;
    let endpoints = http::Endpoints {
        state: Arc::clone(&state),
        registry: Arc::clone(&registry),
        authz: Arc::clone(&authz_counters),
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let health = health::Health {
        state: Arc::clone(&state),
        registry: Arc::clone(&registry),
        envoy: binary.as_ref().map(|_| health::ManagedEnvoy {
            admin: envoy::connect_address(&envoy_admin),
            node_id: envoy::MANAGED_NODE_ID.into(),
        }),
        stopping: Arc::clone(&stopping),
        client: envoy::admin_client(),
    };

    let tokens = Arc::new(IdpTokens::new(http_client.clone()));
    let oidc = Arc::new(OidcClient::new(http_client, Arc::clone(&tokens)));
    let authz = AuthzService {
        source: Arc::clone(&state) as Arc<dyn IndexSource>,
        identities: Arc::new(Credentials {
            tokens,
            sessions: Arc::new(CookieSessions::new(Arc::clone(&oidc))),
        }),
        counters: Arc::clone(&authz_counters),
    };
    let sign_in = authn::handlers::Endpoints {
        source: Arc::clone(&state) as Arc<dyn IndexSource>,
        oidc,
    };
    let rest = tonic::service::Routes::new(AdsServer::new(source, Arc::clone(&registry)))
        .into_axum_router()
        .merge(http::router(endpoints.clone()))
        .merge(health::router(health.clone()))
        .merge(authn::handlers::router(sign_in));
    let services = connection::Services {
        authz: Arc::new(authz),
        rest,
    };

    // Watching starts before the port answers: an edit made once sluice is ready is seen.
    let watching = watch::start(Arc::clone(&state), config);
    let listener = tokio::net::TcpListener::bind(grpc_address)
        .await
        .with_context(|| format!("cannot listen on grpc_address {grpc_address}"))?;
    info!(%grpc_address, "serving ADS (state of the world and delta), ext_authz and {}", http::STATUS_PATH);

    if let Some(addr) = metrics_address {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on metrics_address {addr}"))?;
        info!(metrics_address = %addr, "serving /metrics, /healthz and /readyz");
        let router = http::router(endpoints).merge(health::router(health));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, router).await {
                warn!(error = %e, "metrics server stopped");
            }
        });
    }

    tokio::spawn(watching);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve::serve(listener, services, async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(server);

    // Started once sluice listens, so Envoy's first ADS request finds it; from this (the
    // runtime's main) thread, which lives as long as sluice: see `Managed::start`.
    let managed = match &binary {
        Some(path) => Some(Managed::start(&state.published().model, path)?),
        None => None,
    };
    let code = match managed {
        None => {
            signals.recv().await;
            info!("stopping");
            ExitCode::SUCCESS
        }
        Some(mut envoy) => {
            tokio::select! {
                status = envoy.wait() => {
                    envoy.report_exit(&status);
                    ExitCode::FAILURE
                }
                _ = signals.recv() => {
                    stopping.store(true, Ordering::Relaxed);
                    info!("stopping: draining the managed Envoy first (a second signal stops at once)");
                    // sluice keeps serving ext_authz and xDS while Envoy's streams finish.
                    envoy.drain_and_stop(signals.recv()).await;
                    ExitCode::SUCCESS
                }
            }
        }
    };
    info!("stopping sluice's servers");
    let _ = stop_tx.send(());
    // ADS streams never end by themselves; give them a moment, then go.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    Ok(code)
}

/// The Envoy binary to run, or None for an external Envoy.
fn envoy_binary(model: &Model, mode: EnvoyMode) -> anyhow::Result<Option<PathBuf>> {
    if mode == EnvoyMode::External {
        info!(
            "external Envoy: start it with the output of `sluice bootstrap` and `sluice envoy-flags`"
        );
        return Ok(None);
    }
    let lookup = envoy::find_binary(model.global.envoy_binary.as_deref())?;
    match (lookup.found, mode) {
        (Some(path), _) => Ok(Some(path)),
        (None, EnvoyMode::Managed) => Err(envoy::EnvoyError::NotFound {
            looked: lookup.looked,
        }
        .into()),
        (None, _) => {
            info!(
                looked = %lookup.looked.join(", "),
                "no Envoy binary found, so Envoy runs externally: start it with the output of `sluice bootstrap`; for a managed Envoy, install one (`bash scripts/install-envoy.sh`) or set `envoy_binary` or SLUICE_ENVOY"
            );
            Ok(None)
        }
    }
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

/// SIGTERM and SIGINT, as one stream of stop requests.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install a SIGINT handler")?,
        })
    }

    async fn recv(&mut self) {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        info!(signal = name, "stop signal");
    }
}
