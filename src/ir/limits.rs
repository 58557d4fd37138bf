//! How a route's timeouts are chosen: Pomerium's semantics for ordinary requests, and no route
//! timeout for requests that open streams unless the route sets `timeout` itself. Shared by
//! the IR builder and `sluice explain`, so what is explained is what is built.

use std::time::Duration;

use crate::config::model::{Global, Origin, Route, Setting};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// Route timeout for ordinary requests.
    pub ordinary: Setting<Duration>,
    /// Route timeout for requests that open streams (SSE, gRPC, upgrades).
    pub streams: Setting<Duration>,
    /// Route idle timeout; None leaves the HCM's stream idle timeout (`timeout_idle`).
    pub idle: Option<Setting<Duration>>,
}

impl RouteTimeouts {
    /// Whether stream requests need their own Envoy route entries.
    pub fn streams_differ(&self) -> bool {
        self.ordinary.value != self.streams.value
    }
}

fn sluice(value: Duration, why: &str) -> Setting<Duration> {
    Setting {
        value,
        origin: Origin::Sluice {
            why: why.to_string(),
        },
    }
}

pub fn route_timeouts(route: &Route, global: &Global) -> RouteTimeouts {
    let idle = route.idle_timeout.clone().or_else(|| {
        // Pomerium: websocket routes never idle out unless the route says so.
        route.allow_websockets.then(|| sluice(Duration::ZERO, "allow_websockets: WebSocket routes have no idle timeout unless idle_timeout is set"))
    });
    if let Some(explicit) = &route.timeout {
        return RouteTimeouts {
            ordinary: explicit.clone(),
            streams: explicit.clone(),
            idle,
        };
    }
    if route.allow_websockets {
        let off = sluice(
            Duration::ZERO,
            "allow_websockets: WebSocket routes have no route timeout unless timeout is set",
        );
        return RouteTimeouts {
            ordinary: off.clone(),
            streams: off,
            idle,
        };
    }
    RouteTimeouts {
        ordinary: global.default_upstream_timeout.clone(),
        streams: sluice(
            Duration::ZERO,
            "requests that open streams (Accept: text/event-stream, gRPC, upgrades) get no route timeout unless the route sets timeout",
        ),
        idle,
    }
}
