//! Just enough of RESP2 (the Redis protocol) for the Redis Streams driver:
//! commands out as arrays of bulk strings, replies read back by a cursor
//! that borrows from the read buffer, so that reading a record allocates
//! nothing.
//!
//! Hand-written rather than the `redis` crate, so that the driver runs on
//! the harness's glommio executors over glommio's `TcpStream` like the
//! native one (no tokio, no extra threads). It is a client for a trusted
//! server on loopback, but a reply is still read defensively: every length
//! is checked against a limit before anything is allocated for it, and a
//! reply is taken only once it is complete.

use std::io::Write as _;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use sluice_net::split::{split, ReadHalf, WriteHalf};

/// A type line (`+OK`, `-ERR ...`, `:1`, `$5`, `*2`): error messages are
/// the longest, and a server's are short.
pub const LINE_BYTES_MAX: usize = 4096;

/// One bulk string: a record value is at most
/// [`MESSAGE_BYTES_MAX`](crate::workload::MESSAGE_BYTES_MAX) (1 MiB), so
/// twice that is a broken stream.
pub const BULK_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Elements of one array: an XREAD reply holds at most its COUNT entries
/// per stream, and the driver asks for far fewer.
pub const ARRAY_LEN_MAX: usize = 1 << 20;

/// Arrays within arrays: an XREAD reply is four deep.
pub const DEPTH_MAX: usize = 8;

