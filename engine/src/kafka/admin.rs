//! Topic administration: create, delete and grow topics, delete records,
//! describe and change configs, describe the cluster. Changes go to the
//! controller on shard 0, as the native ones do.

use std::{collections::BTreeMap, rc::Rc};

use futures_channel::oneshot;
use kafka_protocol::{
    error::ResponseError,
    messages::{
        alter_configs_response::AlterConfigsResourceResponse,
        create_partitions_request::CreatePartitionsTopic,
        create_partitions_response::CreatePartitionsTopicResult,
        create_topics_request::CreatableTopic,
        create_topics_response::{CreatableTopicConfigs, CreatableTopicResult},
        delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult},
        delete_topics_response::DeletableTopicResult,
        describe_cluster_response::DescribeClusterBroker,
        describe_configs_response::{
            DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
        },
        incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
        CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
        CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
        DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
        DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse,
    },
    protocol::StrBytes,
};
use sluice_storage::{NodeId, Offset};
use uuid::Uuid;

use super::{cluster_id, failure_code, on_partition, str_bytes, topic_name};
use crate::{
    broker_configs::{broker_settings, BrokerSetting, Dynamic},
    cluster_metadata::{Metadata, TopicMeta},
    controller::{
        check_replication_factor, check_topic_name, to_controller, ControllerOp, NewTopicSpec,
        TopicOutcome, PARTITIONS_PER_TOPIC_MAX,
    },
    partition::{ErrorKind, Failure, FanOut, PartitionOp},
    shard::Shard,
    topic_config::{self, effective, log_config, ConfigType},
};

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// IncrementalAlterConfigs' operations.
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
const OPERATION_APPEND: i8 = 2;
const OPERATION_SUBTRACT: i8 = 3;
/// Kafka's config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn message(failure: &Failure) -> Option<StrBytes> {
    Some(str_bytes(failure.message.clone()))
}

/// Why the controller did not do what it was asked for topic `name`, if it
/// did not: its outcome's failure, or that it stopped before answering.
fn outcome_failure(outcomes: &[TopicOutcome], name: &str) -> Option<Failure> {
    match outcomes.iter().find(|outcome| outcome.name == name) {
        Some(outcome) => outcome.result.clone().err(),
        None => Some(stopped()),
    }
}

pub(super) async fn controller<T>(
    shard: &Rc<Shard>,
    op: impl FnOnce(oneshot::Sender<T>) -> ControllerOp,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    to_controller(shard, op(reply)).await;
    answer.await.ok()
}

pub(super) fn stopped() -> Failure {
    Failure::new(ErrorKind::ShuttingDown, "the controller stopped")
}

