//! The key that signs identity assertions (ES256), and its public half as a JWKS so upstreams
//! can verify what sluice tells them.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::SecretKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct Signer {
    key: EncodingKey,
    pub kid: String,
    jwk: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// From a PEM P-256 private key (SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Signer, String> {
        let secret = SecretKey::from_sec1_pem(pem)
            .or_else(|_| SecretKey::from_pkcs8_pem(pem))
            .map_err(|_| "signing_key is not a PEM P-256 (prime256v1) private key".to_string())?;
        Signer::from_secret(&secret)
    }

    /// A fresh key, for when no `signing_key` is configured (assertions then verify only
    /// until sluice restarts, as upstreams refetch the JWKS).
    pub fn generate() -> Signer {
        let secret = SecretKey::random(&mut rand_core::OsRng);
        Signer::from_secret(&secret).expect("a generated P-256 key encodes")
    }

    fn from_secret(secret: &SecretKey) -> Result<Signer, String> {
        let pkcs8 = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let key = EncodingKey::from_ec_pem(pkcs8.as_bytes()).map_err(|e| e.to_string())?;
        let public: Value =
            serde_json::to_value(secret.public_key().to_jwk()).map_err(|e| e.to_string())?;
        let (x, y) = (
            public["x"].as_str().unwrap_or(""),
            public["y"].as_str().unwrap_or(""),
        );
        // RFC 7638 thumbprint: the required members, in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(Signer { key, kid, jwk })
    }

    pub fn sign(&self, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.key).expect("ES256 signing does not fail")
    }

    /// `{"keys": [...]}`, as served at `/.well-known/pomerium/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn assertions_verify_against_the_published_jwks() {
        let signer = Signer::generate();
        let token = signer
            .sign(&json!({"sub": "alice", "aud": "app.example.com", "exp": 4_000_000_000u64}));
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(signer.jwks()).unwrap();
        let key = DecodingKey::from_jwk(jwks.find(&signer.kid).unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["app.example.com"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "alice");
    }

    #[test]
    fn rejects_what_is_not_a_p256_key() {
        assert!(Signer::from_pem("not a key").is_err());
    }
}
