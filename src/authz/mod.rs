//! ext_authz: the `Authorization/Check` service Envoy calls for every request on a protected
//! route. Route lookup by id from the published generation, identity, PPL decision, response.

pub mod decide;
pub mod identity;
pub mod index;
pub mod request;
pub mod respond;
pub mod service;

pub use index::{Index, IndexSource};
pub use service::{AuthzCounters, AuthzService};
