//! The wire of Sluice: the bytes that cross a socket, and nothing behind
//! them.
//!
//! The broker (in `sluice-engine`) speaks two protocols on one log. This
//! crate holds what can be said about each protocol without a partition in
//! sight: how a frame is cut from a stream, how a request or response is
//! encoded and decoded, and how a stored batch is turned into what the other
//! protocol's readers expect. It is a crate of its own so that the
//! protocols' bytes are defined in one place, apart from the engine that
//! acts on them, and the native client shares its decoders with the broker.
//!
//! * [`native`]: the native protocol. Length-prefixed frames
//!   ([`native::frame`], one reader for both protocols' prefixes),
//!   bounds-checked primitives ([`native::codec`]), one encoding per type
//!   ([`native::wire`]), the request and response messages by API family
//!   ([`native::messages`]), the error codes. Record batches cross it as
//!   the stored batch bytes, so a produced batch reaches the disk and a
//!   consumer untouched.
//! * [`kafka`]: what the broker needs of the Kafka protocol beside
//!   `kafka-protocol`'s message codecs. [`kafka::frame`] splits a request
//!   frame into its header and body and writes a response frame at the
//!   header version that goes with the request; [`kafka::convert`] turns a
//!   batch stored as a Kafka producer sent it (perhaps compressed) into a
//!   native batch, for a native client that fetches it, decompressing under
//!   a cap so that no input can take the broker down. It does not answer
//!   Kafka requests: the handlers, consumer groups and offset commits are
//!   the engine's. A native batch for a Kafka reader needs no decoding and
//!   is written by `sluice_storage::batch`.
//! * [`client`]: the native client library, used by the `sluice` command
//!   and the bench: connect, produce with batching, consume as a stream,
//!   admin calls. It does not reconnect or follow a leader.
//! * [`split`]: a stream's read and write halves for two tasks of one
//!   thread, without the lock a general split puts on every call. The
//!   broker's connection loop reads requests on one half while it writes
//!   responses on the other; it is only for `!Send` glommio tasks.
//!
//! What it does not do: know partitions, shards or the log's files, or
//! serve a request (the engine's handlers do, for both protocols). What it
//! does not trust: a length from the wire. The native decoders and the
//! Kafka batch converter check every declared length against the bytes
//! left and a cap before they allocate or slice.

pub mod client;
pub mod kafka;
pub mod native;
pub mod split;
pub mod tls;
