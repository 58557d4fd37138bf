//! sluice's Prometheus metrics, kept and encoded by the `prometheus-client` crate: labelled
//! counters and histograms updated where things happen, plus values read at scrape time.

use std::borrow::Cow;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What a Prometheus server asks for first; the Go client answers it with OpenMetrics too.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic text format, for `curl`, `promtool check metrics` and older scrapers.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// ext_authz Check latency: tens of microseconds when the answer is local, up to seconds when
/// an IdP's keys must be fetched first.
const CHECK_BUCKETS: [f64; 16] = [
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
    250e-3, 1.0, 5.0,
];

/// Reload stages and publish → ACK: milliseconds for small configs, seconds for 10,000 routes.
const RELOAD_BUCKETS: [f64; 14] = [
    1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub type_url: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub outcome: &'static str,
    /// Pomerium's reason strings, sorted, comma-separated.
    pub reason: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

fn reload_histogram() -> Histogram {
    Histogram::new(RELOAD_BUCKETS)
}

/// The metrics updated as things happen. One per process (see [`metrics`]).
#[derive(Debug)]
pub struct Metrics {
    pub xds_responses: Family<TypeLabel, Counter>,
    pub xds_acks: Family<TypeLabel, Counter>,
    pub xds_nacks: Family<TypeLabel, Counter>,
    /// From the publish of a generation to an Envoy's ACK of a response carrying it.
    pub xds_publish_to_ack: Family<TypeLabel, Histogram, fn() -> Histogram>,
    pub authz_decisions: Family<DecisionLabels, Counter>,
    pub authz_check_duration: Histogram,
    pub reload_duration: Family<StageLabel, Histogram, fn() -> Histogram>,
    /// The last publish: its generation and when it happened.
    last_publish: Mutex<Option<(u64, Instant)>>,
}

/// The reload stages, in order.
pub const STAGES: [&str; 4] = ["read", "validate", "translate", "publish"];

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            xds_responses: Family::default(),
            xds_acks: Family::default(),
            xds_nacks: Family::default(),
            xds_publish_to_ack: Family::new_with_constructor(reload_histogram),
            authz_decisions: Family::default(),
            authz_check_duration: Histogram::new(CHECK_BUCKETS),
            reload_duration: Family::new_with_constructor(reload_histogram),
            last_publish: Mutex::new(None),
        };
        // Every stage's series exists from the start, so dashboards see it before the first
        // reload (the xDS types are added by `xds::status`, which knows them).
        for stage in STAGES {
            let _ = m.reload_duration.get_or_create(&StageLabel { stage });
        }
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's metrics. A process serves one config, so one set is right; the lazy static
/// spares every constructor of the services that count a handle to pass around.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Called just before a generation is swapped in, so that every response carrying it
    /// finds its publish time.
    pub fn mark_publish(&self, generation: u64) {
        *self.last_publish.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, Instant::now()));
    }

    pub fn last_publish(&self) -> Option<(u64, Instant)> {
        *self.last_publish.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the xDS series of these resource types at zero, so `rate()` sees them from
    /// the first scrape.
    pub fn know_types(&self, type_urls: impl IntoIterator<Item = &'static str>) {
        for type_url in type_urls {
            let label = TypeLabel { type_url };
            for family in [&self.xds_responses, &self.xds_acks, &self.xds_nacks] {
                let _ = family.get_or_create(&label);
            }
        }
    }

    pub fn observe_stage(&self, stage: &'static str, took: Duration) {
        self.reload_duration
            .get_or_create(&StageLabel { stage })
            .observe(took.as_secs_f64());
    }
}

/// Values kept elsewhere (status counters and gauges), read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scraped {
    pub generation: u64,
    pub reloads_published: u64,
    pub reloads_unchanged: u64,
    pub reloads_failed: u64,
    pub connected_envoys: u64,
    pub connections_total: u64,
    pub response_bytes_total: u64,
    pub checks_total: u64,
    pub refused_credentials_total: u64,
    pub stale_checksum_total: u64,
}

