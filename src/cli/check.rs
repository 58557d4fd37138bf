//! `sluice check`: an offline explanation of what sluice would decide for one request — the
//! route it takes, the decision, the status code, and which criteria decided it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Map, Value};

use super::load;
use crate::authz::respond::{Format, negotiate};
use crate::authz::tokens::identity_from;
use crate::config::model::RouteAction;
use crate::ir::{self, Action, Authz, matching, names};
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
    let url = url::Url::parse(&request.url)
        .with_context(|| format!("`{}` is not an absolute URL", request.url))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => bail!("`{}` has no host", request.url),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut headers = HashMap::new();
    for h in &request.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("--header `{h}` is not `Name: value`"))?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let identity = identity(&request)?;
    let ir = ir::build(&model);
    let table = ir
        .route_configs
        .iter()
        .find(|rc| rc.name == names::MAIN_ROUTES)
        .context("no main route table")?;

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
    let Some(route) = matching::find(
        table,
        &matching::Request {
            host: &host,
            path: &path,
            headers: &headers,
        },
    ) else {
        println!("route:    none matches, so Envoy answers 404");
        return Ok(ExitCode::SUCCESS);
    };
    let config_route = route
        .config_route
        .as_ref()
        .and_then(|id| model.routes.iter().find(|r| &r.id == id));
    match config_route {
        Some(r) => println!(
            "route:    {}[{}] `{}` (line {}), Envoy route {}",
            if r.line > 0 { "routes" } else { "policy" },
            r.index,
            r.label(),
            r.line,
            route.name
        ),
        None => println!("route:    sluice's own {}", route.name),
    }
    match &route.action {
        Action::Forward(f) => println!("upstream: {}", f.cluster),
        Action::Redirect(r) => println!("action:   redirect ({})", r.response_code),
        Action::Respond { status, .. } => println!("action:   fixed response ({status})"),
    }
    let (Authz::Check { .. }, Some(config_route)) = (&route.authz, config_route) else {
        println!(
            "decision: allow; ext_authz is not called on this route (its answer is always allow)"
        );
        return Ok(ExitCode::SUCCESS);
    };
    let input = Input {
        identity: identity.as_ref(),
        method: &request.method,
        path: url.path(),
        headers: Some(&headers),
        source_ip: request.source_ip,
        client_certificate: ClientCertificate::None,
    };
    let evaluation = eval::evaluate(&config_route.policy, &input);
    let browser = negotiate(headers.get("accept").map(String::as_str)) == Format::Html
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
