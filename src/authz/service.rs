//! The gRPC `envoy.service.auth.v3.Authorization` service Envoy's ext_authz filter calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use super::decide::{Decision, decide};
use super::identity::IdentitySource;
use super::index::IndexSource;
use super::request::RequestView;
use super::{certificate, headers, respond};
use crate::policy::eval::ClientCertificate;

/// Decision counters, for status and metrics.
#[derive(Debug, Default)]
pub struct AuthzCounters {
    pub checks: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub sign_in: AtomicU64,
    pub unknown_route: AtomicU64,
    /// Credentials presented but refused (bad signature, expired, wrong audience, ...).
    pub refused_credentials: AtomicU64,
    /// Envoy asked with a route table older than sluice's current one.
    pub stale_checksum: AtomicU64,
}

pub struct AuthzService {
    pub source: Arc<dyn IndexSource>,
    pub identities: Arc<dyn IdentitySource>,
    pub counters: Arc<AuthzCounters>,
}

/// A point-in-time copy of the counters, for status and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AuthzCountersView {
    pub checks: u64,
    pub allowed: u64,
    pub denied: u64,
    pub sign_in: u64,
    pub unknown_route: u64,
    pub refused_credentials: u64,
    pub stale_checksum: u64,
}

impl AuthzCounters {
    pub fn view(&self) -> AuthzCountersView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AuthzCountersView {
            checks: get(&self.checks),
            allowed: get(&self.allowed),
            denied: get(&self.denied),
            sign_in: get(&self.sign_in),
            unknown_route: get(&self.unknown_route),
            refused_credentials: get(&self.refused_credentials),
            stale_checksum: get(&self.stale_checksum),
        }
    }
}

impl AuthzService {
    pub async fn check_request(&self, request: &CheckRequest) -> CheckResponse {
        let index = self.source.index();
        let view = RequestView::new(request);
        let c = &self.counters;
        c.checks.fetch_add(1, Ordering::Relaxed);
        let found = view.route_id.and_then(|id| index.route(id));
        if let (Some((_, checksum)), Some(sent)) = (found, view.checksum)
            && sent != checksum
        {
            let seen = c.stale_checksum.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at the 1st, 2nd, 4th, 8th, ... occurrence: visible, never a flood.
            if seen.is_power_of_two() {
                warn!(
                    route_id = view.route_id.unwrap_or(""),
                    occurrences = seen,
                    "route checksum from Envoy differs: it is still on an older route table"
                );
            }
        }
        let route = found.map(|(r, _)| r);
        let session = match route {
            Some(route) => match self
                .identities
                .identify(&view, route, &index.model.global)
                .await
            {
                Ok(session) => session,
                Err(e) => {
                    // Refused credentials count as nobody: the policy then asks for sign-in or
                    // denies, exactly as for an anonymous request.
                    c.refused_credentials.fetch_add(1, Ordering::Relaxed);
                    debug!(route_id = %route.id, error = %e, "credentials refused");
                    None
                }
            },
            None => None,
        };
        let cert = certificate::read_for(route, view.certificate);
        let decided = decide(route, &view, session.as_deref(), cert.clone());
        match (&decided.decision, route) {
            (Decision::Allow, Some(route)) => {
                c.allowed.fetch_add(1, Ordering::Relaxed);
                let info = match &cert {
                    ClientCertificate::Valid(info) => Some(info),
                    _ => None,
                };
                let (set, remove) = headers::for_allowed(
                    route,
                    &index.model.global,
                    &view,
                    session.as_deref(),
                    &index.assertions,
                    info,
                );
                return respond::allow(set, remove);
            }
            (Decision::SignIn, _) => c.sign_in.fetch_add(1, Ordering::Relaxed),
            (Decision::UnknownRoute, _) => {
                let seen = c.unknown_route.fetch_add(1, Ordering::Relaxed) + 1;
                if seen.is_power_of_two() {
                    warn!(
                        route_id = view.route_id.unwrap_or("(none)"),
                        host = view.host,
                        occurrences = seen,
                        "ext_authz call for a route sluice does not know; denied"
                    );
                }
                seen
            }
            _ => c.denied.fetch_add(1, Ordering::Relaxed),
        };
        respond::refuse(&decided, &view, &index)
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(self.check_request(request.get_ref()).await))
    }
}
