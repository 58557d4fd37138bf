//! Downstream mTLS through a real Envoy 1.40, for each `downstream_mtls.enforcement`: a client
//! with a certificate the CA signed, one with a certificate from another CA, and one without.

use std::time::Duration;

use crate::common::envoy::Envoy;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::tls::{self, listener_globals, mtls_client};
use crate::common::upstream::Upstream;

fn config(ports: &Ports, upstream: &Upstream, enforcement: &str) -> String {
    format!(
        "{globals}downstream_mtls:\n  ca_file: {ca}\n  enforcement: {enforcement}\nroutes:\n  - from: https://app.example.com\n    to: {to}\n    allow_public_unauthenticated_access: true\n  - from: https://cert.example.com\n    to: {to}\n    policy:\n      - allow:\n          or:\n            - accept: true\n        deny:\n          or:\n            - invalid_client_certificate: true\n",
        globals = listener_globals(ports),
        ca = tls::ca_file().display(),
        to = upstream.url(),
    )
}

/// The status Envoy answers, or "refused" when the TLS handshake or connection fails.
fn status(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    port: u16,
    host: &str,
) -> String {
    runtime.block_on(async {
        match client
            .get(format!("https://{host}:{port}/"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16().to_string(),
            Err(_) => "refused".to_string(),
        }
    })
}

#[test]
fn client_certificates_for_each_enforcement_mode() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let upstream = Upstream::start("app");
    let good = tls::test_client_identity();
    let (bad_cert, bad_key) = tls::other_ca_client();
    let bad = format!("{bad_cert}{bad_key}");
    // (enforcement, host) → statuses for (good, bad, none).
    let cases: [(&str, &str, [&str; 3]); 5] = [
        // The policy alone decides: a public route lets everyone in...
        ("policy", "app.example.com", ["200", "200", "200"]),
        // ...and a route that denies invalid certificates answers 495 for bad and none.
        ("policy", "cert.example.com", ["200", "495", "495"]),
        // The default deny: even a public route wants a valid certificate.
        (
            "policy_with_default_deny",
            "app.example.com",
            ["200", "495", "495"],
        ),
        (
            "policy_with_default_deny",
            "cert.example.com",
            ["200", "495", "495"],
        ),
        // No handshake without a certificate the CA signed.
        (
            "reject_connection",
            "app.example.com",
            ["200", "refused", "refused"],
        ),
    ];
    let mut failures = Vec::new();
    let mut current: Option<(String, Ports, Sluice, Envoy)> = None;
    for (enforcement, host, expected) in cases {
        if current.as_ref().map(|c| c.0.as_str()) != Some(enforcement) {
            drop(current.take());
            let ports = Ports::new();
            let sluice = Sluice::start(ports, &config(&ports, &upstream, enforcement));
            let envoy = Envoy::start(
                &format!("envoy-{enforcement}"),
                &sluice.bootstrap("mtls", "delta", ports.admin),
                ports.admin,
            );
            // Served once a client with a good certificate gets through.
            let client = mtls_client(Some(&good));
            let up = poll(Duration::from_secs(20), || {
                (status(&runtime, &client, ports.listener, "app.example.com") == "200")
                    .then_some(())
            });
            assert!(up.is_some(), "{enforcement}: Envoy never served the route");
            // What Envoy was told, from its admin API.
            let listeners = envoy.config_dump("dynamic_listeners").to_string();
            assert!(
                listeners.contains("trusted_ca"),
                "{enforcement}: no client CA on the listener"
            );
            let require = listeners.contains("\"require_client_certificate\":true");
            let untrusted = listeners.contains("ACCEPT_UNTRUSTED");
            assert_eq!(
                require,
                enforcement == "reject_connection",
                "{enforcement}: require_client_certificate"
            );
            assert_eq!(
                untrusted,
                enforcement != "reject_connection",
                "{enforcement}: trust_chain_verification"
            );
            current = Some((enforcement.to_string(), ports, sluice, envoy));
        }
        let (_, ports, _, _) = current.as_ref().expect("started");
        let got: Vec<String> = [Some(good.as_str()), Some(bad.as_str()), None]
            .into_iter()
            // A fresh client per request: no TLS session is reused across identities.
            .map(|identity| status(&runtime, &mtls_client(identity), ports.listener, host))
            .collect();
        if got != expected {
            failures.push(format!(
                "{enforcement} {host}: expected {expected:?} for (good, bad, none), got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