impl prometheus_client::collector::Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut gauge = |name: &str, help: &str, value: u64| -> Result<(), std::fmt::Error> {
            let g = ConstGauge::new(value as i64);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            "sluice_config_generation",
            "Generation of the config being served.",
            self.generation,
        )?;
        gauge(
            "sluice_xds_connected_envoys",
            "Envoys connected over ADS.",
            self.connected_envoys,
        )?;
        let mut counter = |name: &str, help: &str, value: u64| -> Result<(), std::fmt::Error> {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
        };
        counter(
            "sluice_xds_connections",
            "ADS streams opened.",
            self.connections_total,
        )?;
        counter(
            "sluice_xds_response_bytes",
            "Resource bytes sent in discovery responses.",
            self.response_bytes_total,
        )?;
        counter(
            "sluice_authz_checks",
            "ext_authz Check calls answered.",
            self.checks_total,
        )?;
        counter(
            "sluice_authz_refused_credentials",
            "Bearer tokens presented but refused (signature, issuer, audience, lifetime).",
            self.refused_credentials_total,
        )?;
        counter(
            "sluice_authz_stale_checksum",
            "Checks from an Envoy still on an older route table.",
            self.stale_checksum_total,
        )?;
        let reloads = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "sluice_config_reloads",
            "Config reloads by result: published (a new generation), unchanged (nothing sent), failed (the last good config kept serving).",
            None,
            reloads.metric_type(),
        )?;
        for (result, value) in [
            ("published", self.reloads_published),
            ("unchanged", self.reloads_unchanged),
            ("failed", self.reloads_failed),
        ] {
            let labels = [("result", result)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Encodes every metric: OpenMetrics when the scraper asks for it (`accept`), the classic
/// text format otherwise. Returns the content type and the body.
pub fn render(scraped: Scraped, accept: &str) -> (&'static str, String) {
    let m = metrics();
    let mut registry = Registry::default();
    registry.register(
        "sluice_xds_responses",
        "Discovery responses sent, by resource type",
        m.xds_responses.clone(),
    );
    registry.register(
        "sluice_xds_acks",
        "Responses Envoys accepted (ACK), by resource type",
        m.xds_acks.clone(),
    );
    registry.register(
        "sluice_xds_nacks",
        "Responses Envoys rejected (NACK), by resource type",
        m.xds_nacks.clone(),
    );
    registry.register(
        "sluice_xds_publish_to_ack_seconds",
        "From the publish of a config generation to each Envoy's ACK of a response carrying it, by resource type",
        m.xds_publish_to_ack.clone(),
    );
    registry.register(
        "sluice_authz_decisions",
        "ext_authz decisions by outcome (allow, deny, sign_in, unknown_route) and Pomerium's reasons",
        m.authz_decisions.clone(),
    );
    registry.register(
        "sluice_authz_check_duration_seconds",
        "Time sluice took to answer an ext_authz Check",
        m.authz_check_duration.clone(),
    );
    registry.register(
        "sluice_config_reload_duration_seconds",
        "Time of each reload stage: read (the file), validate (YAML and every check), translate (Envoy resources), publish",
        m.reload_duration.clone(),
    );
    registry.register_collector(Box::new(scraped));
    let mut out = String::with_capacity(8 * 1024);
    let openmetrics = accept.contains("application/openmetrics-text");
    // Encoding into a String cannot fail; a failure would be a bug in a label encoder.
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    if encoded.is_err() {
        tracing::error!("metrics encoding failed");
    }
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    (content_type, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_carry_every_family() {
        metrics().authz_check_duration.observe(42e-6);
        metrics()
            .authz_decisions
            .get_or_create(&DecisionLabels {
                outcome: "allow",
                reason: "email-ok".into(),
            })
            .inc();
        let scraped = Scraped {
            reloads_failed: 1,
            ..Default::default()
        };
        let (ct, text) = render(scraped, "*/*");
        assert_eq!(ct, TEXT_CONTENT_TYPE);
        assert!(
            text.contains("sluice_config_reloads_total{result=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sluice_authz_decisions_total{outcome=\"allow\",reason=\"email-ok\"}"),
            "{text}"
        );
        assert!(
            text.contains("sluice_authz_check_duration_seconds_bucket{le=\"5e-05\"}"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let (ct, open) = render(scraped, "application/openmetrics-text;version=1.0.0");
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
