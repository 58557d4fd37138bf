//! The accept loop of sluice's gRPC port: HTTP/1.1 and HTTP/2 on one port, TCP_NODELAY, an
//! HTTP/2 stream limit sized for Envoy's ext_authz bursts, and a graceful stop.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tracing::warn;

use super::dispatch::Dispatch;

/// Concurrent streams one HTTP/2 connection may carry. Envoy sends every ext_authz check of a
/// worker over one connection, so a burst of stream opens (thousands of SSE clients after a
/// restart) is that many concurrent Checks. hyper's default of 200 made the server refuse the
/// rest, and Envoy answered those requests 503.
pub const MAX_CONCURRENT_STREAMS: u32 = 65_536;

/// After a failed accept (out of descriptors, say), wait this long instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `stop` completes, then lets open connections finish
/// (the caller bounds how long).
pub async fn serve(listener: TcpListener, app: Dispatch, stop: impl Future<Output = ()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Small gRPC frames (Check answers, ACK-sized ADS messages) must leave at once: with
        // Nagle's algorithm on, each would wait ~40 ms for the peer's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-request is normal; nothing to report.
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
}
