//! ext_authz through a real Envoy 1.40: users with IdP-signed tokens get 200/302/401/403/404,
//! upstreams receive an assertion they can verify with the JWKS served on their own host, a
//! client never forges one, and Envoy fails closed when sluice is gone. Plus the Check service
//! spoken to directly with odd and hostile requests.

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::common::envoy::Envoy;
use crate::common::http::{self, Reply};
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

const ASSERTION: &str = "x-pomerium-jwt-assertion";

fn config(ports: &Ports, idp: &Idp, upstream: &Upstream) -> String {
    let to = upstream.url();
    format!(
        "{globals}{idp}bearer_token_format: idp_identity_token
grpc_client_timeout: 1s
jwt_claims_headers: [email, groups]
routes:
  - from: http://app.test
    to: {to}
    allowed_domains: [example.com]
    pass_identity_headers: true
    set_request_headers:
      X-Static: fixed
      X-Forwarded-Id-Token: ${{pomerium.id_token}}
  - from: http://admin.test
    to: {to}
    pass_identity_headers: true
    policy:
      allow:
        or:
          - groups: {{has: admins}}
      deny:
        or:
          - http_path: {{starts_with: /danger}}
  - from: http://public.test
    to: {to}
    allow_public_unauthenticated_access: true
    pass_identity_headers: true
  - from: http://quiet.test
    to: {to}
    allow_any_authenticated_user: true
  - from: http://open.test
    to: {to}
    allow_public_unauthenticated_access: true
",
        globals = ports.globals(),
        idp = idp.config(),
    )
}

struct Fixture {
    idp: Idp,
    _upstream: Upstream,
    ports: Ports,
    sluice: Sluice,
    envoy: Envoy,
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
            (send(&ports, "open.test", "/", &[]).status == 200).then_some(())
        });
        assert!(up.is_some(), "Envoy never served the public route");
        Fixture {
            idp,
            _upstream: upstream,
            ports,
            sluice,
            envoy,
        }
    }

    fn bearer(&self, email: &str, groups: &[&str]) -> String {
        let sub = email.split('@').next().unwrap_or(email);
        format!("Bearer {}", self.idp.token(sub, email, groups))
    }
}

fn send(ports: &Ports, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    http::request("GET", ports.listener, host, path, headers)
        .unwrap_or_else(|e| panic!("GET http://{host}{path}: {e}"))
}

/// The headers the upstream's `/headers` endpoint saw.
fn upstream_saw(reply: &Reply) -> HashMap<String, String> {
    assert_eq!(reply.status, 200, "not allowed: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

/// Verifies an assertion the way an upstream would: with the JWKS fetched from its own host.
pub(crate) fn verify_assertion(ports: &Ports, host: &str, jwt: &str) -> Value {
    let jwks = send(ports, host, "/.well-known/pomerium/jwks.json", &[]);
    assert_eq!(jwks.status, 200, "JWKS on {host}: {}", jwks.body);
    let set: JwkSet = serde_json::from_str(&jwks.body).expect("a JWKS");
    let kid = jsonwebtoken::decode_header(jwt)
        .expect("assertion header")
        .kid
        .expect("assertion names its key");
    let jwk = set.find(&kid).expect("the assertion's key is in the JWKS");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[host]);
    validation.set_issuer(&[host]);
    jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|e| panic!("assertion does not verify: {e}"))
        .claims
}

