//! Framing: every message is a u32 little-endian length and that many bytes.
//!
//! A request's bytes start with a header (api key u16, api version u16,
//! correlation id u32); a response's with (correlation id u32, frame error
//! u16). A frame error other than `None` means the request as a whole could
//! not be served (unknown API, unsupported version, undecodable body): the
//! body is then a message string. Requests on one connection may be answered
//! out of order; the correlation id pairs them.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt};

use super::{
    codec::{DecodeError, Reader, Writer},
    messages::Message,
    ErrorCode,
};

/// A frame is at most this large. It holds a produce request of a few
/// batches of the largest size (16 MiB); anything larger is refused from
/// its length prefix, before a byte of it is buffered.
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

pub const REQUEST_HEADER_BYTES: usize = 8;
pub const RESPONSE_HEADER_BYTES: usize = 6;

/// Bytes read from a socket at a time, at most, when the frame's size is not
/// yet known.
const READ_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: u16,
    pub api_version: u16,
    pub correlation_id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    pub correlation_id: u32,
    pub error: ErrorCode,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {declared} bytes is over the cap of {max}")]
    TooLarge { declared: usize, max: usize },
    #[error("frame of {bytes} bytes is too short for its header")]
    TooShort { bytes: usize },
    #[error("connection closed inside a frame ({buffered} bytes buffered)")]
    ClosedMidFrame { buffered: usize },
    #[error("no progress on a partial frame for {0:?}")]
    Stalled(Duration),
    #[error("connection idle for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A request frame: its header and body.
pub fn encode_request(header: RequestHeader, body: &impl Message) -> BytesMut {
    let mut out = BytesMut::with_capacity(256);
    out.put_u32_le(0);
    out.put_u16_le(header.api_key);
    out.put_u16_le(header.api_version);
    out.put_u32_le(header.correlation_id);
    body.encode(&mut Writer::new(&mut out));
    patch_length(&mut out);
    out
}

/// A response frame with a body.
pub fn encode_response(correlation_id: u32, body: &impl Message) -> BytesMut {
    let mut out = BytesMut::with_capacity(256);
    out.put_u32_le(0);
    out.put_u32_le(correlation_id);
    out.put_u16_le(ErrorCode::None as u16);
    body.encode(&mut Writer::new(&mut out));
    patch_length(&mut out);
    out
}

/// A response frame that says the request failed as a whole.
pub fn encode_error_response(correlation_id: u32, error: ErrorCode, message: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(64 + message.len());
    out.put_u32_le(0);
    out.put_u32_le(correlation_id);
    out.put_u16_le(error as u16);
    Writer::new(&mut out).string(message);
    patch_length(&mut out);
    out
}

fn patch_length(out: &mut BytesMut) {
    let length = u32::try_from(out.len() - 4).expect("frame fits u32");
    out[..4].copy_from_slice(&length.to_le_bytes());
}

pub fn split_request(mut frame: Bytes) -> Result<(RequestHeader, Bytes), FrameError> {
    if frame.len() < REQUEST_HEADER_BYTES {
        return Err(FrameError::TooShort { bytes: frame.len() });
    }
    let header = RequestHeader {
        api_key: frame.get_u16_le(),
        api_version: frame.get_u16_le(),
        correlation_id: frame.get_u32_le(),
    };
    Ok((header, frame))
}

pub fn split_response(mut frame: Bytes) -> Result<(ResponseHeader, Bytes), FrameError> {
    if frame.len() < RESPONSE_HEADER_BYTES {
        return Err(FrameError::TooShort { bytes: frame.len() });
    }
    let header = ResponseHeader {
        correlation_id: frame.get_u32_le(),
        error: ErrorCode::from_u16(frame.get_u16_le()),
    };
    Ok((header, frame))
}

/// The message of an error response's body.
pub fn error_message(body: Bytes) -> Result<String, DecodeError> {
    Reader::new(body).string("error message")
}

/// Reads frames from a byte stream, one buffer reused across frames.
pub struct FrameReader {
    buffer: BytesMut,
    frame_bytes_max: usize,
    /// Kafka's frames have a big-endian length prefix, the native ones a
    /// little-endian one; everything else is the same.
    big_endian: bool,
}

/// How long a reader waits: for the first byte of a frame (`idle`), and for
/// more of a frame once it has begun (`stalled`).
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    pub idle: Option<Duration>,
    pub stalled: Duration,
}

impl FrameReader {
    pub fn new(frame_bytes_max: usize) -> FrameReader {
        FrameReader {
            buffer: BytesMut::with_capacity(READ_CHUNK_BYTES),
            frame_bytes_max,
            big_endian: false,
        }
    }

    /// A reader of Kafka frames: an i32 big-endian length prefix (a negative
    /// one reads as too large).
    pub fn kafka(frame_bytes_max: usize) -> FrameReader {
        FrameReader {
            big_endian: true,
            ..FrameReader::new(frame_bytes_max)
        }
    }

