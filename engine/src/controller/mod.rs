//! The controller: the one place metadata changes (topics, their partitions
//! and configs, and the blocks of producer ids handed out), on shard 0.
//!
//! A change is appended to the metadata log (and made durable) first, then
//! carried out on the owner shards (partitions opened, removed or
//! reconfigured), then the new snapshot is installed on every shard before
//! the change is answered, so whatever the client does next, on any
//! connection, sees it. Changes run one at a time.

pub(crate) mod state;

use std::{collections::BTreeMap, ops::Range, rc::Rc, sync::Arc, time::Duration};

use futures_channel::oneshot;
use sluice_storage::{log::LogConfig, ProducerId, ShardId, TopicId};

use crate::{
    cluster_metadata::{Metadata, MetadataRecord, TopicMeta, PRODUCER_ID_FIRST},
    partition::{ask, gather_all, ErrorKind, Failure, PartitionOp, Route},
    shard::{Shard, ShardMessage},
    topic_config::log_config,
};
use state::Controller;

/// A topic has at most this many partitions: each is a directory, a log and
/// open files on its shard.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Kafka's limit on topic names.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Producer ids handed out per [`ControllerOp::AllocateProducerIds`]: one
/// metadata record (an fdatasync) per this many idempotent producers, and
/// at most this many ids lost when the broker restarts.
pub const PRODUCER_IDS_PER_BLOCK: i64 = 1000;

/// A topic to create, as the controller is asked for it (a protocol
/// adapter converts its own request into these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopicSpec {
    pub name: String,
    /// How many partitions; 0 for the broker's `default_partitions`.
    pub partitions: u32,
    pub configs: BTreeMap<String, String>,
}

/// What became of one topic a change named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcome {
    pub name: String,
    pub result: Result<(), Failure>,
}

/// Producer ids handed out together, none of them ever handed out before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub first: ProducerId,
    pub count: i64,
}

impl ProducerIdBlock {
    /// The ids of the block: `first..first + count`.
    pub fn ids(self) -> Range<i64> {
        self.first.0..self.first.0 + self.count
    }
}

/// A metadata change asked of the controller. Each answers on its `reply`
/// once the change is durable and every shard sees it (or with why not).
pub enum ControllerOp {
    /// Creates topics, one after another; an outcome per topic, in order.
    CreateTopics {
        topics: Vec<NewTopicSpec>,
        reply: oneshot::Sender<Vec<TopicOutcome>>,
    },
    /// Deletes topics by name; an outcome per name, in order.
    DeleteTopics {
        names: Vec<String>,
        reply: oneshot::Sender<Vec<TopicOutcome>>,
    },
    /// Sets some of a topic's configs; the others keep their values.
    AlterConfigs {
        topic: String,
        changes: Vec<(String, String)>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Replaces the topic's configs with `configs`, its whole new set
    /// (Kafka's AlterConfigs and IncrementalAlterConfigs). With
    /// `validate_only`, checks and changes nothing.
    SetConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Grows the topic to `count` partitions (Kafka's CreatePartitions).
    /// With `validate_only`, checks everything and changes nothing.
    CreatePartitions {
        topic: String,
        count: u32,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// Hands out a block of producer ids never handed out before (Kafka's
    /// InitProducerId).
    AllocateProducerIds {
        reply: oneshot::Sender<Result<ProducerIdBlock, Failure>>,
    },
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
            ErrorKind::InvalidTopicName,
            format!("topic name {name:?} must be 1 to {TOPIC_NAME_BYTES_MAX} of [a-zA-Z0-9._-], not . or .."),
        ))
    }
}

/// Runs `op` on the controller: here if this is shard 0, else sent there.
pub async fn to_controller(shard: &Rc<Shard>, op: ControllerOp) {
    if shard.id == 0 {
        run(shard, op).await;
    } else {
        let task = Box::new(move |shard: Rc<Shard>| {
            glommio::spawn_local(async move { run(&shard, op).await }).detach();
        });
        let _ = shard.peers[0].send(ShardMessage::Run(task)).await;
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
        ControllerOp::CreateTopics { topics, reply } => {
            let mut outcomes = Vec::new();
            for topic in topics {
                let result = create_topic(shard, controller, &topic).await;
                outcomes.push(TopicOutcome {
                    name: topic.name,
                    result,
                });
            }
            let _ = reply.send(outcomes);
        }
        ControllerOp::DeleteTopics { names, reply } => {
            let mut outcomes = Vec::new();
            for name in names {
                let result = delete_topic(shard, controller, &name).await;
                outcomes.push(TopicOutcome { name, result });
            }
            let _ = reply.send(outcomes);
        }
        ControllerOp::AlterConfigs {
            topic,
            changes,
            reply,
        } => {
            let result = match existing(&shard.metadata(), &topic) {
                Ok(meta) => {
                    let mut configs = meta.configs.clone();
                    configs.extend(changes);
                    set_configs(shard, controller, &topic, configs, false).await
                }
                Err(failure) => Err(failure),
            };
            let _ = reply.send(result);
        }
        ControllerOp::SetConfigs {
            topic,
            configs,
            validate_only,
            reply,
        } => {
            let _ =
                reply.send(set_configs(shard, controller, &topic, configs, validate_only).await);
        }
        ControllerOp::CreatePartitions {
            topic,
            count,
            validate_only,
            reply,
        } => {
            let _ = reply
                .send(create_partitions(shard, controller, &topic, count, validate_only).await);
        }
        ControllerOp::AllocateProducerIds { reply } => {
            let _ = reply.send(allocate_producer_ids(shard, controller).await);
        }
    }
}

