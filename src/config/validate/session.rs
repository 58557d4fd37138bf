//! Settings of the sign-in session (cookie attributes, sign-out and programmatic redirects)
//! and Pomerium's `runtime_flags`.

use std::collections::BTreeMap;

use crate::config::model::{CookieSettings, RuntimeFlags, SameSite};
use crate::config::raw::RawConfig;
use crate::document::decode::{KeyPath, did_you_mean};
use crate::document::diag::Diagnostics;

/// Pomerium's runtime flags (`config/runtime_flags.go`): name, default, and what sluice does
/// with it. `None`: honoured; `Some(why)`: accepted, but changing it has no effect in sluice.
pub const RUNTIME_FLAGS: &[(&str, bool, Option<&str>)] = &[
    (
        "add_extra_metrics_labels",
        true,
        Some("sluice's metrics carry no host or installation labels"),
    ),
    ("allow_any_sign_out_redirect_uri", false, None),
    (
        "authorize_use_synced_data",
        true,
        Some("sluice has no databroker"),
    ),
    ("config_hot_reload", true, None),
    (
        "debug_admin_endpoints",
        false,
        Some("sluice has no debug listener"),
    ),
    (
        "envoy_resource_manager",
        true,
        Some("sluice does not configure Envoy's overload manager"),
    ),
    (
        "grpc_databroker_keepalive",
        true,
        Some("sluice has no databroker"),
    ),
    (
        "match_any_incoming_port",
        true,
        Some("sluice always matches routes on any incoming port"),
    ),
    ("mcp", true, Some("sluice does not implement MCP")),
    (
        "mcp_dynamic_client_registration",
        false,
        Some("sluice does not implement MCP"),
    ),
    ("pomerium_jwt_endpoint", false, None),
    ("refresh_session_at_id_token_expiration", true, None),
    ("routes_portal", true, Some("sluice has no routes portal")),
    (
        "set_envoy_concurrency_to_go_max_procs",
        true,
        Some("Envoy's concurrency is set where Envoy is started"),
    ),
    (
        "ssh_allow_direct_tcpip",
        false,
        Some("sluice has no SSH proxy"),
    ),
    ("ssh_routes_portal", false, Some("sluice has no SSH proxy")),
    (
        "ssh_upstream_tunnel",
        false,
        Some("sluice has no SSH proxy"),
    ),
];

pub(super) fn runtime_flags(raw: &RawConfig, diags: &mut Diagnostics) -> RuntimeFlags {
    let mut flags: BTreeMap<String, bool> = RUNTIME_FLAGS
        .iter()
        .map(|(name, default, _)| (name.to_string(), *default))
        .collect();
    let root = KeyPath::root().key("runtime_flags");
    let names: Vec<&str> = RUNTIME_FLAGS.iter().map(|(n, _, _)| *n).collect();
    for (name, value) in raw.runtime_flags.iter().flat_map(|p| p.value.0.iter()) {
        let at = root.key(name.value.clone());
        match RUNTIME_FLAGS.iter().find(|(n, _, _)| *n == name.value) {
            Some((_, default, why)) => {
                if let (Some(why), true) = (why, value.value != *default) {
                    diags.warning(
                        value.span,
                        &at,
                        format!(
                            "runtime flag `{}` is accepted but has no effect: {why}",
                            name.value
                        ),
                    );
                }
                flags.insert(name.value.clone(), value.value);
            }
            None => {
                let hint = did_you_mean(&name.value, &names)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                diags.warning(
                    name.span,
                    &at,
                    format!(
                        "`{}` is not a runtime flag Pomerium knows, so it is ignored{hint}",
                        name.value
                    ),
                );
            }
        }
    }
    RuntimeFlags(flags)
}

pub(super) fn cookie(raw: &RawConfig, diags: &mut Diagnostics) -> CookieSettings {
    let same_site = raw.cookie_same_site.as_ref().and_then(|s| {
        match s.value.to_ascii_lowercase().as_str() {
            "" => None,
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            "none" => Some(SameSite::None),
            _ => {
                diags.error(s.span, "cookie_same_site", format!(
                    "invalid cookie_same_site: unknown cookie_same_site: `{}`; use lax, strict or none (or leave it out)", s.value));
                None
            }
        }
    });
    let domain = raw.cookie_domain.as_ref().and_then(|d| {
        let value = d.value.trim().trim_start_matches('.').to_ascii_lowercase();
        if value.is_empty() {
            return None;
        }
        if !value.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
            diags.error(d.span, "cookie_domain", format!(
                "`{}` is not a domain name; give the domain the cookie is for, such as example.com", d.value));
            return None;
        }
        Some(value)
    });
    CookieSettings {
        http_only: raw.cookie_http_only.as_ref().is_none_or(|b| b.value),
        same_site,
        domain,
    }
}

pub(super) fn signout_redirect_url(raw: &RawConfig, diags: &mut Diagnostics) -> Option<String> {
    let u = raw.signout_redirect_url.as_ref()?;
    match url::Url::parse(&u.value) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {
            Some(u.value.clone())
        }
        _ => {
            diags.error(u.span, "signout_redirect_url", format!(
                "`{}` is not an absolute http(s) URL; give where sign-out should send the browser, such as https://example.com/goodbye", u.value));
            None
        }
    }
}

pub(super) fn redirect_whitelist(raw: &RawConfig, diags: &mut Diagnostics) -> Vec<String> {
    if raw.programmatic_redirect_domain_whitelist.is_none() {
        // Pomerium's default.
        return vec!["localhost".to_string()];
    }
    let mut out = Vec::new();
    for d in raw
        .programmatic_redirect_domain_whitelist
        .iter()
        .flat_map(|l| l.value.0.iter())
    {
        let value = d.value.to_ascii_lowercase();
        let host = value.split(':').next().unwrap_or_default();
        let ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
            });
        if ok {
            out.push(value);
        } else {
            diags.error(d.span, "programmatic_redirect_domain_whitelist", format!(
                "`{}` is not a domain name; list the domains programmatic sign-in may redirect to, such as localhost or app.example.com", d.value));
        }
    }
    out.sort();
    out.dedup();
    out
}
