//! Executor-local bounded queues and cancellation signals.
//!
//! Nothing here knows about glommio or sockets: these are plain single-threaded futures
//! (`Rc`, `RefCell`, `Waker`), so they work on any executor that runs all their users on
//! one thread — which is how every task of one [`Network`](crate::Network) runs.
//!
//! [`Queue`] is bounded twice, in items and in bytes (an item's [`Weighted::weight`]),
//! and offers both ways of meeting a full queue: [`Queue::try_push`] refuses at once
//! (the caller counts it) and [`Queue::push`] waits for room (backpressure). Its one
//! consumer can [`Queue::drain_into`] everything that is queued in one go, which is what
//! lets a writer put many frames into one system call. An item heavier than the byte
//! bound is still accepted into an *empty* queue, so a large frame is never stuck
//! forever; the bound on memory is then `max(byte bound, one item)`.
//!
//! [`Cancel`] is a one-shot broadcast signal: every task of a link or of the whole
//! network runs under one, so closing a link or shutting down drops its futures (and
//! with them their sockets) at the next poll.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// How much of a queue's byte bound an item uses.
pub(crate) trait Weighted {
    fn weight(&self) -> usize;
}

/// Why [`Queue::try_push`] gave the item back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
}

struct Inner<T> {
    items: VecDeque<T>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    closed: bool,
    /// The consumer waiting for an item (one consumer per queue).
    consumer: Option<Waker>,
    /// Producers waiting for room.
    producers: Vec<Waker>,
}

impl<T: Weighted> Inner<T> {
    fn has_room_for(&self, weight: usize) -> bool {
        self.items.is_empty()
            || (self.items.len() < self.max_items && self.bytes + weight <= self.max_bytes)
    }

    fn wake_producers(&mut self) {
        for w in self.producers.drain(..) {
            w.wake();
        }
    }
}

