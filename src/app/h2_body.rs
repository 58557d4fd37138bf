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
/// Each chunk waits for room in the window before it is handed to h2, so a slow reader holds
/// back the service (an ADS stream's next push) instead of growing h2's buffer. Nothing is
/// reserved while the body has no data yet: an idle ADS stream pins no window.
pub async fn pipe(mut body: Body, mut stream: SendStream<Bytes>) {
    loop {
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
                    if !data.is_empty() && !wait_for_window(&mut stream).await {
                        return;
                    }
                    if stream.send_data(data, end).is_err() || end {
                        return;
                    }
                }
                Err(frame) => {
                    let mut trailers = frame.into_trailers().unwrap_or_else(|_| HeaderMap::new());
                    strip_connection_headers(&mut trailers);
                    if stream.send_trailers(trailers).is_err() {
                        stream.send_reset(Reason::INTERNAL_ERROR);
                    }
                    return;
                }
            },
        }
    }
}

/// Waits until the stream may send at least a byte; false once it cannot send at all (the
/// peer reset it or the connection went).
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

/// Removes the HTTP/1.1 connection headers HTTP/2 forbids (RFC 9113 §8.2.2), which h2 would
/// refuse the whole response for: a layer that adds `connection: close` must not turn an
/// answer into a reset.
pub fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [
        http::header::CONNECTION,
        http::header::TRANSFER_ENCODING,
        http::header::UPGRADE,
        http::header::HeaderName::from_static("keep-alive"),
        http::header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if headers
        .get(http::header::TE)
        .is_some_and(|te| te != "trailers")
    {
        headers.remove(http::header::TE);
    }
}

#[cfg(test)]
mod tests {
    use super::strip_connection_headers;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn connection_headers_are_removed_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("content-type", "text/html"),
            ("grpc-status", "0"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        strip_connection_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "grpc-status"]);
        let mut trailers_only = HeaderMap::new();
        trailers_only.insert("te", HeaderValue::from_static("trailers"));
        strip_connection_headers(&mut trailers_only);
        assert!(trailers_only.contains_key("te"), "te: trailers is allowed");
    }
}
