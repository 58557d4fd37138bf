//! Bearer token verification against a real (test) OpenID provider: good tokens pass, and
//! every forged, stale or misdirected token is refused, never with a panic.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Value, json};
use sluice::authz::jwks::Provider;
use sluice::authz::tokens::{identity_from, verify};

use crate::common::idp::{CLIENT_ID, Idp, now};
use crate::common::process::poll;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

struct Verifier {
    runtime: tokio::runtime::Runtime,
    provider: Provider,
}

impl Verifier {
    fn new(idp: &Idp) -> Verifier {
        Verifier::with_min_refetch(idp, sluice::authz::jwks::MIN_REFETCH)
    }

    fn with_min_refetch(idp: &Idp, min: Duration) -> Verifier {
        Verifier {
            runtime: runtime(),
            provider: Provider::with_min_refetch(&idp.url, reqwest::Client::new(), min),
        }
    }

    fn verify(&self, token: &str) -> Result<serde_json::Map<String, Value>, String> {
        self.runtime
            .block_on(verify(token, &self.provider, CLIENT_ID))
            .map_err(|e| e.to_string())
    }

    fn refused(&self, what: &str, token: &str) -> String {
        match self.verify(token) {
            Ok(claims) => panic!("{what}: accepted a token that must be refused: {claims:?}"),
            Err(e) => e,
        }
    }
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn valid_es256_and_rs256_tokens_give_an_identity() {
    let idp = Idp::start();
    let v = Verifier::new(&idp);
    let claims = idp.claims("u-1", "alice@example.com", &["admins", "sre"]);
    for kid in ["es-1", "rs-1"] {
        let got = v.verify(&idp.key(kid).sign(&claims)).expect(kid);
        let identity = identity_from(got).unwrap();
        assert_eq!(identity.user_id, "u-1");
        assert_eq!(identity.email.as_deref(), Some("alice@example.com"));
        assert_eq!(identity.groups, vec!["admins", "sre"]);
    }
    // An access token names the client as authorized party rather than audience.
    let access = with(
        claims.clone(),
        json!({"aud": "https://api.example.com", "azp": CLIENT_ID}),
    );
    v.verify(&idp.key("es-1").sign(&access)).expect("azp");
    // An audience list containing the client.
    let listed = with(claims.clone(), json!({"aud": ["other", CLIENT_ID]}));
    v.verify(&idp.key("rs-1").sign(&listed)).expect("aud list");
    // A clock a few seconds off is tolerated.
    let skewed = with(claims, json!({"exp": now() - 5, "nbf": now() + 5}));
    v.verify(&idp.key("es-1").sign(&skewed))
        .expect("within leeway");
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "keys are cached, not fetched per token"
    );
}

