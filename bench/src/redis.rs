//! The `redis` driver: Redis Streams, a reference point outside the Kafka
//! world.
//!
//! A topic's partition is a stream, keyed `<topic>-<partition>`. A
//! producer XADDs each record to its partition's stream (field `v` the
//! value, which starts with the intended send time as in every driver, and
//! field `k` the key if there is one); the reply (the entry's id) is the
//! acknowledgement. A consumer reads its partitions' streams with
//! `XREAD BLOCK` from the last id it saw, and measures end to end from the
//! send time in the value.
//!
//! The client is the small RESP codec of [`crate::resp`] over glommio's
//! `TcpStream`, so the harness threads are the same pinned executors as
//! the native driver's ([`crate::harness`]). A producer is open loop on the
//! same [`Pacer`](crate::schedule::Pacer): it pipelines, writing a command when its record falls
//! due without waiting for earlier replies, and a collector task reads
//! the replies, which Redis sends in command order on a connection. The
//! commands due together go out in one write. With rate `max`, what holds
//! the sender back is [`IN_FLIGHT_MAX`]. The workload's `batch_bytes` is
//! the most a producer gathers before it writes; it does not linger, and
//! `acks` has no meaning here (Redis replies once it has done what its
//! `appendfsync` says).
//!
//! Redis itself is started by `bench/peers/redis.sh`; its durability is
//! whatever that was told, and the run's `--durability` records it.

use std::time::Duration;

use glommio::{
    channels::local_channel::{self, LocalReceiver, LocalSender},
    Task,
};

use crate::{
    driver::{self, Pending, Record, Recorder, Setup},
    harness::on_core,
    resp::{Connection, Cursor, ParseError, Reader, RespError, Writer},
    run::{ConsumerPlan, ProducerPlan, RunContext},
    workload::Workload,
    BenchError,
};

/// How long an XREAD waits at the end of the streams: short, so that a
/// consumer notices the end of the run soon.
const FETCH_WAIT_MS: u64 = 100;

/// Beyond its BLOCK time, how long a consumer waits for an XREAD reply
/// before it calls the connection broken.
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// Records a producer has written and not yet heard about. Bounds its
/// memory (with 1 MiB values, 4 GiB at worst; with 100 B values, under
/// 1 MiB), and is what holds a producer back at rate `max`, as the native
/// producer's buffer limit does.
pub const IN_FLIGHT_MAX: usize = 4096;

/// Entries one XREAD asks for at most...
const READ_COUNT_MAX: usize = 1024;

/// ...and fewer for large values, so that a reply stays under this (well
/// under [`crate::resp::REPLY_BYTES_MAX`]).
const READ_BYTES_TARGET: usize = 16 * 1024 * 1024;

/// The stream of a topic's partition.
pub fn stream_key(topic: &str, partition: u32) -> String {
    format!("{topic}-{partition}")
}

fn address(brokers: &str) -> &str {
    brokers.split(',').next().unwrap_or(brokers).trim()
}

fn redis_error(what: impl Into<String>) -> impl FnOnce(RespError) -> BenchError {
    let what = what.into();
    move |source| BenchError::Redis { what, source }
}

/// Streams need no creating: checks that the server answers, and that the
/// run's streams are empty.
pub fn check_server(
    cpu: usize,
    brokers: &str,
    workload: &Workload,
    topics: &[String],
) -> Result<(), BenchError> {
    on_every_stream(
        cpu,
        brokers,
        workload,
        topics,
        b"XLEN",
        |key, reply| match reply {
            b":0\r\n" => Ok(()),
            _ => Err(BenchError::Workload(format!(
                "stream {key} already holds entries"
            ))),
        },
    )
}

/// Deletes the run's streams.
pub fn delete_streams(
    cpu: usize,
    brokers: &str,
    workload: &Workload,
    topics: &[String],
) -> Result<(), BenchError> {
    on_every_stream(cpu, brokers, workload, topics, b"DEL", |_, _| Ok(()))
}

