//! The wire of Sluice.
//!
//! * [`native`]: the native protocol — framing, the request and response
//!   messages, the error codes. Record batches cross it as the stored batch
//!   bytes, so a produced batch reaches the disk and a consumer untouched.
//! * [`client`]: the native client library, used by the `sluice` command
//!   and the bench: connect, produce with batching, consume as a stream,
//!   admin calls.
//!
//! This crate knows nothing of partitions' internals: the broker (in
//! `sluice-engine`) implements the handlers.

pub mod client;
pub mod kafka;
pub mod native;
pub mod split;
