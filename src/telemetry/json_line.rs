//! JSON log lines written straight into the line buffer, in the layout of
//! `tracing_subscriber`'s flattened JSON (`timestamp`, `level`, the event's fields, `target`).
//!
//! Why not that formatter: it sends every field through serde_json into an `io::Write`
//! adaptor that re-checks each fragment as UTF-8 on its way back into a `String`; for the
//! one-line-per-decision ext_authz log that was most of the line's cost (a tenth of the
//! thread answering Check in a profile). Here strings are escaped and appended as they are.
//! sluice opens no spans, so none are written (tracing's `span`/`spans` keys never appear).

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter: one JSON object per line.
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate carry their real target in fields; tracing's
        // formatter reports that one, and so does this.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(level_name(*meta.level()))?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// A field's value in a line written without tracing (see [`write_info_line`]).
#[derive(Clone, Copy)]
pub enum FieldValue<'a> {
    Str(&'a str),
    U64(u64),
    /// Text formatted straight into the line (an address, a URL), as tracing's `%value`.
    Display(&'a dyn fmt::Display),
}

/// An info line as [`JsonLine`] writes a tracing event with this message, these fields (the
/// `None`s left out, as tracing leaves out an absent `Option`) and this target, appended to
/// `out` with its newline.
pub fn write_info_line(
    out: &mut String,
    message: &str,
    fields: &[(&str, Option<FieldValue<'_>>)],
    target: &str,
) {
    // Writing into a String cannot fail.
    let _ = (|| {
        out.write_str("{\"timestamp\":\"")?;
        write_timestamp(out)?;
        out.write_str("\",\"level\":\"INFO\",\"message\":")?;
        write_string(out, message)?;
        for (name, value) in fields {
            let Some(value) = value else { continue };
            out.write_char(',')?;
            write_string(out, name)?;
            out.write_char(':')?;
            match value {
                FieldValue::Str(text) => write_string(out, text)?,
                FieldValue::U64(n) => write!(out, "{n}")?,
                FieldValue::Display(shown) => {
                    out.write_char('"')?;
                    write!(Escaped(&mut *out), "{shown}")?;
                    out.write_char('"')?
                }
            }
        }
        out.write_str(",\"target\":")?;
        write_string(out, target)?;
        out.write_str("}\n")
    })();
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

thread_local! {
    /// The second last written by this thread, and its text up to the seconds.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Now, as tracing's `SystemTime` timer writes it (`2026-12-07T11:25:25.123456Z`, UTC). The
/// text up to the second is formatted once a second per thread: formatting the whole date for
/// every line was about a sixth of the decision log line's cost in a profile.
fn write_timestamp(out: &mut impl Write) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            *second = (secs, to_the_second(secs));
        }
        out.write_str(&second.1)?;
        write!(out, ".{micros:06}Z")
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, UTC.
fn to_the_second(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Appends each field as `,"name":value`; the first write error stops the rest.
struct Fields<'w, W: Write> {
    out: &'w mut W,
    result: fmt::Result,
}

impl<W: Write> Fields<'_, W> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.out.write_char(',')?;
                write_string(self.out, field.name())?;
                self.out.write_char(':')?;
                value(self.out)
            })();
        }
    }
}

