//! Outbound discovery responses, written in protobuf wire format straight from the shared
//! resource bytes.
//!
//! With prost's generated `DiscoveryResponse`, every stream would copy each resource into its
//! own `Any`, and tonic would copy it again into a per-stream buffer that it keeps at its
//! largest size: a 10 MB route table sent to ten Envoys would pin 100 MB. Here a response is a
//! list of chunks: small ones holding the protobuf framing and fields, and the snapshot's own
//! resource `Bytes`, shared, never copied (see `grpc_body`).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::snapshot::Resource;

/// A message this module can write in protobuf wire format.
pub trait WireMessage {
    fn encoded_len(&self) -> usize;
    /// Appends the encoding to `out` as chunks; resource payloads are shared, not copied.
    fn chunks(&self, out: &mut Chunks);
}

/// An encoding under construction: small writes go to a scratch buffer, large shared
/// payloads become chunks of their own.
#[derive(Default)]
pub struct Chunks {
    pub parts: Vec<Bytes>,
    scratch: BytesMut,
}

impl Chunks {
    fn flush(&mut self) {
        if !self.scratch.is_empty() {
            self.parts.push(self.scratch.split().freeze());
        }
    }

    fn put_shared(&mut self, bytes: &Bytes) {
        self.flush();
        self.parts.push(bytes.clone());
    }

    pub fn finish(mut self) -> Vec<Bytes> {
        self.flush();
        self.parts
    }
}

fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_str(tag: u32, s: &str, buf: &mut BytesMut) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.put_slice(s.as_bytes());
    }
}

