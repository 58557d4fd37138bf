//! Browser sign-in end to end: a real Envoy 1.40, sluice, and a real OpenID provider (the npm
//! package oidc-provider) on loopback. A browser without JavaScript (and, once, headless
//! Chromium) goes to a protected page, is sent to sign in, logs in at the provider and comes
//! back with a session cookie; then cookie reuse, single sign-on to other hosts, `depends_on`,
//! sign-out, expiry, refresh and a refused refresh, the legacy `policy` list, sign-in without
//! an authenticate host, a 6 KiB ID token, and the provider's errors.

use std::time::Duration;

use serde_json::Value;
use sluice::authn::unix_now;

use crate::authz_e2e::verify_assertion;
use crate::common::envoy::Envoy;
use crate::common::oidc::{Browserless, ClientSpec, Provider, browser_login, signed_sign_out_link};
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

const COOKIE_SECRET: &str = "mAb5ZV5r0IsM/rnL5zRPeUmBhX/+I+/M7v64XcZ7g+s=";
const SHARED_SECRET: &str = "aXoApMI3FcugzDu/Z4+MB46NMAsAHwQ95gfVVclRvwU=";

/// How the config names its routes and where sign-in lives.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// `routes:` and an `authenticate_service_url` on its own host.
    Authenticate,
    /// The legacy top-level `policy:` list, no authenticate host: each route host signs in.
    LegacyPolicyNoAuthenticateHost,
}

struct Setup {
    layout: Layout,
    id_token_ttl: u64,
    cookie_expire: Option<&'static str>,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            layout: Layout::Authenticate,
            id_token_ttl: 3600,
            cookie_expire: None,
        }
    }
}

struct Fixture {
    provider: Provider,
    _upstream: Upstream,
    ports: Ports,
    sluice: Sluice,
    _envoy: Envoy,
}

fn routes(to: &str) -> String {
    format!(
        "  - from: http://app.localhost
    to: {to}
    allowed_domains: [example.com]
    pass_identity_headers: true
  - from: http://both.localhost
    to: {to}
    allowed_domains: [example.com]
    depends_on: [second.localhost]
  - from: http://second.localhost
    to: {to}
    allowed_domains: [example.com]
  - from: http://admins.localhost
    to: {to}
    policy:
      allow:
        or:
          - groups: {{has: admins}}
  - from: http://open.localhost
    to: {to}
    allow_public_unauthenticated_access: true
"
    )
}

impl Fixture {
    fn start(setup: Setup) -> Fixture {
        let ports = Ports::new();
        let origin = |host: &str| format!("http://{host}.localhost:{}", ports.listener);
        let (callbacks, signed_out) = match setup.layout {
            Layout::Authenticate => (
                vec![format!("{}/oauth2/callback", origin("auth"))],
                vec![format!("{}/.pomerium/signed_out", origin("auth"))],
            ),
            Layout::LegacyPolicyNoAuthenticateHost => (
                ["app", "both", "second", "admins"]
                    .iter()
                    .map(|h| format!("{}/oauth2/callback", origin(h)))
                    .collect(),
                ["app", "both", "second", "admins"]
                    .iter()
                    .map(|h| format!("{}/.pomerium/signed_out", origin(h)))
                    .collect(),
            ),
        };
        let mut client = ClientSpec::new(&callbacks, &signed_out);
        client.id_token_ttl = setup.id_token_ttl;
        client.access_token_ttl = setup.id_token_ttl;
        let provider = Provider::start(&client);
        let upstream = Upstream::start("app");
        let mut config = format!(
            "{globals}{idp}cookie_secret: {COOKIE_SECRET}\nshared_secret: {SHARED_SECRET}\njwt_claims_headers: [email, groups]\n\
             idp_scopes: [openid, profile, email, groups, offline_access]\n",
            globals = ports.globals(),
            idp = provider.config(),
        );
        if let Some(expire) = setup.cookie_expire {
            config.push_str(&format!("cookie_expire: {expire}\n"));
        }
        match setup.layout {
            Layout::Authenticate => {
                config.push_str(&format!("authenticate_service_url: {}\n", origin("auth")));
                config.push_str("routes:\n");
            }
            Layout::LegacyPolicyNoAuthenticateHost => config.push_str("policy:\n"),
        }
        config.push_str(&routes(&upstream.url()));
        let sluice = Sluice::start(ports, &config);
        let envoy = Envoy::start(
            "envoy",
            &sluice.bootstrap("edge-1", "delta", ports.admin),
            ports.admin,
        );
        let up = poll(Duration::from_secs(10), || {
            let page = Browserless::new().get(&format!("{}/", origin("open")));
            (page.status == 200).then_some(())
        });
        assert!(up.is_some(), "Envoy never served the public route");
        Fixture {
            provider,
            _upstream: upstream,
            ports,
            sluice,
            _envoy: envoy,
        }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.localhost:{}{path}", self.ports.listener)
    }