impl<W: Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |out| write_string(out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes null for them too.
        self.entry(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// A JSON string: quoted, escaped.
fn write_string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Writes what it is given escaped for the inside of a JSON string: quotes, backslashes
/// and control characters, as serde_json does; everything else as it is, in runs.
struct Escaped<'w, W: Write>(&'w mut W);

/// Whether any byte of `bytes` must be escaped. Branch-free within 16-byte chunks (one vector
/// compare each), so a clean id, host or path, nearly every value of the decision line, is
/// checked at once and written as one run. A line of the Check bench's values: 494 ns with a
/// match per byte, 209 ns with this (best of 30 alternating rounds; padding short text to 16
/// bytes instead was slower, 284 ns).
fn needs_escape(bytes: &[u8]) -> bool {
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | special(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !needs_escape(text.as_bytes()) {
            return self.0.write_str(text);
        }
        let mut run = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[run..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            run = at + 1;
        }
        self.0.write_str(&text[run..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Logs through `log` with a subscriber built on `format`, returns the lines.
    fn lines(json: bool, log: impl Fn()) -> String {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt().with_writer(out.clone());
        if json {
            let subscriber = builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish();
            tracing::subscriber::with_default(subscriber, log);
        } else {
            let subscriber = builder.event_format(JsonLine).finish();
            tracing::subscriber::with_default(subscriber, log);
        }
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn parsed(lines: &str) -> Vec<serde_json::Value> {
        lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_read_as_tracing_subscribers_json_lines_do() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \0 bell \x07 del \x7f é 😀 \u{2028}";
        let log = || {
            tracing::info!(
                target: "sluice::authz",
                decision = "allow",
                status = 200u64,
                delta = -3i64,
                ratio = 0.25f64,
                nan = f64::NAN,
                ok = true,
                text = odd,
                missing = None::<&str>,
                debug = ?vec!["a", "b\""],
                shown = %"display \"this\"",
                "authorize check"
            );
            tracing::warn!("plain {} message", 7);
            tracing::error!(
                error = &std::io::Error::other("disk \"full\"") as &dyn std::error::Error
            );
        };
        let ours = parsed(&lines(false, log));
        let theirs = parsed(&lines(true, log));
        assert_eq!(ours.len(), 3);
        assert_eq!(ours.len(), theirs.len());
        for (mut a, mut b) in ours.into_iter().zip(theirs) {
            // Two calls, two instants; the format is the same.
            let (ta, tb) = (a["timestamp"].take(), b["timestamp"].take());
            assert_eq!(
                ta.as_str().map(str::len),
                tb.as_str().map(str::len),
                "{ta} {tb}"
            );
            assert_eq!(a, b);
        }
    }

    #[test]
    fn timestamps_read_as_tracing_subscribers_timer_writes_them() {
        assert_eq!(to_the_second(0), "1970-01-01T00:00:00");
        assert_eq!(to_the_second(1_700_000_000), "2023-11-14T22:13:20");
        assert_eq!(to_the_second(951_825_599), "2000-02-29T11:59:59");
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime as Timer};
        let ours = || {
            let mut text = String::new();
            write_timestamp(&mut text).unwrap();
            text
        };
        // Ours, theirs, ours: when both of ours fall in one second, so did theirs. A second
        // boundary between them can happen a few times in a row at most.
        for _ in 0..100 {
            let before = ours();
            let mut theirs = String::new();
            Timer
                .format_time(&mut tracing_subscriber::fmt::format::Writer::new(
                    &mut theirs,
                ))
                .unwrap();
            let after = ours();
            let second = |t: &str| t[..t.find('.').unwrap()].to_string();
            if second(&before) != second(&after) {
                continue;
            }
            assert_eq!(second(&before), second(&theirs), "{before} {theirs}");
            assert_eq!(before.len(), theirs.len(), "{before} {theirs}");
            assert!(before.ends_with('Z') && theirs.ends_with('Z'));
            assert!(
                before <= theirs && theirs <= after,
                "{before} {theirs} {after}"
            );
            return;
        }
        panic!("no three timestamps in one second out of 100 tries");
    }

    #[test]
    fn a_line_written_without_tracing_reads_as_the_same_event_through_it() {
        let odd = "quote \" backslash \\ newline \n nul \0 é";
        let ip = std::net::IpAddr::from([192, 0, 2, 7]);
        let traced = lines(false, || {
            tracing::info!(
                target: "sluice::authz",
                decision = "allow",
                status = 200u64,
                "request-id" = odd,
                shown = %odd,
                ip = %ip,
                missing = None::<&str>,
                latency_us = 154u64,
                "authorize check"
            )
        });
        let mut direct = String::new();
        write_info_line(
            &mut direct,
            "authorize check",
            &[
                ("decision", Some(FieldValue::Str("allow"))),
                ("status", Some(FieldValue::U64(200))),
                ("request-id", Some(FieldValue::Str(odd))),
                ("shown", Some(FieldValue::Display(&odd))),
                ("ip", Some(FieldValue::Display(&ip))),
                ("missing", None),
                ("latency_us", Some(FieldValue::U64(154))),
            ],
            "sluice::authz",
        );
        let tail = |line: &str| line[line.find("\"level\"").unwrap()..].to_string();
        assert_eq!(tail(&direct), tail(&traced));
        let (a, b) = (&parsed(&direct)[0], &parsed(&traced)[0]);
        assert_eq!(
            a["timestamp"].as_str().map(str::len),
            b["timestamp"].as_str().map(str::len)
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let long = "x".repeat(40);
        let mut cases = vec![
            String::new(),
            "plain".into(),
            long.clone(),
            "é ü 日本".into(),
        ];
        // Each kind of special byte at a chunk's first and last byte, past a chunk, and last.
        for special in [
            '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1f}',
        ] {
            for at in [0, 15, 16, 31, 39] {
                let mut text = long.clone();
                text.replace_range(at..at + 1, &special.to_string());
                cases.push(text);
            }
        }
        for text in cases {
            let mut ours = String::new();
            write_string(&mut ours, &text).unwrap();
            assert_eq!(ours, serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn keys_come_in_tracing_subscribers_order() {
        let log = || tracing::info!(target: "t", b = 1u64, a = "x", "m");
        let (ours, theirs) = (lines(false, log), lines(true, log));
        // Past the timestamp, the text itself is the same.
        let tail = |line: &str| line[line.find("\"level\"").unwrap()..].to_string();
        assert_eq!(tail(&ours), tail(&theirs));
        assert!(ours.ends_with("\"target\":\"t\"}\n"), "{ours}");
    }
}