#[test]
fn decisions_assertions_and_failing_closed_through_envoy() {
    let mut f = Fixture::start();
    let p = &f.ports;
    let alice = f.bearer("alice@example.com", &["admins", "sre"]);
    let bob = f.bearer("bob@example.com", &["staff"]);
    let mallory = f.bearer("mallory@evil.test", &["admins"]);

    // Allowed: the upstream gets a verifiable assertion, claim headers and templated headers.
    let saw = upstream_saw(&send(
        p,
        "app.test",
        "/headers",
        &[("Authorization", &alice)],
    ));
    let claims = verify_assertion(p, "app.test", &saw[ASSERTION]);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["user"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["admins", "sre"]));
    assert_eq!(claims["name"], "User alice");
    for claim in ["iat", "exp", "jti"] {
        assert!(
            claims.get(claim).is_some(),
            "assertion lacks {claim}: {claims}"
        );
    }
    assert_eq!(saw["x-pomerium-claim-email"], "alice@example.com");
    assert_eq!(saw["x-pomerium-claim-groups"], "admins,sre");
    assert_eq!(saw["x-static"], "fixed");
    assert_eq!(
        saw["x-forwarded-id-token"],
        alice.trim_start_matches("Bearer ")
    );

    // A client-forged assertion never arrives: sluice's own replaces it.
    let saw = upstream_saw(&send(
        p,
        "app.test",
        "/headers",
        &[
            ("Authorization", &alice),
            (ASSERTION, "forged.jwt.value"),
            ("x-pomerium-claim-email", "ceo@example.com"),
        ],
    ));
    assert_ne!(saw[ASSERTION], "forged.jwt.value");
    assert_eq!(
        verify_assertion(p, "app.test", &saw[ASSERTION])["email"],
        "alice@example.com"
    );
    assert_eq!(saw["x-pomerium-claim-email"], "alice@example.com");
    // ... nor on a public route: with identity headers on, sluice's anonymous assertion
    // replaces it; without, the route skips ext_authz and Envoy strips it.
    let saw = upstream_saw(&send(
        p,
        "public.test",
        "/headers",
        &[(ASSERTION, "forged.jwt.value")],
    ));
    assert_eq!(
        verify_assertion(p, "public.test", &saw[ASSERTION])["user"],
        ""
    );
    let saw = upstream_saw(&send(
        p,
        "open.test",
        "/headers",
        &[(ASSERTION, "forged.jwt.value")],
    ));
    assert!(
        !saw.contains_key(ASSERTION),
        "forged assertion reached the upstream: {saw:?}"
    );
    // ... nor where identity headers are not passed.
    let saw = upstream_saw(&send(
        p,
        "quiet.test",
        "/headers",
        &[("Authorization", &alice), (ASSERTION, "forged")],
    ));
    assert!(!saw.contains_key(ASSERTION), "{saw:?}");

    // Denied: 403 as JSON or HTML by Accept, with the reason and a request id.
    let denied = send(
        p,
        "app.test",
        "/",
        &[("Authorization", &mallory), ("Accept", "application/json")],
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    let body: Value = serde_json::from_str(&denied.body).expect("a JSON deny body");
    assert!(body.to_string().contains("unauthorized"), "{body}");
    let request_id = denied.header("x-request-id").expect("request id header");
    assert!(
        denied.body.contains(request_id),
        "the body names the request id: {}",
        denied.body
    );
    let html = send(
        p,
        "app.test",
        "/",
        &[("Authorization", &mallory), ("Accept", "text/html")],
    );
    assert_eq!(html.status, 403);
    assert!(
        html.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        html.headers
    );
    assert!(
        !html.body.contains("sluice::"),
        "no internal detail in deny pages"
    );

    // Nobody signed in: a browser is sent to sign in, an API client gets 401.
    let browser = send(
        p,
        "app.test",
        "/page?x=1",
        &[("Accept", "text/html,application/xhtml+xml")],
    );
    assert_eq!(browser.status, 302, "{}", browser.body);
    let location = browser.header("location").expect("a sign-in location");
    assert!(location.contains("/.pomerium/sign_in"), "{location}");
    assert!(location.contains("pomerium_redirect_uri="), "{location}");
    // Without authenticate_service_url the sign-in page is on the route host, as the client
    // reached it: plain http on this listener, and the port it sent in :authority.
    let authority = format!("app.test:{}", p.listener);
    let browser = send(p, &authority, "/page?x=1", &[("Accept", "text/html")]);
    assert_eq!(browser.status, 302, "{}", browser.body);
    let expected = format!(
        "http://{authority}/.pomerium/sign_in?pomerium_redirect_uri=http%3A%2F%2Fapp.test%3A{}%2Fpage%3Fx%3D1",
        p.listener
    );
    // Signed with the shared secret, valid for five minutes (as Pomerium's sign-in URLs).
    let location = browser.header("location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{expected}&pomerium_issued="))
            && location.contains("&pomerium_expiry=")
            && location.contains("&pomerium_signature="),
        "{location}"
    );
    let api = send(p, "app.test", "/", &[("Accept", "application/json")]);
    assert_eq!(api.status, 401);
    assert!(
        api.header("www-authenticate").is_some(),
        "{:?}",
        api.headers
    );
    // A refused token counts as nobody: an expired one asks to sign in again.
    let mut stale = f.idp.claims("alice", "alice@example.com", &[]);
    stale["exp"] = serde_json::json!(crate::common::idp::now() - 600);
    let expired = format!("Bearer {}", f.idp.key("es-1").sign(&stale));
    assert_eq!(
        send(
            p,
            "app.test",
            "/",
            &[("Authorization", &expired), ("Accept", "application/json")]
        )
        .status,
        401
    );

    // Group policy with deny over allow.
    assert_eq!(
        send(p, "admin.test", "/", &[("Authorization", &alice)]).status,
        200
    );
    assert_eq!(
        send(p, "admin.test", "/", &[("Authorization", &bob)]).status,
        403
    );
    assert_eq!(
        send(
            p,
            "admin.test",
            "/danger/zone",
            &[("Authorization", &alice)]
        )
        .status,
        403
    );
    // No route for the host at all.
    assert_eq!(
        send(p, "nowhere.test", "/", &[("Authorization", &alice)]).status,
        404
    );

    let counters = &f.sluice.status()["authz"];
    assert!(counters["allowed"].as_u64().unwrap_or(0) >= 5, "{counters}");
    assert!(counters["denied"].as_u64().unwrap_or(0) >= 4, "{counters}");
    assert!(counters["sign_in"].as_u64().unwrap_or(0) >= 3, "{counters}");
    assert!(
        counters["refused_credentials"].as_u64().unwrap_or(0) >= 1,
        "{counters}"
    );

    // sluice stalled (stopped, its socket still open): after grpc_client_timeout Envoy
    // fails closed rather than waiting or letting the request through.
    f.sluice.guard.signal("STOP");
    let stopped = poll(Duration::from_secs(5), || {
        (f.sluice.guard.state() == Some('T')).then_some(())
    });
    assert!(
        stopped.is_some(),
        "sluice never stopped: state {:?}",
        f.sluice.guard.state()
    );
    let started = std::time::Instant::now();
    let stalled = send(&f.ports, "app.test", "/", &[("Authorization", &alice)]);
    let waited = started.elapsed();
    f.sluice.guard.signal("CONT");
    assert_eq!(
        stalled.status, 503,
        "a stalled sluice must fail closed: {}",
        stalled.body
    );
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}, before the 1 s timeout"
    );
    assert_eq!(
        send(&f.ports, "app.test", "/", &[("Authorization", &alice)]).status,
        200
    );

    // sluice gone: protected routes fail closed, public routes (no ext_authz call) keep serving.
    f.sluice.guard.stop();
    let closed = poll(Duration::from_secs(10), || {
        let r = send(&f.ports, "app.test", "/", &[("Authorization", &alice)]);
        (r.status != 200).then_some(r.status)
    });
    assert_eq!(closed, Some(503), "Envoy must fail closed without sluice");
    assert_eq!(send(&f.ports, "open.test", "/", &[]).status, 200);
    assert!(
        f.envoy.stat("http.ingress.ext_authz.error") >= 1
            || f.envoy.stat("cluster.sluice/grpc.upstream_cx_connect_fail") >= 1
    );
    f.sluice.restart();
    let back = poll(Duration::from_secs(15), || {
        (send(&f.ports, "app.test", "/", &[("Authorization", &alice)]).status == 200).then_some(())
    });
    assert!(back.is_some(), "decisions resume when sluice is back");
}