    /// Signs `user` in from `host`'s `/headers` and returns the headers the upstream saw.
    fn sign_in(&self, browser: &mut Browserless, host: &str, user: &str) -> Value {
        let start = self.url(host, "/headers");
        let (page, hops) = browser.login(&start, user);
        assert_eq!(
            page.status, 200,
            "sign-in as {user} ended at {}: {}\nhops: {hops:#?}",
            page.url, page.body
        );
        assert_eq!(
            page.url.as_str(),
            start,
            "back where the user started; hops: {hops:#?}"
        );
        serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{e}: {}", page.body))
    }
}

fn hop_paths(hops: &[String]) -> Vec<String> {
    hops.iter()
        .map(|h| {
            let (method, u) = h
                .split_once(' ')
                .filter(|(m, _)| *m == "POST")
                .unwrap_or(("GET", h));
            let u = url::Url::parse(u).expect("hop URL");
            format!("{method} {}{}", u.host_str().unwrap_or_default(), u.path())
        })
        .collect()
}

#[test]
fn a_browser_signs_in_through_the_provider_and_keeps_its_session() {
    let f = Fixture::start(Setup::new());
    let mut browser = Browserless::new();
    let start = f.url("app", "/headers");
    let (page, hops) = browser.login(&start, "alice");
    assert_eq!(page.status, 200, "{}: {}\n{hops:#?}", page.url, page.body);
    // The whole Pomerium flow, hop by hop.
    let paths = hop_paths(&hops);
    let expected_order = [
        "GET app.localhost/headers",
        "GET auth.localhost/.pomerium/sign_in",
        "GET 127.0.0.1/auth",
        "POST 127.0.0.1/interaction/",
        "GET auth.localhost/oauth2/callback",
        "GET app.localhost/.pomerium/callback/",
        "GET app.localhost/headers",
    ];
    let mut at = 0;
    for want in expected_order {
        let found = paths[at..].iter().position(|p| p.starts_with(want));
        assert!(found.is_some(), "no `{want}` after hop {at}: {paths:#?}");
        at += found.unwrap() + 1;
    }
    // The upstream sees the user, in an assertion it can verify and in claim headers.
    let saw: Value = serde_json::from_str(&page.body).expect("headers JSON");
    let assertion = saw["x-pomerium-jwt-assertion"]
        .as_str()
        .expect("an assertion");
    let claims = verify_assertion(&f.ports, "app.localhost", assertion);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(saw["x-pomerium-claim-email"], "alice@example.com");
    assert!(
        saw["x-pomerium-claim-groups"]
            .as_str()
            .is_some_and(|g| g.contains("admins")),
        "{saw}"
    );
    assert!(
        !saw["cookie"].as_str().unwrap_or("").contains("_pomerium"),
        "{saw}"
    );

    // The cookie is reused: no provider round trip, no redirect.
    let exchanges = f.provider.stats().token_requests;
    assert_eq!(exchanges, 1, "one code exchange for one sign-in");
    for _ in 0..3 {
        let page = browser.get(&start);
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert_eq!(f.provider.stats().token_requests, exchanges);
    let me: Value =
        serde_json::from_str(&browser.get(&f.url("app", "/.pomerium/user")).body).expect("JSON");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["groups"], serde_json::json!(["admins", "eng"]));
    // Groups from the provider decide: alice is an admin.
    assert_eq!(browser.follow(&f.url("admins", "/headers")).0.status, 200);

    // Another route host: single sign-on through the authenticate host's own session, no login form.
    let (page, hops) = browser.follow(&f.url("second", "/headers"));
    assert_eq!(page.status, 200, "{}\n{hops:#?}", page.body);
    assert!(
        !hops.iter().any(|h| h.contains("/interaction/")),
        "asked to log in again: {hops:#?}"
    );
    assert!(
        !hops.iter().any(|h| h.contains("127.0.0.1")),
        "went to the provider again: {hops:#?}"
    );
    assert_eq!(f.provider.stats().token_requests, exchanges);

    // A user outside the policy's groups signs in and is denied there, allowed elsewhere.
    let mut bob = Browserless::new();
    f.sign_in(&mut bob, "app", "bob");
    assert_eq!(bob.follow(&f.url("admins", "/headers")).0.status, 403);

    // Nothing secret reached sluice's log: not the config's secrets, not a cookie, not a token.
    let log = f.sluice.guard.log_text();
    assert!(log.contains("decision"), "the log has the decisions: {log}");
    let session = browser.cookies_for(&f.url("app", "/"))["_pomerium"].clone();
    for secret in [
        COOKIE_SECRET,
        SHARED_SECRET,
        "sluice-oidc-test-secret",
        &session[..40],
        assertion,
    ] {
        assert!(!log.contains(secret), "a secret in sluice's log: {secret}");
    }
    assert!(!log.contains("eyJ"), "a JWT in sluice's log");
}

