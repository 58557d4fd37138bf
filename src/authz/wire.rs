//! Envoy's CheckRequest as sluice decodes it: only the fields a decision reads.
//!
//! Why not envoy-types' message: it decodes every field Envoy sends into owned maps and
//! strings, headers into a `HashMap` hashed with SipHash; a decision reads a handful of them.
//! These messages keep Envoy's field numbers, so they read the same bytes; prost skips the
//! fields left out (destination, timestamps, metadata, TLS session, body) without
//! allocating. Protobuf maps are read as lists of entries ([`HeaderEntry`]), which is how
//! they travel.

use crate::request_headers::HeaderEntry;

/// `envoy.service.auth.v3.CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `envoy.service.auth.v3.AttributeContext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    #[prost(message, optional, tag = "1")]
    pub source: Option<Peer>,
    #[prost(message, optional, tag = "4")]
    pub request: Option<Request>,
    /// The per-route `context_extensions` (sluice sets `route_id` and `route_checksum`).
    #[prost(message, repeated, tag = "10")]
    pub context_extensions: Vec<HeaderEntry>,
}

/// `AttributeContext.Peer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    #[prost(message, optional, tag = "1")]
    pub address: Option<Address>,
    /// The client certificate, URL-encoded PEM (`include_peer_certificate`).
    #[prost(string, tag = "5")]
    pub certificate: String,
}

/// `envoy.config.core.v3.Address`: of its oneof, only the socket address (field 1) is read;
/// a pipe or internal address leaves it empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Address {
    #[prost(message, optional, tag = "1")]
    pub socket_address: Option<SocketAddress>,
}

/// `envoy.config.core.v3.SocketAddress`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SocketAddress {
    #[prost(string, tag = "2")]
    pub address: String,
}

/// `AttributeContext.Request`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `AttributeContext.HttpRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    /// Envoy's stream id.
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub method: String,
    /// Lowercase names.
    #[prost(message, repeated, tag = "3")]
    pub headers: Vec<HeaderEntry>,
    /// Path and query.
    #[prost(string, tag = "4")]
    pub path: String,
    #[prost(string, tag = "5")]
    pub host: String,
    #[prost(string, tag = "6")]
    pub scheme: String,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::core::v3::address::Address as EnvoyAddress;
    use envoy_types::pb::envoy::config::core::v3::{
        Address as EnvoyAddressMessage, Pipe, SocketAddress as EnvoySocketAddress,
    };
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest as EnvoyHttp, Peer as EnvoyPeer, Request as EnvoyRequest,
    };
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext as EnvoyAttributes, CheckRequest as EnvoyCheckRequest,
    };
    use prost::Message;

    use super::CheckRequest;
    use crate::request_headers::RequestHeaders;

    fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn envoy_request(address: Option<EnvoyAddress>) -> EnvoyCheckRequest {
        EnvoyCheckRequest {
            attributes: Some(EnvoyAttributes {
                source: Some(EnvoyPeer {
                    address: address.map(|a| EnvoyAddressMessage { address: Some(a) }),
                    service: "ignored".into(),
                    principal: "spiffe://ignored".into(),
                    certificate: "-----BEGIN%20CERTIFICATE-----".into(),
                    ..Default::default()
                }),
                destination: Some(EnvoyPeer {
                    certificate: "not the client's".into(),
                    ..Default::default()
                }),
                request: Some(EnvoyRequest {
                    time: Some(envoy_types::pb::google::protobuf::Timestamp {
                        seconds: 1,
                        nanos: 2,
                    }),
                    http: Some(EnvoyHttp {
                        id: "1234".into(),
                        method: "POST".into(),
                        headers: strings(&[
                            (":authority", "app.example.com"),
                            ("x-request-id", "req-1"),
                            ("authorization", "Bearer abc"),
                        ]),
                        path: "/a%20b?q=1".into(),
                        host: "app.example.com".into(),
                        scheme: "https".into(),
                        query: "q=1".into(),
                        body: "a body sluice never asks for".into(),
                        protocol: "HTTP/2".into(),
                        size: 27,
                        ..Default::default()
                    }),
                }),
                context_extensions: strings(&[("route_id", "r1"), ("route_checksum", "c1")]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn envoys_bytes_decode_to_the_fields_a_decision_reads() {
        let socket = EnvoyAddress::SocketAddress(EnvoySocketAddress {
            address: "10.0.0.7".into(),
            ..Default::default()
        });
        let bytes = envoy_request(Some(socket)).encode_to_vec();
        let lean = CheckRequest::decode(bytes.as_slice()).unwrap();
        let a = lean.attributes.as_ref().unwrap();
        let ctx = RequestHeaders(&a.context_extensions);
        assert_eq!(ctx.get("route_id"), Some("r1"));
        assert_eq!(ctx.get("route_checksum"), Some("c1"));
        let source = a.source.as_ref().unwrap();
        assert_eq!(source.certificate, "-----BEGIN%20CERTIFICATE-----");
        let ip = source
            .address
            .as_ref()
            .and_then(|a| a.socket_address.as_ref());
        assert_eq!(ip.map(|s| s.address.as_str()), Some("10.0.0.7"));
        let http = a.request.as_ref().and_then(|r| r.http.as_ref()).unwrap();
        assert_eq!(
            (
                &*http.id,
                &*http.method,
                &*http.path,
                &*http.host,
                &*http.scheme
            ),
            ("1234", "POST", "/a%20b?q=1", "app.example.com", "https")
        );
        let headers = RequestHeaders(&http.headers);
        assert_eq!(headers.get("x-request-id"), Some("req-1"));
        assert_eq!(headers.get("authorization"), Some("Bearer abc"));
        assert_eq!(headers.iter().count(), 3);
    }

    #[test]
    fn a_pipe_source_has_no_socket_address_and_empty_bytes_decode_empty() {
        let pipe = EnvoyAddress::Pipe(Pipe {
            path: "/run/envoy.sock".into(),
            mode: 0,
        });
        let bytes = envoy_request(Some(pipe)).encode_to_vec();
        let lean = CheckRequest::decode(bytes.as_slice()).unwrap();
        let source = lean.attributes.unwrap().source.unwrap();
        assert_eq!(source.address.unwrap().socket_address, None);
        assert_eq!(
            CheckRequest::decode(&[][..]).unwrap(),
            CheckRequest::default()
        );
        // Truncated bytes are an error, not a panic.
        let full = envoy_request(None).encode_to_vec();
        assert!(CheckRequest::decode(&full[..full.len() - 1]).is_err());
    }
}
