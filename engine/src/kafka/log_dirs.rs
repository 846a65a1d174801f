//! A broker's log directories (see [`crate::log_dirs`]), as
//! `kafka-log-dirs.sh`, `kafka-reassign-partitions.sh` and admin clients
//! see them:
//!
//! - DescribeLogDirs (v1-v4): each directory, the bytes of each partition
//!   in it, and (v4) its filesystem's total and usable bytes.
//! - AlterReplicaLogDirs (v1-v2): moves partitions of this broker to
//!   another of its directories. Kafka copies a "future" replica while the
//!   current one serves; here the partition is closed, copied and reopened,
//!   and its requests meanwhile are answered NOT_LEADER_OR_FOLLOWER, which
//!   clients retry: a move costs the partition its copy time. The answer
//!   comes once each move is done.

use std::{path::Path, rc::Rc};

use kafka_protocol::{
    error::ResponseError,
    messages::{
        alter_replica_log_dirs_response::{
            AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
        },
        describe_log_dirs_response::{
            DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
        },
        AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
        DescribeLogDirsResponse,
    },
};

use super::{failure_code, on_partition, str_bytes, topic_name};
use crate::{
    partition::{gather_all, FanOut, PartitionOp, PartitionStats},
    shard::Shard,
};

pub async fn describe_log_dirs(
    shard: &Rc<Shard>,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let metadata = shard.metadata();
    let node = shard.config.node_id;
    // The partitions asked for (every one when none is named) that this
    // broker holds.
    let wanted: Vec<(String, Vec<u32>)> = match &request.topics {
        None => metadata
            .topics
            .values()
            .map(|topic| (topic.name.clone(), (0..topic.partition_count()).collect()))
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .filter_map(|p| u32::try_from(*p).ok())
                    .collect();
                (topic.topic.0.to_string(), partitions)
            })
            .collect(),
    };
    let mut parts = FanOut::<u32, PartitionStats>::default();
    for (name, partitions) in wanted {
        let Some(topic) = metadata.topic(&name) else {
            continue;
        };
        for partition in partitions {
            if partition < topic.partition_count() && topic.is_replica(partition, node) {
                let stats = on_partition(shard, &metadata, &name, partition as i32, |reply| {
                    PartitionOp::Stats { reply }
                });
                parts.part(partition, stats);
            }
        }
        parts.end_topic(name);
    }
    let log_dirs = shard.log_dirs.dirs();
    // Per log directory, its topics with their partitions there.
    let mut per_dir: Vec<Vec<DescribeLogDirsTopic>> = vec![Vec::new(); log_dirs.len()];
    for (name, answers) in parts.gather().await {
        let mut partitions: Vec<Vec<DescribeLogDirsPartition>> = vec![Vec::new(); log_dirs.len()];
        for (partition, stats) in answers {
            let Ok(stats) = stats else {
                continue;
            };
            let Some(index) = shard.log_dirs.index_of(&stats.dir) else {
                continue;
            };
            partitions[index].push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(partition as i32)
                    .with_partition_size(stats.size_bytes as i64)
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            );
        }
        for (index, partitions) in partitions.into_iter().enumerate() {
            if !partitions.is_empty() {
                per_dir[index].push(
                    DescribeLogDirsTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(partitions),
                );
            }
        }
    }
    let results = log_dirs
        .iter()
        .zip(per_dir)
        .map(|(dir, topics)| {
            let (total, usable) = filesystem_bytes(dir).unwrap_or((-1, -1));
            DescribeLogDirsResult::default()
                .with_error_code(0)
                .with_log_dir(str_bytes(dir.display().to_string()))
                .with_topics(topics)
                .with_total_bytes(if version >= 4 { total } else { -1 })
                .with_usable_bytes(if version >= 4 { usable } else { -1 })
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// Moves each named partition of this broker to the log directory named
/// for it, one after another; an outcome per partition: LOG_DIR_NOT_FOUND
/// for a directory that is not one of this broker's,
/// UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist,
/// REPLICA_NOT_AVAILABLE for one this broker holds no replica of,
/// KAFKA_STORAGE_ERROR if the copy failed (the partition then stays where
/// it was).
pub async fn alter_replica_log_dirs(
    shard: &Rc<Shard>,
    request: AlterReplicaLogDirsRequest,
    _version: i16,
) -> AlterReplicaLogDirsResponse {
    let node = shard.config.node_id;
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for target in request.dirs {
        let path = Path::new(target.path.as_str());
        let to = shard.log_dirs.index_named(path);
        for topic in target.topics {
            let name = topic.name.0.to_string();
            let mut outcomes = Vec::new();
            for partition in topic.partitions {
                let metadata = shard.metadata();
                let meta = metadata.topic(&name).cloned();
                let code = match (to, meta) {
                    (None, _) => ResponseError::LogDirNotFound.code(),
                    (_, None) => ResponseError::UnknownTopicOrPartition.code(),
                    (Some(_), Some(meta))
                        if u32::try_from(partition)
                            .map_or(true, |p| p >= meta.partition_count()) =>
                    {
                        ResponseError::UnknownTopicOrPartition.code()
                    }
                    (Some(_), Some(meta)) if !meta.is_replica(partition as u32, node) => {
                        ResponseError::ReplicaNotAvailable.code()
                    }
                    (Some(to), Some(meta)) => {
                        let from = shard.log_dirs.find(&meta, partition as u32);
                        let dir = meta.partition_dir(&shard.log_dirs.dirs()[to], partition as u32);
                        let pending = on_partition(shard, &metadata, &name, partition, |reply| {
                            PartitionOp::Move { to: dir, reply }
                        });
                        let moved = gather_all(vec![pending]).await.pop().expect("one answer");
                        match moved {
                            Ok(()) => {
                                if let Some(from) = from.filter(|from| *from != to) {
                                    shard.log_dirs.moved(from, to);
                                    tracing::info!(topic = %name, partition, to = %target.path, "partition moved to another log directory");
                                }
                                0
                            }
                            Err(failure) => {
                                tracing::warn!(topic = %name, partition, message = %failure.message, "partition not moved");
                                match failure.kind {
                                    crate::error::ErrorKind::StorageFailed => {
                                        ResponseError::KafkaStorageError.code()
                                    }
                                    _ => failure_code(&failure),
                                }
                            }
                        }
                    }
                };
                outcomes.push(
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(code),
                );
            }
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name)
                    .with_partitions(outcomes),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}

/// The total and usable bytes of the filesystem holding `dir`.
fn filesystem_bytes(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given for a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as i64;
    Some((
        (stat.f_blocks as i64).saturating_mul(block),
        (stat.f_bavail as i64).saturating_mul(block),
    ))
}
