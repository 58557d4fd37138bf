//! Log lines written to stderr by a thread of their own, a batch per write. ext_authz logs a
//! line per decision (as Pomerium does), and one `write` system call per line from the
//! thread that answers Check costs that thread more than the decision itself; here a
//! request's thread only appends its line to a buffer, and the writer thread takes whatever
//! has gathered in one call. Lines stay whole and in the order they were logged. When the
//! writer falls behind (stderr blocked) past `MAX_PENDING`, loggers wait for it, as they
//! would have waited on stderr, rather than let memory grow.
//!
//! The writer is woken only by the line that finds the queue empty, and then lingers for
//! `GATHER` before it takes the queue: under ext_authz load that is one wake-up and one
//! `write` per few hundred lines, not a futex wake and a context switch per decision on the
//! core that answers Check.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Bytes waiting for the writer before loggers stop queuing.
const MAX_PENDING: usize = 1 << 20;

/// How long the writer lets lines gather after the first one of a batch: short enough that a
/// person tailing the log sees no lag, long enough to take thousands of decisions at once.
const GATHER: Duration = Duration::from_millis(5);

/// Lines waiting for the writer thread.
pub struct Batched<W: Write + Send + 'static> {
    pending: Mutex<Pending<W>>,
    wake: Condvar,
    /// Signalled when the writer has taken a batch (the queue has room) and when it has
    /// written it and given the sink back.
    drained: Condvar,
}

struct Pending<W> {
    lines: Vec<u8>,
    /// The sink: here, or with the writer thread while it writes a batch (None then).
    sink: Option<W>,
    /// Whether a writer thread runs (else every logger writes its own line).
    threaded: bool,
}

impl<W: Write + Send + 'static> Batched<W> {
    /// Starts the writer thread over `sink`.
    pub fn start(sink: W) -> Arc<Self> {
        let batched = Arc::new(Batched {
            pending: Mutex::new(Pending {
                lines: Vec::new(),
                sink: Some(sink),
                threaded: true,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
        });
        let writer = Arc::clone(&batched);
        let spawned = std::thread::Builder::new()
            .name("sluice-log".into())
            .spawn(move || writer.run());
        if spawned.is_err() {
            batched.lock().threaded = false;
        }
        batched
    }

    fn lock(&self) -> MutexGuard<'_, Pending<W>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one whole line. A logger that finds the queue full waits for the writer, as
    /// it would wait on a blocked stderr.
    pub fn append(&self, line: &[u8]) {
        let mut pending = self.lock();
        // The writer was woken by the line that started this queue and will take it; a
        // logger never writes itself here, so that a blocked sink holds back only loggers,
        // never the lock everyone shares.
        while pending.threaded
            && !pending.lines.is_empty()
            && pending.lines.len() + line.len() > MAX_PENDING
        {
            pending = self
                .drained
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        let first = pending.lines.is_empty();
        pending.lines.extend_from_slice(line);
        if pending.threaded {
            drop(pending);
            // Later lines of the batch find the writer awake (gathering or writing): a
            // notification each would be a system call each.
            if first {
                self.wake.notify_one();
            }
        } else {
            Self::write_out(&mut pending);
        }
    }

    /// Writes the queue with the sink, if the sink is here.
    fn write_out(pending: &mut Pending<W>) {
        let queued = std::mem::take(&mut pending.lines);
        if let Some(sink) = pending.sink.as_mut() {
            let _ = sink.write_all(&queued);
            let _ = sink.flush();
        }
    }

    /// Waits until every line appended so far has been written (at exit).
    pub fn flush(&self) {
        let mut pending = self.lock();
        while pending.sink.is_none() {
            pending = self
                .drained
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        Self::write_out(&mut pending);
    }

    fn run(&self) {
        let mut pending = self.lock();
        loop {
            while pending.lines.is_empty() {
                pending = self.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            // The writer holds the sink while lines gather, so that a logger finding the
            // queue full waits for this batch rather than writing in the middle of it.
            let Some(mut sink) = pending.sink.take() else {
                return;
            };
            drop(pending);
            std::thread::sleep(GATHER);
            pending = self.lock();
            let mut batch = std::mem::take(&mut pending.lines);
            drop(pending);
            // The queue has room again for loggers that found it full.
            self.drained.notify_all();
            let _ = sink.write_all(&batch);
            let _ = sink.flush();
            pending = self.lock();
            pending.sink = Some(sink);
            // Keep the buffer's capacity for the next batch.
            if pending.lines.is_empty() {
                batch.clear();
                pending.lines = batch;
            }
            self.drained.notify_all();
        }
    }
}

/// The `io::Write` one log event gets: it gathers the event's bytes and queues them whole
/// when the event is done.
pub struct Line<W: Write + Send + 'static> {
    to: Arc<Batched<W>>,
    bytes: Vec<u8>,
}

impl<W: Write + Send + 'static> Write for Line<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Line<W> {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            self.to.append(&self.bytes);
        }
    }
}

