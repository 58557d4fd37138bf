//! Browser sign-in, as Pomerium does it without a session store: signed sign-in URLs, the
//! OIDC authorization code flow with PKCE, sealed session cookies, the handoff to route
//! hosts, refresh and sign-out.

pub mod cookies;
pub mod handlers;
pub mod identity;
pub mod keys;
pub mod oidc;
pub mod pages;
pub mod redirect;
pub mod seal;
pub mod session;
pub mod signed_url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Model;
use crate::config::model::{CookieSettings, IdentityProvider, SameSite};

pub use keys::Keys;
pub use redirect::Targets;

/// Everything sign-in needs from one config generation, built once with it.
#[derive(Debug)]
pub struct SignIn {
    pub keys: Keys,
    pub targets: Targets,
    pub idp: Option<IdentityProvider>,
    /// `authenticate_service_url`; `None`: each route host signs its users in itself.
    pub authenticate: Option<url::Url>,
    /// The route hosts' session cookie (`cookie_name`).
    pub cookie_name: String,
    /// The authenticate host's own session cookie.
    pub auth_cookie_name: String,
    pub csrf_cookie_name: String,
    pub route_cookie: cookies::Attributes,
    pub auth_cookie: cookies::Attributes,
    pub csrf_cookie: cookies::Attributes,
    pub cookie_expire: Duration,
    pub signout_redirect_url: Option<String>,
    pub allow_any_sign_out_redirect: bool,
    pub refresh_at_id_token_expiry: bool,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SignIn {
    pub fn new(model: &Model) -> SignIn {
        let g = &model.global;
        // `Secure` unless sluice serves plain HTTP to browsers: an `insecure_server` whose
        // routes (and authenticate URL) are all http:// is a local setup, and browsers drop
        // Secure cookies set over plain HTTP.
        let plain_http = g.insecure_server
            && model.routes.iter().all(|r| r.from.scheme == "http")
            && g.authenticate_service_url
                .as_deref()
                .is_none_or(|u| u.starts_with("http://"));
        // SameSite defaults to Lax (the and browsers' default), said explicitly so
        // that older browsers treating a missing attribute as None behave the same.
        let attributes = |mut settings: CookieSettings, use_domain| cookies::Attributes {
            settings: {
                settings.same_site = settings.same_site.or(Some(SameSite::Lax));
                settings
            },
            secure: !plain_http,
            use_domain,
        };
        let cookie_name = g.cookie_name.clone();
        SignIn {
            keys: Keys::new(
                g.cookie_secret.as_ref(),
                g.shared_secret.as_ref(),
                g.idp.is_some(),
            ),
            targets: Targets::new(model),
            idp: g.idp.clone(),
            authenticate: g
                .authenticate_service_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok()),
            auth_cookie_name: format!("{cookie_name}_authenticate"),
            csrf_cookie_name: format!("{cookie_name}_csrf"),
            cookie_name,
            route_cookie: attributes(g.cookie.clone(), true),
            auth_cookie: attributes(g.cookie.clone(), false),
            // The provider sends the browser back with a cross-site top-level GET: only a Lax
            // (or laxer) cookie comes along, whatever `cookie_same_site` says.
            csrf_cookie: attributes(
                CookieSettings {
                    http_only: true,
                    same_site: Some(SameSite::Lax),
                    domain: None,
                },
                false,
            ),
            cookie_expire: g.cookie_expire,
            signout_redirect_url: g.signout_redirect_url.clone(),
            allow_any_sign_out_redirect: g.runtime_flags.get("allow_any_sign_out_redirect_uri"),
            refresh_at_id_token_expiry: g
                .runtime_flags
                .get("refresh_session_at_id_token_expiration"),
        }
    }

    /// The origin (`scheme://host[:port]`) whose endpoints sign in a browser that reached
    /// `origin`: the authenticate host, else that host itself.
    pub fn authenticate_origin(&self, origin: &str) -> String {
        match &self.authenticate {
            Some(url) => url.origin().ascii_serialization(),
            None => origin.to_string(),
        }
    }

    /// Whether `hostname` (no port) is the authenticate host (always, without one).
    pub fn is_authenticate_host(&self, hostname: &str) -> bool {
        match &self.authenticate {
            Some(url) => url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(hostname)),
            None => true,
        }
    }

    /// A signed sign-in URL that brings the browser back to `redirect` (and signs it in on
    /// `additional_hosts` too, for `depends_on`).
    pub fn sign_in_url(
        &self,
        origin: &str,
        redirect: &str,
        additional_hosts: &[String],
        programmatic: bool,
    ) -> String {
        let base = self.authenticate_origin(origin);
        let mut url = url::Url::parse(&format!("{base}/.pomerium/sign_in")).unwrap_or_else(|_| {
            url::Url::parse("https://invalid.invalid/.pomerium/sign_in").expect("constant URL")
        });
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("pomerium_redirect_uri", redirect);
            if !additional_hosts.is_empty() {
                q.append_pair("pomerium_additional_hosts", &additional_hosts.join(","));
            }
            if programmatic {
                // The session comes back to this route host, which hands it to the client.
                q.append_pair("pomerium_programmatic", "true");
                q.append_pair(
                    "pomerium_callback_uri",
                    &format!("{origin}/.pomerium/callback/"),
                );
            }
        }
        signed_url::sign(&mut url, &self.keys.url, unix_now());
        url.to_string()
    }

    /// A signed sign-out URL on `origin`.
    pub fn sign_out_url(&self, origin: &str, redirect: Option<&str>) -> String {
        let mut url =
            url::Url::parse(&format!("{origin}/.pomerium/sign_out")).unwrap_or_else(|_| {
                url::Url::parse("https://invalid.invalid/.pomerium/sign_out").expect("constant URL")
            });
        if let Some(r) = redirect {
            url.query_pairs_mut()
                .append_pair("pomerium_redirect_uri", r);
        }
        signed_url::sign(&mut url, &self.keys.url, unix_now());
        url.to_string()
    }
}
