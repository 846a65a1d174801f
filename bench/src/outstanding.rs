//! One partition's records handed to a client with several batches in
//! flight, waiting for their outcome: noticing each outcome when it comes,
//! whatever the order.
//!
//! A latency runs from a record's intended send time to the moment its
//! outcome is heard. With one batch of a partition in flight, outcomes come
//! in send order and a collector can await them one after the other. With
//! several, they need not: a batch the broker refused as too busy is sent
//! again after later ones, a batch can fail (a time-out) after a later one
//! was stored. Awaiting in send order would then hear the later batch only
//! once the earlier one is done, and count the wait in its latency.
//!
//! How, without a waker per record (a batch's outcome keeps one waker per
//! distinct waker registered, and comparing against a thousand of them per
//! record would cost more than the client): every record's delivery is
//! polled once when it is queued, with one waker per partition, a
//! [`Signal`] that counts its wakes. A batch's outcome wakes each distinct
//! waker once, so the count says how many batches finished since the
//! collector last looked. The collector takes the finished records at the
//! head of the queue: the usual case, batches finishing in send order. If
//! more batches finished than that explains, it looks further, over the
//! records of the batches that can be in flight (the window: the client
//! sends a partition's batches in the order it filled them, at most
//! `max_in_flight` at once, each holding less than `batch_bytes` plus one
//! record of key and value bytes), and over the whole queue if the window
//! holds none. A record is thus heard at the first look after its batch
//! finished, in or out of order, which is what a collector awaiting one
//! batch at a time gives with one in flight.
//!
//! Generic over the delivery future so that the tests can finish batches
//! in any order; the native driver queues `sluice_net::client::Delivery`.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll, Wake, Waker},
};

use crate::driver::Pending;

/// The waker every delivery of one partition is polled with: counts the
/// batches that finished (each wakes it once) and wakes the collector.
#[derive(Default)]
pub struct Signal {
    wakes: AtomicU64,
    /// Set by [`Signal::notify`]: something other than a batch changed.
    notified: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Signal {
    fn wake_task(&self) {
        let task = self.task.lock().expect("not poisoned").take();
        if let Some(task) = task {
            task.wake();
        }
    }

    /// Wakes the collector without a batch having finished (the producer
    /// is done sending).
    fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        self.wake_task();
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::AcqRel);
        self.wake_task();
    }
}

/// A queued record: its delivery until its outcome is heard; `None` once
/// heard out of order, until the records ahead of it are heard too.
struct Entry<D> {
    pending: Pending,
    delivery: Option<D>,
}

/// One partition's records waiting for their outcome, in send order. See
/// the module documentation. Lives on the producer's executor.
pub struct Outstanding<D> {
    entries: VecDeque<Entry<D>>,
    signal: Arc<Signal>,
    waker: Waker,
    /// The signal's wakes already accounted for.
    wakes_seen: u64,
    /// Key and value bytes of unheard records, from the head, that hold
    /// every batch that can be in flight.
    window_bytes: usize,
    /// Records heard so far, and of them those found behind an unheard one.
    heard: u64,
    heard_out_of_order: u64,
    closed: bool,
}

