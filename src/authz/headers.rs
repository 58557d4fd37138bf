//! What an allowed request carries upstream: the signed identity assertion and claim headers
//! (where `pass_identity_headers` is on), and `set_request_headers`.

use std::cell::OnceCell;

use envoy_types::ext_authz::v3::pb::HeaderValueOption;
use serde_json::{Map, Value};

use super::assertion::{Assertions, identity_claims};
use super::identity::Session;
use super::request::RequestView;
use super::respond::header;
use crate::config::model::{Global, LbPolicy, Route, RouteAction};
use crate::config::template::{Part, Template};
use crate::policy::eval::CertificateInfo;

pub const ASSERTION: &str = "x-pomerium-jwt-assertion";
pub const ASSERTION_FOR: &str = "x-pomerium-jwt-assertion-for";
/// A claim for a claim header: the assertion's own claims first, then the IdP's. Lists are
/// joined with commas; a missing claim is empty.
fn claim_text(name: &str, assertion: &Map<String, Value>, session: Option<&Session>) -> String {
    let value = assertion
        .get(name)
        .or_else(|| session.and_then(|s| s.identity.claims.get(name)));
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn render(
    template: &Template,
    request: &RequestView<'_>,
    session: Option<&Session>,
    jwt: &mut dyn FnMut() -> String,
    cert: Option<&CertificateInfo>,
) -> String {
    let mut out = String::new();
    for part in &template.0 {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::AccessToken => out.push_str(
                session
                    .and_then(|s| s.access_token.as_deref())
                    .unwrap_or(""),
            ),
            Part::IdToken => {
                out.push_str(session.and_then(|s| s.id_token.as_deref()).unwrap_or(""))
            }
            Part::Jwt => out.push_str(&jwt()),
            Part::ClientCertFingerprint => {
                out.push_str(cert.map(|c| c.fingerprint.as_str()).unwrap_or(""))
            }
            Part::ClientCertSanDns => {
                out.push_str(&cert.map(|c| c.san_dns.join(",")).unwrap_or_default())
            }
            Part::ClientCertSanEmail => {
                out.push_str(&cert.map(|c| c.san_email.join(",")).unwrap_or_default())
            }
            Part::RequestHeader(name) => out.push_str(request.header(name).unwrap_or("")),
        }
    }
    out
}

/// Headers to set on, and to remove from, an allowed request.
pub fn for_allowed(
    route: &Route,
    global: &Global,
    request: &RequestView<'_>,
    session: Option<&Session>,
    assertions: &Assertions,
    cert: Option<&CertificateInfo>,
) -> (Vec<HeaderValueOption>, Vec<String>) {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    // Built on first use: a route that passes no identity and signs nothing needs neither.
    let built = OnceCell::new();
    let claims = || built.get_or_init(|| identity_claims(request, session));
    let mut signed = None;
    let mut jwt = || {
        signed
            .get_or_insert_with(|| assertions.assertion(claims()))
            .to_string()
    };
    if route.pass_identity_headers {
        set.push(header(ASSERTION, jwt()));
        for (name, claim) in &global.jwt_claims_headers {
            set.push(header(name, claim_text(claim, claims(), session)));
        }
        // Only sluice says who the caller is; a chained assertion from the client is dropped.
        remove.push(ASSERTION_FOR.to_string());
    }
    let hashed = matches!(&route.action, RouteAction::Forward(f) if matches!(f.lb_policy, LbPolicy::RingHash | LbPolicy::Maglev));
    if let (true, Some(s)) = (hashed, session) {
        // Consistent hashing keeps one user on one upstream.
        set.push(header(
            "x-pomerium-routing-key",
            crate::hashing::content_hash(&s.identity.user_id),
        ));
    }
    for (name, template) in route.set_request_headers.iter() {
        set.push(header(
            name,
            render(template, request, session, &mut jwt, cert),
        ));
    }
    (set, remove)
}
