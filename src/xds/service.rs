//! The gRPC service `envoy.service.discovery.v3.AggregatedDiscoveryService`, wired like
//! tonic's generated servers but with sluice's codec (see `wire`).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::sync::mpsc;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::NamedService;
use tonic::{Status, Streaming};

use super::grpc_body::GrpcBody;
use super::snapshot::SnapshotSource;
use super::status::Registry;
use super::stream::{STREAM_QUEUE, Shared};
use super::wire::{DeltaResponse, RequestDecoder, SotwResponse, WireMessage};
use super::{delta, sotw};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Discovery requests are small, but a NACK carries Envoy's error text; allow plenty.
const MAX_REQUEST_BYTES: usize = 32 << 20;

#[derive(Clone)]
pub struct AdsServer {
    shared: Shared,
}

impl AdsServer {
    pub fn new(source: Arc<dyn SnapshotSource>, registry: Arc<Registry>) -> Self {
        AdsServer {
            shared: Shared { source, registry },
        }
    }
}

impl NamedService for AdsServer {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<B> tower::Service<http::Request<B>> for AdsServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        let response = match req.uri().path() {
            SOTW_PATH => {
                let requests = Streaming::new_request(
                    RequestDecoder::<DiscoveryRequest>::default(),
                    req.into_body(),
                    None,
                    Some(MAX_REQUEST_BYTES),
                );
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                tokio::spawn(sotw::run(shared, requests, tx));
                grpc_response(GrpcBody::<SotwResponse>::new(rx))
            }
            DELTA_PATH => {
                let requests = Streaming::new_request(
                    RequestDecoder::<DeltaDiscoveryRequest>::default(),
                    req.into_body(),
                    None,
                    Some(MAX_REQUEST_BYTES),
                );
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                tokio::spawn(delta::run(shared, requests, tx));
                grpc_response(GrpcBody::<DeltaResponse>::new(rx))
            }
            _ => Status::unimplemented("no such method").into_http(),
        };
        Box::pin(async move { Ok(response) })
    }
}

fn grpc_response<R: WireMessage + Unpin + Send + 'static>(
    body: GrpcBody<R>,
) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}
