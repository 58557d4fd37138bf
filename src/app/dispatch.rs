//! Sends Envoy's ext_authz Checks straight to the Authorization service and every other
//! request (ADS, status, health, sign-in) through the router.
//!
//! Why not the router for Checks too: a Check is one small unary call per request Envoy
//! proxies, and the router's path matching, boxed route service and response mapping were
//! in 5 % of the stacks of the core answering them in a profile. One string comparison
//! replaces them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use tower::Service;

use crate::authz::server::{CheckServer, SERVICE_NAME};

/// The path prefix of the Authorization service's methods, `/envoy.service.auth.v3.Authorization/`.
fn is_authorization(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(SERVICE_NAME))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The service each connection of sluice's gRPC port runs.
#[derive(Clone)]
pub struct Dispatch {
    pub authz: CheckServer,
    pub rest: Router,
}

impl Service<Request<Incoming>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready: tonic's generated servers and axum's router say so.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Answer {
        if is_authorization(request.uri().path()) {
            Answer::Check(self.authz.call(request))
        } else {
            Answer::Other(Box::pin(self.rest.call(request)))
        }
    }
}

type Boxed<B> = Pin<Box<dyn Future<Output = Result<Response<B>, Infallible>> + Send + 'static>>;

/// The answer to one request. A Check's future is the one tonic boxed already (no second
/// allocation on the hot path); the router's is boxed here so both variants are small.
pub enum Answer {
    Check(Boxed<tonic::body::Body>),
    Other(Boxed<Body>),
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Check(future) => future
                .as_mut()
                .poll(cx)
                .map(|answered| answered.map(|response| response.map(Body::new))),
            Answer::Other(future) => future.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_authorization;

    #[test]
    fn only_the_authorization_service_goes_direct() {
        assert!(is_authorization(
            "/envoy.service.auth.v3.Authorization/Check"
        ));
        assert!(is_authorization(
            "/envoy.service.auth.v3.Authorization/Other"
        ));
        for other in [
            "/envoy.service.auth.v3.AuthorizationX/Check",
            "/envoy.service.auth.v3.Authorization",
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
            "/.sluice/status",
            "/",
            "",
        ] {
            assert!(!is_authorization(other), "{other}");
        }
    }
}
