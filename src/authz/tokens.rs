//! Bearer tokens from the identity provider (`bearer_token_format: idp_identity_token` or
//! `idp_access_token`): verified against the IdP's keys, then read as an identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::identity::{IdentityError, IdentitySource, Session};
use super::index::Index;
use super::jwks::Provider;
use super::remembered::Remembered;
use super::request::RequestView;
use crate::config::model::{BearerTokenFormat, IdentityProvider, Route};
use crate::policy::eval::Identity;

/// Clock difference tolerated on `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(30);

/// Only asymmetric algorithms: an IdP's tokens are never signed with a shared secret, and
/// accepting HS256 would let anyone sign with the published public key.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How long a verified token is trusted without checking its signature again (never past its
/// `exp`). Signature checks cost ~100 µs; a client sends the same token with every request.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// Verified tokens kept at most; when full, expired ones go, then all.
const MAX_VERIFIED: usize = 16_384;

pub struct IdpTokens {
    http: reqwest::Client,
    providers: Mutex<HashMap<String, Arc<Provider>>>,
    verified: Remembered<Verified>,
}

/// A token that passed verification, and for whom.
struct Verified {
    scope: Scope,
    session: Arc<Session>,
}

/// What a token was verified for: an issuer, a client and a bearer format. Another of any of
/// the three (a config edit) means verifying again.
struct Scope {
    issuer: String,
    client_id: String,
    format: BearerTokenFormat,
}

impl Scope {
    /// Compared field by field: building a `Scope` per request would cost two allocations.
    fn is(&self, idp: &IdentityProvider, format: BearerTokenFormat) -> bool {
        self.format == format && self.issuer == idp.url && self.client_id == idp.client_id
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer `IdpTokens` gives without waiting, or the token it must verify first and the
/// provider whose keys verify it.
enum Lookup<'a, 'i> {
    Known(Result<Option<Arc<Session>>, IdentityError>),
    Unverified {
        token: &'a str,
        idp: &'i IdentityProvider,
    },
}

impl IdpTokens {
    pub fn new(http: reqwest::Client) -> Self {
        IdpTokens {
            http,
            providers: Mutex::default(),
            verified: Remembered::new(MAX_VERIFIED),
        }
    }

    fn lookup<'a, 'i>(
        &self,
        request: &RequestView<'a>,
        route: &Route,
        index: &'i Index,
    ) -> Lookup<'a, 'i> {
        let format = route.bearer_token_format;
        if !matches!(
            format,
            BearerTokenFormat::IdpIdentityToken | BearerTokenFormat::IdpAccessToken
        ) {
            return Lookup::Known(Ok(None));
        }
        let Some(token) = bearer(request) else {
            return Lookup::Known(Ok(None));
        };
        let Some(idp) = &index.model.global.idp else {
            return Lookup::Known(Err(IdentityError::Invalid(
                "no identity provider is configured".into(),
            )));
        };
        let known = self.verified.find(token, unix_now(), |v| {
            v.scope.is(idp, format).then(|| Arc::clone(&v.session))
        });
        match known.flatten() {
            Some(session) => Lookup::Known(Ok(Some(session))),
            None => Lookup::Unverified { token, idp },
        }
    }

    fn remember(&self, token: &str, scope: Scope, session: &Arc<Session>) {
        let now = unix_now();
        let exp = session
            .identity
            .claims
            .get("exp")
            .and_then(Value::as_u64)
            .unwrap_or(now);
        let until = exp.min(now + VERIFIED_FOR.as_secs());
        let session = Arc::clone(session);
        self.verified
            .insert(token, Verified { scope, session }, until, now);
    }

    pub fn provider(&self, url: &str) -> Arc<Provider> {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            providers
                .entry(url.to_string())
                .or_insert_with(|| Arc::new(Provider::new(url, self.http.clone()))),
        )
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer<'a>(request: &RequestView<'a>) -> Option<&'a str> {
    let value = request.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[tonic::async_trait]
impl IdentitySource for IdpTokens {
    fn remembered(
        &self,
        request: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Option<Result<Option<Arc<Session>>, IdentityError>> {
        match self.lookup(request, route, index) {
            Lookup::Known(answer) => Some(answer),
            Lookup::Unverified { .. } => None,
        }
    }

    async fn identify(
        &self,
        request: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError> {
        let (token, idp) = match self.lookup(request, route, index) {
            Lookup::Known(answer) => return answer,
            Lookup::Unverified { token, idp } => (token, idp),
        };
        let format = route.bearer_token_format;
        let provider = self.provider(&idp.url);
        let claims = verify(token, &provider, &idp.client_id).await?;
        let identity = identity_from(claims)?;
        let (access_token, id_token) = match format {
            BearerTokenFormat::IdpAccessToken => (Some(token.to_string()), None),
            _ => (None, Some(token.to_string())),
        };
        let session = Arc::new(Session {
            identity,
            access_token,
            id_token,
            set_cookies: Vec::new(),
        });
        let scope = Scope {
            issuer: idp.url.clone(),
            client_id: idp.client_id.clone(),
            format,
        };
        self.remember(token, scope, &session);
        Ok(Some(session))
    }
}

/// Verifies signature, issuer, audience and lifetime. Errors say what was wrong for logs;
/// they never reach the client.
pub async fn verify(
    token: &str,
    provider: &Provider,
    client_id: &str,
) -> Result<Map<String, Value>, IdentityError> {
    let invalid = |e: String| IdentityError::Invalid(e);
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("not a signed JWT: {e}")))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(invalid(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let (issuer, jwk) = provider.key(header.kid.as_deref()).await.map_err(invalid)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(format!("unusable key: {e}")))?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.set_issuer(&[issuer.as_str(), issuer.trim_end_matches('/')]);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| invalid(format!("{e}")))?;
    let claims = data.claims;
    // The client id must be an audience (ID tokens), or the authorized party (access tokens).
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    } || claims.get("azp").and_then(Value::as_str) == Some(client_id);
    if !audience_ok {
        return Err(invalid("the token was not issued for this client".into()));
    }
    Ok(claims)
}

pub fn identity_from(claims: Map<String, Value>) -> Result<Identity, IdentityError> {
    let user_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let Some(user_id) = user_id else {
        return Err(IdentityError::Invalid("the token has no subject".into()));
    };
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let groups = match claims.get("groups") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        user_id,
        email,
        groups,
        claims,
    })
}