    /// Caps the frames read from now on at `frame_bytes_max` bytes.
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.frame_bytes_max = frame_bytes_max;
    }

    /// The next frame's bytes (without the length prefix), or `None` when the
    /// stream ends cleanly between frames. The declared length is checked
    /// against the cap before any room is made for it.
    pub async fn next<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        timeouts: ReadTimeouts,
    ) -> Result<Option<Bytes>, FrameError> {
        loop {
            let wanted = READ_CHUNK_BYTES;
            if self.buffer.len() >= 4 {
                let prefix: [u8; 4] = self.buffer[..4].try_into().expect("4 bytes");
                let declared = if self.big_endian {
                    u32::from_be_bytes(prefix) as usize
                } else {
                    u32::from_le_bytes(prefix) as usize
                };
                if declared > self.frame_bytes_max {
                    return Err(FrameError::TooLarge {
                        declared,
                        max: self.frame_bytes_max,
                    });
                }
                if self.buffer.len() >= 4 + declared {
                    self.buffer.advance(4);
                    return Ok(Some(self.buffer.split_to(declared).freeze()));
                }
                if 4 + declared > READ_CHUNK_BYTES {
                    return self
                        .next_large(stream, declared, timeouts.stalled)
                        .await
                        .map(Some);
                }
            }
            let start = self.buffer.len();
            let timeout = if start == 0 {
                timeouts.idle
            } else {
                Some(timeouts.stalled)
            };
            let read = match read_into(stream, &mut self.buffer, wanted, timeout).await {
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(match start {
                        0 => FrameError::Idle(timeouts.idle.unwrap_or_default()),
                        _ => FrameError::Stalled(timeouts.stalled),
                    });
                }
                Err(error) => return Err(error.into()),
            };
            if read == 0 {
                return match start {
                    0 => Ok(None),
                    buffered => Err(FrameError::ClosedMidFrame { buffered }),
                };
            }
        }
    }

    /// A frame larger than a read chunk gets an allocation of its own, read
    /// into directly: the batches sliced out of it then share it with nothing
    /// else, so the broker can set a batch's base offset in place instead of
    /// copying it.
    async fn next_large<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        declared: usize,
        stalled: Duration,
    ) -> Result<Bytes, FrameError> {
        let mut frame = BytesMut::with_capacity(declared);
        frame.extend_from_slice(&self.buffer[4..]);
        self.buffer.clear();
        while frame.len() < declared {
            let wanted = declared - frame.len();
            let read = match read_into(stream, &mut frame, wanted, Some(stalled)).await {
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(FrameError::Stalled(stalled));
                }
                Err(error) => return Err(error.into()),
            };
            if read == 0 {
                return Err(FrameError::ClosedMidFrame {
                    buffered: 4 + frame.len(),
                });
            }
        }
        Ok(frame.freeze())
    }
}

/// Reads at most `wanted` bytes onto the end of `buffer`, failing with
/// `TimedOut` past `timeout`.
async fn read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut BytesMut,
    wanted: usize,
    timeout: Option<Duration>,
) -> std::io::Result<usize> {
    let start = buffer.len();
    buffer.resize(start + wanted, 0);
    let read = stream.read(&mut buffer[start..]);
    let result = match timeout {
        None => read.await,
        Some(limit) => {
            let timer = async {
                glommio::timer::sleep(limit).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "frame read timed out",
                ))
            };
            futures_lite::future::or(read, timer).await
        }
    };
    buffer.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::messages::{
        Acks, ApiVersionsRequest, ProducePartition, ProduceRequest, ProduceTopic,
    };

    #[test]
    fn a_large_frame_owns_its_bytes_and_small_ones_are_read_together() {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let header = |api_key| RequestHeader {
                    api_key,
                    api_version: 0,
                    correlation_id: 1,
                };
                let hello = encode_request(header(0), &ApiVersionsRequest { client: "x".into() });
                let batch = Bytes::from(vec![7u8; 300 * 1024]);
                let produce = ProduceRequest {
                    acks: Acks::All,
                    timeout_ms: 1,
                    topics: vec![ProduceTopic {
                        name: "t".into(),
                        partitions: vec![ProducePartition {
                            partition: 0,
                            batch: batch.clone(),
                        }],
                    }],
                };
                let mut wire = hello.to_vec();
                wire.extend_from_slice(&encode_request(header(4), &produce));
                wire.extend_from_slice(&hello);
                let mut stream = futures_lite::io::Cursor::new(wire);
                let mut frames = FrameReader::new(FRAME_BYTES_MAX);
                let timeouts = ReadTimeouts {
                    idle: None,
                    stalled: Duration::from_secs(5),
                };
                let first = frames.next(&mut stream, timeouts).await.unwrap().unwrap();
                assert_eq!(split_request(first).unwrap().0.api_key, 0);
                let large = frames.next(&mut stream, timeouts).await.unwrap().unwrap();
                let (_, body) = split_request(large).unwrap();
                let decoded = ProduceRequest::from_bytes(body).unwrap();
                let stored = decoded
                    .topics
                    .into_iter()
                    .next()
                    .unwrap()
                    .partitions
                    .remove(0)
                    .batch;
                assert_eq!(stored, batch);
                assert!(
                    stored.try_into_mut().is_ok(),
                    "the batch shares its allocation"
                );
                let last = frames.next(&mut stream, timeouts).await.unwrap().unwrap();
                assert_eq!(split_request(last).unwrap().0.api_key, 0);
                assert!(frames.next(&mut stream, timeouts).await.unwrap().is_none());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
