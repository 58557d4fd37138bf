//! sluice's own work per Check, without HTTP/2 or sockets: the authz bench's 1,000 routes,
//! 200 users and 4,096 Checks (bearer tokens, then sealed session cookies; 10 % anonymous),
//! each decoded from its bytes as tonic would hand them over, then answered in this process by
//! the same `AuthzService` `sluice serve` runs, with Pomerium's decision log line on (JSON, to
//! a file). Prints, a Check, the wall time and the CPU time of the answering thread (immune to
//! whatever else the machine runs) and of the whole process (with the log thread's writes), the
//! median of 5 rounds of 2 s. What the authz bench's part 1 adds on top of this is tonic,
//! HTTP/2 and the sockets, which its do-nothing floor pays too. Run with
//! `cargo bench --bench check_answer`.

#[path = "../tests/integration/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "fixtures/authz.rs"]
#[allow(dead_code)]
mod fixture;

use std::fs::File;
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::idp::Idp;
use common::sluice::Ports;
use common::upstream::Upstream;
use fixture::{Credential, config, requests, route_ids};
use mimalloc::MiMalloc;
use prost::Message;
use sluice::authn::identity::{CookieSessions, Credentials};
use sluice::authn::oidc::OidcClient;
use sluice::authz::signer::Signer;
use sluice::authz::tokens::IdpTokens;
use sluice::authz::{AuthzService, Index, IndexSource, wire};

/// The allocator `sluice serve` runs with.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(2);

/// One generation's index, as `sluice serve` publishes it.
struct Published(Arc<Index>);

impl IndexSource for Published {
    fn index(&self) -> Arc<Index> {
        Arc::clone(&self.0)
    }
}

/// CPU seconds the calling thread has used: the answering thread's own cost, whatever else
/// the machine runs meanwhile.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// CPU seconds this process has used, all threads, user and system.
fn process_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let idp = Idp::start();
    let upstream = Upstream::start("bench");
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(&Ports::new(), &idp, upstream.port);
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &text).expect("config");
    let routes = route_ids(&path);
    let model = sluice::config::load_bytes(&path, text.as_bytes()).expect("the bench config");
    let index = Index::new(Arc::new(model), Arc::new(Signer::generate()));
    let http = reqwest::Client::new();
    let tokens = Arc::new(IdpTokens::new(http.clone()));
    let oidc = Arc::new(OidcClient::new(http, Arc::clone(&tokens)));
    let service = AuthzService {
        source: Arc::new(Published(Arc::new(index))),
        identities: Arc::new(Credentials {
            tokens,
            sessions: Arc::new(CookieSessions::new(oidc)),
        }),
        counters: Arc::default(),
    };

    // Decision lines go to a file, through the same log thread and formatter as in `serve`.
    let log_path = dir.path().join("decisions.log");
    let log = File::create(&log_path).expect("log file");
    // SAFETY: plain descriptor calls; 2 is this process's stderr, restored below.
    let saved_stderr = unsafe { libc::dup(2) };
    unsafe { libc::dup2(log.as_raw_fd(), 2) };
    sluice::telemetry::init(
        sluice::config::model::LogLevel::Info,
        Some(sluice::config::log_fields::LogFormat::Json),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Vec::new();
    let mut answered = 0usize;
    for (label, credential) in [
        ("bearer tokens", Credential::Bearer),
        ("session cookies", Credential::Cookie),
    ] {
        let checks: Vec<wire::CheckRequest> = requests(&idp, &routes, credential)
            .iter()
            .map(|r| wire::CheckRequest::decode(Bytes::from(r.encode_to_vec())).expect("decode"))
            .collect();
        let (ns, thread_us, cpu_us, allowed) = runtime.block_on(async {
            // Warm: every token verified and every cookie opened once, as a client's first
            // request does; the rounds then measure what every later request costs.
            for check in &checks {
                service.check_request(check).await;
            }
            let (mut ns, mut thread_us, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
            let (mut allowed, mut measured) = (0usize, 0usize);
            for _ in 0..ROUNDS {
                let (start, thread, cpu) =
                    (Instant::now(), thread_cpu_seconds(), process_cpu_seconds());
                let mut n = 0usize;
                while start.elapsed() < ROUND {
                    for check in &checks {
                        check.check_text().expect("UTF-8");
                        let response = black_box(service.check_request(check).await);
                        allowed += usize::from(response.status.is_some_and(|s| s.code == 0));
                    }
                    n += checks.len();
                }
                let took = start.elapsed();
                ns.push(took.as_nanos() as f64 / n as f64);
                thread_us.push((thread_cpu_seconds() - thread) * 1e6 / n as f64);
                cpu_us.push((process_cpu_seconds() - cpu) * 1e6 / n as f64);
                measured += n;
            }
            answered += measured;
            let allowed = 100.0 * allowed as f64 / measured as f64;
            (
                median(&mut ns),
                median(&mut thread_us),
                median(&mut cpu_us),
                allowed,
            )
        });
        report.push((label, ns, thread_us, cpu_us, allowed));
    }
    sluice::telemetry::batched::flush_stderr();
    unsafe { libc::dup2(saved_stderr, 2) };
    let lines = std::fs::read_to_string(&log_path)
        .expect("decision log")
        .lines()
        .filter(|l| l.contains("\"authorize check\""))
        .count();

    println!(
        "sluice's own work per Check (in process, no HTTP/2), 1000 routes, 200 users, 10% anonymous, one thread, median of {ROUNDS} rounds of {} s:",
        ROUND.as_secs()
    );
    println!(
        "  credential          wall ns a Check   CPU µs a Check: answering thread   whole process"
    );
    for (label, ns, thread_us, cpu_us, allowed) in &report {
        println!(
            "  {label:<18} {ns:>16.0} {thread_us:>35.2} {cpu_us:>15.2}   ({allowed:.0}% allowed)"
        );
    }
    println!("  decision lines written: {lines} for {answered} measured Checks and the warm-up");
    assert!(lines >= answered, "every Check writes its decision line");
}
