//! Outbound discovery responses, encoded straight from the shared resource bytes.
//!
//! With prost's generated `DiscoveryResponse`, every stream would copy each resource into its
//! own `Any` before tonic copies it again into the send buffer; a 10 MB route table sent to ten
//! Envoys would briefly cost 200 MB. These types hold `Arc`s to the snapshot's resources and
//! write the protobuf wire format directly (same bytes as prost would), so the only copy is
//! tonic's send buffer.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tokio::sync::OwnedSemaphorePermit;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::snapshot::Resource;

/// A message this module can write in protobuf wire format.
pub trait WireMessage {
    fn encoded_len(&self) -> usize;
    fn encode_raw(&self, buf: &mut impl BufMut);
}

fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_str(tag: u32, s: &str, buf: &mut impl BufMut) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.put_slice(s.as_bytes());
    }
}

fn message_len(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

fn put_message_header(tag: u32, body: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
}

/// `google.protobuf.Any { type_url = 1; value = 2 }`
fn any_len(type_url: &str, r: &Resource) -> usize {
    str_len(1, type_url) + message_len(2, r.bytes.len())
}

fn put_any(tag: u32, type_url: &str, r: &Resource, buf: &mut impl BufMut) {
    put_message_header(tag, any_len(type_url, r), buf);
    put_str(1, type_url, buf);
    put_message_header(2, r.bytes.len(), buf);
    buf.put_slice(&r.bytes);
}

/// `DiscoveryResponse`: version_info = 1, resources = 2, type_url = 4, nonce = 5.
pub struct SotwResponse {
    pub version_info: String,
    pub type_url: &'static str,
    pub nonce: String,
    pub resources: Vec<Arc<Resource>>,
    /// Taken when tonic pulls the message, released once it is encoded.
    pub permit: Option<OwnedSemaphorePermit>,
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

    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_str(1, &self.version_info, buf);
        for r in &self.resources {
            put_any(2, self.type_url, r, buf);
        }
        put_str(4, self.type_url, buf);
        put_str(5, &self.nonce, buf);
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
    pub permit: Option<OwnedSemaphorePermit>,
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

    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_str(1, &self.system_version_info, buf);
        for r in &self.resources {
            put_message_header(2, delta_resource_len(self.type_url, r), buf);
            put_str(1, &r.version, buf);
            put_any(2, self.type_url, r, buf);
            put_str(3, &r.name, buf);
        }
        put_str(4, self.type_url, buf);
        put_str(5, &self.nonce, buf);
        for n in &self.removed {
            // Repeated strings are written even when empty.
            encode_key(6, WireType::LengthDelimited, buf);
            encode_varint(n.len() as u64, buf);
            buf.put_slice(n.as_bytes());
        }
    }
}

impl super::outbound::Permitted for SotwResponse {
    fn payload_bytes(&self) -> usize {
        self.resources.iter().map(|r| r.bytes.len()).sum()
    }
    fn attach(&mut self, permit: OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }
}

impl super::outbound::Permitted for DeltaResponse {
    fn payload_bytes(&self) -> usize {
        self.resources.iter().map(|r| r.bytes.len()).sum()
    }
    fn attach(&mut self, permit: OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }
}

/// Requests decode with prost; responses encode with [`WireMessage`].
pub struct AdsCodec<Req, Resp>(PhantomData<fn(Req, Resp)>);

impl<Req, Resp> Default for AdsCodec<Req, Resp> {
    fn default() -> Self {
        AdsCodec(PhantomData)
    }
}

pub struct WireEncoder<Resp>(PhantomData<fn(Resp)>);

impl<Resp: WireMessage> Encoder for WireEncoder<Resp> {
    type Item = Resp;
    type Error = Status;

    fn encode(&mut self, item: Resp, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode_raw(dst);
        Ok(())
    }
}

pub struct RequestDecoder<Req>(PhantomData<fn() -> Req>);

impl<Req: prost::Message + Default> Decoder for RequestDecoder<Req> {
    type Item = Req;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Req>, Status> {
        Req::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed discovery request: {e}")))
    }
}

impl<Req, Resp> Codec for AdsCodec<Req, Resp>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: WireMessage + Send + 'static,
{
    type Encode = Resp;
    type Decode = Req;
    type Encoder = WireEncoder<Resp>;
    type Decoder = RequestDecoder<Req>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(PhantomData)
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
        let mut buf = Vec::new();
        m.encode_raw(&mut buf);
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
            permit: None,
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
    fn delta_responses_decode_as_prost_delta_responses() {
        let m = DeltaResponse {
            system_version_info: String::new(),
            type_url: "type.googleapis.com/x.Y",
            nonce: "9".into(),
            resources: vec![resource("a", "v7", b"xyz")],
            removed: vec!["gone".into(), String::new()],
            permit: None,
        };
        let d = DeltaDiscoveryResponse::decode(encode(&m).as_slice()).unwrap();
        assert_eq!(d.nonce, "9");
        assert_eq!(d.resources[0].name, "a");
        assert_eq!(d.resources[0].version, "v7");
        assert_eq!(d.resources[0].resource.as_ref().unwrap().value, b"xyz");
        assert_eq!(d.removed_resources, vec!["gone".to_string(), String::new()]);
    }
}
