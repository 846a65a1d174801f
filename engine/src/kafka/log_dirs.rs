//! DescribeLogDirs (v1-v4): this broker's data directory, the bytes of each of its
//! partitions there, and (v4) the filesystem's total and usable bytes, as
//! `kafka-log-dirs.sh` and admin clients ask. A broker has one data
//! directory for now: AlterReplicaLogDirs, which moves a partition between
//! a broker's directories, is not served.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    },
    DescribeLogDirsRequest, DescribeLogDirsResponse,
};

use super::{on_partition, str_bytes, topic_name};
use crate::{
    partition::{FanOut, PartitionOp, PartitionStats},
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
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let partitions: Vec<DescribeLogDirsPartition> = answers
            .into_iter()
            .filter_map(|(partition, stats)| {
                let stats = stats.ok()?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(partition as i32)
                        .with_partition_size(stats.size_bytes as i64)
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(partitions),
            );
        }
    }
    let data_dir = &shard.config.data_dir;
    let (total, usable) = filesystem_bytes(data_dir).unwrap_or((-1, -1));
    let result = DescribeLogDirsResult::default()
        .with_error_code(0)
        .with_log_dir(str_bytes(data_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(if version >= 4 { total } else { -1 })
        .with_usable_bytes(if version >= 4 { usable } else { -1 });
    DescribeLogDirsResponse::default().with_results(vec![result])
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
