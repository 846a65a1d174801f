//! HTTP/1.1 for one GET of a JWKS: the request's text, and a reader of
//! the response that is fed bytes as they arrive and holds no socket (the
//! I/O is [`super::fetch`]'s).
//!
//! What is taken: a `200` status (after any `1xx` interim answers), a
//! body framed by `Content-Length`, by `Transfer-Encoding: chunked`, or by
//! the end of the connection (the request says `Connection: close`), and
//! no content coding (none is asked for). Everything a server declares is
//! checked against a cap before it is held: the head's bytes, a chunk-size
//! line's, and the body's length (a declared `Content-Length` or chunk
//! size is refused before anything is allocated for it). A response that
//! ends early is an error, never a shorter body.

use super::url::Url;

/// A JWKS endpoint's response head is some hundred bytes; 16 KiB leaves
/// room for large cookies and bounds what a server can make the broker
/// hold before its body.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;

/// A chunk-size line is a few hex digits; extensions (which are ignored)
/// get this much room.
pub const CHUNK_LINE_BYTES_MAX: usize = 1024;

/// The GET of `url`, whole.
pub fn request(url: &Url) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/jwk-set+json, application/json\r\n\
         User-Agent: sluice/{}\r\nConnection: close\r\n\r\n",
        url.target,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Why a response was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("the response's head is over {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("not an HTTP/1.x status line: {line:?}")]
    StatusLine { line: String },
    #[error("status {status} {reason}, not 200{}", redirect(.location))]
    Status {
        status: u16,
        reason: String,
        location: Option<String>,
    },
    #[error("a malformed header line: {line:?}")]
    Header { line: String },
    #[error("Content-Length {value:?} is not one number")]
    ContentLength { value: String },
    #[error("a body of {bytes} bytes or more, over the {max} taken")]
    BodyTooLarge { bytes: u64, max: usize },
    #[error("Transfer-Encoding {coding:?}: only chunked is read")]
    TransferCoding { coding: String },
    #[error("Content-Encoding {coding:?}: none was asked for")]
    ContentCoding { coding: String },
    #[error("a malformed chunk size line: {line:?}")]
    ChunkSize { line: String },
    #[error("a chunk's data is not followed by CRLF")]
    ChunkEnd,
    #[error("a line of a chunked body is over {max} bytes")]
    ChunkLineTooLong { max: usize },
    #[error("the connection closed before the response's head ended")]
    TruncatedHead,
    #[error("the connection closed after {received} of the body's {expected} bytes")]
    TruncatedBody { received: usize, expected: usize },
    #[error("the connection closed {received} bytes into a chunked body, before its last chunk")]
    TruncatedChunked { received: usize },
}

fn redirect(location: &Option<String>) -> String {
    location
        .as_ref()
        .map(|location| format!(" (a redirection to {location}, which is not followed)"))
        .unwrap_or_default()
}

/// Whether the response is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    More,
    Complete,
}

/// What the head said about the body.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    reason: String,
    content_length: Option<u64>,
    transfer_coding: Option<String>,
    content_coding: Option<String>,
    location: Option<String>,
}

#[derive(Debug)]
enum State {
    StatusLine,
    Headers(Head),
    Fixed {
        remaining: usize,
    },
    ChunkSize,
    ChunkData {
        remaining: usize,
    },
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// One response, read as its bytes arrive: [`feed`](Self::feed) them,
/// then [`finish`](Self::finish) once it is complete or the connection
/// has ended.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
    /// The start of a line not yet ended.
    pending: Vec<u8>,
    /// The bytes of the head (or of the trailers) so far.
    head_bytes: usize,
    body: Vec<u8>,
    body_max: usize,
}

impl ResponseReader {
    /// A reader that takes a body of at most `body_max` bytes.
    pub fn new(body_max: usize) -> ResponseReader {
        ResponseReader {
            state: State::StatusLine,
            pending: Vec::new(),
            head_bytes: 0,
            body: Vec::new(),
            body_max,
        }
    }

