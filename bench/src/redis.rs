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
//! same [`Pacer`]: it pipelines, writing a command when its record falls
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

use std::{
    sync::{atomic::Ordering, mpsc::Sender, Arc},
    time::Duration,
};

use futures_lite::future;
use glommio::{
    channels::local_channel::{self, LocalReceiver},
    timer::sleep,
};
use sluice_net::client::partition_for_key;

use crate::{
    harness::{self, on_core, Metrics, Tasks},
    metrics::Report,
    random::Draws,
    resp::{Connection, Cursor, ParseError, Reader, RespError},
    run::{ConsumerPlan, ProducerPlan, RunContext, Timeline, WorkerPlan},
    schedule::{Nanos, Pacer},
    workload::{Keys, Workload, STAMP_BYTES},
    BenchError,
};

/// How long an XREAD waits at the end of the streams: short, so that a
/// consumer notices the end of the run soon.
const FETCH_WAIT_MS: u64 = 100;

/// Beyond its BLOCK time, how long a consumer waits for an XREAD reply
/// before it calls the connection broken.
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// A consumer that lost its connection waits this long before it
/// reconnects.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

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

/// The body of one harness thread running `plan`.
pub async fn worker(
    plan: WorkerPlan,
    context: Arc<RunContext>,
    reports: Sender<Report>,
) -> Result<(), BenchError> {
    let ready = connect_all(&plan, &context).await;
    harness::run_worker(
        plan.worker,
        &context,
        reports,
        ready,
        |(producers, consumers), timeline, metrics| Tasks {
            consumers: consumers
                .into_iter()
                .map(|(consumer_plan, connection)| {
                    glommio::spawn_local(consume(
                        consumer_plan,
                        connection,
                        context.clone(),
                        timeline,
                        metrics.clone(),
                    ))
                })
                .collect(),
            producers: producers
                .into_iter()
                .map(|(producer_plan, connection)| {
                    glommio::spawn_local(produce(
                        producer_plan,
                        connection,
                        context.clone(),
                        timeline,
                        metrics.clone(),
                    ))
                })
                .collect(),
        },
    )
    .await
}

type Connected = (
    Vec<(ProducerPlan, Connection)>,
    Vec<(ConsumerPlan, Connection)>,
);

async fn connect_all(plan: &WorkerPlan, context: &RunContext) -> Result<Connected, BenchError> {
    let address = address(&context.brokers);
    let connect = || async {
        Connection::connect(address)
            .await
            .map_err(redis_error(format!("connecting to redis at {address}")))
    };
    let mut producers = Vec::new();
    for producer_plan in &plan.producers {
        producers.push((producer_plan.clone(), connect().await?));
    }
    let mut consumers = Vec::new();
    for consumer_plan in &plan.consumers {
        consumers.push((consumer_plan.clone(), connect().await?));
    }
    Ok((producers, consumers))
}

/// A record written, waiting for its reply.
struct Pending {
    intended: Nanos,
    bytes: usize,
}

/// One producer: writes on schedule until the end of the run, then waits
/// (until the drain deadline) for every reply.
async fn produce(
    plan: ProducerPlan,
    connection: Connection,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let workload = &context.workload;
    let clock = context.clock;
    let partitions = workload.partitions_per_topic;
    let streams: Vec<String> = (0..partitions)
        .map(|partition| stream_key(&plan.topic, partition))
        .collect();
    let mut draws = Draws::new(0x5eed ^ plan.index.wrapping_mul(0x9e37_79b9));
    let mut value = vec![0u8; workload.message_size.max_bytes() as usize];
    draws.fill(&mut value);
    let mut next_partition = (plan.index % u64::from(partitions)) as u32;
    let write_bytes_max = workload.batch_bytes.max(1);

    let Connection { reader, mut writer } = connection;
    let (in_flight, replies) = local_channel::new_bounded(IN_FLIGHT_MAX);
    let collector = glommio::spawn_local(collect(
        reader,
        replies,
        context.clone(),
        timeline,
        metrics.clone(),
    ));
    let mut pacer = Pacer::new(timeline.start, plan.records_per_second);
    let mut written = Ok(());
    while written.is_ok() {
        let now = clock.now();
        if pacer.next_at(now) >= timeline.end {
            break;
        }
        let Some(intended) = pacer.take_due(now) else {
            // Nothing more due: out with what is gathered, then wait.
            written = writer.flush().await;
            sleep(clock.until(pacer.next_at(clock.now()))).await;
            continue;
        };
        let size = workload.message_size.sample(draws.next_u64());
        let key_bytes;
        let (key, partition): (Option<&[u8]>, u32) = match workload.keys {
            Keys::None => {
                let partition = next_partition;
                next_partition = (next_partition + 1) % partitions;
                (None, partition)
            }
            Keys::Random => {
                key_bytes = draws.next_u64().to_le_bytes();
                (Some(&key_bytes), partition_for_key(&key_bytes, partitions))
            }
            Keys::Space(space) => {
                key_bytes = (draws.next_u64() % space).to_le_bytes();
                (Some(&key_bytes), partition_for_key(&key_bytes, partitions))
            }
        };
        // Bounded memory: when too many replies are outstanding, write what
        // is gathered (the collector waits for those replies) and wait for
        // room. The wait is counted from `intended`.
        if in_flight.is_full() {
            written = writer.flush().await;
        }
        let pending = Pending {
            intended,
            bytes: size + key.map_or(0, <[u8]>::len),
        };
        if in_flight.send(pending).await.is_err() {
            unreachable!("the collector lives until the sender is dropped");
        }
        value[..STAMP_BYTES].copy_from_slice(&clock.to_unix_ns(intended).to_le_bytes());
        let stream = streams[partition as usize].as_bytes();
        match key {
            None => writer.push(&[b"XADD", stream, b"*", b"v", &value[..size]]),
            Some(key) => writer.push(&[b"XADD", stream, b"*", b"k", key, b"v", &value[..size]]),
        }
        metrics.borrow_mut().sent(clock.now());
        if writer.buffered() >= write_bytes_max {
            written = writer.flush().await;
        }
        glommio::yield_if_needed().await;
    }
    if written.is_ok() {
        written = writer.flush().await;
    }
    if let Err(error) = written {
        // The collector counts every record without a reply as failed.
        eprintln!("sluice-bench: producer to {} failed: {error}", plan.topic);
    }
    drop(in_flight);
    collector.await;
}

