//! Golden tests in two layers: config → IR (or diagnostics), and IR → Envoy resources.
//! Every golden Envoy output is also checked by the real Envoy 1.40.

use std::collections::BTreeSet;
use std::path::Path;

use envoy_types::pb::envoy::config::bootstrap::v3::{Admin, Bootstrap, bootstrap};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, GrpcService, Node, api_config_source, grpc_service,
};
use serde_json::{Value, json};
use sluice::envoy::bootstrap::{NodeIdentity, render};
use sluice::envoy::json::{sorted, to_json};
use sluice::envoy::{Delivery, Resources, translate};
use sluice::format::yaml;
use sluice::ir::Ir;

use crate::common::golden::{check, local, orphans, portable};
use crate::common::{envoy, stem, testdata, yaml_files};

fn ir_yaml(ir: &Ir) -> String {
    portable(&yaml::to_string(&sorted(
        serde_json::to_value(ir).expect("IR serializes"),
    )))
}

fn read_ir(path: &Path) -> Ir {
    let text = local(&std::fs::read_to_string(path).expect("read IR golden file"));
    let node = sluice::document::yaml::parse(&text)
        .expect("IR file is YAML")
        .expect("IR file is not empty");
    serde_json::from_value(node.to_json())
        .unwrap_or_else(|e| panic!("{} is not IR: {e}", path.display()))
}

fn resources_json(r: &Resources) -> Value {
    let all = |items: Vec<Value>| Value::Array(items);
    json!({
        "listeners": all(r.listeners.iter().map(|m| to_json(m).unwrap()).collect()),
        "route_configs": all(r.route_configs.iter().map(|m| to_json(m).unwrap()).collect()),
        "scopes": all(r.scopes.iter().map(|m| to_json(m).unwrap()).collect()),
        "clusters": all(r.clusters.iter().map(|m| to_json(m).unwrap()).collect()),
        "secrets": all(r.secrets.iter().map(|m| to_json(m).unwrap()).collect()),
    })
}

