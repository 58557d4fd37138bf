//! Any bytes as a config file: the loader answers with a model or with diagnostics, never a
//! panic; and it answers the same way whole and incrementally, fresh and reusing what it
//! validated (as tests/integration/incremental.rs checks for generated edits).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sluice::config::Model;
use sluice::config::validate::Incremental;
use sluice::document::diag::Rejected;

/// Beside the repository's test configs, so the relative file references they (and mutations of
/// them) hold resolve to real certificates and secrets.
static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/configs/fuzz.yaml")
});

/// What a load produced, in a form two loads can be compared by.
fn outcome(result: &Result<Model, Rejected>) -> String {
    match result {
        Ok(model) => format!(
            "ok {}\nwarnings {:?}",
            serde_json::to_string(model).expect("a model serializes"),
            model.warnings
        ),
        Err(rejected) => format!("rejected {:?}", rejected.diagnostics),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let whole = outcome(&sluice::config::load_bytes(&PATH, bytes));
    let mut loader = Incremental::new();
    let (fresh, _) = loader.load(&PATH, bytes);
    assert_eq!(
        outcome(&fresh),
        whole,
        "an incremental load differs from a whole one"
    );
    let (reused, _) = loader.load(&PATH, bytes);
    assert_eq!(
        outcome(&reused),
        whole,
        "a reload of the same bytes differs from the first load"
    );
});
