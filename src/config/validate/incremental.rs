//! Reloads that re-validate only what changed. The entries of `routes` are cut from the file
//! by indentation (`document::split`), each is hashed, and a route whose text, line and place
//! in the list are as at the last load, under unchanged global settings, is taken from the last
//! load as it was validated then, with its warnings; a route that had errors is checked anew,
//! since what failed may have been outside the text (a missing file, a full disk). Everything
//! else is parsed and checked anew; the checks that need every route run on the whole list
//! every time. The result is the one `load_bytes` gives for the same bytes (a property test
//! holds it to that); files this cannot split are loaded whole.

use std::path::{Path, PathBuf};

use super::{Checked, check_route, finish, global, read_raw};
use crate::config::model::Model;
use crate::document::diag::{Diagnostics, Rejected};
use crate::document::split::block_list_items;
use crate::document::yaml::{self, NodeKind};
use crate::parallel;

/// One entry of the list as last validated.
#[derive(Clone)]
struct Entry {
    hash: u64,
    line: usize,
    checked: Checked,
}

struct Cache {
    file: PathBuf,
    /// The hash of everything outside the list (global settings), which every route is
    /// validated against.
    rest: u64,
    entries: Vec<Entry>,
}

/// What the last load could take from the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    pub reused: usize,
    pub validated: usize,
    /// The file was loaded whole (not split, or nothing to reuse).
    pub whole: bool,
}

/// The loader of one config file across reloads.
#[derive(Default)]
pub struct Incremental {
    cache: Option<Cache>,
}

/// As `char::is_control` on every character but tab and line breaks, on bytes: C0 controls,
/// DEL, and the C1 controls (U+0080..U+009F, `C2 80`..`C2 9F` in UTF-8).
fn has_control_characters(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'))
            || b == 0x7f
            || (b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    })
}

fn hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

impl Incremental {
    pub fn new() -> Self {
        Self::default()
    }

    /// As `load_bytes(path, bytes)`, reusing what the last call validated.
    pub fn load(&mut self, path: &Path, bytes: &[u8]) -> (Result<Model, Rejected>, Reuse) {
        match self.load_split(path, bytes) {
            Some(done) => done,
            None => {
                self.cache = None;
                let whole = Reuse {
                    whole: true,
                    ..Reuse::default()
                };
                (super::load_bytes(path, bytes), whole)
            }
        }
    }

    fn load_split(
        &mut self,
        path: &Path,
        bytes: &[u8],
    ) -> Option<(Result<Model, Rejected>, Reuse)> {
        let text = std::str::from_utf8(bytes).ok()?;
        // Control characters get the whole loader's message; the legacy `policy` list its
        // warning.
        if has_control_characters(text) || text.starts_with("policy:") || text.contains("\npolicy:")
        {
            return None;
        }
        let split = block_list_items(text, "routes")?;
        let mut diags = Diagnostics::new(path);
        let raw = read_raw(split.rest.as_bytes(), &mut diags)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let global = global::validate_global(&raw, base, &mut diags);
        // What is outside the list, whatever its length: a route added or removed moves the
        // keys after the list, and those are validated anew each time anyway.
        let rest = xxhash_rust::xxh3::xxh3_64_with_seed(
            &text.as_bytes()[split.list.end..],
            hash(&text[..split.list.start]),
        );
        let mut previous: Vec<Option<Entry>> = self
            .cache
            .take()
            .filter(|c| c.rest == rest && c.file == path)
            .map(|c| c.entries.into_iter().map(Some).collect())
            .unwrap_or_default();

        let hashes: Vec<u64> = split.items.iter().map(|r| hash(&text[r.clone()])).collect();
        let mut entries: Vec<Option<Entry>> = (0..split.items.len())
            .map(|i| {
                previous
                    .get_mut(i)
                    .and_then(Option::take)
                    // A route that failed is checked again: what failed may lie outside the
                    // text (a file it names, a full disk where its inline PEM goes).
                    .filter(|e| {
                        e.hash == hashes[i] && e.line == split.lines[i] && !e.checked.1.has_errors()
                    })
            })
            .collect();
        drop(previous);
        let reused = entries.iter().filter(|e| e.is_some()).count();
        let stale: Vec<usize> = (0..entries.len())
            .filter(|i| entries[*i].is_none())
            .collect();
        let fresh = parallel::map(stale.clone(), |i| {
            let item = &text[split.items[i].clone()];
            let mut node = yaml::parse(item).ok()??;
            // Parsed apart from the file: back to the file's line numbers.
            node.shift_lines(u32::try_from(split.lines[i] - 1).ok()?);
            let NodeKind::Seq(mut one) = node.kind else {
                return None;
            };
            if one.len() != 1 {
                return None;
            }
            let entry = one.pop()?;
            Some(check_route(
                "routes",
                i,
                entry,
                &global,
                base,
                diags.sibling(),
            ))
        });
        for (i, checked) in stale.iter().zip(fresh) {
            // An entry that does not parse on its own: the whole loader reports it.
            entries[*i] = Some(Entry {
                hash: hashes[*i],
                line: split.lines[*i],
                checked: checked?,
            });
        }
        let entries: Vec<Entry> = entries.into_iter().collect::<Option<_>>()?;

        let mut routes = Vec::with_capacity(entries.len());
        let mut route_cas = Vec::with_capacity(entries.len());
        for entry in &entries {
            let (route, route_diags) = entry.checked.clone();
            diags.absorb(route_diags);
            if let Some((route, ca)) = route {
                routes.push(route);
                route_cas.push(ca);
            }
        }
        self.cache = Some(Cache {
            file: path.to_path_buf(),
            rest,
            entries,
        });
        let reuse = Reuse {
            reused,
            validated: stale.len(),
            whole: false,
        };
        Some((finish(path, global, routes, &route_cas, diags), reuse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_that_failed_is_checked_again_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let ca = dir.path().join("ca.pem");
        let text = format!(
            "insecure_server: true\naddress: 127.0.0.1:8080\nroutes:\n  - from: http://a.example.com\n    to: http://10.0.0.1:80\n    allow_public_unauthenticated_access: true\n  - from: http://b.example.com\n    to: https://10.0.0.2:443\n    tls_custom_ca_file: {}\n    allow_public_unauthenticated_access: true\n",
            ca.display()
        );
        let mut loader = Incremental::new();
        let (first, _) = loader.load(&path, text.as_bytes());
        assert!(first.is_err(), "the CA file is missing");
        // The file appears; the same text is saved again.
        let test_ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/certs/ca.pem");
        std::fs::copy(test_ca, &ca).unwrap();
        let (second, reuse) = loader.load(&path, text.as_bytes());
        let model = second.unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        assert_eq!(model.routes.len(), 2);
        assert_eq!(
            (reuse.reused, reuse.validated),
            (1, 1),
            "only the good route is reused"
        );
    }
}