/// Reads a producer's replies in command order and records each outcome
/// when it is known. After a broken connection, every record still
/// waiting has failed.
async fn collect(
    mut reader: Reader,
    replies: LocalReceiver<Pending>,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let clock = context.clock;
    let mut broken = false;
    let mut said = false;
    while let Some(pending) = replies.recv().await {
        if broken {
            metrics.borrow_mut().produce_failed(clock.now());
            continue;
        }
        let outcome = future::or(async { Some(xadd_reply(&mut reader).await) }, async {
            sleep(clock.until(timeline.drain_deadline)).await;
            None
        })
        .await;
        let now = clock.now();
        match outcome {
            Some(Ok(())) => {
                metrics
                    .borrow_mut()
                    .acknowledged(now, pending.intended, pending.bytes);
                context.acknowledged.fetch_add(1, Ordering::AcqRel);
            }
            Some(Err(error)) => {
                // An error reply fails one record; anything else, the
                // connection.
                broken = !matches!(error, RespError::Server { .. });
                if !std::mem::replace(&mut said, true) {
                    eprintln!("sluice-bench: a record failed: {error}");
                }
                metrics.borrow_mut().produce_failed(now);
            }
            None => metrics.borrow_mut().unacknowledged(),
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

/// One consumer: reads its partitions' streams until the run has drained.
async fn consume(
    plan: ConsumerPlan,
    connection: Connection,
    context: Arc<RunContext>,
    timeline: Timeline,
    metrics: Metrics,
) {
    let clock = context.clock;
    let streams: Vec<String> = plan
        .partitions
        .iter()
        .map(|partition| stream_key(&plan.topic, *partition))
        .collect();
    // The streams are fresh: from the start.
    let mut last_ids: Vec<Vec<u8>> = vec![b"0-0".to_vec(); streams.len()];
    let value_bytes_max = context.workload.message_size.max_bytes() as usize + 128;
    let count = (READ_BYTES_TARGET / value_bytes_max).clamp(1, READ_COUNT_MAX);
    let count_text = count.to_string();
    let block_text = FETCH_WAIT_MS.to_string();
    let mut connection = connection;
    while !context.consumers_done(clock.now(), &timeline) {
        let mut args: Vec<&[u8]> = vec![
            b"XREAD",
            b"COUNT",
            count_text.as_bytes(),
            b"BLOCK",
            block_text.as_bytes(),
            b"STREAMS",
        ];
        args.extend(streams.iter().map(|stream| stream.as_bytes()));
        args.extend(last_ids.iter().map(Vec::as_slice));
        connection.writer.push(&args);
        drop(args);
        let failed = match connection.writer.flush().await {
            Err(error) => error,
            Ok(()) => {
                let read = future::or(async { Some(connection.reader.reply().await) }, async {
                    sleep(Duration::from_millis(FETCH_WAIT_MS) + REPLY_WAIT).await;
                    None
                })
                .await;
                match read {
                    None => RespError::Protocol {
                        reason: "no reply to XREAD in time",
                    },
                    Some(Err(error)) => error,
                    Some(Ok(reply)) => {
                        let now = clock.now();
                        let read = read_entries(reply, &streams, &mut last_ids, |value, key| {
                            let intended = value.get(..STAMP_BYTES).map(|stamp| {
                                clock.from_unix_ns(u64::from_le_bytes(
                                    stamp.try_into().expect("8 bytes"),
                                ))
                            });
                            metrics
                                .borrow_mut()
                                .consumed(now, intended, value.len() + key);
                            context.consumed.fetch_add(1, Ordering::AcqRel);
                        });
                        match read {
                            Ok(()) => continue,
                            Err(error) => error,
                        }
                    }
                }
            }
        };
        // Count it, reconnect and go on from the last ids.
        eprintln!("sluice-bench: consumer of {} failed: {failed}", plan.topic);
        metrics.borrow_mut().consume_failed(clock.now());
        loop {
            if clock.now() >= timeline.drain_deadline {
                return;
            }
            sleep(RECONNECT_PAUSE).await;
            metrics.borrow_mut().retried(1);
            match Connection::connect(address(&context.brokers)).await {
                Ok(fresh) => {
                    connection = fresh;
                    break;
                }
                Err(error) => {
                    eprintln!("sluice-bench: consumer reconnect failed: {error}");
                    metrics.borrow_mut().consume_failed(clock.now());
                }
            }
        }
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
