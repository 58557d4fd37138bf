//! Raw config → `Model`: every check, every default, and every problem reported at once.

mod addr;
mod files;
mod global;
mod headers;
mod incremental;
mod mtls;
mod pem;
mod regex;
mod route;
mod session;
mod streams;

pub use incremental::{Incremental, Reuse};
pub use session::RUNTIME_FLAGS;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use addr::connect_host;

use super::model::{Global, Model, Route};
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
    let global = global::validate_global(&raw, base, &mut diags);

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
        check_route(list, i, node, &global, base, diags.sibling())
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
    finish(path, global, routes, &route_cas, diags)
}

/// A route checked on its own: the validated route and its own client CA, if it is valid,
/// and what was found.
type Checked = (Option<(Arc<Route>, Option<PathBuf>)>, Diagnostics);

/// Decodes and checks one entry of `list` (at `index`) against the validated global settings.
fn check_route(
    list: &'static str,
    index: usize,
    node: Node,
    global: &Global,
    base: &Path,
    mut diags: Diagnostics,
) -> Checked {
    let path = KeyPath::root().key(list).index(index);
    let route = RawRoute::decode(node, &path, &mut diags).and_then(|r| {
        let ca = mtls::route_client_ca(&r, &path, base, &mut diags);
        route::validate_route(&r, index, list, global, base, &mut diags)
            .map(|route| (Arc::new(route), ca))
    });
    (route, diags)
}

/// The checks that need every route, then the verdict.
fn finish(
    path: &Path,
    mut global: Global,
    mut routes: Vec<Arc<Route>>,
    route_cas: &[Option<PathBuf>],
    mut diags: Diagnostics,
) -> Result<Model, Rejected> {
    mtls::finish(&mut global, &mut routes, route_cas, &mut diags);
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

fn check_unique_ids(routes: &[Arc<Route>], diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &Route> = HashMap::new();
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
