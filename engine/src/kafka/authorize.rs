//! What each Kafka API needs the authorizer to allow, in one place: the
//! checks Kafka's broker makes, API by API (KafkaApis), on the bindings of
//! [`crate::acl`].
//!
//! A request is checked before its handler sees it ([`check`]):
//! - refused whole (a group, a transactional id or the cluster it needs is
//!   not allowed): the answer is the API's error, and the handler never
//!   runs;
//! - refused in part (some topics, some groups): those leave the request,
//!   the handler serves the rest, and the refused ones are put back into
//!   its response with their error (a [`Patch`]);
//! - where a client lists what exists (Metadata for every topic,
//!   ListGroups, ListTransactions), what it may not describe is left out
//!   of the answer, as Kafka does.
//!
//! Handlers know nothing of this. A broker without an authorizer allows
//! everything and skips the checks.

use std::collections::HashSet;

use kafka_protocol::{
    messages::{
        add_partitions_to_txn_response::{
            AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult,
            AddPartitionsToTxnTopicResult,
        },
        alter_replica_log_dirs_response::{
            AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
        },
        create_acls_response::AclCreationResult,
        create_partitions_response::CreatePartitionsTopicResult,
        create_topics_response::CreatableTopicResult,
        delete_acls_response::DeleteAclsFilterResult,
        delete_groups_response::DeletableGroupResult,
        delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult},
        delete_topics_response::DeletableTopicResult,
        describe_configs_response::DescribeConfigsResult,
        describe_producers_response::{PartitionResponse, TopicResponse},
        describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
        fetch_response::{FetchableTopicResponse, PartitionData},
        find_coordinator_response::Coordinator,
        list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
        metadata_response::MetadataResponseTopic,
        offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
        offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
        offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
        },
        offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
        produce_response::{PartitionProduceResponse, TopicProduceResponse},
        txn_offset_commit_response::{
            TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
        },
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse, AlterConfigsRequest, AlterConfigsResponse,
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
        AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, ConsumerGroupDescribeRequest,
        ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse, CreateAclsRequest, CreateAclsResponse,
        CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
        CreateTopicsResponse, DeleteAclsRequest, DeleteAclsResponse, DeleteGroupsRequest,
        DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
        DeleteTopicsResponse, DescribeAclsRequest, DescribeAclsResponse, DescribeClusterRequest,
        DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
        DescribeGroupsRequest, DescribeGroupsResponse, DescribeLogDirsRequest,
        DescribeLogDirsResponse, DescribeProducersRequest, DescribeProducersResponse,
        DescribeQuorumRequest, DescribeQuorumResponse, DescribeTopicPartitionsRequest,
        DescribeTopicPartitionsResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
        ElectLeadersRequest, ElectLeadersResponse, EndTxnRequest, EndTxnResponse, FetchRequest,
        FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
        HeartbeatResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
        InitProducerIdRequest, InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse,
        LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
        ListOffsetsRequest, ListOffsetsResponse, ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsResponse, ListTransactionsRequest, ListTransactionsResponse,
        MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
        OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
        OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
        SyncGroupRequest, SyncGroupResponse, TopicName, TxnOffsetCommitRequest,
        TxnOffsetCommitResponse, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    },
    protocol::StrBytes,
};

use crate::acl::{Operation, ResourceType, CLUSTER_NAME};
pub use crate::authorization::Access;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TRANSACTIONAL_ID_DENIED: i16 = 53;
const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// Kafka's "not asked for" in an `authorized_operations` field.
const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

/// What completes a response once the handler has served the allowed
/// part of its request.
pub type Patch<R> = Box<dyn FnOnce(&mut R)>;

/// A request the authorizer checks before its handler serves it.
pub trait Guarded {
    type Response: Default;
    /// Removes from the request what may not be done and says how to put
    /// it back into the response, or answers the whole request (refused).
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response>;
}

/// Checks `request`: the patch for its response, or its whole answer.
pub fn check<R: Guarded>(
    access: &Access,
    request: &mut R,
    version: i16,
) -> Result<Patch<R::Response>, R::Response> {
    if !access.enabled() {
        return Ok(Box::new(|_| {}));
    }
    request.guard(access, version)
}

fn nothing<R>() -> Patch<R> {
    Box::new(|_| {})
}

fn patch<R>(change: impl FnOnce(&mut R) + 'static) -> Patch<R> {
    Box::new(change)
}

/// Takes out of `items` those `allowed` refuses.
fn refused<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let (kept, refused) = std::mem::take(items)
        .into_iter()
        .partition(|item| allowed(item));
    *items = kept;
    refused
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A cluster operation the whole request needs: refused, `answer` is the
/// response.
macro_rules! cluster_only {
    ($request:ty, $response:ty, $operation:expr, |$code:ident| $answer:expr) => {
        impl Guarded for $request {
            type Response = $response;
            fn guard(
                &mut self,
                access: &Access,
                _version: i16,
            ) -> Result<Patch<$response>, $response> {
                if access.cluster($operation) {
                    return Ok(nothing());
                }
                let $code = CLUSTER_DENIED;
                Err($answer)
            }
        }
    };
}

