//! One HTTP/2 connection of sluice's gRPC port, driven on h2 directly: Envoy's ext_authz
//! Checks are answered inside the connection's own task, every other stream (ADS, status,
//! health, sign-in) goes to the router in a task of its own.
//!
//! Why not hyper's server and tonic's unary handler: they spawn a task per stream, wake it
//! from the connection's task and back, and carry every Check through a boxed service,
//! codec and body stack. With a do-nothing Check service on one pinned core, serving it this
//! way took 61 % of the core for 34,000 Checks/s where tonic took 91 % for 37,000
//! (`cargo bench --bench authz`, 8 in flight). Answering in the connection's task also
//! writes every Check answered in one wake-up with one `write`.

use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, error};

use super::h2_body::{RecvBody, pipe, strip_connection_headers};
use crate::authz::AuthzService;
use crate::authz::server::{self, CHECK_PATH, Code, MAX_CHECK_BYTES, Reply};

/// Concurrent streams one HTTP/2 connection may carry. Envoy sends every ext_authz check of a
/// worker over one connection, so a burst of stream opens (thousands of SSE clients after a
/// restart) is that many concurrent Checks. hyper's default of 200 made the server refuse the
/// rest, and Envoy answered those requests 503.
pub const MAX_CONCURRENT_STREAMS: u32 = 65_536;

/// What each connection serves.
#[derive(Clone)]
pub struct Services {
    pub authz: Arc<AuthzService>,
    pub rest: Router,
}

/// The connection's h2 settings: hyper's server defaults (which sluice served with before),
/// and the stream limit above.
fn settings() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 20)
        .max_frame_size(16 << 10)
        .max_header_list_size(16 << 10)
        .max_local_error_reset_streams(Some(1024))
        .max_send_buffer_size(400 << 10)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    builder
}

/// Serves one connection until the peer closes it, or, once `stop` turns true, until its
/// open streams finish after a GOAWAY.
pub async fn serve<T>(io: T, services: &Services, mut stop: watch::Receiver<bool>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut connection = match settings().handshake::<_, Bytes>(io).await {
        Ok(connection) => connection,
        Err(e) => {
            debug!(error = %e, "an HTTP/2 handshake failed");
            return;
        }
    };
    let mut checks = FuturesUnordered::new();
    let mut stopping = false;
    loop {
        // Ready Checks run before the connection is polled again, so their answers leave in
        // one write.
        tokio::select! {
            biased;
            _ = stopped(&mut stop), if !stopping => {
                stopping = true;
                connection.graceful_shutdown();
            }
            Some(()) = checks.next(), if !checks.is_empty() => {}
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let path = request.uri().path();
                    let (check, authorization) = (path == CHECK_PATH, server::is_authorization(path));
                    if check {
                        checks.push(answer_check(&services.authz, request.into_body(), respond));
                    } else if authorization {
                        send_reply(respond, Reply::Status(Code::Unimplemented, "the Authorization service has only Check"));
                    } else {
                        tokio::spawn(serve_other(services.rest.clone(), request, respond));
                    }
                }
                Some(Err(e)) => {
                    debug!(error = %e, "an HTTP/2 connection failed");
                    return;
                }
                None => return,
            },
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Reads one Check's body, answers it and writes the answer. A Check whose stream the peer
/// resets first (Envoy's ext_authz timeout) is dropped where it stands: nobody waits for it.
async fn answer_check(service: &AuthzService, body: RecvStream, mut respond: SendResponse<Bytes>) {
    let answered = async {
        match read_body(body).await {
            Ok(body) => Some(
                AssertUnwindSafe(server::check(service, body))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        error!("answering a Check panicked; it gets a gRPC error");
                        Reply::Status(Code::Internal, "the Check could not be answered")
                    }),
            ),
            Err(refused) => refused,
        }
    };
    // Biased: a Check answered on its first poll never looks for a reset.
    let reply = tokio::select! {
        biased;
        reply = answered => reply,
        _ = poll_fn(|cx| respond.poll_reset(cx)) => None,
    };
    if let Some(reply) = reply {
        send_reply(respond, reply);
    }
}

/// A request body whole, up to [`MAX_CHECK_BYTES`] and its prefix. A body of one DATA frame
/// (a Check as Envoy sends it) is returned as it came, without a copy. `Err(None)`: the peer
/// reset the stream or the connection went, so there is nobody to answer.
async fn read_body(mut body: RecvStream) -> Result<Bytes, Option<Reply>> {
    let too_large = || {
        Some(Reply::Status(
            Code::ResourceExhausted,
            "the CheckRequest is larger than 4 MiB",
        ))
    };
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(data) = body.data().await {
        let data = data.map_err(|_| None)?;
        let _ = body.flow_control().release_capacity(data.len());
        let length = first.as_ref().map_or(0, Bytes::len) + joined.len() + data.len();
        if length > MAX_CHECK_BYTES + 5 {
            return Err(too_large());
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
        // A prefix that declares more than the limit is refused before the rest arrives.
        let so_far: &[u8] = first.as_deref().unwrap_or(&joined);
        if let Some(declared) = so_far.get(1..5) {
            let declared = u32::from_be_bytes([declared[0], declared[1], declared[2], declared[3]]);
            if declared as usize > MAX_CHECK_BYTES {
                return Err(too_large());
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// `application/grpc`, the content type of every gRPC response.
fn grpc_head(status: Option<Code>) -> Response<()> {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    if let Some(code) = status {
        headers.insert("grpc-status", HeaderValue::from(code as u16));
    }
    response
}

/// Writes a gRPC reply: headers, the message, `grpc-status: 0` in the trailers; or a status
/// alone in the headers. h2 queues the frames; the connection's next poll writes them.
fn send_reply(mut respond: SendResponse<Bytes>, reply: Reply) {
    match reply {
        Reply::Message(message) => {
            let Ok(mut stream) = respond.send_response(grpc_head(None), false) else {
                return;
            };
            if stream.send_data(message, false).is_ok() {
                let mut trailers = HeaderMap::with_capacity(1);
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                let _ = stream.send_trailers(trailers);
            }
        }
        Reply::Status(code, message) => {
            let mut head = grpc_head(Some(code));
            head.headers_mut()
                .insert("grpc-message", HeaderValue::from_static(message));
            let _ = respond.send_response(head, true);
        }
    }
}

/// Any stream that is not a Check: the router answers it and its body is written as it comes.
async fn serve_other(rest: Router, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let request = request.map(|body| Body::new(RecvBody::new(body)));
    let response = tokio::select! {
        response = rest.oneshot(request) => match response {
            Ok(response) => response,
            Err(never) => match never {},
        },
        // Reset before the answer was ready (an Envoy that went away): stop working on it.
        _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
    };
    let (mut head, body) = response.into_parts();
    strip_connection_headers(&mut head.headers);
    let head = Response::from_parts(head, ());
    let end = http_body::Body::is_end_stream(&body);
    match respond.send_response(head, end) {
        Ok(stream) if !end => pipe(body, stream).await,
        Ok(_) => {}
        Err(e) => {
            debug!(error = %e, "a response could not be sent; resetting its stream");
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
        }
    }
}
