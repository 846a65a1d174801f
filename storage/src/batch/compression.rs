//! The Kafka codecs: bounded decompression of a Kafka batch's records, and
//! compression of records the cleaner rewrote (see [`compress`]).
//!
//! A Kafka producer compresses the records of a batch as a whole, with the
//! codec named in the batch's attributes. A few kilobytes of compressed
//! zeros can claim gigabytes, so nothing here trusts a size the input
//! declares: every codec writes into one output buffer that is never given
//! more capacity than the caller's cap, and decoding stops with
//! [`DecompressError::TooLarge`] the moment the output would pass it. A
//! decompression bomb costs at most the cap in output, and the time to
//! decode that much.
//!
//! The formats are Kafka's: gzip (members may be concatenated), snappy in
//! the xerial framing the Java client writes or raw (librdkafka may send
//! either; the xerial magic tells them apart, as Kafka's reader does), the
//! LZ4 frame format, and zstd frames.

use std::io::{self, Read};

/// The output buffer's first size: a typical compressed batch (a producer's
/// `batch.size` is 16 KiB by default) decompresses into it without a regrow.
const OUTPUT_BYTES_INITIAL: usize = 64 * 1024;

/// The largest zstd window accepted, as a power of two: 16 MiB, the batch
/// cap. The zstd decoder allocates the window a frame declares before it
/// decodes a byte, so a forged frame header alone could otherwise claim
/// 128 MiB (zstd's own default limit). A window larger than the whole output
/// may be is never needed to decode it; a frame compressed in streaming mode
/// at levels up to 19 (the Java client's way) declares at most 8 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The xerial snappy stream's magic, the first 8 bytes of its 16-byte
/// header (then a version and a compatible version, `i32` each).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
/// Each xerial block is a big-endian `u32` length, then a raw snappy block.
const XERIAL_BLOCK_LENGTH_BYTES: usize = 4;

/// A Kafka compression codec: attributes bits 0..3 (0 is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The codec of compression field `codec` (attributes bits 0..3): `None`
    /// for 0, uncompressed records.
    pub fn from_kafka(codec: u16) -> Result<Option<Codec>, DecompressError> {
        match codec {
            0 => Ok(None),
            1 => Ok(Some(Codec::Gzip)),
            2 => Ok(Some(Codec::Snappy)),
            3 => Ok(Some(Codec::Lz4)),
            4 => Ok(Some(Codec::Zstd)),
            _ => Err(DecompressError::UnknownCodec { codec }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why compressed records could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unknown kafka compression codec {codec}")]
    UnknownCodec { codec: u16 },
    #[error("{codec} records decompress to more than {max} bytes")]
    TooLarge { codec: Codec, max: usize },
    #[error("{codec} records do not decompress: {reason}")]
    Corrupt { codec: Codec, reason: String },
}

/// Decompresses `compressed`, a Kafka batch's records section, into a new
/// buffer of at most `bytes_max` bytes, whose capacity never passes
/// `bytes_max` either.
///
/// Fails with [`DecompressError::TooLarge`] as soon as the output would pass
/// `bytes_max`, and with [`DecompressError::Corrupt`] when the input is not
/// a whole stream of the codec (a truncated stream included).
pub fn decompress(
    codec: Codec,
    compressed: &[u8],
    bytes_max: usize,
) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |error: io::Error| DecompressError::Corrupt {
        codec,
        reason: error.to_string(),
    };
    match codec {
        Codec::Gzip => {
            let mut decoder = flate2::bufread::MultiGzDecoder::new(compressed);
            read_bounded(&mut decoder, codec, bytes_max)
        }
        Codec::Snappy => snappy(compressed, bytes_max),
        Codec::Lz4 => {
            let mut decoder = lz4::Decoder::new(compressed).map_err(corrupt)?;
            let out = read_bounded(&mut decoder, codec, bytes_max)?;
            // The decoder reads a stream cut short as one that ended.
            decoder.finish().1.map_err(|_| DecompressError::Corrupt {
                codec,
                reason: "the lz4 frame is cut short".to_owned(),
            })?;
            Ok(out)
        }
        Codec::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(corrupt)?;
            read_bounded(&mut decoder, codec, bytes_max)
        }
    }
}

