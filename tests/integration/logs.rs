//! The ext_authz decision log: one JSON line per Check with Pomerium's field names, chosen by
//! `authorize_log_fields`, and never a token, a cookie or an Authorization header.

use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::Value;

use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};

const TOKEN_MARK: &str = "Bearer ";
const COOKIE: &str = "_pomerium=cookie-secret-value-4711; theme=dark";

/// A Check as Envoy sends it for `host` on route `route_id`.
pub fn check_request(
    route_id: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, attribute_context};
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    id: "check-7".into(),
                    method: "GET".into(),
                    host: host.into(),
                    path: path.into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: [("route_id".to_string(), route_id.to_string())].into(),
            ..Default::default()
        }),
    }
}

/// Sends Checks to sluice's gRPC port directly (no Envoy needed); returns the HTTP statuses.
pub fn send_checks(ports: &Ports, requests: Vec<CheckRequest>) -> Vec<i32> {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = AuthorizationClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
            .await
            .expect("connect to sluice's gRPC address");
        let mut statuses = Vec::new();
        for request in requests {
            let response = client.check(request).await.expect("Check").into_inner();
            statuses.push(match response.http_response {
                Some(HttpResponse::OkResponse(_)) => 200,
                Some(HttpResponse::DeniedResponse(d)) => d.status.map(|s| s.code).unwrap_or(0),
                _ => 0,
            });
        }
        statuses
    })
}

fn config(ports: &Ports, idp: &Idp, extra: &str) -> String {
    format!(
        "{globals}{idp}bearer_token_format: idp_identity_token
log_format: json
{extra}routes:
  - id: app
    from: http://app.test
    to: http://127.0.0.1:9
    allowed_domains: [example.com]
",
        globals = ports.globals(),
        idp = idp.config(),
    )
}

/// The decision lines of sluice's log, parsed.
fn decisions(sluice: &Sluice) -> Vec<Value> {
    sluice
        .guard
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "sluice::authz" && v["message"] == "authorize check")
        .collect()
}

fn wait_decisions(sluice: &Sluice, count: usize) -> Vec<Value> {
    poll(Duration::from_secs(10), || {
        let found = decisions(sluice);
        (found.len() >= count).then_some(found)
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer than {count} decision lines; log:\n{}",
            sluice.guard.log_text()
        )
    })
}

#[test]
fn one_json_line_per_decision_with_pomeriums_fields_and_no_credentials() {
    let idp = Idp::start();
    let ports = Ports::new();
    let mut sluice = Sluice::start(ports, &config(&ports, &idp, ""));
    let token = idp.token("alice-sub", "alice@example.com", &[]);
    let bearer = format!("{TOKEN_MARK}{token}");
    let statuses = send_checks(
        &ports,
        vec![
            check_request(
                "app",
                "app.test",
                "/reports?year=2026",
                &[
                    ("authorization", &bearer),
                    ("cookie", COOKIE),
                    ("x-request-id", "req-42"),
                    ("user-agent", "curl/8"),
                ],
            ),
            check_request("app", "app.test", "/", &[("x-request-id", "req-43")]),
            check_request("nope", "app.test", "/", &[("x-request-id", "req-44")]),
        ],
    );
    assert_eq!((statuses[0], statuses[2]), (200, 404), "{statuses:?}");
    assert!(
        [302, 401].contains(&statuses[1]),
        "anonymous: sign-in, got {statuses:?}"
    );

    let lines = wait_decisions(&sluice, 3);
    let allowed = lines
        .iter()
        .find(|l| l["request-id"] == "req-42")
        .expect("the allowed Check's line");
    assert_eq!(allowed["level"], "INFO");
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["reason"], "domain-ok");
    assert_eq!(allowed["status"], 200);
    assert!(allowed["latency_us"].as_u64().is_some(), "{allowed}");
    assert_eq!(allowed["user"], "alice-sub");
    assert_eq!(allowed["email"], "alice@example.com");
    assert_eq!(allowed["route-id"], "app");
    assert_eq!(allowed["from"], "http://app.test");
    assert_eq!(allowed["envoy-route-id"], "app");
    assert_eq!(allowed["check-request-id"], "check-7");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["host"], "app.test");
    assert_eq!(allowed["path"], "/reports");
    assert!(allowed["route-checksum"].is_string(), "{allowed}");
    // Not among Pomerium's defaults.
    assert!(allowed.get("query").is_none(), "{allowed}");
    assert!(allowed.get("headers").is_none(), "{allowed}");

    let anonymous = lines.iter().find(|l| l["request-id"] == "req-43").unwrap();
    assert_eq!(anonymous["decision"], "sign_in");
    assert_eq!(anonymous["reason"], "user-unauthenticated");
    assert!(anonymous.get("user").is_none(), "{anonymous}");
    let unknown = lines.iter().find(|l| l["request-id"] == "req-44").unwrap();
    assert_eq!(unknown["decision"], "unknown_route");
    assert_eq!(unknown["status"], 404);

    // Asking for every header still leaves credentials out.
    sluice.write_config(&config(
        &ports,
        &idp,
        "authorize_log_fields: [user, query, headers, request-id]\n",
    ));
    assert!(sluice.wait_generation(2), "{}", sluice.guard.log_text());
    send_checks(
        &ports,
        vec![check_request(
            "app",
            "app.test",
            "/reports?year=2026",
            &[
                ("authorization", &bearer),
                ("cookie", COOKIE),
                ("x-request-id", "req-45"),
                ("user-agent", "curl/8"),
            ],
        )],
    );
    let lines = wait_decisions(&sluice, 4);
    let chosen = lines.iter().find(|l| l["request-id"] == "req-45").unwrap();
    assert_eq!(chosen["user"], "alice-sub");
    assert_eq!(chosen["query"], "year=2026");
    assert!(chosen.get("method").is_none(), "{chosen}");
    assert!(chosen.get("email").is_none(), "{chosen}");
    assert!(chosen.get("route-id").is_none(), "{chosen}");
    let headers: Value = serde_json::from_str(chosen["headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["user-agent"], "curl/8");
    assert!(headers.get("cookie").is_none() && headers.get("authorization").is_none());

    let log = sluice.guard.log_text();
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !log.contains(&token) && !log.contains(signature),
        "the token reached the log"
    );
    assert!(
        !log.contains("cookie-secret-value-4711"),
        "the cookie reached the log"
    );
    sluice.guard.stop();
}

#[test]
fn unknown_log_fields_are_config_errors_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "authorize_log_fields: [request-id, emial]\nlog_format: yaml\nroutes:\n  - from: http://a.test\n    to: http://127.0.0.1:9\n    allow_public_unauthenticated_access: true\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(78), "{text}");
    assert!(
        text.contains("config.yaml:1:") && text.contains("did you mean `email`?"),
        "{text}"
    );
    assert!(text.contains("`yaml` is not a log format"), "{text}");
}
