//! `sluice diff OLD NEW`: which Envoy resources applying NEW would add, change and remove,
//! each with a one-line reason, and whether a listener would change and drain connections.

mod outline;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use self::tree::FieldChange;
use super::load;
use crate::app::reload::snapshot_for;
use crate::config::Model;
use crate::config::duration::GoDuration;
use crate::xds::{Resource, ResourceType, Snapshot};

/// Nothing would change.
const EXIT_SAME: u8 = 0;
/// Resources change, and no listener does.
const EXIT_CHANGES: u8 = 1;
/// A listener changes or goes: Envoy drains its connections.
const EXIT_DRAIN: u8 = 2;
/// sysexits.h: an internal error (the report could not be written).
const EXIT_SOFTWARE: u8 = 70;

/// How many differing fields a reason names before it says "and N more".
const PATHS_SHOWN: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

/// The kinds of resource, in the order a report lists them (listeners first: they drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Listener,
    RouteTable,
    Scope,
    Cluster,
    Secret,
}

impl Kind {
    const ALL: [(Kind, ResourceType); 5] = [
        (Kind::Listener, ResourceType::Listener),
        (Kind::RouteTable, ResourceType::RouteConfiguration),
        (Kind::Scope, ResourceType::ScopedRoute),
        (Kind::Cluster, ResourceType::Cluster),
        (Kind::Secret, ResourceType::Secret),
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Listener => "listener",
            Kind::RouteTable => "route table",
            Kind::Scope => "scope",
            Kind::Cluster => "cluster",
            Kind::Secret => "secret",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

/// One resource that differs.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: String,
    pub change: ChangeKind,
    pub reason: String,
    /// The fields that differ (changed resources; never for secrets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Whether Envoy drains this listener's connections.
    pub drains: bool,
}

/// What a listener change costs the connections it holds.
#[derive(Clone, Debug, Serialize)]
pub struct Drain {
    pub listeners: Vec<String>,
    /// `--drain-time-s` of the running Envoy, from OLD's `sluice_drain_time`.
    pub drain_time_s: u64,
    /// The old connection manager's HTTP/2 grace before the final GOAWAY.
    pub http2_drain_timeout_ms: u64,
    /// NEW's `sluice_drain_time`, when it differs (Envoy takes it only when restarted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_drain_time_s: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub old: String,
    pub new: String,
    pub changes: Vec<Change>,
    pub drain: Option<Drain>,
    pub summary: Summary,
    pub exit_code: u8,
}

pub fn diff(old: &Path, new: &Path, format: DiffFormat) -> ExitCode {
    // Both files are checked, so one run reports the problems of both.
    let (old_model, new_model) = (load(old), load(new));
    let (old_model, new_model) = match (old_model, new_model) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for (path, failed, which) in [(old, a.is_err(), "OLD"), (new, b.is_err(), "NEW")] {
                if failed {
                    eprintln!(
                        "sluice diff: {which} config {} is invalid; nothing was compared",
                        path.display()
                    );
                }
            }
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let report = compare(&old_model, &new_model);
    let text = match format {
        DiffFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("sluice diff: cannot write the report: {e}");
                return ExitCode::from(EXIT_SOFTWARE);
            }
        },
        DiffFormat::Text => render_text(&report, Emphasis::for_stdout()),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that stops early (`| head`) has what it wanted; the verdict stands.
        Ok(()) => ExitCode::from(report.exit_code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(report.exit_code),
        Err(e) => {
            eprintln!("sluice diff: cannot write the report: {e}");
            ExitCode::from(EXIT_SOFTWARE)
        }
    }
}

