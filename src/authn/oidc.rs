//! The identity provider's side of sign-in: discovery, the authorization URL (PKCE S256), the
//! code exchange, refresh, ID token verification and UserInfo.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::authz::tokens::{self, IdpTokens};
use crate::config::model::IdentityProvider;

/// Discovery documents are fetched again after this long.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered with a server error: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused (an invalid or revoked code or refresh token, a bad client).
    #[error("the identity provider refused: {0}")]
    Refused(String),
    /// What the provider sent does not verify.
    #[error("the identity provider's answer does not verify: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorResponse {
    error: String,
}

/// PKCE (RFC 7636): the challenge for `verifier`, S256.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub struct OidcClient {
    http: reqwest::Client,
    tokens: Arc<IdpTokens>,
    discovered: RwLock<HashMap<String, (Arc<Discovery>, Instant)>>,
}

impl OidcClient {
    /// `http` must not follow redirects (a token endpoint that redirects is not followed).
    pub fn new(http: reqwest::Client, tokens: Arc<IdpTokens>) -> Self {
        OidcClient {
            http,
            tokens,
            discovered: RwLock::default(),
        }
    }

    pub async fn discovery(&self, idp: &IdentityProvider) -> Result<Arc<Discovery>, OidcError> {
        let url = idp.url.trim_end_matches('/').to_string();
        if let Some((d, at)) = self
            .discovered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&url)
            && at.elapsed() < DISCOVERY_MAX_AGE
        {
            return Ok(Arc::clone(d));
        }
        let address = format!("{url}/.well-known/openid-configuration");
        let response = self
            .http
            .get(&address)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {address}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "GET {address}: {}",
                response.status()
            )));
        }
        let discovery: Discovery = response
            .json()
            .await
            .map_err(|e| OidcError::Invalid(format!("GET {address}: {e}")))?;
        if discovery.issuer.trim_end_matches('/') != url {
            return Err(OidcError::Invalid(format!(
                "the discovery document names issuer `{}`, not `{url}`",
                discovery.issuer
            )));
        }
        let discovery = Arc::new(discovery);
        self.discovered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url, (Arc::clone(&discovery), Instant::now()));
        Ok(discovery)
    }

    /// The provider's authorization URL for one sign-in.
    pub fn authorization_url(
        discovery: &Discovery,
        idp: &IdentityProvider,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<url::Url, OidcError> {
        let mut url = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| OidcError::Invalid(format!("authorization_endpoint is not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &idp.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", &idp.scopes.join(" "))
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce_challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    async fn token_request(
        &self,
        idp: &IdentityProvider,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OidcError> {
        let discovery = self.discovery(idp).await?;
        let secret = idp.client_secret.as_ref().map(|s| s.expose()).unwrap_or("");
        let basic = discovery.token_endpoint_auth_methods_supported.is_empty()
            || discovery
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic");
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(&discovery.token_endpoint);
        if basic {
            // RFC 6749 2.3.1: both parts form-encoded before the Basic encoding.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(&idp.client_id), Some(encode(secret)));
        } else {
            fields.push(("client_id", &idp.client_id));
            fields.push(("client_secret", secret));
        }
        let response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        if status.is_server_error() {
            return Err(OidcError::Unavailable(format!("token endpoint: {status}")));
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| status.to_string());
            return Err(OidcError::Refused(error));
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::Invalid(format!("token endpoint answer: {e}")))
    }

    pub async fn exchange_code(
        &self,
        idp: &IdentityProvider,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, OidcError> {
        self.token_request(
            idp,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    pub async fn refresh(
        &self,
        idp: &IdentityProvider,
        refresh_token: &str,
    ) -> Result<TokenResponse, OidcError> {
        self.token_request(
            idp,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Verifies an ID token (signature, issuer, audience, lifetime, and `nonce` when given).
    pub async fn verify_id_token(
        &self,
        idp: &IdentityProvider,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, OidcError> {
        let provider = self.tokens.provider(&idp.url);
        let claims = tokens::verify(id_token, &provider, &idp.client_id)
            .await
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        if let Some(nonce) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
        {
            return Err(OidcError::Invalid(
                "the ID token's nonce is not this sign-in's".into(),
            ));
        }
        Ok(claims)
    }

    /// UserInfo's claims, when the provider has the endpoint.
    pub async fn userinfo(
        &self,
        discovery: &Discovery,
        access_token: &str,
    ) -> Result<Option<Map<String, Value>>, OidcError> {
        let Some(endpoint) = &discovery.userinfo_endpoint else {
            return Ok(None);
        };
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "userinfo: {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| OidcError::Invalid(format!("userinfo: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_the_unpadded_base64url_sha256_of_the_verifier() {
        // Expected value from Python: urlsafe_b64encode(sha256(verifier)).rstrip("=").
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wnaJAB_QS1tFOHQ"),
            "c2IFTS7DEzrc6XTEjZHCyD9a0xUzue04HqWsNX2x8ro"
        );
    }
}
