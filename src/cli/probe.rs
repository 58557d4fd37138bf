//! `sluice probe URL`: reads an SSE stream, prints when each event arrived and how late it
//! was, and says whether the path streams or buffers. Against sluice's own
//! `/.sluice/stream-probe` the events carry their send times, so lateness is measured exactly
//! (relative to the first event, so the two clocks need not agree); other SSE streams are
//! judged by their arrival spacing alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;

/// Events that arrive closer together than this came in one burst.
const BURST_GAP: Duration = Duration::from_millis(10);
/// Send spacing above which a burst cannot be the sender's doing.
const SPREAD_SENDS: Duration = Duration::from_millis(50);

pub struct Options {
    pub url: String,
    pub events: u64,
    pub interval_ms: Option<u64>,
    pub headers: Vec<String>,
    pub cacert: Option<PathBuf>,
    pub resolve: Vec<String>,
    pub timeout: Duration,
}

/// One event as the client saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    /// Since the request was sent.
    pub at: Duration,
    /// The sender's clock when it wrote the event (sluice's probe only), in microseconds.
    pub sent_us: Option<u128>,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Streaming,
    /// `count` events arrived together, `after` the request was sent.
    Buffered {
        count: usize,
        after: Duration,
    },
    NoEvents,
}

/// How late each event is relative to the first: (arrival spacing) − (send spacing).
pub fn lags(events: &[Arrival]) -> Vec<Option<Duration>> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    events
        .iter()
        .map(|e| {
            let (Some(sent), Some(sent0)) = (e.sent_us, first.sent_us) else {
                return None;
            };
            let sent_gap = Duration::from_micros(sent.saturating_sub(sent0) as u64);
            Some(e.at.saturating_sub(first.at).saturating_sub(sent_gap))
        })
        .collect()
}

/// The largest run of events that arrived back to back although they were not sent so.
pub fn verdict(events: &[Arrival]) -> Verdict {
    if events.is_empty() {
        return Verdict::NoEvents;
    }
    let mut best = (1usize, events[0].at);
    let mut run = 1usize;
    for pair in events.windows(2) {
        let arrived_together = pair[1].at.saturating_sub(pair[0].at) < BURST_GAP;
        let sent_apart = match (pair[0].sent_us, pair[1].sent_us) {
            (Some(a), Some(b)) => Duration::from_micros(b.saturating_sub(a) as u64) >= SPREAD_SENDS,
            // Unknown send times: only a run of three or more counts (below).
            _ => true,
        };
        if arrived_together && sent_apart {
            run += 1;
            if run > best.0 {
                best = (run, pair[1].at);
            }
        } else {
            run = 1;
        }
    }
    let known = events.iter().all(|e| e.sent_us.is_some());
    let enough = if known { 2 } else { 3 };
    if best.0 >= enough {
        Verdict::Buffered {
            count: best.0,
            after: best.1,
        }
    } else {
        Verdict::Streaming
    }
}

/// Parses complete SSE events out of `buffer`, leaving a partial one in place. Returns each
/// event's `data` (lines joined), skipping comments.
fn take_events(buffer: &mut String) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    loop {
        let normalized = buffer.replace("\r\n", "\n");
        if normalized.len() != buffer.len() {
            *buffer = normalized;
        }
        let Some(end) = buffer.find("\n\n") else {
            return out;
        };
        let block: String = buffer.drain(..end + 2).collect();
        let (mut kind, mut data) = (None, Vec::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                kind = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
        // A block of comments only (heartbeats, padding) is not an event.
        if kind.is_some() || !data.is_empty() {
            out.push((kind, data.join("\n")));
        }
    }
}

fn sent_us(data: &str) -> Option<u128> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value.get("sent_unix_us")?.as_u64().map(u128::from)
}

fn client(options: &Options) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("sluice-probe/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.cacert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM bundle", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    for r in &options.resolve {
        // HOST:PORT:ADDRESS, as curl's --resolve.
        let mut parts = r.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("--resolve `{r}` is not HOST:PORT:ADDRESS");
        };
        let port: u16 = port
            .parse()
            .with_context(|| format!("--resolve `{r}`: bad port"))?;
        let ip: std::net::IpAddr = addr
            .trim_matches(['[', ']'])
            .parse()
            .with_context(|| format!("--resolve `{r}`: bad address"))?;
        builder = builder.resolve(host, SocketAddr::new(ip, port));
    }
    Ok(builder.build()?)
}

/// Asks sluice's probe for the number of events wanted, unless the URL says otherwise.
fn probe_url(options: &Options) -> anyhow::Result<url::Url> {
    let mut url =
        url::Url::parse(&options.url).with_context(|| format!("`{}` is not a URL", options.url))?;
    if url.path() == crate::ir::names::STREAM_PROBE_PATH {
        let has = |k: &str| url.query_pairs().any(|(key, _)| key == k);
        let (events, interval) = (has("events"), has("interval_ms"));
        let mut pairs = url.query_pairs_mut();
        if !events {
            pairs.append_pair("events", &options.events.to_string());
        }
        if let (false, Some(ms)) = (interval, options.interval_ms) {
            pairs.append_pair("interval_ms", &ms.to_string());
        }
    }
    Ok(url)
}

