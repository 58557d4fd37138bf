//! Logging setup (level, JSON or pretty lines) and sluice's Prometheus metrics.

pub mod batched;
mod json_line;
pub mod metrics;

use std::cell::RefCell;
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::log_fields::LogFormat;
use crate::config::model::LogLevel;

pub use json_line::FieldValue;

/// The target of the one-line-per-decision ext_authz log (Pomerium's "authorize check").
pub const DECISION_TARGET: &str = "sluice::authz";

/// Whether `init` chose JSON lines: decision lines then skip tracing (see [`decision_line`]).
static JSON_LINES: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The decision line being written, its capacity kept from line to line.
    static DECISION: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Logs one "authorize check" line at info, the `None` fields left out. With JSON lines it is
/// written straight into the log thread's queue, the same text tracing would have produced:
/// tracing's dispatch (the value set, a visitor call per field, the event's own buffer, then a
/// copy into the writer's) was most of the line's cost on the thread answering Check. The caller
/// has asked `tracing::enabled!` first, so `RUST_LOG` still decides whether the line is wanted.
pub fn decision_line(fields: &[(&str, Option<FieldValue<'_>>)]) {
    if JSON_LINES.load(Ordering::Relaxed) {
        DECISION.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            json_line::write_info_line(&mut line, "authorize check", fields, DECISION_TARGET);
            batched::append_stderr(line.as_bytes());
        });
    } else {
        tracing::info!(target: DECISION_TARGET, "authorize check{}", Pretty(fields));
    }
}

/// Fields as tracing's readable format shows them: ` name="text"`, ` name=7`.
struct Pretty<'f, 'v>(&'f [(&'f str, Option<FieldValue<'v>>)]);

impl fmt::Display for Pretty<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.0 {
            match value {
                Some(FieldValue::Str(text)) => write!(f, " {name}={text:?}")?,
                Some(FieldValue::U64(n)) => write!(f, " {name}={n}")?,
                Some(FieldValue::Display(shown)) => write!(f, " {name}={:?}", shown.to_string())?,
                None => {}
            }
        }
        Ok(())
    }
}

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
        LogFormat::Json => {
            let installed = builder.event_format(json_line::JsonLine).try_init();
            // Only when this call set the subscriber do its lines go to sluice's stderr queue.
            JSON_LINES.store(installed.is_ok(), Ordering::Relaxed);
            installed
        }
        // Colours only for a terminal: escape codes in a file or a pipe are noise.
        LogFormat::Pretty => builder.with_ansi(terminal).try_init(),
    };
}
