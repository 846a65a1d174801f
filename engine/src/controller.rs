//! The controller: the one place topic metadata changes, on shard 0.
//!
//! A change is appended to the metadata log (and made durable) first, then
//! carried out on the owner shards (partitions opened, removed or
//! reconfigured), then the new snapshot is installed on every shard before
//! the change is answered, so whatever the client does next, on any
//! connection, sees it. Changes run one at a time.

use std::{collections::BTreeMap, rc::Rc, sync::Arc};

use futures_channel::oneshot;
use sluice_net::native::{
    messages::{NewTopic, TopicResult},
    ErrorCode,
};

use crate::{
    metadata::{Metadata, MetadataLog, MetadataRecord, TopicMeta},
    shard::{Failure, PartitionOp, Shard, ShardMessage},
    topic_config::log_config,
};

/// A topic has at most this many partitions: each is a directory, a log and
/// open files on its shard.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Kafka's limit on topic names.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// A metadata change asked of the controller.
pub enum ControllerOp {
    CreateTopics(Vec<NewTopic>, oneshot::Sender<Vec<TopicResult>>),
    DeleteTopics(Vec<String>, oneshot::Sender<Vec<TopicResult>>),
    AlterConfigs(String, Vec<(String, String)>, oneshot::Sender<TopicResult>),
}

/// Lives on shard 0.
pub struct Controller {
    log: std::cell::RefCell<MetadataLog>,
    /// One change at a time.
    lock: glommio::sync::Semaphore,
}

impl Controller {
    pub fn new(log: MetadataLog) -> Controller {
        Controller {
            log: std::cell::RefCell::new(log),
            lock: glommio::sync::Semaphore::new(1),
        }
    }
}

fn ok(name: &str) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error: ErrorCode::None,
        message: String::new(),
    }
}

fn failed(name: &str, failure: Failure) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error: failure.code,
        message: failure.message,
    }
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic_name(name: &str) -> Result<(), Failure> {
    let valid = !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::InvalidTopicName,
            format!("topic name {name:?} must be 1 to {TOPIC_NAME_BYTES_MAX} of [a-zA-Z0-9._-], not . or .."),
        ))
    }
}

/// Runs a controller op on shard 0 (where `shard` is).
pub async fn run(shard: &Rc<Shard>, op: ControllerOp) {
    let controller = shard
        .controller
        .as_ref()
        .expect("controller ops run on shard 0");
    let _turn = controller
        .lock
        .acquire_permit(1)
        .await
        .expect("controller lock is never closed");
    match op {
        ControllerOp::CreateTopics(topics, reply) => {
            let mut results = Vec::new();
            for topic in topics {
                let result = create_topic(shard, controller, &topic).await;
                results.push(match result {
                    Ok(()) => ok(&topic.name),
                    Err(failure) => failed(&topic.name, failure),
                });
            }
            let _ = reply.send(results);
        }
        ControllerOp::DeleteTopics(names, reply) => {
            let mut results = Vec::new();
            for name in names {
                results.push(match delete_topic(shard, controller, &name).await {
                    Ok(()) => ok(&name),
                    Err(failure) => failed(&name, failure),
                });
            }
            let _ = reply.send(results);
        }
        ControllerOp::AlterConfigs(name, configs, reply) => {
            let _ = reply.send(
                match alter_configs(shard, controller, &name, configs).await {
                    Ok(()) => ok(&name),
                    Err(failure) => failed(&name, failure),
                },
            );
        }
    }
}

fn append(controller: &Controller, record: &MetadataRecord) -> Result<(), Failure> {
    controller
        .log
        .borrow_mut()
        .append(record)
        .map_err(|error| Failure::new(ErrorCode::StorageFailed, error.to_string()))
}

async fn create_topic(
    shard: &Rc<Shard>,
    controller: &Controller,
    topic: &NewTopic,
) -> Result<(), Failure> {
    check_topic_name(&topic.name)?;
    // No count given: the broker's default.
    let partitions = match topic.partitions {
        0 => shard.config.default_partitions,
        partitions => partitions,
    };
    if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(Failure::new(
            ErrorCode::InvalidPartitionCount,
            format!(
                "{} partitions: a topic has 1 to {PARTITIONS_PER_TOPIC_MAX}",
                topic.partitions
            ),
        ));
    }
    let configs: BTreeMap<String, String> = topic.configs.iter().cloned().collect();
    let config = log_config(&configs)
        .map_err(|error| Failure::new(ErrorCode::InvalidConfig, error.to_string()))?;
    let metadata = shard.metadata();
    if metadata.topic(&topic.name).is_some() {
        return Err(Failure::new(
            ErrorCode::TopicExists,
            format!("topic {} exists", topic.name),
        ));
    }
    // Each partition on the least loaded shard, counting the ones placed.
    let mut load = metadata.load(shard.shard_count());
    let shards = (0..partitions)
        .map(|_| {
            let (least, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(id, load)| (**load, *id))
                .expect("a shard");
            load[least] += 1;
            least as u32
        })
        .collect();
    let meta = TopicMeta {
        id: rand::random::<u128>(),
        name: topic.name.clone(),
        shards,
        configs,
    };
    let record = MetadataRecord::TopicCreated(meta.clone());
    append(controller, &record)?;
    let mut next = (*metadata).clone();
    next.apply(&record);

    let data_dir = &shard.config.data_dir;
    let first_failure = on_every_partition(shard, &meta, |partition, reply| PartitionOp::Open {
        dir: meta.partition_dir(data_dir, partition),
        config: config.clone(),
        reply,
    })
    .await
    .err();
    broadcast(shard, Arc::new(next)).await;
    match first_failure {
        None => {
            tracing::info!(topic = %meta.name, partitions = meta.partition_count(), "topic created");
            Ok(())
        }
        Some(failure) => Err(failure),
    }
}

