//! sluice's own global keys for long-lived streams: the listener drain window, the HTTP/2
//! drain grace, and who may open the built-in stream probe.

use std::time::Duration;

use super::global::duration;
use crate::config::model::{Setting, StreamProbe};
use crate::config::raw::RawConfig;
use crate::document::diag::Diagnostics;

/// Envoy's own default `--drain-time-s`, which Pomerium's docs describe ("about 10 minutes").
pub const DEFAULT_DRAIN_TIME: Duration = Duration::from_secs(600);
/// Envoy's default HCM `drain_timeout`, which Pomerium leaves in place.
pub const DEFAULT_HTTP2_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn drain_time(raw: &RawConfig, diags: &mut Diagnostics) -> Setting<Duration> {
    let setting = duration(
        &raw.sluice_drain_time,
        "sluice_drain_time",
        DEFAULT_DRAIN_TIME,
    );
    if let Some(written) = &raw.sluice_drain_time
        && setting.value.subsec_nanos() != 0
    {
        diags.error(
            written.span,
            "sluice_drain_time",
            "sluice_drain_time must be whole seconds: Envoy takes it as --drain-time-s",
        );
    }
    setting
}

pub(super) fn http2_drain_timeout(raw: &RawConfig, diags: &mut Diagnostics) -> Setting<Duration> {
    let setting = duration(
        &raw.sluice_http2_drain_timeout,
        "sluice_http2_drain_timeout",
        DEFAULT_HTTP2_DRAIN_TIMEOUT,
    );
    if let Some(written) = &raw.sluice_http2_drain_timeout
        && setting.value.is_zero()
    {
        diags.warning(
            written.span,
            "sluice_http2_drain_timeout",
            "sluice_http2_drain_timeout: 0s sends the final GOAWAY at once, so requests a client started just before it are refused",
        );
    }
    setting
}

pub(super) fn stream_probe(raw: &RawConfig, diags: &mut Diagnostics) -> StreamProbe {
    let Some(value) = &raw.sluice_stream_probe else {
        return StreamProbe::default();
    };
    match value.value.as_str() {
        "policy" => StreamProbe::Policy,
        "public" => StreamProbe::Public,
        "off" => StreamProbe::Off,
        other => {
            diags.error(
                value.span,
                "sluice_stream_probe",
                format!(
                    "`{other}` is not a stream probe mode; use policy (the route's policy decides), public or off"
                ),
            );
            StreamProbe::default()
        }
    }
}