/// Compares what sluice would serve for two validated configs.
pub fn compare(old: &Model, new: &Model) -> Report {
    let (a, b) = (snapshot_for(old, 1), snapshot_for(new, 2));
    let routes = RouteLabels::new(old, new);
    let mut changes = Vec::new();
    for (kind, ty) in Kind::ALL {
        changes.extend(compare_type(kind, ty, &a, &b, &routes));
    }
    let mut summary = Summary::default();
    for c in &changes {
        match c.change {
            ChangeKind::Added => summary.added += 1,
            ChangeKind::Changed => summary.changed += 1,
            ChangeKind::Removed => summary.removed += 1,
        }
    }
    let draining: Vec<String> = changes
        .iter()
        .filter(|c| c.drains)
        .map(|c| c.name.clone())
        .collect();
    // The drain window is an Envoy flag, so the running Envoy keeps the one it started with
    // (OLD's); the draining connections run the old connection manager, with OLD's timeout.
    let drain = (!draining.is_empty()).then(|| Drain {
        listeners: draining,
        drain_time_s: old.global.drain_time.value.as_secs(),
        http2_drain_timeout_ms: millis(old.global.http2_drain_timeout.value),
        new_drain_time_s: (new.global.drain_time.value != old.global.drain_time.value)
            .then_some(new.global.drain_time.value.as_secs()),
    });
    let exit_code = if drain.is_some() {
        EXIT_DRAIN
    } else if changes.is_empty() {
        EXIT_SAME
    } else {
        EXIT_CHANGES
    };
    Report {
        old: old.file.display().to_string(),
        new: new.file.display().to_string(),
        changes,
        drain,
        summary,
        exit_code,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn compare_type(
    kind: Kind,
    ty: ResourceType,
    old: &Snapshot,
    new: &Snapshot,
    routes: &RouteLabels,
) -> Vec<Change> {
    let (a, b) = (old.resources(ty), new.resources(ty));
    let names: BTreeSet<&str> = a.keys().chain(b.keys()).map(|n| &**n).collect();
    let mut changes: Vec<Change> = Vec::new();
    for name in names {
        let change = match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x.version == y.version => continue,
            (Some(x), Some(y)) => changed((kind, ty), name, x, y, routes),
            (Some(x), None) => removed((kind, ty), name, x),
            (None, Some(y)) => added((kind, ty), name, y),
            (None, None) => continue,
        };
        changes.push(change);
    }
    if kind == Kind::Cluster {
        pair_replaced_clusters(&mut changes, a, b);
    }
    changes
}

/// A resource as proto3 JSON, every field present (so `AUTO → HTTP1` reads as such instead of
/// `unset → HTTP1`). Secrets are never decoded: the report must not hold anything of them.
fn decode(ty: ResourceType, r: &Resource) -> Option<Value> {
    if ty == ResourceType::Secret {
        return None;
    }
    let name = ty.type_url().rsplit('/').next()?;
    let descriptor = crate::envoy::json::pool().get_message_by_name(name)?;
    let message = prost_reflect::DynamicMessage::decode(descriptor, r.bytes.as_ref()).ok()?;
    let options = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .ok()
}

fn added((kind, _): (Kind, ResourceType), name: &str, r: &Resource) -> Change {
    let bytes = r.bytes.as_ref();
    let reason = match kind {
        Kind::Listener => outline::listener(bytes).map(|a| format!("new listener on {a}")),
        Kind::RouteTable => outline::table(bytes).map(|t| format!("new route table: {t}")),
        Kind::Scope => outline::scope(bytes)
            .map(|(host, table)| format!("host {host} gets its own route table ({table})")),
        Kind::Cluster => outline::cluster(bytes).map(|c| format!("new cluster: {c}")),
        Kind::Secret => Some("certificate added".into()),
    };
    Change {
        kind,
        name: name.into(),
        change: ChangeKind::Added,
        reason: reason.unwrap_or_else(|| "new resource".into()),
        fields: Vec::new(),
        drains: false,
    }
}

fn removed((kind, _): (Kind, ResourceType), name: &str, r: &Resource) -> Change {
    let bytes = r.bytes.as_ref();
    let reason = match kind {
        Kind::Listener => outline::listener(bytes).map(|a| {
            format!("listener on {a} removed: Envoy drains its connections, then closes them")
        }),
        Kind::RouteTable => outline::table(bytes).map(|t| format!("route table removed ({t})")),
        Kind::Scope => {
            outline::scope(bytes).map(|(host, _)| format!("host {host} loses its own route table"))
        }
        Kind::Cluster => Some("no route uses it any more".into()),
        Kind::Secret => Some("certificate removed".into()),
    };
    Change {
        kind,
        name: name.into(),
        change: ChangeKind::Removed,
        reason: reason.unwrap_or_else(|| "resource removed".into()),
        fields: Vec::new(),
        drains: kind == Kind::Listener,
    }
}

fn changed(
    (kind, ty): (Kind, ResourceType),
    name: &str,
    old: &Resource,
    new: &Resource,
    routes: &RouteLabels,
) -> Change {
    let mut change = Change {
        kind,
        name: name.into(),
        change: ChangeKind::Changed,
        reason: String::new(),
        fields: Vec::new(),
        drains: false,
    };
    if kind == Kind::Secret {
        // Over SDS a new certificate reaches the listener without replacing it.
        change.reason = "certificate changed (over SDS: the listener stays, nothing drains)".into();
        return change;
    }
    let (Some(a), Some(b)) = (decode(ty, old), decode(ty, new)) else {
        change.reason = "content changed".into();
        change.drains = kind == Kind::Listener;
        return change;
    };
    change.fields = tree::diff(&a, &b);
    if change.fields.is_empty() {
        // Envoy skips an update whose content hashes the same, so nothing drains.
        change.reason = "same content under a new version: Envoy keeps what it has".into();
        return change;
    }
    change.reason = match kind {
        Kind::Listener => {
            change.drains = true;
            listener_reason(&a, &b, &change.fields)
        }
        Kind::RouteTable => table_reason(&a, &b, routes),
        Kind::Cluster => cluster_reason(&change.fields),
        Kind::Scope | Kind::Secret => fields_reason(&change.fields),
    };
    change
}

/// Long prefixes every listener path shares, shortened in sentences (the JSON report keeps
/// the full paths).
const SHORT_PATHS: &[(&str, &str)] = &[
    (
        "filter_chains[0].filters[envoy.filters.network.http_connection_manager].typed_config.",
        "hcm.",
    ),
    (
        "filter_chains[0].transport_socket.typed_config.common_tls_context.",
        "tls.",
    ),
];

fn short(path: &str) -> String {
    for (long, short) in SHORT_PATHS {
        if let Some(rest) = path.strip_prefix(long) {
            return format!("{short}{rest}");
        }
    }
    path.to_string()
}

fn fields_reason(fields: &[FieldChange]) -> String {
    let mut parts: Vec<String> = fields
        .iter()
        .take(PATHS_SHOWN)
        .map(|f| f.describe(&short(&f.path)))
        .collect();
    if fields.len() > PATHS_SHOWN {
        parts.push(format!("and {} more", fields.len() - PATHS_SHOWN));
    }
    parts.join("; ")
}

fn hcm(listener: &Value) -> &Value {
    &listener["filter_chains"][0]["filters"][0]["typed_config"]
}

fn listener_reason(old: &Value, new: &Value, fields: &[FieldChange]) -> String {
    let (a, b) = (hcm(old), hcm(new));
    let scoped = |h: &Value| h.get("scoped_routes").is_some();
    let rds = |h: &Value| h.get("rds").is_some();
    if scoped(a) && rds(b) {
        return "one route table for every host instead of a table per host (a wildcard route needs it)".into();
    }
    if rds(a) && scoped(b) {
        return "a route table per host instead of one table (the last wildcard route is gone)"
            .into();
    }
    let sds = "tls_certificate_sds_secret_configs";
    let certificates: Vec<&FieldChange> = fields.iter().filter(|f| f.path.contains(sds)).collect();
    if !certificates.is_empty() && certificates.len() == fields.len() {
        let listed: Vec<String> = certificates
            .iter()
            .map(|f| {
                let name = f
                    .path
                    .rsplit_once(&format!("{sds}["))
                    .map_or(f.path.as_str(), |(_, rest)| rest)
                    .split(']')
                    .next()
                    .unwrap_or_default();
                match (&f.old, &f.new) {
                    (tree::Shown::Unset, _) => format!("{name} added"),
                    (_, tree::Shown::Unset) => format!("{name} removed"),
                    _ => format!("{name} changed"),
                }
            })
            .collect();
        return format!(
            "certificate list changed ({}): the TLS filter chain is rebuilt",
            listed.join(", ")
        );
    }
    fields_reason(fields)
}

/// Config routes by id, to name Envoy routes (`route/<id>`, `route/<id>/<variant>`) after the
/// route they come from: NEW's for what exists in NEW, else OLD's.
struct RouteLabels {
    /// Route id → (what the route matches, where it is written).
    labels: BTreeMap<String, (String, String)>,
}

impl RouteLabels {
    fn new(old: &Model, new: &Model) -> Self {
        let mut labels = BTreeMap::new();
        for (model, which) in [(old, "OLD"), (new, "NEW")] {
            for r in &model.routes {
                let path = match &r.path_match {
                    crate::config::model::PathMatch::Prefix(p) if p == "/" || p.is_empty() => {
                        String::new()
                    }
                    crate::config::model::PathMatch::Prefix(p) => format!(" prefix {p}"),
                    crate::config::model::PathMatch::Exact(p) => format!(" path {p}"),
                    crate::config::model::PathMatch::Regex(r) => format!(" regex {r}"),
                };
                labels.insert(
                    r.id.clone(),
                    (
                        format!("{}{path}", r.label()),
                        format!("{which} line {}", r.line),
                    ),
                );
            }
        }
        RouteLabels { labels }
    }

    /// The config route an Envoy route belongs to, a label for it, and what it matches.
    fn group(&self, envoy_name: &str) -> (String, String, Option<String>) {
        if let Some(rest) = envoy_name.strip_prefix("route/") {
            let id = rest.split('/').next().unwrap_or(rest);
            if let Some((matches, line)) = self.labels.get(id) {
                return (
                    format!("route/{id}"),
                    format!("route/{id} ({matches}, {line})"),
                    Some(matches.clone()),
                );
            }
        }
        // sluice's own routes on every host; the stream probe takes the policy of the host's
        // first route, so it changes with it.
        let label = match envoy_name {
            n if n.starts_with("route/sluice/stream-probe") => {
                format!("{n} (sluice's stream probe, which takes the host's policy)")
            }
            n if n.starts_with("route/sluice/") => format!("{n} (sluice's own)"),
            n => n.to_string(),
        };
        (envoy_name.to_string(), label, None)
    }
}

/// Routes of a table by name, each with the first domain of its virtual host.
fn routes_of(table: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for vhost in table["virtual_hosts"].as_array().into_iter().flatten() {
        for route in vhost["routes"].as_array().into_iter().flatten() {
            if let Some(name) = route["name"].as_str() {
                out.insert(name.to_string(), route.clone());
            }
        }
    }
    out
}

/// What changed in a route table, per config route: added, removed, and changed with the
/// fields that differ. A route and its stream variants count as one.
fn table_reason(old: &Value, new: &Value, labels: &RouteLabels) -> String {
    let (a, b) = (routes_of(old), routes_of(new));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    // Per config route: (label, what it matches, members old, members new, changed fields).
    type Group = (String, Option<String>, usize, usize, Vec<String>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for name in names {
        let (key, label, matches) = labels.group(name);
        let entry = groups
            .entry(key)
            .or_insert((label, matches, 0, 0, Vec::new()));
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) => {
                entry.2 += 1;
                entry.3 += 1;
                for f in tree::diff(x, y) {
                    // The checksum follows every route setting; name it only when nothing
                    // Envoy itself applies changed (a policy edit).
                    let text = if f.path.ends_with("context_extensions.route_checksum") {
                        "policy or ext_authz settings".to_string()
                    } else {
                        f.describe(&f.path)
                    };
                    entry.4.push(text);
                }
            }
            (Some(_), None) => {
                entry.2 += 1;
                entry.4.push(format!("variant {name} removed"));
            }
            (None, Some(_)) => {
                entry.3 += 1;
                entry.4.push(format!("variant {name} added"));
            }
            (None, None) => {}
        }
    }
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (key, (label, matches, before, after, mut fields)) in groups {
        if before == 0 {
            added.push((key, label, matches));
        } else if after == 0 {
            removed.push((key, label, matches));
        } else if !fields.is_empty() {
            fields.dedup();
            let checksum = "policy or ext_authz settings";
            if fields.len() > 1 {
                fields.retain(|f| f != checksum);
            }
            fields.sort();
            fields.dedup();
            let mut shown: Vec<String> = fields.iter().take(PATHS_SHOWN).cloned().collect();
            if fields.len() > PATHS_SHOWN {
                shown.push(format!("and {} more", fields.len() - PATHS_SHOWN));
            }
            changed.push(format!("{label}: {}", shown.join(", ")));
        }
    }
    // A route whose `to` (or redirect, or response) changes gets a new id, which Pomerium
    // derives from them: the same match removed and added is one route replaced.
    let mut replaced = Vec::new();
    added.retain(|(new_key, _, matches)| {
        let Some(m) = matches else { return true };
        let Some(i) = removed.iter().position(|(_, _, r)| r.as_ref() == Some(m)) else {
            return true;
        };
        let (old_key, _, _) = removed.remove(i);
        replaced.push(format!(
            "{m}: {old_key} → {new_key} (the route id follows from, to and the path)"
        ));
        false
    });
    let added: Vec<String> = added.into_iter().map(|(_, l, _)| l).collect();
    let removed: Vec<String> = removed.into_iter().map(|(_, l, _)| l).collect();
    let mut parts = Vec::new();
    for (what, list) in [
        ("changed", changed),
        ("replaced", replaced),
        ("added", added),
        ("removed", removed),
    ] {
        if !list.is_empty() {
            parts.push(format!("routes {what}: {}", list.join("; ")));
        }
    }
    if parts.is_empty() {
        // Not a route: a virtual host's domains or the table's own headers.
        let fields = tree::diff(old, new);
        return fields_reason(&fields);
    }
    parts.join("; ")
}

