//! Browser sessions as identities for ext_authz: the sealed session cookie (or a programmatic
//! `Authorization: Pomerium` token) read through the same seam as bearer tokens, refreshed with
//! the provider when its tokens are about to expire.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::oidc::{OidcClient, OidcError};
use super::session::SessionData;
use super::{SignIn, cookies, unix_now};
use crate::authz::identity::{IdentityError, IdentitySource, Session};
use crate::authz::index::Index;
use crate::authz::remembered::Remembered;
use crate::authz::request::RequestView;
use crate::authz::tokens::{IdpTokens, identity_from};
use crate::config::model::Route;

/// Tokens are refreshed this long before they expire.
const REFRESH_AHEAD_SECS: u64 = 60;
/// At most one refresh per session in this long (Pomerium: 10 s).
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// An opened cookie is trusted without opening it again for this long (never past the
/// session's end or its refresh time).
const OPENED_FOR_SECS: u64 = 300;
/// Opened cookies and refresh records kept at most; when full, the stale ones go, then all.
const MAX_CACHED: usize = 16_384;

/// Bearer tokens first (a route's `bearer_token_format`), then the browser session.
pub struct Credentials {
    pub tokens: Arc<IdpTokens>,
    pub sessions: Arc<CookieSessions>,
}

#[tonic::async_trait]
impl IdentitySource for Credentials {
    async fn identify(
        &self,
        request: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError> {
        if let Some(session) = self.tokens.identify(request, route, index).await? {
            return Ok(Some(session));
        }
        self.sessions.identify(request, index).await
    }

    fn remembered(
        &self,
        request: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Option<Result<Option<Arc<Session>>, IdentityError>> {
        match self.tokens.remembered(request, route, index)? {
            Ok(None) => self.sessions.remembered(request, index),
            known => Some(known),
        }
    }
}

/// The outcome of the last refresh of one session.
#[derive(Default)]
struct RefreshRecord {
    attempted: Option<Instant>,
    refreshed: Option<Arc<SessionData>>,
    refused: bool,
}

pub struct CookieSessions {
    oidc: Arc<OidcClient>,
    opened: Remembered<Arc<Session>>,
    refreshes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<RefreshRecord>>>>,
}

/// Where the sealed session of a request is, if anywhere.
fn presented<'a>(request: &RequestView<'a>, sign_in: &SignIn) -> Option<Cow<'a, str>> {
    if let Some(token) = request
        .header("authorization")
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("pomerium"))
        .map(|(_, t)| t.trim())
        .or_else(|| request.header("x-pomerium-authorization").map(str::trim))
        .filter(|t| !t.is_empty())
    {
        return Some(Cow::Borrowed(token));
    }
    cookies::get_chunked(request.header("cookie")?, &sign_in.cookie_name)
}

fn bounded<K, V>(map: &mut HashMap<K, V>, keep: impl Fn(&V) -> bool) {
    if map.len() >= MAX_CACHED {
        map.retain(|_, v| keep(v));
        if map.len() >= MAX_CACHED {
            map.clear();
        }
    }
}

/// The session as ext_authz sees it.
pub fn session_of(data: &SessionData) -> Result<Session, IdentityError> {
    Ok(Session {
        identity: identity_from(data.claims())?,
        access_token: data.access_token.clone(),
        id_token: data.id_token.clone(),
        set_cookies: Vec::new(),
    })
}

impl CookieSessions {
    pub fn new(oidc: Arc<OidcClient>) -> Self {
        CookieSessions {
            oidc,
            opened: Remembered::new(MAX_CACHED),
            refreshes: Mutex::default(),
        }
    }

    /// The session when known without opening a cookie: none presented, or one opened lately.
    fn remembered(
        &self,
        request: &RequestView<'_>,
        index: &Index,
    ) -> Option<Result<Option<Arc<Session>>, IdentityError>> {
        let Some(sealed) = presented(request, &index.sign_in) else {
            return Some(Ok(None));
        };
        let session = self.opened.find(&sealed, unix_now(), Arc::clone)?;
        Some(Ok(Some(session)))
    }

