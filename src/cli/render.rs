//! `sluice render` and `sluice bootstrap`: print Envoy configuration.

use std::path::Path;
use std::process::ExitCode;

use super::{Format, load};
use crate::envoy::bootstrap::{self, AdsFlavour, NodeIdentity};
use crate::envoy::json::to_json;
use crate::format::yaml;

fn print(value: &serde_json::Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Yaml => print!("{}", yaml::to_string(value)),
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

pub fn render(config: &Path, format: Format, ir_only: bool) -> anyhow::Result<ExitCode> {
    let model = match load(config) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let ir = crate::ir::build(&model);
    if ir_only {
        print(
            &crate::envoy::json::sorted(serde_json::to_value(&ir)?),
            format,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let node = NodeIdentity {
        id: "sluice-render".into(),
        cluster: "sluice".into(),
    };
    print(
        &to_json(&bootstrap::render(
            &ir,
            &model.global.envoy_admin_address,
            &node,
        ))?,
        format,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn bootstrap(
    config: &Path,
    ads: AdsFlavour,
    format: Format,
    node_id: Option<String>,
) -> anyhow::Result<ExitCode> {
    let model = match load(config) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let id = node_id.unwrap_or_else(default_node_id);
    let node = NodeIdentity {
        id,
        cluster: "sluice".into(),
    };
    if format == Format::Yaml {
        println!(
            "# Start Envoy with: envoy -c <this file> {}",
            bootstrap::envoy_flags(&model.global).join(" ")
        );
    }
    print(&to_json(&bootstrap::ads(&model, ads, &node))?, format)?;
    Ok(ExitCode::SUCCESS)
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "local".into());
    format!("envoy-{host}")
}
