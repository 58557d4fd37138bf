//! Golden files: compare, or rewrite with `SLUICE_UPDATE_GOLDEN=1`, which also deletes
//! golden files whose input is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{stem, testdata};

pub const UPDATE_ENV: &str = "SLUICE_UPDATE_GOLDEN";

pub fn updating() -> bool {
    std::env::var_os(UPDATE_ENV).is_some_and(|v| v != "0")
}

/// Absolute paths into the test data differ between checkouts; golden files say `$TESTDATA`,
/// and `$RUNTIME` for sluice's directory of generated files (inline certificates).
pub fn portable(text: &str) -> String {
    text.replace(&testdata().display().to_string(), "$TESTDATA")
        .replace(&runtime_dir(), "$RUNTIME")
}

pub fn local(text: &str) -> String {
    text.replace("$TESTDATA", &testdata().display().to_string())
        .replace("$RUNTIME", &runtime_dir())
}

fn runtime_dir() -> String {
    sluice::config::generated::dir()
        .expect("sluice's runtime directory")
        .display()
        .to_string()
}

/// Checks `actual` against the golden file; returns a description of the mismatch.
pub fn check(path: &Path, actual: &str) -> Result<(), String> {
    if updating() {
        std::fs::create_dir_all(path.parent().expect("golden file has a folder"))
            .expect("create golden folder");
        std::fs::write(path, actual).expect("write golden file");
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).map_err(|_| {
        format!(
            "{} is missing; run with {UPDATE_ENV}=1 to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let (line, want, got) = expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
        .unwrap_or((
            expected.lines().count().min(actual.lines().count()) + 1,
            "<end>".into(),
            "<end>".into(),
        ));
    Err(format!(
        "{} differs at line {line}:\n  expected: {want}\n  actual:   {got}\n(run with {UPDATE_ENV}=1 to accept the new output)",
        path.display()
    ))
}

/// Golden files in `dir` (with `extension`) whose stem is not in `inputs`: deleted when
/// updating, reported otherwise.
pub fn orphans(dir: &Path, extension: &str, inputs: &[PathBuf]) -> Vec<String> {
    let wanted: BTreeSet<String> = inputs.iter().map(|p| stem(p)).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(s) = name.strip_suffix(&format!(".{extension}")) else {
            continue;
        };
        if !wanted.contains(s) {
            if updating() {
                std::fs::remove_file(&path).expect("remove orphaned golden file");
            } else {
                stale.push(format!(
                    "{} has no input any more; run with {UPDATE_ENV}=1 to delete it",
                    path.display()
                ));
            }
        }
    }
    stale
}
