//! Elections an operator asks for (Kafka's ElectLeaders, the native
//! ElectLeaders of `sluice topic elect-leaders`): each partition's is
//! checked against this node's image and, if it can be held, proposed as
//! a [`MetadataRecord::LeaderElected`], which every node holds where it
//! applies it, checked again against the state it meets there. A
//! partition's answer is the election's outcome there: held, not needed,
//! or nobody it allows can lead.

use std::rc::Rc;

use sluice_replication::partition::control::ElectionError;

use super::{
    driver::{failure_of, propose_each},
    state::Rejected,
};
use crate::{
    cluster_metadata::{Election, Metadata, MetadataRecord, Refused},
    error::{ErrorKind, Failure},
    shard::Shard,
};

/// Elections proposed at once. Records proposed together reach the quorum
/// in one round (one fdatasync on each voter); a request for every
/// partition of a large cluster goes this many at a time, which bounds the
/// proposals and tasks waiting on this node.
pub const ELECTIONS_IN_FLIGHT_MAX: usize = 256;

/// What became of one partition's election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionOutcome {
    pub topic: String,
    pub partition: u32,
    pub result: Result<(), ElectionFailure>,
}

/// Why a partition's election was not held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionFailure {
    /// Not needed, or nobody the election allows can lead.
    NotHeld(ElectionError),
    /// No such topic or partition (`UnknownTopic`, `NoSuchPartition`), or
    /// the record was not committed (`NotController`, `StorageFailed`).
    Failed(Failure),
}

/// Holds `election` for each of `partitions` (topic, partition), or with
/// `None` for every partition of every topic; an outcome per partition,
/// in the order named. With `None`, partitions that needed no election
/// are left out of the answer, as Kafka's controller leaves them out.
pub async fn elect_leaders(
    shard: &Rc<Shard>,
    election: Election,
    partitions: Option<Vec<(String, u32)>>,
) -> Vec<ElectionOutcome> {
    let metadata = shard.metadata();
    let every = partitions.is_none();
    let partitions = partitions.unwrap_or_else(|| every_partition(&metadata));
    let mut outcomes = Vec::with_capacity(partitions.len());
    let mut due: Vec<(usize, MetadataRecord)> = Vec::new();
    for (topic, partition) in partitions {
        let result = match metadata.topic(&topic) {
            None => Err(ElectionFailure::Failed(Failure::new(
                ErrorKind::UnknownTopic,
                format!("no topic {topic}"),
            ))),
            Some(meta) => {
                let tried = metadata.try_election(meta.id, partition, election);
                if tried.is_ok() {
                    let record = MetadataRecord::LeaderElected {
                        topic_id: meta.id,
                        partition,
                        election,
                    };
                    due.push((outcomes.len(), record));
                }
                tried.map_err(not_held)
            }
        };
        outcomes.push(ElectionOutcome {
            topic,
            partition,
            result,
        });
    }
    for (index, result) in propose_each(shard, due, ELECTIONS_IN_FLIGHT_MAX).await {
        let outcome = &mut outcomes[index];
        outcome.result = result.map_err(|rejected| match rejected {
            Rejected::Refused(refused) => not_held(refused),
            Rejected::Failed(failure) => ElectionFailure::Failed(failure),
        });
        match &outcome.result {
            Ok(()) => tracing::info!(
                topic = %outcome.topic,
                partition = outcome.partition,
                %election,
                "leader elected"
            ),
            Err(failure) => tracing::info!(
                topic = %outcome.topic,
                partition = outcome.partition,
                %election,
                ?failure,
                "leader election not held"
            ),
        }
    }
    if every {
        outcomes.retain(|outcome| {
            !matches!(
                outcome.result,
                Err(ElectionFailure::NotHeld(ElectionError::NotNeeded(_)))
            )
        });
    }
    outcomes
}

/// Every partition of every topic, by topic name.
fn every_partition(metadata: &Metadata) -> Vec<(String, u32)> {
    metadata
        .topics
        .values()
        .flat_map(|topic| {
            (0..topic.partition_count()).map(|partition| (topic.name.clone(), partition))
        })
        .collect()
}

/// An election's refusal as its outcome.
fn not_held(refused: Refused) -> ElectionFailure {
    match refused {
        Refused::Election { reason, .. } => ElectionFailure::NotHeld(reason),
        refused => ElectionFailure::Failed(failure_of(refused)),
    }
}
