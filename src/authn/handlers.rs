//! The sign-in endpoints Envoy routes to sluice: `/.pomerium/sign_in`, `/oauth2/callback`,
//! `/.pomerium/callback/`, `/.pomerium/sign_out`, `/.pomerium/signed_out`, the user page
//! `/.pomerium/`, `/.pomerium/user`, `/.pomerium/api/v1/login`, `/robots.txt` and `/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::keys::{Key, random_token};
use super::oidc::{OidcClient, OidcError};
use super::session::SessionData;
use super::{SignIn, cookies, identity, pages, seal, signed_url, unix_now};
use crate::authz::IndexSource;

/// How long the OAuth round trip may take (Pomerium: 5 minutes, plus clock skew).
const STATE_VALID_SECS: u64 = 360;
/// How long the session handoff to a route host is valid.
const HANDOFF_VALID_SECS: u64 = 60;
/// The CSRF cookie outlives any sign-in that could still complete.
const CSRF_LIFETIME: Duration = Duration::from_secs(900);
/// Largest form body `/oauth2/callback` reads (a `form_post` answer is small).
const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Endpoints {
    pub source: Arc<dyn IndexSource>,
    pub oidc: Arc<OidcClient>,
}

pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/.pomerium/sign_in", get(sign_in))
        .route("/oauth2/callback", get(callback).post(callback))
        .route("/.pomerium/callback/", get(route_callback))
        .route("/.pomerium/callback", get(route_callback))
        .route("/.pomerium/sign_out", get(sign_out).post(sign_out))
        .route("/.pomerium/signed_out", get(signed_out))
        .route("/.pomerium/", get(user_page))
        .route("/.pomerium", get(user_page))
        .route("/.pomerium/user", get(user_json))
        .route("/.pomerium/api/v1/login", get(programmatic_login))
        .route("/robots.txt", get(robots))
        .route("/", get(root))
        .with_state(endpoints)
}

/// What a handler knows of the browser's request, as Envoy forwarded it.
struct Incoming {
    /// `scheme://host[:port]` as the browser reached it.
    origin: String,
    /// Lowercase, without the port.
    hostname: String,
    path: String,
    query: String,
    headers: HeaderMap,
}

impl Incoming {
    fn new(request: &Request) -> Option<Incoming> {
        let headers = request.headers().clone();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()))?;
        let authority: axum::http::uri::Authority = host.parse().ok()?;
        let scheme = match headers
            .get("x-forwarded-proto")
            .and_then(|p| p.to_str().ok())
            .and_then(|p| p.split(',').next())
            .map(str::trim)
        {
            Some("http") => "http",
            _ => "https",
        };
        Some(Incoming {
            origin: format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()),
            hostname: authority.host().to_ascii_lowercase(),
            path: request.uri().path().to_string(),
            query: request.uri().query().unwrap_or("").to_string(),
            headers,
        })
    }

    fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn cookie_header(&self) -> Option<&str> {
        self.headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
    }

    /// An unexpired session in cookie `name`, when there is one.
    fn session(&self, s: &SignIn, name: &str) -> Option<SessionData> {
        let sealed = cookies::get_chunked(self.cookie_header()?, name)?;
        SessionData::open(&s.keys.session, name, &sealed)
            .ok()
            .filter(|d| d.expires > unix_now())
    }
}

fn with_cookies(mut response: Response, set_cookies: &[String]) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for line in set_cookies {
        if let Ok(v) = HeaderValue::from_str(line) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response
}

fn redirect(location: &str, set_cookies: &[String]) -> Response {
    let response = match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => return failure(StatusCode::BAD_REQUEST, "the return address is not valid"),
    };
    with_cookies(response, set_cookies)
}

fn html(status: StatusCode, body: String, set_cookies: &[String]) -> Response {
    with_cookies(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        set_cookies,
    )
}

fn failure(status: StatusCode, reason: &str) -> Response {
    html(status, pages::error(status.as_u16(), reason), &[])
}

fn bad_host() -> Response {
    failure(StatusCode::BAD_REQUEST, "the request names no valid host")
}

fn no_idp() -> Response {
    failure(
        StatusCode::NOT_IMPLEMENTED,
        "sign-in is not configured: set idp_provider_url and idp_client_id",
    )
}