pub fn probe(options: Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> anyhow::Result<ExitCode> {
    let url = probe_url(&options)?;
    let mut request = client(&options)?
        .get(url.clone())
        .header("accept", "text/event-stream");
    for h in &options.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("--header `{h}` is not `Name: value`"))?;
        request = request.header(k.trim(), v.trim());
    }
    let start = Instant::now();
    let response = match tokio::time::timeout(options.timeout, request.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => bail!("GET {url}: {}", with_causes(&e)),
        Err(_) => bail!("GET {url}: no response within {:?}", options.timeout),
    };
    let status = response.status();
    println!(
        "GET {url}\n  {status} over {:?} after {:.3} s; content-type: {}",
        response.version(),
        start.elapsed().as_secs_f64(),
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    );
    if !status.is_success() {
        println!("verdict: no stream (the server answered {status})");
        return Ok(ExitCode::from(2));
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events: Vec<Arrival> = Vec::new();
    let mut ended = "the stream ended";
    println!(
        "  {:>5}  {:>9}  {:>9}  {:>9}",
        "event", "arrived", "gap", "late by"
    );
    let deadline = tokio::time::Instant::now() + options.timeout;
    'read: while (events.len() as u64) < options.events {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => {
                ended = "the time limit was reached";
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                println!("  the stream failed: {}", with_causes(&e));
                ended = "the stream failed";
                break;
            }
            Ok(Some(Ok(bytes))) => bytes,
        };
        let at = start.elapsed();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        for (kind, data) in take_events(&mut buffer) {
            if kind.as_deref() == Some("done") {
                break 'read;
            }
            events.push(Arrival {
                at,
                sent_us: sent_us(&data),
            });
            print_event(&events);
            if events.len() as u64 >= options.events {
                break 'read;
            }
        }
    }
    if (events.len() as u64) < options.events {
        println!("  {ended} after {} event(s)", events.len());
    }
    Ok(report(&events))
}

/// An error and everything that caused it, on one line (reqwest's own text hides the cause).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn print_event(events: &[Arrival]) {
    let i = events.len() - 1;
    let e = &events[i];
    let gap = (i > 0).then(|| e.at.saturating_sub(events[i - 1].at));
    let late = lags(events)[i];
    let ms = |d: Option<Duration>| match d {
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        None => "-".into(),
    };
    println!(
        "  {i:>5}  {:>7.3} s  {:>9}  {:>9}",
        e.at.as_secs_f64(),
        ms(gap),
        ms(late)
    );
}

fn report(events: &[Arrival]) -> ExitCode {
    let worst = lags(events).into_iter().flatten().max();
    match verdict(events) {
        Verdict::Streaming => {
            match worst {
                Some(w) => println!(
                    "verdict: streaming ({} events, the latest {:.1} ms behind its send time)",
                    events.len(),
                    w.as_secs_f64() * 1000.0
                ),
                None => println!(
                    "verdict: streaming ({} events, none arrived in a burst)",
                    events.len()
                ),
            }
            ExitCode::SUCCESS
        }
        Verdict::Buffered { count, after } => {
            println!(
                "verdict: buffered: {count} events arrived together after {:.1} s",
                after.as_secs_f64()
            );
            if events.iter().any(|e| e.sent_us.is_none()) {
                println!(
                    "  (these events carry no send times: if the server wrote them together this is expected; probe {} on the same host to be sure)",
                    crate::ir::names::STREAM_PROBE_PATH
                );
            }
            ExitCode::FAILURE
        }
        Verdict::NoEvents => {
            println!("verdict: no events arrived");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn probe_events(arrivals_ms: &[u64], every_ms: u64) -> Vec<Arrival> {
        arrivals_ms
            .iter()
            .enumerate()
            .map(|(i, a)| Arrival {
                at: ms(*a),
                sent_us: Some(1_000_000_000 + (i as u128) * u128::from(every_ms) * 1000),
            })
            .collect()
    }

    #[test]
    fn spaced_arrivals_stream() {
        let events = probe_events(&[5, 505, 1006, 1504, 2005], 500);
        assert_eq!(verdict(&events), Verdict::Streaming);
        let lags = lags(&events);
        assert_eq!(lags[0], Some(Duration::ZERO));
        assert_eq!(lags[2], Some(ms(1)));
        assert_eq!(lags[3], Some(Duration::ZERO), "early is not late");
    }

    #[test]
    fn a_burst_of_spread_sends_is_buffering() {
        // Sent every 500 ms, held by a proxy and released together at 2 s.
        let events = probe_events(&[2000, 2001, 2001, 2002, 2500], 500);
        assert_eq!(
            verdict(&events),
            Verdict::Buffered {
                count: 4,
                after: ms(2002)
            }
        );
        assert_eq!(lags(&events)[4], Some(Duration::ZERO));
        assert_eq!(
            lags(&events)[1],
            Some(Duration::ZERO),
            "relative to the (late) first event"
        );
    }

    #[test]
    fn without_send_times_two_close_events_are_not_enough() {
        let unknown = |a: &[u64]| -> Vec<Arrival> {
            a.iter()
                .map(|a| Arrival {
                    at: ms(*a),
                    sent_us: None,
                })
                .collect()
        };
        assert_eq!(
            verdict(&unknown(&[100, 105, 600, 1100])),
            Verdict::Streaming
        );
        assert_eq!(
            verdict(&unknown(&[3000, 3001, 3002, 3003])),
            Verdict::Buffered {
                count: 4,
                after: ms(3003)
            }
        );
        assert_eq!(verdict(&[]), Verdict::NoEvents);
    }

    #[test]
    fn sse_parsing_handles_crlf_comments_and_partial_events() {
        let mut buffer = String::from(
            ": heartbeat\n\nid: 1\r\nevent: probe\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: part",
        );
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            vec![
                (Some("probe".into()), "{\"a\":1}".into()),
                (None, "x\ny".into())
            ]
        );
        assert_eq!(buffer, "data: part");
    }
}
