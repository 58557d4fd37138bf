//! Which Envoy route a request would take, decided as Envoy decides: the virtual host by
//! domain (exact, then `*.suffix`, then `prefix*`, then `*`), then the first route whose path
//! and header matchers all match. For `sluice check` and `sluice explain`.

use super::{HeaderRule, PathMatch, Route, RouteConfig, VirtualHost};
use crate::request_headers::RequestHeaders;

/// A request as routing sees it. Header names are lowercase.
pub struct Request<'a> {
    /// `:authority`, port included.
    pub host: &'a str,
    /// The path, query included.
    pub path: &'a str,
    pub headers: RequestHeaders<'a>,
}

fn domain_rank(domain: &str, host: &str) -> Option<(u8, usize)> {
    let host = host.to_ascii_lowercase();
    if domain == host {
        return Some((4, domain.len()));
    }
    if domain == "*" {
        return Some((1, 0));
    }
    if let Some(suffix) = domain.strip_prefix('*') {
        return (host.ends_with(suffix) && host.len() > suffix.len()).then_some((3, suffix.len()));
    }
    if let Some(prefix) = domain.strip_suffix('*') {
        return (host.starts_with(prefix) && host.len() > prefix.len())
            .then_some((2, prefix.len()));
    }
    None
}

pub fn virtual_host<'r>(config: &'r RouteConfig, host: &str) -> Option<&'r VirtualHost> {
    config
        .virtual_hosts
        .iter()
        .filter_map(|v| {
            v.domains
                .iter()
                .filter_map(|d| domain_rank(d, host))
                .max()
                .map(|rank| (rank, v))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, v)| v)
}

pub fn path_matches(m: &PathMatch, path: &str) -> bool {
    let without_query = path.split('?').next().unwrap_or(path);
    match m {
        PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        PathMatch::Exact(p) => without_query == p,
        PathMatch::Regex(r) => {
            regex::Regex::new(&format!("^(?:{r})$")).is_ok_and(|re| re.is_match(without_query))
        }
    }
}

fn route_matches(route: &Route, request: &Request<'_>) -> bool {
    path_matches(&route.path, request.path)
        && route.headers.iter().all(|h| {
            let value = if h.name == ":authority" {
                Some(request.host)
            } else {
                request.headers.get(&h.name)
            };
            match (&h.rule, value) {
                (HeaderRule::Present, v) => v.is_some(),
                (HeaderRule::Contains(s), Some(v)) => v.contains(s.as_str()),
                (HeaderRule::Prefix(s), Some(v)) => v.starts_with(s.as_str()),
                (HeaderRule::Regex(r), Some(v)) => {
                    regex::Regex::new(&format!("^(?:{r})$")).is_ok_and(|re| re.is_match(v))
                }
                (_, None) => false,
            }
        })
}

/// The route Envoy would pick, if any.
pub fn find<'r>(config: &'r RouteConfig, request: &Request<'_>) -> Option<&'r Route> {
    virtual_host(config, request.host)?
        .routes
        .iter()
        .find(|r| route_matches(r, request))
}
