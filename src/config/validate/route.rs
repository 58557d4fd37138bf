//! One route: matching, action (`to` / `redirect` / `response`), rewrites, headers, timeouts,
//! upstream TLS and policy, with Pomerium's rules and messages.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::addr::{parse_from, parse_to};
use super::files::PemKind;
use super::global::{bearer_token_format, show};
use super::headers::{check_header_name, header_map, response_headers, warn_nginx_headers};
use super::pem::{Content, Inline, source_with};
use crate::config::model::{
    CertificatePair, DirectResponse, Forward, Global, HostRewrite, LbPolicy, PathMatch,
    PathRewrite, Redirect, Route, RouteAction, Setting, UpstreamScheme, UpstreamTls,
};
use crate::config::raw::{RawRedirect, RawResponse, RawRoute};
use crate::config::shared;
use crate::config::template::{self, Template};
use crate::document::decode::{KeyPath, Spanned};
use crate::document::diag::{Diagnostics, Span};
use crate::document::yaml::NodeKind;
use crate::policy::{self, Policy, Shorthands};

pub(super) fn validate_route(
    raw: &RawRoute,
    index: usize,
    list: &'static str,
    global: &Global,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<Route> {
    let path = KeyPath::root().key(list).index(index);
    let errors_before = diags.error_count();

    let from = match &raw.from {
        Some(f) => parse_from(&f.value)
            .map_err(|e| diags.error(f.span, path.key("from"), e))
            .ok(),
        None => {
            diags.error(raw.span, &path, "the route has no `from`: give the URL users reach it at, such as https://app.example.com");
            None
        }
    };
    let path_match = path_match(raw, &path, diags);
    let action = action(raw, &path, global, base, diags);

    let set_request_headers = raw
        .set_request_headers
        .as_ref()
        .map(|h| request_templates(&h.value, &path, diags))
        .unwrap_or_default();
    let set_request_headers = shared::REQUEST_HEADERS.share(Arc::new(set_request_headers));
    let mut remove_request_headers: Vec<String> = Vec::new();
    for name in raw
        .remove_request_headers
        .iter()
        .flat_map(|l| l.value.0.iter())
    {
        match check_header_name(name) {
            Ok(()) => remove_request_headers.push(name.to_ascii_lowercase()),
            Err(e) => diags.error(
                name.span,
                path.key("remove_request_headers"),
                format!("invalid header name: {e}"),
            ),
        }
    }
    remove_request_headers.sort();
    remove_request_headers.dedup();
    let set_response_headers = response_headers(
        raw.set_response_headers.as_ref().map(|s| &s.value),
        &path.key("set_response_headers"),
        &global.set_response_headers,
        diags,
    );
    let set_response_headers = shared::RESPONSE_HEADERS.share(set_response_headers);

    let timeout = raw
        .timeout
        .as_ref()
        .map(|t| Setting::written(t.value.0, "timeout", t.span.line as usize));
    let idle_timeout = raw
        .idle_timeout
        .as_ref()
        .map(|t| Setting::written(t.value.0, "idle_timeout", t.span.line as usize));
    if let (Some(t), false) = (&raw.timeout, global.timeout_write.value.is_zero()) {
        let write = global.timeout_write.value;
        if t.value.is_zero() || t.value.0 > write {
            let route_limit = if t.value.is_zero() {
                "no limit (0s)".to_string()
            } else {
                show(t.value.0)
            };
            diags.warning(t.span, path.key("timeout"), format!(
                "this route timeout ({route_limit}) is longer than timeout_write ({}): timeout_write ends every request and stream after {}, so the route timeout never takes effect",
                show(write), show(write)));
        }
    }

    let policy = shared::POLICIES.share(Arc::new(route_policy(raw, &path, diags)));
    let depends_on = depends_on(raw, &path, diags);

    if let Some(id) = &raw.id {
        let ok = !id.value.is_empty()
            && id
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !ok {
            diags.error(id.span, path.key("id"), format!(
                "route id `{}` may only use letters, digits, `-`, `_`, `.` and `:` (it becomes part of Envoy resource names)", id.value));
        }
    }

    let pass_identity_headers = raw
        .pass_identity_headers
        .as_ref()
        .map(|b| b.value)
        .unwrap_or(global.pass_identity_headers);
    let bearer = raw
        .bearer_token_format
        .as_ref()
        .map(|f| bearer_token_format(f, &path.key("bearer_token_format"), diags))
        .unwrap_or(global.bearer_token_format);

    if diags.error_count() > errors_before {
        return None;
    }
    let (from, path_match, action) = (from?, path_match?, action?);
    let id = match &raw.id {
        Some(id) => id.value.clone(),
        None => derived_id(raw),
    };
    Some(Route {
        id,
        name: raw.name.as_ref().map(|n| n.value.clone()),
        index,
        line: raw.span.line as usize,
        from,
        path_match,
        action,
        set_request_headers,
        remove_request_headers,
        set_response_headers,
        timeout,
        idle_timeout,
        allow_websockets: flag(&raw.allow_websockets),
        allow_spdy: flag(&raw.allow_spdy),
        pass_identity_headers,
        bearer_token_format: bearer,
        policy,
        depends_on,
        // Filled in once every route is known (`mtls::finish`).
        client_certificate: None,
    })
}

/// `set_request_headers`: names checked, values compiled as templates; a reference Pomerium
/// would render as nothing gets a warning.
fn request_templates(
    pairs: &crate::document::decode::Pairs<Spanned<String>>,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> BTreeMap<String, Template> {
    let at = path.key("set_request_headers");
    warn_nginx_headers(pairs, &at, diags);
    let plain = header_map(pairs, &at, diags);
    let mut out = BTreeMap::new();
    for (name, value) in plain {
        let (template, unknown) = template::compile(&value);
        if let Some((_, v)) = pairs.0.iter().find(|(n, _)| n.value == name) {
            for reference in unknown {
                diags.warning(v.span, at.key(name.clone()), format!(
                    "`${{{reference}}}` is not a template sluice knows; it renders as nothing (known: pomerium.access_token, pomerium.id_token, pomerium.jwt, pomerium.client_cert_fingerprint, pomerium.client_cert_san_dns, pomerium.client_cert_san_email, pomerium.request.headers[\"name\"])"));
            }
        }
        out.insert(name, template);
    }
    out
}

fn flag(b: &Option<Spanned<bool>>) -> bool {
    b.as_ref().is_some_and(|b| b.value)
}

/// Pomerium's route id: a hash of what identifies the route (from, match, destination).
fn derived_id(raw: &RawRoute) -> String {
    let to: Vec<&str> = raw
        .to
        .iter()
        .flat_map(|t| t.value.items.iter().map(|i| i.value.as_str()))
        .collect();
    let redirect = raw
        .redirect
        .as_ref()
        .map(|r| format!("{:?}", redirect_fields(r)));
    let response = raw
        .response
        .as_ref()
        .map(|r| (r.status.as_deref().copied(), r.body.as_deref().cloned()));
    crate::hashing::content_hash(&(
        raw.from.as_deref(),
        raw.prefix.as_deref(),
        raw.path.as_deref(),
        raw.regex.as_deref(),
        to,
        redirect,
        response,
    ))
}

fn redirect_fields(r: &RawRedirect) -> impl std::fmt::Debug + '_ {
    (
        r.https_redirect.as_deref(),
        r.scheme_redirect.as_deref(),
        r.host_redirect.as_deref(),
        r.port_redirect.as_deref(),
        r.path_redirect.as_deref(),
        r.prefix_rewrite.as_deref(),
        r.response_code.as_deref(),
        r.strip_query.as_deref(),
    )
}

fn path_match(raw: &RawRoute, path: &KeyPath, diags: &mut Diagnostics) -> Option<PathMatch> {
    // Pomerium's priority: regex, then path, then prefix.
    let given: Vec<(&str, &Spanned<String>)> = [
        ("regex", &raw.regex),
        ("path", &raw.path),
        ("prefix", &raw.prefix),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    for (ignored, v) in given.iter().skip(1) {
        diags.warning(v.span, path.key(*ignored), format!("`{ignored}` is ignored because `{}` is also set (regex wins over path, path over prefix)", given[0].0));
    }
    let Some((key, value)) = given.first() else {
        return Some(PathMatch::Prefix("/".into()));
    };
    let at = path.key(*key);
    match *key {
        "regex" => match super::regex::check(&value.value) {
            Ok(_) => Some(PathMatch::Regex(value.value.clone())),
            Err(e) => {
                diags.error(
                    value.span,
                    at,
                    format!(
                        "`regex` is not a valid regular expression: {}",
                        first_line(&e.to_string())
                    ),
                );
                None
            }
        },
        _ if !value.value.starts_with('/') => {
            diags.error(
                value.span,
                at,
                format!("`{key}` must start with `/`, as in `/{}`", value.value),
            );
            None
        }
        "path" => Some(PathMatch::Exact(value.value.clone())),
        _ => Some(PathMatch::Prefix(value.value.clone())),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

fn action(
    raw: &RawRoute,
    path: &KeyPath,
    global: &Global,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<RouteAction> {
    // Check every block that is present, so a conflict does not hide mistakes inside them.
    let forward = raw
        .to
        .as_ref()
        .map(|to| forward(raw, to, path, global, base, diags).map(RouteAction::Forward));
    let redirect = raw
        .redirect
        .as_ref()
        .map(|r| redirect(r, &path.key("redirect"), diags).map(RouteAction::Redirect));
    let respond = raw
        .response
        .as_ref()
        .map(|r| response(r, &path.key("response"), diags).map(RouteAction::Respond));
    let set: Vec<(&str, Span)> = [
        ("to", raw.to.as_ref().map(|s| s.span)),
        ("redirect", raw.redirect.as_ref().map(|s| s.span)),
        ("response", raw.response.as_ref().map(|s| s.span)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect();
    match set.as_slice() {
        [] => {
            diags.error(
                raw.span,
                path,
                "policy should have either `to` or `redirect` or `response` defined",
            );
            None
        }
        [_] => forward.or(redirect).or(respond).flatten(),
        [_, (second, span), ..] => {
            diags.error(
                *span,
                path.key(*second),
                format!(
                    "only one of `to`, `redirect` or `response` may be set, but this route sets {}",
                    set.iter()
                        .map(|(k, _)| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            );
            None
        }
    }
}

fn forward(
    raw: &RawRoute,
    to: &Spanned<crate::config::raw::OneOrMany>,
    path: &KeyPath,
    global: &Global,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<Forward> {
    let at = path.key("to");
    if to.value.items.is_empty() {
        diags.error(to.span, &at, "url list is empty");
        return None;
    }
    let mut upstreams = Vec::new();
    let mut first_path = String::new();
    let mut ok = true;
    for (i, entry) in to.value.items.iter().enumerate() {
        let entry_path = if to.value.list {
            at.index(i)
        } else {
            at.clone()
        };
        if to.value.list && entry.value.trim().parse::<u32>().is_ok() {
            diags.error(entry.span, entry_path, format!(
                "`{}` looks like a weight that YAML split from the URL before it: in a `[...]` list, commas separate entries; quote the entry (\"http://host,{}\") or write the list one entry per line",
                entry.value, entry.value));
            ok = false;
            continue;
        }
        match parse_to(&entry.value) {
            Ok((u, p)) => {
                if i == 0 {
                    first_path = p;
                }
                upstreams.push(u);
            }
            Err(e) => {
                diags.error(entry.span, entry_path, e);
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let weighted = upstreams.iter().filter(|u| u.weight.is_some()).count();
    if weighted != 0 && weighted != upstreams.len() {
        diags.error(to.span, &at, "either no weights should be provided, or all endpoints must have non-zero weight specified");
        return None;
    }
    if upstreams.iter().any(|u| u.scheme != upstreams[0].scheme) {
        diags.error(to.span, &at, "all `to` URLs of one route must use the same scheme (http, https or h2c); split the route to mix them");
        return None;
    }
    let https = upstreams[0].scheme == UpstreamScheme::Https;
    let tls = upstream_tls(raw, path, https, global, base, diags)?;

    let lb_policy = match &raw.load_balancing_policy {
        None => LbPolicy::RoundRobin,
        Some(p) => match p.value.to_ascii_lowercase().as_str() {
            "round_robin" | "" => LbPolicy::RoundRobin,
            "least_request" => LbPolicy::LeastRequest,
            "random" => LbPolicy::Random,
            "ring_hash" => LbPolicy::RingHash,
            "maglev" => LbPolicy::Maglev,
            _ => {
                diags.error(p.span, path.key("load_balancing_policy"), format!(
                    "`{}` is not a load balancing policy; use round_robin, least_request, random, ring_hash or maglev", p.value));
                return None;
            }
        },
    };

    let path_rewrite = match (&raw.prefix_rewrite, &raw.regex_rewrite_pattern) {
        (Some(_), Some(r)) => {
            diags.error(
                r.span,
                path.key("regex_rewrite_pattern"),
                "only prefix_rewrite or regex_rewrite_pattern can be specified, but not both",
            );
            return None;
        }
        (Some(p), None) => PathRewrite::Prefix(p.value.clone()),
        (None, Some(r)) => {
            if let Err(e) = super::regex::check(&r.value) {
                diags.error(
                    r.span,
                    path.key("regex_rewrite_pattern"),
                    format!(
                        "not a valid regular expression: {}",
                        first_line(&e.to_string())
                    ),
                );
                return None;
            }
            let substitution = raw
                .regex_rewrite_substitution
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default();
            PathRewrite::Regex {
                pattern: r.value.clone(),
                substitution,
            }
        }
        (None, None) if !first_path.is_empty() => PathRewrite::Prefix(first_path),
        (None, None) => {
            if let Some(s) = &raw.regex_rewrite_substitution {
                diags.warning(
                    s.span,
                    path.key("regex_rewrite_substitution"),
                    "regex_rewrite_substitution does nothing without regex_rewrite_pattern",
                );
            }
            PathRewrite::None
        }
    };

    let host_rewrite = host_rewrite(raw, path, diags)?;
    Some(Forward {
        upstreams,
        lb_policy,
        tls,
        path_rewrite,
        host_rewrite,
    })
}

fn host_rewrite(raw: &RawRoute, path: &KeyPath, diags: &mut Diagnostics) -> Option<HostRewrite> {
    // Pomerium's precedence: host_rewrite, host_rewrite_header, host_path_regex_rewrite_*,
    // preserve_host_header, then the upstream's own host name.
    let mut chosen: Vec<(&str, Span, HostRewrite)> = Vec::new();
    if let Some(h) = &raw.host_rewrite {
        chosen.push((
            "host_rewrite",
            h.span,
            HostRewrite::Literal(h.value.clone()),
        ));
    }
    if let Some(h) = &raw.host_rewrite_header {
        if let Err(e) = check_header_name(&h.value) {
            diags.error(
                h.span,
                path.key("host_rewrite_header"),
                format!("invalid header name: {e}"),
            );
            return None;
        }
        chosen.push((
            "host_rewrite_header",
            h.span,
            HostRewrite::Header(h.value.clone()),
        ));
    }
    if let Some(p) = &raw.host_path_regex_rewrite_pattern {
        if let Err(e) = super::regex::check(&p.value) {
            diags.error(
                p.span,
                path.key("host_path_regex_rewrite_pattern"),
                format!(
                    "not a valid regular expression: {}",
                    first_line(&e.to_string())
                ),
            );
            return None;
        }
        let substitution = raw
            .host_path_regex_rewrite_substitution
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        chosen.push((
            "host_path_regex_rewrite_pattern",
            p.span,
            HostRewrite::PathRegex {
                pattern: p.value.clone(),
                substitution,
            },
        ));
    }
    if let Some(p) = raw.preserve_host_header.as_ref().filter(|p| p.value) {
        chosen.push(("preserve_host_header", p.span, HostRewrite::Preserve));
    }
    for (key, span, _) in chosen.iter().skip(1) {
        diags.warning(
            *span,
            path.key(*key),
            format!(
                "`{key}` is ignored because `{}` takes precedence",
                chosen[0].0
            ),
        );
    }
    Some(
        chosen
            .into_iter()
            .next()
            .map(|(_, _, h)| h)
            .unwrap_or(HostRewrite::Auto),
    )
}

fn upstream_tls(
    raw: &RawRoute,
    path: &KeyPath,
    https: bool,
    global: &Global,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<UpstreamTls> {
    let tls_keys = [
        (
            "tls_skip_verify",
            raw.tls_skip_verify.as_ref().map(|s| s.span),
        ),
        (
            "tls_server_name",
            raw.tls_server_name.as_ref().map(|s| s.span),
        ),
        (
            "tls_upstream_server_name",
            raw.tls_upstream_server_name.as_ref().map(|s| s.span),
        ),
        ("tls_custom_ca", raw.tls_custom_ca.as_ref().map(|s| s.span)),
        (
            "tls_custom_ca_file",
            raw.tls_custom_ca_file.as_ref().map(|s| s.span),
        ),
        (
            "tls_client_cert",
            raw.tls_client_cert.as_ref().map(|s| s.span),
        ),
        (
            "tls_client_key",
            raw.tls_client_key.as_ref().map(|s| s.span),
        ),
        (
            "tls_client_cert_file",
            raw.tls_client_cert_file.as_ref().map(|s| s.span),
        ),
        (
            "tls_client_key_file",
            raw.tls_client_key_file.as_ref().map(|s| s.span),
        ),
    ];
    if !https {
        for (key, span) in tls_keys.iter().filter_map(|(k, s)| s.map(|s| (k, s))) {
            diags.warning(
                span,
                path.key(*key),
                format!("`{key}` has no effect: this route's upstreams are not https://"),
            );
        }
        return Some(UpstreamTls::default());
    }
    let errors_before = diags.error_count();
    let custom_ca_file = source_with(
        Inline::of("tls_custom_ca", raw.tls_custom_ca.as_ref()),
        raw.tls_custom_ca_file
            .as_ref()
            .map(|f| ("tls_custom_ca_file", f)),
        Content::Pem(PemKind::Certificate),
        "route-custom-ca",
        Some("couldn't load custom ca file"),
        path,
        base,
        diags,
    );
    let key_text = raw
        .tls_client_key
        .as_ref()
        .map(|k| Spanned::new(k.value.expose().to_string(), k.span));
    let cert_set = raw.tls_client_cert.is_some() || raw.tls_client_cert_file.is_some();
    let key_set = key_text.is_some() || raw.tls_client_key_file.is_some();
    let client_cert = match (cert_set, key_set) {
        (true, true) => {
            let cert = source_with(
                Inline::of("tls_client_cert", raw.tls_client_cert.as_ref()),
                raw.tls_client_cert_file
                    .as_ref()
                    .map(|f| ("tls_client_cert_file", f)),
                Content::Pem(PemKind::Certificate),
                "route-client-cert",
                Some("couldn't load client cert file"),
                path,
                base,
                diags,
            );
            let key = source_with(
                Inline::of("tls_client_key", key_text.as_ref()),
                raw.tls_client_key_file
                    .as_ref()
                    .map(|f| ("tls_client_key_file", f)),
                Content::Pem(PemKind::PrivateKey),
                "route-client-key",
                Some("couldn't load client key file"),
                path,
                base,
                diags,
            );
            cert.zip(key)
                .map(|(cert, key)| CertificatePair { cert, key })
        }
        (true, false) | (false, true) => {
            let span = [
                raw.tls_client_cert.as_ref().map(|s| s.span),
                raw.tls_client_cert_file.as_ref().map(|s| s.span),
                raw.tls_client_key.as_ref().map(|s| s.span),
                raw.tls_client_key_file.as_ref().map(|s| s.span),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(raw.span);
            diags.error(span, path, "client certificate key and cert both must be non-empty: set tls_client_cert and tls_client_key (base64), or tls_client_cert_file and tls_client_key_file, together");
            return None;
        }
        (false, false) => None,
    };
    let mut ok = diags.error_count() == errors_before;
    let skip_verify = flag(&raw.tls_skip_verify);
    if !skip_verify && custom_ca_file.is_none() && global.certificate_authority_file.is_none() {
        diags.error(raw.to.as_ref().map(|t| t.span).unwrap_or(raw.span), path.key("to"),
            "no CA bundle was found on this system to verify https upstreams; set certificate_authority_file, tls_custom_ca_file or tls_skip_verify");
        ok = false;
    }
    let server_name = raw
        .tls_upstream_server_name
        .as_ref()
        .or(raw.tls_server_name.as_ref())
        .map(|s| s.value.clone());
    ok.then_some(UpstreamTls {
        skip_verify,
        server_name,
        custom_ca_file,
        client_cert,
    })
}

fn redirect(r: &RawRedirect, path: &KeyPath, diags: &mut Diagnostics) -> Option<Redirect> {
    let mut ok = true;
    let response_code = match &r.response_code {
        None => 301,
        Some(c) if matches!(c.value, 301 | 302 | 303 | 307 | 308) => c.value as u16,
        Some(c) => {
            diags.error(c.span, path.key("response_code"), format!("unsupported redirect response code {} (supported values: 301, 302, 303, 307, 308)", c.value));
            ok = false;
            301
        }
    };
    let port_redirect = match &r.port_redirect {
        Some(p) if p.value == 0 || p.value > 65535 => {
            diags.error(
                p.span,
                path.key("port_redirect"),
                "port_redirect must be a port number (1-65535)",
            );
            ok = false;
            None
        }
        p => p.as_ref().map(|p| p.value as u16),
    };
    let https_redirect = flag(&r.https_redirect);
    if let (true, Some(s)) = (https_redirect, &r.scheme_redirect) {
        diags.error(
            s.span,
            path.key("scheme_redirect"),
            "set either https_redirect or scheme_redirect, not both",
        );
        ok = false;
    }
    if let (Some(_), Some(p)) = (&r.path_redirect, &r.prefix_rewrite) {
        diags.error(
            p.span,
            path.key("prefix_rewrite"),
            "set either path_redirect or prefix_rewrite, not both",
        );
        ok = false;
    }
    ok.then(|| Redirect {
        https_redirect,
        scheme_redirect: r.scheme_redirect.as_ref().map(|s| s.value.clone()),
        host_redirect: r.host_redirect.as_ref().map(|s| s.value.clone()),
        port_redirect,
        path_redirect: r.path_redirect.as_ref().map(|s| s.value.clone()),
        prefix_rewrite: r.prefix_rewrite.as_ref().map(|s| s.value.clone()),
        response_code,
        strip_query: flag(&r.strip_query),
    })
}

fn response(r: &RawResponse, path: &KeyPath, diags: &mut Diagnostics) -> Option<DirectResponse> {
    let status = match &r.status {
        None => 200,
        Some(s) if (200..=599).contains(&s.value) => s.value as u16,
        Some(s) => {
            diags.error(
                s.span,
                path.key("status"),
                format!("{} is not an HTTP status Envoy can send (200-599)", s.value),
            );
            return None;
        }
    };
    Some(DirectResponse {
        status,
        body: r.body.as_ref().map(|b| b.value.clone()).unwrap_or_default(),
    })
}

fn route_policy(raw: &RawRoute, path: &KeyPath, diags: &mut Diagnostics) -> Policy {
    let public = flag(&raw.allow_public_unauthenticated_access);
    let any_user = flag(&raw.allow_any_authenticated_user);
    let users: Vec<String> = raw
        .allowed_users
        .iter()
        .flat_map(|l| l.value.0.iter().map(|s| s.value.clone()))
        .collect();
    let domains: Vec<String> = raw
        .allowed_domains
        .iter()
        .flat_map(|l| l.value.0.iter().map(|s| s.value.clone()))
        .collect();
    let mut claims: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    if let Some(c) = &raw.allowed_idp_claims {
        for (name, values) in &c.value.0 {
            let list = match &values.kind {
                NodeKind::Seq(items) => items.iter().map(|i| i.to_json()).collect(),
                _ => vec![values.to_json()],
            };
            claims.insert(name.value.clone(), list);
        }
    }
    let whitelists = !users.is_empty() || !domains.is_empty();
    if public && (any_user || whitelists) {
        let span = raw
            .allow_public_unauthenticated_access
            .as_ref()
            .map(|s| s.span)
            .unwrap_or(raw.span);
        diags.error(span, path.key("allow_public_unauthenticated_access"), "route marked as public but contains whitelists (allowed_users, allowed_domains or allow_any_authenticated_user); a public route lets everyone in, so remove one or the other");
    } else if any_user && whitelists {
        let span = raw
            .allow_any_authenticated_user
            .as_ref()
            .map(|s| s.span)
            .unwrap_or(raw.span);
        diags.error(span, path.key("allow_any_authenticated_user"), "route marked accessible for any authenticated user but contains whitelists (allowed_users or allowed_domains); remove one or the other");
    }
    let shorthands = Shorthands {
        allow_public_unauthenticated_access: public,
        cors_allow_preflight: flag(&raw.cors_allow_preflight),
        allow_any_authenticated_user: any_user,
        allowed_domains: domains,
        allowed_idp_claims: claims.into_iter().collect(),
        allowed_users: users,
    };
    let mut rules: Vec<policy::Rule> = shorthands.to_rule().into_iter().collect();
    if let Some(p) = &raw.policy {
        rules.extend(policy::parse_policy(&p.value, &path.key("policy"), diags));
    }
    Policy { rules }
}

fn depends_on(raw: &RawRoute, path: &KeyPath, diags: &mut Diagnostics) -> Vec<String> {
    let Some(list) = &raw.depends_on else {
        return Vec::new();
    };
    if list.value.0.len() > 5 {
        diags.error(
            list.span,
            path.key("depends_on"),
            "depends_on is limited to 5 additional redirect hosts",
        );
    }
    let mut hosts = Vec::new();
    for entry in &list.value.0 {
        let host = if entry.contains("://") {
            url::Url::parse(entry)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        } else if entry.contains('/') {
            None
        } else {
            Some(entry.value.clone())
        };
        match host {
            Some(h) if !h.is_empty() => hosts.push(h.to_ascii_lowercase()),
            _ => diags.error(
                entry.span,
                path.key("depends_on"),
                format!(
                    "unsupported depends_on value `{}`: give a host name or a URL",
                    entry.value
                ),
            ),
        }
    }
    hosts
}
