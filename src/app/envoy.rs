//! The managed Envoy: finding its binary, writing its bootstrap, running it as sluice's child,
//! re-emitting its log lines through `tracing`, and draining it gracefully on stop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tracing::{debug, error, info, trace, warn};

use crate::config::Model;
use crate::config::model::LogLevel;
use crate::envoy::bootstrap::{self, AdsFlavour, NodeIdentity};

/// The node id of the Envoy sluice runs itself; `/readyz` looks for its ADS stream by it.
pub const MANAGED_NODE_ID: &str = "sluice-managed";

/// Envoy's own log format (its default, written out so a changed default cannot break parsing).
const LOG_FORMAT: &str = "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v";

/// How many of Envoy's last warning-or-worse lines are kept for the report when it exits.
const RECENT_LINES: usize = 10;

/// How often the drain looks at Envoy's open downstream connections.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// How long Envoy gets to exit after `/quitquitquit` before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(10);

/// Whether `sluice serve` runs Envoy itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvoyMode {
    /// Managed when an Envoy binary is found, else external.
    #[default]
    Auto,
    /// Run Envoy as sluice's child; fail when no binary is found.
    Managed,
    /// Envoy runs elsewhere (compose, Kubernetes) and connects to sluice.
    External,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    #[error(
        "no Envoy binary found (looked at: {}); install one with `bash scripts/install-envoy.sh`, set `envoy_binary` or SLUICE_ENVOY, or run with `--envoy external`",
        looked.join(", ")
    )]
    NotFound { looked: Vec<String> },
    #[error("{source_name} names {path}, which is not an executable file")]
    NotExecutable { source_name: String, path: PathBuf },
    #[error("cannot write the managed Envoy's bootstrap to {path}: {source}")]
    Bootstrap {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the managed Envoy's bootstrap: {0}")]
    Encode(String),
    #[error("cannot start Envoy {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds the Envoy binary: `envoy_binary`, `SLUICE_ENVOY`, `envoy` on `PATH`, then the
/// project's `.venv/bin/envoy` (in the current directory, or in a folder above the sluice
/// executable, as `target/release/sluice` sits in its repository). An explicit setting that
/// names no executable is an error, never silently skipped.
pub fn find_binary(configured: Option<&Path>) -> Result<Lookup, EnvoyError> {
    let explicit = configured
        .map(|p| ("envoy_binary".to_string(), p.to_path_buf()))
        .or_else(|| {
            std::env::var_os("SLUICE_ENVOY")
                .filter(|v| !v.is_empty())
                .map(|v| ("SLUICE_ENVOY".to_string(), PathBuf::from(v)))
        });
    if let Some((source_name, path)) = explicit {
        return if executable(&path) {
            Ok(Lookup {
                found: Some(path),
                looked: vec![source_name],
            })
        } else {
            Err(EnvoyError::NotExecutable { source_name, path })
        };
    }
    let mut looked = Vec::new();
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("envoy")).collect())
        .unwrap_or_default();
    looked.push("envoy on PATH".to_string());
    candidates.push(PathBuf::from(".venv/bin/envoy"));
    looked.push("./.venv/bin/envoy".to_string());
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/sluice → three levels up is the repository; stop there.
        for dir in exe.ancestors().skip(1).take(3) {
            let venv = dir.join(".venv/bin/envoy");
            looked.push(venv.display().to_string());
            candidates.push(venv);
        }
    }
    Ok(Lookup {
        found: candidates.into_iter().find(|c| executable(c)),
        looked,
    })
}

/// The outcome of looking for Envoy: the binary, and where sluice looked.
#[derive(Debug)]
pub struct Lookup {
    pub found: Option<PathBuf>,
    pub looked: Vec<String>,
}

fn envoy_log_level(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warning",
        LogLevel::Error => "error",
    }
}

/// At `info`, Envoy's `main` logger prints a start-up inventory of some 130 lines (every
/// extension, header map sizes, runtime layers); its warnings and errors still come through.
/// At `debug` and `trace` everything does.
fn component_levels(level: LogLevel) -> Vec<&'static str> {
    match level {
        LogLevel::Info => vec!["--component-log-level", "main:warning"],
        _ => Vec::new(),
    }
}

/// One line of Envoy's log, split by its `[time][thread][level][logger] [file:line] text` format.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub level: &'a str,
    pub logger: &'a str,
    pub source: Option<&'a str>,
    pub message: &'a str,
}

/// Takes a leading `[...]` group off `text`.
fn bracket(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('[')?;
    let end = rest.find(']')?;
    Some((&rest[..end], &rest[end + 1..]))
}

pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let (_time, rest) = bracket(line)?;
    let (_thread, rest) = bracket(rest)?;
    let (level, rest) = bracket(rest)?;
    let (logger, rest) = bracket(rest)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (source, message) = match bracket(rest) {
        Some((source, message)) if source.contains(':') => (Some(source), message),
        _ => (None, rest),
    };
    Some(LogLine {
        level,
        logger,
        source,
        message: message.strip_prefix(' ').unwrap_or(message),
    })
}

