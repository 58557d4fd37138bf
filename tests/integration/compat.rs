//! Pomerium compatibility: the settings table in docs/pomerium-compatibility.md matches the
//! parser, and configs shaped like Pomerium's own examples load and are accepted by Envoy.

use std::collections::BTreeMap;

use sluice::config::raw::{RawConfig, RawRoute, UNSUPPORTED_GLOBAL, UNSUPPORTED_ROUTE};
use sluice::envoy::bootstrap::{NodeIdentity, render};
use sluice::envoy::json::to_json;
use sluice::policy::eval::ClientCertificate;

use crate::common::{envoy, repo_root, stem, testdata, yaml_files};

/// Keys other work adds to the parser at the same time; their rows may precede them.
const ADDED_ELSEWHERE: &[&str] = &["envoy_binary", "log_format", "authorize_log_fields"];

/// (key, scope) → status, from the table's rows.
fn table() -> BTreeMap<(String, String), String> {
    let path = repo_root().join("docs/pomerium-compatibility.md");
    let text = std::fs::read_to_string(&path).expect("read docs/pomerium-compatibility.md");
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let key = cells[1].trim_matches('`').to_string();
        let scope = cells[2].to_string();
        assert!(
            matches!(scope.as_str(), "global" | "route"),
            "row `{key}`: scope `{scope}` is not global or route"
        );
        let status = cells[3].to_string();
        assert!(
            matches!(
                status.as_str(),
                "supported" | "supported with a difference" | "refused"
            ),
            "row `{key}`: status `{status}`"
        );
        assert!(
            rows.insert((key.clone(), scope), status).is_none(),
            "row `{key}` appears twice"
        );
    }
    rows
}

