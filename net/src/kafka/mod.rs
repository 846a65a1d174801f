//! The Kafka wire protocol: framing with `kafka-protocol`'s codecs, and the
//! conversion of stored Kafka batches for native readers.

pub mod convert;
mod decompress;
pub mod frame;