pub async fn create_topics(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    // Checked here first, in Kafka's terms; what passes goes to the
    // controller, unless only validation was asked.
    // Per topic: what to create, or Kafka's error code and a message.
    type Checked = Result<NewTopicSpec, (i16, String)>;
    let mut checked: Vec<(String, Checked)> = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let new = placement(&topic).and_then(|(partitions, replication_factor, assignment)| {
            check_replication_factor(replication_factor)
                .and_then(|_| check_new_topic(shard, &name, partitions, &topic.configs))
                .map(|new| NewTopicSpec {
                    replication_factor,
                    assignment,
                    ..new
                })
                .map_err(|failure| (failure_code(&failure), failure.message))
        });
        checked.push((name, new));
    }
    let to_create: Vec<NewTopicSpec> = checked
        .iter()
        .filter_map(|(_, new)| new.as_ref().ok().cloned())
        .collect();
    let mut created: Vec<TopicOutcome> = Vec::new();
    if !request.validate_only && !to_create.is_empty() {
        created = controller(shard, |reply| ControllerOp::CreateTopics {
            topics: to_create,
            reply,
        })
        .await
        .unwrap_or_default();
    }
    let metadata = shard.metadata();
    let topics = checked
        .into_iter()
        .map(|(name, new)| {
            let outcome = new.and_then(|new| {
                if request.validate_only {
                    return Ok(new);
                }
                match outcome_failure(&created, &name) {
                    None => Ok(new),
                    Some(failure) => Err((failure_code(&failure), failure.message)),
                }
            });
            let result = CreatableTopicResult::default().with_name(topic_name(&name));
            match outcome {
                Err((code, text)) => result
                    .with_error_code(code)
                    .with_error_message((version >= 1).then(|| str_bytes(text)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
                Ok(_) if version < 5 => result,
                Ok(new) => {
                    let meta = metadata.topic(&name);
                    let id = meta
                        .filter(|_| version >= 7)
                        .map_or(Uuid::nil(), |meta| Uuid::from_u128(meta.id.0));
                    result
                        .with_topic_id(id)
                        .with_num_partitions(new.partitions as i32)
                        .with_replication_factor(1)
                        .with_configs(Some(
                            effective(&new.configs)
                                .into_iter()
                                .map(|(config, value, set)| {
                                    CreatableTopicConfigs::default()
                                        .with_name(str_bytes(config.name))
                                        .with_value(Some(str_bytes(value)))
                                        .with_config_source(if set {
                                            SOURCE_TOPIC
                                        } else {
                                            SOURCE_DEFAULT
                                        })
                                })
                                .collect(),
                        ))
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// The nodes of each partition, as a client assigned them.
type Assignment = Vec<Vec<NodeId>>;

/// The partition count and replication factor (0: the default) a
/// CreateTopics entry asks for, or its explicit replica assignments (then
/// also the assignment, one list of nodes per partition), checked as Kafka
/// checks them: both forms at once are an invalid request; an assignment
/// names partitions 0 to n - 1, once each; a factor is -1 (the default) or
/// positive. Whether the cluster can give the factor, and whether the
/// assigned nodes can hold the partitions, is the controller's check.
fn placement(topic: &CreatableTopic) -> Result<(i32, u16, Option<Assignment>), (i16, String)> {
    if topic.assignments.is_empty() {
        return match topic.replication_factor {
            -1 => Ok((topic.num_partitions, 0, None)),
            factor if factor >= 1 => Ok((topic.num_partitions, factor as u16, None)),
            factor => Err((
                ResponseError::InvalidReplicationFactor.code(),
                format!("replication factor {factor}: it is -1 (the default) or at least 1"),
            )),
        };
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest.code(),
            "a partition count or replication factor and replica assignments were both given"
                .to_string(),
        ));
    }
    let invalid = |message: String| (ResponseError::InvalidReplicaAssignment.code(), message);
    let count = topic.assignments.len();
    let mut placed: Vec<Option<Vec<NodeId>>> = vec![None; count];
    for assignment in &topic.assignments {
        let index = assignment.partition_index;
        let slot = usize::try_from(index)
            .ok()
            .and_then(|index| placed.get_mut(index))
            .ok_or_else(|| invalid(format!("partition {index} of {count} assigned")))?;
        if slot.is_some() {
            return Err(invalid(format!("partition {index} is assigned twice")));
        }
        *slot = Some(
            assignment
                .broker_ids
                .iter()
                .map(|id| NodeId(id.0))
                .collect(),
        );
    }
    let count =
        i32::try_from(count).map_err(|_| invalid(format!("{count} partitions assigned")))?;
    Ok((
        count,
        0,
        Some(placed.into_iter().map(Option::unwrap_or_default).collect()),
    ))
}

fn check_new_topic(
    shard: &Shard,
    name: &str,
    partitions: i32,
    configs: &[kafka_protocol::messages::create_topics_request::CreatableTopicConfig],
) -> Result<NewTopicSpec, Failure> {
    check_topic_name(name)?;
    if shard.metadata().topic(name).is_some() {
        return Err(Failure::new(
            ErrorKind::TopicExists,
            format!("topic {name} exists"),
        ));
    }
    let partitions = match partitions {
        -1 => shard.config.default_partitions,
        count if count >= 1 && count as u32 <= PARTITIONS_PER_TOPIC_MAX => count as u32,
        count => {
            return Err(Failure::new(
                ErrorKind::InvalidPartitionCount,
                format!("{count} partitions: a topic has 1 to {PARTITIONS_PER_TOPIC_MAX}"),
            ))
        }
    };
    let configs: BTreeMap<String, String> = configs
        .iter()
        .filter_map(|config| Some((config.name.to_string(), config.value.as_ref()?.to_string())))
        .collect();
    log_config(&configs)
        .map_err(|error| Failure::new(ErrorKind::InvalidConfig, error.to_string()))?;
    Ok(NewTopicSpec {
        name: name.to_string(),
        partitions,
        configs,
        replication_factor: 0,
        assignment: None,
    })
}

pub async fn delete_topics(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let metadata = shard.metadata();
    // By name before v6, by name or id from v6.
    let asked: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|state| {
                (
                    state.name.as_ref().map(|name| name.0.to_string()),
                    state.topic_id,
                )
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|name| (Some(name.0.to_string()), Uuid::nil()))
            .collect()
    };
    let resolved: Vec<(Option<String>, Uuid)> = asked
        .into_iter()
        .map(|(name, id): (Option<String>, Uuid)| match name {
            Some(name) => {
                let id = metadata
                    .topic(&name)
                    .map_or(id, |meta| Uuid::from_u128(meta.id.0));
                (Some(name), id)
            }
            None => (
                metadata
                    .topics
                    .values()
                    .find(|meta| Uuid::from_u128(meta.id.0) == id)
                    .map(|meta| meta.name.clone()),
                id,
            ),
        })
        .collect();
    let names: Vec<String> = resolved
        .iter()
        .filter_map(|(name, _)| name.clone())
        .collect();
    let outcomes = controller(shard, |reply| ControllerOp::DeleteTopics { names, reply })
        .await
        .unwrap_or_default();
    let responses = resolved
        .into_iter()
        .map(|(name, id)| {
            let response = DeletableTopicResult::default()
                .with_name(name.as_deref().map(topic_name))
                .with_topic_id(if version >= 6 { id } else { Uuid::nil() });
            let Some(name) = name else {
                return response.with_error_code(ResponseError::UnknownTopicId.code());
            };
            match outcome_failure(&outcomes, &name) {
                None => response,
                Some(failure) => response
                    .with_error_code(failure_code(&failure))
                    .with_error_message(message(&failure).filter(|_| version >= 5)),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    shard: &Rc<Shard>,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
        let assignment = match new_partitions_placed(shard, &name, &topic) {
            Ok(assignment) => assignment,
            Err((code, text)) => {
                results.push(
                    result
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(text))),
                );
                continue;
            }
        };
        let outcome = match u32::try_from(topic.count) {
            Err(_) => Some(Failure::new(
                ErrorKind::InvalidPartitions,
                format!("{} partitions", topic.count),
            )),
            Ok(count) => {
                let validate_only = request.validate_only;
                let answer = controller(shard, |reply| ControllerOp::CreatePartitions {
                    topic: name.clone(),
                    count,
                    assignment,
                    validate_only,
                    reply,
                })
                .await;
                match answer {
                    Some(result) => result.err(),
                    None => Some(stopped()),
                }
            }
        };
        results.push(match outcome {
            None => result,
            Some(failure) => result
                .with_error_code(failure_code(&failure))
                .with_error_message(message(&failure)),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// CreatePartitions' replica assignments, if given: one list of nodes per
/// new partition (whether they can hold them is the controller's check).
fn new_partitions_placed(
    shard: &Shard,
    name: &str,
    topic: &CreatePartitionsTopic,
) -> Result<Option<Assignment>, (i16, String)> {
    let Some(assignments) = &topic.assignments else {
        return Ok(None);
    };
    let invalid = |message: String| (ResponseError::InvalidReplicaAssignment.code(), message);
    if let Some(current) = shard
        .metadata()
        .topic(name)
        .map(|meta| meta.partition_count())
    {
        let new = i64::from(topic.count) - i64::from(current);
        if new != assignments.len() as i64 {
            return Err(invalid(format!(
                "{} replica assignments for {new} new partitions",
                assignments.len()
            )));
        }
    }
    Ok(Some(
        assignments
            .iter()
            .map(|assignment| {
                assignment
                    .broker_ids
                    .iter()
                    .map(|id| NodeId(id.0))
                    .collect()
            })
            .collect(),
    ))
}

/// Kafka's DeleteRecords: each partition's log start moves up to the offset
/// given (-1: the high watermark), durably; the answer is the new start.
pub async fn delete_records(
    shard: &Rc<Shard>,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let metadata = shard.metadata();
    let mut parts = FanOut::<i32, Offset>::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for part in &topic.partitions {
            let before = match part.offset {
                -1 => Ok(None),
                offset if offset >= 0 => Ok(Some(Offset(offset as u64))),
                offset => Err(Failure::new(
                    ErrorKind::OffsetOutOfRange,
                    format!("offset {offset}"),
                )),
            };
            let answer = before.and_then(|before| {
                on_partition(shard, &metadata, &name, part.partition_index, |reply| {
                    PartitionOp::DeleteRecords { before, reply }
                })
            });
            parts.part(part.partition_index, answer);
        }
        parts.end_topic(name);
    }
    let mut topics = Vec::new();
    for (name, answers) in parts.gather().await {
        let mut partitions = Vec::new();
        for (partition, result) in answers {
            let response = DeleteRecordsPartitionResult::default().with_partition_index(partition);
            partitions.push(match result {
                Ok(start) => response.with_low_watermark(start.0 as i64),
                Err(failure) => response
                    .with_error_code(failure_code(&failure))
                    .with_low_watermark(-1),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

pub async fn describe_configs(
    shard: &Rc<Shard>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let metadata = shard.metadata();
    let synonyms = request.include_synonyms;
    let documentation = request.include_documentation && version >= 3;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let wanted = |name: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| {
                    keys.is_empty() || keys.iter().any(|key| key.as_str() == name)
                })
            };
            let entry = |described: Described| {
                let mut entry = DescribeConfigsResourceResult::default()
                    .with_name(str_bytes(described.name))
                    .with_value(described.value.map(str_bytes))
                    .with_config_source(described.source)
                    .with_read_only(described.read_only);
                if synonyms {
                    entry = entry.with_synonyms(described.synonyms);
                }
                if version >= 3 {
                    entry = entry.with_config_type(described.config_type.code());
                }
                if documentation {
                    entry = entry.with_documentation(Some(str_bytes(described.doc)));
                }
                entry
            };
            match resource.resource_type {
                RESOURCE_TOPIC => match metadata.topic(resource.resource_name.as_str()) {
                    None => result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(format!(
                            "no topic {}",
                            resource.resource_name.as_str()
                        )))),
                    Some(topic) => result.with_configs(
                        described_topic(shard, topic, &metadata.broker_defaults)
                            .into_iter()
                            .filter(|described| wanted(described.name))
                            .map(entry)
                            .collect(),
                    ),
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    // "" is the cluster-wide default resource.
                    if !name.is_empty() && name != shard.config.node_id.0.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(format!(
                                "broker {name}: this broker is {}; ask it",
                                shard.config.node_id.0
                            ))));
                    }
                    // The default resource shows what the cluster sets
                    // dynamically, as Kafka's does; a broker, everything.
                    let cluster_wide = name.is_empty();
                    result.with_configs(
                        broker_settings(
                            &shard.config,
                            &metadata.broker_defaults,
                            own_configs(shard, &metadata),
                        )
                        .into_iter()
                        .filter(|setting| {
                            !cluster_wide || setting.dynamic == Some(Dynamic::ClusterDefault)
                        })
                        .filter(|setting| wanted(setting.name))
                        .map(|setting| {
                            let source = setting_source(&setting);
                            entry(Described {
                                name: setting.name,
                                synonyms: vec![synonym(
                                    setting.name,
                                    setting.value.clone(),
                                    source,
                                )],
                                value: setting.value,
                                source,
                                read_only: setting.read_only,
                                config_type: setting.config_type,
                                doc: setting.doc,
                            })
                        })
                        .collect(),
                    )
                }
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "resource type {other} has no configs here"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One config as DescribeConfigs describes it.
struct Described {
    name: &'static str,
    value: Option<String>,
    source: i8,
    read_only: bool,
    config_type: ConfigType,
    doc: &'static str,
    synonyms: Vec<DescribeConfigsSynonym>,
}

fn synonym(name: &str, value: Option<String>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_source(source)
}

/// Kafka's source of a broker setting.
fn setting_source(setting: &BrokerSetting) -> i8 {
    match setting.dynamic {
        Some(Dynamic::ThisBroker) => SOURCE_DYNAMIC_BROKER,
        Some(Dynamic::ClusterDefault) => SOURCE_DYNAMIC_DEFAULT_BROKER,
        None if setting.set => SOURCE_STATIC_BROKER,
        None => SOURCE_DEFAULT,
    }
}

/// This broker's own dynamic configs.
fn own_configs<'a>(shard: &Shard, metadata: &'a Metadata) -> &'a BTreeMap<String, String> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    metadata
        .broker_configs
        .get(&shard.config.node_id)
        .unwrap_or(&NONE)
}

/// A topic's configs as described: each with its source and, in Kafka's
/// order of precedence, its synonyms (the topic's own value, then the
/// broker setting that gives the default: dynamic, static, built in).
fn described_topic(
    shard: &Shard,
    topic: &TopicMeta,
    dynamic: &BTreeMap<String, String>,
) -> Vec<Described> {
    let broker = broker_settings(&shard.config, dynamic, &BTreeMap::new());
    effective(&topic.effective_configs())
        .into_iter()
        .map(|(config, value, _)| {
            let own = topic.configs.contains_key(config.name);
            let mut synonyms = Vec::new();
            if own {
                synonyms.push(synonym(config.name, Some(value.clone()), SOURCE_TOPIC));
            }
            let setting = config
                .synonym
                .and_then(|name| broker.iter().find(|setting| setting.name == name));
            let source = match setting {
                _ if own => SOURCE_TOPIC,
                Some(setting) => setting_source(setting),
                None => SOURCE_DEFAULT,
            };
            if let Some(setting) = setting {
                synonyms.push(synonym(
                    setting.name,
                    setting.value.clone(),
                    setting_source(setting),
                ));
            }
            Described {
                name: config.name,
                value: Some(value),
                source,
                read_only: false,
                config_type: config.config_type,
                doc: config.doc,
                synonyms,
            }
        })
        .collect()
}

/// A change of one topic's configs, or of the cluster's dynamic broker
/// defaults (the BROKER resource named ""), as the controller is asked it:
/// the whole new set.
async fn set_configs(
    shard: &Rc<Shard>,
    resource_type: i8,
    name: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>, Lookup) -> Result<(), Failure>,
    validate_only: bool,
) -> Result<(), Failure> {
    if resource_type == RESOURCE_BROKER {
        // "" is the cluster-wide default; otherwise a broker's id.
        let node = match name {
            "" => None,
            id => match id.parse::<i32>() {
                Ok(id) if id >= 0 => Some(NodeId(id)),
                _ => {
                    return Err(Failure::new(
                        ErrorKind::InvalidRequest,
                        format!("broker {id}: not a broker id"),
                    ))
                }
            },
        };
        let metadata = shard.metadata();
        let mut configs = match node {
            None => metadata.broker_defaults.clone(),
            Some(node) => metadata
                .broker_configs
                .get(&node)
                .cloned()
                .unwrap_or_default(),
        };
        change(&mut configs, topic_config::by_synonym)?;
        let answer = controller(shard, |reply| ControllerOp::SetBrokerConfigs {
            node,
            configs,
            validate_only,
            reply,
        })
        .await;
        return answer.unwrap_or_else(|| Err(stopped()));
    }
    if resource_type != RESOURCE_TOPIC {
        return Err(Failure::new(
            ErrorKind::InvalidRequest,
            format!("resource type {resource_type}: only topic and broker configs change here"),
        ));
    }
    let Some(topic) = shard.metadata().topic(name).cloned() else {
        return Err(Failure::new(
            ErrorKind::UnknownTopic,
            format!("no topic {name}"),
        ));
    };
    let mut configs = topic.configs.clone();
    change(&mut configs, topic_config::definition)?;
    let answer = controller(shard, |reply| ControllerOp::SetConfigs {
        topic: name.to_string(),
        configs,
        validate_only,
        reply,
    })
    .await;
    answer.unwrap_or_else(|| Err(stopped()))
}

/// How a resource's config names find their definitions: a topic's by
/// name, the broker defaults by their broker names.
type Lookup = fn(&str) -> Option<&'static topic_config::TopicConfig>;

/// AlterConfigs replaces a topic's configs with those given.
pub async fn alter_configs(
    shard: &Rc<Shard>,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let given: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|config| {
                Some((config.name.to_string(), config.value.as_ref()?.to_string()))
            })
            .collect();
        let outcome = set_configs(
            shard,
            resource.resource_type,
            &name,
            |configs, _| {
                *configs = given;
                Ok(())
            },
            request.validate_only,
        )
        .await;
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(failure) => response
                .with_error_code(failure_code(&failure))
                .with_error_message(message(&failure)),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs: SET (0) and DELETE (1) per config; APPEND (2)
/// and SUBTRACT (3) add items to and remove items from a list config
/// (`cleanup.policy`, the throttled replicas), starting from its value,
/// set or default.
pub async fn incremental_alter_configs(
    shard: &Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let changes: Vec<(String, i8, Option<String>)> = resource
            .configs
            .iter()
            .map(|config| {
                (
                    config.name.to_string(),
                    config.config_operation,
                    config.value.as_ref().map(|value| value.to_string()),
                )
            })
            .collect();
        let outcome = set_configs(
            shard,
            resource.resource_type,
            &name,
            |configs, lookup| {
                for (key, operation, value) in changes {
                    change_config(configs, lookup, key, operation, value)?;
                }
                Ok(())
            },
            request.validate_only,
        )
        .await;
        let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(failure) => response
                .with_error_code(failure_code(&failure))
                .with_error_message(message(&failure)),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies one IncrementalAlterConfigs operation to a topic's `configs`.
fn change_config(
    configs: &mut BTreeMap<String, String>,
    lookup: Lookup,
    key: String,
    operation: i8,
    value: Option<String>,
) -> Result<(), Failure> {
    let refuse = |reason: String| Err(Failure::new(ErrorKind::InvalidConfig, reason));
    match (operation, value) {
        (OPERATION_SET, Some(value)) => {
            configs.insert(key, value);
        }
        (OPERATION_SET, None) => return refuse(format!("SET {key} without a value")),
        (OPERATION_DELETE, _) => {
            configs.remove(&key);
        }
        (OPERATION_APPEND | OPERATION_SUBTRACT, value) => {
            let Some(definition) = lookup(&key) else {
                return refuse(format!("unknown config {key}"));
            };
            if definition.config_type != ConfigType::List {
                return refuse(format!(
                    "{key} is not a list: APPEND and SUBTRACT apply to list configs"
                ));
            }
            let current = configs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| definition.default_value());
            let mut items: Vec<String> = topic_config::list_items(&current)
                .into_iter()
                .map(str::to_string)
                .collect();
            let given = value.unwrap_or_default();
            for item in topic_config::list_items(&given) {
                if operation == OPERATION_APPEND {
                    if !items.iter().any(|have| have == item) {
                        items.push(item.to_string());
                    }
                } else {
                    items.retain(|have| have != item);
                }
            }
            configs.insert(key, items.join(","));
        }
        (operation, _) => {
            return refuse(format!(
                "operation {operation} on {key} is not one of SET, DELETE, APPEND, SUBTRACT"
            ))
        }
    }
    Ok(())
}

pub async fn describe_cluster(
    shard: &Rc<Shard>,
    request: DescribeClusterRequest,
    _version: i16,
    listener: &str,
) -> DescribeClusterResponse {
    let brokers = super::live_brokers(shard, &shard.metadata(), listener)
        .into_iter()
        .map(|broker| {
            DescribeClusterBroker::default()
                .with_broker_id(broker.node)
                .with_host(str_bytes(broker.host))
                .with_port(broker.port)
                .with_rack(broker.rack.map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(cluster_id(shard)))
        .with_controller_id(super::controller_id(shard))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(super::authorized_operations(
            super::Resource::Cluster,
            request.include_cluster_authorized_operations,
        ))
}
