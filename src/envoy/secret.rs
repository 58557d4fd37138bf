//! IR secrets → Envoy SDS `Secret`s. They name files, so no key material is ever in them.

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    Secret, TlsCertificate, secret,
};

use super::common::file;
use crate::ir;

pub fn secret(s: &ir::Secret) -> Secret {
    Secret {
        name: s.name.clone(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(file(&s.files.cert)),
            private_key: Some(file(&s.files.key)),
            ..Default::default()
        })),
    }
}
