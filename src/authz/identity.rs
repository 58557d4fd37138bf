//! The identity seam: who is making a request. Bearer tokens verified against the IdP's keys
//! come through here, and so will browser sessions.

use std::sync::Arc;

use crate::config::model::Route;
use crate::policy::eval::Identity;

use super::index::Index;
use super::request::RequestView;

/// Why a request's credentials were not accepted. Logged, never shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the credentials are not valid: {0}")]
    Invalid(String),
}

/// A signed-in caller and the tokens that proved it (for header templates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    pub identity: Identity,
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    /// `Set-Cookie` values for the response (a refreshed session cookie).
    pub set_cookies: Vec<String>,
}

/// Establishes who made a request, if anyone.
#[tonic::async_trait]
pub trait IdentitySource: Send + Sync + 'static {
    /// The answer `identify` would give, when it is known without waiting: no credentials, or
    /// ones already checked. `None`: call `identify`. Every Check asks this first, so a client
    /// whose token or cookie is remembered costs no boxed future.
    fn remembered(
        &self,
        _request: &RequestView<'_>,
        _route: &Route,
        _index: &Index,
    ) -> Option<Result<Option<Arc<Session>>, IdentityError>> {
        None
    }

    /// `Ok(None)`: nobody is signed in. `Err`: credentials were presented but refused.
    async fn identify(
        &self,
        request: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError>;
}

/// Every request is anonymous (for tests and offline checks).
pub struct Anonymous;

#[tonic::async_trait]
impl IdentitySource for Anonymous {
    fn remembered(
        &self,
        _: &RequestView<'_>,
        _: &Route,
        _: &Index,
    ) -> Option<Result<Option<Arc<Session>>, IdentityError>> {
        Some(Ok(None))
    }

    async fn identify(
        &self,
        _: &RequestView<'_>,
        _: &Route,
        _: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError> {
        Ok(None)
    }
}