#[test]
fn depends_on_hosts_are_signed_in_by_the_same_sign_in() {
    let f = Fixture::start(Setup::new());
    let mut browser = Browserless::new();
    f.sign_in(&mut browser, "both", "alice");
    assert!(
        browser
            .cookies_for(&f.url("second", "/"))
            .contains_key("_pomerium")
    );
    // The second host already has its cookie: the page answers without any redirect.
    let page = browser.get(&f.url("second", "/headers"));
    assert_eq!(page.status, 200, "{}", page.body);
}

#[test]
fn sign_out_ends_the_session_here_there_and_at_the_provider() {
    let f = Fixture::start(Setup::new());
    let mut browser = Browserless::new();
    f.sign_in(&mut browser, "app", "alice");
    // An unsigned sign-out only asks; following its button signs out.
    let ask = browser.get(&f.url("app", "/.pomerium/sign_out"));
    assert_eq!(ask.status, 200);
    assert!(
        browser
            .cookies_for(&f.url("app", "/"))
            .contains_key("_pomerium")
    );
    let confirm = signed_sign_out_link(&ask.body).expect("a signed sign-out link");
    let (page, hops) = browser.follow(&confirm);
    // The provider asks to confirm its own sign-out (RP-initiated logout); the user says yes.
    let action = page
        .form_action("name=\"xsrf\"")
        .unwrap_or_else(|| panic!("the provider's confirmation: {}\n{hops:#?}", page.body));
    let xsrf = page.input_value("xsrf").expect("xsrf");
    let posted = browser.post_form(&action, &[("xsrf", &xsrf), ("logout", "yes")]);
    let (page, more) = browser.follow_from(posted);
    assert_eq!(page.status, 200, "{}\n{hops:#?}\n{more:#?}", page.body);
    assert_eq!(page.url.as_str(), f.url("auth", "/.pomerium/signed_out"));
    assert_eq!(f.provider.stats().end_session_requests, 1);
    assert!(
        !browser
            .cookies_for(&f.url("app", "/"))
            .contains_key("_pomerium")
    );
    assert!(
        !browser
            .cookies_for(&f.url("auth", "/"))
            .contains_key("_pomerium_authenticate")
    );
    // Signed out everywhere: the next visit goes to sign in, and the provider asks for a login.
    let (page, _) = browser.follow(&f.url("app", "/headers"));
    assert!(
        page.body.contains("name=\"prompt\" value=\"login\""),
        "not asked to log in: {}",
        page.body
    );
}

