//! Prometheus text exposition of sluice's counters.

use std::fmt::Write;

use crate::app::http::StatusReport;

pub fn render(r: &StatusReport) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "sluice_config_generation",
        "gauge",
        "Generation of the config being served.",
        r.reload.generation,
    );
    metric(
        "sluice_config_reloads_total",
        "counter",
        "Reloads that published a new generation.",
        r.reload.succeeded,
    );
    metric(
        "sluice_config_reloads_unchanged_total",
        "counter",
        "Reloads that changed nothing (nothing was sent).",
        r.reload.unchanged,
    );
    metric(
        "sluice_config_reload_failures_total",
        "counter",
        "Reloads rejected; the last good config kept serving.",
        r.reload.failed,
    );
    metric(
        "sluice_xds_connected_envoys",
        "gauge",
        "Envoys connected over ADS.",
        r.envoys.len() as u64,
    );
    metric(
        "sluice_xds_connections_total",
        "counter",
        "ADS streams opened.",
        r.counters.connections_total,
    );
    metric(
        "sluice_xds_responses_total",
        "counter",
        "Discovery responses sent.",
        r.counters.responses,
    );
    metric(
        "sluice_xds_response_bytes_total",
        "counter",
        "Resource bytes sent in discovery responses.",
        r.counters.bytes_sent,
    );
    metric(
        "sluice_xds_acks_total",
        "counter",
        "Responses Envoys accepted.",
        r.counters.acks,
    );
    metric(
        "sluice_xds_nacks_total",
        "counter",
        "Responses Envoys rejected (NACK).",
        r.counters.nacks,
    );
    let authz = &r.authz;
    metric(
        "sluice_authz_checks_total",
        "counter",
        "ext_authz Check calls answered.",
        authz.checks,
    );
    metric(
        "sluice_authz_refused_credentials_total",
        "counter",
        "Bearer tokens presented but refused (signature, issuer, audience, lifetime).",
        authz.refused_credentials,
    );
    metric(
        "sluice_authz_stale_checksum_total",
        "counter",
        "Checks from an Envoy still on an older route table.",
        authz.stale_checksum,
    );
    let _ = writeln!(
        out,
        "# HELP sluice_authz_decisions_total ext_authz decisions by outcome.\n# TYPE sluice_authz_decisions_total counter"
    );
    for (outcome, value) in [
        ("allowed", authz.allowed),
        ("denied", authz.denied),
        ("sign_in", authz.sign_in),
        ("unknown_route", authz.unknown_route),
    ] {
        let _ = writeln!(
            out,
            "sluice_authz_decisions_total{{outcome=\"{outcome}\"}} {value}"
        );
    }
    out
}
