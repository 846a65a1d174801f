//! Running a client command on a glommio executor on this thread, its
//! errors, and reading standard input without stalling the executor.

use std::{future::Future, io::Read};

use glommio::{LocalExecutorBuilder, Placement};

/// Lines longer than this are refused: a record never exceeds a batch, and
/// input without line breaks must not grow the buffer without bound.
pub const LINE_BYTES_MAX: usize = sluice_storage::batch::BATCH_BYTES_MAX;

/// Bytes of standard input read at a time.
const STDIN_CHUNK_BYTES: usize = 256 * 1024;

/// A failed command, as a message for people.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! cli_error_from {
    ($($type:ty),*) => {
        $(impl From<$type> for CliError {
            fn from(error: $type) -> CliError {
                CliError(error.to_string())
            }
        })*
    };
}

cli_error_from!(
    sluice_net::client::ClientError,
    std::io::Error,
    crate::config::ConfigError,
    sluice_engine::EngineError,
    serde_json::Error,
    crate::kafka_client::KafkaClientError
);

pub type CliResult<T> = Result<T, CliError>;

/// Runs `future` on a glommio executor on the current thread: the client
/// is `!Send` and lives there. Fails only if the executor cannot start.
pub fn block_on<T>(future: impl Future<Output = T>) -> CliResult<T> {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("sluice")
        .make()
        .map_err(|error| CliError(format!("cannot start the I/O executor: {error}")))?;
    Ok(executor.run(future))
}

/// The lines of standard input, read in chunks on glommio's blocking
/// thread, so timers (a producer's linger) and the connection keep running
/// while the input is slow.
pub struct StdinLines {
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer`.
    start: usize,
    /// How far `buffer[start..]` is known to hold no line break.
    scanned: usize,
    eof: bool,
    line_number: u64,
}

impl StdinLines {
    pub fn new() -> StdinLines {
        StdinLines {
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            eof: false,
            line_number: 0,
        }
    }

    /// The number of the line last returned, from 1.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The next line without its `\n`, or `None` at the end. A last line
    /// without a `\n` is a line; an empty input has none.
    pub async fn next_line(&mut self) -> CliResult<Option<&[u8]>> {
        loop {
            let unread = &self.buffer[self.start..];
            if let Some(at) = unread[self.scanned..]
                .iter()
                .position(|&byte| byte == b'\n')
            {
                let line = (self.start, self.start + self.scanned + at);
                self.start = line.1 + 1;
                self.scanned = 0;
                self.line_number += 1;
                return Ok(Some(&self.buffer[line.0..line.1]));
            }
            self.scanned = unread.len();
            if self.scanned > LINE_BYTES_MAX {
                return Err(CliError(format!(
                    "line {} is longer than {LINE_BYTES_MAX} bytes",
                    self.line_number + 1
                )));
            }
            if self.eof {
                if self.start == self.buffer.len() {
                    return Ok(None);
                }
                let line = (self.start, self.buffer.len());
                self.start = self.buffer.len();
                self.scanned = 0;
                self.line_number += 1;
                return Ok(Some(&self.buffer[line.0..line.1]));
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            let chunk = glommio::executor()
                .spawn_blocking(|| {
                    let mut chunk = vec![0; STDIN_CHUNK_BYTES];
                    let read = std::io::stdin().lock().read(&mut chunk)?;
                    chunk.truncate(read);
                    Ok::<_, std::io::Error>(chunk)
                })
                .await
                .map_err(|error| CliError(format!("cannot read standard input: {error}")))?;
            if chunk.is_empty() {
                self.eof = true;
            } else {
                self.buffer.extend_from_slice(&chunk);
            }
        }
    }
}