async fn delete_topic(
    shard: &Rc<Shard>,
    controller: &Controller,
    name: &str,
) -> Result<(), Failure> {
    let metadata = shard.metadata();
    let meta = existing(&metadata, name)?;
    let record = MetadataRecord::TopicDeleted { topic_id: meta.id };
    commit(shard, controller, &metadata, &record).await?;
    let data_dir = &shard.config.data_dir;
    let removed = on_every_partition(shard, &meta, |partition, reply| PartitionOp::Remove {
        dir: meta.partition_dir(data_dir, partition),
        reply,
    })
    .await;
    if let Err(failure) = removed {
        tracing::warn!(topic = name, message = %failure.message, "partition files not removed");
    }
    let _ = std::fs::remove_dir_all(meta.topic_dir(data_dir));
    tracing::info!(topic = name, "topic deleted");
    Ok(())
}

async fn alter_configs(
    shard: &Rc<Shard>,
    controller: &Controller,
    name: &str,
    changes: Vec<(String, String)>,
) -> Result<(), Failure> {
    let metadata = shard.metadata();
    let meta = existing(&metadata, name)?;
    let mut configs = meta.configs.clone();
    for (key, value) in changes {
        configs.insert(key, value);
    }
    let config = log_config(&configs)
        .map_err(|error| Failure::new(ErrorCode::InvalidConfig, error.to_string()))?;
    let record = MetadataRecord::ConfigsAltered {
        topic_id: meta.id,
        configs,
    };
    commit(shard, controller, &metadata, &record).await?;
    on_every_partition(shard, &meta, |_, reply| PartitionOp::SetConfig {
        config: config.clone(),
        reply,
    })
    .await
}

/// The topic named `name`, or why there is none.
fn existing(metadata: &Metadata, name: &str) -> Result<Arc<TopicMeta>, Failure> {
    metadata
        .topic(name)
        .cloned()
        .ok_or_else(|| Failure::new(ErrorCode::UnknownTopic, format!("no topic {name}")))
}

/// Makes `record` durable in the metadata log and installs the metadata it
/// leads to on every shard.
async fn commit(
    shard: &Rc<Shard>,
    controller: &Controller,
    metadata: &Metadata,
    record: &MetadataRecord,
) -> Result<(), Failure> {
    append(controller, record)?;
    let mut next = metadata.clone();
    next.apply(record);
    broadcast(shard, Arc::new(next)).await;
    Ok(())
}

/// Sends the op `make` builds to the owner of every partition of `topic`,
/// all at once, and waits for every answer; the first failure, if any.
async fn on_every_partition(
    shard: &Rc<Shard>,
    topic: &TopicMeta,
    make: impl Fn(u32, oneshot::Sender<Result<(), Failure>>) -> PartitionOp,
) -> Result<(), Failure> {
    let answers: Vec<_> = (0..topic.partition_count())
        .map(|partition| {
            shard.call(
                shard.owner(topic.shards[partition as usize]),
                (topic.id, partition),
                |reply| make(partition, reply),
                Err(Failure::new(
                    ErrorCode::ShuttingDown,
                    "the owner shard stopped",
                )),
            )
        })
        .collect();
    let mut first_failure = Ok(());
    for answer in answers {
        if let Err(failure) = answer.await {
            if first_failure.is_ok() {
                first_failure = Err(failure);
            }
        }
    }
    first_failure
}

/// Installs `metadata` on every shard and waits until each has it.
pub async fn broadcast(shard: &Rc<Shard>, metadata: Arc<Metadata>) {
    let mut acks = Vec::new();
    for (id, peer) in shard.peers.iter().enumerate() {
        if id == shard.id {
            *shard.metadata.borrow_mut() = metadata.clone();
            continue;
        }
        let (ack, acked) = oneshot::channel();
        if peer
            .send(ShardMessage::Metadata(metadata.clone(), ack))
            .await
            .is_ok()
        {
            acks.push(acked);
        }
    }
    for acked in acks {
        let _ = acked.await;
    }
}
