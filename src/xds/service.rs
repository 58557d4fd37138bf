//! The gRPC service `envoy.service.discovery.v3.AggregatedDiscoveryService`, wired like
//! tonic's generated servers but with sluice's codec (see `wire`).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::sync::{Semaphore, mpsc};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::outbound::Outbound;
use super::snapshot::SnapshotSource;
use super::status::Registry;
use super::stream::{LARGE_IN_FLIGHT, STREAM_QUEUE, Shared};
use super::wire::{AdsCodec, DeltaResponse, SotwResponse};
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
            shared: Shared {
                source,
                registry,
                large: Arc::new(Semaphore::new(LARGE_IN_FLIGHT)),
            },
        }
    }
}

impl NamedService for AdsServer {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

struct SotwMethod(Shared);

impl StreamingService<DiscoveryRequest> for SotwMethod {
    type Response = SotwResponse;
    type ResponseStream = Outbound<SotwResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        tokio::spawn(sotw::run(self.0.clone(), request.into_inner(), tx));
        let stream = Outbound::new(rx, Arc::clone(&self.0.large));
        Box::pin(async move { Ok(Response::new(stream)) })
    }
}

struct DeltaMethod(Shared);

impl StreamingService<DeltaDiscoveryRequest> for DeltaMethod {
    type Response = DeltaResponse;
    type ResponseStream = Outbound<DeltaResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        tokio::spawn(delta::run(self.0.clone(), request.into_inner(), tx));
        let stream = Outbound::new(rx, Arc::clone(&self.0.large));
        Box::pin(async move { Ok(Response::new(stream)) })
    }
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
        match req.uri().path() {
            SOTW_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(AdsCodec::<DiscoveryRequest, SotwResponse>::default())
                    .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
                Ok(grpc.streaming(SotwMethod(shared), req).await)
            }),
            DELTA_PATH => Box::pin(async move {
                let mut grpc =
                    Grpc::new(AdsCodec::<DeltaDiscoveryRequest, DeltaResponse>::default())
                        .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
                Ok(grpc.streaming(DeltaMethod(shared), req).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}
