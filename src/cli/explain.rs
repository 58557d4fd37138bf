//! `sluice explain`: for one request, the route it takes, where it goes, and every limit that
//! applies to it — each with the config key (and line) that set it, sluice's reason, or
//! "Envoy default" — so a user chasing a cut or stalled stream sees the whole picture.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::load;
use super::target::{self, Target};
use crate::config::duration::GoDuration;
use crate::config::model::{Global, Origin, RouteAction, Setting, UpstreamScheme};
use crate::ir::{self, Action, Authz, BUFFER_LIMIT_BYTES, CONNECT_TIMEOUT, limits};

/// What kind of request, as the stream route variants see it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ordinary,
    Sse,
    Grpc,
    Upgrade,
}

impl Kind {
    fn of(target: &Target) -> Kind {
        let h = |name: &str| target.headers().get(name);
        if h("upgrade").is_some() {
            Kind::Upgrade
        } else if h("content-type").is_some_and(|c| c.starts_with("application/grpc")) {
            Kind::Grpc
        } else if h("accept").is_some_and(|a| a.contains("text/event-stream")) {
            Kind::Sse
        } else {
            Kind::Ordinary
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Ordinary => {
                "an ordinary request (add --header 'Accept: text/event-stream' to see an SSE request)"
            }
            Kind::Sse => "a stream request (Accept: text/event-stream)",
            Kind::Grpc => "a stream request (content-type: application/grpc)",
            Kind::Upgrade => "a stream request (an upgrade, e.g. WebSocket)",
        }
    }
}

fn show(d: Duration) -> String {
    if d.is_zero() {
        "none (0s)".into()
    } else {
        GoDuration(d).to_string()
    }
}

fn origin(o: &Origin) -> String {
    match o {
        Origin::Key { key, line } => format!("`{key}`, line {line}"),
        Origin::Default { key } if key.starts_with("sluice_") => {
            format!("`{key}` not set: sluice's default")
        }
        Origin::Default { key } => format!("`{key}` not set: Pomerium's default"),
        Origin::Sluice { why } => format!("sluice: {why}"),
    }
}

fn row(name: &str, value: String, from: String) {
    println!("  {name:<26} {value:<12} {from}");
}

fn setting(name: &str, s: &Setting<Duration>) {
    row(name, show(s.value), origin(&s.origin));
}

pub fn explain(config: &Path, url: &str, headers: &[String]) -> anyhow::Result<ExitCode> {
    let model = match load(config) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let target = Target::parse(url, headers)?;
    let kind = Kind::of(&target);
    let ir = ir::build(&model);
    let g = &model.global;
    println!("request:  GET {url}: {}", kind.describe());
    let Some(route) = target.route(&ir) else {
        println!("route:    none matches, so Envoy answers 404");
        return Ok(ExitCode::SUCCESS);
    };
    let config_route = target::config_route(&model, route);
    target::print_route(route, config_route);
    if let Some(RouteAction::Forward(f)) = config_route.map(|r| &r.action) {
        let to: Vec<String> = f
            .upstreams
            .iter()
            .map(|u| {
                let scheme = match u.scheme {
                    UpstreamScheme::Http => "http",
                    UpstreamScheme::Https => "https",
                    UpstreamScheme::H2c => "h2c",
                };
                format!("{scheme}://{}:{}", u.host, u.port)
            })
            .collect();
        println!("          to {}", to.join(", "));
    }

    println!("limits on this request:");
    let forward = match &route.action {
        Action::Forward(f) => Some(f),
        _ => None,
    };
    match (forward, config_route) {
        (Some(_), Some(r)) => {
            let t = limits::route_timeouts(r, g);
            let (this, other, other_name) = match kind {
                Kind::Ordinary => (&t.ordinary, &t.streams, "stream requests get"),
                _ => (&t.streams, &t.ordinary, "ordinary requests get"),
            };
            setting("route timeout", this);
            println!(
                "  {:<26} ({other_name} {}: {})",
                "",
                show(other.value),
                origin(&other.origin)
            );
            match &t.idle {
                Some(idle) => setting("route idle timeout", idle),
                None => row(
                    "route idle timeout",
                    show(g.timeout_idle.value),
                    "`idle_timeout` not set: the stream idle timeout below applies".into(),
                ),
            }
        }
        (Some(f), None) => row(
            "route timeout",
            show(f.timeout),
            "sluice's own route".into(),
        ),
        (None, _) => println!("  (Envoy answers this route itself; no upstream timeouts apply)"),
    }
    listener_limits(g);
    match &route.authz {
        Authz::Check { .. } => setting("ext_authz call timeout", &g.grpc_client_timeout),
        Authz::Disabled => row(
            "ext_authz call timeout",
            "-".into(),
            "not called: this route's answer is always allow".into(),
        ),
        Authz::None => {}
    }
    if forward.is_some() {
        row(
            "upstream connect timeout",
            show(CONNECT_TIMEOUT),
            "sluice: every cluster".into(),
        );
        row(
            "upstream buffer limit",
            format!("{} KiB", BUFFER_LIMIT_BYTES / 1024),
            "sluice: per upstream connection (Envoy default 1 MiB); flow control, never buffering a whole response".into(),
        );
        row(
            "retries",
            "none".into(),
            "Envoy default: no retry policy".into(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Limits of the listener and connection manager, the same for every route.
fn listener_limits(g: &Global) {
    setting("stream idle timeout", &g.timeout_idle);
    setting("request timeout", &g.timeout_read);
    println!(
        "  {:<26} (bounds receiving the request, never the response)",
        ""
    );
    setting("max stream duration", &g.timeout_write);
    setting("connection idle timeout", &g.timeout_idle);
    row(
        "max connection duration",
        "none".into(),
        "Envoy default".into(),
    );
    row(
        "downstream buffer limit",
        format!("{} KiB", BUFFER_LIMIT_BYTES / 1024),
        "sluice: per client connection (Envoy default 1 MiB)".into(),
    );
    row(
        "buffer filter",
        "none".into(),
        "sluice never adds one".into(),
    );
    setting("HTTP/2 drain grace", &g.http2_drain_timeout);
    setting("listener drain window", &g.drain_time);
    println!(
        "  {:<26} (how long open connections may finish when a listener-level setting changes; Envoy's --drain-time-s)",
        ""
    );
}
