//! A PEM setting written either as a file path (`*_file`) or inline as base64 (Pomerium's two
//! forms): checked, and the inline form written to a private file, since Envoy reads paths.

use std::path::{Path, PathBuf};

use base64::Engine;

use super::files::{PemKind, check_pem, resolve};
use crate::config::generated;
use crate::document::decode::{KeyPath, Spanned};
use crate::document::diag::{Diagnostics, Span};

/// The inline form of a setting: its text (possibly a secret) and where it was written.
pub(super) struct Inline<'a> {
    pub key: &'static str,
    pub text: &'a str,
    pub span: Span,
}

impl<'a> Inline<'a> {
    pub fn of(key: &'static str, value: Option<&'a Spanned<String>>) -> Option<Self> {
        value.map(|v| Inline {
            key,
            text: &v.value,
            span: v.span,
        })
    }
}

/// What the PEM must hold, and the stem of the generated file's name.
#[derive(Clone, Copy)]
pub(super) enum Content {
    Pem(PemKind),
    Crl,
}

/// Resolves one setting to a file Envoy can read; `None` when unset or wrong (reported).
#[allow(clippy::too_many_arguments)]
pub(super) fn source(
    inline: Option<Inline<'_>>,
    file: Option<(&'static str, &Spanned<String>)>,
    content: Content,
    label: &str,
    path: &KeyPath,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<PathBuf> {
    source_with(inline, file, content, label, None, path, base, diags)
}

/// As [`source`], with Pomerium's words in front of a file problem ("couldn't load ...").
#[allow(clippy::too_many_arguments)]
pub(super) fn source_with(
    inline: Option<Inline<'_>>,
    file: Option<(&'static str, &Spanned<String>)>,
    content: Content,
    label: &str,
    file_context: Option<&str>,
    path: &KeyPath,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<PathBuf> {
    match (inline, file) {
        (Some(i), Some((file_key, f))) => {
            diags.error(
                f.span,
                path.key(file_key),
                format!(
                    "set either {} or {file_key}, not both: they are the same setting, inline (base64) and as a file",
                    i.key
                ),
            );
            None
        }
        (Some(i), None) => {
            let bytes = decode(&i, content, path, diags)?;
            match generated::write_private(label, &bytes) {
                Ok(p) => Some(p),
                Err(e) => {
                    diags.error(i.span, path.key(i.key), e.to_string());
                    None
                }
            }
        }
        (None, Some((file_key, f))) => {
            let p = resolve(base, &f.value);
            let checked = match content {
                Content::Pem(kind) => check_pem(&p, kind),
                Content::Crl => check_crl(&p),
            };
            match checked {
                Ok(()) => Some(p),
                Err(e) => {
                    let message = match file_context {
                        Some(ctx) => format!("{ctx}: {e}"),
                        None => e,
                    };
                    diags.error(f.span, path.key(file_key), message);
                    None
                }
            }
        }
        (None, None) => None,
    }
}

/// Base64 → PEM bytes of the right kind. Line breaks inside the base64 are tolerated (a
/// `base64` without `-w0` wraps at 76); the value itself never appears in a message.
fn decode(
    i: &Inline<'_>,
    content: Content,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> Option<Vec<u8>> {
    let compact: String = i.text.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) else {
        diags.error(
            i.span,
            path.key(i.key),
            format!(
                "`{}` is not base64: give the PEM file's contents base64-encoded (for example `base64 -w0 file.pem`), or use `{}_file` with a path",
                i.key,
                i.key.trim_end_matches("_key")
            ),
        );
        return None;
    };
    let text = String::from_utf8_lossy(&bytes);
    let (ok, what) = match content {
        Content::Pem(PemKind::Certificate) => (
            text.contains("-----BEGIN CERTIFICATE-----"),
            "a PEM certificate (-----BEGIN CERTIFICATE-----)",
        ),
        Content::Pem(PemKind::PrivateKey) => (
            text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----"),
            "a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        ),
        Content::Crl => (
            text.contains("-----BEGIN X509 CRL-----"),
            "a PEM certificate revocation list (-----BEGIN X509 CRL-----)",
        ),
    };
    if !ok {
        diags.error(
            i.span,
            path.key(i.key),
            format!("`{}` decodes from base64, but not to {what}", i.key),
        );
        return None;
    }
    // A value cut short (a config file truncated by a full disk) can still be base64 and
    // hold the BEGIN line: every block must be whole, and one of the kind wanted.
    let wanted = |label: &str| match content {
        Content::Pem(PemKind::Certificate) => label == "CERTIFICATE",
        Content::Pem(PemKind::PrivateKey) => label.ends_with("PRIVATE KEY"),
        Content::Crl => label == "X509 CRL",
    };
    let whole = pem_labels(&bytes).is_some_and(|labels| labels.iter().any(|l| wanted(l)));
    if !whole {
        diags.error(
            i.span,
            path.key(i.key),
            format!(
                "`{}` decodes to {what}, but cut short or broken (a block without its -----END line, or bad base64 inside it): is the whole value there?",
                i.key
            ),
        );
        return None;
    }
    Some(bytes)
}

/// The labels of the PEM blocks in `bytes`; `None` when a block is cut short or broken: no
/// `-----END <label>-----` line of its own (Envoy's PEM reader wants the whole line), or a
/// body that is not base64. RFC 1421 header lines (`Proc-Type: ...`) are let through.
fn pem_labels(bytes: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines().map(str::trim);
    let mut labels = Vec::new();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            let line = lines.next()?;
            if line == end {
                break;
            }
            if line.starts_with("-----") {
                return None;
            }
            if !line.contains(':') {
                body.push_str(line);
            }
        }
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .ok()
            .filter(|der| !der.is_empty())?;
        labels.push(label.to_string());
    }
    Some(labels)
}

fn check_crl(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.contains("-----BEGIN X509 CRL-----") {
        Ok(())
    } else {
        Err(format!(
            "{} does not contain a PEM certificate revocation list (-----BEGIN X509 CRL-----)",
            path.display()
        ))
    }
}

/// The DER contents of every PEM block labelled `label` in the file.
pub(super) fn der_blocks(path: &Path, label: &str) -> Vec<Vec<u8>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(Result::ok)
        .filter(|p| p.label == label)
        .map(|p| p.contents)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_pem(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/testdata/certs")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// What `decode` says of `value` given for `key`: the bytes, or the messages.
    fn decoded(key: &'static str, value: &str, content: Content) -> Result<Vec<u8>, String> {
        let value = Spanned::new(value.to_string(), Span::new(3, 5));
        let inline = Inline::of(key, Some(&value)).unwrap();
        let mut diags = Diagnostics::new(Path::new("config.yaml"));
        let bytes = decode(&inline, content, &KeyPath::root().key("routes"), &mut diags);
        let messages: Vec<String> = diags
            .into_sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        bytes.ok_or_else(|| messages.join("\n"))
    }

    const CERT: Content = Content::Pem(PemKind::Certificate);
    const KEY: Content = Content::Pem(PemKind::PrivateKey);

    #[test]
    fn whole_pems_and_bundles_decode() {
        let ca = test_pem("ca.pem");
        assert_eq!(
            decoded("tls_custom_ca", &encode(&ca), CERT).unwrap(),
            ca.as_bytes()
        );
        let bundle = format!("{ca}{}", test_pem("server.pem"));
        assert!(decoded("tls_custom_ca", &encode(&bundle), CERT).is_ok());
        let key = test_pem("client-key.pem");
        assert!(decoded("tls_client_key", &encode(&key), KEY).is_ok());
    }

    #[test]
    fn a_value_cut_short_is_refused_without_showing_it() {
        let ca = encode(&test_pem("ca.pem"));
        // Cut after a whole base64 quantum: it still decodes, to a BEGIN line and half a body.
        let cut = &ca[..400];
        let message = decoded("tls_custom_ca", cut, CERT).unwrap_err();
        assert!(message.contains("cut short"), "{message}");
        assert!(message.contains("routes.tls_custom_ca"), "{message}");
        // A bundle whose second certificate lost its end.
        let bundle = encode(&format!("{}{}", test_pem("ca.pem"), test_pem("server.pem")));
        let cut = &bundle[..bundle.len() - 200];
        let message = decoded("tls_custom_ca", cut, CERT).unwrap_err();
        assert!(message.contains("cut short"), "{message}");
        // Cut inside the END line: the body is whole, but the block has no end.
        let ca = test_pem("ca.pem");
        let cut = encode(&ca[..ca.len() - 10]);
        let message = decoded("tls_custom_ca", &cut, CERT).unwrap_err();
        assert!(message.contains("cut short"), "{message}");
        // A key cut short: refused, and none of it in the message.
        let key = encode(&test_pem("client-key.pem"));
        let cut = &key[..(key.len() / 2) & !3];
        let message = decoded("tls_client_key", cut, KEY).unwrap_err();
        assert!(message.contains("cut short"), "{message}");
        assert!(!message.contains(&cut[40..]), "{message}");
        let body = test_pem("client-key.pem");
        for line in body.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!message.contains(line), "{message}");
        }
    }
}
