//! A stream's read and write halves for one thread, without a lock.
//!
//! A connection's reader and writer are two tasks on the same glommio
//! executor: their polls never overlap, so the halves share the stream
//! through `Rc<RefCell<_>>`, borrowed only inside a poll.
//! (`futures_lite::io::split` puts a mutex on every read and write, for
//! halves that may live on different threads; these cannot.)

use std::{
    cell::RefCell,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
};

use futures_lite::{AsyncRead, AsyncWrite};

/// Splits `stream` into halves that stay on this thread.
pub fn split<T: AsyncRead + AsyncWrite + Unpin>(stream: T) -> (ReadHalf<T>, WriteHalf<T>) {
    let stream = Rc::new(RefCell::new(stream));
    (ReadHalf(stream.clone()), WriteHalf(stream))
}

pub struct ReadHalf<T>(Rc<RefCell<T>>);

pub struct WriteHalf<T>(Rc<RefCell<T>>);

impl<T: AsyncRead + Unpin> AsyncRead for ReadHalf<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteHalf<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}
