//! One-line outlines of added and removed resources, read from the typed protos: cheaper than
//! a JSON rendering, which matters when the first wildcard route removes thousands of tables.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{Address, address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::scoped_route_configuration::key::fragment;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use prost::Message;

fn host_port(a: Option<&Address>) -> Option<String> {
    let Some(address::Address::SocketAddress(s)) = a?.address.as_ref() else {
        return None;
    };
    let port = match s.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) => p.to_string(),
        _ => "?".into(),
    };
    Some(format!("{}:{port}", s.address))
}

/// Where a listener listens.
pub fn listener(bytes: &[u8]) -> Option<String> {
    host_port(Listener::decode(bytes).ok()?.address.as_ref())
}

/// The hosts a table serves (first domain of each virtual host), and its number of routes.
pub fn table(bytes: &[u8]) -> Option<String> {
    let t = RouteConfiguration::decode(bytes).ok()?;
    let hosts: Vec<&str> = t
        .virtual_hosts
        .iter()
        .filter_map(|v| v.domains.first().map(String::as_str))
        .collect();
    let routes: usize = t.virtual_hosts.iter().map(|v| v.routes.len()).sum();
    let hosts = match hosts.as_slice() {
        [] => "no host".to_string(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} and {} more host(s)", rest.len()),
    };
    Some(format!("{routes} route(s) for {hosts}"))
}

/// The host a scope selects, and the table it names.
pub fn scope(bytes: &[u8]) -> Option<(String, String)> {
    let s = ScopedRouteConfiguration::decode(bytes).ok()?;
    let host = s.key?.fragments.into_iter().find_map(|f| match f.r#type {
        Some(fragment::Type::StringKey(k)) => Some(k),
        _ => None,
    })?;
    Some((host, s.route_configuration_name))
}

/// A cluster's endpoints and whether it speaks TLS to them.
pub fn cluster(bytes: &[u8]) -> Option<String> {
    let c = Cluster::decode(bytes).ok()?;
    let endpoints: Vec<String> = c
        .load_assignment
        .iter()
        .flat_map(|a| &a.endpoints)
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(e)) => host_port(e.address.as_ref()),
            _ => None,
        })
        .collect();
    let tls = if c.transport_socket.is_some() {
        "TLS"
    } else {
        "plain"
    };
    Some(format!("endpoints {} ({tls})", endpoints.join(", ")))
}
