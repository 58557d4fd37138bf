//! Long-lived client streams through Envoy, recorded in the background: an SSE reader and a
//! WebSocket client that sends and receives while the test does other things.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};

/// What an SSE stream has delivered: event ids with their arrival times, and how it ended.
#[derive(Default)]
pub struct SseLog {
    pub events: Vec<(u64, Instant)>,
    pub ended: Option<String>,
}

pub struct SseWatch {
    pub log: Arc<Mutex<SseLog>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SseWatch {
    /// Opens `GET path` with `Accept: text/event-stream` on the Envoy listener.
    pub fn open(port: u16, host: &str, path: &str) -> SseWatch {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(SseLog::default()));
        let (url, host, sink) = (
            format!("http://127.0.0.1:{port}{path}"),
            host.to_string(),
            Arc::clone(&log),
        );
        runtime.spawn(async move {
            let client = reqwest::Client::builder().http1_only().build().unwrap();
            let response = client
                .get(&url)
                .header("host", host)
                .header("accept", "text/event-stream")
                .send()
                .await;
            let mut body = match response {
                Ok(r) if r.status() == 200 => r.bytes_stream(),
                Ok(r) => {
                    sink.lock().unwrap().ended = Some(format!("status {}", r.status()));
                    return;
                }
                Err(e) => {
                    sink.lock().unwrap().ended = Some(format!("error {e}"));
                    return;
                }
            };
            let mut buffer = String::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(bytes) => {
                        buffer.push_str(&String::from_utf8_lossy(&bytes));
                        while let Some(end) = buffer.find("\n\n") {
                            let event: String = buffer.drain(..end + 2).collect();
                            if let Some(id) = event
                                .lines()
                                .find_map(|l| l.strip_prefix("id:"))
                                .and_then(|v| v.trim().parse().ok())
                            {
                                sink.lock().unwrap().events.push((id, Instant::now()));
                            }
                        }
                    }
                    Err(e) => {
                        sink.lock().unwrap().ended = Some(format!("error {e}"));
                        return;
                    }
                }
            }
            sink.lock().unwrap().ended = Some("end of stream".into());
        });
        SseWatch {
            log,
            runtime: Some(runtime),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.log
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn ended(&self) -> Option<String> {
        self.log.lock().unwrap().ended.clone()
    }

    /// Waits (with a deadline) until at least `n` events arrived.
    pub fn wait_for(&self, n: usize, limit: Duration) -> bool {
        super::process::poll(limit, || (self.ids().len() >= n).then_some(())).is_some()
    }
}

impl Drop for SseWatch {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A WebSocket through Envoy: records server pushes and echoes of what it sends.
pub struct WsWatch {
    pub pushes: Arc<Mutex<Vec<u64>>>,
    pub echoes: Arc<Mutex<Vec<String>>>,
    pub ended: Arc<Mutex<Option<String>>>,
    send: tokio::sync::mpsc::UnboundedSender<String>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl WsWatch {
    pub fn open(port: u16, host: &str, path: &str) -> WsWatch {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let request = http::Request::builder()
            .uri(format!("ws://127.0.0.1:{port}{path}"))
            .header("host", host)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header(
                "sec-websocket-key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
            .body(())
            .unwrap();
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(request))
            .expect("WebSocket handshake through Envoy");
        let (mut tx, mut rx) = socket.split();
        let (send, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<String>();
        let pushes: Arc<Mutex<Vec<u64>>> = Arc::default();
        let echoes: Arc<Mutex<Vec<String>>> = Arc::default();
        let ended: Arc<Mutex<Option<String>>> = Arc::default();
        runtime.spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if tx
                    .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let (p, e, end) = (Arc::clone(&pushes), Arc::clone(&echoes), Arc::clone(&ended));
        runtime.spawn(async move {
            while let Some(message) = rx.next().await {
                match message {
                    Ok(tokio_tungstenite::tungstenite::Message::Text(text)) => {
                        if let Some(n) = text.strip_prefix("push ").and_then(|n| n.parse().ok()) {
                            p.lock().unwrap().push(n);
                        } else if let Some(echo) = text.strip_prefix("echo ") {
                            e.lock().unwrap().push(echo.to_string());
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        *end.lock().unwrap() = Some(format!("error {err}"));
                        return;
                    }
                }
            }
            *end.lock().unwrap() = Some("closed".into());
        });
        WsWatch {
            pushes,
            echoes,
            ended,
            send,
            runtime: Some(runtime),
        }
    }

    pub fn send(&self, text: &str) {
        let _ = self.send.send(text.to_string());
    }

    pub fn pushes(&self) -> Vec<u64> {
        self.pushes.lock().unwrap().clone()
    }

    pub fn echoes(&self) -> Vec<String> {
        self.echoes.lock().unwrap().clone()
    }

    pub fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap().clone()
    }
}

impl Drop for WsWatch {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether ids are exactly 0, 1, 2, … with nothing lost or repeated.
pub fn consecutive(ids: &[u64]) -> bool {
    ids.iter().enumerate().all(|(i, id)| *id == i as u64)
}
