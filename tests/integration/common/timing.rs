//! Wall-clock stamps shared by upstreams and clients in the test process, and the per-message
//! delays computed from them (sent by the upstream → arrived at the client).

use std::fmt::Write as _;
use std::time::Duration;

/// Microseconds since the Unix epoch. Upstreams write it into what they send; clients take it
/// again on arrival. Both run in this process, so the two readings share one clock.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// Delays of one kind of message on one stream, each labelled (an event id, a message number).
#[derive(Clone, Debug, Default)]
pub struct Delays {
    pub samples: Vec<(u64, Duration)>,
}

impl Delays {
    /// From (label, sent_us, arrived_us); a negative difference (it cannot happen on one clock,
    /// but a clock step would cause it) counts as zero.
    pub fn from_stamps(stamps: impl IntoIterator<Item = (u64, u64, u64)>) -> Delays {
        Delays {
            samples: stamps
                .into_iter()
                .map(|(label, sent, arrived)| {
                    (label, Duration::from_micros(arrived.saturating_sub(sent)))
                })
                .collect(),
        }
    }

    pub fn max(&self) -> Duration {
        self.samples
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// The `n` slowest, slowest first.
    pub fn worst(&self, n: usize) -> Vec<(u64, Duration)> {
        let mut all = self.samples.clone();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut all: Vec<Duration> = self.samples.iter().map(|(_, d)| *d).collect();
        if all.is_empty() {
            return Duration::ZERO;
        }
        all.sort();
        let rank = ((p / 100.0) * (all.len() - 1) as f64).round() as usize;
        all[rank.min(all.len() - 1)]
    }

    /// Those above `limit`.
    pub fn over(&self, limit: Duration) -> Vec<(u64, Duration)> {
        self.samples
            .iter()
            .filter(|(_, d)| *d > limit)
            .copied()
            .collect()
    }

    /// `n=300 p50=0.41ms p99=1.20ms max=3.05ms worst: #17 3.05ms, #230 2.10ms, #4 1.90ms`
    pub fn summary(&self) -> String {
        let mut text = format!(
            "n={} p50={} p99={} max={} worst:",
            self.samples.len(),
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.max())
        );
        for (i, (label, d)) in self.worst(5).iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(text, "{sep}#{label} {}", ms(*d));
        }
        text
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}