fn finish(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} golden problem(s):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Layer 1: every valid config builds the IR in its golden file.
#[test]
fn config_to_ir() {
    let configs = yaml_files(&testdata().join("configs"));
    assert!(configs.len() >= 15, "at least 15 golden configs");
    let out = testdata().join("ir");
    let mut problems = orphans(&out, "yaml", &configs);
    for config in &configs {
        match sluice::config::load(config) {
            Ok(model) => {
                if let Err(e) = check(
                    &out.join(format!("{}.yaml", stem(config))),
                    &ir_yaml(&sluice::ir::build(&model)),
                ) {
                    problems.push(e);
                }
            }
            Err(rejected) => problems.push(format!(
                "{} should be valid:\n{}",
                config.display(),
                rejected
                    .diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
        }
    }
    finish(problems);
}

/// Layer 1, the other outcome: every invalid config gives exactly its golden diagnostics.
#[test]
fn invalid_config_to_diagnostics() {
    let configs = yaml_files(&testdata().join("invalid"));
    let out = testdata().join("diagnostics");
    let mut problems = orphans(&out, "txt", &configs);
    for config in &configs {
        match sluice::config::load(config) {
            Ok(_) => problems.push(format!("{} should be rejected", config.display())),
            Err(rejected) => {
                let text: String = rejected
                    .diagnostics
                    .iter()
                    .map(|d| format!("{}\n", portable(&d.to_string())))
                    .collect();
                if let Err(e) = check(&out.join(format!("{}.txt", stem(config))), &text) {
                    problems.push(e);
                }
            }
        }
    }
    finish(problems);
}

/// Layer 2: every golden IR translates to the Envoy resources in its golden file (the
/// resources as xDS serves them).
#[test]
fn ir_to_envoy_resources() {
    let irs = yaml_files(&testdata().join("ir"));
    let out = testdata().join("envoy");
    let mut problems = orphans(&out, "yaml", &irs);
    for path in &irs {
        let resources = translate(&read_ir(path), Delivery::Ads);
        let text = portable(&yaml::to_string(&resources_json(&resources)));
        if let Err(e) = check(&out.join(format!("{}.yaml", stem(path))), &text) {
            problems.push(e);
        }
    }
    finish(problems);
}

/// A bootstrap holding the ADS-delivered resources as static ones (listeners keep their RDS
/// and SDS references over ADS), so Envoy validates exactly what xDS sends.
fn ads_shaped(ir: &Ir) -> Bootstrap {
    let r = translate(ir, Delivery::Ads);
    let mut clusters = r.clusters;
    clusters.push(sluice::envoy::bootstrap::xds_cluster_for_tests());
    Bootstrap {
        node: Some(Node {
            id: "golden".into(),
            cluster: "sluice".into(),
            ..Default::default()
        }),
        admin: Some(Admin::default()),
        static_resources: Some(bootstrap::StaticResources {
            listeners: r.listeners,
            clusters,
            secrets: Vec::new(),
        }),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_config_source::ApiType::DeltaGrpc as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: sluice::ir::names::XDS_CLUSTER.into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every golden IR, rendered both ways, is accepted by `envoy --mode validate`.
#[test]
fn envoy_accepts_every_golden_output() {
    let irs = yaml_files(&testdata().join("ir"));
    assert!(!irs.is_empty());
    // Loading writes the inline certificates the IR files name (under `$RUNTIME`).
    for config in yaml_files(&testdata().join("configs")) {
        let _ = sluice::config::load(&config);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeIdentity {
        id: "golden".into(),
        cluster: "sluice".into(),
    };
    let admin = "127.0.0.1:9901".parse().unwrap();
    let mut jobs = Vec::new();
    for path in &irs {
        let ir = read_ir(path);
        for (kind, bootstrap) in [
            ("static", render(&ir, &admin, &node)),
            ("ads", ads_shaped(&ir)),
        ] {
            let file = dir.path().join(format!("{}.{kind}.json", stem(path)));
            std::fs::write(
                &file,
                serde_json::to_vec(&to_json(&bootstrap).unwrap()).unwrap(),
            )
            .unwrap();
            jobs.push((format!("{} ({kind})", path.display()), file));
        }
    }
    // Two at a time: this machine has two cores, and each validation is one Envoy process.
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(name, file)| {
                            envoy::validate(file)
                                .err()
                                .map(|e| format!("Envoy rejected {name}:\n{e}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("validator thread"))
            .collect()
    });
    finish(problems);
}

/// The golden configs together use every key sluice supports.
#[test]
fn golden_configs_use_every_supported_key() {
    use sluice::config::raw::{RawCertificate, RawConfig, RawRedirect, RawResponse, RawRoute};
    let mut used: BTreeSet<String> = BTreeSet::new();
    fn walk(v: &Value, used: &mut BTreeSet<String>, in_policy: bool) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if !in_policy {
                        used.insert(k.clone());
                    }
                    walk(
                        v,
                        used,
                        in_policy
                            || k == "policy" && !v.is_array()
                            || k == "allowed_idp_claims"
                            || k.ends_with("headers"),
                    );
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, used, in_policy)),
            _ => {}
        }
    }
    for config in yaml_files(&testdata().join("configs")) {
        let text = std::fs::read_to_string(&config).unwrap();
        walk(
            &sluice::document::yaml::parse(&text)
                .unwrap()
                .unwrap()
                .to_json(),
            &mut used,
            false,
        );
    }
    let all: Vec<&str> = [
        RawConfig::KEYS,
        RawRoute::KEYS,
        RawRedirect::KEYS,
        RawResponse::KEYS,
        RawCertificate::KEYS,
    ]
    .concat();
    let missing: Vec<&&str> = all.iter().filter(|k| !used.contains(**k)).collect();
    assert!(
        missing.is_empty(),
        "keys no golden config uses: {missing:?}"
    );
}

/// Secret values written in the golden configs never reach a golden output.
#[test]
fn golden_outputs_hold_no_secrets() {
    let mut secrets: Vec<String> = Vec::new();
    for config in yaml_files(&testdata().join("configs")) {
        let text = std::fs::read_to_string(&config).unwrap();
        let json = sluice::document::yaml::parse(&text)
            .unwrap()
            .unwrap()
            .to_json();
        for key in [
            "idp_client_secret",
            "shared_secret",
            "cookie_secret",
            "signing_key",
        ] {
            if let Some(s) = json.get(key).and_then(Value::as_str) {
                secrets.push(s.to_string());
            }
        }
    }
    assert!(
        !secrets.is_empty(),
        "the golden configs include secrets to look for"
    );
    // Every line of every private key's body.
    for entry in std::fs::read_dir(testdata().join("certs")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with("-key.pem") {
            let pem = std::fs::read_to_string(&path).unwrap();
            secrets.extend(
                pem.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() > 16)
                    .map(str::to_string),
            );
        }
    }
    for dir in ["ir", "envoy", "diagnostics"] {
        let Ok(entries) = std::fs::read_dir(testdata().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{} contains a secret from the config",
                    path.display()
                );
            }
        }
    }
}

