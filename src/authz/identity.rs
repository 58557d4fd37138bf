//! The identity seam: who is making a request. Bearer tokens verified against the IdP's keys
//! come here, and so will browser sessions.

use crate::config::model::Route;
use crate::policy::eval::Identity;

use super::request::RequestView;

/// Why a request's credentials were not accepted. Never echoed to the client in detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the credentials are not valid: {0}")]
    Invalid(String),
}

/// Establishes who made a request, if anyone.
pub trait IdentitySource: Send + Sync + 'static {
    /// `Ok(None)`: nobody is signed in. `Err`: credentials were presented but refused.
    fn identify(
        &self,
        request: &RequestView<'_>,
        route: &Route,
    ) -> Result<Option<Identity>, IdentityError>;
}

/// No identity sources configured: every request is anonymous.
pub struct Anonymous;

impl IdentitySource for Anonymous {
    fn identify(&self, _: &RequestView<'_>, _: &Route) -> Result<Option<Identity>, IdentityError> {
        Ok(None)
    }
}
