//! The stream probe sluice serves at `/.sluice/stream-probe` on every route host: an SSE
//! stream of numbered events, each carrying the time it was written, flushed one by one. A
//! client (`sluice probe`) compares send and arrival spacing to tell a streaming path from a
//! buffering one, whatever the clocks.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const DEFAULT_EVENTS: u64 = 20;
const MAX_EVENTS: u64 = 10_000;
const DEFAULT_INTERVAL_MS: u64 = 500;
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 10..=60_000;
/// Padding per event, to find hops that hold data until a size threshold (4 or 8 KiB).
const MAX_PADDING: usize = 64 * 1024;

struct Plan {
    events: u64,
    interval: Duration,
    padding: usize,
}

fn plan(query: &HashMap<String, String>) -> Plan {
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u64>().ok());
    Plan {
        events: number("events")
            .unwrap_or(DEFAULT_EVENTS)
            .clamp(1, MAX_EVENTS),
        interval: Duration::from_millis(
            number("interval_ms")
                .unwrap_or(DEFAULT_INTERVAL_MS)
                .clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end()),
        ),
        padding: number("padding")
            .map(|p| (p as usize).min(MAX_PADDING))
            .unwrap_or(0),
    }
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// One event's text: optional padding as an SSE comment, then id, type and JSON data.
pub fn event_text(seq: u64, of: u64, interval: Duration, padding: usize) -> String {
    let mut text = String::new();
    if padding > 0 {
        text.push_str(": ");
        text.push_str(&".".repeat(padding));
        text.push('\n');
    }
    text.push_str(&format!(
        "id: {seq}\nevent: probe\ndata: {{\"seq\":{seq},\"of\":{of},\"interval_ms\":{},\"sent_unix_us\":{}}}\n\n",
        interval.as_millis(),
        unix_micros()
    ));
    text
}

pub async fn stream_probe(Query(query): Query<HashMap<String, String>>) -> Response {
    let plan = plan(&query);
    let body = futures_util::stream::unfold(0u64, move |seq| async move {
        if seq > plan.events {
            return None;
        }
        if seq == plan.events {
            let done = format!("event: done\ndata: {{\"events\":{}}}\n\n", plan.events);
            return Some((Ok::<_, Infallible>(Bytes::from(done)), seq + 1));
        }
        if seq > 0 {
            tokio::time::sleep(plan.interval).await;
        }
        let text = event_text(seq, plan.events, plan.interval, plan.padding);
        Some((Ok(Bytes::from(text)), seq + 1))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_clamped_to_sane_bounds() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = plan(&q(&[]));
        assert_eq!(
            (p.events, p.interval, p.padding),
            (20, Duration::from_millis(500), 0)
        );
        let p = plan(&q(&[
            ("events", "999999"),
            ("interval_ms", "1"),
            ("padding", "9999999"),
        ]));
        assert_eq!(
            (p.events, p.interval, p.padding),
            (10_000, Duration::from_millis(10), 65_536)
        );
        let p = plan(&q(&[("events", "x"), ("interval_ms", "-5")]));
        assert_eq!((p.events, p.interval), (20, Duration::from_millis(500)));
        let text = event_text(3, 10, Duration::from_millis(200), 4);
        assert!(text.starts_with(": ....\nid: 3\nevent: probe\ndata: {\"seq\":3,\"of\":10,\"interval_ms\":200,\"sent_unix_us\":"));
        assert!(text.ends_with("}\n\n"));
    }
}