    async fn identify(
        &self,
        request: &RequestView<'_>,
        index: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError> {
        let sign_in = &index.sign_in;
        let Some(sealed) = presented(request, sign_in) else {
            return Ok(None);
        };
        let now = unix_now();
        if let Some(session) = self.opened.find(&sealed, now, Arc::clone) {
            return Ok(Some(session));
        }
        let data = SessionData::open(&sign_in.keys.session, &sign_in.cookie_name, &sealed)
            .map_err(|e| IdentityError::Invalid(format!("session cookie: {e}")))?;
        if now >= data.expires {
            return Err(IdentityError::Invalid("the session has expired".into()));
        }
        let refresh_at = data
            .tokens_expire
            .map(|t| t.saturating_sub(REFRESH_AHEAD_SECS));
        if refresh_at.is_some_and(|t| now >= t) {
            return self.refreshed(request, sign_in, data, now).await.map(Some);
        }
        let session = Arc::new(session_of(&data)?);
        let until = (now + OPENED_FOR_SECS)
            .min(data.expires)
            .min(refresh_at.unwrap_or(u64::MAX));
        self.opened
            .insert(&sealed, Arc::clone(&session), until, now);
        Ok(Some(session))
    }

    /// The session after a refresh with the provider: done once per session however many
    /// requests notice at the same time, and not again within `MIN_REFRESH_INTERVAL`.
    async fn refreshed(
        &self,
        request: &RequestView<'_>,
        sign_in: &SignIn,
        data: SessionData,
        now: u64,
    ) -> Result<Arc<Session>, IdentityError> {
        let record = {
            let mut refreshes = self.refreshes.lock().unwrap_or_else(|p| p.into_inner());
            bounded(&mut refreshes, |r| Arc::strong_count(r) > 1);
            Arc::clone(refreshes.entry(data.sid.clone()).or_default())
        };
        let mut record = record.lock().await;
        let recent = record
            .attempted
            .is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL);
        if !recent {
            record.attempted = Some(Instant::now());
            match self.refresh(sign_in, &data, now).await {
                Ok(new) => {
                    record.refreshed = Some(Arc::new(new));
                    record.refused = false;
                }
                Err(OidcError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cannot refresh a session now; keeping it until its tokens expire");
                }
                Err(e) => {
                    tracing::info!(error = %e, "the identity provider refused to refresh a session; it has ended");
                    record.refused = true;
                    record.refreshed = None;
                }
            }
        }
        if record.refused {
            return Err(IdentityError::Invalid(
                "the identity provider refused to refresh the session".into(),
            ));
        }
        let current = match &record.refreshed {
            Some(new) => Arc::clone(new),
            None if data.tokens_expire.is_some_and(|t| now >= t) => {
                return Err(IdentityError::Invalid(
                    "the session's tokens have expired and cannot be refreshed".into(),
                ));
            }
            None => Arc::new(data),
        };
        let mut session = session_of(&current)?;
        if record.refreshed.is_some() {
            let sealed = current.seal(&sign_in.keys.session, &sign_in.cookie_name);
            let lifetime = Duration::from_secs(current.expires.saturating_sub(now));
            session.set_cookies = sign_in.route_cookie.set_chunked(
                &sign_in.cookie_name,
                &sealed,
                lifetime,
                request.header("cookie"),
            );
        }
        Ok(Arc::new(session))
    }

    async fn refresh(
        &self,
        sign_in: &SignIn,
        data: &SessionData,
        now: u64,
    ) -> Result<SessionData, OidcError> {
        let (Some(idp), Some(refresh_token)) = (&sign_in.idp, &data.refresh_token) else {
            return Err(OidcError::Refused(
                "the session has no refresh token".into(),
            ));
        };
        let tokens = self.oidc.refresh(idp, refresh_token).await?;
        let mut new = data.clone();
        if let Some(id_token) = &tokens.id_token {
            self.oidc.verify_id_token(idp, id_token, None).await?;
            new.id_token = Some(id_token.clone());
        }
        if tokens.access_token.is_some() {
            new.access_token = tokens.access_token.clone();
        }
        if tokens.refresh_token.is_some() {
            new.refresh_token = tokens.refresh_token.clone();
        }
        new.tokens_expire =
            tokens_expire(sign_in, tokens.id_token.as_deref(), tokens.expires_in, now);
        Ok(new)
    }
}

/// When a session's tokens need refreshing: the access token's expiry, and the ID token's
/// (`refresh_session_at_id_token_expiration`), whichever is first.
pub fn tokens_expire(
    sign_in: &SignIn,
    id_token: Option<&str>,
    expires_in: Option<u64>,
    now: u64,
) -> Option<u64> {
    let access = expires_in.map(|s| now + s);
    let id = id_token
        .filter(|_| sign_in.refresh_at_id_token_expiry)
        .and_then(super::session::unverified_claims)
        .and_then(|c| c.get("exp").and_then(serde_json::Value::as_u64));
    match (access, id) {
        (Some(a), Some(i)) => Some(a.min(i)),
        (a, i) => a.or(i),
    }
}
