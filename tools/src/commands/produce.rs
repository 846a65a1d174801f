//! `sluice produce`: one record per line of standard input, through the
//! batching producer. Stops at the first record that fails, with a non-zero
//! exit code and a message that names its line.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use sluice_net::client::{Acks, Delivery, Producer, ProducerOptions};

use crate::{
    cli::ProduceArgs,
    runtime::{block_on, CliError, CliResult, StdinLines},
};

pub fn run(args: ProduceArgs) -> CliResult<()> {
    block_on(async move {
        let started = Instant::now();
        let client = args.connect.client().await?;
        let acks = Acks::from(args.acks);
        let producer = Producer::new(
            client,
            ProducerOptions {
                acks,
                batch_bytes: args.batch_bytes,
                linger: Duration::from_millis(args.linger_ms),
                ..ProducerOptions::default()
            },
        );
        let separator = args.key_separator.as_deref().map(str::as_bytes);
        let mut lines = StdinLines::new();
        let mut outstanding = Outstanding::default();
        while let Some(line) = lines.next_line().await? {
            let (key, value) = split_key(line, separator);
            let delivery = producer.send(&args.topic, args.partition, key, value, &[]);
            outstanding.push(lines.line_number(), delivery);
            outstanding.collect(false).await?;
            producer.ready().await;
        }
        producer.flush().await.ok();
        outstanding.collect(true).await?;
        if !args.quiet {
            let elapsed = started.elapsed().as_secs_f64();
            let records = outstanding.done;
            match acks {
                Acks::None => eprintln!(
                    "sent {records} records to {} in {elapsed:.3} s (acks none: not confirmed)",
                    args.topic
                ),
                _ => eprintln!(
                    "produced {records} records to {} in {elapsed:.3} s",
                    args.topic
                ),
            }
        }
        Ok(())
    })?
}

/// Records sent and not yet known to be stored, in line order.
#[derive(Default)]
struct Outstanding {
    deliveries: VecDeque<(u64, Delivery)>,
    done: u64,
}

impl Outstanding {
    fn push(&mut self, line: u64, delivery: Delivery) {
        self.deliveries.push_back((line, delivery));
    }

    /// Takes the finished deliveries off the front (all of them, waiting,
    /// with `wait`); the first failure is the command's error.
    async fn collect(&mut self, wait: bool) -> CliResult<()> {
        while let Some((line, delivery)) = self.deliveries.front_mut() {
            let outcome = if wait {
                Some(delivery.await)
            } else {
                futures_lite::future::poll_once(delivery).await
            };
            match outcome {
                None => return Ok(()),
                Some(Ok(_)) => {
                    self.deliveries.pop_front();
                    self.done += 1;
                }
                Some(Err(error)) => {
                    return Err(CliError(format!(
                        "the record of line {line} was not produced: {error} ({} records before it were)",
                        self.done
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The key (before the first `separator`) and the value of a line. A line
/// without the separator, or any line when there is none, has no key.
fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(separator) = separator else {
        return (None, line);
    };
    match line
        .windows(separator.len())
        .position(|window| window == separator)
    {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_before_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(b":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(
            split_key(b"k::v", Some(b"::")),
            (Some(&b"k"[..]), &b"v"[..])
        );
        assert_eq!(split_key(b":v", Some(b":")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"v", Some(b":")), (None, &b"v"[..]));
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
        assert_eq!(split_key(b"", Some(b":")), (None, &b""[..]));
    }
}
