//! The gRPC response body of an ADS stream: each message framed (flag byte, length) and sent
//! as chunks that share the snapshot's resource bytes, then the `grpc-status` trailer. Nothing
//! is buffered per stream beyond the messages in the stream's queue.

use std::iter::Peekable;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;
use tokio::sync::mpsc;
use tonic::Status;

use super::wire::{Chunks, WireMessage};

/// Small chunks (protobuf framing, a cluster of a few hundred bytes) are joined into body
/// frames of up to this size; larger ones go as they are. Every frame costs a slot in the
/// HTTP/2 connection's send queue, which keeps its largest size: 27,000 chunks of a full
/// cluster list would otherwise pin megabytes per Envoy.
const FRAME_TARGET: usize = 64 * 1024;

pub struct GrpcBody<R> {
    rx: mpsc::Receiver<Result<R, Status>>,
    /// The current message's chunks; dropped (with its buffer) once sent.
    pending: Peekable<std::vec::IntoIter<Bytes>>,
    finished: bool,
}

impl<R> GrpcBody<R> {
    pub fn new(rx: mpsc::Receiver<Result<R, Status>>) -> Self {
        GrpcBody {
            rx,
            pending: Vec::new().into_iter().peekable(),
            finished: false,
        }
    }
}

/// The next body frame: one large chunk, or consecutive small ones joined.
fn next_frame(pending: &mut Peekable<std::vec::IntoIter<Bytes>>) -> Option<Bytes> {
    let first = pending.next()?;
    let mut joined: Option<BytesMut> = None;
    loop {
        let len = joined.as_ref().map_or(first.len(), BytesMut::len);
        match pending.peek() {
            Some(next) if len + next.len() <= FRAME_TARGET => {}
            _ => break,
        }
        let Some(next) = pending.next() else { break };
        joined
            .get_or_insert_with(|| {
                let mut buf = BytesMut::with_capacity(FRAME_TARGET);
                buf.extend_from_slice(&first);
                buf
            })
            .extend_from_slice(&next);
    }
    Some(joined.map_or(first, BytesMut::freeze))
}

/// `grpc-status` (and `grpc-message`) trailers.
fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    if !status.message().is_empty() {
        let message = percent_encoding::utf8_percent_encode(
            status.message(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        if let Ok(value) = http::HeaderValue::from_str(&message) {
            map.insert("grpc-message", value);
        }
    }
    map
}

/// A message as gRPC frames it: one uncompressed-flag byte and a big-endian length first.
pub fn frame(message: &impl WireMessage) -> Vec<Bytes> {
    let len = message.encoded_len();
    let mut chunks = Chunks::default();
    message.chunks(&mut chunks);
    let mut parts = chunks.finish();
    let mut header = BytesMut::with_capacity(5);
    header.put_u8(0);
    header.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    parts.insert(0, header.freeze());
    parts
}

impl<R: WireMessage + Unpin> http_body::Body for GrpcBody<R> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(chunk) = next_frame(&mut this.pending) {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match std::task::ready!(this.rx.poll_recv(cx)) {
                Some(Ok(message)) => this.pending = frame(&message).into_iter().peekable(),
                Some(Err(status)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))));
                }
                None => {
                    this.finished = true;
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers(&Status::ok(""))))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: Vec<Bytes>) -> Vec<Bytes> {
        let mut pending = chunks.into_iter().peekable();
        std::iter::from_fn(|| next_frame(&mut pending)).collect()
    }

    #[test]
    fn small_chunks_are_joined_and_large_ones_pass_alone() {
        let small = |b: u8, n: usize| Bytes::from(vec![b; n]);
        let chunks = vec![
            small(1, 10),
            small(2, 20),
            small(3, FRAME_TARGET + 1),
            small(4, FRAME_TARGET - 5),
            small(5, 5),
            small(6, 1),
        ];
        let whole: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let out = frames(chunks);
        let lens: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(lens, [30, FRAME_TARGET + 1, FRAME_TARGET, 1]);
        let joined: Vec<u8> = out.iter().flat_map(|c| c.to_vec()).collect();
        assert_eq!(joined, whole, "bytes and order are kept");
        assert!(frames(Vec::new()).is_empty());
    }
}
