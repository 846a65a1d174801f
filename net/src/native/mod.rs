//! The native protocol: length-prefixed frames carrying the requests and
//! responses in [`messages`], with stored batches carried as they are.

pub mod blocking;
pub mod codec;
mod error;
pub mod frame;
pub mod messages;
pub mod wire;

pub use error::ErrorCode;