fn message_len(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

fn put_message_header(tag: u32, body: usize, buf: &mut BytesMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
}

/// `google.protobuf.Any { type_url = 1; value = 2 }`
fn any_len(type_url: &str, r: &Resource) -> usize {
    str_len(1, type_url) + message_len(2, r.bytes.len())
}

fn put_any(tag: u32, type_url: &str, r: &Resource, out: &mut Chunks) {
    put_message_header(tag, any_len(type_url, r), &mut out.scratch);
    put_str(1, type_url, &mut out.scratch);
    put_message_header(2, r.bytes.len(), &mut out.scratch);
    out.put_shared(&r.bytes);
}

/// `DiscoveryResponse`: version_info = 1, resources = 2, type_url = 4, nonce = 5.
pub struct SotwResponse {
    pub version_info: String,
    pub type_url: &'static str,
    pub nonce: String,
    pub resources: Vec<Arc<Resource>>,
}

impl WireMessage for SotwResponse {
    fn encoded_len(&self) -> usize {
        str_len(1, &self.version_info)
            + self
                .resources
                .iter()
                .map(|r| message_len(2, any_len(self.type_url, r)))
                .sum::<usize>()
            + str_len(4, self.type_url)
            + str_len(5, &self.nonce)
    }

    fn chunks(&self, out: &mut Chunks) {
        put_str(1, &self.version_info, &mut out.scratch);
        for r in &self.resources {
            put_any(2, self.type_url, r, out);
        }
        put_str(4, self.type_url, &mut out.scratch);
        put_str(5, &self.nonce, &mut out.scratch);
    }
}

/// `DeltaDiscoveryResponse`: system_version_info = 1, resources = 2, type_url = 4, nonce = 5,
/// removed_resources = 6.
pub struct DeltaResponse {
    pub system_version_info: String,
    pub type_url: &'static str,
    pub nonce: String,
    pub resources: Vec<Arc<Resource>>,
    pub removed: Vec<String>,
}

/// `discovery.v3.Resource`: version = 1, resource = 2, name = 3.
fn delta_resource_len(type_url: &str, r: &Resource) -> usize {
    str_len(1, &r.version) + message_len(2, any_len(type_url, r)) + str_len(3, &r.name)
}

impl WireMessage for DeltaResponse {
    fn encoded_len(&self) -> usize {
        str_len(1, &self.system_version_info)
            + self
                .resources
                .iter()
                .map(|r| message_len(2, delta_resource_len(self.type_url, r)))
                .sum::<usize>()
            + str_len(4, self.type_url)
            + str_len(5, &self.nonce)
            + self
                .removed
                .iter()
                .map(|n| key_len(6) + encoded_len_varint(n.len() as u64) + n.len())
                .sum::<usize>()
    }

    fn chunks(&self, out: &mut Chunks) {
        put_str(1, &self.system_version_info, &mut out.scratch);
        for r in &self.resources {
            put_message_header(2, delta_resource_len(self.type_url, r), &mut out.scratch);
            put_str(1, &r.version, &mut out.scratch);
            put_any(2, self.type_url, r, out);
            put_str(3, &r.name, &mut out.scratch);
        }
        put_str(4, self.type_url, &mut out.scratch);
        put_str(5, &self.nonce, &mut out.scratch);
        for n in &self.removed {
            // Repeated strings are written even when empty.
            let buf = &mut out.scratch;
            encode_key(6, WireType::LengthDelimited, buf);
            encode_varint(n.len() as u64, buf);
            buf.put_slice(n.as_bytes());
        }
    }
}

/// Decodes discovery requests with prost; a malformed one ends the stream with an error.
pub struct RequestDecoder<Req>(std::marker::PhantomData<fn() -> Req>);

impl<Req> Default for RequestDecoder<Req> {
    fn default() -> Self {
        RequestDecoder(std::marker::PhantomData)
    }
}

impl<Req: prost::Message + Default> tonic::codec::Decoder for RequestDecoder<Req> {
    type Item = Req;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Req>, tonic::Status> {
        Req::decode(src).map(Some).map_err(|e| {
            tonic::Status::invalid_argument(format!("malformed discovery request: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::{
        DeltaDiscoveryResponse, DiscoveryResponse,
    };
    use prost::Message;

    fn resource(name: &str, version: &str, bytes: &[u8]) -> Arc<Resource> {
        Arc::new(Resource {
            name: name.into(),
            version: version.into(),
            bytes: bytes::Bytes::copy_from_slice(bytes),
        })
    }

    fn encode(m: &impl WireMessage) -> Vec<u8> {
        let mut chunks = Chunks::default();
        m.chunks(&mut chunks);
        let buf: Vec<u8> = chunks.finish().concat();
        assert_eq!(buf.len(), m.encoded_len());
        buf
    }

    #[test]
    fn sotw_responses_decode_as_prost_discovery_responses() {
        let big = vec![7u8; 300];
        let m = SotwResponse {
            version_info: "v1".into(),
            type_url: "type.googleapis.com/x.Y",
            nonce: "3".into(),
            resources: vec![resource("a", "1", b"\x0a\x01a"), resource("b", "2", &big)],
        };
        let d = DiscoveryResponse::decode(encode(&m).as_slice()).unwrap();
        assert_eq!(
            (
                d.version_info.as_str(),
                d.type_url.as_str(),
                d.nonce.as_str()
            ),
            ("v1", "type.googleapis.com/x.Y", "3")
        );
        assert_eq!(d.resources.len(), 2);
        assert_eq!(d.resources[1].type_url, "type.googleapis.com/x.Y");
        assert_eq!(d.resources[1].value, big);
    }

    #[test]
    fn resource_payloads_are_shared_not_copied() {
        let big = resource("big", "1", &vec![1u8; 4096]);
        let m = SotwResponse {
            version_info: "v".into(),
            type_url: "t",
            nonce: "1".into(),
            resources: vec![Arc::clone(&big)],
        };
        let mut chunks = Chunks::default();
        m.chunks(&mut chunks);
        let parts = chunks.finish();
        assert!(
            parts.iter().any(|p| p.as_ptr() == big.bytes.as_ptr()),
            "the payload chunk is the snapshot's own bytes"
        );
    }

    #[test]
    fn delta_responses_decode_as_prost_delta_responses() {
        let m = DeltaResponse {
            system_version_info: String::new(),
            type_url: "type.googleapis.com/x.Y",
            nonce: "9".into(),
            resources: vec![resource("a", "v7", b"xyz")],
            removed: vec!["gone".into(), String::new()],
        };
        let d = DeltaDiscoveryResponse::decode(encode(&m).as_slice()).unwrap();
        assert_eq!(d.nonce, "9");
        assert_eq!(d.resources[0].name, "a");
        assert_eq!(d.resources[0].version, "v7");
        assert_eq!(d.resources[0].resource.as_ref().unwrap().value, b"xyz");
        assert_eq!(d.removed_resources, vec!["gone".to_string(), String::new()]);
    }
}