fn provider_failure(e: &OidcError) -> Response {
    tracing::warn!(error = %e, "sign-in failed at the identity provider");
    match e {
        OidcError::Unavailable(_) => failure(
            StatusCode::BAD_GATEWAY,
            "the identity provider is unavailable",
        ),
        OidcError::Refused(_) | OidcError::Invalid(_) => failure(
            StatusCode::BAD_REQUEST,
            "the identity provider did not confirm the sign-in",
        ),
    }
}

/// The OAuth `state`: what the browser comes back with from the provider.
#[derive(Serialize, Deserialize)]
struct OAuthState {
    csrf: String,
    issued: u64,
    redirect: String,
    /// A URL on the route host that receives the session.
    callback: String,
    hosts: Vec<String>,
    programmatic: bool,
}

/// The CSRF cookie: ties the `state` to this browser, and keeps the PKCE verifier and nonce.
#[derive(Serialize, Deserialize)]
struct Csrf {
    csrf: String,
    nonce: String,
    verifier: String,
}

/// The session on its way from the authenticate host to a route host (one minute, one host).
#[derive(Serialize, Deserialize)]
struct Handoff {
    session: SessionData,
    expires: u64,
    redirect: String,
    hosts: Vec<String>,
    programmatic: bool,
}

const STATE_PURPOSE: &[u8] = b"oauth state";
const CSRF_PURPOSE: &[u8] = b"csrf cookie";

fn handoff_purpose(hostname: &str) -> Vec<u8> {
    format!("handoff\0{hostname}").into_bytes()
}

/// Where the provider sends the browser back (registered with the provider).
fn redirect_uri(s: &SignIn, origin: &str) -> String {
    format!("{}/oauth2/callback", s.authenticate_origin(origin))
}

/// Sends the browser with its session to the callback of `target`'s host (then on through
/// `hosts`, then to `redirect`).
fn hand_off(s: &SignIn, handoff: Handoff, receiver: &url::Url, set_cookies: &[String]) -> Response {
    let hostname = receiver.host_str().unwrap_or_default().to_ascii_lowercase();
    let sealed = seal::seal(&s.keys.handoff, &handoff_purpose(&hostname), &handoff);
    let mut url = receiver.clone();
    url.set_path("/.pomerium/callback/");
    url.set_fragment(None);
    url.query_pairs_mut()
        .clear()
        .append_pair("pomerium_session_encrypted", &sealed);
    redirect(url.as_str(), set_cookies)
}

/// The handoff in `text`, when it was sealed for `hostname` and its minute has not passed.
fn open_handoff(key: &Key, hostname: &str, text: &str, now: u64) -> Option<Handoff> {
    seal::open::<Handoff>(key, &handoff_purpose(hostname), text)
        .ok()
        .filter(|h| h.expires >= now)
}

impl Handoff {
    fn new(session: SessionData, redirect: String, hosts: Vec<String>, programmatic: bool) -> Self {
        Handoff {
            session,
            expires: unix_now() + HANDOFF_VALID_SECS,
            redirect,
            hosts,
            programmatic,
        }
    }
}

