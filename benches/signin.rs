//! Sign-in benchmark: the full browser sign-in round trip through Envoy 1.40 against the local
//! OpenID provider (npm oidc-provider), as a browser without JavaScript does it: protected page
//! -> 302 -> sign_in -> provider login form POST -> /oauth2/callback (code exchange, ID token
//! verification, UserInfo) -> route-host handoff -> cookie -> 200 from the upstream. Also the
//! single sign-on to a second host (no provider login) and a signed-in request.
//! Run with `cargo bench --bench signin` (Envoy: `bash scripts/install-envoy.sh`; the provider:
//! `bash scripts/install-oidc-peers.sh`). `SIGNIN_ROUNDS` sets the number of sign-ins (200).

#[path = "../tests/integration/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::envoy::Envoy;
use common::oidc::{Browserless, ClientSpec, Provider};
use common::process::poll;
use common::sluice::{Ports, Sluice};
use common::upstream::Upstream;

const COOKIE_SECRET: &str = "mAb5ZV5r0IsM/rnL5zRPeUmBhX/+I+/M7v64XcZ7g+s=";
const SHARED_SECRET: &str = "aXoApMI3FcugzDu/Z4+MB46NMAsAHwQ95gfVVclRvwU=";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "  {what:<44} n={:<4} median {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
    );
}

fn main() {
    unsafe { std::env::set_var("SLUICE_LOG", "sluice=warn") };
    let rounds: usize = std::env::var("SIGNIN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let ports = Ports::new();
    let origin = |host: &str| format!("http://{host}.localhost:{}", ports.listener);
    let provider = Provider::start(&ClientSpec::new(
        &[format!("{}/oauth2/callback", origin("auth"))],
        &[format!("{}/.pomerium/signed_out", origin("auth"))],
    ));
    let upstream = Upstream::start("bench");
    let to = upstream.url();
    let config = format!(
        "{globals}{idp}cookie_secret: {COOKIE_SECRET}\nshared_secret: {SHARED_SECRET}\n\
         authenticate_service_url: {auth}\nroutes:\n\
         \x20 - from: http://app.localhost\n    to: {to}\n    allowed_domains: [example.com]\n    pass_identity_headers: true\n\
         \x20 - from: http://second.localhost\n    to: {to}\n    allowed_domains: [example.com]\n",
        globals = ports.globals(),
        idp = provider.config(),
        auth = origin("auth"),
    );
    let sluice = Sluice::start(ports, &config);
    let _envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("bench", "delta", ports.admin),
        ports.admin,
    );
    let app = format!("{}/headers", origin("app"));
    let second = format!("{}/headers", origin("second"));
    poll(Duration::from_secs(10), || {
        (Browserless::new().get(&app).status == 302).then_some(())
    })
    .expect("Envoy never served the protected route");

    let sign_in = |user: &str| {
        let mut browser = Browserless::new();
        let started = Instant::now();
        let (page, hops) = browser.login(&app, user);
        let took = started.elapsed();
        assert_eq!(page.status, 200, "{user}: {}\n{hops:#?}", page.body);
        (browser, took, hops.len())
    };
    for i in 0..5 {
        sign_in(&format!("warmup{i}"));
    }
    let mut full = Vec::with_capacity(rounds);
    let mut sso = Vec::with_capacity(rounds);
    let mut signed_in = Vec::with_capacity(rounds);
    let mut hops = 0;
    for i in 0..rounds {
        let (mut browser, took, n) = sign_in(&format!("user{i}"));
        full.push(took);
        hops = n;
        let started = Instant::now();
        let (page, _) = browser.follow(&second);
        sso.push(started.elapsed());
        assert_eq!(page.status, 200, "single sign-on to the second host");
        let started = Instant::now();
        let page = browser.get(&app);
        signed_in.push(started.elapsed());
        assert_eq!(page.status, 200);
    }
    let stats = provider.stats();
    println!(
        "Browser sign-in through Envoy 1.40 against the local OpenID provider (oidc-provider 9.13.3), {rounds} users, one at a time:"
    );
    report(
        &format!("full sign-in ({hops} requests, 1 login POST)"),
        full,
    );
    report("single sign-on to a second host (4 requests)", sso);
    report("a signed-in request (cookie, 1 request)", signed_in);
    println!(
        "  provider: {} code exchanges, {} refreshes",
        stats.token_requests, stats.refresh_requests
    );
}
