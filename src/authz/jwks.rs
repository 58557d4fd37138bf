//! An identity provider's signing keys, found by OpenID discovery and cached. An unknown key id
//! triggers a refetch (the IdP rotated its keys), at most once per `MIN_REFETCH`, and only one
//! fetch runs at a time.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use tracing::{info, warn};

/// The least time between two fetches, so tokens with made-up key ids cannot hammer the IdP.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Keys are refetched in any case after this long.
const MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Default)]
struct Cached {
    issuer: Option<String>,
    keys: JwkSet,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// One identity provider (by its issuer URL).
pub struct Provider {
    url: String,
    http: reqwest::Client,
    cache: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
    min_refetch: Duration,
}

impl Provider {
    pub fn new(url: &str, http: reqwest::Client) -> Self {
        Provider::with_min_refetch(url, http, MIN_REFETCH)
    }

    /// With another least time between fetches (tests of key rotation use a short one).
    pub fn with_min_refetch(url: &str, http: reqwest::Client, min_refetch: Duration) -> Self {
        Provider {
            url: url.trim_end_matches('/').to_string(),
            http,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            min_refetch,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The issuer and the key for `kid` (or the only key, when the token names none).
    pub async fn key(&self, kid: Option<&str>) -> Result<(String, jsonwebtoken::jwk::Jwk), String> {
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        self.refetch().await;
        self.lookup(kid).ok_or_else(|| match kid {
            Some(kid) => format!("no key `{kid}` among the identity provider's keys"),
            None => "the token names no key and the identity provider has more than one".into(),
        })
    }

    fn lookup(&self, kid: Option<&str>) -> Option<(String, jsonwebtoken::jwk::Jwk)> {
        let cache = self.read();
        if cache.fetched.is_none_or(|t| t.elapsed() > MAX_AGE) {
            return None;
        }
        let issuer = cache.issuer.clone()?;
        let key = match kid {
            Some(kid) => cache.keys.find(kid)?,
            None if cache.keys.keys.len() == 1 => &cache.keys.keys[0],
            None => return None,
        };
        Some((issuer, key.clone()))
    }

    async fn refetch(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        if self
            .read()
            .attempted
            .is_some_and(|t| t.elapsed() < self.min_refetch)
        {
            return;
        }
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .attempted = Some(Instant::now());
        match self.fetch().await {
            Ok((issuer, keys)) => {
                info!(provider = %self.url, keys = keys.keys.len(), "fetched the identity provider's signing keys");
                let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
                cache.issuer = Some(issuer);
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
            }
            Err(e) => {
                warn!(provider = %self.url, error = %e, "cannot fetch the identity provider's signing keys")
            }
        }
    }

    async fn fetch(&self) -> Result<(String, JwkSet), String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.url);
        let discovery: Discovery = self.get(&discovery_url).await?;
        if discovery.issuer.trim_end_matches('/') != self.url {
            return Err(format!(
                "the discovery document names issuer `{}`, not `{}`",
                discovery.issuer, self.url
            ));
        }
        let keys: JwkSet = self.get(&discovery.jwks_uri).await?;
        Ok((discovery.issuer, keys))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("GET {url}: {e}"))
    }
}
