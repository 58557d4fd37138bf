//! The routes ext_authz decides for, by route id: built once per config generation, looked up
//! in constant time per request.

use std::collections::HashMap;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3Builder;

use super::assertion::Assertions;
use super::signer::Signer;
use crate::authn::SignIn;
use crate::config::Model;
use crate::config::model::Route;
use crate::hashing::lookup_hasher;

pub struct Index {
    pub model: Arc<Model>,
    /// Signs identity assertions for this generation.
    pub signer: Arc<Signer>,
    pub assertions: Assertions,
    /// Keys, cookies and hosts of browser sign-in for this generation.
    pub sign_in: Arc<SignIn>,
    /// Route id → (position in `model.routes`, checksum). Read once per Check.
    routes: HashMap<String, (usize, String), Xxh3Builder>,
}

impl Index {
    pub fn new(model: Arc<Model>, signer: Arc<Signer>) -> Self {
        Self::reusing(model, signer, None)
    }

    /// As `new`, taking the checksum of every route that is the very one `previous` indexed
    /// (a checksum hashes the whole route, and an edit leaves most routes as they were).
    pub fn reusing(model: Arc<Model>, signer: Arc<Signer>, previous: Option<&Index>) -> Self {
        let config_dir = model.config_dir();
        let previous = previous.filter(|p| p.model.file == model.file);
        let mut routes = HashMap::with_capacity_and_hasher(model.routes.len(), lookup_hasher());
        routes.extend(model.routes.iter().enumerate().map(|(i, r)| {
            let kept = previous.and_then(|p| {
                let (at, checksum) = p.routes.get(&r.id)?;
                Arc::ptr_eq(&p.model.routes[*at], r).then(|| checksum.clone())
            });
            let checksum = kept.unwrap_or_else(|| r.checksum(config_dir));
            (r.id.clone(), (i, checksum))
        }));
        Index {
            sign_in: Arc::new(SignIn::new(&model)),
            model,
            assertions: Assertions::new(Arc::clone(&signer)),
            signer,
            routes,
        }
    }

    /// The route and its current checksum.
    pub fn route(&self, id: &str) -> Option<(&Route, &str)> {
        let (i, checksum) = self.routes.get(id)?;
        Some((&self.model.routes[*i], checksum.as_str()))
    }
}

/// Where the authorization service reads the current index (swapped with each generation).
pub trait IndexSource: Send + Sync + 'static {
    fn index(&self) -> Arc<Index>;
}
