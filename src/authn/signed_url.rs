//! Signed URLs (sign-in, sign-out): HMAC-SHA512/256 over the host, path and query with an
//! issue and expiry time, as Pomerium signs them, so only sluice can send a browser to them.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha512_256;

use super::keys::Key;

/// How long a signed URL is valid (Pomerium: 5 minutes).
pub const VALID_FOR_SECS: u64 = 300;
/// Clock difference tolerated between signer and verifier (Pomerium: 1 minute).
const SKEW_SECS: u64 = 60;
const SIGNATURE: &str = "pomerium_signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL is not signed")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signed URL has expired or is not valid yet")]
    Expired,
}

fn mac(key: &Key, message: &str) -> Hmac<Sha512_256> {
    let mut mac = Hmac::<Sha512_256>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac
}

fn message(host: &str, path: &str, query: &str) -> String {
    format!("{}\n{path}?{query}", host.to_ascii_lowercase())
}

/// Adds the issue time, expiry and signature to `url` (they must be its last parameters).
pub fn sign(url: &mut url::Url, key: &Key, now: u64) {
    url.query_pairs_mut()
        .append_pair("pomerium_issued", &now.to_string())
        .append_pair("pomerium_expiry", &(now + VALID_FOR_SECS).to_string());
    let host = url.host_str().unwrap_or("").to_string();
    let signed = mac(key, &message(&host, url.path(), url.query().unwrap_or("")))
        .finalize()
        .into_bytes();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed);
    url.query_pairs_mut().append_pair(SIGNATURE, &signature);
}

/// Checks a request for a signed URL: `host` without the port, `path` and the raw `query` as
/// received.
pub fn verify(
    key: &Key,
    host: &str,
    path: &str,
    query: &str,
    now: u64,
) -> Result<(), SignatureError> {
    let marker = format!("&{SIGNATURE}=");
    let (signed, signature) = query.rsplit_once(&marker).ok_or(SignatureError::Missing)?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SignatureError::Mismatch)?;
    mac(key, &message(host, path, signed))
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)?;
    let time = |name: &str| {
        url::form_urlencoded::parse(signed.as_bytes())
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let (Some(issued), Some(expiry)) = (time("pomerium_issued"), time("pomerium_expiry")) else {
        return Err(SignatureError::Expired);
    };
    if now + SKEW_SECS < issued || now > expiry + SKEW_SECS {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: Key = Key([3; 32]);

    fn signed(now: u64) -> url::Url {
        let mut url = url::Url::parse(
            "https://auth.example.com/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fapp.example.com%2Fx",
        )
        .unwrap();
        sign(&mut url, &K, now);
        url
    }

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let url = signed(1000);
        let check = |host: &str, query: &str, now| verify(&K, host, url.path(), query, now);
        let query = url.query().unwrap();
        assert_eq!(check("auth.example.com", query, 1000), Ok(()));
        assert_eq!(check("AUTH.example.com", query, 1000 + 300 + 59), Ok(()));
        assert_eq!(
            check("auth.example.com", query, 1000 + 300 + 61),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            check("auth.example.com", query, 900),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            check("other.example.com", query, 1000),
            Err(SignatureError::Mismatch)
        );
        let altered = query.replace("app.example.com", "evil.example.com");
        assert_eq!(
            check("auth.example.com", &altered, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("auth.example.com", "pomerium_redirect_uri=x", 1000),
            Err(SignatureError::Missing)
        );
        assert!(verify(&Key([4; 32]), "auth.example.com", url.path(), query, 1000).is_err());
    }

    proptest! {
        #[test]
        fn random_queries_never_verify(query in ".{0,200}") {
            prop_assert!(verify(&K, "auth.example.com", "/.pomerium/sign_in", &query, 1000).is_err());
        }
    }
}