#[test]
fn stale_misdirected_and_forged_tokens_are_refused() {
    let idp = Idp::start();
    let v = Verifier::new(&idp);
    let es = idp.key("es-1");
    let rs = idp.key("rs-1");
    let good = idp.claims("u-1", "alice@example.com", &[]);

    let expired = v.refused(
        "expired",
        &es.sign(&with(good.clone(), json!({"exp": now() - 120}))),
    );
    assert!(expired.contains("xpired"), "{expired}");
    let early = v.refused(
        "not yet valid",
        &es.sign(&with(good.clone(), json!({"nbf": now() + 300}))),
    );
    assert!(
        early.contains("mmature") || early.contains("nbf"),
        "{early}"
    );
    let issuer = v.refused(
        "wrong issuer",
        &es.sign(&with(
            good.clone(),
            json!({"iss": "https://evil.example.com"}),
        )),
    );
    assert!(issuer.contains("ssuer"), "{issuer}");
    let audience = v.refused(
        "wrong audience",
        &es.sign(&with(good.clone(), json!({"aud": "someone-else"}))),
    );
    assert!(
        audience.contains("not issued for this client"),
        "{audience}"
    );
    v.refused(
        "no exp",
        &es.sign(&with(good.clone(), json!({"exp": null}))),
    );
    v.refused(
        "no sub",
        &es.sign(&with(good.clone(), json!({"sub": null}))),
    );

    // alg none: a header saying so and no signature.
    let payload = b64(serde_json::to_string(&good).unwrap().as_bytes());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": "es-1"}),
    ] {
        let unsigned = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
        v.refused("alg none", &unsigned);
    }
    // HS256 with the public key as the HMAC secret (the classic key-confusion attack).
    for key in [&es, &rs] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let forged = jsonwebtoken::encode(
            &header,
            &good,
            &EncodingKey::from_secret(key.public_pem.as_bytes()),
        )
        .unwrap();
        let e = v.refused("HS256 with the public key", &forged);
        assert!(e.contains("not accepted"), "{e}");
    }
    // A token signed by a key the IdP never published, claiming the IdP's key id.
    let impostor = crate::common::idp::Key::es256("es-1");
    v.refused("foreign key with a known kid", &impostor.sign(&good));
    // A valid token whose payload was swapped for another user's.
    let token = es.sign(&good);
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = b64(
        serde_json::to_string(&with(good.clone(), json!({"sub": "admin"})))
            .unwrap()
            .as_bytes(),
    );
    v.refused("tampered payload", &parts.join("."));
    // Truncated in every way.
    for cut in [
        token.len() - 1,
        token.len() - 10,
        token.rfind('.').unwrap(),
        token.find('.').unwrap(),
        5,
        0,
    ] {
        v.refused("truncated", &token[..cut]);
    }
    for garbage in [
        "",
        ".",
        "..",
        "a.b.c",
        "Bearer",
        "eyJ.eyJ.",
        "\u{0}\u{1}",
        "🦀.🦀.🦀",
    ] {
        v.refused("garbage", garbage);
    }
}

#[test]
fn unknown_key_ids_refetch_the_keys_at_a_limited_rate() {
    let idp = Idp::start();
    // Rate-limited: unknown kids do not make sluice hammer the IdP.
    let limited = Verifier::new(&idp);
    limited
        .verify(&idp.token("u-1", "a@example.com", &[]))
        .unwrap();
    let made_up = crate::common::idp::Key::es256("made-up");
    for _ in 0..20 {
        limited.refused(
            "unknown kid",
            &made_up.sign(&idp.claims("u-1", "a@example.com", &[])),
        );
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "made-up key ids must not each fetch the JWKS"
    );

    // A rotation: once the rate limit allows, a token with the new kid fetches the new keys.
    let rotating = Verifier::with_min_refetch(&idp, Duration::from_millis(50));
    rotating
        .verify(&idp.token("u-1", "a@example.com", &[]))
        .unwrap();
    let new_key = idp.add_key("es-2");
    let token = new_key.sign(&idp.claims("u-2", "b@example.com", &[]));
    // Refused until the (test-sized) rate limit lets a refetch through, then accepted.
    let claims = poll(Duration::from_secs(5), || rotating.verify(&token).ok())
        .expect("a rotated key is found by refetching");
    assert_eq!(claims["sub"], "u-2");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random text and random mutations of a valid token: refused with an error, never a panic.
    #[test]
    fn malformed_tokens_never_panic(garbage in ".{0,200}", flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..4)) {
        let (_, v, token) = fixture();
        prop_assert!(v.verify(&garbage).is_err());
        let mut bytes = token.clone().into_bytes();
        for (at, byte) in flips {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        if mutated != token {
            prop_assert!(v.verify(&mutated).is_err(), "mutated token accepted: {}", mutated);
        }
    }
}

/// One provider and one valid token shared by the property cases.
fn fixture() -> (&'static Idp, &'static Verifier, String) {
    use std::sync::OnceLock;
    static SHARED: OnceLock<(Idp, Verifier, String)> = OnceLock::new();
    let (idp, v, token) = SHARED.get_or_init(|| {
        let idp = Idp::start();
        let v = Verifier::new(&idp);
        let token = idp.token("u-1", "a@example.com", &["g"]);
        v.verify(&token).expect("the fixture token is valid");
        (idp, v, token)
    });
    (idp, v, token.clone())
}