    /// Reads the next bytes of the response. `Complete`: the body is
    /// whole; what may follow it is not read.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Progress, HttpError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(Progress::Complete),
                State::Fixed { remaining } | State::ChunkData { remaining } => {
                    if input.is_empty() {
                        return Ok(Progress::More);
                    }
                    let taken = (*remaining).min(input.len());
                    self.body.extend_from_slice(&input[..taken]);
                    input = &input[taken..];
                    *remaining -= taken;
                    if *remaining == 0 {
                        self.state = match self.state {
                            State::Fixed { .. } => State::Done,
                            _ => State::ChunkEnd,
                        };
                    }
                }
                State::UntilClose => {
                    let bytes = self.body.len() + input.len();
                    if bytes > self.body_max {
                        return Err(self.too_large(bytes as u64));
                    }
                    self.body.extend_from_slice(input);
                    return Ok(Progress::More);
                }
                State::StatusLine | State::Headers(_) | State::Trailers => {
                    let max = HEAD_BYTES_MAX.saturating_sub(self.head_bytes);
                    let too_long = HttpError::HeadTooLarge {
                        max: HEAD_BYTES_MAX,
                    };
                    let Some((line, bytes)) = self.line(&mut input, max, too_long)? else {
                        return Ok(Progress::More);
                    };
                    self.head_bytes += bytes;
                    self.head_line(line)?;
                }
                State::ChunkSize | State::ChunkEnd => {
                    let too_long = HttpError::ChunkLineTooLong {
                        max: CHUNK_LINE_BYTES_MAX,
                    };
                    let Some((line, _)) = self.line(&mut input, CHUNK_LINE_BYTES_MAX, too_long)?
                    else {
                        return Ok(Progress::More);
                    };
                    self.chunk_line(&line)?;
                }
            }
        }
    }

    /// The body, once the connection has ended (or the body is whole): an
    /// error if the response is not.
    pub fn finish(self) -> Result<Vec<u8>, HttpError> {
        match self.state {
            State::Done | State::UntilClose => Ok(self.body),
            State::StatusLine | State::Headers(_) => Err(HttpError::TruncatedHead),
            State::Fixed { remaining } => Err(HttpError::TruncatedBody {
                received: self.body.len(),
                expected: self.body.len() + remaining,
            }),
            State::ChunkSize | State::ChunkData { .. } | State::ChunkEnd | State::Trailers => {
                Err(HttpError::TruncatedChunked {
                    received: self.body.len(),
                })
            }
        }
    }

    fn too_large(&self, bytes: u64) -> HttpError {
        HttpError::BodyTooLarge {
            bytes,
            max: self.body_max,
        }
    }

    /// The next line of `input` (without its LF, or CRLF) and the bytes
    /// it took with its end, the start of it kept from earlier calls;
    /// `None` if it has not ended yet. A line longer than `max` with its
    /// end is `too_long`, found before it is held.
    fn line(
        &mut self,
        input: &mut &[u8],
        max: usize,
        too_long: HttpError,
    ) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
        let Some(end) = input.iter().position(|byte| *byte == b'\n') else {
            if self.pending.len() + input.len() > max {
                return Err(too_long);
            }
            self.pending.extend_from_slice(input);
            *input = &[];
            return Ok(None);
        };
        let bytes = self.pending.len() + end + 1;
        if bytes > max {
            return Err(too_long);
        }
        self.pending.extend_from_slice(&input[..end]);
        *input = &input[end + 1..];
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some((line, bytes)))
    }

    fn head_line(&mut self, line: Vec<u8>) -> Result<(), HttpError> {
        let text = String::from_utf8_lossy(&line).into_owned();
        match std::mem::replace(&mut self.state, State::Done) {
            State::StatusLine => {
                self.state = State::Headers(status_line(&text)?);
            }
            State::Headers(mut head) if !text.is_empty() => {
                header_line(&mut head, text)?;
                self.state = State::Headers(head);
            }
            State::Headers(head) => self.state = self.body_state(head)?,
            State::Trailers if text.is_empty() => self.state = State::Done,
            State::Trailers => self.state = State::Trailers,
            other => unreachable!("a head line in {other:?}"),
        }
        Ok(())
    }

    /// Where the body starts, by the head just ended.
    fn body_state(&mut self, head: Head) -> Result<State, HttpError> {
        // An interim answer (100 Continue, 103 Early Hints): the real one
        // follows. Its bytes count towards the head's cap.
        if (100..200).contains(&head.status) && head.status != 101 {
            return Ok(State::StatusLine);
        }
        if head.status != 200 {
            return Err(HttpError::Status {
                status: head.status,
                reason: head.reason,
                location: head.location.filter(|_| (300..400).contains(&head.status)),
            });
        }
        if let Some(coding) = head.content_coding {
            if !coding.eq_ignore_ascii_case("identity") {
                return Err(HttpError::ContentCoding { coding });
            }
        }
        if let Some(coding) = head.transfer_coding {
            // Chunked wins over a Content-Length (RFC 9112, 6.3).
            let codings: Vec<String> = coding
                .split(',')
                .map(|coding| coding.trim().to_ascii_lowercase())
                .filter(|coding| !coding.is_empty())
                .collect();
            if codings != ["chunked"] {
                return Err(HttpError::TransferCoding { coding });
            }
            return Ok(State::ChunkSize);
        }
        match head.content_length {
            Some(length) if length > self.body_max as u64 => Err(self.too_large(length)),
            Some(0) => Ok(State::Done),
            Some(length) => {
                let length = length as usize;
                self.body = Vec::with_capacity(length);
                Ok(State::Fixed { remaining: length })
            }
            None => Ok(State::UntilClose),
        }
    }

    fn chunk_line(&mut self, line: &[u8]) -> Result<(), HttpError> {
        if let State::ChunkEnd = self.state {
            if !line.is_empty() {
                return Err(HttpError::ChunkEnd);
            }
            self.state = State::ChunkSize;
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        let malformed = || HttpError::ChunkSize {
            line: text.to_string(),
        };
        // Extensions (`;name=value`) are ignored.
        let digits = text.split(';').next().unwrap_or_default().trim();
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(malformed());
        }
        let size = u64::from_str_radix(digits, 16).map_err(|_| malformed())?;
        if size == 0 {
            self.head_bytes = 0;
            self.state = State::Trailers;
            return Ok(());
        }
        let bytes = self.body.len() as u64 + size;
        if bytes > self.body_max as u64 {
            return Err(self.too_large(bytes));
        }
        self.body.reserve(size as usize);
        self.state = State::ChunkData {
            remaining: size as usize,
        };
        Ok(())
    }
}