/// One whole reply in the read buffer; the driver's XREAD COUNT keeps its
/// replies well under this.
pub const REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What the read buffer starts with, grown (up to [`REPLY_BYTES_MAX`]) for
/// a larger reply.
const READ_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RespError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("bad reply: {reason}")]
    Protocol { reason: &'static str },
    #[error("{what} of {length} is over the limit of {max}")]
    TooLong {
        what: &'static str,
        length: u64,
        max: u64,
    },
    /// The server answered with an error reply.
    #[error("the server said: {message}")]
    Server { message: String },
    #[error("unexpected reply: expected {expected}")]
    Unexpected { expected: &'static str },
}

/// Why a parse stopped.
#[derive(Debug)]
pub enum ParseError {
    /// The reply goes on beyond the bytes buffered so far.
    Incomplete,
    Invalid(RespError),
}

impl From<RespError> for ParseError {
    fn from(error: RespError) -> ParseError {
        ParseError::Invalid(error)
    }
}

impl From<ParseError> for RespError {
    fn from(error: ParseError) -> RespError {
        match error {
            // Only ever seen on a complete reply, which ends where it says.
            ParseError::Incomplete => RespError::Protocol {
                reason: "a reply ends early",
            },
            ParseError::Invalid(error) => error,
        }
    }
}

/// Reads a reply's values in order, borrowing them from the buffer.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buffer: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buffer: &'a [u8]) -> Cursor<'a> {
        Cursor {
            buffer,
            position: 0,
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The next line, without its CRLF.
    fn line(&mut self) -> Result<&'a [u8], ParseError> {
        let rest = &self.buffer[self.position..];
        let searched = &rest[..rest.len().min(LINE_BYTES_MAX + 2)];
        match searched.windows(2).position(|pair| pair == b"\r\n") {
            Some(end) => {
                self.position += end + 2;
                Ok(&rest[..end])
            }
            None if rest.len() >= LINE_BYTES_MAX + 2 => Err(RespError::TooLong {
                what: "a line",
                length: rest.len() as u64,
                max: LINE_BYTES_MAX as u64,
            }
            .into()),
            None => Err(ParseError::Incomplete),
        }
    }

    /// The next value's type byte and the rest of its line. An error reply
    /// is returned as [`RespError::Server`].
    fn header(&mut self) -> Result<(u8, &'a [u8]), ParseError> {
        let line = self.line()?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(RespError::Protocol {
                reason: "an empty line",
            }
            .into());
        };
        if kind == b'-' {
            return Err(RespError::Server {
                message: String::from_utf8_lossy(rest).into_owned(),
            }
            .into());
        }
        Ok((kind, rest))
    }

    /// An array's length; `None` for a null array (XREAD that timed out).
    pub fn array(&mut self) -> Result<Option<usize>, ParseError> {
        match self.header()? {
            (b'*', length) => Ok(parse_length(length, ARRAY_LEN_MAX, "an array")?),
            _ => Err(RespError::Unexpected {
                expected: "an array",
            }
            .into()),
        }
    }

    /// An array of exactly `length` elements.
    pub fn array_of(&mut self, length: usize) -> Result<(), ParseError> {
        match self.array()? {
            Some(found) if found == length => Ok(()),
            _ => Err(RespError::Unexpected {
                expected: "an array of another length",
            }
            .into()),
        }
    }

    /// A bulk string (or a simple one); `None` for a null bulk string.
    pub fn bulk(&mut self) -> Result<Option<&'a [u8]>, ParseError> {
        match self.header()? {
            (b'+', text) => Ok(Some(text)),
            (b'$', length) => {
                let Some(length) = parse_length(length, BULK_BYTES_MAX, "a bulk string")? else {
                    return Ok(None);
                };
                let rest = &self.buffer[self.position..];
                if rest.len() < length + 2 {
                    return Err(ParseError::Incomplete);
                }
                if &rest[length..length + 2] != b"\r\n" {
                    return Err(RespError::Protocol {
                        reason: "a bulk string without its CRLF",
                    }
                    .into());
                }
                self.position += length + 2;
                Ok(Some(&rest[..length]))
            }
            _ => Err(RespError::Unexpected {
                expected: "a string",
            }
            .into()),
        }
    }

    /// Steps over one whole value, error replies included.
    pub fn skip(&mut self) -> Result<(), ParseError> {
        self.skip_within(0)
    }

    fn skip_within(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth > DEPTH_MAX {
            return Err(RespError::TooLong {
                what: "nesting",
                length: depth as u64,
                max: DEPTH_MAX as u64,
            }
            .into());
        }
        let before = self.position;
        match self.header() {
            Ok((b'+' | b':', _)) => Ok(()),
            Ok((b'$', _)) => {
                self.position = before;
                self.bulk().map(|_| ())
            }
            Ok((b'*', length)) => {
                let length = parse_length(length, ARRAY_LEN_MAX, "an array")?;
                for _ in 0..length.unwrap_or(0) {
                    self.skip_within(depth + 1)?;
                }
                Ok(())
            }
            Ok(_) => Err(RespError::Protocol {
                reason: "an unknown type byte",
            }
            .into()),
            // An error reply is a complete value too.
            Err(ParseError::Invalid(RespError::Server { .. })) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// A length line's number, `None` for -1, at most `max`.
fn parse_length(text: &[u8], max: usize, what: &'static str) -> Result<Option<usize>, RespError> {
    if text == b"-1" {
        return Ok(None);
    }
    let invalid = RespError::Protocol {
        reason: "a length that is not a number",
    };
    // More digits than any limit has: refused before they overflow.
    if text.is_empty() || text.len() > 12 || !text.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    let length = text
        .iter()
        .fold(0u64, |sum, digit| sum * 10 + u64::from(digit - b'0'));
    if length > max as u64 {
        return Err(RespError::TooLong {
            what,
            length,
            max: max as u64,
        });
    }
    Ok(Some(length as usize))
}

/// Appends a command (an array of bulk strings) to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The read side of a connection: whole replies, one after another.
pub struct Reader {
    stream: ReadHalf<TcpStream>,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the last reply returned, dropped at the next read.
    taken: usize,
}

impl Reader {
    /// The next whole reply, borrowed until the next call.
    pub async fn reply(&mut self) -> Result<&[u8], RespError> {
        self.start += std::mem::take(&mut self.taken);
        loop {
            let parsed = {
                let mut cursor = Cursor::new(&self.buffer[self.start..self.end]);
                cursor.skip().map(|()| cursor.position())
            };
            match parsed {
                Ok(length) => {
                    self.taken = length;
                    return Ok(&self.buffer[self.start..self.start + length]);
                }
                Err(ParseError::Invalid(error)) => return Err(error),
                Err(ParseError::Incomplete) => self.fill().await?,
            }
        }
    }

    /// Reads more bytes, making room first.
    async fn fill(&mut self) -> Result<(), RespError> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            if self.buffer.len() >= REPLY_BYTES_MAX {
                return Err(RespError::TooLong {
                    what: "a reply",
                    length: self.end as u64,
                    max: REPLY_BYTES_MAX as u64,
                });
            }
            let grown = (self.buffer.len() * 2).min(REPLY_BYTES_MAX);
            self.buffer.resize(grown, 0);
        }
        let read = self.stream.read(&mut self.buffer[self.end..]).await?;
        if read == 0 {
            return Err(RespError::Closed);
        }
        self.end += read;
        Ok(())
    }
}

/// The write side of a connection: commands gathered, then written at
/// once.
pub struct Writer {
    stream: WriteHalf<TcpStream>,
    out: Vec<u8>,
}

impl Writer {
    /// Adds a command to the ones waiting to be written.
    pub fn push(&mut self, args: &[&[u8]]) {
        encode_command(&mut self.out, args);
    }

