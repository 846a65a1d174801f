//! Single-threaded completions for the client's tasks. Everything here lives
//! on one executor (the client is `!Send`), so a `RefCell` and a list of
//! wakers is all a completion needs.

use std::{
    cell::RefCell,
    future::Future,
    task::{Context, Poll, Waker},
    time::Duration,
};

use super::ClientError;

/// A value set once and read by the waiters: a response for one request,
/// or the outcome of one batch for every record in it.
pub(crate) struct Completion<T> {
    value: RefCell<Option<T>>,
    waiters: Waiters,
}

impl<T: Clone> Completion<T> {
    pub(crate) fn new() -> Completion<T> {
        Completion {
            value: RefCell::new(None),
            waiters: Waiters::default(),
        }
    }

    /// Sets the value and wakes the waiters. The first value wins; a later
    /// one is dropped and `false` returned.
    pub(crate) fn complete(&self, value: T) -> bool {
        {
            let mut slot = self.value.borrow_mut();
            if slot.is_some() {
                return false;
            }
            *slot = Some(value);
        }
        self.waiters.wake_all();
        true
    }

    pub(crate) fn poll_value(&self, cx: &mut Context<'_>) -> Poll<T> {
        match &*self.value.borrow() {
            Some(value) => Poll::Ready(value.clone()),
            None => {
                self.waiters.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// Takes the value out, for a completion with one waiter.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        match self.value.borrow_mut().take() {
            Some(value) => Poll::Ready(value),
            None => {
                self.waiters.register(cx.waker());
                Poll::Pending
            }
        }
    }

    pub(crate) async fn wait(&self) -> T {
        std::future::poll_fn(|cx| self.poll_value(cx)).await
    }
}

/// Wakers of the tasks waiting for something to change.
#[derive(Default)]
pub(crate) struct Waiters {
    wakers: RefCell<Vec<Waker>>,
}

impl Waiters {
    /// Registers a waker, once per task.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|known| known.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Waits until `ready` holds, checking it again after every wake.
    pub(crate) async fn until(&self, mut ready: impl FnMut() -> bool) {
        std::future::poll_fn(|cx| {
            if ready() {
                Poll::Ready(())
            } else {
                self.register(cx.waker());
                Poll::Pending
            }
        })
        .await
    }
}

/// `future`, or `ClientError::Timeout` once `after` has passed.
pub(crate) async fn with_timeout<T>(
    after: Duration,
    future: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    futures_lite::future::or(future, async {
        glommio::timer::sleep(after).await;
        Err(ClientError::Timeout { after })
    })
    .await
}
