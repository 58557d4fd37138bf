//! A WebSocket conversation over TLS through Envoy, for a fixed time: the client sends a
//! numbered message at a steady pace and records the upstream's echoes (with round-trip
//! times) and its own numbered pushes, then closes cleanly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::timing::now_us;

#[derive(Debug, Default)]
pub struct WsLog {
    pub handshake: Option<String>,
    /// Server pushes "push N": (N, arrived_us).
    pub pushes: Vec<(u64, u64)>,
    pub sent: Vec<String>,
    /// Echoes in arrival order with their round-trip time in microseconds.
    pub echoes: Vec<(String, u64)>,
    pub unexpected: Vec<String>,
    /// Why the conversation ended early (None when it ran its time and closed cleanly).
    pub broken: Option<String>,
    pub closed_cleanly: bool,
}

pub struct Conversation {
    pub port: u16,
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub duration: Duration,
    pub send_every: Duration,
}

impl Conversation {
    pub async fn run(self, log: Arc<Mutex<WsLog>>) {
        let fail = |what: String| {
            log.lock().unwrap().broken = Some(what);
        };
        let tls = match super::tls::connect_http1(self.port, &self.host).await {
            Ok(tls) => tls,
            Err(e) => return fail(format!("TLS connect: {e}")),
        };
        let mut request = http::Request::builder()
            .uri(format!("wss://{}:{}{}", self.host, self.port, self.path))
            .header("host", format!("{}:{}", self.host, self.port))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header(
                "sec-websocket-key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            );
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let (socket, response) =
            match tokio_tungstenite::client_async(request.body(()).unwrap(), tls).await {
                Ok(pair) => pair,
                Err(e) => return fail(format!("handshake: {e}")),
            };
        log.lock().unwrap().handshake = Some(response.status().to_string());
        let (mut tx, mut rx) = socket.split();
        let mut sent_at: HashMap<String, u64> = HashMap::new();
        let mut pace = tokio::time::interval(self.send_every);
        // The session's length is part of the scenario: the client talks for `duration`.
        let stop = tokio::time::sleep(self.duration);
        tokio::pin!(stop);
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = pace.tick() => {
                    let text = format!("m{n}");
                    n += 1;
                    sent_at.insert(text.clone(), now_us());
                    log.lock().unwrap().sent.push(text.clone());
                    if let Err(e) = tx.send(Message::Text(text.into())).await {
                        return fail(format!("send: {e}"));
                    }
                }
                message = rx.next() => {
                    let arrived = now_us();
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            record(&log, &sent_at, text.as_str(), arrived)
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return fail(format!("the server closed: {frame:?}"))
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return fail(format!("receive: {e}")),
                        None => return fail("the connection ended".into()),
                    }
                }
            }
        }
        // Echoes of the last messages may still be on their way; a close sent now could reach
        // the server before it has written them. Wait for them (bounded), then close.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while log.lock().unwrap().echoes.len() < n as usize {
                match rx.next().await {
                    Some(Ok(Message::Text(text))) => {
                        record(&log, &sent_at, text.as_str(), now_us())
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        })
        .await;
        if let Err(e) = tx.send(Message::Close(None)).await {
            return fail(format!("send close: {e}"));
        }
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(message) = rx.next().await {
                match message {
                    Ok(Message::Text(text)) => record(&log, &sent_at, text.as_str(), now_us()),
                    Ok(Message::Close(_)) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            false
        })
        .await;
        log.lock().unwrap().closed_cleanly = drained == Ok(true);
    }
}

fn record(log: &Mutex<WsLog>, sent_at: &HashMap<String, u64>, text: &str, arrived: u64) {
    let mut l = log.lock().unwrap();
    if let Some(n) = text.strip_prefix("push ").and_then(|n| n.parse().ok()) {
        l.pushes.push((n, arrived));
    } else if let Some(echo) = text.strip_prefix("echo ") {
        let rtt = sent_at
            .get(echo)
            .map(|s| arrived.saturating_sub(*s))
            .unwrap_or(u64::MAX);
        l.echoes.push((echo.to_string(), rtt));
    } else {
        l.unexpected.push(text.to_string());
    }
}
