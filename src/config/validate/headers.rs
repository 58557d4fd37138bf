//! Header names and header maps (`set_request_headers`, `set_response_headers`, ...).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::document::decode::{KeyPath, Pairs, Spanned};
use crate::document::diag::Diagnostics;

/// RFC 9110 token characters, which header (and cookie) names must use.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a header name cannot be empty".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)))
    {
        Some(c) => Err(format!("`{c}` is not allowed in a header name")),
        None => Ok(()),
    }
}

/// Response headers that nginx reads and Envoy ignores; sluice never buffers, so they are
/// not needed, and a user who adds one is usually chasing a buffering problem.
fn is_nginx_only(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("x-accel-")
}

pub fn warn_nginx_headers(pairs: &Pairs<Spanned<String>>, path: &KeyPath, diags: &mut Diagnostics) {
    for (name, _) in &pairs.0 {
        if is_nginx_only(name) {
            diags.warning(name.span, path.key(name.value.clone()), format!(
                "`{}` does nothing in Envoy (it is an nginx instruction); sluice never buffers responses, so streams such as SSE flow without it", name.value));
        }
    }
}

/// A header map with names checked and case-insensitive duplicates refused.
pub fn header_map(
    pairs: &Pairs<Spanned<String>>,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &pairs.0 {
        let at = path.key(name.value.clone());
        if let Err(e) = check_header_name(name) {
            diags.error(name.span, &at, format!("invalid header name: {e}"));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            diags.error(
                name.span,
                &at,
                format!(
                    "header `{}` is set more than once (header names ignore case)",
                    name.value
                ),
            );
            continue;
        }
        if value.value.contains(['\r', '\n']) {
            diags.error(
                value.span,
                &at,
                "a header value cannot contain a line break",
            );
            continue;
        }
        seen.push(lower);
        out.insert(name.value.clone(), value.value.clone());
    }
    out
}

/// `set_response_headers` over a base set: a `disable` key turns every header off, as in
/// Pomerium; otherwise the given headers replace the base ones with the same name. Without
/// any, the base set itself is shared.
pub fn response_headers(
    pairs: Option<&Pairs<Spanned<String>>>,
    path: &KeyPath,
    base: &Arc<BTreeMap<String, String>>,
    diags: &mut Diagnostics,
) -> Arc<BTreeMap<String, String>> {
    let Some(pairs) = pairs else {
        return Arc::clone(base);
    };
    warn_nginx_headers(pairs, path, diags);
    for (name, _) in &pairs.0 {
        // Envoy refuses the whole route table otherwise (":-prefixed or host headers may not
        // be modified").
        if name.eq_ignore_ascii_case("host") {
            diags.error(
                name.span,
                path.key(name.value.clone()),
                "Envoy does not let a route set the `Host` header on responses",
            );
        }
    }
    let mut given = header_map(pairs, path, diags);
    given.retain(|k, _| !k.eq_ignore_ascii_case("host"));
    if given.keys().any(|k| k.eq_ignore_ascii_case("disable")) {
        return Arc::default();
    }
    let mut merged: BTreeMap<String, String> = base
        .iter()
        .filter(|(k, _)| !given.keys().any(|g| g.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    merged.extend(given);
    Arc::new(merged)
}