/// The level and logger of the line before, for the rest of a multi-line message.
struct Previous {
    level: String,
    logger: String,
}

/// Re-emits one Envoy line at its own level. Lines without Envoy's prefix (the rest of a
/// multi-line message) keep the level and logger of the line before them.
fn emit(line: &str, previous: &mut Previous) {
    let (level, logger, source, message) = match parse_line(line) {
        Some(l) => {
            previous.level = l.level.to_string();
            previous.logger = l.logger.to_string();
            (l.level, l.logger, l.source.unwrap_or(""), l.message)
        }
        None => (previous.level.as_str(), previous.logger.as_str(), "", line),
    };
    macro_rules! at {
        ($macro:ident) => {
            $macro!(target: "sluice::envoy", logger, source, envoy_level = level, "{message}")
        };
    }
    match level {
        "trace" => at!(trace),
        "debug" => at!(debug),
        "warning" => at!(warn),
        "error" | "critical" => at!(error),
        _ => at!(info),
    }
}

async fn forward_log(stream: impl AsyncRead + Unpin, recent: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    let mut previous = Previous {
        level: "info".into(),
        logger: String::new(),
    };
    while let Ok(Some(line)) = lines.next_line().await {
        emit(&line, &mut previous);
        if matches!(previous.level.as_str(), "warning" | "error" | "critical") {
            let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back(line);
        }
    }
}

/// How an Envoy process ended, for the log.
pub fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

/// A running Envoy that sluice started.
pub struct Managed {
    child: Child,
    pub pid: u32,
    pub admin: SocketAddr,
    dir: PathBuf,
    recent: Arc<Mutex<VecDeque<String>>>,
    drain_time: Duration,
    client: reqwest::Client,
}