impl Guarded for WriteTxnMarkersRequest {
    type Response = WriteTxnMarkersResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        use kafka_protocol::messages::write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        };
        if access.cluster(Operation::ClusterAction) {
            return Ok(nothing());
        }
        let markers = self
            .markers
            .iter()
            .map(|marker| {
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(
                        marker
                            .topics
                            .iter()
                            .map(|topic| {
                                WritableTxnMarkerTopicResult::default()
                                    .with_name(topic.name.clone())
                                    .with_partitions(
                                        topic
                                            .partition_indexes
                                            .iter()
                                            .map(|partition| {
                                                WritableTxnMarkerPartitionResult::default()
                                                    .with_partition_index(*partition)
                                                    .with_error_code(CLUSTER_DENIED)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        Err(WriteTxnMarkersResponse::default().with_markers(markers))
    }
}
cluster_only!(
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    Operation::Describe,
    |code| DescribeQuorumResponse::default().with_error_code(code)
);
cluster_only!(
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    Operation::Alter,
    |code| AlterPartitionReassignmentsResponse::default().with_error_code(code)
);
cluster_only!(
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
    Operation::Describe,
    |code| ListPartitionReassignmentsResponse::default().with_error_code(code)
);
cluster_only!(
    ElectLeadersRequest,
    ElectLeadersResponse,
    Operation::Alter,
    |code| ElectLeadersResponse::default().with_error_code(code)
);
cluster_only!(
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
    Operation::Describe,
    |code| DescribeLogDirsResponse::default().with_error_code(code)
);
cluster_only!(
    DescribeAclsRequest,
    DescribeAclsResponse,
    Operation::Describe,
    |code| DescribeAclsResponse::default()
        .with_error_code(code)
        .with_error_message(Some(text("DESCRIBE on the cluster is needed to list ACLs")))
);

impl Guarded for kafka_protocol::messages::DescribeUserScramCredentialsRequest {
    type Response = kafka_protocol::messages::DescribeUserScramCredentialsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.cluster(Operation::Describe) {
            return Ok(nothing());
        }
        Err(Self::Response::default().with_error_code(CLUSTER_DENIED))
    }
}

impl Guarded for kafka_protocol::messages::AlterUserScramCredentialsRequest {
    type Response = kafka_protocol::messages::AlterUserScramCredentialsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
        if access.cluster(Operation::Alter) {
            return Ok(nothing());
        }
        let mut users: Vec<&StrBytes> = self
            .deletions
            .iter()
            .map(|deletion| &deletion.name)
            .chain(self.upsertions.iter().map(|upsertion| &upsertion.name))
            .collect();
        users.sort();
        users.dedup();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(user.clone())
                    .with_error_code(CLUSTER_DENIED)
            })
            .collect();
        Err(Self::Response::default().with_results(results))
    }
}

impl Guarded for kafka_protocol::messages::DescribeClientQuotasRequest {
    type Response = kafka_protocol::messages::DescribeClientQuotasResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.cluster(Operation::DescribeConfigs) {
            return Ok(nothing());
        }
        Err(Self::Response::default()
            .with_error_code(CLUSTER_DENIED)
            .with_entries(None))
    }
}

impl Guarded for kafka_protocol::messages::AlterClientQuotasRequest {
    type Response = kafka_protocol::messages::AlterClientQuotasResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
        if access.cluster(Operation::AlterConfigs) {
            return Ok(nothing());
        }
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                EntryData::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_entity(
                        entry
                            .entity
                            .iter()
                            .map(|part| {
                                EntityData::default()
                                    .with_entity_type(part.entity_type.clone())
                                    .with_entity_name(part.entity_name.clone())
                            })
                            .collect(),
                    )
            })
            .collect();
        Err(Self::Response::default().with_entries(entries))
    }
}

impl Guarded for CreateAclsRequest {
    type Response = CreateAclsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.cluster(Operation::Alter) {
            return Ok(nothing());
        }
        let result = AclCreationResult::default().with_error_code(CLUSTER_DENIED);
        Err(CreateAclsResponse::default().with_results(vec![result; self.creations.len()]))
    }
}

impl Guarded for DeleteAclsRequest {
    type Response = DeleteAclsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.cluster(Operation::Alter) {
            return Ok(nothing());
        }
        let result = DeleteAclsFilterResult::default().with_error_code(CLUSTER_DENIED);
        Err(DeleteAclsResponse::default().with_filter_results(vec![result; self.filters.len()]))
    }
}