#[test]
fn an_expired_session_signs_in_again() {
    let mut setup = Setup::new();
    setup.cookie_expire = Some("3s");
    let f = Fixture::start(setup);
    let mut browser = Browserless::new();
    f.sign_in(&mut browser, "app", "alice");
    let started = unix_now();
    // Still the cookie the browser holds (it would drop it itself after Max-Age; a client that
    // keeps it must be refused by sluice).
    let cookie = browser.cookies_for(&f.url("app", "/"))["_pomerium"].clone();
    let refused = poll(Duration::from_secs(10), || {
        let mut stale = Browserless::new();
        stale.set_cookie(&f.url("app", "/"), "_pomerium", &cookie);
        let page = stale.get(&f.url("app", "/headers"));
        (page.status != 200).then_some(page)
    })
    .expect("the session never expired");
    assert!(unix_now() >= started + 2, "expired before cookie_expire");
    assert_eq!(refused.status, 302);
    assert!(
        refused
            .header("location")
            .is_some_and(|l| l.contains("/.pomerium/sign_in"))
    );
}

#[test]
fn tokens_near_expiry_are_refreshed_once_and_a_refused_refresh_ends_the_session() {
    let mut setup = Setup::new();
    // sluice refreshes 60 s before the tokens expire: 62 s tokens are due 2 s after sign-in.
    setup.id_token_ttl = 62;
    let f = Fixture::start(setup);
    let mut browser = Browserless::new();
    f.sign_in(&mut browser, "app", "alice");
    let signed_in = unix_now();
    assert_eq!(f.provider.stats().refresh_requests, 0);
    let old = browser.cookies_for(&f.url("app", "/"))["_pomerium"].clone();
    poll(Duration::from_secs(5), || {
        (unix_now() >= signed_in + 3).then_some(())
    })
    .expect("clock");

    // Eight requests at once with the same due session: one refresh.
    let cookie = format!("_pomerium={old}");
    let replies: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let host = format!("app.localhost:{}", f.ports.listener);
                    crate::common::http::request(
                        "GET",
                        f.ports.listener,
                        &host,
                        "/headers",
                        &[("Cookie", &cookie), ("Accept", "text/html")],
                    )
                    .map(|r| r.status)
                    .unwrap_or(0)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(replies.iter().all(|s| *s == 200), "{replies:?}");
    assert_eq!(
        f.provider.stats().refresh_requests,
        1,
        "single-flight refresh"
    );
    // The browser's next request gets the reissued cookie.
    let page = browser.get(&f.url("app", "/headers"));
    assert_eq!(page.status, 200);
    assert!(
        page.set_cookie_names().contains(&"_pomerium".to_string()),
        "{:?}",
        page.headers
    );
    assert_ne!(browser.cookies_for(&f.url("app", "/"))["_pomerium"], old);

    // Another user, whose refresh the provider refuses: the session ends.
    let mut bob = Browserless::new();
    f.sign_in(&mut bob, "app", "bob");
    let bob_in = unix_now();
    f.provider.refuse_refresh();
    poll(Duration::from_secs(5), || {
        (unix_now() >= bob_in + 3).then_some(())
    })
    .expect("clock");
    let page = bob.get(&f.url("app", "/headers"));
    assert_eq!(
        page.status, 302,
        "a refused refresh still let bob in: {}",
        page.body
    );
    assert!(
        page.header("location")
            .is_some_and(|l| l.contains("/.pomerium/sign_in"))
    );
}

#[test]
fn the_legacy_policy_list_signs_in_on_each_route_host() {
    let f = Fixture::start(Setup {
        layout: Layout::LegacyPolicyNoAuthenticateHost,
        ..Setup::new()
    });
    let mut browser = Browserless::new();
    let start = f.url("app", "/headers");
    let (page, hops) = browser.login(&start, "alice");
    assert_eq!(page.status, 200, "{}\n{hops:#?}", page.body);
    let paths = hop_paths(&hops);
    assert!(
        paths
            .iter()
            .any(|p| p == "GET app.localhost/.pomerium/sign_in"),
        "{paths:#?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p == "GET app.localhost/oauth2/callback"),
        "{paths:#?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("auth.localhost")),
        "{paths:#?}"
    );
    let saw: Value = serde_json::from_str(&page.body).expect("JSON");
    assert_eq!(saw["x-pomerium-claim-email"], "alice@example.com");
    f.sign_in(&mut browser, "both", "alice");
    assert_eq!(browser.get(&f.url("second", "/headers")).status, 200);
}

