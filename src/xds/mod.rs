//! The xDS server: snapshots of encoded resources, and ADS streams (state of the world and
//! delta) that send each Envoy what changed, in make-before-break order, tracking ACKs and
//! NACKs per stream and type.

mod delta;
mod grpc_body;
pub mod service;
pub mod snapshot;
mod sotw;
pub mod status;
mod stream;
pub mod types;
pub mod wire;

pub use service::AdsServer;
pub use snapshot::{Resource, Snapshot, SnapshotSource};
pub use status::Registry;
pub use types::ResourceType;
