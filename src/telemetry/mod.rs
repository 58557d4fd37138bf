//! Logging setup (level, JSON or pretty lines) and sluice's Prometheus metrics.

pub mod batched;
mod json_line;
pub mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::log_fields::LogFormat;
use crate::config::model::LogLevel;

/// The target of the one-line-per-decision ext_authz log (Pomerium's "authorize check").
pub const DECISION_TARGET: &str = "sluice::authz";

/// Logs go to stderr; `RUST_LOG` overrides the config's `log_level`. Without `log_format`,
/// lines are JSON unless stderr is a terminal (a container's log collector gets JSON, as
/// from Pomerium; a person at a shell gets readable lines). Called once the config is read,
/// so its settings apply from the first line; a config that fails to load is reported on
/// stderr by the CLI without going through here.
pub fn init(level: LogLevel, format: Option<LogFormat>) {
    let default = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("sluice={default},warn")));
    let terminal = std::io::stderr().is_terminal();
    let format = format.unwrap_or(if terminal {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(batched::stderr_line);
    let _ = match format {
        LogFormat::Json => builder.event_format(json_line::JsonLine).try_init(),
        // Colours only for a terminal: escape codes in a file or a pipe are noise.
        LogFormat::Pretty => builder.with_ansi(terminal).try_init(),
    };
}
