//! Per-host route tables: a route table split by host into one `RouteConfiguration` each, and
//! the scopes (SRDS) through which Envoy picks a request's table by its `:authority`.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, ScopedRouteConfiguration, scoped_route_configuration,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    ScopedRds, ScopedRouteConfigurationsList, ScopedRoutes, scoped_routes,
};

use super::Delivery;
use super::common::ads_config_source;
use crate::ir::{self, names};

/// One host's share of a per-host route table.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct HostTable {
    /// What requests for this host carry in `:authority`, before any port.
    pub host: String,
    /// The scope resource's name.
    pub scope: String,
    /// The host's own route table (its name from `names::host_routes`).
    pub table: ir::RouteConfig,
}

/// Splits a table by host, in host order. Every virtual host of a per-host table serves one
/// host: its first domain, which the others repeat with a port.
pub fn split(rc: ir::RouteConfig) -> Vec<HostTable> {
    let ir::RouteConfig {
        name,
        virtual_hosts,
        response_headers,
    } = rc;
    let mut by_host: BTreeMap<String, Vec<ir::VirtualHost>> = BTreeMap::new();
    for vhost in virtual_hosts {
        let host = vhost.domains.first().cloned().unwrap_or_default();
        by_host.entry(host).or_default().push(vhost);
    }
    by_host
        .into_iter()
        .map(|(host, virtual_hosts)| {
            host_table(&name, host, virtual_hosts, response_headers.clone())
        })
        .collect()
}

/// `host`'s share of the per-host table `table`.
pub fn host_table(
    table: &str,
    host: String,
    virtual_hosts: Vec<ir::VirtualHost>,
    response_headers: BTreeMap<String, String>,
) -> HostTable {
    HostTable {
        scope: names::host_scope(table, &host),
        table: ir::RouteConfig {
            name: names::host_routes(table, &host),
            virtual_hosts,
            response_headers,
        },
        host,
    }
}

/// The scope for one host. Over ADS it names the host's table, which Envoy then fetches over
/// RDS; a static bootstrap carries the table inline.
pub fn scope(t: &HostTable, inline: Option<RouteConfiguration>) -> ScopedRouteConfiguration {
    use scoped_route_configuration::{Key, key::Fragment, key::fragment};
    ScopedRouteConfiguration {
        name: t.scope.clone(),
        route_configuration_name: if inline.is_some() {
            String::new()
        } else {
            t.table.name.clone()
        },
        route_configuration: inline,
        key: Some(Key {
            fragments: vec![Fragment {
                r#type: Some(fragment::Type::StringKey(t.host.clone())),
            }],
        }),
        on_demand: false,
    }
}

/// The connection manager's side: the request's key is its `:authority` up to the first
/// colon (the host without its port), matched exactly against each scope's host.
pub fn scoped_routes(
    table: &str,
    delivery: Delivery,
    inline: Vec<ScopedRouteConfiguration>,
) -> ScopedRoutes {
    use scoped_routes::scope_key_builder::{FragmentBuilder, fragment_builder};
    use scoped_routes::{ConfigSpecifier, ScopeKeyBuilder};
    let authority_host = fragment_builder::HeaderValueExtractor {
        name: ":authority".into(),
        element_separator: ":".into(),
        extract_type: Some(fragment_builder::header_value_extractor::ExtractType::Index(0)),
    };
    ScopedRoutes {
        name: table.to_string(),
        scope_key_builder: Some(ScopeKeyBuilder {
            fragments: vec![FragmentBuilder {
                r#type: Some(fragment_builder::Type::HeaderValueExtractor(authority_host)),
            }],
        }),
        rds_config_source: Some(ads_config_source()),
        config_specifier: Some(match delivery {
            Delivery::Ads => ConfigSpecifier::ScopedRds(ScopedRds {
                scoped_rds_config_source: Some(ads_config_source()),
                srds_resources_locator: String::new(),
            }),
            Delivery::Static => {
                ConfigSpecifier::ScopedRouteConfigurationsList(ScopedRouteConfigurationsList {
                    scoped_route_configurations: inline,
                })
            }
        }),
    }
}
