//! From a request to a decision: find the route, establish identity, evaluate the policy.

use crate::config::model::Route;
use crate::policy::eval::{self, ClientCertificate, Evaluation, Identity, Input, Verdict};

use super::identity::IdentitySource;
use super::index::Index;
use super::request::RequestView;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Nobody is signed in and the policy needs someone.
    SignIn,
    /// Refused: 403 (or 495 for client certificates), with the policy's reasons.
    Deny {
        status: u16,
        reasons: Vec<&'static str>,
    },
    /// No route with this id: 404, never allowed.
    UnknownRoute,
}

/// A decision with what led to it.
pub struct Decided<'i> {
    pub decision: Decision,
    pub route: Option<&'i Route>,
    pub identity: Option<Identity>,
    pub evaluation: Option<Evaluation>,
    /// Envoy sent a checksum from an older route table.
    pub stale_checksum: bool,
}

pub fn decide<'i>(
    index: &'i Index,
    request: &RequestView<'_>,
    identities: &dyn IdentitySource,
    certificate: ClientCertificate,
) -> Decided<'i> {
    let found = request.route_id.and_then(|id| index.route(id));
    let Some((route, checksum)) = found else {
        return Decided {
            decision: Decision::UnknownRoute,
            route: None,
            identity: None,
            evaluation: None,
            stale_checksum: false,
        };
    };
    let stale_checksum = request.checksum.is_some_and(|c| c != checksum);
    // Credentials presented but refused count as nobody: the policy then decides between
    // sign-in and deny exactly as for an anonymous request.
    let identity = identities.identify(request, route).unwrap_or_default();
    let input = Input {
        identity: identity.as_ref(),
        method: request.method,
        path: &request.path,
        headers: Some(request.headers),
        source_ip: request.source_ip,
        client_certificate: certificate,
    };
    let evaluation = eval::evaluate(&route.policy, &input);
    let decision = match evaluation.verdict() {
        Verdict::Allow { .. } => Decision::Allow,
        Verdict::SignIn => Decision::SignIn,
        Verdict::ClientCertificate { reasons } => Decision::Deny {
            status: 495,
            reasons,
        },
        Verdict::Deny { reasons } => Decision::Deny {
            status: 403,
            reasons,
        },
    };
    Decided {
        decision,
        route: Some(route),
        identity,
        evaluation: Some(evaluation),
        stale_checksum,
    }
}
