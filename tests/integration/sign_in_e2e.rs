//! Browser sessions through a real Envoy 1.40, without a provider in the loop: sessions sealed
//! with the config's keys (as the callback seals them) reach protected routes, the upstream
//! never sees them, broken or foreign cookies count as signed out, the sign-in endpoints answer
//! on the hosts Envoy routes them from, and redirects go only to configured hosts.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sluice::authn::session::SessionData;
use sluice::authn::{Keys, signed_url, unix_now};
use sluice::config::secret::Secret;

use crate::common::envoy::Envoy;
use crate::common::http::{self, Reply};
use crate::common::idp::Idp;
use crate::common::oidc::signed_sign_out_link;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

/// 32 bytes, base64: test-only secrets.
const COOKIE_SECRET: &str = "c2x1aWNlLXRlc3QtY29va2llLXNlY3JldC0zMmJ5dGU=";
const SHARED_SECRET: &str = "c2x1aWNlLXRlc3Qtc2hhcmVkLXNlY3JldC0zMmJ5dGU=";
const OTHER_SECRET: &str = "YW5vdGhlci1jb29raWUtc2VjcmV0LTMyLWJ5dGVzISE=";
const BROWSER: (&str, &str) = ("Accept", "text/html");

fn config(ports: &Ports, idp: &Idp, upstream: &Upstream) -> String {
    let to = upstream.url();
    format!(
        "{globals}{idp}authenticate_service_url: http://auth.localhost:{port}
cookie_secret: {COOKIE_SECRET}
shared_secret: {SHARED_SECRET}
jwt_claims_headers: [email]
routes:
  - from: http://app.localhost
    to: {to}
    allowed_domains: [example.com]
    pass_identity_headers: true
    set_request_headers:
      X-Id-Token: ${{pomerium.id_token}}
      X-Access-Token: ${{pomerium.access_token}}
  - from: http://both.localhost
    to: {to}
    allowed_domains: [example.com]
    depends_on: [second.localhost]
  - from: http://second.localhost
    to: {to}
    allowed_domains: [example.com]
  - from: http://open.localhost
    to: {to}
    allow_public_unauthenticated_access: true
",
        globals = ports.globals(),
        idp = idp.config(),
        port = ports.listener,
    )
}

struct Fixture {
    idp: Idp,
    _upstream: Upstream,
    ports: Ports,
    _sluice: Sluice,
    _envoy: Envoy,
    keys: Keys,
}

impl Fixture {
    fn start() -> Fixture {
        let idp = Idp::start();
        let upstream = Upstream::start("app");
        let ports = Ports::new();
        let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream));
        let envoy = Envoy::start(
            "envoy",
            &sluice.bootstrap("edge-1", "delta", ports.admin),
            ports.admin,
        );
        let up = poll(Duration::from_secs(10), || {
            let reply = http::request("GET", ports.listener, "open.localhost", "/", &[]).ok()?;
            (reply.status == 200).then_some(())
        });
        assert!(up.is_some(), "Envoy never served the public route");
        Fixture {
            idp,
            _upstream: upstream,
            ports,
            _sluice: sluice,
            _envoy: envoy,
            keys: keys(COOKIE_SECRET),
        }
    }

    fn host(&self, name: &str) -> String {
        format!("{name}:{}", self.ports.listener)
    }

    fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let host = self.host(host);
        http::request("GET", self.ports.listener, &host, path, headers)
            .unwrap_or_else(|e| panic!("GET http://{host}{path}: {e}"))
    }

    /// A session for `email` as the callback would seal it, valid for `lifetime_secs`.
    fn session(&self, email: &str, lifetime_secs: i64) -> SessionData {
        let sub = email.split('@').next().unwrap_or(email);
        let now = unix_now();
        let expires = (now as i64 + lifetime_secs).max(0) as u64;
        SessionData {
            sid: format!("sid-{sub}"),
            id_token: Some(self.idp.token(sub, email, &["staff"])),
            extra_claims: Map::new(),
            access_token: Some(format!("access-{sub}")),
            refresh_token: None,
            tokens_expire: Some(now + 3600),
            issued: now,
            expires,
        }
    }

    /// The `Cookie` header of a browser holding `session` in cookie `name`.
    fn cookie(&self, name: &str, session: &SessionData) -> String {
        format!("{name}={}", session.seal(&self.keys.session, name))
    }

    /// A sign-in URL (path and query) signed as ext_authz signs them.
    fn signed_sign_in(&self, query: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!(
            "http://{}/.pomerium/sign_in",
            self.host("auth.localhost")
        ))
        .expect("url");
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        signed_url::sign(&mut url, &self.keys.url, unix_now());
        path_and_query(&url)
    }
}