fn append(controller: &Controller, record: &MetadataRecord) -> Result<(), Failure> {
    controller
        .log
        .borrow_mut()
        .append(record)
        .map_err(|error| Failure::new(ErrorKind::StorageFailed, error.to_string()))
}

async fn create_topic(
    shard: &Rc<Shard>,
    controller: &Controller,
    topic: &NewTopicSpec,
) -> Result<(), Failure> {
    check_topic_name(&topic.name)?;
    // No count given: the broker's default.
    let partitions = match topic.partitions {
        0 => shard.config.default_partitions,
        partitions => partitions,
    };
    if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(Failure::new(
            ErrorKind::InvalidPartitionCount,
            format!(
                "{} partitions: a topic has 1 to {PARTITIONS_PER_TOPIC_MAX}",
                topic.partitions
            ),
        ));
    }
    let config = log_config(&topic.configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    let metadata = shard.metadata();
    if metadata.topic(&topic.name).is_some() {
        return Err(Failure::new(
            ErrorKind::TopicExists,
            format!("topic {} exists", topic.name),
        ));
    }
    let record = MetadataRecord::TopicCreated {
        topic_id: TopicId(rand::random::<u128>()),
        name: topic.name.clone(),
        shards: place(&metadata, shard.shard_count(), partitions),
        configs: topic.configs.clone(),
    };
    append(controller, &record)?;
    let mut next = (*metadata).clone();
    next.apply(&record);
    let meta = next
        .topic(&topic.name)
        .cloned()
        .expect("a topic is in the metadata its record led to");

    open_then_install(shard, &meta, 0..partitions, &config, next).await?;
    tracing::info!(topic = %meta.name, partitions = meta.partition_count(), "topic created");
    Ok(())
}

/// Opens `partitions` of `topic` on their owners with `config`, then
/// installs `next` (the metadata that names them) on every shard, whether
/// or not every partition opened: the record naming them is durable
/// already. The first failure to open, if any.
async fn open_then_install(
    shard: &Rc<Shard>,
    topic: &TopicMeta,
    partitions: Range<u32>,
    config: &LogConfig,
    next: Metadata,
) -> Result<(), Failure> {
    let data_dir = &shard.config.data_dir;
    let opened = on_partitions(shard, topic, partitions, |partition, reply| {
        PartitionOp::Open {
            dir: topic.partition_dir(data_dir, partition),
            config: config.clone(),
            reply,
        }
    })
    .await;
    broadcast(shard, Arc::new(next)).await;
    opened
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
    let all = 0..meta.partition_count();
    let closed = on_partitions(shard, &meta, all, |_, reply| PartitionOp::Remove { reply }).await;
    if let Err(failure) = closed {
        tracing::warn!(topic = name, message = %failure.message, "a partition did not close cleanly");
    }
    // Renamed now, its partitions' directories in it, and given back to the
    // disk later and slowly: see sluice_storage::deleter.
    let delay = log_config(&meta.configs)
        .map_or(LogConfig::default().file_delete_delay_ms, |config| {
            config.file_delete_delay_ms
        });
    let topic_dir = meta.topic_dir(data_dir);
    if let Err(error) = sluice_storage::deleter::delete(&topic_dir, Duration::from_millis(delay)) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(topic = name, %error, "topic directory not deleted");
        }
    }
    tracing::info!(topic = name, "topic deleted");
    Ok(())
}