async fn sign_in(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    let Some(idp) = &s.idp else {
        return no_idp();
    };
    if let Err(why) = signed_url::verify(
        &s.keys.url,
        &req.hostname,
        &req.path,
        &req.query,
        unix_now(),
    ) {
        tracing::debug!(error = %why, "sign-in URL refused");
        return failure(
            StatusCode::BAD_REQUEST,
            "the sign-in link is not valid or has expired",
        );
    }
    let programmatic = req.param("pomerium_programmatic").as_deref() == Some("true");
    let Some(target) = req.param("pomerium_redirect_uri") else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the sign-in link names no page to return to",
        );
    };
    let checked = if programmatic {
        s.targets.check_programmatic(&target)
    } else {
        s.targets.check(&target)
    };
    let Ok(target) = checked else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the page to return to is not one of sluice's routes",
        );
    };
    let hosts: Vec<String> = req
        .param("pomerium_additional_hosts")
        .map(|h| {
            h.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if hosts.iter().any(|h| !s.targets.is_known_host(h)) {
        return failure(
            StatusCode::BAD_REQUEST,
            "an additional host is not one of sluice's routes",
        );
    }
    if req
        .headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
    {
        return failure(
            StatusCode::UNAUTHORIZED,
            "sign-in needs a browser navigation",
        );
    }
    // The route host that receives the session: the page's own, or for a programmatic
    // login (whose page is the client's) the route host it started on.
    let callback = match req.param("pomerium_callback_uri") {
        Some(c) => match s.targets.check(&c) {
            Ok(url) => url,
            Err(_) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "the callback is not one of sluice's routes",
                );
            }
        },
        None => target.clone(),
    };
    // Signed in here already: straight on to the route host (single sign-on).
    if let Some(session) = req.session(s, &s.auth_cookie_name) {
        let handoff = Handoff::new(session, target.to_string(), hosts, programmatic);
        return hand_off(s, handoff, &callback, &[]);
    }
    let discovery = match e.oidc.discovery(idp).await {
        Ok(d) => d,
        Err(err) => return provider_failure(&err),
    };
    let csrf = Csrf {
        csrf: random_token(32),
        nonce: random_token(24),
        verifier: random_token(48),
    };
    let state = seal::seal(
        &s.keys.state,
        STATE_PURPOSE,
        &OAuthState {
            csrf: csrf.csrf.clone(),
            issued: unix_now(),
            redirect: target.to_string(),
            callback: callback.to_string(),
            hosts,
            programmatic,
        },
    );
    let url = match OidcClient::authorization_url(
        &discovery,
        idp,
        &redirect_uri(s, &req.origin),
        &state,
        &csrf.nonce,
        &csrf.verifier,
    ) {
        Ok(u) => u,
        Err(err) => return provider_failure(&err),
    };
    let cookie = s.csrf_cookie.set(
        &s.csrf_cookie_name,
        &seal::seal(&s.keys.state, CSRF_PURPOSE, &csrf),
        CSRF_LIFETIME,
    );
    redirect(url.as_str(), &[cookie])
}

async fn callback(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let mut params: HashMap<String, String> = url::form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    if request.method() == axum::http::Method::POST {
        let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await else {
            return failure(StatusCode::BAD_REQUEST, "the callback body is too large");
        };
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let index = e.source.index();
    let s = &index.sign_in;
    let Some(idp) = &s.idp else {
        return no_idp();
    };
    if let Some(error) = params.get("error") {
        let status = match error.as_str() {
            "access_denied" | "unauthorized_client" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        return failure(status, &format!("the identity provider answered `{error}`"));
    }
    let (Some(code), Some(state)) = (params.get("code"), params.get("state")) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the callback carries no code or state",
        );
    };
    let Ok(state) = seal::open::<OAuthState>(&s.keys.state, STATE_PURPOSE, state) else {
        return failure(StatusCode::BAD_REQUEST, "the sign-in state is not valid");
    };
    let csrf = req
        .cookie_header()
        .and_then(|h| cookies::get(h, &s.csrf_cookie_name))
        .and_then(|c| seal::open::<Csrf>(&s.keys.state, CSRF_PURPOSE, c).ok());
    let Some(csrf) = csrf.filter(|c| c.csrf == state.csrf) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the sign-in did not start in this browser (CSRF cookie missing or different)",
        );
    };
    let now = unix_now();
    if now > state.issued + STATE_VALID_SECS || state.issued > now + 60 {
        return failure(
            StatusCode::BAD_REQUEST,
            "the sign-in took too long; please try again",
        );
    }
    let Ok(target) = s.targets.check(&state.redirect).or_else(|_| {
        if state.programmatic {
            s.targets.check_programmatic(&state.redirect)
        } else {
            Err(super::redirect::RedirectError::ForeignHost)
        }
    }) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the page to return to is not one of sluice's routes",
        );
    };
    let tokens = match e
        .oidc
        .exchange_code(idp, code, &redirect_uri(s, &req.origin), &csrf.verifier)
        .await
    {
        Ok(t) => t,
        Err(err) => return provider_failure(&err),
    };
    let Some(id_token) = tokens.id_token.clone() else {
        return provider_failure(&OidcError::Invalid(
            "the token answer has no ID token".into(),
        ));
    };
    let claims = match e
        .oidc
        .verify_id_token(idp, &id_token, Some(&csrf.nonce))
        .await
    {
        Ok(c) => c,
        Err(err) => return provider_failure(&err),
    };
    let mut extra_claims = serde_json::Map::new();
    if let (Some(access), Ok(discovery)) = (&tokens.access_token, e.oidc.discovery(idp).await) {
        match e.oidc.userinfo(&discovery, access).await {
            Ok(Some(info)) if info.get("sub") == claims.get("sub") => {
                extra_claims = info
                    .into_iter()
                    .filter(|(k, _)| !claims.contains_key(k))
                    .collect();
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "UserInfo failed; the ID token's claims are used alone")
            }
        }
    }
    let session = SessionData {
        sid: random_token(16),
        tokens_expire: identity::tokens_expire(s, Some(&id_token), tokens.expires_in, now),
        id_token: Some(id_token),
        extra_claims,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        issued: now,
        expires: now + s.cookie_expire.as_secs(),
    };
    let mut set = vec![s.csrf_cookie.clear(&s.csrf_cookie_name)];
    set.extend(s.auth_cookie.set_chunked(
        &s.auth_cookie_name,
        &session.seal(&s.keys.session, &s.auth_cookie_name),
        s.cookie_expire,
        req.cookie_header(),
    ));
    let Ok(callback) = s.targets.check(&state.callback) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the callback is not one of sluice's routes",
        );
    };
    tracing::info!(user = %claims.get("sub").and_then(|v| v.as_str()).unwrap_or(""), "signed in");
    let handoff = Handoff::new(session, target.to_string(), state.hosts, state.programmatic);
    hand_off(s, handoff, &callback, &set)
}

