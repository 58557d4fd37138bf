//! From a found route, an identified caller and a request to a decision.

use crate::config::model::Route;
use crate::policy::eval::{self, ClientCertificate, Evaluation, Input, Verdict};

use super::identity::Session;
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
pub struct Decided {
    pub decision: Decision,
    pub evaluation: Option<Evaluation>,
}

/// Evaluates `route`'s policy; `None` (no such route) is always refused.
pub fn decide(
    route: Option<&Route>,
    request: &RequestView<'_>,
    session: Option<&Session>,
    certificate: ClientCertificate,
) -> Decided {
    let Some(route) = route else {
        return Decided {
            decision: Decision::UnknownRoute,
            evaluation: None,
        };
    };
    let input = Input {
        identity: session.map(|s| &s.identity),
        method: request.method,
        path: &request.path,
        headers: request.headers,
        source_ip: request.source_ip,
        client_certificate: certificate,
    };
    let evaluation = eval::evaluate(&route.policy, &input);
    // Pomerium appends `deny: invalid_client_certificate` to every policy when a client CA is
    // configured and enforcement is not `policy`; a deny rule outranks any allow.
    let default_deny = route
        .client_certificate
        .as_ref()
        .is_some_and(|c| c.default_deny);
    let certificate_problem = match &input.client_certificate {
        ClientCertificate::None => Some(eval::reason::CLIENT_CERTIFICATE_REQUIRED),
        ClientCertificate::Invalid => Some(eval::reason::INVALID_CLIENT_CERTIFICATE),
        ClientCertificate::Valid(_) => None,
    };
    if let (true, Some(reason)) = (default_deny, certificate_problem) {
        return Decided {
            decision: Decision::Deny {
                status: 495,
                reasons: vec![reason],
            },
            evaluation: Some(evaluation),
        };
    }
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
        evaluation: Some(evaluation),
    }
}