/// sluice's stderr, written by the log thread.
static STDERR: OnceLock<Arc<Batched<std::io::Stderr>>> = OnceLock::new();

fn stderr_batched() -> &'static Arc<Batched<std::io::Stderr>> {
    STDERR.get_or_init(|| Batched::start(std::io::stderr()))
}

/// For `tracing_subscriber`'s `with_writer`: each event's line, queued for the log thread.
pub fn stderr_line() -> Line<std::io::Stderr> {
    Line {
        to: Arc::clone(stderr_batched()),
        bytes: Vec::with_capacity(256),
    }
}

/// Queues one whole line for sluice's stderr, as a tracing event's line is queued.
pub fn append_stderr(line: &[u8]) {
    stderr_batched().append(line);
}

/// Writes out every line logged so far; called before the process exits.
pub fn flush_stderr() {
    if let Some(batched) = STDERR.get() {
        batched.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink shared with the test, which reads what reached it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order() {
        let sink = Sink::default();
        let batched = Batched::start(sink.clone());
        std::thread::scope(|s| {
            for t in 0..4 {
                let batched = Arc::clone(&batched);
                s.spawn(move || {
                    for i in 0..2_000 {
                        let mut line = Line {
                            to: Arc::clone(&batched),
                            bytes: Vec::new(),
                        };
                        // Written in pieces, as a formatter does.
                        write!(line, "thread {t} ").unwrap();
                        writeln!(line, "line {i}").unwrap();
                    }
                });
            }
        });
        batched.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8_000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().expect("a whole line"))
                .collect();
            assert_eq!(mine, (0..2_000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_line_longer_than_the_queue_limit_is_written_whole() {
        let sink = Sink::default();
        let batched = Batched::start(sink.clone());
        let long = vec![b'x'; 2 * MAX_PENDING];
        batched.append(b"before\n");
        batched.append(&long);
        batched.append(b"after\n");
        batched.flush();
        let written = sink.0.lock().unwrap().clone();
        assert_eq!(written.len(), 2 * MAX_PENDING + 13);
        assert!(written.starts_with(b"before\nxxx") && written.ends_with(b"xxxafter\n"));
    }

    #[test]
    fn a_writer_far_behind_holds_loggers_back_instead_of_queuing_without_end() {
        /// A sink that blocks until the test lets it go.
        struct Slow(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let batched = Batched::start(Slow(Arc::clone(&gate), sink.clone()));
        let logger = {
            let batched = Arc::clone(&batched);
            std::thread::spawn(move || {
                // Three times the limit: whatever the writer's first batch took (up to the
                // limit), what is left fills the queue again.
                for i in 0..3_000u32 {
                    let mut line = format!("{i:07} ").into_bytes();
                    line.resize(1023, b'x');
                    line.push(b'\n');
                    batched.append(&line);
                }
            })
        };
        // The writer holds the first batch; the logger fills the queue to its limit and waits.
        let full = (0..1_000).find(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            batched.lock().lines.len() + 1024 > MAX_PENDING
        });
        assert!(full.is_some(), "the queue filled up");
        assert!(!logger.is_finished(), "the logger waits for the writer");
        assert!(batched.lock().lines.len() <= MAX_PENDING);
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
        logger.join().unwrap();
        batched.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let numbers: Vec<u32> = text
            .lines()
            .map(|l| l[..7].parse().expect("a whole line"))
            .collect();
        assert_eq!(
            numbers,
            (0..3_000).collect::<Vec<_>>(),
            "every line, in order"
        );
    }
}
