//! The order in which one connection's requests take effect, on the shard
//! holding the connection.
//!
//! Kafka serves a connection's requests one at a time, so each request sees
//! the effects of every earlier one: a ListOffsets sent right after a
//! DeleteRecords sees the new log start. Sluice serves a connection's
//! requests in tasks of their own, and keeps that guarantee with two rules:
//!
//! - a *pipelined* request (a produce) starts once every earlier request has
//!   dispatched its work: a produce dispatches once it has sent every batch
//!   to its partitions, so a producer's batches still overlap and reach their
//!   partitions in the order sent;
//! - any other request starts once every earlier request has finished, and
//!   counts as dispatched only when it finishes.
//!
//! A request's [`Turn`] is taken, in arrival order, when it is read; dropping
//! it (the request answered, or failed) finishes the request.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeSet,
    future::poll_fn,
    rc::Rc,
    task::{Poll, Waker},
};

/// How a request may overlap the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Starts once every earlier request has dispatched its work.
    Pipelined,
    /// Starts once every earlier request has finished.
    Exclusive,
}

/// One connection's requests not yet dispatched and not yet finished.
#[derive(Default)]
pub struct RequestOrder {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// Places of requests that have not dispatched their work.
    undispatched: BTreeSet<u64>,
    /// Places of requests that have not finished.
    unfinished: BTreeSet<u64>,
    /// Tasks waiting for their turn; woken at every change (a connection has
    /// at most `in_flight_per_connection_max` requests, so they are few).
    waiting: Vec<Waker>,
}

impl State {
    fn wake(&mut self) {
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl RequestOrder {
    pub fn new() -> Rc<RequestOrder> {
        Rc::new(RequestOrder::default())
    }

    /// The turn of the request at `place`; places are taken in arrival order.
    pub fn admit(self: &Rc<Self>, place: u64) -> Turn {
        let mut state = self.state.borrow_mut();
        assert!(
            state.unfinished.last().is_none_or(|last| *last < place),
            "request {place} admitted out of order"
        );
        state.undispatched.insert(place);
        state.unfinished.insert(place);
        Turn {
            order: Some(self.clone()),
            place,
            pipelined: Cell::new(false),
        }
    }
}

/// One request's place in its connection's order: on the connection's shard.
pub struct Turn {
    /// `None` for a protocol whose requests take effect in any order.
    order: Option<Rc<RequestOrder>>,
    place: u64,
    /// Set by [`Turn::wait`]: only a pipelined request dispatches early.
    pipelined: Cell<bool>,
}

impl Turn {
    /// A turn bound to no order: it never waits.
    pub fn unordered() -> Turn {
        Turn {
            order: None,
            place: 0,
            pipelined: Cell::new(false),
        }
    }

    /// Waits until the request may start.
    pub async fn wait(&self, admission: Admission) {
        let Some(order) = &self.order else {
            return;
        };
        self.pipelined.set(admission == Admission::Pipelined);
        poll_fn(|context| {
            let mut state = order.state.borrow_mut();
            let first = match admission {
                Admission::Pipelined => state.undispatched.first(),
                Admission::Exclusive => state.unfinished.first(),
            };
            if first == Some(&self.place) {
                Poll::Ready(())
            } else {
                state.waiting.push(context.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The request has sent all its work: the next pipelined one may start.
    /// An exclusive request dispatches only when it finishes.
    pub fn dispatched(&self) {
        if !self.pipelined.get() {
            return;
        }
        if let Some(order) = &self.order {
            let mut state = order.state.borrow_mut();
            if state.undispatched.remove(&self.place) {
                state.wake();
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(order) = &self.order {
            let mut state = order.state.borrow_mut();
            state.undispatched.remove(&self.place);
            state.unfinished.remove(&self.place);
            state.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;

    /// Runs `requests` (admission, steps before dispatch, steps after) as
    /// tasks in arrival order and returns the order of their events.
    fn run(requests: &[(Admission, u32, u32)]) -> Vec<String> {
        let requests = requests.to_vec();
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let events = Rc::new(RefCell::new(Vec::new()));
                let order = RequestOrder::new();
                let mut tasks = Vec::new();
                for (place, (admission, before, after)) in requests.into_iter().enumerate() {
                    let turn = order.admit(place as u64);
                    let events = events.clone();
                    tasks.push(glommio::spawn_local(async move {
                        turn.wait(admission).await;
                        events.borrow_mut().push(format!("start {place}"));
                        for _ in 0..before {
                            futures_lite::future::yield_now().await;
                        }
                        turn.dispatched();
                        for _ in 0..after {
                            futures_lite::future::yield_now().await;
                        }
                        events.borrow_mut().push(format!("end {place}"));
                    }));
                }
                for task in tasks {
                    task.await;
                }
                Rc::try_unwrap(events).unwrap().into_inner()
            })
            .unwrap();
        executor.join().unwrap()
    }

    #[test]
    fn pipelined_requests_overlap_once_the_one_before_dispatched() {
        let events = run(&[(Admission::Pipelined, 0, 5), (Admission::Pipelined, 0, 1)]);
        assert_eq!(events, ["start 0", "start 1", "end 1", "end 0"]);
    }

    #[test]
    fn a_pipelined_request_waits_for_the_one_before_to_dispatch() {
        let events = run(&[(Admission::Pipelined, 3, 0), (Admission::Pipelined, 0, 0)]);
        assert_eq!(events, ["start 0", "end 0", "start 1", "end 1"]);
    }

    #[test]
    fn an_exclusive_request_waits_for_every_earlier_one_to_finish() {
        let events = run(&[
            (Admission::Pipelined, 0, 5),
            (Admission::Pipelined, 0, 3),
            (Admission::Exclusive, 0, 0),
            (Admission::Pipelined, 0, 0),
        ]);
        assert_eq!(
            events,
            ["start 0", "start 1", "end 1", "end 0", "start 2", "end 2", "start 3", "end 3"]
        );
    }

    #[test]
    fn a_request_after_an_exclusive_one_waits_for_it_to_finish() {
        let events = run(&[(Admission::Exclusive, 2, 2), (Admission::Pipelined, 0, 0)]);
        assert_eq!(events, ["start 0", "end 0", "start 1", "end 1"]);
    }

    #[test]
    fn an_unordered_turn_never_waits() {
        let turn = Turn::unordered();
        futures_lite::future::block_on(turn.wait(Admission::Exclusive));
        turn.dispatched();
    }
}
