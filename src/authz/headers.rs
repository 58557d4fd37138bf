//! What an allowed request carries upstream: the signed identity assertion and claim headers
//! (where `pass_identity_headers` is on), and `set_request_headers`.

use std::time::{SystemTime, UNIX_EPOCH};

use envoy_types::ext_authz::v3::pb::HeaderValueOption;
use serde_json::{Value, json};

use super::identity::Session;
use super::request::RequestView;
use super::respond::header;
use super::signer::Signer;
use crate::config::model::{Global, LbPolicy, Route, RouteAction};
use crate::config::template::{Part, Template};
use crate::policy::eval::CertificateInfo;

pub const ASSERTION: &str = "x-pomerium-jwt-assertion";
pub const ASSERTION_FOR: &str = "x-pomerium-jwt-assertion-for";
/// How long an assertion is valid.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The assertion's claims, as Pomerium writes them.
pub fn assertion_claims(request: &RequestView<'_>, session: Option<&Session>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let host = request.hostname();
    let identity = session.map(|s| &s.identity);
    let user = identity.map(|i| i.user_id.as_str()).unwrap_or("");
    let name = identity
        .and_then(|i| i.claims.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut jti = [0u8; 16];
    let _ = getrandom_fill(&mut jti);
    json!({
        "iss": host,
        "aud": host,
        "sub": user,
        "user": user,
        "email": identity.and_then(|i| i.email.as_deref()).unwrap_or(""),
        "groups": identity.map(|i| i.groups.clone()).unwrap_or_default(),
        "name": name,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": hex_uuid(&jti),
    })
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), rand_core::Error> {
    use rand_core::RngCore;
    rand_core::OsRng.try_fill_bytes(buf)
}

/// Formats 16 random bytes as a version 4 UUID.
fn hex_uuid(b: &[u8; 16]) -> String {
    let mut b = *b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A claim for a claim header: the assertion's own claims first, then the IdP's. Lists are
/// joined with commas; a missing claim is empty.
fn claim_text(name: &str, assertion: &Value, session: Option<&Session>) -> String {
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
    signer: &Signer,
    cert: Option<&CertificateInfo>,
) -> (Vec<HeaderValueOption>, Vec<String>) {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let claims = assertion_claims(request, session);
    let mut signed: Option<String> = None;
    let mut jwt = || signed.get_or_insert_with(|| signer.sign(&claims)).clone();
    if route.pass_identity_headers {
        set.push(header(ASSERTION, &jwt()));
        for (name, claim) in &global.jwt_claims_headers {
            set.push(header(name, &claim_text(claim, &claims, session)));
        }
        // Only sluice says who the caller is; a chained assertion from the client is dropped.
        remove.push(ASSERTION_FOR.to_string());
    }
    let hashed = matches!(&route.action, RouteAction::Forward(f) if matches!(f.lb_policy, LbPolicy::RingHash | LbPolicy::Maglev));
    if let (true, Some(s)) = (hashed, session) {
        // Consistent hashing keeps one user on one upstream.
        set.push(header(
            "x-pomerium-routing-key",
            &crate::hashing::content_hash(&s.identity.user_id),
        ));
    }
    for (name, template) in &route.set_request_headers {
        set.push(header(
            name,
            &render(template, request, session, &mut jwt, cert),
        ));
    }
    (set, remove)
}
