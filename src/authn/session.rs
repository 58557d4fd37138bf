//! A browser session, held entirely in the cookie (no session store): so any sluice replica
//! reads any session and a restart signs no one out.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::Key;
use super::seal::{self, SealError};

/// What the session cookie holds, sealed with the session key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// Random id: refreshes of one session are done once, whichever request notices first.
    pub sid: String,
    /// The raw ID token: its claims are the user's, and `${pomerium.id_token}` passes it on.
    pub id_token: Option<String>,
    /// Claims from UserInfo that the ID token does not carry (kept small: no duplicates).
    pub extra_claims: Map<String, Value>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// Unix seconds at which the ID or access token expires (the earlier), if known.
    pub tokens_expire: Option<u64>,
    pub issued: u64,
    /// Unix seconds after which the session is over whatever the tokens say (`cookie_expire`).
    pub expires: u64,
}

/// The claims of a JWT's payload, without checking its signature: only for tokens sluice
/// verified itself before sealing them into a session.
pub fn unverified_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl SessionData {
    /// The user's claims: the ID token's, with UserInfo's additions.
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = self
            .id_token
            .as_deref()
            .and_then(unverified_claims)
            .unwrap_or_default();
        for (k, v) in &self.extra_claims {
            claims.insert(k.clone(), v.clone());
        }
        claims
    }

    pub fn seal(&self, key: &Key, cookie_name: &str) -> String {
        seal::seal(key, &purpose(cookie_name), self)
    }

    pub fn open(key: &Key, cookie_name: &str, text: &str) -> Result<SessionData, SealError> {
        seal::open(key, &purpose(cookie_name), text)
    }
}

/// A session sealed under one cookie name cannot be replayed under another (the route
/// cookie is not the authenticate host's).
fn purpose(cookie_name: &str) -> Vec<u8> {
    format!("session\0{cookie_name}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_come_from_the_id_token_and_userinfo() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"alice","email":"a@example.com"}"#);
        let mut extra = Map::new();
        extra.insert("groups".into(), serde_json::json!(["eng"]));
        let s = SessionData {
            sid: "s".into(),
            id_token: Some(format!("h.{payload}.sig")),
            extra_claims: extra,
            access_token: None,
            refresh_token: None,
            tokens_expire: None,
            issued: 1,
            expires: 2,
        };
        let claims = s.claims();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["groups"], serde_json::json!(["eng"]));
        let key = Key([9; 32]);
        let sealed = s.seal(&key, "_pomerium");
        assert_eq!(SessionData::open(&key, "_pomerium", &sealed), Ok(s));
        assert!(SessionData::open(&key, "_pomerium_authenticate", &sealed).is_err());
        assert_eq!(unverified_claims("not a jwt"), None);
    }
}
