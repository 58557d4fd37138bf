//! `sluice status`: asks a running sluice which Envoys are connected and what each holds.

use std::process::ExitCode;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::app::http::STATUS_PATH;

pub async fn fetch(address: &str) -> anyhow::Result<Value> {
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://{address}{STATUS_PATH}").parse()?;
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| anyhow::anyhow!("sluice at {address} did not answer within 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot reach sluice at {address}: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "sluice at {address} answered {status}");
    Ok(serde_json::from_slice(&body)?)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn print(report: &Value) -> ExitCode {
    let reload = &report["reload"];
    println!(
        "sluice {} serving {} at generation {} (reloads: {} published, {} unchanged, {} failed)",
        text(&report["version"]),
        text(&reload["config_file"]),
        text(&reload["generation"]),
        text(&reload["succeeded"]),
        text(&reload["unchanged"]),
        text(&reload["failed"]),
    );
    if let Some(errors) = reload["last_error"].as_array() {
        println!("the last reload failed; still serving the last good config:");
        for e in errors {
            println!("  {}", text(e));
        }
    }
    let authz = &report["authz"];
    println!(
        "ext_authz: {} checks ({} allowed, {} denied, {} sign-in, {} unknown route); {} credentials refused, {} stale checksums",
        text(&authz["checks"]),
        text(&authz["allowed"]),
        text(&authz["denied"]),
        text(&authz["sign_in"]),
        text(&authz["unknown_route"]),
        text(&authz["refused_credentials"]),
        text(&authz["stale_checksum"]),
    );
    let envoys = report["envoys"].as_array().cloned().unwrap_or_default();
    if envoys.is_empty() {
        println!("no Envoy is connected");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<24} {:<6} {:<4} {:<18} {:<18} {:>9}  LAST NACK",
        "NODE", "ADS", "TYPE", "SENT", "ACKED", "RESOURCES"
    );
    for envoy in &envoys {
        let node = text(&envoy["node_id"]);
        let flavour = text(&envoy["flavour"]);
        let types = envoy["types"].as_object().cloned().unwrap_or_default();
        for (i, (ty, t)) in types.iter().enumerate() {
            let nack = match &t["last_nack"] {
                Value::Null => String::new(),
                n => format!("version {}: {}", text(&n["version"]), text(&n["error"])),
            };
            let (node, flavour) = if i == 0 {
                (node.as_str(), flavour.as_str())
            } else {
                ("", "")
            };
            println!(
                "{:<24} {:<6} {:<4} {:<18} {:<18} {:>9}  {}",
                node,
                flavour,
                ty,
                text(&t["sent_version"]),
                text(&t["acked_version"]),
                text(&t["resources"]),
                nack
            );
        }
    }
    ExitCode::SUCCESS
}
