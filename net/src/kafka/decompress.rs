//! Bounded decompression of a Kafka batch's records: the codecs live in
//! storage (`sluice_storage::batch::compression`), which also needs them to
//! rewrite the batches of compacted topics.

pub use sluice_storage::batch::compression::{decompress, Codec, DecompressError};
