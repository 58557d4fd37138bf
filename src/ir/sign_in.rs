//! The sign-in endpoints in the route tables: which paths of which hosts Envoy sends to sluice's
//! own HTTP server, and the filter that keeps sluice's credentials from upstreams.
//!
//! As Pomerium: `/.pomerium/…` on every route host (callback, user page, sign-out, the
//! programmatic login); the authenticate host (`authenticate_service_url`) entirely. Without
//! an authenticate host each route host signs its users in itself, so `/oauth2/callback` is
//! routed on every route host too.

use std::sync::Arc;
use std::time::Duration;

use super::{Action, Authz, CleanUpstream, Forward, PathMatch, Route, VirtualHost, names};
use crate::config::model::Global;

/// sluice calls the identity provider (discovery, code exchange) while answering some of
/// these, so they get more time than a static page.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(30);

/// The authenticate host named by `authenticate_service_url`, lowercase, without its port.
pub fn authenticate_host(g: &Global) -> Option<String> {
    let url = url::Url::parse(g.authenticate_service_url.as_deref()?).ok()?;
    Some(url.host_str()?.to_ascii_lowercase())
}

/// Whether sluice's credentials (session cookies, `Authorization: Pomerium`) are removed
/// before requests reach upstreams: whenever browsers can sign in.
pub fn clean_upstream(g: &Global) -> Option<CleanUpstream> {
    g.idp.as_ref().map(|_| CleanUpstream {
        cookie_name: g.cookie_name.clone(),
    })
}

/// sluice's sign-in routes on a route host, ahead of the config's routes.
pub fn route_host_routes(g: &Global) -> Vec<Route> {
    let mut out = vec![to_sluice(
        g,
        "route/sluice/sign-in",
        PathMatch::Prefix("/.pomerium/".into()),
    )];
    if g.authenticate_service_url.is_none() {
        out.push(to_sluice(
            g,
            "route/sluice/oauth2-callback",
            PathMatch::Exact("/oauth2/callback".into()),
        ));
    }
    out
}

/// The routes of the authenticate host when it also serves config routes: the endpoints
/// that only it has, ahead of the config's routes.
pub fn authenticate_routes_on_route_host(g: &Global) -> Vec<Route> {
    ["/oauth2/callback", "/robots.txt"]
        .into_iter()
        .filter(|path| g.authenticate_service_url.is_some() || *path != "/oauth2/callback")
        .map(|path| {
            to_sluice(
                g,
                &format!("route/sluice/authenticate{}", path.replace('/', "-")),
                PathMatch::Exact(path.into()),
            )
        })
        .collect()
}

/// The authenticate host's own virtual host when no config route names it: every path
/// goes to sluice (`/` → the user page, `/robots.txt`, the endpoints).
pub fn authenticate_virtual_host(g: &Global, host: &str, internal: Vec<Route>) -> VirtualHost {
    let mut routes = internal;
    routes.push(to_sluice(
        g,
        "route/sluice/authenticate",
        PathMatch::Prefix("/".into()),
    ));
    VirtualHost {
        name: names::virtual_host(host),
        domains: vec![host.to_string(), format!("{host}:*")],
        routes,
    }
}

fn to_sluice(g: &Global, name: &str, path: PathMatch) -> Route {
    Route {
        name: name.to_string(),
        config_route: None,
        path,
        headers: Vec::new(),
        action: Action::Forward(Forward::to_sluice(SIGN_IN_TIMEOUT)),
        request_headers_to_remove: Arc::default(),
        response_headers: Arc::default(),
        // No policy on the way in: these are how a user gets a session.
        authz: Authz::Disabled,
        // sluice reads the session cookies these requests carry.
        keeps_credentials: g.idp.is_some(),
    }
}
