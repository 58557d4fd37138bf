//! Upstream servers the tests start: plain text, SSE, WebSocket echo with server push, a slow
//! endpoint, and one that echoes request headers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};

pub struct Upstream {
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind upstream");
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/", get(hello))
            .route("/{*path}", get(hello))
            .route("/sse", get(sse))
            .route("/ws", get(ws))
            .route("/slow", get(slow))
            .route("/headers", get(headers))
            .with_state(name.to_string());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            port,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
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