fn keys(cookie_secret: &str) -> Keys {
    Keys::new(
        Some(&Secret::new(cookie_secret.to_string())),
        Some(&Secret::new(SHARED_SECRET.to_string())),
        true,
    )
}

fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn location(reply: &Reply) -> url::Url {
    let l = reply
        .header("location")
        .unwrap_or_else(|| panic!("{} without a Location: {}", reply.status, reply.body));
    url::Url::parse(l).unwrap_or_else(|e| panic!("Location {l}: {e}"))
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `name=value` of every cookie a reply sets (an empty value clears it).
fn set_cookies(reply: &Reply) -> HashMap<String, String> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

fn upstream_saw(reply: &Reply) -> HashMap<String, String> {
    assert_eq!(reply.status, 200, "not allowed: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

#[test]
fn a_sealed_session_reaches_the_upstream_which_never_sees_it() {
    let f = Fixture::start();
    let alice = f.session("alice@example.com", 3600);
    let cookie = format!("theme=dark; {}; other=1", f.cookie("_pomerium", &alice));
    let saw = upstream_saw(&f.get("app.localhost", "/headers", &[("Cookie", &cookie)]));
    assert_eq!(
        saw.get("x-pomerium-claim-email").map(String::as_str),
        Some("alice@example.com")
    );
    assert!(saw.contains_key("x-pomerium-jwt-assertion"), "{saw:?}");
    assert_eq!(
        saw.get("x-id-token"),
        alice.id_token.as_ref(),
        "${{pomerium.id_token}}"
    );
    assert_eq!(
        saw.get("x-access-token").map(String::as_str),
        Some("access-alice")
    );
    // Envoy's Lua filter took sluice's cookie out and left the application's.
    let forwarded = saw.get("cookie").cloned().unwrap_or_default();
    assert!(
        !forwarded.contains("_pomerium"),
        "session cookie reached the upstream: {forwarded}"
    );
    assert!(
        forwarded.contains("theme=dark") && forwarded.contains("other=1"),
        "{forwarded}"
    );

    // The programmatic form, `Authorization: Pomerium <session>`, and its header twin.
    let sealed = alice.seal(&f.keys.session, "_pomerium");
    let bearer = format!("Pomerium {sealed}");
    let saw = upstream_saw(&f.get("app.localhost", "/headers", &[("Authorization", &bearer)]));
    assert!(
        !saw.contains_key("authorization"),
        "Authorization: Pomerium reached the upstream"
    );
    let saw = upstream_saw(&f.get(
        "app.localhost",
        "/headers",
        &[("X-Pomerium-Authorization", &sealed)],
    ));
    assert!(!saw.contains_key("x-pomerium-authorization"), "{saw:?}");

    // A signed-in user the policy does not allow is denied, not sent to sign in again.
    let mallory = f.session("mallory@evil.test", 3600);
    let reply = f.get(
        "app.localhost",
        "/",
        &[("Cookie", &f.cookie("_pomerium", &mallory)), BROWSER],
    );
    assert_eq!(reply.status, 403, "{}", reply.body);

    // The user endpoint on the route host reads the same cookie.
    let reply = f.get("app.localhost", "/.pomerium/user", &[("Cookie", &cookie)]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let user: Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(user["email"], json!("alice@example.com"));
    assert_eq!(user["user"], json!("alice"));
    let reply = f.get("app.localhost", "/.pomerium/user", &[]);
    assert_eq!(reply.status, 401, "{}", reply.body);
    let reply = f.get("app.localhost", "/.pomerium/", &[("Cookie", &cookie)]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("alice@example.com"), "{}", reply.body);
}

#[test]
fn broken_expired_and_foreign_cookies_are_no_session() {
    let f = Fixture::start();
    let alice = f.session("alice@example.com", 3600);
    let good = alice.seal(&f.keys.session, "_pomerium");
    let mut tampered = good.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let foreign = alice.seal(&keys(OTHER_SECRET).session, "_pomerium");
    let expired = f
        .session("alice@example.com", -10)
        .seal(&f.keys.session, "_pomerium");
    // Sealed for another cookie name: a value moved between cookies does not open.
    let other_purpose = alice.seal(&f.keys.session, "_pomerium_authenticate");
    let cases = [
        ("tampered", tampered),
        ("truncated", good[..good.len() / 2].to_string()),
        ("foreign key", foreign),
        ("expired", expired),
        ("another cookie's", other_purpose),
        ("garbage", "%%%not-base64!!".to_string()),
        ("empty", String::new()),
        ("a missing chunk", format!("3.{}", &good[..40])),
        ("huge", "A".repeat(7000)),
    ];
    for (what, value) in cases {
        let cookie = format!("_pomerium={value}");
        let reply = f.get("app.localhost", "/", &[("Cookie", &cookie), BROWSER]);
        assert_eq!(
            reply.status, 302,
            "{what} cookie: {} {}",
            reply.status, reply.body
        );
        let to = location(&reply);
        assert_eq!(to.host_str(), Some("auth.localhost"), "{what}: {to}");
        let reply = f.get(
            "app.localhost",
            "/",
            &[("Cookie", &cookie), ("Accept", "application/json")],
        );
        assert_eq!(
            reply.status, 401,
            "{what} cookie, API client: {}",
            reply.body
        );
        let reply = f.get("app.localhost", "/.pomerium/user", &[("Cookie", &cookie)]);
        assert_eq!(
            reply.status, 401,
            "{what} cookie on the user endpoint: {}",
            reply.body
        );
    }
}

#[test]
fn sign_in_is_routed_to_sluice_and_sends_the_browser_to_the_provider() {
    let f = Fixture::start();
    let reply = f.get("app.localhost", "/some/page?x=1", &[BROWSER]);
    assert_eq!(reply.status, 302, "{}", reply.body);
    let sign_in = location(&reply);
    assert_eq!(sign_in.host_str(), Some("auth.localhost"));
    assert_eq!(sign_in.port(), Some(f.ports.listener));
    assert_eq!(sign_in.path(), "/.pomerium/sign_in");
    assert_eq!(
        param(&sign_in, "pomerium_redirect_uri").as_deref(),
        Some(format!("http://{}/some/page?x=1", f.host("app.localhost")).as_str())
    );

    // Envoy routes the authenticate host to sluice, which sends the browser to the provider.
    let reply = f.get("auth.localhost", &path_and_query(&sign_in), &[BROWSER]);
    assert_eq!(reply.status, 302, "{}", reply.body);
    let auth = location(&reply);
    assert_eq!(
        auth.as_str().split('?').next(),
        Some(format!("{}/auth", f.idp.url).as_str())
    );
    assert_eq!(param(&auth, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&auth, "redirect_uri").as_deref(),
        Some(format!("http://{}/oauth2/callback", f.host("auth.localhost")).as_str())
    );
    assert_eq!(
        param(&auth, "scope").as_deref(),
        Some("openid profile email offline_access")
    );
    for p in ["state", "nonce", "code_challenge", "client_id"] {
        assert!(
            param(&auth, p).is_some_and(|v| !v.is_empty()),
            "{p} in {auth}"
        );
    }
    let csrf = set_cookies(&reply);
    assert!(
        csrf.get("_pomerium_csrf").is_some_and(|v| !v.is_empty()),
        "{csrf:?}"
    );
    assert!(!reply.body.contains(SHARED_SECRET) && !auth.as_str().contains(COOKIE_SECRET));

    // A depends_on route asks for its other hosts in the same sign-in.
    let reply = f.get("both.localhost", "/", &[BROWSER]);
    let sign_in = location(&reply);
    assert_eq!(
        param(&sign_in, "pomerium_additional_hosts").as_deref(),
        Some("second.localhost")
    );

    // The route host's own endpoints are not behind the policy: no loop back to sign-in.
    let reply = f.get(
        "app.localhost",
        "/.pomerium/api/v1/login?pomerium_redirect_uri=http://localhost:8000/cb",
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.starts_with(&format!(
            "http://{}/.pomerium/sign_in?",
            f.host("auth.localhost")
        )),
        "{}",
        reply.body
    );
    let reply = f.get("auth.localhost", "/robots.txt", &[]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "User-agent: *\nDisallow: /\n")
    );
    let reply = f.get("auth.localhost", "/", &[BROWSER]);
    assert_eq!(
        (reply.status, reply.header("location")),
        (302, Some("/.pomerium/"))
    );
    let reply = f.get("auth.localhost", "/.pomerium/", &[BROWSER]);
    assert_eq!(
        reply.status, 302,
        "the user page sends a stranger to sign in: {}",
        reply.body
    );
    assert_eq!(location(&reply).path(), "/.pomerium/sign_in");
}

#[test]
fn sign_in_refuses_unsigned_links_and_foreign_return_targets() {
    let f = Fixture::start();
    let app = format!("http://{}/", f.host("app.localhost"));
    // A valid link is the baseline the refusals are measured against.
    let reply = f.get(
        "auth.localhost",
        &f.signed_sign_in(&[("pomerium_redirect_uri", &app)]),
        &[BROWSER],
    );
    assert_eq!(reply.status, 302, "{}", reply.body);

    let unsigned = format!(
        "/.pomerium/sign_in?pomerium_redirect_uri={}",
        urlencode(&app)
    );
    let reply = f.get("auth.localhost", &unsigned, &[BROWSER]);
    assert_eq!(reply.status, 400, "unsigned: {}", reply.body);
    let mut forged = f.signed_sign_in(&[("pomerium_redirect_uri", &app)]);
    forged = forged.replace("app.localhost", "evil.localhost");
    let reply = f.get("auth.localhost", &forged, &[BROWSER]);
    assert_eq!(
        reply.status, 400,
        "re-pointed after signing: {}",
        reply.body
    );

    for target in [
        "http://evil.test/",
        "//evil.test/",
        "/relative",
        "javascript:alert(1)",
        "http://app.localhost@evil.test/",
        "http://user:pw@app.localhost/",
        "http://app.localhost%2F@evil.test/",
        "http://app.localhost.evil.test/",
        "http:\\\\evil.test",
        "java\tscript:alert(1)",
    ] {
        let link = f.signed_sign_in(&[("pomerium_redirect_uri", target)]);
        let reply = f.get("auth.localhost", &link, &[BROWSER]);
        assert_eq!(
            reply.status, 400,
            "return target {target:?}: {}",
            reply.body
        );
        assert!(reply.header("location").is_none(), "{target:?}");
    }
    let link = f.signed_sign_in(&[
        ("pomerium_redirect_uri", &app),
        ("pomerium_additional_hosts", "evil.test"),
    ]);
    assert_eq!(f.get("auth.localhost", &link, &[BROWSER]).status, 400);
    let link = f.signed_sign_in(&[
        ("pomerium_redirect_uri", &app),
        (
            "pomerium_callback_uri",
            "http://evil.test/.pomerium/callback/",
        ),
    ]);
    assert_eq!(f.get("auth.localhost", &link, &[BROWSER]).status, 400);
}

#[test]
fn the_handoff_signs_in_route_hosts_once_and_only_its_own() {
    let f = Fixture::start();
    let alice = f.session("alice@example.com", 3600);
    // Signed in on the authenticate host already: sign-in hands the session straight on.
    let auth_cookie = f.cookie("_pomerium_authenticate", &alice);
    let target = format!("http://{}/headers", f.host("both.localhost"));
    let link = f.signed_sign_in(&[
        ("pomerium_redirect_uri", &target),
        ("pomerium_additional_hosts", "second.localhost"),
    ]);
    let reply = f.get(
        "auth.localhost",
        &link,
        &[("Cookie", &auth_cookie), BROWSER],
    );
    assert_eq!(reply.status, 302, "{}", reply.body);
    let handoff = location(&reply);
    assert_eq!(handoff.host_str(), Some("both.localhost"));
    assert_eq!(handoff.path(), "/.pomerium/callback/");
    let token = param(&handoff, "pomerium_session_encrypted").expect("a handoff");

    // The handoff does not open on another host.
    let stolen = format!(
        "/.pomerium/callback/?pomerium_session_encrypted={}",
        urlencode(&token)
    );
    let reply = f.get("second.localhost", &stolen, &[BROWSER]);
    assert_eq!(
        reply.status, 400,
        "a handoff for both.localhost opened on second: {}",
        reply.body
    );
    assert!(set_cookies(&reply).is_empty());
    for garbage in [
        "",
        "x",
        "%00%01",
        &"A".repeat(5000),
        &token[..token.len() / 2],
    ] {
        let path = format!(
            "/.pomerium/callback/?pomerium_session_encrypted={}",
            urlencode(garbage)
        );
        let reply = f.get("both.localhost", &path, &[BROWSER]);
        assert_eq!(reply.status, 400, "handoff {garbage:?}: {}", reply.body);
    }

    // On its own host it sets the cookie and chains on to the depends_on host...
    let reply = f.get("both.localhost", &path_and_query(&handoff), &[BROWSER]);
    assert_eq!(reply.status, 302, "{}", reply.body);
    let both_cookie = set_cookies(&reply)
        .remove("_pomerium")
        .expect("a session cookie");
    let set_line = reply
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("_pomerium="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        set_line.contains("HttpOnly") && set_line.contains("SameSite=Lax"),
        "{set_line}"
    );
    assert!(
        !set_line.contains("Secure"),
        "plain-http routes get no Secure cookie: {set_line}"
    );
    let next = location(&reply);
    assert_eq!(
        (next.host_str(), next.path()),
        (Some("second.localhost"), "/.pomerium/callback/")
    );
    let reply = f.get("second.localhost", &path_and_query(&next), &[BROWSER]);
    assert_eq!(reply.status, 302, "{}", reply.body);
    let second_cookie = set_cookies(&reply)
        .remove("_pomerium")
        .expect("a session cookie");
    // ...and then back to the page the user asked for.
    assert_eq!(location(&reply).as_str(), target);

    let saw = upstream_saw(&f.get(
        "both.localhost",
        "/headers",
        &[("Cookie", &format!("_pomerium={both_cookie}"))],
    ));
    assert!(!saw.get("cookie").is_some_and(|c| c.contains("_pomerium")));
    let reply = f.get(
        "second.localhost",
        "/headers",
        &[("Cookie", &format!("_pomerium={second_cookie}"))],
    );
    assert_eq!(
        reply.status, 200,
        "depends_on host signed in too: {}",
        reply.body
    );
}

#[test]
fn sign_out_clears_both_hosts_and_needs_a_signed_link() {
    let f = Fixture::start();
    let alice = f.session("alice@example.com", 3600);
    let cookie = f.cookie("_pomerium", &alice);
    // An unsigned sign-out (an <img> tag on another site) only shows a confirmation page.
    let reply = f.get(
        "app.localhost",
        "/.pomerium/sign_out",
        &[("Cookie", &cookie), BROWSER],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        set_cookies(&reply).is_empty(),
        "an unsigned sign-out cleared cookies"
    );
    assert!(
        reply.body.contains("/.pomerium/sign_out?"),
        "{}",
        reply.body
    );
    let confirm =
        signed_sign_out_link(&reply.body).expect("the confirmation links a signed sign-out");
    let confirm = url::Url::parse(&confirm).expect("absolute sign-out URL");
    assert_eq!(confirm.host_str(), Some("app.localhost"));

    // Signed: the route host clears its cookie and sends the browser to the authenticate host.
    let reply = f.get(
        "app.localhost",
        &path_and_query(&confirm),
        &[("Cookie", &cookie), BROWSER],
    );
    assert_eq!(reply.status, 302, "{}", reply.body);
    assert_eq!(
        set_cookies(&reply).get("_pomerium").map(String::as_str),
        Some("")
    );
    let next = location(&reply);
    assert_eq!(
        (next.host_str(), next.path()),
        (Some("auth.localhost"), "/.pomerium/sign_out")
    );
    let auth_cookie = f.cookie("_pomerium_authenticate", &alice);
    let reply = f.get(
        "auth.localhost",
        &path_and_query(&next),
        &[("Cookie", &auth_cookie), BROWSER],
    );
    assert_eq!(reply.status, 302, "{}", reply.body);
    assert_eq!(
        set_cookies(&reply)
            .get("_pomerium_authenticate")
            .map(String::as_str),
        Some("")
    );
    // This provider advertises no end_session_endpoint: straight to the signed-out page.
    let last = location(&reply);
    assert_eq!(last.path(), "/.pomerium/signed_out");
    let reply = f.get("auth.localhost", "/.pomerium/signed_out", &[BROWSER]);
    assert_eq!(reply.status, 200);

    // A sign-out redirect to a host sluice does not serve is dropped, not followed.
    let mut evil = url::Url::parse(&format!(
        "http://{}/.pomerium/sign_out",
        f.host("auth.localhost")
    ))
    .unwrap();
    evil.query_pairs_mut()
        .append_pair("pomerium_redirect_uri", "http://evil.test/");
    signed_url::sign(&mut evil, &f.keys.url, unix_now());
    let reply = f.get("auth.localhost", &path_and_query(&evil), &[BROWSER]);
    assert_eq!(reply.status, 302);
    assert_ne!(location(&reply).host_str(), Some("evil.test"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