/// The aspects of a cluster that a change touches, then its fields.
fn cluster_reason(fields: &[FieldChange]) -> String {
    let mut aspects: Vec<&str> = fields
        .iter()
        .map(|f| {
            let top = f.path.split(['.', '[']).next().unwrap_or_default();
            match top {
                "load_assignment" => "endpoints",
                "transport_socket" => "TLS",
                t if t.contains("timeout") => "timeouts",
                "typed_extension_protocol_options" => "protocol options",
                "circuit_breakers" => "circuit breakers",
                "lb_policy" => "load balancing",
                _ => "settings",
            }
        })
        .collect();
    aspects.sort_unstable();
    aspects.dedup();
    format!("{}: {}", aspects.join(", "), fields_reason(fields))
}

/// A changed upstream set gets a new cluster name (`cluster/<host>-<port>-<hash>`): an added
/// cluster and a removed one with the same host and port are one cluster replaced.
fn pair_replaced_clusters(
    changes: &mut [Change],
    old: &crate::xds::snapshot::Resources,
    new: &crate::xds::snapshot::Resources,
) {
    let stem = |name: &str| name.rsplit_once('-').map(|(s, _)| s.to_string());
    let removed: Vec<(usize, String)> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.change == ChangeKind::Removed)
        .filter_map(|(i, c)| Some((i, stem(&c.name)?)))
        .collect();
    let mut taken = BTreeSet::new();
    for i in 0..changes.len() {
        if changes[i].change != ChangeKind::Added {
            continue;
        }
        let Some(s) = stem(&changes[i].name) else {
            continue;
        };
        let Some(&(j, _)) = removed
            .iter()
            .find(|(j, rs)| *rs == s && !taken.contains(j))
        else {
            continue;
        };
        taken.insert(j);
        let (old_name, new_name) = (changes[j].name.clone(), changes[i].name.clone());
        let fields = match (old.get(old_name.as_str()), new.get(new_name.as_str())) {
            (Some(a), Some(b)) => match (
                decode(ResourceType::Cluster, a),
                decode(ResourceType::Cluster, b),
            ) {
                (Some(mut a), Some(mut b)) => {
                    // The name is what is replaced; the rest is what differs.
                    a["name"] = Value::Null;
                    b["name"] = Value::Null;
                    tree::diff(&a, &b)
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let what = if fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", cluster_reason(&fields))
        };
        changes[i].reason = format!("replaces {old_name}{what}");
        changes[j].reason = format!("replaced by {new_name}");
    }
}

/// How the drain line stands out: ANSI bold on a terminal, Markdown bold otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emphasis {
    Ansi,
    Markdown,
}

