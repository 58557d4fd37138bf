//! `sluice check`: an offline explanation of what sluice would decide for one request — the
//! route it takes, the decision, the status code, and which criteria decided it.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Map, Value};

use super::load;
use super::target::{self, Target};
use crate::authz::respond::prefers_html;
use crate::authz::tokens::identity_from;
use crate::config::model::RouteAction;
use crate::ir::{self, Authz};
use crate::policy::eval::{self, ClientCertificate, Identity, Input, Verdict};

pub struct Request {
    pub url: String,
    pub method: String,
    pub headers: Vec<String>,
    pub claims: Option<String>,
    pub token: Option<String>,
    pub source_ip: Option<IpAddr>,
}

fn claims_of_token(token: &str) -> anyhow::Result<Map<String, Value>> {
    let payload = token
        .split('.')
        .nth(1)
        .context("--token is not a JWT (header.payload.signature)")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("--token's payload is not base64url")?;
    serde_json::from_slice(&bytes).context("--token's payload is not a JSON object")
}

fn identity(request: &Request) -> anyhow::Result<Option<Identity>> {
    let claims = match (&request.claims, &request.token) {
        (Some(json), _) => serde_json::from_str::<Map<String, Value>>(json)
            .context("--claims is not a JSON object")?,
        (None, Some(token)) => claims_of_token(token)?,
        (None, None) => return Ok(None),
    };
    match identity_from(claims) {
        Ok(identity) => Ok(Some(identity)),
        Err(e) => bail!("the claims do not name a user: {e}"),
    }
}

pub fn check(config: &Path, request: Request) -> anyhow::Result<ExitCode> {
    let model = match load(config) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let target = Target::parse(&request.url, &request.headers)?;
    let headers = target.headers();
    let identity = identity(&request)?;
    let ir = ir::build(&model);
    println!("request:  {} {}", request.method, request.url);
    match &identity {
        Some(i) => println!(
            "identity: {} (email: {}, groups: [{}]){}",
            i.user_id,
            i.email.as_deref().unwrap_or("-"),
            i.groups.join(", "),
            if request.token.is_some() {
                "; token signature not verified offline"
            } else {
                ""
            }
        ),
        None => println!("identity: nobody signed in"),
    }
    let Some(route) = target.route(&ir) else {
        println!("route:    none matches, so Envoy answers 404");
        return Ok(ExitCode::SUCCESS);
    };
    let config_route = target::config_route(&model, route);
    target::print_route(route, config_route);
    let (Authz::Check { .. }, Some(config_route)) = (&route.authz, config_route) else {
        println!(
            "decision: allow; ext_authz is not called on this route (its answer is always allow)"
        );
        return Ok(ExitCode::SUCCESS);
    };
    let input = Input {
        identity: identity.as_ref(),
        method: &request.method,
        path: target.url.path(),
        headers,
        source_ip: request.source_ip,
        client_certificate: ClientCertificate::None,
    };
    let evaluation = eval::evaluate_traced(&config_route.policy, &input);
    let browser = prefers_html(headers.get("accept"))
        && !headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/grpc"));
    match evaluation.verdict() {
        Verdict::Allow { reasons } => {
            let then = match &config_route.action {
                RouteAction::Forward(_) => "the upstream answers".to_string(),
                RouteAction::Redirect(r) => format!("Envoy redirects with {}", r.response_code),
                RouteAction::Respond(r) => format!("Envoy answers {}", r.status),
            };
            println!("decision: allow ({then}); reasons: {}", reasons.join(", "));
        }
        Verdict::SignIn if browser => println!("decision: sign in (302 to the sign-in page)"),
        Verdict::SignIn => println!("decision: sign in (401 with WWW-Authenticate)"),
        Verdict::ClientCertificate { reasons } => {
            println!("decision: deny (495); reasons: {}", reasons.join(", "))
        }
        Verdict::Deny { reasons } => {
            println!("decision: deny (403); reasons: {}", reasons.join(", "))
        }
    }
    if config_route.policy.is_empty() {
        println!("because:  the route has no policy, so nobody is allowed (as in Pomerium)");
    }
    for t in &evaluation.trace {
        let action = match t.action {
            crate::policy::Action::Allow => "allow",
            crate::policy::Action::Deny => "deny",
        };
        println!(
            "  {action:<5} {:<32} {:<5} ({})",
            t.criterion,
            t.value,
            t.reason.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