impl Guarded for AlterReplicaLogDirsRequest {
    type Response = AlterReplicaLogDirsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.cluster(Operation::Alter) {
            return Ok(nothing());
        }
        let results = self
            .dirs
            .iter()
            .flat_map(|dir| &dir.topics)
            .map(|topic| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                AlterReplicaLogDirPartitionResult::default()
                                    .with_partition_index(*partition)
                                    .with_error_code(CLUSTER_DENIED)
                            })
                            .collect(),
                    )
            })
            .collect();
        Err(AlterReplicaLogDirsResponse::default().with_results(results))
    }
}

impl Guarded for DescribeClusterRequest {
    type Response = DescribeClusterResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if !self.include_cluster_authorized_operations {
            return Ok(nothing());
        }
        let operations = access.operations(ResourceType::Cluster, CLUSTER_NAME);
        Ok(patch(move |response: &mut DescribeClusterResponse| {
            response.cluster_authorized_operations = operations;
        }))
    }
}

impl Guarded for ProduceRequest {
    type Response = ProduceResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused_all = self
            .transactional_id
            .as_ref()
            .is_some_and(|id| !access.transactional_id(id));
        let refused = if refused_all {
            std::mem::take(&mut self.topic_data)
        } else {
            refused(&mut self.topic_data, |topic| {
                access.topic(Operation::Write, &topic.name)
            })
        };
        let code = if refused_all {
            TRANSACTIONAL_ID_DENIED
        } else {
            TOPIC_DENIED
        };
        Ok(patch(move |response: &mut ProduceResponse| {
            response.responses.extend(refused.into_iter().map(|topic| {
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(
                        topic
                            .partition_data
                            .iter()
                            .map(|partition| {
                                PartitionProduceResponse::default()
                                    .with_index(partition.index)
                                    .with_error_code(code)
                                    .with_base_offset(-1)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for FetchRequest {
    type Response = FetchResponse;
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response> {
        let follower = self.replica_id.0 >= 0 || self.replica_state.replica_id.0 >= 0;
        let refused = if follower {
            if access.cluster(Operation::ClusterAction) {
                Vec::new()
            } else {
                std::mem::take(&mut self.topics)
            }
        } else {
            refused(&mut self.topics, |topic| {
                let name = if version >= 13 {
                    match access.topic_name_of(topic.topic_id) {
                        Some(name) => name,
                        // Unknown: the handler answers UNKNOWN_TOPIC_ID.
                        None => return true,
                    }
                } else {
                    topic.topic.to_string()
                };
                access.topic(Operation::Read, &name)
            })
        };
        Ok(patch(move |response: &mut FetchResponse| {
            response.responses.extend(refused.into_iter().map(|topic| {
                FetchableTopicResponse::default()
                    .with_topic(topic.topic)
                    .with_topic_id(topic.topic_id)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                PartitionData::default()
                                    .with_partition_index(partition.partition)
                                    .with_error_code(TOPIC_DENIED)
                                    .with_high_watermark(-1)
                                    .with_last_stable_offset(-1)
                                    .with_log_start_offset(-1)
                                    .with_records(Some(Default::default()))
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for ListOffsetsRequest {
    type Response = ListOffsetsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Describe, &topic.name)
        });
        Ok(patch(move |response: &mut ListOffsetsResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_error_code(TOPIC_DENIED)
                                    .with_timestamp(-1)
                                    .with_offset(-1)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for OffsetForLeaderEpochRequest {
    type Response = OffsetForLeaderEpochResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = if self.replica_id.0 >= 0 && !access.cluster(Operation::ClusterAction) {
            std::mem::take(&mut self.topics)
        } else {
            refused(&mut self.topics, |topic| {
                access.topic(Operation::Describe, &topic.topic)
            })
        };
        Ok(patch(move |response: &mut OffsetForLeaderEpochResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                OffsetForLeaderTopicResult::default()
                    .with_topic(topic.topic)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                EpochEndOffset::default()
                                    .with_partition(partition.partition)
                                    .with_error_code(TOPIC_DENIED)
                                    .with_leader_epoch(-1)
                                    .with_end_offset(-1)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for MetadataRequest {
    type Response = MetadataResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let topic_operations = self.include_topic_authorized_operations;
        let cluster_operations = self
            .include_cluster_authorized_operations
            .then(|| access.operations(ResourceType::Cluster, CLUSTER_NAME));
        let creating = self.allow_auto_topic_creation;
        let auto_create = access.auto_create_topics;
        let refused: Vec<TopicName> = match &mut self.topics {
            // Every topic: those it may not describe are left out.
            None => Vec::new(),
            Some(topics) => refused(topics, |topic| {
                let Some(name) = &topic.name else {
                    return true;
                };
                if !access.topic(Operation::Describe, name) {
                    return false;
                }
                let exists = access.metadata.topic(name).is_some();
                exists || !(creating && auto_create) || access.may_create(name)
            })
            .into_iter()
            .filter_map(|topic| topic.name)
            .collect(),
        };
        let everyone = self.topics.is_none();
        // The listing's filter runs on the answer, after the handler; it
        // needs the decisions, not the access.
        let decider = access.decider();
        Ok(patch(move |response: &mut MetadataResponse| {
            if everyone {
                response.topics.retain(|topic| {
                    topic.name.as_ref().is_none_or(|name| {
                        decider.permits(Operation::Describe, ResourceType::Topic, name)
                    })
                });
            }
            if topic_operations {
                for topic in &mut response.topics {
                    if let Some(name) = &topic.name {
                        topic.topic_authorized_operations =
                            decider.operations(ResourceType::Topic, name);
                    }
                }
            }
            response.topics.extend(refused.into_iter().map(|name| {
                MetadataResponseTopic::default()
                    .with_name(Some(name))
                    .with_error_code(TOPIC_DENIED)
                    .with_topic_authorized_operations(if topic_operations {
                        0
                    } else {
                        OPERATIONS_NOT_ASKED
                    })
            }));
            if let Some(operations) = cluster_operations {
                response.cluster_authorized_operations = operations;
            }
        }))
    }
}

impl Guarded for DescribeTopicPartitionsRequest {
    type Response = DescribeTopicPartitionsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let everyone = self.topics.is_empty();
        let refused: Vec<TopicName> = refused(&mut self.topics, |topic| {
            access.topic(Operation::Describe, &topic.name)
        })
        .into_iter()
        .map(|topic| topic.name)
        .collect();
        // Asked by name: none left would read as "every topic" to the
        // handler, so the answer keeps only the names asked.
        let asked: HashSet<String> = self
            .topics
            .iter()
            .map(|topic| topic.name.to_string())
            .collect();
        let decider = access.decider();
        Ok(patch(
            move |response: &mut DescribeTopicPartitionsResponse| {
                if !everyone {
                    response.topics.retain(|topic| {
                        topic
                            .name
                            .as_ref()
                            .is_some_and(|name| asked.contains(name.as_str()))
                    });
                }
                if everyone {
                    response.topics.retain(|topic| {
                        topic.name.as_ref().is_none_or(|name| {
                            decider.permits(Operation::Describe, ResourceType::Topic, name)
                        })
                    });
                }
                for topic in &mut response.topics {
                    if let Some(name) = &topic.name {
                        topic.topic_authorized_operations =
                            decider.operations(ResourceType::Topic, name);
                    }
                }
                response.topics.extend(refused.into_iter().map(|name| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(TOPIC_DENIED)
                        .with_topic_authorized_operations(0)
                }));
            },
        ))
    }
}

impl Guarded for CreateTopicsRequest {
    type Response = CreateTopicsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.topics, |topic| access.may_create(&topic.name));
        Ok(patch(move |response: &mut CreateTopicsResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                CreatableTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(TOPIC_DENIED)
                    .with_error_message(Some(text("CREATE on the cluster or the topic is needed")))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }));
        }))
    }
}

impl Guarded for DeleteTopicsRequest {
    type Response = DeleteTopicsResponse;
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response> {
        let mut results = Vec::new();
        if version >= 6 {
            let denied = refused(&mut self.topics, |topic| {
                let name = match &topic.name {
                    Some(name) => Some(name.to_string()),
                    None => access.topic_name_of(topic.topic_id),
                };
                // Unknown ids are the handler's to answer.
                name.is_none_or(|name| access.topic(Operation::Delete, &name))
            });
            results.extend(denied.into_iter().map(|topic| {
                DeletableTopicResult::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_error_code(TOPIC_DENIED)
            }));
        } else {
            let denied = refused(&mut self.topic_names, |name| {
                access.topic(Operation::Delete, name)
            });
            results.extend(denied.into_iter().map(|name| {
                DeletableTopicResult::default()
                    .with_name(Some(name))
                    .with_error_code(TOPIC_DENIED)
            }));
        }
        Ok(patch(move |response: &mut DeleteTopicsResponse| {
            response.responses.extend(results);
        }))
    }
}

impl Guarded for DeleteRecordsRequest {
    type Response = DeleteRecordsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Delete, &topic.name)
        });
        Ok(patch(move |response: &mut DeleteRecordsResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_low_watermark(-1)
                                    .with_error_code(TOPIC_DENIED)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for CreatePartitionsRequest {
    type Response = CreatePartitionsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Alter, &topic.name)
        });
        Ok(patch(move |response: &mut CreatePartitionsResponse| {
            response.results.extend(refused.into_iter().map(|topic| {
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(TOPIC_DENIED)
            }));
        }))
    }
}

/// The resource a config resource type names, and the error of a refusal:
/// a topic (2), or the cluster for a broker (4) or broker logger (8).
fn config_resource(resource_type: i8, name: &str) -> (ResourceType, String, i16) {
    if resource_type == 2 {
        (ResourceType::Topic, name.to_string(), TOPIC_DENIED)
    } else {
        (
            ResourceType::Cluster,
            CLUSTER_NAME.to_string(),
            CLUSTER_DENIED,
        )
    }
}

impl Guarded for DescribeConfigsRequest {
    type Response = DescribeConfigsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let mut codes = Vec::new();
        let refused = refused(&mut self.resources, |resource| {
            let (kind, name, code) =
                config_resource(resource.resource_type, &resource.resource_name);
            let allowed = access.allows(Operation::DescribeConfigs, kind, &name);
            if !allowed {
                codes.push(code);
            }
            allowed
        });
        Ok(patch(move |response: &mut DescribeConfigsResponse| {
            response
                .results
                .extend(refused.into_iter().zip(codes).map(|(resource, code)| {
                    DescribeConfigsResult::default()
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name)
                        .with_error_code(code)
                }));
        }))
    }
}

macro_rules! alter_configs {
    ($request:ty, $response:ty, $result:ty) => {
        impl Guarded for $request {
            type Response = $response;
            fn guard(
                &mut self,
                access: &Access,
                _: i16,
            ) -> Result<Patch<Self::Response>, Self::Response> {
                let mut codes = Vec::new();
                let refused = refused(&mut self.resources, |resource| {
                    let (kind, name, code) =
                        config_resource(resource.resource_type, &resource.resource_name);
                    let allowed = access.allows(Operation::AlterConfigs, kind, &name);
                    if !allowed {
                        codes.push(code);
                    }
                    allowed
                });
                Ok(patch(move |response: &mut $response| {
                    response
                        .responses
                        .extend(refused.into_iter().zip(codes).map(|(resource, code)| {
                            <$result>::default()
                                .with_resource_type(resource.resource_type)
                                .with_resource_name(resource.resource_name)
                                .with_error_code(code)
                        }));
                }))
            }
        }
    };
}

alter_configs!(
    AlterConfigsRequest,
    AlterConfigsResponse,
    kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse
);
alter_configs!(
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
    kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse
);

/// A request about one group that needs `operation` on it: refused, the
/// response carries GROUP_AUTHORIZATION_FAILED as its error code.
macro_rules! one_group {
    ($request:ty, $response:ty, $operation:expr) => {
        impl Guarded for $request {
            type Response = $response;
            fn guard(
                &mut self,
                access: &Access,
                _: i16,
            ) -> Result<Patch<Self::Response>, Self::Response> {
                if access.group($operation, &self.group_id) {
                    Ok(nothing())
                } else {
                    Err(<$response>::default().with_error_code(GROUP_DENIED))
                }
            }
        }
    };
}

one_group!(JoinGroupRequest, JoinGroupResponse, Operation::Read);
one_group!(SyncGroupRequest, SyncGroupResponse, Operation::Read);
one_group!(HeartbeatRequest, HeartbeatResponse, Operation::Read);
one_group!(LeaveGroupRequest, LeaveGroupResponse, Operation::Read);

impl Guarded for ConsumerGroupHeartbeatRequest {
    type Response = ConsumerGroupHeartbeatResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if !access.group(Operation::Read, &self.group_id) {
            return Err(ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED));
        }
        let topics = self.subscribed_topic_names.iter().flatten();
        if let Some(topic) = topics
            .clone()
            .find(|topic| !access.topic(Operation::Describe, topic))
        {
            let message = format!("DESCRIBE on subscribed topic {} is needed", &**topic);
            return Err(ConsumerGroupHeartbeatResponse::default()
                .with_error_code(TOPIC_DENIED)
                .with_error_message(Some(text(&message))));
        }
        Ok(nothing())
    }
}

impl Guarded for DescribeGroupsRequest {
    type Response = DescribeGroupsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.groups, |group| {
            access.group(Operation::Describe, group)
        });
        let operations: Option<Vec<(String, i32)>> =
            self.include_authorized_operations.then(|| {
                self.groups
                    .iter()
                    .map(|group| {
                        (
                            group.to_string(),
                            access.operations(ResourceType::Group, group),
                        )
                    })
                    .collect()
            });
        Ok(patch(move |response: &mut DescribeGroupsResponse| {
            if let Some(operations) = operations {
                for group in &mut response.groups {
                    if let Some((_, bits)) = operations
                        .iter()
                        .find(|(name, _)| **name == **group.group_id)
                    {
                        group.authorized_operations = *bits;
                    }
                }
            }
            response.groups.extend(refused.into_iter().map(|group| {
                kafka_protocol::messages::describe_groups_response::DescribedGroup::default()
                    .with_group_id(group)
                    .with_error_code(GROUP_DENIED)
            }));
        }))
    }
}

impl Guarded for ConsumerGroupDescribeRequest {
    type Response = ConsumerGroupDescribeResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.group_ids, |group| {
            access.group(Operation::Describe, group)
        });
        let operations: Option<Vec<(String, i32)>> =
            self.include_authorized_operations.then(|| {
                self.group_ids
                    .iter()
                    .map(|group| {
                        (
                            group.to_string(),
                            access.operations(ResourceType::Group, group),
                        )
                    })
                    .collect()
            });
        Ok(patch(
            move |response: &mut ConsumerGroupDescribeResponse| {
                if let Some(operations) = operations {
                    for group in &mut response.groups {
                        if let Some((_, bits)) = operations
                            .iter()
                            .find(|(name, _)| **name == **group.group_id)
                        {
                            group.authorized_operations = *bits;
                        }
                    }
                }
                response.groups.extend(refused.into_iter().map(|group| {
                kafka_protocol::messages::consumer_group_describe_response::DescribedGroup::default()
                    .with_group_id(group)
                    .with_error_code(GROUP_DENIED)
            }));
            },
        ))
    }
}

