//! IR route tables → Envoy `RouteConfiguration`s (served over RDS).

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, RedirectAction, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost, header_matcher, redirect_action, route, route_action, route_match,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::google::protobuf::BoolValue;

use super::common::{duration, set_header};
use super::filters::per_route;
use crate::ir;

pub fn route_configuration(rc: &ir::RouteConfig) -> RouteConfiguration {
    RouteConfiguration {
        name: rc.name.clone(),
        virtual_hosts: rc.virtual_hosts.iter().map(virtual_host).collect(),
        response_headers_to_add: rc
            .response_headers
            .iter()
            .map(|(k, v)| set_header(k, v))
            .collect(),
        // Clusters and routes may arrive in either order; never reject a table for that.
        validate_clusters: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

pub fn virtual_host(v: &ir::VirtualHost) -> VirtualHost {
    VirtualHost {
        name: v.name.clone(),
        domains: v.domains.clone(),
        routes: v.routes.iter().map(route).collect(),
        ..Default::default()
    }
}

fn regex(pattern: &str) -> RegexMatcher {
    RegexMatcher {
        regex: pattern.to_string(),
        ..Default::default()
    }
}

fn route(r: &ir::Route) -> Route {
    let path_specifier = match &r.path {
        ir::PathMatch::Prefix(p) => route_match::PathSpecifier::Prefix(p.clone()),
        ir::PathMatch::Exact(p) => route_match::PathSpecifier::Path(p.clone()),
        ir::PathMatch::Regex(p) => route_match::PathSpecifier::SafeRegex(regex(p)),
    };
    Route {
        name: r.name.clone(),
        r#match: Some(RouteMatch {
            path_specifier: Some(path_specifier),
            headers: r.headers.iter().map(header_matcher).collect(),
            ..Default::default()
        }),
        action: Some(action(&r.action)),
        request_headers_to_remove: r.request_headers_to_remove.to_vec(),
        response_headers_to_add: r
            .response_headers
            .iter()
            .map(|(k, v)| set_header(k, v))
            .collect(),
        typed_per_filter_config: per_route(&r.authz, r.keeps_credentials),
        ..Default::default()
    }
}

fn header_matcher(h: &ir::HeaderMatch) -> HeaderMatcher {
    use header_matcher::HeaderMatchSpecifier;
    let string = |p: string_matcher::MatchPattern| {
        HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(p),
            ignore_case: false,
        })
    };
    let spec = match &h.rule {
        ir::HeaderRule::Present => HeaderMatchSpecifier::PresentMatch(true),
        ir::HeaderRule::Contains(s) => string(string_matcher::MatchPattern::Contains(s.clone())),
        ir::HeaderRule::Prefix(s) => string(string_matcher::MatchPattern::Prefix(s.clone())),
        ir::HeaderRule::Regex(s) => string(string_matcher::MatchPattern::SafeRegex(regex(s))),
    };
    HeaderMatcher {
        name: h.name.clone(),
        header_match_specifier: Some(spec),
        ..Default::default()
    }
}

fn action(a: &ir::Action) -> route::Action {
    match a {
        ir::Action::Forward(f) => route::Action::Route(forward(f)),
        ir::Action::Redirect(r) => route::Action::Redirect(redirect(r)),
        ir::Action::Respond { status, body } => {
            route::Action::DirectResponse(DirectResponseAction {
                status: u32::from(*status),
                body: (!body.is_empty()).then(|| DataSource {
                    specifier: Some(data_source::Specifier::InlineString(body.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
    }
}

fn forward(f: &ir::Forward) -> RouteAction {
    use route_action::{
        HashPolicy, HostRewriteSpecifier, MaxStreamDuration, UpgradeConfig, hash_policy,
    };
    let host_rewrite_specifier = match &f.host_rewrite {
        ir::HostRewrite::Auto => Some(HostRewriteSpecifier::AutoHostRewrite(BoolValue {
            value: true,
        })),
        ir::HostRewrite::Literal(h) => Some(HostRewriteSpecifier::HostRewriteLiteral(h.clone())),
        ir::HostRewrite::Header(h) => Some(HostRewriteSpecifier::HostRewriteHeader(h.clone())),
        ir::HostRewrite::PathRegex(r) => {
            Some(HostRewriteSpecifier::HostRewritePathRegex(substitute(r)))
        }
        ir::HostRewrite::Preserve => None,
    };
    let hash_policy = if f.hash_on_routing_key {
        vec![
            HashPolicy {
                policy_specifier: Some(hash_policy::PolicySpecifier::Header(hash_policy::Header {
                    header_name: "x-pomerium-routing-key".into(),
                    ..Default::default()
                })),
                terminal: true,
            },
            HashPolicy {
                policy_specifier: Some(hash_policy::PolicySpecifier::ConnectionProperties(
                    hash_policy::ConnectionProperties { source_ip: true },
                )),
                terminal: true,
            },
        ]
    } else {
        Vec::new()
    };
    RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(f.cluster.clone())),
        timeout: Some(duration(f.timeout)),
        idle_timeout: f.idle_timeout.map(duration),
        prefix_rewrite: f.prefix_rewrite.clone().unwrap_or_default(),
        regex_rewrite: f.regex_rewrite.as_ref().map(substitute),
        host_rewrite_specifier,
        append_x_forwarded_host: f.append_x_forwarded_host,
        upgrade_configs: f
            .upgrades
            .iter()
            .map(|u| UpgradeConfig {
                upgrade_type: u.clone(),
                enabled: Some(BoolValue { value: true }),
                ..Default::default()
            })
            .collect(),
        hash_policy,
        max_stream_duration: f.grpc_timeout_header_max.map(|max| MaxStreamDuration {
            grpc_timeout_header_max: Some(duration(max)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn substitute(r: &ir::RegexRewrite) -> RegexMatchAndSubstitute {
    RegexMatchAndSubstitute {
        pattern: Some(regex(&r.pattern)),
        substitution: r.substitution.clone(),
    }
}

fn redirect(r: &ir::Redirect) -> RedirectAction {
    use redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier};
    let scheme = if r.https_redirect {
        Some(SchemeRewriteSpecifier::HttpsRedirect(true))
    } else {
        r.scheme.clone().map(SchemeRewriteSpecifier::SchemeRedirect)
    };
    let path = match (&r.path, &r.prefix_rewrite) {
        (Some(p), _) => Some(PathRewriteSpecifier::PathRedirect(p.clone())),
        (None, Some(p)) => Some(PathRewriteSpecifier::PrefixRewrite(p.clone())),
        (None, None) => None,
    };
    let code = match r.response_code {
        302 => RedirectResponseCode::Found,
        303 => RedirectResponseCode::SeeOther,
        307 => RedirectResponseCode::TemporaryRedirect,
        308 => RedirectResponseCode::PermanentRedirect,
        _ => RedirectResponseCode::MovedPermanently,
    };
    RedirectAction {
        scheme_rewrite_specifier: scheme,
        host_redirect: r.host.clone().unwrap_or_default(),
        port_redirect: r.port.map(u32::from).unwrap_or_default(),
        path_rewrite_specifier: path,
        response_code: code as i32,
        strip_query: r.strip_query,
    }
}
