//! Sealed values: JSON encrypted and authenticated with XChaCha20-Poly1305, bound to what they
//! are for (the associated data), as base64url text safe in cookies and URLs.

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::OsRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::Key;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Longer text is refused before any decoding (cookies and URLs are far shorter).
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// Why a sealed value did not open. Callers treat every case as "no value".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("too long")]
    TooLong,
    #[error("not base64url")]
    NotBase64,
    #[error("too short or an unknown version")]
    Malformed,
    #[error("sealed with another key, for another purpose, or altered")]
    Forged,
    #[error("not the expected contents")]
    Contents,
}

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new((&key.0).into())
}

/// Seals `value` for `purpose` (which must be given again to open it).
pub fn seal<T: Serialize>(key: &Key, purpose: &[u8], value: &T) -> String {
    let plain = serde_json::to_vec(value).expect("sealed values serialize");
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: purpose,
            },
        )
        .expect("encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

/// Opens what `seal` made with the same key and purpose.
pub fn open<T: DeserializeOwned>(key: &Key, purpose: &[u8], text: &str) -> Result<T, SealError> {
    if text.len() > MAX_SEALED_LEN {
        return Err(SealError::TooLong);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| SealError::NotBase64)?;
    if bytes.len() < 1 + NONCE_LEN + 16 || bytes[0] != VERSION {
        return Err(SealError::Malformed);
    }
    let nonce = XNonce::from_slice(&bytes[1..1 + NONCE_LEN]);
    let plain = cipher(key)
        .decrypt(
            nonce,
            Payload {
                msg: &bytes[1 + NONCE_LEN..],
                aad: purpose,
            },
        )
        .map_err(|_| SealError::Forged)?;
    serde_json::from_slice(&plain).map_err(|_| SealError::Contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: Key = Key([1; 32]);

    #[test]
    fn round_trip_and_binding() {
        let sealed = seal(&K, b"a", &("x", 5u32));
        assert_eq!(
            open::<(String, u32)>(&K, b"a", &sealed),
            Ok(("x".into(), 5))
        );
        assert_eq!(
            open::<(String, u32)>(&K, b"b", &sealed),
            Err(SealError::Forged)
        );
        assert_eq!(
            open::<(String, u32)>(&Key([2; 32]), b"a", &sealed),
            Err(SealError::Forged)
        );
        assert_eq!(open::<u32>(&K, b"a", &sealed), Err(SealError::Contents));
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(open::<(String, u32)>(&K, b"a", &tampered).is_err());
        assert_eq!(open::<u32>(&K, b"a", ""), Err(SealError::Malformed));
        assert_eq!(
            open::<u32>(&K, b"a", &"A".repeat(MAX_SEALED_LEN + 1)),
            Err(SealError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn random_text_never_opens(text in ".{0,300}") {
            prop_assert!(open::<serde_json::Value>(&K, b"a", &text).is_err());
        }

        #[test]
        fn random_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(open::<serde_json::Value>(&K, b"a", &text).is_err());
        }

        #[test]
        fn truncation_never_opens(cut in 0usize..60) {
            let sealed = seal(&K, b"a", &"some session");
            let cut = cut.min(sealed.len() - 1);
            prop_assert!(open::<String>(&K, b"a", &sealed[..sealed.len() - 1 - cut]).is_err());
        }
    }
}
