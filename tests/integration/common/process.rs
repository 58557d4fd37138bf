//! Child processes that never outlive their test, and polling with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often `poll` and `stop` look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A child process killed (SIGTERM, then SIGKILL) when dropped, also when the test panics.
pub struct Guard {
    pub child: Option<Child>,
    pub name: String,
    pub log: PathBuf,
}

impl Guard {
    /// Starts `command` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Guard {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Guard {
            child: Some(child),
            name: name.to_string(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "kill -{signal} {} failed: {status:?}",
            self.name
        );
    }

    /// The process state letter from `/proc/<pid>/stat` (`T` when stopped).
    pub fn state(&self) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .next()?
            .chars()
            .next()
    }

    /// Stops it now and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(POLL_INTERVAL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process's resident memory in MiB (`VmRSS` from /proc), 0 when it cannot be read.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Polls `check` every 20 ms until it returns Some or `limit` passes.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Ports tests listen on come from below Linux's ephemeral range (32768–60999): a port the OS
/// picked with `bind(0)` and released can be handed out again as the source port of any outgoing
/// connection (hundreds per stream test), and Envoy's listeners set SO_REUSEADDR, so they would
/// still bind it and requests could meet the wrong server. Each process takes its own slice
/// (by pid) and never hands a port out twice.
const PORT_FLOOR: u32 = 10_000;
const PORT_SPAN: u32 = 22_000;

/// A TCP port on 127.0.0.1 that is free now and will not be handed out again by this process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 220) * 100;
    for _ in 0..PORT_SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (PORT_FLOOR + (start + offset) % PORT_SPAN) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!(
        "no free port between {PORT_FLOOR} and {}",
        PORT_FLOOR + PORT_SPAN
    )
}