/// `HTTP/1.x CODE [REASON]`.
fn status_line(line: &str) -> Result<Head, HttpError> {
    let malformed = || HttpError::StatusLine {
        line: line.chars().take(200).collect(),
    };
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(malformed());
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(malformed());
    }
    if code.len() != 3 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(malformed());
    }
    Ok(Head {
        status: code.parse().map_err(|_| malformed())?,
        reason: parts.next().unwrap_or_default().trim().to_string(),
        ..Head::default()
    })
}

/// `NAME: VALUE`, the headers that matter kept.
fn header_line(head: &mut Head, line: String) -> Result<(), HttpError> {
    let malformed = |line: &str| HttpError::Header {
        line: line.chars().take(200).collect(),
    };
    // No obsolete line folding, and no space between name and colon
    // (RFC 9112, 5.1 and 5.2).
    let Some((name, value)) = line.split_once(':') else {
        return Err(malformed(&line));
    };
    let is_token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(malformed(&line));
    }
    let value = value.trim_matches([' ', '\t']);
    let joined = |earlier: Option<String>| match earlier {
        Some(earlier) => format!("{earlier}, {value}"),
        None => value.to_string(),
    };
    match name.to_ascii_lowercase().as_str() {
        "content-length" => {
            // Repeated, or a list: the same number each time.
            for item in value.split(',') {
                let item = item.trim();
                let length = item
                    .parse::<u64>()
                    .ok()
                    .filter(|_| !item.starts_with('+'))
                    .ok_or_else(|| HttpError::ContentLength {
                        value: value.to_string(),
                    })?;
                if head.content_length.is_some_and(|before| before != length) {
                    return Err(HttpError::ContentLength {
                        value: value.to_string(),
                    });
                }
                head.content_length = Some(length);
            }
        }
        "transfer-encoding" => head.transfer_coding = Some(joined(head.transfer_coding.take())),
        "content-encoding" => head.content_coding = Some(joined(head.content_coding.take())),
        "location" => head.location = Some(value.chars().take(200).collect()),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64;

    /// `response` fed in the pieces `splits` cuts it into, then finished.
    fn read_split(response: &[u8], splits: &[usize]) -> Result<Vec<u8>, HttpError> {
        let mut reader = ResponseReader::new(MAX);
        let mut start = 0;
        for end in splits.iter().copied().chain([response.len()]) {
            if reader.feed(&response[start..end])? == Progress::Complete {
                break;
            }
            start = end;
        }
        reader.finish()
    }

    fn read(response: &[u8]) -> Result<Vec<u8>, HttpError> {
        read_split(response, &[])
    }

    /// The same answer however the bytes are cut: whole, at every single
    /// point, and a byte at a time.
    fn read_every_way(response: &[u8]) -> Result<Vec<u8>, HttpError> {
        let whole = read(response);
        for at in 0..=response.len() {
            assert_eq!(read_split(response, &[at]), whole, "cut at {at}");
        }
        let bytewise: Vec<usize> = (1..response.len()).collect();
        assert_eq!(read_split(response, &bytewise), whole, "a byte at a time");
        whole
    }

    #[test]
    fn the_request_is_a_get_that_closes() {
        let url = match super::super::url::Location::parse("https://idp:8443/a/jwks?x=1").unwrap() {
            super::super::url::Location::Http(url) => url,
            other => panic!("{other:?}"),
        };
        let request = request(&url);
        assert!(request.starts_with("GET /a/jwks?x=1 HTTP/1.1\r\nHost: idp:8443\r\n"));
        assert!(request.contains("\r\nConnection: close\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
    }

    #[test]
    fn bodies_framed_every_way_are_read() {
        let fixed = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"keys\":[]}trailing junk";
        assert_eq!(read_every_way(fixed).unwrap(), b"{\"keys\":[]}");

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
            4;name=value\r\n{\"ke\r\n7 \r\nys\":[]}\r\n0\r\nX-Trailer: t\r\n\r\n";
        assert_eq!(read_every_way(chunked).unwrap(), b"{\"keys\":[]}");

        let until_close = b"HTTP/1.0 200 OK\r\nServer: s\r\n\r\n{\"keys\":[]}";
        assert_eq!(read_every_way(until_close).unwrap(), b"{\"keys\":[]}");

        // Bare LF line ends, a repeated equal length, an empty reason,
        // and interim answers before the real one.
        let lenient = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103\r\nLink: x\r\n\r\n\
            HTTP/1.1 200\nContent-Length: 2, 2\ncontent-length: 2\n\nok";
        assert_eq!(read_every_way(lenient).unwrap(), b"ok");

        let empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read_every_way(empty).unwrap(), b"");
    }

    #[test]
    fn only_200_is_taken() {
        assert_eq!(
            read_every_way(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Err(HttpError::Status {
                status: 404,
                reason: "Not Found".to_string(),
                location: None,
            })
        );
        let moved = read(b"HTTP/1.1 301 Moved\r\nLocation: https://other/jwks\r\n\r\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            moved,
            "status 301 Moved, not 200 (a redirection to https://other/jwks, which is not followed)"
        );
        assert!(matches!(
            read(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Err(HttpError::Status { status: 101, .. })
        ));
    }

    #[test]
    fn declared_lengths_over_the_cap_are_refused_before_the_body() {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX + 1);
        let mut reader = ResponseReader::new(MAX);
        assert_eq!(
            reader.feed(head.as_bytes()),
            Err(HttpError::BodyTooLarge {
                bytes: MAX as u64 + 1,
                max: MAX
            })
        );
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert!(matches!(
            ResponseReader::new(MAX).feed(huge),
            Err(HttpError::BodyTooLarge { .. })
        ));
        // A chunk past the cap, counted with the chunks before it.
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{}\r\n21\r\n",
            "x".repeat(32)
        );
        assert_eq!(
            ResponseReader::new(MAX).feed(chunked.as_bytes()),
            Err(HttpError::BodyTooLarge {
                bytes: 65,
                max: MAX
            })
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(matches!(
            ResponseReader::new(MAX).feed(chunked),
            Err(HttpError::BodyTooLarge { .. })
        ));
        // A body that ends with the connection: as it grows.
        let mut reader = ResponseReader::new(MAX);
        assert_eq!(reader.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(Progress::More));
        assert_eq!(reader.feed(&[b'x'; MAX]), Ok(Progress::More));
        assert_eq!(
            reader.feed(b"x"),
            Err(HttpError::BodyTooLarge {
                bytes: MAX as u64 + 1,
                max: MAX
            })
        );
    }

    #[test]
    fn heads_and_chunk_lines_are_capped() {
        let mut reader = ResponseReader::new(MAX);
        assert_eq!(
            reader.feed(b"HTTP/1.1 200 OK\r\nX-Big: "),
            Ok(Progress::More)
        );
        assert_eq!(
            reader.feed(&vec![b'a'; HEAD_BYTES_MAX]),
            Err(HttpError::HeadTooLarge {
                max: HEAD_BYTES_MAX
            })
        );
        // Many short lines add up.
        let mut reader = ResponseReader::new(MAX);
        reader.feed(b"HTTP/1.1 200 OK\r\n").unwrap();
        let line = b"X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let result = (0..HEAD_BYTES_MAX / line.len() + 1)
            .map(|_| reader.feed(line))
            .find(Result::is_err);
        assert_eq!(
            result,
            Some(Err(HttpError::HeadTooLarge {
                max: HEAD_BYTES_MAX
            }))
        );
        // Endless interim answers too.
        let mut reader = ResponseReader::new(MAX);
        let result = (0..HEAD_BYTES_MAX)
            .map(|_| reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n"))
            .find(Result::is_err);
        assert!(result.is_some());
        let mut reader = ResponseReader::new(MAX);
        reader
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;")
            .unwrap();
        assert_eq!(
            reader.feed(&vec![b'e'; CHUNK_LINE_BYTES_MAX]),
            Err(HttpError::ChunkLineTooLong {
                max: CHUNK_LINE_BYTES_MAX
            })
        );
    }

    #[test]
    fn a_response_cut_short_is_an_error() {
        for (response, error) in [
            (&b""[..], HttpError::TruncatedHead),
            (b"HTTP/1.1 200 OK\r\nContent-Len", HttpError::TruncatedHead),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"keys\"",
                HttpError::TruncatedBody {
                    received: 7,
                    expected: 11,
                },
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ke\r\n",
                HttpError::TruncatedChunked { received: 4 },
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"k",
                HttpError::TruncatedChunked { received: 3 },
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ke\r\n0\r\n",
                HttpError::TruncatedChunked { received: 4 },
            ),
        ] {
            assert_eq!(read_every_way(response), Err(error), "{response:?}");
        }
    }

    #[test]
    fn malformed_responses_are_errors() {
        for response in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        ] {
            let result = read_every_way(response);
            assert!(
                result.as_ref().is_err_and(|error| !matches!(
                    error,
                    HttpError::TruncatedHead
                        | HttpError::TruncatedBody { .. }
                        | HttpError::TruncatedChunked { .. }
                )),
                "{:?}: {result:?}",
                String::from_utf8_lossy(response)
            );
        }
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Length: 1\r\n\r\nx"),
            Ok(b"x".to_vec())
        );
    }
}
