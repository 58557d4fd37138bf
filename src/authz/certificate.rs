//! The client certificate Envoy reports (URL-encoded PEM), read for the certificate criteria.

use base64::Engine;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::model::{ClientCertCheck, Route, SanType};
use crate::policy::eval::{CertificateInfo, ClientCertificate};

/// The certificate as the route's policy sees it: checked against the route's client CA when
/// one applies (Pomerium verifies in authorize too, since the listener lets untrusted ones
/// through), else only read.
pub fn read_for(route: Option<&Route>, url_encoded_pem: &str) -> ClientCertificate {
    let read = read(url_encoded_pem);
    match (route.and_then(|r| r.client_certificate.as_deref()), &read) {
        (Some(check), ClientCertificate::Valid(_)) => {
            let pem_text =
                percent_encoding::percent_decode_str(url_encoded_pem).decode_utf8_lossy();
            match x509_parser::pem::parse_x509_pem(pem_text.as_bytes()) {
                Ok((_, pem)) if verify(&pem.contents, check) => read,
                _ => ClientCertificate::Invalid,
            }
        }
        _ => read,
    }
}

/// Chain to one of the roots (client-auth usage, validity now), the leaf not revoked by a
/// CRL of its issuer, the chain no deeper than allowed, and a SAN matching when required.
pub fn verify(der: &[u8], check: &ClientCertCheck) -> bool {
    use rustls_pki_types::{CertificateDer, UnixTime};
    use webpki::{
        BorrowedCertRevocationList, CertRevocationList, EndEntityCert, KeyUsage,
        RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
    };
    let leaf = CertificateDer::from(der);
    let Ok(ee) = EndEntityCert::try_from(&leaf) else {
        return false;
    };
    let roots: Vec<CertificateDer<'_>> = check
        .roots_der
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let anchors: Vec<_> = roots
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r).ok())
        .collect();
    let crls: Vec<CertRevocationList<'_>> = check
        .crls_der
        .iter()
        .filter_map(|d| BorrowedCertRevocationList::from_der(d).ok())
        .map(CertRevocationList::from)
        .collect();
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::EndEntity)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .build()
    });
    let Ok(path) = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        KeyUsage::client_auth(),
        revocation,
        None,
    ) else {
        return false;
    };
    // Depth above the leaf: its intermediates and the root.
    let depth = path.intermediate_certificates().count() as u32 + 1;
    if check.max_verify_depth > 0 && depth > check.max_verify_depth {
        return false;
    }
    sans_match(der, check)
}

fn sans_match(der: &[u8], check: &ClientCertCheck) -> bool {
    if check.match_subject_alt_names.is_empty() {
        return true;
    }
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let names: Vec<(SanType, String)> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((SanType::Dns, d.to_string())),
            GeneralName::RFC822Name(e) => Some((SanType::Email, e.to_string())),
            GeneralName::URI(u) => Some((SanType::Uri, u.to_string())),
            GeneralName::IPAddress(ip) => ip_text(ip).map(|t| (SanType::IpAddress, t)),
            GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                upn_text(value).map(|t| (SanType::UserPrincipalName, t))
            }
            _ => None,
        })
        .collect();
    check.match_subject_alt_names.iter().any(|m| {
        let Ok(re) = regex::Regex::new(&format!("^(?:{})$", m.pattern)) else {
            return false;
        };
        names
            .iter()
            .any(|(t, v)| *t == m.san_type && re.is_match(v))
    })
}

const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// The UTF8String inside the otherName's explicit tag.
fn upn_text(value: &[u8]) -> Option<String> {
    let (_, any) = x509_parser::der_parser::asn1_rs::Any::from_der(value).ok()?;
    let inner = any.data;
    let (_, s) = x509_parser::der_parser::asn1_rs::Utf8String::from_der(inner).ok()?;
    Some(s.string())
}

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