/// A bounded multi-producer, single-consumer queue for one thread. Cloning shares it.
pub(crate) struct Queue<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Weighted> Queue<T> {
    /// A queue holding at most `max_items` items (at least 1) and `max_bytes` bytes.
    pub(crate) fn new(max_items: usize, max_bytes: usize) -> Self {
        let inner = Inner {
            items: VecDeque::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes,
            closed: false,
            consumer: None,
            producers: Vec::new(),
        };
        Queue {
            inner: Rc::new(RefCell::new(inner)),
        }
    }

    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let mut q = self.inner.borrow_mut();
        if q.closed {
            return Err(PushError::Closed(item));
        }
        if !q.has_room_for(item.weight()) {
            return Err(PushError::Full(item));
        }
        q.bytes += item.weight();
        q.items.push_back(item);
        if let Some(w) = q.consumer.take() {
            w.wake();
        }
        Ok(())
    }

    /// Waits for room, then queues `item`; gives it back if the queue is closed.
    pub(crate) async fn push(&self, item: T) -> Result<(), T> {
        let mut item = Some(item);
        std::future::poll_fn(|cx| {
            let Some(it) = item.take() else {
                return Poll::Ready(Ok(()));
            };
            match self.try_push(it) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(PushError::Closed(it)) => Poll::Ready(Err(it)),
                Err(PushError::Full(it)) => {
                    item = Some(it);
                    let mut q = self.inner.borrow_mut();
                    if !q.producers.iter().any(|w| w.will_wake(cx.waker())) {
                        q.producers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut q = self.inner.borrow_mut();
        let item = q.items.pop_front()?;
        q.bytes -= item.weight();
        q.wake_producers();
        Some(item)
    }

    /// The next item; `None` once the queue is closed and empty.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if !self.wait_nonempty().await {
                return None;
            }
        }
    }

    /// Waits until an item is queued (`true`) or the queue is closed and empty (`false`).
    pub(crate) async fn wait_nonempty(&self) -> bool {
        std::future::poll_fn(|cx| {
            let mut q = self.inner.borrow_mut();
            if !q.items.is_empty() {
                Poll::Ready(true)
            } else if q.closed {
                Poll::Ready(false)
            } else {
                q.consumer = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Moves queued items into `out`: at most `max_items`, and no more than `max_bytes`
    /// unless the first item alone is heavier. Returns how many moved.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>, max_items: usize, max_bytes: usize) -> usize {
        let mut q = self.inner.borrow_mut();
        let mut moved = 0;
        let mut bytes = 0;
        while moved < max_items {
            let Some(front) = q.items.front() else { break };
            let w = front.weight();
            if moved > 0 && bytes + w > max_bytes {
                break;
            }
            bytes += w;
            moved += 1;
            if let Some(item) = q.items.pop_front() {
                q.bytes -= item.weight();
                out.push(item);
            }
        }
        if moved > 0 {
            q.wake_producers();
        }
        moved
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.borrow().items.len()
    }

    /// Refuses further pushes and wakes everyone; queued items can still be taken.
    pub(crate) fn close(&self) {
        let mut q = self.inner.borrow_mut();
        q.closed = true;
        if let Some(w) = q.consumer.take() {
            w.wake();
        }
        q.wake_producers();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }
}

struct CancelInner {
    done: Cell<bool>,
    /// One slot per live [`Cancelled`] future; freed slots are reused.
    wakers: RefCell<Vec<Option<Waker>>>,
}

/// A one-shot signal shared by the tasks it stops. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Cancel(Rc<CancelInner>);

impl Cancel {
    pub(crate) fn new() -> Self {
        Cancel(Rc::new(CancelInner {
            done: Cell::new(false),
            wakers: RefCell::new(Vec::new()),
        }))
    }

    pub(crate) fn cancel(&self) {
        if self.0.done.replace(true) {
            return;
        }
        let wakers: Vec<Waker> = self
            .0
            .wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.done.get()
    }

    /// Resolves once [`Cancel::cancel`] was called.
    pub(crate) fn cancelled(&self) -> Cancelled {
        Cancelled {
            cancel: self.clone(),
            slot: None,
        }
    }

    /// Runs `fut` until it finishes or this signal fires (then `fut` is dropped).
    pub(crate) async fn run<F: Future<Output = ()>>(&self, fut: F) {
        futures_lite::future::or(fut, self.cancelled()).await
    }
}

/// The future of [`Cancel::cancelled`].
pub(crate) struct Cancelled {
    cancel: Cancel,
    slot: Option<usize>,
}

impl Future for Cancelled {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.cancel.is_cancelled() {
            return Poll::Ready(());
        }
        let cancel = self.cancel.clone();
        let mut wakers = cancel.0.wakers.borrow_mut();
        match self.slot {
            Some(i) => wakers[i] = Some(cx.waker().clone()),
            None => {
                let i = match wakers.iter().position(Option::is_none) {
                    Some(i) => {
                        wakers[i] = Some(cx.waker().clone());
                        i
                    }
                    None => {
                        wakers.push(Some(cx.waker().clone()));
                        wakers.len() - 1
                    }
                };
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            if let Some(w) = self.cancel.0.wakers.borrow_mut().get_mut(i) {
                *w = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    // Test-only: the queue is single-threaded, but `Wake` needs Send + Sync.
    struct CountWaker(std::sync::atomic::AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    impl Weighted for Vec<u8> {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    fn poll_once<F: Future>(f: Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(w))
    }

    #[test]
    fn bounds_in_items_and_bytes() {
        let q: Queue<Vec<u8>> = Queue::new(3, 10);
        assert!(q.try_push(vec![0; 4]).is_ok());
        assert!(q.try_push(vec![0; 4]).is_ok());
        assert!(matches!(q.try_push(vec![0; 4]), Err(PushError::Full(_))));
        assert!(q.try_push(vec![0; 2]).is_ok());
        assert!(matches!(q.try_push(vec![]), Err(PushError::Full(_))));
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 10, 8), 2);
        assert_eq!(q.drain_into(&mut out, 10, 8), 1);
        assert_eq!(q.len(), 0);
        // An item over the byte bound fits an empty queue, and only then.
        assert!(q.try_push(vec![0; 50]).is_ok());
        assert!(matches!(q.try_push(vec![0; 1]), Err(PushError::Full(_))));
        q.close();
        assert!(matches!(q.try_push(vec![0; 1]), Err(PushError::Closed(_))));
        assert_eq!(q.try_pop().map(|v| v.len()), Some(50));
    }

    #[test]
    fn push_waits_for_room_and_is_woken() {
        let q: Queue<Vec<u8>> = Queue::new(1, 100);
        let counter = std::sync::Arc::new(CountWaker(0.into()));
        let waker = Waker::from(counter.clone());
        q.try_push(vec![1]).unwrap();
        let mut fut = Box::pin(q.push(vec![2]));
        assert!(poll_once(fut.as_mut(), &waker).is_pending());
        assert_eq!(q.try_pop(), Some(vec![1]));
        assert_eq!(counter.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(matches!(
            poll_once(fut.as_mut(), &waker),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(q.try_pop(), Some(vec![2]));
    }

    #[test]
    fn cancel_wakes_and_frees_slots() {
        let c = Cancel::new();
        let counter = std::sync::Arc::new(CountWaker(0.into()));
        let waker = Waker::from(counter.clone());
        let mut a = Box::pin(c.cancelled());
        let mut b = Box::pin(c.cancelled());
        assert!(poll_once(a.as_mut(), &waker).is_pending());
        assert!(poll_once(a.as_mut(), &waker).is_pending());
        assert!(poll_once(b.as_mut(), &waker).is_pending());
        assert_eq!(c.0.wakers.borrow().len(), 2);
        drop(b);
        assert!(c.0.wakers.borrow()[1].is_none());
        c.cancel();
        assert_eq!(counter.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(poll_once(a.as_mut(), &waker).is_ready());
    }
}