pub(crate) fn check_client(
    ports: &Ports,
) -> (
    tokio::runtime::Runtime,
    AuthorizationClient<tonic::transport::Channel>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime
        .block_on(AuthorizationClient::connect(format!(
            "http://127.0.0.1:{}",
            ports.grpc
        )))
        .expect("connect to sluice's gRPC address");
    (runtime, client)
}

pub(crate) fn check_with(
    host: &str,
    context: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, attribute_context};
    let http = attribute_context::HttpRequest {
        method: "GET".into(),
        host: host.into(),
        path: "/".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(http),
                ..Default::default()
            }),
            context_extensions: context
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
    }
}

/// The HTTP status of a Check answer (200 for OK).
pub(crate) fn status_of(response: &envoy_types::ext_authz::v3::pb::CheckResponse) -> i32 {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().map(|s| s.code).unwrap_or(0),
        other => panic!("no HTTP response: {other:?}"),
    }
}

/// The Check service, spoken to directly: unknown and missing route ids are denied with 404,
/// stale checksums still decide (and are counted), and garbage is refused without harm.
#[test]
fn check_service_refuses_unknown_routes_and_garbage() {
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream));
    let (rt, mut client) = check_client(&ports);
    let mut check = |req: CheckRequest| {
        rt.block_on(client.check(req))
            .expect("Check answers")
            .into_inner()
    };

    assert_eq!(
        status_of(&check(check_with(
            "app.test",
            &[("route_id", "no-such-route")],
            &[]
        ))),
        404
    );
    assert_eq!(
        status_of(&check(CheckRequest::default())),
        404,
        "no attributes at all"
    );
    assert_eq!(
        status_of(&check(check_with("app.test", &[], &[]))),
        404,
        "no route id"
    );

    // The real route id (from what Envoy would be sent), with a stale checksum: still decided.
    let ir: Value = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["render", "--ir", "--format", "json", "-c"])
            .arg(&sluice.config)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let route_id = find_route_id(&ir, "app.test").expect("app.test's route id in the IR");
    let stale = [("route_id", route_id.as_str()), ("route_checksum", "0000")];
    let token = format!("Bearer {}", idp.token("alice", "alice@example.com", &[]));
    assert_eq!(
        status_of(&check(check_with(
            "app.test",
            &stale,
            &[("authorization", &token)]
        ))),
        200
    );
    assert_eq!(
        status_of(&check(check_with(
            "app.test",
            &stale,
            &[("accept", "application/json")]
        ))),
        401
    );
    for bad in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer a.b.c",
        "Bearer \u{7f}\u{1}",
        &"x".repeat(100_000),
    ] {
        let status = status_of(&check(check_with(
            "app.test",
            &stale,
            &[("authorization", bad), ("accept", "application/json")],
        )));
        assert_eq!(
            status,
            401,
            "authorization `{}`",
            bad.chars().take(20).collect::<String>()
        );
    }
    let status = sluice.status();
    assert!(
        status["authz"]["stale_checksum"].as_u64().unwrap_or(0) >= 1,
        "{}",
        status["authz"]
    );
    assert!(
        status["authz"]["unknown_route"].as_u64().unwrap_or(0) >= 3,
        "{}",
        status["authz"]
    );

    // Bytes that are not a CheckRequest: a gRPC error, and the server keeps answering.
    let raw = rt.block_on(async {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        client
            .post(format!(
                "http://127.0.0.1:{}/envoy.service.auth.v3.Authorization/Check",
                ports.grpc
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(vec![0u8, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
            .send()
            .await
            .expect("a response")
    });
    let grpc_status = raw
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(raw.status() == 200, "{}", raw.status());
    assert_ne!(
        grpc_status.as_deref(),
        Some("0"),
        "garbage must not be answered as OK"
    );
    assert_eq!(
        status_of(&check(check_with(
            "app.test",
            &[("route_id", "no-such-route")],
            &[]
        ))),
        404
    );
}

fn find_route_id(ir: &Value, host: &str) -> Option<String> {
    let routes = ir["route_configs"]
        .as_array()?
        .iter()
        .flat_map(|rc| rc["virtual_hosts"].as_array().cloned().unwrap_or_default());
    for vhost in routes {
        if vhost["domains"].as_array()?.iter().any(|d| d == host) {
            for route in vhost["routes"].as_array()? {
                if let Some(id) = route["config_route"].as_str() {
                    return Some(id.to_string());
                }
            }
        }
    }
    None
}
