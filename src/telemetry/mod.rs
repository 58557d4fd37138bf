//! Logging setup and metrics rendering.

pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::config::model::LogLevel;

/// Logs go to stderr; `RUST_LOG` overrides the config's `log_level`.
pub fn init(level: LogLevel) {
    let default = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("sluice={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
