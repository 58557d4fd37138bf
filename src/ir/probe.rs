//! The built-in stream probe: on every route host, `/.sluice/stream-probe` is routed to sluice
//! (an SSE stream of timestamped events), with no route timeout, decided by the policy of the
//! route that would otherwise serve that path (`sluice_stream_probe: policy`; a host where no
//! route serves it gets no probe), open to anyone (`public`), or not routed at all (`off`).

use std::sync::Arc;
use std::time::Duration;

use super::matching::path_matches;
use super::{Action, Authz, Forward, HeaderMatch, PathMatch, Route, VirtualHost, names};
use crate::config::model::StreamProbe;

/// Adds the probe routes to a virtual host, after sluice's own routes and before the config's.
/// A host with wildcard routes (`*.a.com`, `*.b.com` in the catch-all virtual host) gets one
/// probe route per wildcard, each decided by that wildcard's routes.
pub fn add(vhost: &mut VirtualHost, mode: StreamProbe, internal: usize) {
    if mode == StreamProbe::Off {
        return;
    }
    let config_routes = &vhost.routes[internal..];
    // Per `:authority` matcher (one per wildcard in the catch-all virtual host), the first
    // route that would serve the probe's path decides for it. In policy mode a host where no
    // route serves that path gets no probe, as it would answer 404 for it anyway.
    let mut groups: Vec<(Option<&HeaderMatch>, Option<&Route>)> = Vec::new();
    for route in config_routes {
        let authority = route.headers.iter().find(|h| h.name == ":authority");
        let serves_probe = path_matches(&route.path, names::STREAM_PROBE_PATH);
        match groups.iter_mut().find(|(a, _)| *a == authority) {
            Some((_, chosen)) => {
                if serves_probe && chosen.is_none() {
                    *chosen = Some(route);
                }
            }
            None => groups.push((authority, serves_probe.then_some(route))),
        }
    }
    let groups: Vec<(Option<&HeaderMatch>, &Route)> = groups
        .into_iter()
        .filter_map(|(authority, decider)| match (mode, decider) {
            (_, Some(route)) => Some((authority, route)),
            (StreamProbe::Public, None) => config_routes.first().map(|r| (authority, r)),
            _ => None,
        })
        .collect();
    // Specific wildcards first: the group without an authority matcher matches every host.
    let mut groups = groups;
    groups.sort_by_key(|(authority, _)| authority.is_none());
    let many = groups.len() > 1;
    let probes: Vec<Route> = groups
        .into_iter()
        .enumerate()
        .map(|(i, (authority, decider))| probe_route(mode, authority, decider, many.then_some(i)))
        .collect();
    vhost.routes.splice(internal..internal, probes);
}

fn probe_route(
    mode: StreamProbe,
    authority: Option<&HeaderMatch>,
    decider: &Route,
    index: Option<usize>,
) -> Route {
    let (config_route, authz) = match mode {
        StreamProbe::Policy => (decider.config_route.clone(), decider.authz.clone()),
        _ => (None, Authz::Disabled),
    };
    Route {
        name: match index {
            Some(i) => format!("route/sluice/stream-probe-{i}"),
            None => "route/sluice/stream-probe".into(),
        },
        config_route,
        path: PathMatch::Exact(names::STREAM_PROBE_PATH.into()),
        headers: authority.cloned().into_iter().collect(),
        // A stream: bounded by the stream idle timeout, never by a route timeout.
        action: Action::Forward(Forward::to_sluice(Duration::ZERO)),
        request_headers_to_remove: Arc::default(),
        response_headers: Arc::default(),
        authz,
        keeps_credentials: false,
    }
}
