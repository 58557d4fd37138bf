//! The gRPC response body of an ADS stream: each message framed (flag byte, length) and sent
//! as chunks that share the snapshot's resource bytes, then the `grpc-status` trailer. Nothing
//! is buffered per stream beyond the messages in the stream's queue.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;
use tokio::sync::mpsc;
use tonic::Status;

use super::wire::{Chunks, WireMessage};

pub struct GrpcBody<R> {
    rx: mpsc::Receiver<Result<R, Status>>,
    pending: VecDeque<Bytes>,
    finished: bool,
}

impl<R> GrpcBody<R> {
    pub fn new(rx: mpsc::Receiver<Result<R, Status>>) -> Self {
        GrpcBody {
            rx,
            pending: VecDeque::new(),
            finished: false,
        }
    }
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
            if let Some(chunk) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match std::task::ready!(this.rx.poll_recv(cx)) {
                Some(Ok(message)) => this.pending.extend(frame(&message)),
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