/// Replaces topic `name`'s configs with `configs`, checked first; with
/// `validate_only`, stops after the check.
async fn set_configs(
    shard: &Rc<Shard>,
    controller: &Controller,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Failure> {
    let metadata = shard.metadata();
    let meta = existing(&metadata, name)?;
    let config = log_config(&configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let record = MetadataRecord::ConfigsAltered {
        topic_id: meta.id,
        configs,
    };
    commit(shard, controller, &metadata, &record).await?;
    on_partitions(shard, &meta, 0..meta.partition_count(), |_, reply| {
        PartitionOp::SetConfig {
            config: config.clone(),
            reply,
        }
    })
    .await
}

/// The owner shards of `partitions` new partitions: each on the least loaded
/// of `shard_count` shards (the lowest id among equals), counting the
/// partitions `metadata` has and the ones placed before it.
fn place(metadata: &Metadata, shard_count: usize, partitions: u32) -> Vec<ShardId> {
    let mut load = metadata.load(shard_count);
    (0..partitions)
        .map(|_| {
            let (least, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(id, load)| (**load, *id))
                .expect("a shard");
            load[least] += 1;
            ShardId(u32::try_from(least).expect("fewer than 2^32 shards"))
        })
        .collect()
}

/// Grows topic `name` to `count` partitions; with `validate_only`, checks
/// and stops there. The new partitions are placed like a new topic's, made
/// durable in the metadata log, opened on their owners with the topic's
/// configs, and then the metadata naming them is installed everywhere.
///
/// Errors: `UnknownTopic`; `InvalidPartitions` for a count not above the
/// current one or above [`PARTITIONS_PER_TOPIC_MAX`]; `InvalidConfig` if
/// the topic's configs no longer make a log config; `StorageFailed` if the
/// record cannot be made durable or a partition does not open.
async fn create_partitions(
    shard: &Rc<Shard>,
    controller: &Controller,
    name: &str,
    count: u32,
    validate_only: bool,
) -> Result<(), Failure> {
    let metadata = shard.metadata();
    let meta = existing(&metadata, name)?;
    let current = meta.partition_count();
    if count <= current || count > PARTITIONS_PER_TOPIC_MAX {
        return Err(Failure::new(
            ErrorKind::InvalidPartitions,
            format!(
                "topic {name} has {current} partitions; it can grow to more than that and at most {PARTITIONS_PER_TOPIC_MAX}, not {count}"
            ),
        ));
    }
    let config = log_config(&meta.configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let record = MetadataRecord::PartitionsAdded {
        topic_id: meta.id,
        shards: place(&metadata, shard.shard_count(), count - current),
    };
    append(controller, &record)?;
    let mut next = (*metadata).clone();
    next.apply(&record);
    let grown = existing(&next, name)?;
    assert_eq!(
        grown.partition_count(),
        count,
        "topic {name} grew to {} partitions, not {count}",
        grown.partition_count()
    );

    open_then_install(shard, &grown, current..count, &config, next).await?;
    tracing::info!(
        topic = name,
        from = current,
        to = count,
        "partitions created"
    );
    Ok(())
}

/// Hands out the next [`PRODUCER_IDS_PER_BLOCK`] producer ids, once the end
/// of the block is durable in the metadata log: ids
/// are never handed out twice, whenever the broker stops. `Internal` once
/// the ids run out at `i64::MAX`; `StorageFailed` if the record cannot be
/// made durable.
async fn allocate_producer_ids(
    shard: &Rc<Shard>,
    controller: &Controller,
) -> Result<ProducerIdBlock, Failure> {
    let metadata = shard.metadata();
    let first = metadata.producer_id_next;
    let next = first
        .0
        .checked_add(PRODUCER_IDS_PER_BLOCK)
        .map(ProducerId)
        .ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                format!("producer ids are used up: the next block would start at {first}"),
            )
        })?;
    assert!(
        first >= PRODUCER_ID_FIRST && next > first,
        "producer ids went back: {next} <= {first}"
    );
    let record = MetadataRecord::ProducerIdsAllocated { next };
    commit(shard, controller, &metadata, &record).await?;
    assert_eq!(shard.metadata().producer_id_next, next);
    tracing::debug!(%first, %next, "producer ids allocated");
    Ok(ProducerIdBlock {
        first,
        count: PRODUCER_IDS_PER_BLOCK,
    })
}

/// The topic named `name`, or why there is none.
fn existing(metadata: &Metadata, name: &str) -> Result<Arc<TopicMeta>, Failure> {
    metadata
        .topic(name)
        .cloned()
        .ok_or_else(|| Failure::new(ErrorKind::UnknownTopic, format!("no topic {name}")))
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

/// Sends the op `make` builds to the owner of each of `partitions` of
/// `topic`, all at once, and waits for every answer; the first failure, if
/// any.
async fn on_partitions(
    shard: &Rc<Shard>,
    topic: &TopicMeta,
    partitions: Range<u32>,
    make: impl Fn(u32, oneshot::Sender<Result<(), Failure>>) -> PartitionOp,
) -> Result<(), Failure> {
    assert!(
        partitions.end <= topic.partition_count(),
        "partitions {partitions:?} of a topic with {}",
        topic.partition_count()
    );
    let parts = partitions
        .map(|partition| {
            let route = Route::of(shard, topic, partition);
            Ok(ask(shard, route, |reply| make(partition, reply)))
        })
        .collect();
    gather_all(parts)
        .await
        .into_iter()
        .find(Result::is_err)
        .unwrap_or(Ok(()))
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

#[cfg(test)]
mod tests;