#[test]
fn every_parser_key_has_a_row_and_every_row_a_parser_key() {
    let rows = table();
    let mut problems = Vec::new();
    type Refused = &'static [(&'static str, &'static str)];
    let scopes: [(&str, &[&str], Refused); 2] = [
        ("global", RawConfig::KEYS, UNSUPPORTED_GLOBAL),
        ("route", RawRoute::KEYS, UNSUPPORTED_ROUTE),
    ];
    for (scope, parsed, refused) in scopes {
        for key in parsed {
            match rows.get(&(key.to_string(), scope.to_string())) {
                None => problems.push(format!("{scope} key `{key}` has no row")),
                Some(s) if s == "refused" => problems.push(format!(
                    "{scope} key `{key}` is parsed but its row says refused"
                )),
                Some(_) => {}
            }
        }
        for (key, _) in refused {
            match rows.get(&(key.to_string(), scope.to_string())) {
                None => problems.push(format!("refused {scope} key `{key}` has no row")),
                Some(s) if s != "refused" => problems.push(format!(
                    "{scope} key `{key}` is refused by the parser but its row says {s}"
                )),
                Some(_) => {}
            }
        }
    }
    for (key, scope) in rows.keys() {
        let (parsed, refused) = if scope == "global" {
            (RawConfig::KEYS, UNSUPPORTED_GLOBAL)
        } else {
            (RawRoute::KEYS, UNSUPPORTED_ROUTE)
        };
        let known = parsed.contains(&key.as_str()) || refused.iter().any(|(k, _)| k == key);
        if !known && !ADDED_ELSEWHERE.contains(&key.as_str()) {
            problems.push(format!(
                "row `{key}` ({scope}) names a key the parser does not know"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each config shaped like one of Pomerium's examples loads with no error, renders without
/// key material, and Envoy 1.40 accepts the render.
#[test]
fn pomerium_example_configs_load_and_envoy_accepts_them() {
    let files = yaml_files(&testdata().join("pomerium-examples"));
    assert!(files.len() >= 9, "expected the Pomerium example configs");
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeIdentity {
        id: "compat".into(),
        cluster: "sluice".into(),
    };
    let admin = "127.0.0.1:9901".parse().unwrap();
    let mut problems = Vec::new();
    for file in &files {
        let model = match sluice::config::load(file) {
            Ok(m) => m,
            Err(r) => {
                let shown: Vec<String> = r.diagnostics.iter().map(|d| format!("  {d}")).collect();
                problems.push(format!(
                    "{} does not load:\n{}",
                    file.display(),
                    shown.join("\n")
                ));
                continue;
            }
        };
        let ir = sluice::ir::build(&model);
        let bootstrap = serde_json::to_string(&to_json(&render(&ir, &admin, &node)).unwrap())
            .expect("bootstrap serializes");
        assert!(
            !bootstrap.contains("PRIVATE KEY"),
            "{}: the render holds key material",
            file.display()
        );
        let out = dir.path().join(format!("{}.json", stem(file)));
        std::fs::write(&out, bootstrap).unwrap();
        if let Err(e) = envoy::validate(&out) {
            problems.push(format!(
                "Envoy rejected the render of {}:\n{e}",
                file.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn self_signed_certificate_is_one_per_process_and_warned_about() {
    let file = testdata().join("pomerium-examples/config.example.yaml");
    let a = sluice::config::load(&file).expect("loads");
    let b = sluice::config::load(&file).expect("loads again");
    assert!(a.global.self_signed);
    assert_eq!(a.global.certificates.len(), 1);
    assert_eq!(
        a.global.certificates, b.global.certificates,
        "a reload keeps the generated certificate"
    );
    assert!(
        a.warnings
            .iter()
            .any(|w| w.message.contains("generated self-signed certificate")),
        "the generated certificate is warned about"
    );
}

#[test]
fn autocert_in_pomerium_examples_is_refused_with_the_reason() {
    let text = std::fs::read_to_string(testdata().join("pomerium-examples/config.minimal.yaml"))
        .unwrap()
        .replace(
            "routes:",
            "autocert: true\nautocert_use_staging: true\nroutes:",
        );
    let path = testdata().join("pomerium-examples/config.minimal.yaml");
    let Err(rejected) = sluice::config::load_bytes(&path, text.as_bytes()) else {
        panic!("autocert must be refused");
    };
    assert_eq!(rejected.errors, 2);
    assert!(
        rejected
            .diagnostics
            .iter()
            .filter(|d| d.severity == sluice::document::Severity::Error)
            .all(|d| d.message.contains("sluice does no ACME")),
        "{:?}",
        rejected.diagnostics
    );
}

#[test]
fn runtime_flags_unknown_names_warn_with_a_suggestion() {
    let text = "insecure_server: true\nruntime_flags:\n  config_hot_reloads: false\n  mcp: false\nroutes: []\n";
    let path = testdata().join("pomerium-examples/flags.yaml");
    let model = sluice::config::load_bytes(&path, text.as_bytes()).expect("flags only warn");
    let messages: Vec<&str> = model.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("did you mean `config_hot_reload`")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("has no effect")),
        "{messages:?}"
    );
    assert!(model.global.runtime_flags.get("config_hot_reload"));
    assert!(!model.global.runtime_flags.get("mcp"));
}

/// The client certificate check ext_authz runs: signed by the CA → valid; by another CA →
/// invalid; none → none, and the default deny turns both into 495.
#[test]
fn client_certificates_are_checked_against_the_route_ca() {
    use sluice::authz::certificate::read_for;
    let model = sluice::config::load(&testdata().join("pomerium-examples/downstream-mtls.yaml"))
        .expect("loads");
    let route = &model.routes[0];
    let check = route
        .client_certificate
        .as_ref()
        .expect("route has a check");
    assert!(check.default_deny);
    let encode = |pem: &str| {
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let good = std::fs::read_to_string(testdata().join("certs/client.pem")).unwrap();
    assert!(matches!(
        read_for(Some(route), &encode(&good)),
        ClientCertificate::Valid(_)
    ));
    let other = crate::common::tls::other_ca_client_pem();
    assert_eq!(
        read_for(Some(route), &encode(&other)),
        ClientCertificate::Invalid
    );
    assert_eq!(read_for(Some(route), ""), ClientCertificate::None);
}