async fn route_callback(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    let handoff = req
        .param("pomerium_session_encrypted")
        .and_then(|h| open_handoff(&s.keys.handoff, &req.hostname, &h, unix_now()));
    let Some(mut handoff) = handoff else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the sign-in handoff is not valid here or has expired",
        );
    };
    let sealed = handoff.session.seal(&s.keys.session, &s.cookie_name);
    if handoff.programmatic {
        let Ok(mut url) = url::Url::parse(&handoff.redirect) else {
            return failure(StatusCode::BAD_REQUEST, "bad redirect target");
        };
        url.query_pairs_mut().append_pair("pomerium_jwt", &sealed);
        return redirect(url.as_str(), &[]);
    }
    let lifetime = Duration::from_secs(handoff.session.expires.saturating_sub(unix_now()));
    let set = s
        .route_cookie
        .set_chunked(&s.cookie_name, &sealed, lifetime, req.cookie_header());
    if !handoff.hosts.is_empty() {
        let next = handoff.hosts.remove(0);
        // The next host is reached with the scheme and port this one was.
        let Ok(mut receiver) = url::Url::parse(&req.origin) else {
            return bad_host();
        };
        if receiver.set_host(Some(&next)).is_err() {
            return failure(StatusCode::BAD_REQUEST, "an additional host is not valid");
        }
        let onward = Handoff::new(handoff.session, handoff.redirect, handoff.hosts, false);
        return hand_off(s, onward, &receiver, &set);
    }
    match s.targets.check(&handoff.redirect) {
        Ok(target) => redirect(target.as_str(), &set),
        Err(_) => failure(
            StatusCode::BAD_REQUEST,
            "the page to return to is not one of sluice's routes",
        ),
    }
}

