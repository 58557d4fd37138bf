//! The client certificate Envoy reports (URL-encoded PEM), read for the certificate criteria.

use base64::Engine;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::policy::eval::{CertificateInfo, ClientCertificate};

pub fn read(url_encoded_pem: &str) -> ClientCertificate {
    if url_encoded_pem.is_empty() {
        return ClientCertificate::None;
    }
    let pem_text = percent_encoding::percent_decode_str(url_encoded_pem).decode_utf8_lossy();
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()) else {
        return ClientCertificate::Invalid;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&pem.contents) else {
        return ClientCertificate::Invalid;
    };
    let mut info = CertificateInfo {
        fingerprint: hex(&Sha256::digest(&pem.contents)),
        spki_hash: base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(cert.public_key().raw)),
        ..Default::default()
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => info.san_dns.push(d.to_string()),
                GeneralName::RFC822Name(e) => info.san_email.push(e.to_string()),
                GeneralName::URI(u) => info.san_uri.push(u.to_string()),
                _ => {}
            }
        }
    }
    ClientCertificate::Valid(info)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_certificates_and_refuses_garbage() {
        assert_eq!(read(""), ClientCertificate::None);
        assert_eq!(read("%2D%2D%2Dnot-a-cert"), ClientCertificate::Invalid);
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/testdata/certs/client.pem"
        ))
        .unwrap();
        let encoded =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let ClientCertificate::Valid(info) = read(&encoded) else {
            panic!("a valid certificate")
        };
        assert_eq!(info.fingerprint.len(), 64);
        assert!(info.san_dns.contains(&"client.example.com".to_string()));
    }
}
