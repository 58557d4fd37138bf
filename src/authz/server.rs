//! The gRPC server of `envoy.service.auth.v3.Authorization`: tonic's unary machinery with a
//! codec that decodes [`wire::CheckRequest`] instead of envoy-types' full message.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use envoy_types::ext_authz::v3::pb::CheckResponse;
use http::{Request, Response};
use http_body::Body;
use tonic::body::Body as GrpcBody;
use tonic::codegen::StdError;
use tonic::server::{Grpc, UnaryService};
use tonic_prost::ProstCodec;
use tower::Service;

use super::service::AuthzService;
use super::wire;

/// The service's gRPC name, as Envoy's `grpc_service` calls it.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

type Answer = Pin<Box<dyn Future<Output = Result<Response<GrpcBody>, Infallible>> + Send>>;

/// Answers `Check`; any other method of the service gets `UNIMPLEMENTED`, as from a
/// generated server.
#[derive(Clone)]
pub struct CheckServer {
    service: Arc<AuthzService>,
}

impl CheckServer {
    pub fn new(service: AuthzService) -> Self {
        CheckServer {
            service: Arc::new(service),
        }
    }
}

/// One Check, for tonic's unary handler.
struct Check(Arc<AuthzService>);

impl UnaryService<wire::CheckRequest> for Check {
    type Response = CheckResponse;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<CheckResponse>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<wire::CheckRequest>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move {
            if request.get_ref().check_text().is_err() {
                return Err(tonic::Status::invalid_argument(
                    "CheckRequest: a text field is not UTF-8",
                ));
            }
            let answer = service.check_request(request.get_ref()).await;
            Ok(tonic::Response::new(answer))
        })
    }
}

impl<B> Service<Request<B>> for CheckServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = Response<GrpcBody>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Answer {
        if request.uri().path() != CHECK_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let check = Check(Arc::clone(&self.service));
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<CheckResponse, wire::CheckRequest>::default());
            Ok(grpc.unary(check, request).await)
        })
    }
}

/// gRPC's answer to a method the service does not have: status 12 in the headers, no body.
fn unimplemented() -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody::default());
    let headers = response.headers_mut();
    headers.insert(
        tonic::Status::GRPC_STATUS,
        (tonic::Code::Unimplemented as i32).into(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    response
}