async fn sign_out(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    let target = req
        .param("pomerium_redirect_uri")
        .filter(|t| s.allow_any_sign_out_redirect || s.targets.check(t).is_ok());
    if signed_url::verify(
        &s.keys.url,
        &req.hostname,
        &req.path,
        &req.query,
        unix_now(),
    )
    .is_err()
    {
        let url = s.sign_out_url(&req.origin, target.as_deref());
        return html(StatusCode::OK, pages::confirm_sign_out(&url), &[]);
    }
    let cookie_header = req.cookie_header();
    let mut set = s.route_cookie.clear_chunked(&s.cookie_name, cookie_header);
    let id_token = req
        .session(s, &s.auth_cookie_name)
        .or_else(|| req.session(s, &s.cookie_name))
        .and_then(|d| d.id_token);
    if s.is_authenticate_host(&req.hostname) {
        set.extend(
            s.auth_cookie
                .clear_chunked(&s.auth_cookie_name, cookie_header),
        );
    } else {
        let auth_origin = s.authenticate_origin(&req.origin);
        return redirect(&s.sign_out_url(&auth_origin, target.as_deref()), &set);
    }
    let finally = target
        .or_else(|| s.signout_redirect_url.clone())
        .unwrap_or_else(|| format!("{}/.pomerium/signed_out", req.origin));
    tracing::info!("signed out");
    let end_session = match &s.idp {
        Some(idp) => e
            .oidc
            .discovery(idp)
            .await
            .ok()
            .and_then(|d| d.end_session_endpoint.clone())
            .map(|u| (u, idp.client_id.clone())),
        None => None,
    };
    match end_session.and_then(|(u, client)| url::Url::parse(&u).ok().map(|u| (u, client))) {
        Some((mut url, client_id)) => {
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("client_id", &client_id);
                q.append_pair("post_logout_redirect_uri", &finally);
                if let Some(hint) = &id_token {
                    q.append_pair("id_token_hint", hint);
                }
            }
            redirect(url.as_str(), &set)
        }
        None => redirect(&finally, &set),
    }
}

async fn signed_out() -> Response {
    html(StatusCode::OK, pages::signed_out(), &[])
}

/// The session on this host: the route cookie, else (on the authenticate host) its own.
fn current_session(req: &Incoming, s: &SignIn) -> Option<SessionData> {
    req.session(s, &s.cookie_name).or_else(|| {
        s.is_authenticate_host(&req.hostname)
            .then(|| req.session(s, &s.auth_cookie_name))
            .flatten()
    })
}

async fn user_page(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    match current_session(&req, s) {
        Some(session) => html(
            StatusCode::OK,
            pages::user(&session.claims(), &s.sign_out_url(&req.origin, None)),
            &[],
        ),
        None if s.targets.is_known_host(&req.hostname) => redirect(
            &s.sign_in_url(
                &req.origin,
                &format!("{}/.pomerium/", req.origin),
                &[],
                false,
            ),
            &[],
        ),
        None => failure(StatusCode::NOT_FOUND, "no route for this host"),
    }
}

async fn user_json(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    let Some(session) = current_session(&req, s) else {
        return with_cookies(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "not signed in"})),
            )
                .into_response(),
            &[],
        );
    };
    let claims = session.claims();
    let get = |k: &str| claims.get(k).cloned().unwrap_or(serde_json::Value::Null);
    with_cookies(
        axum::Json(serde_json::json!({
            "user": get("sub"),
            "email": get("email"),
            "name": get("name"),
            "groups": get("groups"),
            "claims": claims,
        }))
        .into_response(),
        &[],
    )
}

async fn programmatic_login(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    let index = e.source.index();
    let s = &index.sign_in;
    let Some(target) = req.param("pomerium_redirect_uri") else {
        return failure(StatusCode::BAD_REQUEST, "pomerium_redirect_uri is required");
    };
    if s.targets.check_programmatic(&target).is_err() {
        return failure(
            StatusCode::BAD_REQUEST,
            "the redirect target is not allowed",
        );
    }
    let url = s.sign_in_url(&req.origin, &target, &[], true);
    with_cookies(
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], url).into_response(),
        &[],
    )
}

async fn robots() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /\n",
    )
        .into_response()
}