    /// Bytes waiting to be written.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Writes every command pushed so far.
    pub async fn flush(&mut self) -> Result<(), RespError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.out).await;
        self.out.clear();
        result?;
        self.stream.flush().await?;
        Ok(())
    }
}

/// A connection to a Redis server.
pub struct Connection {
    pub reader: Reader,
    pub writer: Writer,
}

impl Connection {
    pub async fn connect(address: &str) -> Result<Connection, RespError> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(std::io::Error::from)?;
        stream.set_nodelay(true).map_err(std::io::Error::from)?;
        let (read, write) = split(stream);
        Ok(Connection {
            reader: Reader {
                stream: read,
                buffer: vec![0; READ_BUFFER_BYTES],
                start: 0,
                end: 0,
                taken: 0,
            },
            writer: Writer {
                stream: write,
                out: Vec::with_capacity(READ_BUFFER_BYTES),
            },
        })
    }

    /// Sends one command and returns its reply (an error reply as
    /// [`RespError::Server`]).
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<&[u8], RespError> {
        self.writer.push(args);
        self.writer.flush().await?;
        let reply = self.reader.reply().await?;
        if let Some(message) = reply.strip_prefix(b"-") {
            return Err(RespError::Server {
                message: String::from_utf8_lossy(message.trim_ascii_end()).into_owned(),
            });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"XADD", b"t-0", b"*", b"v", b"\x00\r\n"]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$3\r\nt-0\r\n$1\r\n*\r\n$1\r\nv\r\n$3\r\n\x00\r\n\r\n"
        );
    }

    #[test]
    fn values_are_read_in_order_and_borrowed() {
        let reply = b"*2\r\n$3\r\na\r\n\r\n*-1\r\n+OK\r\n$-1\r\n";
        let mut cursor = Cursor::new(reply);
        assert_eq!(cursor.array().unwrap(), Some(2));
        assert_eq!(cursor.bulk().unwrap(), Some(&b"a\r\n"[..]), "binary safe");
        assert_eq!(cursor.array().unwrap(), None);
        assert_eq!(cursor.bulk().unwrap(), Some(&b"OK"[..]));
        assert_eq!(cursor.bulk().unwrap(), None);
        assert_eq!(cursor.position(), reply.len());
    }

    #[test]
    fn a_reply_is_whole_only_when_every_byte_is_there() {
        let reply = b"*2\r\n*2\r\n$2\r\nid\r\n:7\r\n-ERR no\r\n";
        let mut cursor = Cursor::new(reply);
        cursor.skip().unwrap();
        assert_eq!(cursor.position(), reply.len());
        for cut in 0..reply.len() {
            assert!(
                matches!(
                    Cursor::new(&reply[..cut]).skip(),
                    Err(ParseError::Incomplete)
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn lengths_over_their_limits_are_refused_before_any_allocation() {
        let too_long = format!("${}\r\n", BULK_BYTES_MAX + 1);
        assert!(matches!(
            Cursor::new(too_long.as_bytes()).bulk(),
            Err(ParseError::Invalid(RespError::TooLong { .. }))
        ));
        let too_many = format!("*{}\r\n", ARRAY_LEN_MAX + 1);
        assert!(matches!(
            Cursor::new(too_many.as_bytes()).skip(),
            Err(ParseError::Invalid(RespError::TooLong { .. }))
        ));
        for bad in [
            &b"$99999999999999999999\r\n"[..],
            b"$-2\r\n",
            b"$\r\n",
            b"$1x\r\n",
        ] {
            assert!(
                matches!(Cursor::new(bad).bulk(), Err(ParseError::Invalid(_))),
                "{bad:?}"
            );
        }
        let deep = "*1\r\n".repeat(DEPTH_MAX + 2) + ":1\r\n";
        assert!(matches!(
            Cursor::new(deep.as_bytes()).skip(),
            Err(ParseError::Invalid(RespError::TooLong { .. }))
        ));
        let endless_line = vec![b'+'; LINE_BYTES_MAX + 10];
        assert!(matches!(
            Cursor::new(&endless_line).skip(),
            Err(ParseError::Invalid(RespError::TooLong { .. }))
        ));
        assert!(matches!(
            Cursor::new(b"$3\r\nabcXY").bulk(),
            Err(ParseError::Invalid(RespError::Protocol { .. }))
        ));
    }

    #[test]
    fn an_error_reply_is_a_server_error() {
        match Cursor::new(b"-ERR wrong\r\n").bulk() {
            Err(ParseError::Invalid(RespError::Server { message })) => {
                assert_eq!(message, "ERR wrong")
            }
            other => panic!("{other:?}"),
        }
    }
}
