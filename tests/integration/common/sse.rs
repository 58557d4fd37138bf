//! An SSE client that records, for every event, the microsecond the upstream sent it (carried
//! in the event) and the microsecond it arrived here; heartbeat comments are counted. It runs
//! as a task on a runtime the test owns and exposes what it has seen so far, so a test can
//! watch several streams at once while it does other things.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::timing::{Delays, now_us};

#[derive(Clone, Copy, Debug)]
pub struct SseEvent {
    pub id: u64,
    pub sent_us: u64,
    pub arrived_us: u64,
}

#[derive(Debug, Default)]
pub struct SseLog {
    pub status: Option<u16>,
    pub version: Option<http::Version>,
    pub headers: http::HeaderMap,
    pub opened_us: u64,
    pub events: Vec<SseEvent>,
    pub heartbeats: u64,
    /// Blocks that were neither an event in the test format nor a comment.
    pub malformed: Vec<String>,
    /// "end of stream", "error: …" or "status N: body"; None while it is open.
    pub ended: Option<String>,
    pub ended_us: u64,
}

impl SseLog {
    pub fn delays(&self) -> Delays {
        Delays::from_stamps(self.events.iter().map(|e| (e.id, e.sent_us, e.arrived_us)))
    }

    pub fn ids(&self) -> Vec<u64> {
        self.events.iter().map(|e| e.id).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the events are exactly 0..expected, each once, in order; else what is wrong.
    pub fn sequence_problem(&self, expected: u64) -> Option<String> {
        let ids = self.ids();
        let wrong = ids.iter().enumerate().find(|(i, id)| **id != *i as u64);
        if let Some((i, id)) = wrong {
            let from = i.saturating_sub(3);
            return Some(format!(
                "event #{i} has id {id} (ids around it: {:?}): lost, repeated or reordered",
                &ids[from..(i + 4).min(ids.len())]
            ));
        }
        (ids.len() as u64 != expected)
            .then(|| format!("{} events arrived, {expected} were sent", ids.len()))
    }

    /// Seconds from opening the stream to the last event.
    pub fn span(&self) -> Duration {
        let last = self.events.last().map(|e| e.arrived_us).unwrap_or(0);
        Duration::from_micros(last.saturating_sub(self.opened_us))
    }
}

/// One SSE stream being read in the background.
pub struct LiveSse {
    pub log: Arc<Mutex<SseLog>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl LiveSse {
    /// Sends `request` (the caller sets URL and credentials; `Accept: text/event-stream` is
    /// added) on `runtime` and records what comes back.
    pub fn spawn(runtime: &tokio::runtime::Handle, request: reqwest::RequestBuilder) -> LiveSse {
        let log = Arc::new(Mutex::new(SseLog::default()));
        let task = runtime.spawn(record(
            request.header("accept", "text/event-stream"),
            Arc::clone(&log),
        ));
        LiveSse { log, task }
    }

    pub fn ended(&self) -> Option<String> {
        self.log.lock().unwrap().ended.clone()
    }

    /// Waits (with a deadline) until `n` events arrived; false if the stream ended first or
    /// time ran out.
    pub fn wait_events(&self, n: usize, limit: Duration) -> bool {
        super::process::poll(limit, || {
            let log = self.log.lock().unwrap();
            if log.events.len() >= n {
                Some(true)
            } else {
                log.ended.is_some().then_some(false)
            }
        })
        .unwrap_or(false)
    }
}

pub async fn record(request: reqwest::RequestBuilder, log: Arc<Mutex<SseLog>>) {
    log.lock().unwrap().opened_us = now_us();
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let mut l = log.lock().unwrap();
            l.ended = Some(format!("error before headers: {e:?}"));
            l.ended_us = now_us();
            return;
        }
    };
    let status = response.status().as_u16();
    {
        let mut l = log.lock().unwrap();
        l.status = Some(status);
        l.version = Some(response.version());
        l.headers = response.headers().clone();
    }
    if status != 200 {
        let body = response.text().await.unwrap_or_default();
        let mut l = log.lock().unwrap();
        l.ended = Some(format!("status {status}: {}", body.trim()));
        l.ended_us = now_us();
        return;
    }
    let mut buffer = String::new();
    loop {
        let chunk = response.chunk().await;
        let arrived = now_us();
        let mut l = log.lock().unwrap();
        match chunk {
            Ok(Some(bytes)) => {
                buffer.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    parse_block(block.trim_end(), arrived, &mut l);
                }
            }
            Ok(None) => {
                l.ended = Some("end of stream".into());
                l.ended_us = arrived;
                if !buffer.is_empty() {
                    l.malformed
                        .push(format!("unterminated at the end: {buffer:?}"));
                }
                return;
            }
            Err(e) => {
                l.ended = Some(format!("error: {e:?}"));
                l.ended_us = arrived;
                return;
            }
        }
    }
}

/// An event `id: N` / `data: N SENT_US`, or comment lines only (a heartbeat).
fn parse_block(block: &str, arrived_us: u64, log: &mut SseLog) {
    if block.lines().all(|l| l.starts_with(':')) {
        log.heartbeats += 1;
        return;
    }
    let field = |name: &str| {
        block
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let parsed = (|| {
        let id: u64 = field("id:")?.parse().ok()?;
        let data = field("data:")?;
        let (data_id, sent) = data.split_once(' ')?;
        (data_id.parse::<u64>().ok()? == id).then_some(())?;
        Some(SseEvent {
            id,
            sent_us: sent.parse().ok()?,
            arrived_us,
        })
    })();
    match parsed {
        Some(event) => log.events.push(event),
        None => log.malformed.push(block.to_string()),
    }
}
