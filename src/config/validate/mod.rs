//! Raw config → `Model`: every check, every default, and every problem reported at once.

mod addr;
mod files;
mod global;
mod headers;
mod mtls;
mod pem;
mod regex;
mod route;
mod session;
mod streams;

pub use session::RUNTIME_FLAGS;

use std::collections::HashMap;
use std::path::Path;

pub use addr::connect_host;

use super::model::Model;
use super::raw::{RawConfig, RawRoute};
use crate::document::decode::{Decode, KeyPath};
use crate::document::diag::{Diagnostics, Rejected, Span};
use crate::document::yaml::{self, Node};
use crate::parallel;

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Model, Rejected> {
    match std::fs::read(path) {
        Ok(bytes) => load_bytes(path, &bytes),
        Err(e) => {
            let mut diags = Diagnostics::new(path);
            diags.error(
                Span::new(1, 1),
                "",
                format!("cannot read the config file: {e}"),
            );
            Err(reject(diags))
        }
    }
}

/// Validates config text as if read from `path` (relative file references resolve against
/// the directory of `path`).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Model, Rejected> {
    let mut diags = Diagnostics::new(path);
    let Some(mut raw) = read_raw(bytes, &mut diags) else {
        return Err(reject(diags));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut global = global::validate_global(&raw, base, &mut diags);

    // Each route is decoded and checked on its own (in parallel for large files); their
    // diagnostics are merged afterwards and sorted by position anyway.
    let mut pending: Vec<(&'static str, usize, Node)> = Vec::new();
    for (list, entries) in [("routes", raw.routes.take()), ("policy", raw.policy.take())] {
        let Some(entries) = entries else { continue };
        if list == "policy" {
            diags.warning(entries.span, "policy", "the top-level `policy` list is Pomerium's legacy name for `routes`; it works, but prefer `routes`");
        }
        pending.extend(
            entries
                .value
                .into_iter()
                .enumerate()
                .map(|(i, node)| (list, i, node)),
        );
    }
    let checked = parallel::map(pending, |(list, i, node)| {
        let mut route_diags = diags.sibling();
        let route = RawRoute::decode(node, &KeyPath::root().key(list).index(i), &mut route_diags)
            .and_then(|r| {
                let ca = mtls::route_client_ca(
                    &r,
                    &KeyPath::root().key(list).index(i),
                    base,
                    &mut route_diags,
                );
                route::validate_route(&r, i, list, &global, base, &mut route_diags)
                    .map(|route| (route, ca))
            });
        (route, route_diags)
    });
    let mut routes = Vec::with_capacity(checked.len());
    let mut route_cas = Vec::with_capacity(checked.len());
    for (route, route_diags) in checked {
        diags.absorb(route_diags);
        if let Some((route, ca)) = route {
            routes.push(route);
            route_cas.push(ca);
        }
    }
    mtls::finish(&mut global, &mut routes, &route_cas, &mut diags);
    check_unique_ids(&routes, &mut diags);
    if routes.is_empty() && !diags.has_errors() {
        diags.warning(
            Span::new(1, 1),
            "routes",
            "the config has no routes: Envoy will answer every request with 404",
        );
    }

    if diags.has_errors() {
        return Err(reject(diags));
    }
    let file = path.to_path_buf();
    Ok(Model {
        file,
        global,
        routes,
        warnings: diags.into_sorted(),
    })
}

fn reject(diags: Diagnostics) -> Rejected {
    let file = diags.file().to_path_buf();
    let errors = diags.error_count();
    Rejected {
        file,
        errors,
        diagnostics: diags.into_sorted(),
    }
}

/// File bytes → raw structs, refusing what is not a YAML mapping.
fn read_raw(bytes: &[u8], diags: &mut Diagnostics) -> Option<RawConfig> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = position(&bytes[..e.valid_up_to()]);
            diags.error(Span::new(line, col), "", format!(
                "the file is not UTF-8 text (invalid byte at offset {}); is this a binary file?", e.valid_up_to()));
            return None;
        }
    };
    if let Some(offset) = text.find(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        let (line, col) = position(&bytes[..offset]);
        diags.error(
            Span::new(line, col),
            "",
            "the file contains control characters; is this a binary file?",
        );
        return None;
    }
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            diags.error(Span::new(1, 1), "", "the config file is empty; it needs at least `routes` (see examples/ for a starting point)");
            return None;
        }
        Err(e) => {
            diags.error(e.span, "", e.message);
            return None;
        }
    };
    RawConfig::decode(root, &KeyPath::root(), diags)
}

fn position(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let col = prefix.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, col)
}

fn check_unique_ids(routes: &[super::model::Route], diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &super::model::Route> = HashMap::new();
    for r in routes {
        if let Some(first) = seen.get(r.id.as_str()) {
            let path = KeyPath::root().key("routes").index(r.index);
            diags.error(Span::new(r.line, 1), path, format!(
                "route id `{}` is not unique: routes[{}] (line {}) has the same id; routes with the same `from`, match and destination are duplicates, so remove one or give it a distinct `id`",
                r.id, first.index, first.line));
        } else {
            seen.insert(&r.id, r);
        }
    }
}