/// Where sluice reaches an admin (or any) address it configured: a wildcard bind is reached
/// on loopback.
pub fn connect_address(addr: &SocketAddr) -> SocketAddr {
    let mut out = *addr;
    if addr.ip().is_unspecified() {
        out.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    out
}

pub fn admin_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// Open downstream connections on Envoy's HTTP listeners (admin's own not counted).
async fn open_connections(client: &reqwest::Client, admin: SocketAddr) -> Option<u64> {
    let text = client
        .get(format!("http://{admin}/stats?filter=downstream_cx_active$"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("http.") && !l.starts_with("http.admin."))
            .filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
            .sum(),
    )
}

/// Starts Envoy's graceful drain and waits until its downstream connections are gone or the
/// drain window has passed.
async fn drain(client: &reqwest::Client, admin: SocketAddr, drain_time: Duration) {
    // skip_exit: sluice decides when Envoy quits (when the connections are gone), rather than
    // Envoy at the end of the window.
    match client
        .post(format!("http://{admin}/drain_listeners?graceful&skip_exit"))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => info!(
            drain_time_s = drain_time.as_secs(),
            "Envoy is draining its listeners; open streams may finish within the drain window"
        ),
        Ok(r) => warn!(status = %r.status(), "Envoy refused /drain_listeners; stopping it"),
        Err(e) => warn!(error = %e, "cannot reach Envoy's admin to drain; stopping it"),
    }
    let deadline = Instant::now() + drain_time;
    let mut last = None;
    loop {
        match open_connections(client, admin).await {
            Some(0) => {
                info!("Envoy has no open downstream connections left");
                return;
            }
            Some(n) => {
                if last != Some(n) {
                    info!(
                        open_connections = n,
                        "waiting for Envoy's connections to finish"
                    );
                    last = Some(n);
                }
            }
            None => return,
        }
        if Instant::now() >= deadline {
            warn!(
                open_connections = last.unwrap_or(0),
                "the drain window (sluice_drain_time) has passed; stopping Envoy with connections still open"
            );
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

impl Managed {
    /// Writes the bootstrap (what `sluice bootstrap` prints, delta ADS) into a private folder
    /// and starts Envoy on it with the flags `sluice envoy-flags` prints.
    ///
    /// Call it from the thread that lives as long as sluice (the runtime's `block_on` thread):
    /// the parent-death signal fires when the thread that forked exits.
    pub fn start(model: &Model, binary: &Path) -> Result<Managed, EnvoyError> {
        let dir = std::env::temp_dir().join(format!("sluice-envoy-{}", std::process::id()));
        let file = dir.join("bootstrap.json");
        let node = NodeIdentity {
            id: MANAGED_NODE_ID.into(),
            cluster: "sluice".into(),
        };
        let json = crate::envoy::json::to_json(&bootstrap::ads(model, AdsFlavour::Delta, &node))
            .map_err(|e| EnvoyError::Encode(e.to_string()))?;
        let write = std::fs::create_dir_all(&dir).and_then(|_| {
            std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap_or_default())
        });
        write.map_err(|source| EnvoyError::Bootstrap {
            path: file.clone(),
            source,
        })?;

        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&file)
            .args(bootstrap::envoy_flags(&model.global))
            // Another Envoy on the machine (a test's, an external one) has its own shared
            // memory region; a dynamic base id never collides with it.
            .arg("--use-dynamic-base-id")
            .args(["--log-level", envoy_log_level(model.global.log_level)])
            .args(component_levels(model.global.log_level))
            .args(["--log-format", LOG_FORMAT])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal reaches sluice only, which then
            // drains Envoy instead of Envoy quitting mid-stream.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // If sluice dies (even by SIGKILL), Envoy is told to stop too.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| EnvoyError::Spawn {
            path: binary.to_path_buf(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_log(stderr, Arc::clone(&recent)));
        }
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_log(stdout, Arc::clone(&recent)));
        }
        let admin = connect_address(&model.global.envoy_admin_address);
        info!(
            pid,
            binary = %binary.display(),
            bootstrap = %file.display(),
            %admin,
            "started managed Envoy"
        );
        Ok(Managed {
            child,
            pid,
            admin,
            dir,
            recent,
            drain_time: model.global.drain_time.value,
            client: admin_client(),
        })
    }

    /// Waits for Envoy to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Envoy's last warning and error lines.
    pub fn recent_lines(&self) -> Vec<String> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Drains Envoy and stops it: `/drain_listeners?graceful` (clients are told to go: HTTP/2
    /// GOAWAY, `Connection: close` on HTTP/1.1; open streams keep flowing), then waits until no
    /// downstream connection is left or `sluice_drain_time` passes, then `/quitquitquit`.
    /// `again` completing (a second stop signal) stops Envoy at once.
    pub async fn drain_and_stop(mut self, again: impl std::future::Future<Output = ()>) {
        tokio::pin!(again);
        let drain = drain(&self.client, self.admin, self.drain_time);
        let drained = tokio::select! {
            _ = drain => true,
            _ = &mut again => false,
            status = self.child.wait() => {
                info!(status = %status.as_ref().map(describe).unwrap_or_default(), "Envoy exited during the drain");
                self.cleanup();
                return;
            }
        };
        if drained {
            info!("asking Envoy to quit (/quitquitquit)");
            if self
                .client
                .post(self.url("/quitquitquit"))
                .send()
                .await
                .is_err()
            {
                self.terminate();
            }
            let exited = tokio::select! {
                status = tokio::time::timeout(QUIT_GRACE, self.child.wait()) => status.ok(),
                _ = &mut again => None,
            };
            if let Some(status) = exited {
                info!(status = %status.as_ref().map(describe).unwrap_or_default(), "Envoy stopped");
                self.cleanup();
                return;
            }
        } else {
            warn!("second stop signal: stopping Envoy now");
        }
        self.kill().await;
    }

    fn terminate(&self) {
        if self.pid > 0 {
            // SAFETY: signals our own child, whose pid we have not reaped yet.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Stops Envoy at once: SIGTERM (Envoy exits without draining), SIGKILL if it lingers.
    pub async fn kill(mut self) {
        self.terminate();
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(status) => {
                info!(status = %status.as_ref().map(describe).unwrap_or_default(), "Envoy stopped")
            }
            Err(_) => {
                warn!("Envoy did not stop on SIGTERM; killing it");
                let _ = self.child.kill().await;
            }
        }
        self.cleanup();
    }

    /// Removes the bootstrap folder.
    pub fn cleanup(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            debug!(error = %e, dir = %self.dir.display(), "cannot remove the managed Envoy's folder");
        }
    }

    /// Logs why Envoy exited on its own, with its last complaints.
    pub fn report_exit(&self, status: &std::io::Result<ExitStatus>) {
        let how = match status {
            Ok(s) => describe(s),
            Err(e) => format!("unknown ({e})"),
        };
        let recent = self.recent_lines();
        error!(
            pid = self.pid,
            status = %how,
            last_lines = %recent.join("\n"),
            "managed Envoy exited ({how}); sluice stops too (no restart)"
        );
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_lines_are_split_into_level_logger_and_text() {
        let line = "[2026-12-05 16:00:00.123][4242][warning][config] [source/common/config/grpc_stream.h:201] StreamAggregatedResources gRPC config stream closed";
        assert_eq!(
            parse_line(line),
            Some(LogLine {
                level: "warning",
                logger: "config",
                source: Some("source/common/config/grpc_stream.h:201"),
                message: "StreamAggregatedResources gRPC config stream closed",
            })
        );
        let no_source = "[2026-12-05 16:00:00.123][1][critical][main] boom [x]";
        assert_eq!(parse_line(no_source).unwrap().message, "boom [x]");
        assert_eq!(parse_line("  continuation of a message"), None);
        assert_eq!(parse_line("[unterminated"), None);
    }

    #[test]
    fn an_explicit_binary_that_is_missing_is_an_error() {
        let err = find_binary(Some(Path::new("/nonexistent/envoy"))).unwrap_err();
        assert!(matches!(err, EnvoyError::NotExecutable { .. }), "{err}");
    }
}