/// Reads `reader` to its end into a buffer that grows by doubling up to
/// `bytes_max` and no further; one byte more than `bytes_max` is
/// [`DecompressError::TooLarge`].
fn read_bounded(
    reader: &mut impl Read,
    codec: Codec,
    bytes_max: usize,
) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |error: io::Error| DecompressError::Corrupt {
        codec,
        reason: error.to_string(),
    };
    let mut out = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if filled == bytes_max {
                // Full: the stream must end here.
                let mut probe = [0_u8; 1];
                return match read_retrying(reader, &mut probe).map_err(corrupt)? {
                    0 => Ok(out),
                    _ => Err(DecompressError::TooLarge {
                        codec,
                        max: bytes_max,
                    }),
                };
            }
            let grown = filled
                .saturating_mul(2)
                .max(OUTPUT_BYTES_INITIAL)
                .min(bytes_max);
            reserve_bounded(&mut out, grown, bytes_max);
            out.resize(grown, 0);
        }
        match read_retrying(reader, &mut out[filled..]).map_err(corrupt)? {
            0 => {
                out.truncate(filled);
                return Ok(out);
            }
            read => filled += read,
        }
    }
}

fn read_retrying(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Gives `out` room for `needed` bytes in all, growing its capacity at
/// least twofold (so appends stay linear) but never past `bytes_max`.
fn reserve_bounded(out: &mut Vec<u8>, needed: usize, bytes_max: usize) {
    assert!(
        needed <= bytes_max,
        "{needed} bytes asked of a buffer capped at {bytes_max}"
    );
    if needed <= out.capacity() {
        return;
    }
    let capacity = needed
        .max(out.capacity().saturating_mul(2))
        .max(OUTPUT_BYTES_INITIAL)
        .min(bytes_max);
    out.reserve_exact(capacity - out.len());
}

/// The block size of the xerial snappy framing the Java client writes.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Why records could not be compressed.
#[derive(Debug, thiserror::Error)]
#[error("{codec} compression failed: {source}")]
pub struct CompressError {
    pub codec: Codec,
    pub source: io::Error,
}

/// Compresses `bytes` (a Kafka batch's records section) with `codec`, in the
/// form Kafka's clients read: a gzip member, xerial-framed snappy (as the
/// Java client writes; librdkafka reads it too), an LZ4 frame, a zstd frame.
/// The output is at most a few bytes per block larger than `bytes`.
pub fn compress(codec: Codec, bytes: &[u8]) -> Result<Vec<u8>, CompressError> {
    compress_at(codec, bytes, None)
}

/// [`compress`] at `level` (the codec's default when `None`; snappy has no
/// levels): Kafka's `compression.gzip.level`, `compression.lz4.level`,
/// `compression.zstd.level`, whose ranges the caller checked.
pub fn compress_at(
    codec: Codec,
    bytes: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, CompressError> {
    use std::io::Write;
    let failed = |source: io::Error| CompressError { codec, source };
    match codec {
        Codec::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(bytes.len() / 2),
                level.map_or(flate2::Compression::default(), |level| {
                    flate2::Compression::new(level.clamp(0, 9) as u32)
                }),
            );
            encoder.write_all(bytes).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Codec::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + bytes.len());
            out.extend_from_slice(XERIAL_MAGIC);
            // Version 1, compatible with version 1.
            out.extend_from_slice(&1_i32.to_be_bytes());
            out.extend_from_slice(&1_i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in bytes.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|error| failed(io::Error::other(error)))?;
                let length =
                    u32::try_from(block.len()).expect("a snappy block of a chunk fits u32");
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Codec::Lz4 => {
            let mut builder = lz4::EncoderBuilder::new();
            if let Some(level) = level {
                builder.level(level.clamp(0, 17) as u32);
            }
            let mut encoder = builder
                .build(Vec::with_capacity(bytes.len() / 2))
                .map_err(failed)?;
            encoder.write_all(bytes).map_err(failed)?;
            let (out, result) = encoder.finish();
            result.map_err(failed)?;
            Ok(out)
        }
        Codec::Zstd => zstd::encode_all(bytes, level.unwrap_or(3)).map_err(failed),
    }
}

