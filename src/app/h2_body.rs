//! Bodies between h2's streams and the router's services: a request stream read as an
//! `http_body::Body`, and a response body written to a stream within its flow-control window.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::HeaderMap;
use http_body::Frame;
use http_body_util::BodyExt;
use tracing::debug;

/// A request stream's DATA frames, then its trailers. Each frame read is handed back to the
/// peer's window at once: the service holds it now, not h2.
pub struct RecvBody {
    stream: RecvStream,
    data_done: bool,
    done: bool,
}

impl RecvBody {
    pub fn new(stream: RecvStream) -> Self {
        RecvBody {
            stream,
            data_done: false,
            done: false,
        }
    }
}

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(this.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.data_done = true,
            }
        }
        let trailers = ready!(this.stream.poll_trailers(cx));
        this.done = true;
        Poll::Ready(trailers.transpose().map(|t| t.map(Frame::trailers)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.stream.is_end_stream()
    }
}

/// Writes `body` to `stream` until it ends, the peer resets the stream or the connection goes.
/// The next frame is only asked for once the window has room, so a slow reader holds back
/// the service (an ADS stream's next push) instead of growing h2's buffer.
pub async fn pipe(mut body: Body, mut stream: SendStream<Bytes>) {
    loop {
        if !wait_for_window(&mut stream).await {
            return;
        }
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = poll_fn(|cx| stream.poll_reset(cx)) => return,
        };
        match frame {
            None => {
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(e)) => {
                debug!(error = %e, "a response body failed; resetting its stream");
                stream.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                // h2 splits the chunk to the window and sends the rest as the window opens.
                Ok(data) => {
                    let end = http_body::Body::is_end_stream(&body);
                    if stream.send_data(data, end).is_err() || end {
                        return;
                    }
                }
                Err(frame) => {
                    let trailers = frame.into_trailers().unwrap_or_else(|_| HeaderMap::new());
                    let _ = stream.send_trailers(trailers);
                    return;
                }
            },
        }
    }
}

/// Waits until the stream may send at least a byte; false once it cannot send at all.
async fn wait_for_window(stream: &mut SendStream<Bytes>) -> bool {
    stream.reserve_capacity(1);
    while stream.capacity() == 0 {
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return false,
        }
    }
    true
}