/// What xDS sends (`encode`, built resource by resource) decodes to exactly what `translate`
/// builds for rendering, so the golden files describe the served bytes too.
#[test]
fn encoded_resources_match_translated_ones() {
    use envoy_types::pb::envoy::config::{
        cluster::v3::Cluster,
        listener::v3::Listener,
        route::v3::{RouteConfiguration, ScopedRouteConfiguration},
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Message;
    for path in yaml_files(&testdata().join("ir")) {
        let ir = read_ir(&path);
        let structs = translate(&ir, Delivery::Ads);
        let encoded = sluice::envoy::encode(ir);
        let names = |e: &[sluice::envoy::EncodedResource]| {
            e.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            names(&encoded.listeners),
            structs
                .listeners
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
        );
        for (e, s) in encoded.listeners.iter().zip(&structs.listeners) {
            assert_eq!(
                &Listener::decode(&e.bytes[..]).unwrap(),
                s,
                "{}",
                path.display()
            );
        }
        assert_eq!(encoded.route_configs.len(), structs.route_configs.len());
        for (e, s) in encoded.route_configs.iter().zip(&structs.route_configs) {
            assert_eq!(
                &RouteConfiguration::decode(&e.bytes[..]).unwrap(),
                s,
                "{}",
                path.display()
            );
        }
        assert_eq!(encoded.scopes.len(), structs.scopes.len());
        for (e, s) in encoded.scopes.iter().zip(&structs.scopes) {
            assert_eq!(
                &ScopedRouteConfiguration::decode(&e.bytes[..]).unwrap(),
                s,
                "{}",
                path.display()
            );
        }
        assert_eq!(encoded.clusters.len(), structs.clusters.len());
        for (e, s) in encoded.clusters.iter().zip(&structs.clusters) {
            assert_eq!(
                &Cluster::decode(&e.bytes[..]).unwrap(),
                s,
                "{}",
                path.display()
            );
        }
        for (e, s) in encoded.secrets.iter().zip(&structs.secrets) {
            assert_eq!(
                &Secret::decode(&e.bytes[..]).unwrap(),
                s,
                "{}",
                path.display()
            );
        }
    }
}

/// Versions follow content: building twice gives the same versions, and changing one route
/// changes the route table's version and nothing else.
#[test]
fn versions_are_stable_and_follow_content() {
    let config = testdata().join("configs/12-load-balancing.yaml");
    let model = sluice::config::load(&config).unwrap();
    let a = sluice::envoy::encode(sluice::ir::build(&model));
    let b = sluice::envoy::encode(sluice::ir::build(&model));
    assert_eq!(a, b);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "load_balancing_policy: random",
        "load_balancing_policy: random\n    timeout: 12s",
    );
    let changed = sluice::envoy::encode(sluice::ir::build(
        &sluice::config::load_bytes(&config, text.as_bytes()).unwrap(),
    ));
    assert_eq!(
        a.listeners, changed.listeners,
        "a route edit never changes a listener"
    );
    assert_eq!(a.clusters, changed.clusters);
    assert_ne!(a.route_configs[0].version, changed.route_configs[0].version);
}
