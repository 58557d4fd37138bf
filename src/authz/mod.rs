//! ext_authz: the `Authorization/Check` service Envoy calls for every request on a protected
//! route. Route lookup by id from the published generation, identity, PPL decision, response.

pub mod assertion;
pub mod certificate;
pub mod decide;
pub mod headers;
pub mod identity;
pub mod index;
pub mod jwks;
pub mod remembered;
pub mod request;
pub mod respond;
pub mod server;
pub mod service;
pub mod signer;
pub mod tokens;
pub mod wire;

pub use index::{Index, IndexSource};
pub use service::{AuthzCounters, AuthzService};
