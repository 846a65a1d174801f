//! A blocking connection over `std::net`, one request at a time: for tools,
//! scripts and tests that want the wire without an async runtime (the
//! [`crate::client`] is the one for real work).

use std::{
    io::{self, Read, Write},
    net::TcpStream,
    time::Duration,
};

use bytes::Bytes;

use super::{
    frame::{encode_request, error_message, split_response, RequestHeader, FRAME_BYTES_MAX},
    messages::{ApiKey, Message},
    ErrorCode,
};

#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    #[error("{code}: {message}")]
    Broker { code: ErrorCode, message: String },
    #[error("response frame of {0} bytes is over the cap")]
    TooLarge(usize),
    #[error("response to {got} where {expected} was expected")]
    Mismatch { expected: u32, got: u32 },
    #[error("undecodable response: {0}")]
    Decode(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct Connection {
    stream: TcpStream,
    next_correlation_id: u32,
}

impl Connection {
    pub fn open(addr: &str, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            next_correlation_id: 1,
        })
    }

    /// Sends `request` at the newest version of `api` this code speaks
    /// (the one its message types are laid out for; there is no version
    /// handshake here) and waits for its response.
    pub fn call<R: Message>(
        &mut self,
        api: ApiKey,
        request: &impl Message,
    ) -> Result<R, BlockingError> {
        self.call_raw(api as u16, api.versions().1, request)
    }

    /// As `call`, with any api key and version on the wire.
    pub fn call_raw<R: Message>(
        &mut self,
        api_key: u16,
        api_version: u16,
        request: &impl Message,
    ) -> Result<R, BlockingError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader {
            api_key,
            api_version,
            correlation_id,
        };
        self.stream.write_all(&encode_request(header, request))?;
        let body = self.read_response(Some(correlation_id))?;
        R::from_bytes(body).map_err(|error| BlockingError::Decode(error.to_string()))
    }

    /// Writes bytes as they are: for sending what no encoder would.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame; an error frame becomes `Broker`.
    pub fn read_response(&mut self, expected: Option<u32>) -> Result<Bytes, BlockingError> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length)?;
        let length = u32::from_le_bytes(length) as usize;
        if length > FRAME_BYTES_MAX {
            return Err(BlockingError::TooLarge(length));
        }
        let mut frame = vec![0u8; length];
        self.stream.read_exact(&mut frame)?;
        let (header, body) = split_response(Bytes::from(frame))
            .map_err(|error| BlockingError::Decode(error.to_string()))?;
        if let Some(expected) = expected {
            if header.correlation_id != expected && header.error == ErrorCode::None {
                return Err(BlockingError::Mismatch {
                    expected,
                    got: header.correlation_id,
                });
            }
        }
        if header.error != ErrorCode::None {
            let message = error_message(body).unwrap_or_default();
            return Err(BlockingError::Broker {
                code: header.error,
                message,
            });
        }
        Ok(body)
    }

    /// Whether the broker closed the connection (a read gets end of file).
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }
}
