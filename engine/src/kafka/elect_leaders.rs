//! ElectLeaders (KIP-183, KIP-460), as `kafka-leader-election.sh` and
//! admin clients send it: a preferred (0) or unclean (1) election for each
//! named partition, or for every partition when none are named. The
//! controller holds them (see `crate::controller::elections`); each
//! partition answers as Kafka's controller does: NONE once held,
//! ELECTION_NOT_NEEDED when the preferred replica leads already (or, for
//! an unclean one, the partition has a leader), PREFERRED_LEADER_NOT_
//! AVAILABLE when the preferred replica is not alive and in sync,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive to lead,
//! UNKNOWN_TOPIC_OR_PARTITION. Asked for every partition, the answer
//! leaves out those that needed no election, as Kafka's does. The
//! request's `timeout_ms` is not waited on apart: each election is
//! answered once it is committed and applied on this node, or after the
//! controller's own proposal timeout (`REQUEST_TIMED_OUT`).

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        elect_leaders_response::{PartitionResult, ReplicaElectionResult},
        ElectLeadersRequest, ElectLeadersResponse,
    },
};
use sluice_replication::partition::control::ElectionError;

use super::{
    admin::{controller, stopped},
    failure_code, str_bytes, topic_name,
};
use crate::{
    cluster_metadata::Election,
    controller::{ControllerOp, ElectionFailure, ElectionOutcome},
    partition::Failure,
    shard::Shard,
};

/// A partition's answer: Kafka's code and a message for people.
type Answer = (i16, Option<String>);

pub async fn elect_leaders(
    shard: &Rc<Shard>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    // Version 0 elects preferred replicas only.
    let code = if version >= 1 {
        request.election_type
    } else {
        0
    };
    let named: Option<Vec<(String, Vec<i32>)>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.topic.0.to_string(), topic.partitions))
            .collect()
    });
    let Some(election) = u8::try_from(code).ok().and_then(Election::from_code) else {
        let message = format!("election type {code} is neither preferred (0) nor unclean (1)");
        return all_answered(named, (ResponseError::InvalidRequest.code(), Some(message)));
    };
    let asked = named.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .filter_map(|partition| Some((topic.clone(), u32::try_from(*partition).ok()?)))
            })
            .collect()
    });
    let outcomes = controller(shard, |reply| ControllerOp::ElectLeaders {
        election,
        partitions: asked,
        reply,
    })
    .await;
    let Some(outcomes) = outcomes else {
        return all_answered(named, failure_answer(&stopped()));
    };
    let results = match named {
        Some(topics) => answered_as_named(topics, outcomes),
        None => by_topic(outcomes),
    };
    response(0, results)
}

/// The request refused whole: `refused` for it and for every partition
/// it named.
fn all_answered(named: Option<Vec<(String, Vec<i32>)>>, refused: Answer) -> ElectLeadersResponse {
    let results = named
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partitions)| {
            let answers = partitions.into_iter().map(|index| (index, refused.clone()));
            topic_result(&topic, answers.collect())
        })
        .collect();
    response(refused.0, results)
}

/// The answers to the partitions as the request named them, in its order:
/// `outcomes` has one per partition of a valid index, in that order.
fn answered_as_named(
    topics: Vec<(String, Vec<i32>)>,
    outcomes: Vec<ElectionOutcome>,
) -> Vec<ReplicaElectionResult> {
    let mut outcomes = outcomes.into_iter();
    topics
        .into_iter()
        .map(|(topic, partitions)| {
            let answers = partitions
                .into_iter()
                .map(|index| {
                    if index < 0 {
                        let message = format!("no partition {index} of topic {topic}");
                        let unknown = ResponseError::UnknownTopicOrPartition.code();
                        return (index, (unknown, Some(message)));
                    }
                    let outcome = outcomes
                        .next()
                        .expect("the controller answers each partition named");
                    assert!(
                        outcome.topic == topic && i64::from(outcome.partition) == i64::from(index),
                        "an answer for partition {} of {} where {index} of {topic} was asked",
                        outcome.partition,
                        outcome.topic
                    );
                    (index, answer(&outcome.result))
                })
                .collect();
            topic_result(&topic, answers)
        })
        .collect()
}

/// The answers to an election of every partition, one result per topic.
fn by_topic(outcomes: Vec<ElectionOutcome>) -> Vec<ReplicaElectionResult> {
    let mut topics: Vec<(String, Vec<(i32, Answer)>)> = Vec::new();
    for outcome in outcomes {
        let index = i32::try_from(outcome.partition).unwrap_or(i32::MAX);
        let answer = answer(&outcome.result);
        match topics.last_mut() {
            Some((topic, answers)) if *topic == outcome.topic => answers.push((index, answer)),
            _ => topics.push((outcome.topic, vec![(index, answer)])),
        }
    }
    topics
        .into_iter()
        .map(|(topic, answers)| topic_result(&topic, answers))
        .collect()
}

/// Kafka's answer for one partition's outcome.
fn answer(result: &Result<(), ElectionFailure>) -> Answer {
    let reason = match result {
        Ok(()) => return (0, None),
        Err(ElectionFailure::Failed(failure)) => return failure_answer(failure),
        Err(ElectionFailure::NotHeld(reason)) => reason,
    };
    let error = match reason {
        ElectionError::NotNeeded(_) => ResponseError::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
        ElectionError::NoLiveReplica => ResponseError::EligibleLeadersNotAvailable,
    };
    (error.code(), Some(reason.to_string()))
}

fn failure_answer(failure: &Failure) -> Answer {
    (failure_code(failure), Some(failure.message.clone()))
}

fn topic_result(topic: &str, answers: Vec<(i32, Answer)>) -> ReplicaElectionResult {
    let partitions = answers
        .into_iter()
        .map(|(index, (code, message))| {
            PartitionResult::default()
                .with_partition_id(index)
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    ReplicaElectionResult::default()
        .with_topic(topic_name(topic))
        .with_partition_result(partitions)
}

/// The response (the top-level code is written from version 1 on).
fn response(error_code: i16, results: Vec<ReplicaElectionResult>) -> ElectLeadersResponse {
    ElectLeadersResponse::default()
        .with_error_code(error_code)
        .with_replica_election_results(results)
}
