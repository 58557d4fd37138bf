//! The keys of browser sign-in, derived from `cookie_secret` and `shared_secret`: one key per
//! purpose (HKDF-SHA256), so a value sealed for one purpose never opens as another.

use std::sync::OnceLock;

use base64::Engine;
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::config::secret::Secret;

/// A 32-byte key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// Every key the sign-in endpoints and the cookie reader use.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Seals the session cookies (`cookie_secret`).
    pub session: Key,
    /// Seals the OAuth `state` and the CSRF cookie (`cookie_secret`).
    pub state: Key,
    /// Seals the one-minute session handoff to a route host (`shared_secret`, as Pomerium).
    pub handoff: Key,
    /// Signs sign-in and sign-out URLs (`shared_secret`).
    pub url: Key,
}

fn decode(secret: &Secret) -> Option<Vec<u8>> {
    let text = secret.expose();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .ok()
}

fn derive(secret: &[u8], purpose: &str) -> Key {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret)
        .expand(purpose.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Key(out)
}

/// A secret made up for this process when the config has none (Pomerium's all-in-one mode
/// does the same, with a warning): sessions then last only as long as the process.
fn process_secret(which: &'static str, warn: bool) -> Vec<u8> {
    static COOKIE: OnceLock<[u8; 32]> = OnceLock::new();
    static SHARED: OnceLock<[u8; 32]> = OnceLock::new();
    let cell = if which == "cookie_secret" {
        &COOKIE
    } else {
        &SHARED
    };
    cell.get_or_init(|| {
        if warn {
            tracing::warn!(
            setting = which,
            "{which} is not set: using a random one for this process, so a restart signs everyone out and replicas do not share sessions"
            );
        }
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        bytes
    })
    .to_vec()
}

impl Keys {
    /// From the config's secrets (already checked to decode to 32 bytes), or random ones
    /// (with a warning when `sign_in` is configured: without it nothing is sealed for long).
    pub fn new(
        cookie_secret: Option<&Secret>,
        shared_secret: Option<&Secret>,
        sign_in: bool,
    ) -> Keys {
        let cookie = cookie_secret
            .and_then(decode)
            .unwrap_or_else(|| process_secret("cookie_secret", sign_in));
        let shared = shared_secret
            .and_then(decode)
            .unwrap_or_else(|| process_secret("shared_secret", sign_in));
        Keys {
            session: derive(&cookie, "sluice session cookie v1"),
            state: derive(&cookie, "sluice oauth state v1"),
            handoff: derive(&shared, "sluice session handoff v1"),
            url: derive(&shared, "sluice signed url v1"),
        }
    }
}

/// `n` random bytes, base64url: CSRF tokens, nonces, PKCE verifiers, session ids.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_get_different_keys_and_debug_hides_them() {
        let secret = Secret::new(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        let keys = Keys::new(Some(&secret), Some(&secret), true);
        assert_ne!(keys.session, keys.state);
        assert_ne!(keys.handoff, keys.url);
        assert_eq!(
            Keys::new(Some(&secret), Some(&secret), true).session,
            keys.session
        );
        assert!(!format!("{keys:?}").contains("7, 7"));
    }
}
