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
    Some(bytes)
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