impl Guarded for ListGroupsRequest {
    type Response = ListGroupsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.permits(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
            return Ok(nothing());
        }
        let decider = access.decider();
        Ok(patch(move |response: &mut ListGroupsResponse| {
            response.groups.retain(|group| {
                decider.permits(Operation::Describe, ResourceType::Group, &group.group_id)
            });
        }))
    }
}

impl Guarded for DeleteGroupsRequest {
    type Response = DeleteGroupsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.groups_names, |group| {
            access.group(Operation::Delete, group)
        });
        Ok(patch(move |response: &mut DeleteGroupsResponse| {
            response.results.extend(refused.into_iter().map(|group| {
                DeletableGroupResult::default()
                    .with_group_id(group)
                    .with_error_code(GROUP_DENIED)
            }));
        }))
    }
}

impl Guarded for OffsetCommitRequest {
    type Response = OffsetCommitResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let answer = |topics: Vec<_>, code: i16| {
            topics
                .into_iter()
                .map(|topic: kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic| {
                    OffsetCommitResponseTopic::default()
                        .with_name(topic.name)
                        .with_topic_id(topic.topic_id)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .map(|partition| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(partition.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect::<Vec<_>>()
        };
        if !access.group(Operation::Read, &self.group_id) {
            return Err(OffsetCommitResponse::default()
                .with_topics(answer(std::mem::take(&mut self.topics), GROUP_DENIED)));
        }
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Read, &topic.name)
        });
        let refused = answer(refused, TOPIC_DENIED);
        Ok(patch(move |response: &mut OffsetCommitResponse| {
            response.topics.extend(refused);
        }))
    }
}