impl Emphasis {
    fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            Emphasis::Ansi
        } else {
            Emphasis::Markdown
        }
    }

    fn bold(self, text: &str) -> String {
        match self {
            Emphasis::Ansi => format!("\x1b[1m{text}\x1b[0m"),
            Emphasis::Markdown => format!("**{text}**"),
        }
    }
}

pub fn render_text(report: &Report, emphasis: Emphasis) -> String {
    let mut out = String::new();
    if report.changes.is_empty() {
        out.push_str("no changes: Envoy would be sent nothing\n");
        return out;
    }
    // Fixed columns, so reports line up with each other too.
    let kind_width = Kind::RouteTable.label().len();
    for c in &report.changes {
        let verb = match c.change {
            ChangeKind::Added => "added  ",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        };
        out.push_str(&format!(
            "{verb} {:kind_width$}  {}: {}\n",
            c.kind.label(),
            c.name,
            c.reason
        ));
    }
    if let Some(d) = &report.drain {
        let time = GoDuration(Duration::from_secs(d.drain_time_s));
        let goaway = GoDuration(Duration::from_millis(d.http2_drain_timeout_ms));
        let which = d.listeners.join(", ");
        let mut line = format!(
            "DRAIN: {which} would change and drain its open connections: Envoy tells every client at once (HTTP/2 GOAWAY, the final one after {goaway}; HTTP/1.1 Connection: close) and closes what is still open after {time} (sluice_drain_time)"
        );
        if let Some(new) = d.new_drain_time_s {
            line.push_str(&format!(
                "; NEW sets sluice_drain_time to {}, which Envoy takes only when restarted with the flags of `sluice envoy-flags`",
                GoDuration(Duration::from_secs(new))
            ));
        }
        out.push_str(&emphasis.bold(&line));
        out.push('\n');
    }
    let s = &report.summary;
    let drains = match &report.drain {
        None => "no listener drains".to_string(),
        Some(d) if d.listeners.len() == 1 => "1 listener drains".to_string(),
        Some(d) => format!("{} listeners drain", d.listeners.len()),
    };
    out.push_str(&format!(
        "{} changed, {} added, {} removed; {drains}\n",
        s.changed, s.added, s.removed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(drain: bool) -> Report {
        Report {
            old: "old.yaml".into(),
            new: "new.yaml".into(),
            changes: vec![Change {
                kind: Kind::Listener,
                name: "listener/ingress".into(),
                change: ChangeKind::Changed,
                reason: "hcm.codec_type: AUTO → HTTP1".into(),
                fields: Vec::new(),
                drains: drain,
            }],
            drain: drain.then(|| Drain {
                listeners: vec!["listener/ingress".into()],
                drain_time_s: 600,
                http2_drain_timeout_ms: 5000,
                new_drain_time_s: None,
            }),
            summary: Summary {
                changed: 1,
                added: 0,
                removed: 0,
            },
            exit_code: if drain { EXIT_DRAIN } else { EXIT_CHANGES },
        }
    }

    #[test]
    fn the_drain_line_is_bold_on_a_terminal_and_marked_otherwise() {
        let ansi = render_text(&report(true), Emphasis::Ansi);
        let line = ansi.lines().find(|l| l.contains("DRAIN:")).unwrap();
        assert!(line.starts_with("\x1b[1mDRAIN: listener/ingress") && line.ends_with("\x1b[0m"));
        assert!(line.contains("after 10m0s (sluice_drain_time)"), "{line}");
        let plain = render_text(&report(true), Emphasis::Markdown);
        let line = plain.lines().find(|l| l.contains("DRAIN:")).unwrap();
        assert!(
            line.starts_with("**DRAIN:") && line.ends_with("**"),
            "{line}"
        );
        assert!(plain.ends_with("1 changed, 0 added, 0 removed; 1 listener drains\n"));
    }

    #[test]
    fn no_drain_no_bold_line() {
        let text = render_text(&report(false), Emphasis::Ansi);
        assert!(!text.contains("DRAIN") && !text.contains('\x1b'), "{text}");
        assert!(text.ends_with("; no listener drains\n"));
    }
}