/// Snappy, xerial-framed if it starts with the xerial magic, raw if not.
fn snappy(compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, DecompressError> {
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let is_xerial = compressed.len() >= XERIAL_HEADER_BYTES && compressed.starts_with(XERIAL_MAGIC);
    if !is_xerial {
        snappy_block(&mut decoder, compressed, &mut out, bytes_max)?;
        return Ok(out);
    }
    let mut rest = &compressed[XERIAL_HEADER_BYTES..];
    while !rest.is_empty() {
        // Concatenated xerial streams repeat the header; xerial skips it.
        if rest.len() >= XERIAL_HEADER_BYTES && rest.starts_with(XERIAL_MAGIC) {
            rest = &rest[XERIAL_HEADER_BYTES..];
            continue;
        }
        let Some((length, after)) = rest.split_first_chunk::<XERIAL_BLOCK_LENGTH_BYTES>() else {
            return Err(snappy_corrupt(format!(
                "a block length is cut short: {} bytes",
                rest.len()
            )));
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > after.len() {
            return Err(snappy_corrupt(format!(
                "a block of {length} bytes where {} are left",
                after.len()
            )));
        }
        let (block, after) = after.split_at(length);
        snappy_block(&mut decoder, block, &mut out, bytes_max)?;
        rest = after;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, after checking the length it
/// declares against what `out` may still take.
fn snappy_block(
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    bytes_max: usize,
) -> Result<(), DecompressError> {
    let length =
        snap::raw::decompress_len(block).map_err(|error| snappy_corrupt(error.to_string()))?;
    let start = out.len();
    let end = start
        .checked_add(length)
        .filter(|end| *end <= bytes_max)
        .ok_or(DecompressError::TooLarge {
            codec: Codec::Snappy,
            max: bytes_max,
        })?;
    reserve_bounded(out, end, bytes_max);
    out.resize(end, 0);
    let written = decoder
        .decompress(block, &mut out[start..])
        .map_err(|error| snappy_corrupt(error.to_string()))?;
    if written != length {
        return Err(snappy_corrupt(format!(
            "a block declares {length} bytes but holds {written}"
        )));
    }
    Ok(())
}

fn snappy_corrupt(reason: String) -> DecompressError {
    DecompressError::Corrupt {
        codec: Codec::Snappy,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

    fn compress(codec: Codec, bytes: &[u8]) -> Vec<u8> {
        match codec {
            Codec::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap()
            }
            Codec::Snappy => snap::raw::Encoder::new().compress_vec(bytes).unwrap(),
            Codec::Lz4 => {
                let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
                encoder.write_all(bytes).unwrap();
                let (out, result) = encoder.finish();
                result.unwrap();
                out
            }
            Codec::Zstd => zstd::encode_all(bytes, 3).unwrap(),
        }
    }

    #[test]
    fn output_up_to_the_cap_is_given_in_a_buffer_no_larger() {
        // Not a power of two, and past the first buffer size.
        let bytes_max = 100_003;
        let bytes: Vec<u8> = (0..bytes_max + 1).map(|i| (i % 251) as u8).collect();
        for codec in CODECS {
            let out = decompress(codec, &compress(codec, &bytes[..bytes_max]), bytes_max)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(out, &bytes[..bytes_max], "{codec}");
            assert!(out.capacity() <= bytes_max, "{codec}: {}", out.capacity());
            assert_eq!(
                decompress(codec, &compress(codec, &bytes), bytes_max),
                Err(DecompressError::TooLarge {
                    codec,
                    max: bytes_max
                })
            );
        }
    }

    #[test]
    fn empty_and_truncated_streams_are_corrupt() {
        let bytes = vec![7_u8; 10_000];
        for codec in CODECS {
            let compressed = compress(codec, &bytes);
            for length in [0, 1, compressed.len() / 2, compressed.len() - 1] {
                match decompress(codec, &compressed[..length], 1 << 20) {
                    Err(DecompressError::Corrupt { .. }) => {}
                    // A snappy prefix may hold whole blocks: never all.
                    Ok(out) => assert!(out.len() < bytes.len(), "{codec}: {length} bytes"),
                    Err(error) => panic!("{codec}: {length} bytes: {error}"),
                }
            }
        }
    }

    #[test]
    fn zstd_frames_asking_a_window_over_the_limit_are_refused() {
        // Magic, a descriptor without content size, then a window of 2^25:
        // refused before the decoder allocates it.
        let frame = [
            0x28,
            0xb5,
            0x2f,
            0xfd,
            0x00,
            (25 - 10) << 3,
            0x01,
            0x00,
            0x00,
        ];
        assert!(matches!(
            decompress(Codec::Zstd, &frame, 1 << 30),
            Err(DecompressError::Corrupt {
                codec: Codec::Zstd,
                ..
            })
        ));
        // The same frame with a window of 2^24 is an empty last raw block.
        let frame = [
            0x28,
            0xb5,
            0x2f,
            0xfd,
            0x00,
            (24 - 10) << 3,
            0x01,
            0x00,
            0x00,
        ];
        assert_eq!(decompress(Codec::Zstd, &frame, 1 << 30), Ok(Vec::new()));
    }

    #[test]
    fn what_compress_writes_decompresses_to_the_same_bytes() {
        let bytes: Vec<u8> = (0..200_000).map(|i| (i % 13) as u8).collect();
        for codec in CODECS {
            let compressed = super::compress(codec, &bytes).unwrap();
            assert!(compressed.len() < bytes.len(), "{codec}");
            assert_eq!(decompress(codec, &compressed, 1 << 20).unwrap(), bytes);
        }
    }

    #[test]
    fn only_kafka_codecs_are_known() {
        assert_eq!(Codec::from_kafka(0), Ok(None));
        assert_eq!(Codec::from_kafka(4), Ok(Some(Codec::Zstd)));
        assert_eq!(
            Codec::from_kafka(5),
            Err(DecompressError::UnknownCodec { codec: 5 })
        );
    }
}
