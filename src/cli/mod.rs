//! Command line: parsing, dispatch and exit codes (0 ok, 64 usage, 78 bad config, 1 failure).

mod check;
mod diff;
mod explain;
mod probe;
mod render;
mod status;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Model};
use crate::document::{Diagnostic, Rejected};
use crate::envoy::bootstrap::AdsFlavour;

/// sysexits.h: the command was used incorrectly.
pub const EXIT_USAGE: u8 = 64;
/// sysexits.h: the configuration is wrong.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Identity-aware proxy control plane for Envoy, configured with Pomerium's YAML"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a config file and report every problem (exit 78 when it is invalid).
    Validate {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a complete Envoy bootstrap holding the resources sluice serves for this config.
    Render {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// Print sluice's intermediate form instead of the Envoy bootstrap.
        #[arg(long)]
        ir: bool,
    },
    /// Explain offline what sluice would decide for one request: the route it takes, the
    /// decision, the status code, and which criteria decided it.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The request URL, as the client would send it (https://app.example.com/path).
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The caller's identity as JSON claims (`{"sub": "alice", "email": ...}`).
        #[arg(long, conflicts_with = "token")]
        claims: Option<String>,
        /// The caller's JWT; its claims are read without verifying the signature.
        #[arg(long)]
        token: Option<String>,
        /// The client's IP address, for `source_ip` criteria.
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
    },
    /// Explain offline which route a request takes, where it goes, and every limit that
    /// applies to it (timeouts for ordinary and stream requests, idle timeouts, buffer limits,
    /// drains), each with the config key and line that set it.
    Explain {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The request URL (https://app.example.com/events).
        #[arg(long)]
        url: String,
        /// A request header, `Name: value` (repeatable); `Accept: text/event-stream`,
        /// `content-type: application/grpc` or `Upgrade: websocket` make it a stream request.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Print the command-line flags Envoy needs besides the bootstrap
    /// (`--drain-time-s` from `sluice_drain_time`, the drain strategy).
    EnvoyFlags {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Read an SSE stream and say whether it streams or is buffered on the way: each event's
    /// arrival and lateness, then a verdict. Point it at `/.sluice/stream-probe` on a route
    /// host for exact figures, or at any SSE URL.
    Probe {
        url: String,
        /// How many events to read.
        #[arg(long, default_value_t = 20)]
        events: u64,
        /// Spacing of sluice's probe events (default 500 ms).
        #[arg(long)]
        interval_ms: Option<u64>,
        /// A request header, `Name: value` (repeatable), e.g. `Authorization: Bearer ...`.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Also trust the CA certificates in this PEM file.
        #[arg(long, value_name = "FILE")]
        cacert: Option<PathBuf>,
        /// Connect to ADDRESS for HOST:PORT, as curl's --resolve (repeatable).
        #[arg(long, value_name = "HOST:PORT:ADDRESS")]
        resolve: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
    /// Show which Envoy resources applying NEW in place of OLD would add, change and remove,
    /// and whether a listener would change and drain its open connections (exit 0 no change,
    /// 1 changes without a drain, 2 a drain, 78 a bad config).
    Diff {
        #[arg(value_name = "OLD.yaml")]
        old: PathBuf,
        #[arg(value_name = "NEW.yaml")]
        new: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: diff::DiffFormat,
    },
    /// Serve the config to Envoys over xDS (ADS) on `grpc_address`, reloading on change; run
    /// Envoy too when its binary is found.
    Serve {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// `managed`: sluice runs Envoy as its child (binary from `envoy_binary`, SLUICE_ENVOY,
        /// PATH or .venv/bin/envoy); `external`: Envoy runs elsewhere and connects; `auto`:
        /// managed when a binary is found.
        #[arg(long, value_enum, default_value = "auto")]
        envoy: crate::app::envoy::EnvoyMode,
    },
    /// Show the Envoys connected to a running sluice: what each was sent and acknowledged,
    /// and its last rejection.
    Status {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Where sluice listens (default: the config's grpc_address).
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
        /// Print the raw JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Print the bootstrap an external Envoy needs to take its config from sluice over ADS.
    Bootstrap {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "delta")]
        ads: AdsFlavour,
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// The Envoy's node id (shown in `sluice status`); defaults to `envoy-<hostname>`.
        #[arg(long)]
        node_id: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { config } => Ok(validate(&config)),
        Command::Render { config, format, ir } => render::render(&config, format, ir),
        Command::Bootstrap {
            config,
            ads,
            format,
            node_id,
        } => render::bootstrap(&config, ads, format, node_id),
        Command::Check {
            config,
            url,
            method,
            headers,
            claims,
            token,
            source_ip,
        } => check::check(
            &config,
            check::Request {
                url,
                method,
                headers,
                claims,
                token,
                source_ip,
            },
        ),
        Command::Explain {
            config,
            url,
            headers,
        } => explain::explain(&config, &url, &headers),
        Command::EnvoyFlags { config } => match load(&config) {
            Ok(model) => {
                println!(
                    "{}",
                    crate::envoy::bootstrap::envoy_flags(&model.global).join(" ")
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(code) => Ok(code),
        },
        Command::Probe {
            url,
            events,
            interval_ms,
            headers,
            cacert,
            resolve,
            timeout_s,
        } => probe::probe(probe::Options {
            url,
            events,
            interval_ms,
            headers,
            cacert,
            resolve,
            timeout: std::time::Duration::from_secs(timeout_s),
        }),
        Command::Diff { old, new, format } => Ok(diff::diff(&old, &new, format)),
        Command::Serve { config, envoy } => {
            // Loaded by the loader reloads use, so the first reload reuses this validation.
            let mut loader = config::validate::Incremental::new();
            let model = match load_into(&config, &mut loader) {
                Ok(m) => m,
                Err(code) => return Ok(code),
            };
            crate::telemetry::init(model.global.log_level, model.global.log_format);
            runtime()?.block_on(crate::app::serve(config, model, loader, envoy))
        }
        Command::Status {
            config,
            address,
            json,
        } => {
            let address = match address {
                Some(a) => a,
                None => match load(&config) {
                    Ok(m) => {
                        let g = &m.global.grpc_address;
                        format!("{}:{}", crate::config::validate::connect_host(g), g.port())
                    }
                    Err(code) => return Ok(code),
                },
            };
            let report = runtime()?.block_on(status::fetch(&address))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(status::print(&report))
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // With the LIFO slot, a task woken by the one running goes next. An answered Check wakes
    // its HTTP/2 connection, which then wrote that one answer: a `writev` (and a wake of
    // Envoy) per Check. Queued in turn, the connection runs after the other Checks that are
    // ready and writes their answers together: 1.57 → 0.82 socket calls a Check at 16 in
    // flight (docs/performance.md). Needs `--cfg tokio_unstable` (.cargo/config.toml).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    Ok(builder.build()?)
}

fn validate(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Ok(model) => {
            let ir = crate::ir::build(&model);
            println!(
                "{}: valid: {} route(s), {} cluster(s), {} listener(s), {} warning(s)",
                path.display(),
                model.routes.len(),
                ir.clusters.len(),
                ir.listeners.len(),
                model.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Loads a config, printing warnings; on failure prints every diagnostic and returns the
/// exit code to use.
pub(crate) fn load(path: &std::path::Path) -> Result<Model, ExitCode> {
    reported(config::load(path))
}

/// As `load`, through `loader`, which keeps what it validated for the next load.
fn load_into(
    path: &std::path::Path,
    loader: &mut config::validate::Incremental,
) -> Result<Model, ExitCode> {
    match std::fs::read(path) {
        Ok(bytes) => reported(loader.load(path, &bytes).0),
        // Unreadable: `load` words the diagnostic as every other path reports it.
        Err(_) => load(path),
    }
}

fn reported(loaded: Result<Model, Rejected>) -> Result<Model, ExitCode> {
    match loaded {
        Ok(model) => {
            print_diagnostics(&model.warnings);
            Ok(model)
        }
        Err(Rejected {
            diagnostics,
            errors,
            file,
        }) => {
            print_diagnostics(&diagnostics);
            eprintln!("{}: invalid: {errors} error(s)", file.display());
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}