#[test]
fn a_6_kib_id_token_is_carried_in_chunked_cookies() {
    let f = Fixture::start(Setup::new());
    let mut browser = Browserless::new();
    f.sign_in(&mut browser, "app", "bigtoken");
    let cookies = browser.cookies_for(&f.url("app", "/"));
    let parts = cookies
        .keys()
        .filter(|k| k.starts_with("_pomerium"))
        .count();
    assert!(
        parts >= 3,
        "a 6 KiB ID token in one cookie? {:?}",
        cookies.keys().collect::<Vec<_>>()
    );
    assert!(
        cookies.values().all(|v| v.len() < 4000),
        "every cookie fits a browser's 4 KiB"
    );
    let me: Value =
        serde_json::from_str(&browser.get(&f.url("app", "/.pomerium/user")).body).expect("JSON");
    assert_eq!(me["email"], "bigtoken@example.com");
    assert!(
        me["claims"]["padding"]
            .as_str()
            .is_some_and(|p| p.len() >= 6 * 1024),
        "the big claim survived"
    );
    assert_eq!(browser.get(&f.url("app", "/headers")).status, 200);
}

#[test]
fn provider_errors_and_replayed_or_foreign_state_are_refused() {
    let f = Fixture::start(Setup::new());
    let mut browser = Browserless::new();
    // Up to the provider's door: the state sluice sent, and this browser's CSRF cookie.
    let (page, hops) = browser.follow(&f.url("app", "/headers"));
    assert!(page.body.contains("value=\"login\""), "{}", page.body);
    let to_provider = hops
        .iter()
        .find(|h| h.contains("/auth?"))
        .expect("the authorization request");
    let state = url::Url::parse(to_provider)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let callback = |query: &[(&str, &str)]| {
        let mut u = url::Url::parse(&f.url("auth", "/oauth2/callback")).unwrap();
        u.query_pairs_mut().extend_pairs(query);
        u.to_string()
    };
    assert_eq!(
        browser
            .get(&callback(&[("error", "access_denied"), ("state", &state)]))
            .status,
        401
    );
    assert_eq!(
        browser
            .get(&callback(&[("error", "server_error"), ("state", &state)]))
            .status,
        400
    );
    // Another browser (no CSRF cookie for this state) cannot finish this sign-in.
    let page = Browserless::new().get(&callback(&[("code", "x"), ("state", &state)]));
    assert_eq!(page.status, 400, "{}", page.body);
    for bad in ["", "garbage", &state[..state.len() / 2]] {
        let page = browser.get(&callback(&[("code", "x"), ("state", bad)]));
        assert_eq!(page.status, 400, "state {bad:?}: {}", page.body);
    }

    // A real sign-in; then its callback URL replayed is refused (the CSRF cookie is spent).
    let mut alice = Browserless::new();
    let (page, hops) = alice.login(&f.url("app", "/headers"), "alice");
    assert_eq!(page.status, 200, "{hops:#?}");
    let used = hops
        .iter()
        .find(|h| h.contains("/oauth2/callback?"))
        .expect("the callback")
        .clone();
    let page = alice.get(&used);
    assert_eq!(page.status, 400, "a replayed callback: {}", page.body);
}

#[test]
fn headless_chromium_signs_in_and_sees_the_user_page() {
    let f = Fixture::start(Setup::new());
    let shot = crate::common::repo_root().join("target/sign-in/user-page.png");
    let _ = std::fs::remove_file(&shot);
    let result = browser_login(&f.url("app", "/headers"), "alice", &shot);
    assert_eq!(result.final_url, f.url("app", "/headers"), "{result:?}");
    assert!(
        result.body_text.contains("x-pomerium-jwt-assertion"),
        "{result:?}"
    );
    assert!(
        result.user_page_text.contains("alice@example.com"),
        "{result:?}"
    );
    assert!(
        result.user_page_text.contains("admins"),
        "groups on the user page: {result:?}"
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 2000,
        "screenshot is a real PNG"
    );
}
