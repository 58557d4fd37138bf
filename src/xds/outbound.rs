//! The response stream tonic pulls from. A large response gets its permit (bounding how many
//! large responses are encoded at once) only when tonic asks for it, so a stuck client, which
//! never asks, never holds one and cannot stall the others.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_util::sync::PollSemaphore;
use tonic::Status;

/// Responses above this many bytes wait for a permit.
pub const LARGE_RESPONSE: usize = 1 << 20;

/// A response that may need a permit before it is encoded.
pub trait Permitted {
    fn payload_bytes(&self) -> usize;
    fn attach(&mut self, permit: OwnedSemaphorePermit);
}

pub struct Outbound<R> {
    rx: mpsc::Receiver<Result<R, Status>>,
    permits: PollSemaphore,
    waiting: Option<R>,
}

impl<R> Outbound<R> {
    pub fn new(rx: mpsc::Receiver<Result<R, Status>>, permits: Arc<Semaphore>) -> Self {
        Outbound {
            rx,
            permits: PollSemaphore::new(permits),
            waiting: None,
        }
    }
}

impl<R: Permitted + Unpin> Stream for Outbound<R> {
    type Item = Result<R, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.waiting.is_none() {
            match ready!(this.rx.poll_recv(cx)) {
                None => return Poll::Ready(None),
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                Some(Ok(r)) if r.payload_bytes() < LARGE_RESPONSE => {
                    return Poll::Ready(Some(Ok(r)));
                }
                Some(Ok(r)) => this.waiting = Some(r),
            }
        }
        match ready!(this.permits.poll_acquire(cx)) {
            Some(permit) => {
                let mut r = this
                    .waiting
                    .take()
                    .expect("a response waits for its permit");
                r.attach(permit);
                Poll::Ready(Some(Ok(r)))
            }
            // The semaphore is never closed; send without a permit rather than stall.
            None => Poll::Ready(this.waiting.take().map(Ok)),
        }
    }
}