impl<T, E, D> Outstanding<D>
where
    D: Future<Output = Result<T, E>> + Unpin,
{
    /// `window_bytes`: at least `max_in_flight * (batch_bytes + the largest
    /// record's key and value bytes)`.
    pub fn new(window_bytes: usize) -> Outstanding<D> {
        let signal = Arc::new(Signal::default());
        Outstanding {
            entries: VecDeque::new(),
            waker: Waker::from(signal.clone()),
            signal,
            wakes_seen: 0,
            window_bytes: window_bytes.max(1),
            heard: 0,
            heard_out_of_order: 0,
            closed: false,
        }
    }

    /// Records whose outcome is still to be heard.
    pub fn unheard(&self) -> u64 {
        self.entries
            .iter()
            .filter(|entry| entry.delivery.is_some())
            .count() as u64
    }

    pub fn heard(&self) -> (u64, u64) {
        (self.heard, self.heard_out_of_order)
    }

    /// Queues a record just sent. A delivery already done (refused at
    /// once) is reported now, to `report`.
    pub fn push(
        &mut self,
        pending: Pending,
        mut delivery: D,
        report: &mut impl FnMut(Pending, Result<T, E>),
    ) {
        match poll_with(&self.waker, &mut delivery) {
            Poll::Ready(outcome) => {
                self.heard += 1;
                report(pending, outcome);
            }
            Poll::Pending => self.entries.push_back(Entry {
                pending,
                delivery: Some(delivery),
            }),
        }
    }

    /// Reports every record whose batch has finished since the last call,
    /// as heard now. Returns how many.
    pub fn take_heard(&mut self, report: &mut impl FnMut(Pending, Result<T, E>)) -> u64 {
        let wakes = self.signal.wakes.load(Ordering::Acquire);
        let finished = wakes - self.wakes_seen;
        self.wakes_seen = wakes;
        let before = self.heard;
        // The head: batches finishing in send order.
        let mut explained = 0;
        while let Some(front) = self.entries.front_mut() {
            let Some(delivery) = front.delivery.as_mut() else {
                self.entries.pop_front();
                continue;
            };
            match poll_with(&self.waker, delivery) {
                Poll::Ready(outcome) => {
                    let pending = front.pending;
                    self.entries.pop_front();
                    self.heard += 1;
                    explained = 1;
                    report(pending, outcome);
                }
                Poll::Pending => break,
            }
        }
        // More batches finished than the head explains (at least one
        // batch if it moved): look behind the first unheard record.
        if finished > explained && !self.entries.is_empty() {
            let runs = self.take_behind(Some(self.window_bytes), report);
            if runs == 0 && explained == 0 {
                // A batch finished and the window holds none: look at all.
                self.take_behind(None, report);
            }
        }
        self.heard - before
    }

    /// Takes the finished records behind the first unheard one, over
    /// `limit` key and value bytes of unheard records (or all). Returns
    /// how many runs of finished records it found: each holds at least one
    /// batch.
    fn take_behind(
        &mut self,
        limit: Option<usize>,
        report: &mut impl FnMut(Pending, Result<T, E>),
    ) -> u64 {
        let mut bytes = 0;
        let mut runs = 0;
        let mut in_run = false;
        for entry in self.entries.iter_mut() {
            let Some(delivery) = entry.delivery.as_mut() else {
                in_run = false;
                continue;
            };
            if limit.is_some_and(|limit| bytes >= limit) {
                break;
            }
            bytes += entry.pending.bytes;
            match poll_with(&self.waker, delivery) {
                Poll::Ready(outcome) => {
                    entry.delivery = None;
                    self.heard += 1;
                    self.heard_out_of_order += 1;
                    if !in_run {
                        runs += 1;
                        in_run = true;
                    }
                    report(entry.pending, outcome);
                }
                Poll::Pending => in_run = false,
            }
        }
        runs
    }

    /// No more records will be queued; wakes the collector.
    pub fn close(&mut self) {
        self.closed = true;
        self.signal.notify();
    }

    /// Closed, and every record heard: the collector's work is done.
    pub fn is_done(&self) -> bool {
        self.closed && self.unheard() == 0
    }

    /// A future that is ready once a batch has finished since the last
    /// [`Outstanding::take_heard`], or [`Outstanding::close`] was called.
    /// It does not borrow the queue, which stays free for the producer.
    pub fn changed(&self) -> impl Future<Output = ()> + 'static {
        let signal = self.signal.clone();
        let seen = self.wakes_seen;
        std::future::poll_fn(move |cx| {
            *signal.task.lock().expect("not poisoned") = Some(cx.waker().clone());
            if signal.wakes.load(Ordering::Acquire) != seen
                || signal.notified.swap(false, Ordering::AcqRel)
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

fn poll_with<D: Future + Unpin>(waker: &Waker, delivery: &mut D) -> Poll<D::Output> {
    Pin::new(delivery).poll(&mut Context::from_waker(waker))
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;

    /// A batch the test finishes when it likes: keeps one waker per
    /// distinct waker, as the client's batches do.
    #[derive(Default)]
    struct Batch {
        outcome: RefCell<Option<Result<u64, String>>>,
        wakers: RefCell<Vec<Waker>>,
    }

    impl Batch {
        fn finish(&self, outcome: Result<u64, String>) {
            *self.outcome.borrow_mut() = Some(outcome);
            for waker in self.wakers.take() {
                waker.wake();
            }
        }
    }

    struct Delivery {
        batch: Rc<Batch>,
        index: u64,
    }

    impl Future for Delivery {
        type Output = Result<u64, String>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match &*self.batch.outcome.borrow() {
                Some(outcome) => Poll::Ready(outcome.clone().map(|base| base + self.index)),
                None => {
                    let mut wakers = self.batch.wakers.borrow_mut();
                    if !wakers.iter().any(|known| known.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        }
    }

    /// What a collector heard: (intended send time, outcome, when).
    type Heard = Rc<RefCell<Vec<(u64, Result<u64, String>, u64)>>>;

    /// A queue of `batches`, each that many 100-byte records; record `i`
    /// (over all batches) was intended at `i`.
    fn queue(
        sizes: &[u64],
        window_bytes: usize,
        heard: &Heard,
    ) -> (Outstanding<Delivery>, Vec<Rc<Batch>>) {
        let mut outstanding = Outstanding::new(window_bytes);
        let mut batches = Vec::new();
        let mut intended = 0;
        for size in sizes {
            let batch = Rc::new(Batch::default());
            for index in 0..*size {
                let delivery = Delivery {
                    batch: batch.clone(),
                    index,
                };
                let pending = Pending {
                    intended,
                    bytes: 100,
                };
                outstanding.push(pending, delivery, &mut report(heard, 0));
                intended += 1;
            }
            batches.push(batch);
        }
        (outstanding, batches)
    }

    fn report(heard: &Heard, at: u64) -> impl FnMut(Pending, Result<u64, String>) + '_ {
        move |pending, outcome| heard.borrow_mut().push((pending.intended, outcome, at))
    }

    fn take(outstanding: &mut Outstanding<Delivery>, heard: &Heard, at: u64) -> u64 {
        outstanding.take_heard(&mut report(heard, at))
    }

    fn times(heard: &Heard) -> Vec<(u64, u64)> {
        let mut times: Vec<(u64, u64)> = heard.borrow().iter().map(|h| (h.0, h.2)).collect();
        times.sort_unstable();
        times
    }

    #[test]
    fn batches_in_send_order_are_heard_at_the_head() {
        let heard = Heard::default();
        let (mut outstanding, batches) = queue(&[3, 2], 10_000, &heard);
        // One waker per batch, not per record.
        assert_eq!(batches[0].wakers.borrow().len(), 1);
        assert_eq!(take(&mut outstanding, &heard, 5), 0);
        batches[0].finish(Ok(10));
        assert_eq!(take(&mut outstanding, &heard, 7), 3);
        batches[1].finish(Ok(13));
        assert_eq!(take(&mut outstanding, &heard, 9), 2);
        assert_eq!(times(&heard), [(0, 7), (1, 7), (2, 7), (3, 9), (4, 9)]);
        let offsets: Vec<u64> = heard
            .borrow()
            .iter()
            .map(|h| h.1.clone().unwrap())
            .collect();
        assert_eq!(offsets, [10, 11, 12, 13, 14]);
        assert_eq!(outstanding.unheard(), 0);
        assert_eq!(outstanding.heard(), (5, 0));
    }

    #[test]
    fn a_later_batch_is_heard_when_it_finishes_not_after_the_earlier() {
        let heard = Heard::default();
        let (mut outstanding, batches) = queue(&[2, 2, 2], 10_000, &heard);
        // The second batch is stored first (the first was refused as busy
        // and sent again).
        batches[1].finish(Ok(0));
        assert_eq!(take(&mut outstanding, &heard, 7), 2);
        batches[0].finish(Ok(2));
        assert_eq!(take(&mut outstanding, &heard, 9), 2);
        // Heard once each, and the queue moves past the batch heard early.
        batches[2].finish(Ok(4));
        assert_eq!(take(&mut outstanding, &heard, 11), 2);
        assert_eq!(
            times(&heard),
            [(0, 9), (1, 9), (2, 7), (3, 7), (4, 11), (5, 11)]
        );
        assert_eq!(outstanding.unheard(), 0);
        assert_eq!(outstanding.heard(), (6, 2));
    }

    #[test]
    fn a_batch_behind_an_unfinished_one_is_heard_with_the_head_that_finished_with_it() {
        let heard = Heard::default();
        let (mut outstanding, batches) = queue(&[1, 1, 1], 10_000, &heard);
        // Between two looks the third batch and then the first finish; the
        // second is still in flight.
        batches[2].finish(Ok(5));
        batches[0].finish(Ok(0));
        assert_eq!(take(&mut outstanding, &heard, 7), 2);
        batches[1].finish(Err("timed out".into()));
        assert_eq!(take(&mut outstanding, &heard, 30), 1);
        assert_eq!(times(&heard), [(0, 7), (1, 30), (2, 7)]);
        assert_eq!(heard.borrow()[2].1, Err("timed out".to_string()));
    }

    #[test]
    fn a_failure_after_a_later_success_keeps_each_its_own_time() {
        let heard = Heard::default();
        let (mut outstanding, batches) = queue(&[2, 2], 10_000, &heard);
        batches[1].finish(Ok(40));
        assert_eq!(take(&mut outstanding, &heard, 7), 2);
        batches[0].finish(Err("connection closed".into()));
        assert_eq!(take(&mut outstanding, &heard, 8), 2);
        let heard = heard.borrow();
        assert_eq!(heard[0], (2, Ok(40), 7));
        assert_eq!(heard[1], (3, Ok(41), 7));
        assert_eq!(heard[2], (0, Err("connection closed".into()), 8));
        assert_eq!(heard[3], (1, Err("connection closed".into()), 8));
    }

    #[test]
    fn a_batch_beyond_the_window_is_still_found() {
        let heard = Heard::default();
        // A window of two 100-byte records; the fourth batch finishes.
        let (mut outstanding, batches) = queue(&[1, 1, 1, 1], 200, &heard);
        batches[3].finish(Ok(3));
        assert_eq!(take(&mut outstanding, &heard, 7), 1);
        assert_eq!(times(&heard), [(3, 7)]);
        assert_eq!(outstanding.unheard(), 3);
    }

    #[test]
    fn a_delivery_done_when_sent_is_heard_at_once() {
        let heard = Heard::default();
        let (mut outstanding, _batches) = queue(&[1], 10_000, &heard);
        let refused = Rc::new(Batch::default());
        refused.finish(Err("too large".into()));
        let pending = Pending {
            intended: 9,
            bytes: 100,
        };
        let delivery = Delivery {
            batch: refused,
            index: 0,
        };
        outstanding.push(pending, delivery, &mut report(&heard, 3));
        assert_eq!(times(&heard), [(9, 3)]);
        assert_eq!(outstanding.unheard(), 1);
    }

    #[test]
    fn changed_waits_for_a_batch_or_a_notice() {
        let heard = Heard::default();
        let (mut outstanding, batches) = queue(&[1, 1], 10_000, &heard);
        let waker = Waker::from(Arc::new(Signal::default()));
        let mut cx = Context::from_waker(&waker);
        let mut changed = std::pin::pin!(outstanding.changed());
        assert!(changed.as_mut().poll(&mut cx).is_pending());
        batches[1].finish(Ok(1));
        assert!(changed.as_mut().poll(&mut cx).is_ready());
        take(&mut outstanding, &heard, 1);
        {
            let mut changed = std::pin::pin!(outstanding.changed());
            assert!(changed.as_mut().poll(&mut cx).is_pending());
            outstanding.close();
            assert!(changed.as_mut().poll(&mut cx).is_ready());
        }
        assert!(!outstanding.is_done());
        batches[0].finish(Ok(0));
        take(&mut outstanding, &heard, 2);
        assert!(outstanding.is_done());
    }
}
