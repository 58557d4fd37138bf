//! Envoy's CheckRequest as sluice decodes it: only the fields a decision reads.
//!
//! Why not envoy-types' message: it decodes every field Envoy sends into owned maps and
//! strings, headers into a `HashMap` hashed with SipHash; a decision reads a handful of them.
//! These messages keep Envoy's field numbers, so they read the same bytes; prost skips the
//! fields left out (destination, timestamps, metadata, TLS session, body) without
//! allocating. Protobuf maps are read as lists of entries ([`HeaderEntry`]), which is how
//! they travel.
//!
//! Text fields are `Bytes`: decoded from tonic's receive buffer they are slices of it, not
//! copies (a Check's two dozen strings cost no allocation). Protobuf requires them to be
//! UTF-8; [`CheckRequest::check_text`] checks every field sluice reads before a decision,
//! and [`text`] reads them as `str` after.

use std::str::Utf8Error;

use bytes::Bytes;

use crate::request_headers::HeaderEntry;
pub use crate::request_headers::text;

/// `envoy.service.auth.v3.CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

impl CheckRequest {
    /// Whether every text field sluice reads is UTF-8, as protobuf requires: one that is not
    /// makes the whole request malformed (answered with a gRPC error, which Envoy's
    /// ext_authz denies), never a header read as absent.
    pub fn check_text(&self) -> Result<(), Utf8Error> {
        fn utf8<'a>(fields: impl IntoIterator<Item = &'a Bytes>) -> Result<(), Utf8Error> {
            fields
                .into_iter()
                .try_for_each(|f| std::str::from_utf8(f).map(drop))
        }
        fn entries(list: &[HeaderEntry]) -> impl Iterator<Item = &Bytes> {
            list.iter().flat_map(|h| [&h.name, &h.value])
        }
        let Some(a) = &self.attributes else {
            return Ok(());
        };
        utf8(entries(&a.context_extensions))?;
        if let Some(source) = &a.source {
            utf8([&source.certificate])?;
            let socket = source
                .address
                .as_ref()
                .and_then(|a| a.socket_address.as_ref());
            utf8(socket.map(|s| &s.address))?;
        }
        if let Some(http) = a.request.as_ref().and_then(|r| r.http.as_ref()) {
            utf8([&http.id, &http.method, &http.path, &http.host, &http.scheme])?;
            utf8(entries(&http.headers))?;
        }
        Ok(())
    }
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
    #[prost(bytes = "bytes", tag = "5")]
    pub certificate: Bytes,
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
    #[prost(bytes = "bytes", tag = "2")]
    pub address: Bytes,
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
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub method: Bytes,
    /// Lowercase names.
    #[prost(message, repeated, tag = "3")]
    pub headers: Vec<HeaderEntry>,
    /// Path and query.
    #[prost(bytes = "bytes", tag = "4")]
    pub path: Bytes,
    #[prost(bytes = "bytes", tag = "5")]
    pub host: Bytes,
    #[prost(bytes = "bytes", tag = "6")]
    pub scheme: Bytes,
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

    use bytes::Bytes;

    use super::{CheckRequest, text};
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
        assert_eq!(ip.map(|s| text(&s.address)), Some("10.0.0.7"));
        let http = a.request.as_ref().and_then(|r| r.http.as_ref()).unwrap();
        assert_eq!(
            [&http.id, &http.method, &http.path, &http.host, &http.scheme].map(text),
            ["1234", "POST", "/a%20b?q=1", "app.example.com", "https"]
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

    #[test]
    fn text_fields_are_slices_of_the_received_bytes_not_copies() {
        let received = Bytes::from(envoy_request(None).encode_to_vec());
        let lean = CheckRequest::decode(received.clone()).unwrap();
        assert_eq!(lean.check_text(), Ok(()));
        let http = lean.attributes.unwrap().request.unwrap().http.unwrap();
        let inside = |field: &Bytes| received.as_ptr_range().contains(&field.as_ptr());
        assert!(inside(&http.path) && inside(&http.headers[0].value));
    }

    #[test]
    fn a_header_that_is_not_utf8_makes_the_request_malformed() {
        let mut request = envoy_request(None);
        let attributes = request.attributes.as_mut().unwrap();
        let http = attributes.request.as_mut().unwrap().http.as_mut().unwrap();
        http.headers.insert("x-bad".into(), "\u{e9}".into());
        let mut bytes = request.encode_to_vec();
        // "é" is C3 A9 in UTF-8; A9 A9 (same length, so every length prefix holds) is not.
        let at = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        bytes[at] = 0xa9;
        let lean = CheckRequest::decode(bytes.as_slice()).expect("bytes decode as bytes");
        assert!(lean.check_text().is_err());
        assert_eq!(CheckRequest::default().check_text(), Ok(()));
    }
}