async fn root(State(e): State<Endpoints>, request: Request) -> Response {
    let Some(req) = Incoming::new(&request) else {
        return bad_host();
    };
    if e.source.index().sign_in.authenticate.is_some()
        && e.source.index().sign_in.is_authenticate_host(&req.hostname)
    {
        return redirect("/.pomerium/", &[]);
    }
    (StatusCode::NOT_FOUND, Body::from("not found\n")).into_response()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const STATE_KEY: Key = Key([7; 32]);
    const HANDOFF_KEY: Key = Key([9; 32]);

    fn session() -> SessionData {
        SessionData {
            sid: "sid".into(),
            id_token: Some("h.eyJzdWIiOiJhbGljZSJ9.s".into()),
            extra_claims: Default::default(),
            access_token: Some("at".into()),
            refresh_token: Some("rt".into()),
            tokens_expire: Some(2_000_000_000),
            issued: 1,
            expires: 2_000_000_000,
        }
    }

    fn sealed_handoff() -> String {
        let handoff = Handoff::new(session(), "https://app.example.com/".into(), vec![], false);
        seal::seal(&HANDOFF_KEY, &handoff_purpose("app.example.com"), &handoff)
    }

    fn sealed_state() -> String {
        let state = OAuthState {
            csrf: "c".into(),
            issued: 1,
            redirect: "https://app.example.com/".into(),
            callback: "https://app.example.com/.pomerium/callback/".into(),
            hosts: vec!["b.example.com".into()],
            programmatic: false,
        };
        seal::seal(&STATE_KEY, STATE_PURPOSE, &state)
    }

    /// `text` with one byte replaced by another base64url character.
    fn mutate(text: &str, at: usize, with: u8) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = text.as_bytes().to_vec();
        let i = at % bytes.len();
        let mut c = ALPHABET[with as usize % ALPHABET.len()];
        if c == bytes[i] {
            c = if c == b'A' { b'B' } else { b'A' };
        }
        bytes[i] = c;
        String::from_utf8(bytes).expect("ascii")
    }

    #[test]
    fn the_decoders_open_what_was_sealed_for_them_only() {
        let handoff = sealed_handoff();
        assert!(
            seal::open::<Handoff>(&HANDOFF_KEY, &handoff_purpose("app.example.com"), &handoff)
                .is_ok()
        );
        // Another host, another key, another kind of sealed value: all refused.
        assert!(
            seal::open::<Handoff>(&HANDOFF_KEY, &handoff_purpose("b.example.com"), &handoff)
                .is_err()
        );
        assert!(
            seal::open::<Handoff>(&STATE_KEY, &handoff_purpose("app.example.com"), &handoff)
                .is_err()
        );
        let state = sealed_state();
        assert!(seal::open::<OAuthState>(&STATE_KEY, STATE_PURPOSE, &state).is_ok());
        assert!(seal::open::<Csrf>(&STATE_KEY, CSRF_PURPOSE, &state).is_err());
        assert!(seal::open::<Csrf>(&STATE_KEY, STATE_PURPOSE, &state).is_err());
    }

    #[test]
    fn a_handoff_opens_on_its_host_within_its_minute_only() {
        let sealed = sealed_handoff();
        let now = unix_now();
        assert!(open_handoff(&HANDOFF_KEY, "app.example.com", &sealed, now).is_some());
        assert!(open_handoff(&HANDOFF_KEY, "b.example.com", &sealed, now).is_none());
        assert!(
            open_handoff(
                &HANDOFF_KEY,
                "app.example.com",
                &sealed,
                now + HANDOFF_VALID_SECS + 1
            )
            .is_none(),
            "a handoff past its minute"
        );
        const { assert!(HANDOFF_VALID_SECS <= 60) };
    }

    proptest! {
        #[test]
        fn random_bytes_are_no_state_handoff_or_session(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(seal::open::<OAuthState>(&STATE_KEY, STATE_PURPOSE, &text).is_err());
            prop_assert!(seal::open::<Csrf>(&STATE_KEY, CSRF_PURPOSE, &text).is_err());
            prop_assert!(seal::open::<Handoff>(&HANDOFF_KEY, &handoff_purpose("app.example.com"), &text).is_err());
            prop_assert!(SessionData::open(&STATE_KEY, "_pomerium", &text).is_err());
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &bytes);
            prop_assert!(seal::open::<Handoff>(&HANDOFF_KEY, &handoff_purpose("app.example.com"), &b64).is_err());
            prop_assert!(seal::open::<OAuthState>(&STATE_KEY, STATE_PURPOSE, &b64).is_err());
        }

        #[test]
        fn any_changed_character_breaks_a_state_or_handoff(at in any::<usize>(), with in any::<u8>()) {
            let state = mutate(&sealed_state(), at, with);
            prop_assert!(seal::open::<OAuthState>(&STATE_KEY, STATE_PURPOSE, &state).is_err());
            let handoff = mutate(&sealed_handoff(), at, with);
            prop_assert!(seal::open::<Handoff>(&HANDOFF_KEY, &handoff_purpose("app.example.com"), &handoff).is_err());
        }
    }
}