impl Guarded for TxnOffsetCommitRequest {
    type Response = TxnOffsetCommitResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let answer = |topics: Vec<_>, code: i16| {
            topics
                .into_iter()
                .map(|topic: kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .map(|partition| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(partition.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect::<Vec<_>>()
        };
        if !access.transactional_id(&self.transactional_id) {
            return Err(TxnOffsetCommitResponse::default().with_topics(answer(
                std::mem::take(&mut self.topics),
                TRANSACTIONAL_ID_DENIED,
            )));
        }
        if !access.group(Operation::Read, &self.group_id) {
            return Err(TxnOffsetCommitResponse::default()
                .with_topics(answer(std::mem::take(&mut self.topics), GROUP_DENIED)));
        }
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Read, &topic.name)
        });
        let refused = answer(refused, TOPIC_DENIED);
        Ok(patch(move |response: &mut TxnOffsetCommitResponse| {
            response.topics.extend(refused);
        }))
    }
}

impl Guarded for OffsetFetchRequest {
    type Response = OffsetFetchResponse;
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response> {
        if version < 8 {
            if !access.group(Operation::Describe, &self.group_id) {
                return Err(OffsetFetchResponse::default().with_error_code(GROUP_DENIED));
            }
            let Some(topics) = &mut self.topics else {
                return Ok(filter_offsets(access));
            };
            let refused = refused(topics, |topic| {
                access.topic(Operation::Describe, &topic.name)
            });
            return Ok(patch(move |response: &mut OffsetFetchResponse| {
                response.topics.extend(refused.into_iter().map(|topic| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partition_indexes
                                .iter()
                                .map(|partition| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(*partition)
                                        .with_committed_offset(-1)
                                        .with_error_code(TOPIC_DENIED)
                                })
                                .collect(),
                        )
                }));
            }));
        }
        let refused_groups = refused(&mut self.groups, |group| {
            access.group(Operation::Describe, &group.group_id)
        });
        // Topics named but not describable: answered as refused, per group.
        let mut refused_topics: Vec<(String, Vec<_>)> = Vec::new();
        let mut listing = false;
        for group in &mut self.groups {
            match &mut group.topics {
                None => listing = true,
                Some(topics) => {
                    let refused = refused(topics, |topic| {
                        access.topic(Operation::Describe, &topic.name)
                    });
                    if !refused.is_empty() {
                        refused_topics.push((group.group_id.to_string(), refused));
                    }
                }
            }
        }
        let filter = listing.then(|| filter_offsets(access));
        Ok(patch(move |response: &mut OffsetFetchResponse| {
            if let Some(filter) = filter {
                filter(response);
            }
            for (group_id, topics) in refused_topics {
                if let Some(group) = response
                    .groups
                    .iter_mut()
                    .find(|group| *group.group_id == *group_id)
                {
                    group.topics.extend(topics.into_iter().map(|topic| {
                        kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseTopics::default()
                            .with_name(topic.name)
                            .with_topic_id(topic.topic_id)
                            .with_partitions(
                                topic
                                    .partition_indexes
                                    .iter()
                                    .map(|partition| {
                                        kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartitions::default()
                                            .with_partition_index(*partition)
                                            .with_committed_offset(-1)
                                            .with_error_code(TOPIC_DENIED)
                                    })
                                    .collect(),
                            )
                    }));
                }
            }
            response
                .groups
                .extend(refused_groups.into_iter().map(|group| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(group.group_id)
                        .with_error_code(GROUP_DENIED)
                }));
        }))
    }
}

