//! gRPC server streaming by hand (no protobuf needed: gRPC carries opaque bytes): the
//! 5-byte length-prefixed framing, the "tick" messages the test upstream sends (a sequence
//! number and the microsecond it was sent), and a client that records when each message and
//! the trailers arrived.

use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;

use super::timing::{Delays, now_us};

/// The method the test upstream serves: a request `"<count> <every_ms>"`, then `count` ticks
/// one every `every_ms`, then trailers `grpc-status: 0` with `x-sent-us`.
pub const WATCH_PATH: &str = "/sluice.test.Ticker/Watch";

/// One uncompressed message: flag 0, big-endian length, the bytes.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// The path of Envoy's ext_authz method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// One unary Check over raw h2: a body sent as the given pieces (a DATA frame each), then the
/// answer's gRPC status (from the headers of a trailers-only answer, else the trailers) and
/// its body bytes.
pub async fn h2_check(
    sender: &mut h2::client::SendRequest<Bytes>,
    pieces: Vec<Bytes>,
) -> (Option<String>, Vec<u8>) {
    let request = http::Request::post(CHECK_PATH)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .expect("a stream slot");
    let (response, mut send) = sender.send_request(request, false).expect("a stream");
    let count = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        send.reserve_capacity(piece.len());
        send.send_data(piece, i + 1 == count).expect("DATA");
    }
    let response = response.await.expect("a response");
    assert_eq!(response.status(), 200);
    let status_of = |headers: &http::HeaderMap| {
        headers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let mut status = status_of(response.headers());
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.expect("DATA");
        let _ = body.flow_control().release_capacity(data.len());
        bytes.extend_from_slice(&data);
    }
    if let Some(trailers) = body.trailers().await.expect("trailers") {
        status = status_of(&trailers);
    }
    (status, bytes)
}

/// Splits a byte stream into messages, whatever the DATA frame boundaries were.
#[derive(Default)]
pub struct Deframer {
    buffer: BytesMut,
}

impl Deframer {
    pub fn push(&mut self, data: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buffer.len() >= 5 {
            let len = u32::from_be_bytes(self.buffer[1..5].try_into().unwrap()) as usize;
            if self.buffer.len() < 5 + len {
                break;
            }
            self.buffer.advance(5);
            out.push(self.buffer.split_to(len).freeze());
        }
        out
    }

    /// Bytes of an incomplete message left over.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

pub fn tick(seq: u64, sent_us: u64) -> Bytes {
    frame(format!("{seq} {sent_us}").as_bytes())
}

fn parse_tick(message: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(message).ok()?;
    let (seq, sent) = text.split_once(' ')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

/// What one server-streaming call delivered.
#[derive(Debug, Default)]
pub struct GrpcLog {
    pub status: Option<u16>,
    pub version: Option<http::Version>,
    pub content_type: Option<String>,
    pub headers: http::HeaderMap,
    /// (sequence, sent_us, arrived_us)
    pub messages: Vec<(u64, u64, u64)>,
    pub undecodable: Vec<String>,
    pub trailers: Option<http::HeaderMap>,
    pub trailers_arrived_us: Option<u64>,
    /// "end of stream" after the trailers, else what cut the call.
    pub ended: Option<String>,
    pub leftover_bytes: usize,
}

impl GrpcLog {
    pub fn delays(&self) -> Delays {
        Delays::from_stamps(self.messages.iter().copied())
    }

    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers
            .as_ref()?
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }

    /// How long after the upstream sent them the trailers arrived.
    pub fn trailers_delay(&self) -> Option<std::time::Duration> {
        let sent: u64 = self.trailer("x-sent-us")?.parse().ok()?;
        Some(std::time::Duration::from_micros(
            self.trailers_arrived_us?.saturating_sub(sent),
        ))
    }
}

/// Calls `WATCH_PATH` at `base` (`https://host:port`) as a gRPC client does: POST,
/// `content-type: application/grpc`, `te: trailers`, one request message; records into `log`
/// as things arrive.
pub async fn watch(
    client: reqwest::Client,
    base: String,
    headers: Vec<(String, String)>,
    count: u64,
    every_ms: u64,
    log: Arc<Mutex<GrpcLog>>,
) {
    let mut request = client
        .post(format!("{base}{WATCH_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame(format!("{count} {every_ms}").as_bytes()));
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            log.lock().unwrap().ended = Some(format!("error before headers: {e:?}"));
            return;
        }
    };
    {
        let mut l = log.lock().unwrap();
        l.status = Some(response.status().as_u16());
        l.version = Some(response.version());
        l.headers = response.headers().clone();
        l.content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string());
    }
    let mut body: reqwest::Body = response.into();
    let mut deframer = Deframer::default();
    loop {
        let frame = body.frame().await;
        let arrived = now_us();
        let mut l = log.lock().unwrap();
        match frame {
            None => {
                l.leftover_bytes = deframer.pending();
                l.ended = Some("end of stream".into());
                return;
            }
            Some(Err(e)) => {
                l.leftover_bytes = deframer.pending();
                l.ended = Some(format!("error: {e:?}"));
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    for message in deframer.push(&data) {
                        match parse_tick(&message) {
                            Some((seq, sent)) => l.messages.push((seq, sent, arrived)),
                            None => l
                                .undecodable
                                .push(String::from_utf8_lossy(&message).into_owned()),
                        }
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        l.trailers = Some(trailers);
                        l.trailers_arrived_us = Some(arrived);
                    }
                }
            },
        }
    }
}
