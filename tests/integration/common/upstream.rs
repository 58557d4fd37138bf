//! Upstream servers the tests start: plain text, SSE, WebSocket echo with server push, a slow
//! endpoint, and one that echoes request headers; for the stream tests also timestamped SSE
//! with heartbeats, gRPC server streaming, a large chunked download, a TLS flavour that speaks
//! h2 via ALPN, and a raw one that cuts its connection in the middle of a response.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Version};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::grpc;
use super::timing::now_us;

pub struct Upstream {
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        let runtime = runtime();
        let (listener, port) = bind(&runtime);
        let app = router(name);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream::running(port, runtime)
    }

    /// The same endpoints with TCP_NODELAY on every connection, as Node and Go servers set
    /// by default (per-event latency measurements must not include Nagle's algorithm).
    /// HTTP/1.1 and, by prior knowledge, h2c on one port.
    pub fn start_nodelay(name: &str) -> Upstream {
        let runtime = runtime();
        let (listener, port) = bind(&runtime);
        let app = router(name);
        runtime.spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
        Upstream::running(port, runtime)
    }

    /// The same endpoints over TLS with the test upstream certificate (`upstream.pem`, SANs
    /// `upstream.example.com`, `*.example.com`, `localhost`, `127.0.0.1`), offering h2 and
    /// http/1.1 by ALPN.
    pub fn start_tls(name: &str) -> Upstream {
        let runtime = runtime();
        let (listener, port) = bind(&runtime);
        let app = router(name);
        let config =
            super::tls::server_config("upstream.pem", "upstream-key.pem", &[b"h2", b"http/1.1"]);
        runtime.spawn(async move {
            let listener = super::tls::TlsListener::new(listener, config);
            let _ = axum::serve(listener, app).await;
        });
        Upstream::running(port, runtime)
    }

    fn running(port: u16, runtime: tokio::runtime::Runtime) -> Upstream {
        Upstream {
            port,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A listener on a port the OS picks, kept open (no other server can take it meanwhile).
fn bind(runtime: &tokio::runtime::Runtime) -> (tokio::net::TcpListener, u16) {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind upstream");
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn router(name: &str) -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/{*path}", get(hello))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/slow", get(slow))
        .route("/headers", get(headers))
        .route("/events", get(events))
        .route("/download", get(download))
        .route(grpc::WATCH_PATH, post(grpc_watch))
        .with_state(name.to_string())
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn hello(State(name): State<String>) -> String {
    format!("hello from {name}")
}

fn number(q: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `count` events numbered from 0, one every `every_ms`, each flushed as it is written;
/// `heartbeat_ms` adds comment lines between them.
async fn sse(
    Query(q): Query<HashMap<String, String>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let count = number(&q, "count", 100);
    let every = Duration::from_millis(number(&q, "every_ms", 100));
    let stream = futures_util::stream::unfold(0u64, move |i| async move {
        if i >= count {
            return None;
        }
        if i > 0 {
            // The pacing under test: one event per interval.
            tokio::time::sleep(every).await;
        }
        let sent_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        Some((
            Ok(Event::default()
                .id(i.to_string())
                .data(format!("{i} {sent_at}"))),
            i + 1,
        ))
    });
    Sse::new(stream)
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|socket: WebSocket| async move {
        let (mut tx, mut rx) = socket.split();
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<String>(64);
        let pusher = out_tx.clone();
        // Server push: a numbered message every 100 ms.
        let push = tokio::spawn(async move {
            let mut n = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if pusher.send(format!("push {n}")).await.is_err() {
                    return;
                }
                n += 1;
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if tx.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        });
        while let Some(Ok(message)) = rx.next().await {
            if let Message::Text(text) = message
                && out_tx.send(format!("echo {text}")).await.is_err()
            {
                break;
            }
        }
        push.abort();
        writer.abort();
    })
}

/// An upstream that stalls for `ms` before answering: the stall is the behaviour under test
/// (route timeouts, long polls).
async fn slow(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(number(&q, "ms", 1000))).await;
    "slow done"
}

async fn headers(headers: HeaderMap) -> impl IntoResponse {
    let map: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    axum::Json(map)
}

/// `count` SSE events, one every `every_ms`, with a `: heartbeat` comment halfway between
/// two events. Event N is `id: N` / `data: N <microseconds when it was handed to the
/// connection>`. The reply's headers say what the upstream saw: `x-upstream-version`,
/// `x-upstream-saw-assertion` (an identity assertion came along) and
/// `x-upstream-accept-encoding`. No caching or buffering headers of its own, so a route's
/// `set_response_headers` is what the client sees.
async fn events(
    version: Version,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let count = number(&q, "count", 100);
    let half = Duration::from_millis(number(&q, "every_ms", 200).max(2)) / 2;
    // Ticks alternate event, heartbeat, event, …, ending on the last event.
    let ticks = (2 * count).saturating_sub(1);
    let stream = futures_util::stream::unfold(
        (0u64, tokio::time::interval(half)),
        move |(tick, mut interval)| async move {
            if tick >= ticks {
                return None;
            }
            interval.tick().await;
            let text = if tick % 2 == 1 {
                ": heartbeat\n\n".to_string()
            } else {
                let id = tick / 2;
                format!("id: {id}\ndata: {id} {}\n\n", now_us())
            };
            Some((Ok::<_, Infallible>(Bytes::from(text)), (tick + 1, interval)))
        },
    );
    let saw = |name: &str| {
        headers
            .get(name)
            .cloned()
            .unwrap_or(HeaderValue::from_static(""))
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("x-upstream-version", format!("{version:?}"))
        .header(
            "x-upstream-saw-assertion",
            headers.contains_key("x-pomerium-jwt-assertion").to_string(),
        )
        .header("x-upstream-accept-encoding", saw("accept-encoding"))
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The byte at `offset` of a `/download` body made of `chunk`-sized blocks.
pub fn download_byte(offset: u64, chunk: u64) -> u8 {
    ((offset / chunk) % 251) as u8
}

/// `bytes` of data in `chunk`-sized blocks, block N filled with `N % 251`; no
/// Content-Length, so HTTP/1.1 sends it chunked. Produced as fast as the connection takes it.
async fn download(Query(q): Query<HashMap<String, String>>) -> Response {
    let total = number(&q, "bytes", 1 << 20);
    let chunk = number(&q, "chunk", 64 * 1024).max(1);
    let stream = futures_util::stream::unfold(0u64, move |sent| async move {
        if sent >= total {
            return None;
        }
        let n = chunk.min(total - sent);
        let block = vec![download_byte(sent, chunk); n as usize];
        Some((Ok::<_, Infallible>(Bytes::from(block)), sent + n))
    });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// gRPC server streaming (see `grpc::WATCH_PATH`): each tick is its own DATA frame, written
/// when it is made; the trailers follow the last tick at once. `x-upstream-version` says
/// which HTTP version the call arrived over.
async fn grpc_watch(version: Version, body: Bytes) -> Response {
    let request = grpc::Deframer::default().push(&body);
    let text = request
        .first()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let count = words.next().flatten().unwrap_or(10);
    let every = Duration::from_millis(words.next().flatten().unwrap_or(200).max(1));
    let frames = futures_util::stream::unfold(
        (0u64, tokio::time::interval(every)),
        move |(seq, mut interval)| async move {
            if seq > count {
                return None;
            }
            if seq == count {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                trailers.insert("x-sent-us", HeaderValue::from(now_us()));
                return Some((
                    Ok::<_, Infallible>(Frame::trailers(trailers)),
                    (seq + 1, interval),
                ));
            }
            interval.tick().await;
            let frame = Frame::data(grpc::tick(seq, now_us()));
            Some((Ok(frame), (seq + 1, interval)))
        },
    );
    Response::builder()
        .header("content-type", "application/grpc")
        .header("x-upstream-version", format!("{version:?}"))
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap()
}

/// A raw HTTP/1.1 upstream that answers every request with a chunked SSE response, sends
/// `events` events `every` apart, then drops the connection: no terminal chunk, no
/// graceful end. What a crashing or killed backend looks like to Envoy.
pub struct CuttingUpstream {
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl CuttingUpstream {
    pub fn start(events: u64, every: Duration) -> CuttingUpstream {
        let runtime = runtime();
        let (listener, port) = bind(&runtime);
        runtime.spawn(async move {
            loop {
                // A loopback listener that cannot accept is broken: stop, so the test fails
                // on the missing upstream rather than this loop spinning.
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(cut_after(tcp, events, every));
            }
        });
        CuttingUpstream {
            port,
            runtime: Some(runtime),
        }
    }
}

impl Drop for CuttingUpstream {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn cut_after(mut tcp: tokio::net::TcpStream, events: u64, every: Duration) {
    let _ = tcp.set_nodelay(true);
    // Read the request head (bounded), then answer.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let start =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    if tcp.write_all(start.as_bytes()).await.is_err() {
        return;
    }
    for id in 0..events {
        if id > 0 {
            // The pacing under test: one event per interval.
            tokio::time::sleep(every).await;
        }
        let event = format!("id: {id}\ndata: {id} {}\n\n", now_us());
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            return;
        }
    }
    // Dropping the socket closes it mid-body.
    drop(tcp);
}
