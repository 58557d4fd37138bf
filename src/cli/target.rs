//! The request `sluice check` and `sluice explain` reason about: its URL and headers, and
//! the route Envoy would give it (the IR route and the config route behind it).

use anyhow::{Context, bail};

use crate::config::Model;
use crate::config::model::Route as ConfigRoute;
use crate::ir::{self, Action, Ir, matching, names};
use crate::request_headers::{HeaderEntry, RequestHeaders};

pub struct Target {
    pub url: url::Url,
    /// `:authority`, port included when the URL has one.
    pub host: String,
    /// Path and query, as Envoy matches it.
    pub path: String,
    /// Lowercase names; of a repeated `--header`, the last counts.
    pub header_list: Vec<HeaderEntry>,
}

impl Target {
    pub fn parse(url: &str, headers: &[String]) -> anyhow::Result<Target> {
        let parsed =
            url::Url::parse(url).with_context(|| format!("`{url}` is not an absolute URL"))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => bail!("`{url}` has no host"),
        };
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let mut header_list = Vec::new();
        for h in headers {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("--header `{h}` is not `Name: value`"))?;
            header_list.push(HeaderEntry::new(k.trim().to_ascii_lowercase(), v.trim()));
        }
        Ok(Target {
            url: parsed,
            host,
            path,
            header_list,
        })
    }

    pub fn headers(&self) -> RequestHeaders<'_> {
        RequestHeaders(&self.header_list)
    }

    /// The Envoy route this request takes, if any.
    pub fn route<'i>(&self, ir: &'i Ir) -> Option<&'i ir::Route> {
        let table = ir
            .route_configs
            .iter()
            .find(|rc| rc.name == names::MAIN_ROUTES)?;
        matching::find(
            table,
            &matching::Request {
                host: &self.host,
                path: &self.path,
                headers: self.headers(),
            },
        )
    }
}

/// The config route behind an Envoy route (sluice's own routes have none).
pub fn config_route<'m>(model: &'m Model, route: &ir::Route) -> Option<&'m ConfigRoute> {
    let id = route.config_route.as_ref()?;
    model.routes.iter().find(|r| &r.id == id).map(|r| &**r)
}

/// Prints the `route:` and `upstream:`/`action:` lines.
pub fn print_route(route: &ir::Route, config: Option<&ConfigRoute>) {
    match config {
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
}
