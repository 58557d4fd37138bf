//! Downstream mTLS: `downstream_mtls` and the routes' `tls_downstream_client_ca`, turned into
//! the listener's client CA bundle and each route's certificate check (as Pomerium: the
//! listener asks for certificates, the authorize service decides per route).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::PemKind;
use super::pem::{Content, Inline, der_blocks, source};
use crate::config::generated;
use crate::config::model::{
    ClientCertCheck, DownstreamMtls, Global, MtlsEnforcement, Route, SanMatcher, SanType,
};
use crate::config::raw::{RawDownstreamMtls, RawRoute};
use crate::document::decode::{KeyPath, Spanned};
use crate::document::diag::{Diagnostics, Span};

pub(super) fn downstream_mtls(
    raw: &Spanned<RawDownstreamMtls>,
    base: &Path,
    diags: &mut Diagnostics,
) -> DownstreamMtls {
    let path = KeyPath::root().key("downstream_mtls");
    let m = &raw.value;
    let ca_file = source(
        Inline::of("ca", m.ca.as_ref()),
        m.ca_file.as_ref().map(|f| ("ca_file", f)),
        Content::Pem(PemKind::Certificate),
        "client-ca",
        &path,
        base,
        diags,
    );
    let crl_file = source(
        Inline::of("crl", m.crl.as_ref()),
        m.crl_file.as_ref().map(|f| ("crl_file", f)),
        Content::Crl,
        "client-crl",
        &path,
        base,
        diags,
    );
    let enforcement = match &m.enforcement {
        None => MtlsEnforcement::PolicyWithDefaultDeny,
        Some(e) => match e.value.to_ascii_lowercase().as_str() {
            "policy" => MtlsEnforcement::Policy,
            "policy_with_default_deny" | "" => MtlsEnforcement::PolicyWithDefaultDeny,
            "reject_connection" => MtlsEnforcement::RejectConnection,
            _ => {
                diags.error(e.span, path.key("enforcement"), format!(
                    "`{}` is not an mTLS enforcement mode; use policy, policy_with_default_deny (the default) or reject_connection", e.value));
                MtlsEnforcement::PolicyWithDefaultDeny
            }
        },
    };
    if enforcement == MtlsEnforcement::RejectConnection && ca_file.is_none() {
        let span = m.enforcement.as_ref().map(|e| e.span).unwrap_or(raw.span);
        diags.error(
            span,
            path.key("enforcement"),
            "reject_connection needs a CA to check client certificates against: set `ca` or `ca_file`",
        );
    }
    let mut matchers = Vec::new();
    for (i, entry) in m
        .match_subject_alt_names
        .iter()
        .flat_map(|l| l.value.iter())
        .enumerate()
    {
        let at = path.key("match_subject_alt_names").index(i);
        if entry.value.0.len() != 1 {
            diags.error(
                entry.span,
                &at,
                "each entry is one `type: pattern` pair, such as `email: .*@example\\.com`",
            );
            continue;
        }
        let (kind, pattern) = &entry.value.0[0];
        let san_type = match kind.value.to_ascii_lowercase().as_str() {
            "email" => SanType::Email,
            "dns" => SanType::Dns,
            "uri" => SanType::Uri,
            "ip_address" => SanType::IpAddress,
            "user_principal_name" => SanType::UserPrincipalName,
            _ => {
                diags.error(kind.span, &at, format!(
                    "unknown SAN type `{}`; use email, dns, uri, ip_address or user_principal_name", kind.value));
                continue;
            }
        };
        if let Err(e) = regex::Regex::new(&format!("^(?:{})$", pattern.value)) {
            diags.error(
                pattern.span,
                at.key(kind.value.clone()),
                format!("couldn't parse pattern `{}`: {e}", pattern.value),
            );
            continue;
        }
        matchers.push(SanMatcher {
            san_type,
            pattern: pattern.value.clone(),
        });
    }
    DownstreamMtls {
        ca_file,
        crl_file,
        enforcement,
        match_subject_alt_names: matchers,
        max_verify_depth: m.max_verify_depth.as_ref().map(|d| d.value).unwrap_or(1),
    }
}

/// A route's own client CA (`tls_downstream_client_ca` / `_file`), checked.
pub(super) fn route_client_ca(
    raw: &RawRoute,
    path: &KeyPath,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<PathBuf> {
    source(
        Inline::of(
            "tls_downstream_client_ca",
            raw.tls_downstream_client_ca.as_ref(),
        ),
        raw.tls_downstream_client_ca_file
            .as_ref()
            .map(|f| ("tls_downstream_client_ca_file", f)),
        Content::Pem(PemKind::Certificate),
        "route-client-ca",
        path,
        base,
        diags,
    )
}

/// After every route is known: each route's check, and the listener's CA bundle.
/// `route_cas[i]` is route i's own CA.
pub(super) fn finish(
    global: &mut Global,
    routes: &mut [Arc<Route>],
    route_cas: &[Option<PathBuf>],
    diags: &mut Diagnostics,
) {
    let mtls = global.downstream_mtls.as_ref();
    let global_ca = mtls.and_then(|m| m.ca_file.clone());
    let any_ca = global_ca.is_some() || route_cas.iter().any(Option::is_some);
    if !any_ca {
        return;
    }
    let enforcement = mtls
        .map(|m| m.enforcement)
        .unwrap_or(MtlsEnforcement::PolicyWithDefaultDeny);
    let crls = mtls
        .and_then(|m| m.crl_file.as_deref())
        .map(|f| der_blocks(f, "X509 CRL"))
        .unwrap_or_default();
    let check = |ca: &Path| ClientCertCheck {
        ca_file: ca.to_path_buf(),
        roots_der: der_blocks(ca, "CERTIFICATE"),
        crls_der: crls.clone(),
        match_subject_alt_names: mtls
            .map(|m| m.match_subject_alt_names.clone())
            .unwrap_or_default(),
        max_verify_depth: mtls.map(|m| m.max_verify_depth).unwrap_or(1),
        // As Pomerium: even reject_connection adds the rule, for the per-route CAs.
        default_deny: enforcement != MtlsEnforcement::Policy,
    };
    let global_check = global_ca.as_deref().map(|ca| Arc::new(check(ca)));
    let mut bundle = Vec::new();
    if let Some(ca) = &global_ca {
        add_to_bundle(&mut bundle, ca);
    }
    for (route, ca) in routes.iter_mut().zip(route_cas) {
        // Copied only here, where client CAs apply: a route shared with the last reload's
        // cache stays as validated.
        Arc::make_mut(route).client_certificate = match ca {
            Some(ca) => {
                add_to_bundle(&mut bundle, ca);
                Some(Arc::new(check(ca)))
            }
            None => global_check.clone(),
        };
    }
    match generated::write_private("client-ca-bundle", &bundle) {
        Ok(p) => global.client_ca_bundle = Some(p),
        Err(e) => diags.error(Span::new(1, 1), "downstream_mtls", e.to_string()),
    }
}

fn add_to_bundle(bundle: &mut Vec<u8>, file: &Path) {
    if let Ok(bytes) = std::fs::read(file) {
        if bundle
            .windows(bytes.len().max(1))
            .any(|w| w == bytes.as_slice())
        {
            return;
        }
        bundle.extend_from_slice(&bytes);
        if !bytes.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
}