/// On a thread pinned to `cpu`: connects, checks the server answers PING,
/// and sends `command KEY` for every stream of the run, `check` judging each
/// reply.
fn on_every_stream(
    cpu: usize,
    brokers: &str,
    workload: &Workload,
    topics: &[String],
    command: &'static [u8],
    check: fn(&str, &[u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let address = address(brokers).to_string();
    let keys = all_keys(workload, topics);
    let name = format!(
        "sluice-bench-{}",
        String::from_utf8_lossy(command).to_lowercase()
    );
    on_core(cpu, &name, move || async move {
        let mut connection = Connection::connect(&address)
            .await
            .map_err(redis_error(format!("connecting to redis at {address}")))?;
        connection
            .call(&[b"PING"])
            .await
            .map_err(redis_error("PING"))?;
        for key in &keys {
            let reply = connection
                .call(&[command, key.as_bytes()])
                .await
                .map_err(redis_error(format!(
                    "{} {key}",
                    String::from_utf8_lossy(command)
                )))?;
            check(key, reply)?;
        }
        Ok(())
    })
}

fn all_keys(workload: &Workload, topics: &[String]) -> Vec<String> {
    topics
        .iter()
        .flat_map(|topic| {
            (0..workload.partitions_per_topic).map(move |partition| stream_key(topic, partition))
        })
        .collect()
}

/// Redis Streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redis;

impl driver::Driver for Redis {
    type Producer = RedisProducer;
    type Consumer = RedisConsumer;
    const NAME: &'static str = "redis";

    fn prepare(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        check_server(setup.cpu, setup.brokers, setup.workload, setup.topics)
    }

    fn clean_up(&self, setup: &Setup<'_>) -> Result<(), BenchError> {
        delete_streams(setup.cpu, setup.brokers, setup.workload, setup.topics)
    }

    async fn producer(
        &self,
        context: &RunContext,
        plan: &ProducerPlan,
    ) -> Result<RedisProducer, BenchError> {
        let Connection { reader, writer } = connect(&context.brokers).await?;
        let (in_flight, replies) = local_channel::new_bounded(IN_FLIGHT_MAX);
        Ok(RedisProducer {
            streams: (0..context.workload.partitions_per_topic)
                .map(|partition| stream_key(&plan.topic, partition))
                .collect(),
            write_bytes_max: context.workload.batch_bytes.max(1),
            writer,
            in_flight: Some(in_flight),
            collector: Err(Some((reader, replies))),
        })
    }

    async fn consumer(
        &self,
        context: &RunContext,
        plan: &ConsumerPlan,
    ) -> Result<RedisConsumer, BenchError> {
        let streams: Vec<String> = plan
            .partitions
            .iter()
            .map(|partition| stream_key(&plan.topic, *partition))
            .collect();
        let value_bytes_max = context.workload.message_size.max_bytes() as usize + 128;
        let count = (READ_BYTES_TARGET / value_bytes_max).clamp(1, READ_COUNT_MAX);
        Ok(RedisConsumer {
            connection: connect(&context.brokers).await?,
            // The streams are fresh: from the start.
            last_ids: vec![b"0-0".to_vec(); streams.len()],
            streams,
            count_text: count.to_string(),
        })
    }
}

async fn connect(brokers: &str) -> Result<Connection, BenchError> {
    let address = address(brokers);
    Connection::connect(address)
        .await
        .map_err(redis_error(format!("connecting to redis at {address}")))
}

/// A producer pipelines: it writes a command when its record falls due
/// without waiting for earlier replies, and its collector task reads the
/// replies, which Redis sends in command order.
pub struct RedisProducer {
    /// The stream of each partition of the producer's topic.
    streams: Vec<String>,
    write_bytes_max: usize,
    writer: Writer,
    /// Records written and not yet heard about, in command order.
    in_flight: Option<LocalSender<Pending>>,
    /// Before the start, what the collector will read; then the collector.
    collector: Result<Task<()>, Option<(Reader, LocalReceiver<Pending>)>>,
}

impl driver::Producer for RedisProducer {
    fn start(&mut self, recorder: &Recorder) {
        if let Err(parts) = &mut self.collector {
            let (reader, replies) = parts.take().expect("started once");
            self.collector = Ok(glommio::spawn_local(collect(
                reader,
                replies,
                recorder.clone(),
            )));
        }
    }

    async fn send(&mut self, record: Record<'_>, _recorder: &Recorder) -> Result<(), BenchError> {
        let in_flight = self.in_flight.as_ref().expect("not finished");
        // Bounded memory: when too many replies are outstanding, write
        // what is gathered (the collector waits for those replies) and
        // wait for room.
        if in_flight.is_full() {
            self.writer.flush().await.map_err(redis_error("writing"))?;
        }
        let pending = Pending {
            intended: record.intended,
            bytes: record.bytes(),
        };
        if in_flight.send(pending).await.is_err() {
            unreachable!("the collector lives until the sender is dropped");
        }
        let stream = self.streams[record.partition as usize].as_bytes();
        match record.key {
            None => self
                .writer
                .push(&[b"XADD", stream, b"*", b"v", record.value]),
            Some(key) => self
                .writer
                .push(&[b"XADD", stream, b"*", b"k", key, b"v", record.value]),
        }
        if self.writer.buffered() >= self.write_bytes_max {
            self.writer.flush().await.map_err(redis_error("writing"))?;
        }
        Ok(())
    }

    async fn idle(&mut self) -> Result<(), BenchError> {
        self.writer.flush().await.map_err(redis_error("writing"))
    }

    async fn finish(mut self, _recorder: &Recorder) {
        // If this fails, the collector counts every record without a reply
        // as failed.
        if let Err(error) = self.writer.flush().await {
            eprintln!("sluice-bench: a producer's last write failed: {error}");
        }
        drop(self.in_flight.take());
        if let Ok(collector) = self.collector {
            collector.await;
        }
    }
}

/// Reads a producer's replies in command order and records each outcome
/// when it is known. After a broken connection, every record still
/// waiting has failed.
async fn collect(mut reader: Reader, replies: LocalReceiver<Pending>, recorder: Recorder) {
    let clock = recorder.clock();
    let deadline = recorder.timeline().drain_deadline;
    let mut broken = false;
    while let Some(pending) = replies.recv().await {
        if broken {
            recorder.produce_failed(clock.now(), &"the connection broke");
            continue;
        }
        let outcome = driver::until(clock, deadline, xadd_reply(&mut reader)).await;
        let now = clock.now();
        match outcome {
            Some(Ok(())) => recorder.acknowledged(now, pending),
            Some(Err(error)) => {
                // An error reply fails one record; anything else, the
                // connection.
                broken = !matches!(error, RespError::Server { .. });
                recorder.produce_failed(now, &error);
            }
            None => recorder.unacknowledged(1),
        }
    }
}

/// XADD's reply: the new entry's id.
async fn xadd_reply(reader: &mut Reader) -> Result<(), RespError> {
    let reply = reader.reply().await?;
    match Cursor::new(reply).bulk()? {
        Some(_id) => Ok(()),
        None => Err(RespError::Unexpected {
            expected: "an entry id",
        }),
    }
}

/// A consumer reads its partitions' streams with `XREAD BLOCK` from the
/// last id it saw.
pub struct RedisConsumer {
    connection: Connection,
    streams: Vec<String>,
    last_ids: Vec<Vec<u8>>,
    count_text: String,
}

impl driver::Consumer for RedisConsumer {
    async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError> {
        let block_text = FETCH_WAIT_MS.to_string();
        let mut args: Vec<&[u8]> = vec![
            b"XREAD",
            b"COUNT",
            self.count_text.as_bytes(),
            b"BLOCK",
            block_text.as_bytes(),
            b"STREAMS",
        ];
        args.extend(self.streams.iter().map(|stream| stream.as_bytes()));
        args.extend(self.last_ids.iter().map(Vec::as_slice));
        self.connection.writer.push(&args);
        drop(args);
        self.connection
            .writer
            .flush()
            .await
            .map_err(redis_error("XREAD"))?;
        let clock = recorder.clock();
        let deadline =
            clock.now() + (Duration::from_millis(FETCH_WAIT_MS) + REPLY_WAIT).as_nanos() as u64;
        let reply = driver::until(clock, deadline, self.connection.reader.reply())
            .await
            .ok_or(RespError::Protocol {
                reason: "no reply to XREAD in time",
            })
            .and_then(|reply| reply)
            .map_err(redis_error("XREAD"))?;
        let now = clock.now();
        read_entries(reply, &self.streams, &mut self.last_ids, |value, key| {
            recorder.consumed(now, driver::stamp_of(clock, value), value.len() + key);
        })
        .map_err(redis_error("XREAD"))
    }

    async fn reconnect(&mut self, context: &RunContext) -> Result<(), BenchError> {
        self.connection = connect(&context.brokers).await?;
        Ok(())
    }
}

/// Walks an XREAD reply: for each entry, calls `each` with its value and
/// its key's length, and moves the stream's last id on. A null reply (the
/// BLOCK time passed) holds nothing.
fn read_entries(
    reply: &[u8],
    streams: &[String],
    last_ids: &mut [Vec<u8>],
    mut each: impl FnMut(&[u8], usize),
) -> Result<(), RespError> {
    let mut cursor = Cursor::new(reply);
    let unexpected = |expected| ParseError::Invalid(RespError::Unexpected { expected });
    let Some(stream_count) = cursor.array()? else {
        return Ok(());
    };
    for _ in 0..stream_count {
        cursor.array_of(2)?;
        let name = cursor.bulk()?.ok_or(unexpected("a stream name"))?;
        let index = streams
            .iter()
            .position(|stream| stream.as_bytes() == name)
            .ok_or(unexpected("a stream the consumer reads"))?;
        let entries = cursor.array()?.unwrap_or(0);
        for _ in 0..entries {
            cursor.array_of(2)?;
            let id = cursor.bulk()?.ok_or(unexpected("an entry id"))?;
            let fields = cursor.array()?.unwrap_or(0);
            if fields % 2 != 0 {
                return Err(unexpected("field-value pairs").into());
            }
            let (mut value, mut key_bytes) = (None, 0);
            for _ in 0..fields / 2 {
                let field = cursor.bulk()?.ok_or(unexpected("a field name"))?;
                let content = cursor.bulk()?.ok_or(unexpected("a field value"))?;
                match field {
                    b"v" => value = Some(content),
                    b"k" => key_bytes = content.len(),
                    _ => {}
                }
            }
            let value = value.ok_or(unexpected("a value field"))?;
            let last = &mut last_ids[index];
            last.clear();
            last.extend_from_slice(id);
            each(value, key_bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode_command;

    #[test]
    fn an_xread_reply_gives_each_value_and_moves_the_last_ids_on() {
        // Built as the server builds it: arrays of bulk strings (a field
        // list is encoded as a command is).
        let mut reply = b"*2\r\n".to_vec();
        for (stream, entries) in [
            ("t-1", &[("5-0", Some(&b"kk"[..]), &b"value-a"[..])][..]),
            (
                "t-0",
                &[("6-0", None, &b"value-b"[..]), ("6-1", None, &b"c"[..])][..],
            ),
        ] {
            reply.extend_from_slice(b"*2\r\n");
            reply.extend_from_slice(format!("${}\r\n{stream}\r\n", stream.len()).as_bytes());
            reply.extend_from_slice(format!("*{}\r\n", entries.len()).as_bytes());
            for (id, key, value) in entries {
                reply.extend_from_slice(b"*2\r\n");
                reply.extend_from_slice(format!("${}\r\n{id}\r\n", id.len()).as_bytes());
                match key {
                    Some(key) => encode_command(&mut reply, &[b"k", key, b"v", value]),
                    None => encode_command(&mut reply, &[b"v", value]),
                }
            }
        }
        let streams = ["t-0".to_string(), "t-1".to_string()];
        let mut last_ids = vec![b"0-0".to_vec(), b"0-0".to_vec()];
        let mut seen = Vec::new();
        read_entries(&reply, &streams, &mut last_ids, |value, key| {
            seen.push((value.to_vec(), key))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (b"value-a".to_vec(), 2),
                (b"value-b".to_vec(), 0),
                (b"c".to_vec(), 0)
            ]
        );
        assert_eq!(last_ids, [b"6-1".to_vec(), b"5-0".to_vec()]);

        // The BLOCK time passed: nothing, nothing moves.
        read_entries(b"*-1\r\n", &streams, &mut last_ids, |_, _| panic!()).unwrap();
        assert_eq!(last_ids, [b"6-1".to_vec(), b"5-0".to_vec()]);
        // A stream nobody asked for is an error, not a silent skip.
        let stranger = b"*1\r\n*2\r\n$3\r\nx-9\r\n*0\r\n";
        assert!(read_entries(stranger, &streams, &mut last_ids, |_, _| {}).is_err());
    }
}
