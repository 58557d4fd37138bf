//! The identity assertion (`x-pomerium-jwt-assertion`): its claims as Pomerium writes them,
//! signed by the generation's key, and reused for a short while for the same caller and host
//! so that a busy client does not cost an ES256 signature per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::identity::Session;
use super::request::RequestView;
use super::signer::Signer;

/// How long an assertion is valid.
const LIFETIME_SECS: u64 = 300;
/// A cached assertion is reissued once it is this old, so every one an upstream sees still has
/// at least `LIFETIME_SECS - REISSUE_AFTER_SECS` to live.
const REISSUE_AFTER_SECS: u64 = 60;
/// Cached assertions kept at most; when full, stale ones go, then all.
const MAX_CACHED: usize = 16_384;

/// Signs assertions for one config generation.
pub struct Assertions {
    pub signer: Arc<Signer>,
    /// Identity claims (serialized) → (assertion, issued at).
    issued: Mutex<HashMap<String, (Arc<str>, u64)>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The claims that say who and for where: everything but `iat`, `exp` and `jti`.
pub fn identity_claims(request: &RequestView<'_>, session: Option<&Session>) -> Map<String, Value> {
    let host = request.hostname();
    let identity = session.map(|s| &s.identity);
    let user = identity.map(|i| i.user_id.as_str()).unwrap_or("");
    let name = identity
        .and_then(|i| i.claims.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let claims = json!({
        "iss": host,
        "aud": host,
        "sub": user,
        "user": user,
        "email": identity.and_then(|i| i.email.as_deref()).unwrap_or(""),
        "groups": identity.map(|i| i.groups.clone()).unwrap_or_default(),
        "name": name,
    });
    match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Assertions {
    pub fn new(signer: Arc<Signer>) -> Self {
        Assertions {
            signer,
            issued: Mutex::default(),
        }
    }

    /// A signed assertion for these identity claims: a recent one if there is one, else new.
    pub fn assertion(&self, identity: &Map<String, Value>) -> Arc<str> {
        // The claims' JSON text is the key (written from the map as it is, not a copy of it).
        let key = serde_json::to_string(identity).unwrap_or_default();
        let now = unix_now();
        {
            let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((jwt, at)) = issued.get(&key)
                && now.saturating_sub(*at) < REISSUE_AFTER_SECS
            {
                return Arc::clone(jwt);
            }
        }
        let mut claims = identity.clone();
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + LIFETIME_SECS).into());
        claims.insert("jti".into(), random_uuid().into());
        let jwt: Arc<str> = self.signer.sign(&claims).into();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if issued.len() >= MAX_CACHED {
            issued.retain(|_, (_, at)| now.saturating_sub(*at) < REISSUE_AFTER_SECS);
            if issued.len() >= MAX_CACHED {
                issued.clear();
            }
        }
        issued.insert(key, (Arc::clone(&jwt), now));
        jwt
    }
}

/// A random version 4 UUID, for `jti`.
fn random_uuid() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_caller_reuses_an_assertion_and_another_gets_its_own() {
        let assertions = Assertions::new(Arc::new(Signer::generate()));
        let alice = json!({"sub": "alice", "aud": "a.example.com"});
        let bob = json!({"sub": "bob", "aud": "a.example.com"});
        let (Value::Object(alice), Value::Object(bob)) = (alice, bob) else {
            unreachable!()
        };
        let first = assertions.assertion(&alice);
        assert_eq!(first, assertions.assertion(&alice));
        assert_ne!(first, assertions.assertion(&bob));
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