/// Leaves out of an OffsetFetch for every topic the topics the requester
/// may not describe.
fn filter_offsets(access: &Access) -> Patch<OffsetFetchResponse> {
    let decider = access.decider();
    patch(move |response: &mut OffsetFetchResponse| {
        let describable =
            |name: &str| decider.permits(Operation::Describe, ResourceType::Topic, name);
        response.topics.retain(|topic| describable(&topic.name));
        for group in &mut response.groups {
            group.topics.retain(|topic| describable(&topic.name));
        }
    })
}

impl Guarded for OffsetDeleteRequest {
    type Response = OffsetDeleteResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if !access.group(Operation::Delete, &self.group_id) {
            return Err(OffsetDeleteResponse::default().with_error_code(GROUP_DENIED));
        }
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Read, &topic.name)
        });
        Ok(patch(move |response: &mut OffsetDeleteResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|partition| {
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_error_code(TOPIC_DENIED)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}

impl Guarded for FindCoordinatorRequest {
    type Response = FindCoordinatorResponse;
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response> {
        let (kind, code) = match self.key_type {
            1 => (ResourceType::TransactionalId, TRANSACTIONAL_ID_DENIED),
            _ => (ResourceType::Group, GROUP_DENIED),
        };
        if version < 4 {
            if access.allows(Operation::Describe, kind, &self.key) {
                return Ok(nothing());
            }
            return Err(FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id((-1).into())
                .with_port(-1));
        }
        let refused = refused(&mut self.coordinator_keys, |key| {
            access.allows(Operation::Describe, kind, key)
        });
        if self.coordinator_keys.is_empty() && !refused.is_empty() {
            // Nothing left to ask: answered here.
            let mut response = FindCoordinatorResponse::default();
            response.coordinators = refused
                .into_iter()
                .map(|key| denied_coordinator(key, code))
                .collect();
            return Err(response);
        }
        Ok(patch(move |response: &mut FindCoordinatorResponse| {
            response
                .coordinators
                .extend(refused.into_iter().map(|key| denied_coordinator(key, code)));
        }))
    }
}

fn denied_coordinator(key: StrBytes, code: i16) -> Coordinator {
    Coordinator::default()
        .with_key(key)
        .with_node_id((-1).into())
        .with_port(-1)
        .with_error_code(code)
}

impl Guarded for InitProducerIdRequest {
    type Response = InitProducerIdResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        match &self.transactional_id {
            Some(id) if !access.transactional_id(id) => {
                Err(refused_producer_id(TRANSACTIONAL_ID_DENIED))
            }
            Some(_) => Ok(nothing()),
            None if access.may_write_idempotently() => Ok(nothing()),
            None => Err(refused_producer_id(CLUSTER_DENIED)),
        }
    }
}

fn refused_producer_id(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

impl Guarded for AddPartitionsToTxnRequest {
    type Response = AddPartitionsToTxnResponse;
    fn guard(
        &mut self,
        access: &Access,
        version: i16,
    ) -> Result<Patch<Self::Response>, Self::Response> {
        fn results(
            topics: &[kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic],
            code: impl Fn(&TopicName) -> i16,
        ) -> Vec<AddPartitionsToTxnTopicResult> {
            topics
                .iter()
                .map(|topic| {
                    let code = code(&topic.name);
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_results_by_partition(
                            topic
                                .partitions
                                .iter()
                                .map(|partition| {
                                    AddPartitionsToTxnPartitionResult::default()
                                        .with_partition_index(*partition)
                                        .with_partition_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect()
        }
        /// The answer for one transaction's topics when something is
        /// refused: the refused ones with their error, the others not
        /// attempted (nothing is added), as Kafka answers; `None` when
        /// all is allowed.
        fn decide(
            access: &Access,
            transactional_id: &str,
            topics: &[kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic],
        ) -> Option<Vec<AddPartitionsToTxnTopicResult>> {
            if !access.transactional_id(transactional_id) {
                return Some(results(topics, |_| TRANSACTIONAL_ID_DENIED));
            }
            let denied: HashSet<String> = topics
                .iter()
                .filter(|topic| !access.topic(Operation::Write, &topic.name))
                .map(|topic| topic.name.to_string())
                .collect();
            (!denied.is_empty()).then(|| {
                results(topics, |name| {
                    if denied.contains(&***name) {
                        TOPIC_DENIED
                    } else {
                        OPERATION_NOT_ATTEMPTED
                    }
                })
            })
        }
        if version < 4 {
            return match decide(
                access,
                &self.v3_and_below_transactional_id,
                &self.v3_and_below_topics,
            ) {
                None => Ok(nothing()),
                Some(results) => Err(AddPartitionsToTxnResponse::default()
                    .with_results_by_topic_v3_and_below(results)),
            };
        }
        // Version 4 on is sent by brokers, batched.
        if !access.cluster(Operation::ClusterAction) {
            return Err(AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_DENIED));
        }
        let mut answered = Vec::new();
        self.transactions.retain(|transaction| {
            match decide(access, &transaction.transactional_id, &transaction.topics) {
                None => true,
                Some(results) => {
                    answered.push(
                        AddPartitionsToTxnResult::default()
                            .with_transactional_id(transaction.transactional_id.clone())
                            .with_topic_results(results),
                    );
                    false
                }
            }
        });
        Ok(patch(move |response: &mut AddPartitionsToTxnResponse| {
            response.results_by_transaction.extend(answered);
        }))
    }
}

impl Guarded for AddOffsetsToTxnRequest {
    type Response = AddOffsetsToTxnResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if !access.transactional_id(&self.transactional_id) {
            return Err(AddOffsetsToTxnResponse::default().with_error_code(TRANSACTIONAL_ID_DENIED));
        }
        if !access.group(Operation::Read, &self.group_id) {
            return Err(AddOffsetsToTxnResponse::default().with_error_code(GROUP_DENIED));
        }
        Ok(nothing())
    }
}

impl Guarded for EndTxnRequest {
    type Response = EndTxnResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        if access.transactional_id(&self.transactional_id) {
            Ok(nothing())
        } else {
            Err(EndTxnResponse::default()
                .with_error_code(TRANSACTIONAL_ID_DENIED)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1))
        }
    }
}

impl Guarded for DescribeTransactionsRequest {
    type Response = DescribeTransactionsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.transactional_ids, |id| {
            access.allows(Operation::Describe, ResourceType::TransactionalId, id)
        });
        let decider = access.decider();
        Ok(patch(move |response: &mut DescribeTransactionsResponse| {
            // The topics of a transaction it may not describe are left out.
            for state in &mut response.transaction_states {
                state.topics.retain(|topic| {
                    decider.permits(Operation::Describe, ResourceType::Topic, &topic.topic)
                });
            }
            response
                .transaction_states
                .extend(refused.into_iter().map(|id| {
                kafka_protocol::messages::describe_transactions_response::TransactionState::default(
                )
                .with_transactional_id(id)
                .with_error_code(TRANSACTIONAL_ID_DENIED)
            }));
        }))
    }
}

impl Guarded for ListTransactionsRequest {
    type Response = ListTransactionsResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let decider = access.decider();
        Ok(patch(move |response: &mut ListTransactionsResponse| {
            response.transaction_states.retain(|state| {
                decider.permits(
                    Operation::Describe,
                    ResourceType::TransactionalId,
                    &state.transactional_id,
                )
            });
        }))
    }
}

impl Guarded for DescribeProducersRequest {
    type Response = DescribeProducersResponse;
    fn guard(&mut self, access: &Access, _: i16) -> Result<Patch<Self::Response>, Self::Response> {
        let refused = refused(&mut self.topics, |topic| {
            access.topic(Operation::Read, &topic.name)
        });
        Ok(patch(move |response: &mut DescribeProducersResponse| {
            response.topics.extend(refused.into_iter().map(|topic| {
                TopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(
                        topic
                            .partition_indexes
                            .iter()
                            .map(|partition| {
                                PartitionResponse::default()
                                    .with_partition_index(*partition)
                                    .with_error_code(TOPIC_DENIED)
                            })
                            .collect(),
                    )
            }));
        }))
    }
}
