//! A test OpenID provider: discovery and JWKS served on loopback with keys generated in the
//! test (ES256 and RS256), and the tokens those keys sign. Keys can be added while it runs, to
//! test rotation, and JWKS fetches are counted, to test rate limiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "sluice-test-client";

/// One signing key: its JWK (public) and what signs with it.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub jwk: Value,
    /// The public key as PEM, for the HS256-with-public-key attack.
    pub public_pem: String,
    encoding: EncodingKey,
}

impl Key {
    pub fn es256(kid: &str) -> Key {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
        let mut jwk: Value = serde_json::to_value(secret.public_key().to_jwk()).expect("jwk");
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        Key {
            kid: kid.to_string(),
            alg: Algorithm::ES256,
            jwk,
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public pem"),
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).expect("ec key"),
        }
    }

    /// An RSA-2048 key. Generating one takes a while, so a test process makes one and shares it.
    pub fn rs256(kid: &str) -> Key {
        static RSA: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        let private = RSA
            .get_or_init(|| rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("rsa key"));
        use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
        let pem = private
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pkcs8");
        let public = private.to_public_key();
        let b64 = |bytes: Vec<u8>| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        Key {
            kid: kid.to_string(),
            alg: Algorithm::RS256,
            jwk: json!({
                "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be()),
            }),
            public_pem: public
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("public pem"),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("rsa key"),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

struct Shared {
    issuer: String,
    keys: RwLock<Vec<Key>>,
    jwks_fetches: AtomicU64,
}

pub struct Idp {
    pub url: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl Idp {
    /// Serves discovery and JWKS for an ES256 key `es-1` and an RS256 key `rs-1`.
    pub fn start() -> Idp {
        let (runtime, listener) = super::one_worker_listener(0);
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(Shared {
            issuer: url.clone(),
            keys: RwLock::new(vec![Key::es256("es-1"), Key::rs256("rs-1")]),
            jwks_fetches: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks.json", get(jwks))
            .with_state(Arc::clone(&shared));
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Idp {
            url,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Global config lines that make sluice trust this provider for bearer tokens.
    pub fn config(&self) -> String {
        format!(
            "idp_provider: oidc\nidp_provider_url: {}\nidp_client_id: {CLIENT_ID}\nidp_client_secret: test-client-secret\n",
            self.url
        )
    }

    pub fn key(&self, kid: &str) -> Key {
        self.shared
            .keys
            .read()
            .unwrap()
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// Publishes another ES256 key (a rotation).
    pub fn add_key(&self, kid: &str) -> Key {
        let key = Key::es256(kid);
        self.shared.keys.write().unwrap().push(key.clone());
        key
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Valid ID-token claims for a user, valid for an hour from now.
    pub fn claims(&self, sub: &str, email: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.url, "aud": CLIENT_ID, "sub": sub, "email": email, "groups": groups,
            "name": format!("User {sub}"), "iat": now(), "exp": now() + 3600,
        })
    }

    /// An ES256 ID token for a user.
    pub fn token(&self, sub: &str, email: &str, groups: &[&str]) -> String {
        self.key("es-1").sign(&self.claims(sub, email, groups))
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks.json", shared.issuer),
        "authorization_endpoint": format!("{}/auth", shared.issuer),
        "token_endpoint": format!("{}/token", shared.issuer),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = shared
        .keys
        .read()
        .unwrap()
        .iter()
        .map(|k| k.jwk.clone())
        .collect();
    axum::Json(json!({ "keys": keys }))
}
