//! What the commands print: aligned tables for people, JSON for scripts.

use base64::Engine;
use bytes::Bytes;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::json;
use sluice_engine::{
    acl::{AclBinding, Operation, PatternType, Permission, ResourceType},
    sasl::scram::Hash,
};
use sluice_net::{
    client::ConsumedRecord,
    native::{
        messages::{
            ClusterNode, DescribeClusterResponse, DescribeGroupResponse,
            DescribeTransactionResponse, ElectionResult, GroupListing, GroupMemberDescription,
            MoveResult, Reassignment, ResetPartition, TopicDescription, TopicInfo,
            TransactionListing,
        },
        ErrorCode,
    },
};

/// Columns padded to their widest cell, two spaces apart; the last column is
/// not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let padding = widths[index] - cell.chars().count();
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', padding + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn topic_id(id: u128) -> String {
    format!("{id:032x}")
}

pub fn topics_text(topics: &[TopicInfo]) -> String {
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|topic| {
            vec![
                topic.name.clone(),
                topic.partitions.len().to_string(),
                topic_id(topic.topic_id),
            ]
        })
        .collect();
    table(&["NAME", "PARTITIONS", "ID"], &rows)
}

pub fn topics_json(topics: &[TopicInfo]) -> serde_json::Value {
    topics
        .iter()
        .map(|topic| {
            json!({
                "name": topic.name,
                "partitions": topic.partitions.len(),
                "id": topic_id(topic.topic_id),
            })
        })
        .collect()
}

pub fn description_text(topic: &TopicDescription) -> String {
    let mut out = table(
        &["NAME", &topic.name],
        &[
            vec!["ID".to_string(), topic_id(topic.topic_id)],
            vec!["PARTITIONS".to_string(), topic.partitions.len().to_string()],
        ],
    );
    if !topic.configs.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = topic
            .configs
            .iter()
            .map(|(name, value)| vec![name.clone(), value.clone()])
            .collect();
        out.push_str(&table(&["CONFIG", "VALUE"], &rows));
    }
    out.push('\n');
    let errors = topic
        .partitions
        .iter()
        .any(|partition| !partition.error.is_ok());
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            let mut row = vec![
                partition.partition.to_string(),
                optional_text(partition.leader),
                node_list(&partition.replicas),
                node_list(&partition.in_sync),
                partition.leader_epoch.to_string(),
                partition.shard.to_string(),
                partition.log_start.to_string(),
                partition.log_end.to_string(),
                partition.size_bytes.to_string(),
                partition.segments.to_string(),
            ];
            if errors {
                row.push(if partition.error.is_ok() {
                    String::new()
                } else {
                    partition.error.to_string()
                });
            }
            row
        })
        .collect();
    let mut header = vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LEADER-EPOCH",
        "SHARD",
        "LOG-START",
        "LOG-END",
        "SIZE-BYTES",
        "SEGMENTS",
    ];
    if errors {
        header.push("ERROR");
    }
    out.push_str(&table(&header, &rows));
    out
}

pub fn description_json(topic: &TopicDescription) -> serde_json::Value {
    let configs: serde_json::Map<String, serde_json::Value> = topic
        .configs
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "name": topic.name,
        "id": topic_id(topic.topic_id),
        "configs": configs,
        "partitions": topic.partitions.iter().map(|partition| {
            let mut object = json!({
                "partition": partition.partition,
                "leader": partition.leader,
                "replicas": partition.replicas,
                "isr": partition.in_sync,
                "leader_epoch": partition.leader_epoch,
                "shard": partition.shard,
                "log_start": partition.log_start,
                "log_end": partition.log_end,
                "size_bytes": partition.size_bytes,
                "segments": partition.segments,
            });
            if !partition.error.is_ok() {
                object["error"] = json!(partition.error.to_string());
            }
            object
        }).collect::<Vec<_>>(),
    })
}

/// The cluster's partitions, as `cluster describe` counts them from the
/// topics' descriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub total: usize,
    /// With no live leader.
    pub offline: usize,
    /// With fewer replicas in sync than they have.
    pub under_replicated: usize,
}

impl PartitionCounts {
    pub fn of(topics: &[TopicDescription]) -> PartitionCounts {
        let mut counts = PartitionCounts::default();
        for partition in topics.iter().flat_map(|topic| &topic.partitions) {
            counts.total += 1;
            counts.offline += usize::from(partition.leader.is_none());
            counts.under_replicated +=
                usize::from(partition.in_sync.len() < partition.replicas.len());
        }
        counts
    }
}

/// How far one node applied the metadata log, as `cluster describe` found
/// out by asking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Index(u64),
    /// It did not answer in time, or another node answered at its address.
    Unreachable,
    /// Its native address is not known (a voter that has not registered).
    NoAddress,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Index(index) => write!(f, "{index}"),
            Applied::Unreachable => f.write_str("unreachable"),
            Applied::NoAddress => f.write_str("-"),
        }
    }
}

fn node_role(node: &ClusterNode) -> &'static str {
    if node.voter {
        "voter"
    } else {
        "broker"
    }
}

fn node_state(node: &ClusterNode) -> &'static str {
    if node.fenced {
        "fenced"
    } else if node.alive {
        "alive"
    } else {
        "unregistered"
    }
}

/// The controller, its term, and a table of the nodes; `applied[i]` is
/// for `cluster.nodes[i]`.
pub fn cluster_text(
    cluster: &DescribeClusterResponse,
    applied: &[Applied],
    partitions: &PartitionCounts,
) -> String {
    let mut out = table(
        &["CLUSTER", &cluster.cluster_id],
        &[
            vec!["CONTROLLER".to_string(), controller_text(cluster)],
            vec!["TERM".to_string(), cluster.term.to_string()],
            vec!["COMMITTED".to_string(), cluster.committed.to_string()],
            vec!["ANSWERED-BY".to_string(), cluster.node_id.to_string()],
            vec!["PARTITIONS".to_string(), partitions.total.to_string()],
            vec!["OFFLINE".to_string(), partitions.offline.to_string()],
            vec![
                "UNDER-REPLICATED".to_string(),
                partitions.under_replicated.to_string(),
            ],
        ],
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = cluster
        .nodes
        .iter()
        .zip(applied)
        .map(|(node, applied)| {
            vec![
                node.id.to_string(),
                node_role(node).to_string(),
                node_state(node).to_string(),
                optional_text(node.rack.as_deref()),
                or_dash(&node.kafka_addr),
                or_dash(&node.native_addr),
                or_dash(&node.admin_addr),
                or_dash(&node.peer_addr),
                applied.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "ID", "ROLE", "STATE", "RACK", "KAFKA", "NATIVE", "ADMIN", "PEER", "APPLIED",
        ],
        &rows,
    ));
    out
}

fn controller_text(cluster: &DescribeClusterResponse) -> String {
    cluster
        .controller
        .map_or_else(|| "none".to_string(), |id| id.to_string())
}

pub fn cluster_json(
    cluster: &DescribeClusterResponse,
    applied: &[Applied],
    partitions: &PartitionCounts,
) -> serde_json::Value {
    let text_or_null = |text: &str| (!text.is_empty()).then(|| text.to_string());
    json!({
        "cluster_id": cluster.cluster_id,
        "controller": cluster.controller,
        "term": cluster.term,
        "committed": cluster.committed,
        "answered_by": cluster.node_id,
        "partitions": {
            "total": partitions.total,
            "offline": partitions.offline,
            "under_replicated": partitions.under_replicated,
        },
        "nodes": cluster.nodes.iter().zip(applied).map(|(node, applied)| json!({
            "id": node.id,
            "role": node_role(node),
            "state": node_state(node),
            "voter": node.voter,
            "registered": node.registered,
            "fenced": node.fenced,
            "rack": node.rack,
            "kafka_addr": text_or_null(&node.kafka_addr),
            "native_addr": text_or_null(&node.native_addr),
            "admin_addr": text_or_null(&node.admin_addr),
            "peer_addr": text_or_null(&node.peer_addr),
            "applied": match applied {
                Applied::Index(index) => Some(*index),
                _ => None,
            },
            "reachable": match applied {
                Applied::Index(_) => Some(true),
                Applied::Unreachable => Some(false),
                Applied::NoAddress => None,
            },
        })).collect::<Vec<_>>(),
    })
}

/// Node ids joined by commas; `-` for none.
fn node_list(nodes: &[u32]) -> String {
    if nodes.is_empty() {
        return "-".to_string();
    }
    nodes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn groups_text(groups: &[GroupListing]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|group| {
            vec![
                group.group.clone(),
                group.state.clone(),
                or_dash(&group.protocol_type),
                group.members.to_string(),
            ]
        })
        .collect();
    table(&["GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"], &rows)
}

pub fn groups_json(groups: &[GroupListing]) -> serde_json::Value {
    groups
        .iter()
        .map(|group| {
            json!({
                "group": group.group,
                "state": group.state,
                "protocol_type": group.protocol_type,
                "members": group.members,
            })
        })
        .collect()
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

fn optional_text<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

/// A member's assignment as (topic, partitions), when it reads as a Kafka
/// consumer's; an empty one (not synced yet) is no partitions.
fn consumer_assignment(
    group: &DescribeGroupResponse,
    member: &GroupMemberDescription,
) -> Option<Vec<(String, Vec<i32>)>> {
    if group.protocol_type != "consumer" {
        return None;
    }
    if member.assignment.is_empty() {
        return Some(Vec::new());
    }
    member.consumer_assignment()
}

/// `orders:0,1,2 clicks:3`, or the size of an assignment of another kind.
fn assignment_text(group: &DescribeGroupResponse, member: &GroupMemberDescription) -> String {
    match consumer_assignment(group, member) {
        Some(topics) if topics.is_empty() => "-".to_string(),
        Some(topics) => topics
            .iter()
            .map(|(topic, partitions)| {
                let partitions: Vec<String> = partitions.iter().map(i32::to_string).collect();
                format!("{topic}:{}", partitions.join(","))
            })
            .collect::<Vec<_>>()
            .join(" "),
        None if member.assignment.is_empty() => "-".to_string(),
        None => format!("{} bytes", member.assignment.len()),
    }
}

pub fn group_text(group: &DescribeGroupResponse) -> String {
    let mut out = table(
        &["GROUP", &group.group],
        &[
            vec!["STATE".to_string(), group.state.clone()],
            vec!["PROTOCOL-TYPE".to_string(), or_dash(&group.protocol_type)],
            vec!["PROTOCOL".to_string(), or_dash(&group.protocol)],
            vec!["GENERATION".to_string(), group.generation.to_string()],
            vec!["MEMBERS".to_string(), group.members.len().to_string()],
        ],
    );
    if !group.members.is_empty() {
        out.push('\n');
        let statics = group
            .members
            .iter()
            .any(|member| member.instance_id.is_some());
        let rows: Vec<Vec<String>> = group
            .members
            .iter()
            .map(|member| {
                let mut row = vec![member.member_id.clone()];
                if statics {
                    row.push(optional_text(member.instance_id.as_deref()));
                }
                row.push(or_dash(&member.client_id));
                row.push(or_dash(&member.client_host));
                row.push(assignment_text(group, member));
                row
            })
            .collect();
        let mut header = vec!["MEMBER"];
        if statics {
            header.push("INSTANCE-ID");
        }
        header.extend(["CLIENT-ID", "HOST", "ASSIGNMENT"]);
        out.push_str(&table(&header, &rows));
    }
    if !group.offsets.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = group
            .offsets
            .iter()
            .map(|offset| {
                vec![
                    offset.topic.clone(),
                    offset.partition.to_string(),
                    offset.committed.to_string(),
                    optional_text(offset.log_end),
                    optional_text(offset.lag()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"],
            &rows,
        ));
    }
    out
}

pub fn group_json(group: &DescribeGroupResponse) -> serde_json::Value {
    let members: Vec<serde_json::Value> = group
        .members
        .iter()
        .map(|member| {
            let mut object = json!({
                "member_id": member.member_id,
                "instance_id": member.instance_id,
                "client_id": member.client_id,
                "client_host": member.client_host,
            });
            match consumer_assignment(group, member) {
                Some(topics) => {
                    object["assignment"] = topics
                        .iter()
                        .map(
                            |(topic, partitions)| json!({"topic": topic, "partitions": partitions}),
                        )
                        .collect();
                }
                None => {
                    object["assignment_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&member.assignment));
                }
            }
            object
        })
        .collect();
    json!({
        "group": group.group,
        "state": group.state,
        "protocol_type": group.protocol_type,
        "protocol": group.protocol,
        "generation": group.generation,
        "members": members,
        "offsets": group.offsets.iter().map(|offset| json!({
            "topic": offset.topic,
            "partition": offset.partition,
            "committed": offset.committed,
            "log_end": offset.log_end,
            "last_stable": offset.last_stable,
            "lag": offset.lag(),
            "metadata": offset.metadata,
        })).collect::<Vec<_>>(),
    })
}

pub fn reset_text(topic: &str, partitions: &[ResetPartition]) -> String {
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|reset| {
            vec![
                topic.to_string(),
                reset.partition.to_string(),
                optional_text(reset.previous),
                reset.offset.to_string(),
            ]
        })
        .collect();
    table(&["TOPIC", "PARTITION", "PREVIOUS", "NEW"], &rows)
}

pub fn reset_json(
    group: &str,
    topic: &str,
    dry_run: bool,
    partitions: &[ResetPartition],
) -> serde_json::Value {
    json!({
        "group": group,
        "topic": topic,
        "dry_run": dry_run,
        "partitions": partitions.iter().map(|reset| json!({
            "partition": reset.partition,
            "previous": reset.previous,
            "offset": reset.offset,
        })).collect::<Vec<_>>(),
    })
}

pub fn txns_text(transactions: &[TransactionListing]) -> String {
    let rows: Vec<Vec<String>> = transactions
        .iter()
        .map(|listing| {
            vec![
                listing.transactional_id.clone(),
                listing.coordinator.to_string(),
                listing.producer_id.to_string(),
                listing.state.clone(),
            ]
        })
        .collect();
    table(
        &["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
        &rows,
    )
}

pub fn txns_json(transactions: &[TransactionListing]) -> serde_json::Value {
    transactions
        .iter()
        .map(|listing| {
            json!({
                "transactional_id": listing.transactional_id,
                "coordinator": listing.coordinator,
                "producer_id": listing.producer_id,
                "state": listing.state,
            })
        })
        .collect()
}

/// Kafka's name for a resource type (as `kafka-acls.sh` prints it).
pub fn resource_type_name(kind: ResourceType) -> &'static str {
    match kind {
        ResourceType::Topic => "TOPIC",
        ResourceType::Group => "GROUP",
        ResourceType::Cluster => "CLUSTER",
        ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        ResourceType::DelegationToken => "DELEGATION_TOKEN",
        ResourceType::User => "USER",
    }
}

pub fn pattern_type_name(pattern: PatternType) -> &'static str {
    match pattern {
        PatternType::Literal => "LITERAL",
        PatternType::Prefixed => "PREFIXED",
    }
}

pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::All => "ALL",
        Operation::Read => "READ",
        Operation::Write => "WRITE",
        Operation::Create => "CREATE",
        Operation::Delete => "DELETE",
        Operation::Alter => "ALTER",
        Operation::Describe => "DESCRIBE",
        Operation::ClusterAction => "CLUSTER_ACTION",
        Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
        Operation::AlterConfigs => "ALTER_CONFIGS",
        Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
        Operation::CreateTokens => "CREATE_TOKENS",
        Operation::DescribeTokens => "DESCRIBE_TOKENS",
    }
}

pub fn permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::Deny => "DENY",
        Permission::Allow => "ALLOW",
    }
}

pub fn acls_text(bindings: &[AclBinding]) -> String {
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|binding| {
            vec![
                resource_type_name(binding.resource_type).to_string(),
                binding.resource_name.clone(),
                pattern_type_name(binding.pattern_type).to_string(),
                binding.principal.clone(),
                binding.host.clone(),
                operation_name(binding.operation).to_string(),
                permission_name(binding.permission).to_string(),
            ]
        })
        .collect();
    table(
        &[
            "RESOURCE-TYPE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    )
}

pub fn acls_json(bindings: &[AclBinding]) -> serde_json::Value {
    bindings
        .iter()
        .map(|binding| {
            json!({
                "resource_type": resource_type_name(binding.resource_type),
                "name": binding.resource_name,
                "pattern": pattern_type_name(binding.pattern_type),
                "principal": binding.principal,
                "host": binding.host,
                "operation": operation_name(binding.operation),
                "permission": permission_name(binding.permission),
            })
        })
        .collect()
}

/// One SCRAM credential of a user, as DescribeUserScramCredentials tells
/// it: the mechanism by Kafka's number (1 is SCRAM-SHA-256, 2 is
/// SCRAM-SHA-512) and the PBKDF2 iterations of its salted password.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserCredential {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
}

/// A SCRAM mechanism's SASL name, or its number if it is none that
/// Sluice knows.
pub fn mechanism_name(code: i8) -> String {
    Hash::from_code(code).map_or_else(
        || format!("mechanism {code}"),
        |hash| hash.mechanism().to_string(),
    )
}

pub fn user_credentials_text(credentials: &[UserCredential]) -> String {
    let rows: Vec<Vec<String>> = credentials
        .iter()
        .map(|credential| {
            vec![
                credential.user.clone(),
                mechanism_name(credential.mechanism),
                credential.iterations.to_string(),
            ]
        })
        .collect();
    table(&["USER", "MECHANISM", "ITERATIONS"], &rows)
}

pub fn user_credentials_json(credentials: &[UserCredential]) -> serde_json::Value {
    credentials
        .iter()
        .map(|credential| {
            json!({
                "user": credential.user,
                "mechanism": mechanism_name(credential.mechanism),
                "iterations": credential.iterations,
            })
        })
        .collect()
}

/// Milliseconds since the epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// How long the transaction has been open at `now_ms` (by this machine's
/// clock against the coordinator's): only while one is open.
fn txn_duration_ms(described: &DescribeTransactionResponse, now_ms: u64) -> Option<u64> {
    let open = matches!(
        described.state.as_str(),
        "Ongoing" | "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence"
    );
    described
        .start_ms
        .filter(|_| open)
        .map(|start| now_ms.saturating_sub(start))
}

/// A transactional id, then its partitions; the duration is taken at
/// `now_ms`.
pub fn txn_text(described: &DescribeTransactionResponse, now_ms: u64) -> String {
    let mut out = table(
        &["TRANSACTIONAL-ID", &described.transactional_id],
        &[
            vec!["COORDINATOR".to_string(), described.coordinator.to_string()],
            vec!["STATE".to_string(), described.state.clone()],
            vec!["PRODUCER-ID".to_string(), described.producer_id.to_string()],
            vec![
                "PRODUCER-EPOCH".to_string(),
                described.producer_epoch.to_string(),
            ],
            vec!["TIMEOUT-MS".to_string(), described.timeout_ms.to_string()],
            vec!["START-MS".to_string(), optional_text(described.start_ms)],
            vec![
                "DURATION-MS".to_string(),
                optional_text(txn_duration_ms(described, now_ms)),
            ],
            vec![
                "PARTITIONS".to_string(),
                described.partitions.len().to_string(),
            ],
        ],
    );
    if !described.partitions.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = described
            .partitions
            .iter()
            .map(|tp| vec![tp.topic.clone(), tp.partition.to_string()])
            .collect();
        out.push_str(&table(&["TOPIC", "PARTITION"], &rows));
    }
    out
}

pub fn txn_json(described: &DescribeTransactionResponse) -> serde_json::Value {
    json!({
        "transactional_id": described.transactional_id,
        "coordinator": described.coordinator,
        "state": described.state,
        "producer_id": described.producer_id,
        "producer_epoch": described.producer_epoch,
        "timeout_ms": described.timeout_ms,
        "start_ms": described.start_ms,
        "partitions": described.partitions.iter().map(|tp| json!({
            "topic": tp.topic,
            "partition": tp.partition,
        })).collect::<Vec<_>>(),
    })
}

/// What an election did to a partition: `elected`, or why not.
fn election_outcome(result: &ElectionResult) -> String {
    match (result.error, result.message.as_str()) {
        (ErrorCode::None, _) => "elected".to_string(),
        (error, "") => error.name().to_string(),
        (error, message) => format!("{error}: {message}"),
    }
}

pub fn elections_text(results: &[ElectionResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|result| {
            vec![
                result.topic.clone(),
                result.partition.to_string(),
                optional_text(result.leader),
                election_outcome(result),
            ]
        })
        .collect();
    table(&["TOPIC", "PARTITION", "LEADER", "OUTCOME"], &rows)
}

pub fn elections_json(results: &[ElectionResult]) -> serde_json::Value {
    results
        .iter()
        .map(|result| {
            json!({
                "topic": result.topic,
                "partition": result.partition,
                "leader": result.leader,
                "elected": result.error.is_ok(),
                "error": (!result.error.is_ok()).then(|| result.error.name()),
                "message": result.message,
            })
        })
        .collect()
}

/// Whether each move started (or was cancelled), and why not.
pub fn moves_started_text(results: &[MoveResult], cancel: bool) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|result| {
            let outcome = match (result.error.is_ok(), cancel) {
                (true, false) => "started".to_string(),
                (true, true) => "cancelled".to_string(),
                (false, _) => format!("{}: {}", result.error.name(), result.message),
            };
            vec![result.topic.clone(), result.partition.to_string(), outcome]
        })
        .collect();
    table(&["TOPIC", "PARTITION", "OUTCOME"], &rows)
}

/// The moves in progress, a row each.
pub fn moves_text(moving: &[Reassignment]) -> String {
    let rows: Vec<Vec<String>> = moving
        .iter()
        .map(|moving| {
            vec![
                moving.topic.clone(),
                moving.partition.to_string(),
                node_list(&moving.replicas),
                node_list(&moving.adding),
                node_list(&moving.removing),
                match moving.throttle_bytes_per_s {
                    0 => "-".to_string(),
                    rate => format!("{rate} B/s"),
                },
            ]
        })
        .collect();
    table(
        &[
            "TOPIC",
            "PARTITION",
            "REPLICAS",
            "ADDING",
            "REMOVING",
            "THROTTLE",
        ],
        &rows,
    )
}

pub fn moves_json(moving: &[Reassignment]) -> serde_json::Value {
    moving
        .iter()
        .map(|moving| {
            json!({
                "topic": moving.topic,
                "partition": moving.partition,
                "replicas": moving.replicas,
                "adding": moving.adding,
                "removing": moving.removing,
                "throttle_bytes_per_s": moving.throttle_bytes_per_s,
            })
        })
        .collect()
}

/// A consumed record as one JSON object, fields in a fixed order:
/// `partition`, `offset`, `timestamp`, `key`, `value`, `headers`. Bytes
/// that are valid UTF-8 are a string; others are base64 under the field's
/// name with `_base64` appended (`"value_base64": "..."`). A missing key
/// or header value is `null`; headers are a list of `{"name", "value"}`
/// objects in the producer's order.
pub struct JsonRecord<'a>(pub &'a ConsumedRecord);

impl serde::Serialize for JsonRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("partition", &record.partition)?;
        map.serialize_entry("offset", &record.offset)?;
        map.serialize_entry("timestamp", &record.timestamp)?;
        bytes_entry(&mut map, "key", record.key.as_ref())?;
        bytes_entry(&mut map, "value", Some(&record.value))?;
        map.serialize_entry("headers", &JsonHeaders(&record.headers))?;
        map.end()
    }
}

struct JsonHeaders<'a>(&'a [(Bytes, Option<Bytes>)]);

impl serde::Serialize for JsonHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&JsonHeader(name, value.as_ref()))?;
        }
        seq.end()
    }
}

struct JsonHeader<'a>(&'a Bytes, Option<&'a Bytes>);

impl serde::Serialize for JsonHeader<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        bytes_entry(&mut map, "name", Some(self.0))?;
        bytes_entry(&mut map, "value", self.1)?;
        map.end()
    }
}

fn bytes_entry<M: SerializeMap>(
    map: &mut M,
    name: &'static str,
    bytes: Option<&Bytes>,
) -> Result<(), M::Error> {
    match bytes {
        None => map.serialize_entry(name, &()),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => map.serialize_entry(name, text),
            Err(_) => map.serialize_entry(
                &format!("{name}_base64"),
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::native::{
        messages::{
            GroupOffsetDescription, PartitionDescription, PartitionInfo, TransactionPartition,
        },
        ErrorCode,
    };

    fn record(key: Option<&'static [u8]>, value: &'static [u8]) -> ConsumedRecord {
        ConsumedRecord {
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: key.map(Bytes::from_static),
            value: Bytes::from_static(value),
            headers: vec![
                (
                    Bytes::from_static(b"trace"),
                    Some(Bytes::from_static(b"abc")),
                ),
                (Bytes::from_static(b"empty"), None),
                (
                    Bytes::from_static(b"bin"),
                    Some(Bytes::from_static(&[0xff, 0x00])),
                ),
            ],
        }
    }

    #[test]
    fn acl_bindings_show_kafka_names() {
        let binding = |resource_type, name: &str, pattern_type, operation, permission| AclBinding {
            resource_type,
            resource_name: name.to_string(),
            pattern_type,
            principal: "User:alice".to_string(),
            host: "*".to_string(),
            operation,
            permission,
        };
        let bindings = [
            binding(
                ResourceType::Topic,
                "orders",
                PatternType::Literal,
                Operation::Write,
                Permission::Allow,
            ),
            binding(
                ResourceType::TransactionalId,
                "pay-",
                PatternType::Prefixed,
                Operation::Describe,
                Permission::Deny,
            ),
            binding(
                ResourceType::Cluster,
                "kafka-cluster",
                PatternType::Literal,
                Operation::IdempotentWrite,
                Permission::Allow,
            ),
        ];
        assert_eq!(
            acls_text(&bindings),
            "RESOURCE-TYPE     NAME           PATTERN   PRINCIPAL   HOST  OPERATION         PERMISSION\n\
             TOPIC             orders         LITERAL   User:alice  *     WRITE             ALLOW\n\
             TRANSACTIONAL_ID  pay-           PREFIXED  User:alice  *     DESCRIBE          DENY\n\
             CLUSTER           kafka-cluster  LITERAL   User:alice  *     IDEMPOTENT_WRITE  ALLOW\n"
        );
        let json = acls_json(&bindings);
        assert_eq!(json[1]["resource_type"], "TRANSACTIONAL_ID");
        assert_eq!(json[1]["pattern"], "PREFIXED");
        assert_eq!(json[1]["permission"], "DENY");
        assert_eq!(json[2]["operation"], "IDEMPOTENT_WRITE");
        assert_eq!(json[0]["name"], "orders");
        assert_eq!(
            acls_text(&[]),
            "RESOURCE-TYPE  NAME  PATTERN  PRINCIPAL  HOST  OPERATION  PERMISSION\n"
        );
    }

    #[test]
    fn user_credentials_show_mechanisms_by_name() {
        let credential = |user: &str, mechanism, iterations| UserCredential {
            user: user.to_string(),
            mechanism,
            iterations,
        };
        let credentials = [
            credential("carol", 1, 8192),
            credential("carol", 2, 4096),
            credential("dave", 7, 16384),
        ];
        assert_eq!(
            user_credentials_text(&credentials),
            "USER   MECHANISM      ITERATIONS\n\
             carol  SCRAM-SHA-256  8192\n\
             carol  SCRAM-SHA-512  4096\n\
             dave   mechanism 7    16384\n"
        );
        assert_eq!(
            user_credentials_json(&credentials[1..2]),
            json!([{"user": "carol", "mechanism": "SCRAM-SHA-512", "iterations": 4096}])
        );
        assert_eq!(user_credentials_text(&[]), "USER  MECHANISM  ITERATIONS\n");
    }

    #[test]
    fn each_election_shows_the_leader_and_what_happened() {
        let result = |partition, error, message: &str, leader| ElectionResult {
            topic: "orders".to_string(),
            partition,
            error,
            message: message.to_string(),
            leader,
        };
        let results = [
            result(0, ErrorCode::None, "", Some(1)),
            result(
                1,
                ErrorCode::ElectionNotNeeded,
                "node 1 leads already",
                Some(1),
            ),
            result(2, ErrorCode::EligibleLeadersNotAvailable, "", None),
        ];
        assert_eq!(
            elections_text(&results),
            "TOPIC   PARTITION  LEADER  OUTCOME\n\
             orders  0          1       elected\n\
             orders  1          1       election not needed: node 1 leads already\n\
             orders  2          -       eligible leaders not available\n"
        );
        let json = elections_json(&results);
        assert_eq!(json[0]["elected"], true);
        assert_eq!(json[0]["error"], serde_json::Value::Null);
        assert_eq!(json[1]["error"], "election not needed");
        assert_eq!(json[2]["leader"], serde_json::Value::Null);
    }

    #[test]
    fn a_record_is_one_json_object_in_field_order() {
        let line = serde_json::to_string(&JsonRecord(&record(Some(b"k\"1"), b"hello\n"))).unwrap();
        assert_eq!(
            line,
            r#"{"partition":2,"offset":41,"timestamp":1700000000000,"key":"k\"1","value":"hello\n","headers":[{"name":"trace","value":"abc"},{"name":"empty","value":null},{"name":"bin","value_base64":"/wA="}]}"#
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64_with_a_marker() {
        let value = serde_json::to_value(JsonRecord(&record(None, &[0xc3, 0x28, 0x01]))).unwrap();
        assert_eq!(value["key"], serde_json::Value::Null);
        assert_eq!(value["value_base64"], "wygB");
        assert!(value.get("value").is_none());
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "LONGER"],
            &[
                vec!["wide cell".to_string(), "x".to_string()],
                vec!["b".to_string(), "y".to_string()],
            ],
        );
        assert_eq!(text, "A          LONGER\nwide cell  x\nb          y\n");
    }

    fn description() -> TopicDescription {
        TopicDescription {
            name: "orders".to_string(),
            error: ErrorCode::None,
            message: String::new(),
            topic_id: 0xab,
            configs: vec![("retention.ms".to_string(), "1000".to_string())],
            partitions: vec![PartitionDescription {
                partition: 0,
                shard: 1,
                error: ErrorCode::None,
                log_start: 5,
                log_end: 10,
                size_bytes: 4096,
                segments: 1,
                leader: Some(2),
                replicas: vec![2, 0],
                in_sync: vec![2],
                leader_epoch: 3,
            }],
        }
    }

    #[test]
    fn describe_shows_every_partition_with_its_shard_offsets_and_size() {
        let text = description_text(&description());
        assert!(text.contains("retention.ms  1000"), "{text}");
        let last = text.lines().last().unwrap();
        let cells: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(
            cells,
            ["0", "2", "2,0", "2", "3", "1", "5", "10", "4096", "1"],
            "{text}"
        );
        let header = text
            .lines()
            .find(|line| line.starts_with("PARTITION "))
            .unwrap();
        assert!(
            header.starts_with("PARTITION  LEADER  REPLICAS  ISR  LEADER-EPOCH  SHARD"),
            "{header}"
        );
        let json = description_json(&description());
        assert_eq!(json["configs"]["retention.ms"], "1000");
        assert_eq!(json["partitions"][0]["log_end"], 10);
        assert_eq!(json["partitions"][0]["shard"], 1);
        assert_eq!(json["partitions"][0]["leader"], 2);
        assert_eq!(json["partitions"][0]["replicas"], json!([2, 0]));
        assert_eq!(json["partitions"][0]["isr"], json!([2]));
        assert_eq!(json["partitions"][0]["leader_epoch"], 3);
        assert_eq!(json["id"], "000000000000000000000000000000ab");
    }

    fn cluster() -> DescribeClusterResponse {
        let node = |id: u32, voter: bool, registered: bool, fenced: bool| ClusterNode {
            id,
            voter,
            registered,
            fenced,
            alive: registered && !fenced,
            rack: (id == 1).then(|| "east".to_string()),
            kafka_addr: if registered {
                format!("h{id}:9092")
            } else {
                String::new()
            },
            native_addr: if registered {
                format!("h{id}:9192")
            } else {
                String::new()
            },
            admin_addr: String::new(),
            peer_addr: format!("h{id}:9193"),
        };
        DescribeClusterResponse {
            cluster_id: "abc".to_string(),
            controller: Some(1),
            term: 4,
            node_id: 1,
            applied: 17,
            committed: 18,
            nodes: vec![
                node(0, true, false, false),
                node(1, true, true, false),
                node(2, false, true, true),
            ],
        }
    }

    #[test]
    fn cluster_describe_shows_each_node_its_role_state_and_applied_index() {
        let applied = [Applied::NoAddress, Applied::Index(17), Applied::Unreachable];
        let counts = PartitionCounts {
            total: 6,
            offline: 1,
            under_replicated: 2,
        };
        let text = cluster_text(&cluster(), &applied, &counts);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert!(rows.contains(&vec!["CONTROLLER", "1"]), "{text}");
        assert!(rows.contains(&vec!["TERM", "4"]), "{text}");
        assert!(rows.contains(&vec!["PARTITIONS", "6"]), "{text}");
        assert!(rows.contains(&vec!["OFFLINE", "1"]), "{text}");
        assert!(rows.contains(&vec!["UNDER-REPLICATED", "2"]), "{text}");
        assert!(rows.contains(&vec![
            "ID", "ROLE", "STATE", "RACK", "KAFKA", "NATIVE", "ADMIN", "PEER", "APPLIED"
        ]));
        assert!(
            rows.contains(&vec![
                "0",
                "voter",
                "unregistered",
                "-",
                "-",
                "-",
                "-",
                "h0:9193",
                "-"
            ]),
            "{text}"
        );
        assert!(
            rows.contains(&vec![
                "1", "voter", "alive", "east", "h1:9092", "h1:9192", "-", "h1:9193", "17"
            ]),
            "{text}"
        );
        assert!(
            rows.contains(&vec![
                "2",
                "broker",
                "fenced",
                "-",
                "h2:9092",
                "h2:9192",
                "-",
                "h2:9193",
                "unreachable"
            ]),
            "{text}"
        );

        let json = cluster_json(&cluster(), &applied, &counts);
        assert_eq!(json["controller"], 1);
        assert_eq!(
            json["partitions"],
            serde_json::json!({"total": 6, "offline": 1, "under_replicated": 2})
        );
        assert_eq!(json["term"], 4);
        assert_eq!(json["nodes"][1]["applied"], 17);
        assert_eq!(json["nodes"][1]["reachable"], true);
        assert_eq!(json["nodes"][2]["state"], "fenced");
        assert_eq!(json["nodes"][2]["reachable"], false);
        assert_eq!(json["nodes"][2]["applied"], serde_json::Value::Null);
        assert_eq!(json["nodes"][0]["native_addr"], serde_json::Value::Null);
        assert_eq!(json["nodes"][0]["reachable"], serde_json::Value::Null);

        let leaderless = DescribeClusterResponse {
            controller: None,
            ..cluster()
        };
        assert!(cluster_text(&leaderless, &applied, &counts)
            .lines()
            .any(|line| line.split_whitespace().eq(["CONTROLLER", "none"])));
        assert_eq!(
            cluster_json(&leaderless, &applied, &counts)["controller"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn topic_list_in_both_formats() {
        let topics = vec![TopicInfo {
            name: "orders".to_string(),
            error: ErrorCode::None,
            topic_id: 1,
            partitions: vec![
                PartitionInfo {
                    partition: 0,
                    leader: 0,
                    shard: 0,
                };
                3
            ],
        }];
        assert!(topics_text(&topics)
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("orders  3"));
        assert_eq!(topics_json(&topics)[0]["partitions"], 3);
    }

    /// A consumer's assignment of orders 0 and 2, as Kafka clients encode
    /// it (ConsumerProtocolAssignment v0: version, topics, user data).
    const ASSIGNMENT: &[u8] = &[
        0, 0, // version
        0, 0, 0, 1, // one topic
        0, 6, b'o', b'r', b'd', b'e', b'r', b's', // its name
        0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // partitions 0 and 2
        0xff, 0xff, 0xff, 0xff, // no user data
    ];

    fn group() -> DescribeGroupResponse {
        DescribeGroupResponse {
            error: ErrorCode::None,
            message: String::new(),
            group: "billing".to_string(),
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            generation: 3,
            members: vec![GroupMemberDescription {
                member_id: "worker-1".to_string(),
                instance_id: None,
                client_id: "worker".to_string(),
                client_host: "/127.0.0.1".to_string(),
                assignment: Bytes::from_static(ASSIGNMENT),
            }],
            offsets: vec![
                GroupOffsetDescription {
                    topic: "orders".to_string(),
                    partition: 0,
                    committed: 4,
                    log_end: Some(10),
                    metadata: String::new(),
                    last_stable: Some(8),
                },
                GroupOffsetDescription {
                    topic: "gone".to_string(),
                    partition: 1,
                    committed: 7,
                    log_end: None,
                    metadata: String::new(),
                    last_stable: None,
                },
            ],
        }
    }

    fn rows(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .map(|line| line.split_whitespace().collect())
            .collect()
    }

    #[test]
    fn a_group_shows_its_members_assignments_offsets_and_lag() {
        let text = group_text(&group());
        let rows = rows(&text);
        assert!(rows.contains(&vec!["STATE", "Stable"]), "{text}");
        assert!(rows.contains(&vec!["GENERATION", "3"]), "{text}");
        assert!(
            rows.contains(&vec!["worker-1", "worker", "/127.0.0.1", "orders:0,2"]),
            "{text}"
        );
        // The lag is to the last stable offset, 8.
        assert!(
            rows.contains(&vec!["orders", "0", "4", "10", "4"]),
            "{text}"
        );
        assert!(rows.contains(&vec!["gone", "1", "7", "-", "-"]), "{text}");
        let json = group_json(&group());
        assert_eq!(
            json["members"][0]["assignment"],
            json!([{"topic": "orders", "partitions": [0, 2]}])
        );
        assert_eq!(json["offsets"][0]["lag"], 4);
        assert_eq!(json["offsets"][0]["last_stable"], 8);
        assert_eq!(json["offsets"][1]["log_end"], serde_json::Value::Null);
        assert_eq!(json["offsets"][1]["lag"], serde_json::Value::Null);
    }

    #[test]
    fn an_assignment_of_another_protocol_is_shown_as_bytes() {
        let mut other = group();
        other.protocol_type = "connect".to_string();
        assert!(group_text(&other).contains(&format!("{} bytes", ASSIGNMENT.len())));
        let json = group_json(&other);
        assert!(json["members"][0].get("assignment").is_none());
        assert!(json["members"][0]["assignment_base64"].is_string());
    }

    #[test]
    fn transactions_are_listed_and_described_in_both_formats() {
        let listed = vec![TransactionListing {
            transactional_id: "payments-1".to_string(),
            coordinator: 2,
            producer_id: 1000,
            state: "Ongoing".to_string(),
        }];
        let text = txns_text(&listed);
        assert_eq!(
            rows(&text),
            [
                vec!["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
                vec!["payments-1", "2", "1000", "Ongoing"],
            ]
        );
        let json = txns_json(&listed);
        assert_eq!(json[0]["transactional_id"], "payments-1");
        assert_eq!(json[0]["coordinator"], 2);
        assert_eq!(json[0]["producer_id"], 1000);
        assert_eq!(json[0]["state"], "Ongoing");

        let mut described = DescribeTransactionResponse {
            error: ErrorCode::None,
            message: String::new(),
            transactional_id: "payments-1".to_string(),
            coordinator: 2,
            state: "Ongoing".to_string(),
            producer_id: 1000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            start_ms: Some(1_700_000_000_000),
            partitions: vec![
                TransactionPartition {
                    topic: "orders".to_string(),
                    partition: 0,
                },
                TransactionPartition {
                    topic: "orders".to_string(),
                    partition: 4,
                },
            ],
        };
        let text = txn_text(&described, 1_700_000_001_500);
        let shown = rows(&text);
        assert_eq!(shown[0], ["TRANSACTIONAL-ID", "payments-1"]);
        assert!(shown.contains(&vec!["STATE", "Ongoing"]), "{text}");
        assert!(shown.contains(&vec!["PRODUCER-EPOCH", "3"]), "{text}");
        assert!(shown.contains(&vec!["DURATION-MS", "1500"]), "{text}");
        assert!(shown.contains(&vec!["TOPIC", "PARTITION"]), "{text}");
        assert!(shown.contains(&vec!["orders", "4"]), "{text}");
        let json = txn_json(&described);
        assert_eq!(json["start_ms"], 1_700_000_000_000u64);
        assert_eq!(json["partitions"][1]["partition"], 4);

        // Ended: no duration; never started: no start either.
        described.state = "CompleteAbort".to_string();
        let text = txn_text(&described, 1_700_000_001_500);
        assert!(rows(&text).contains(&vec!["DURATION-MS", "-"]), "{text}");
        described.state = "Empty".to_string();
        described.start_ms = None;
        described.partitions.clear();
        let text = txn_text(&described, 1_700_000_001_500);
        assert!(rows(&text).contains(&vec!["START-MS", "-"]), "{text}");
        assert!(!text.contains("TOPIC"), "{text}");
        assert_eq!(txn_json(&described)["start_ms"], serde_json::Value::Null);
    }

    #[test]
    fn group_lists_and_resets_in_both_formats() {
        let groups = vec![GroupListing {
            group: "billing".to_string(),
            state: "Empty".to_string(),
            protocol_type: String::new(),
            members: 0,
        }];
        assert_eq!(
            rows(&groups_text(&groups))[1],
            ["billing", "Empty", "-", "0"]
        );
        assert_eq!(groups_json(&groups)[0]["protocol_type"], "");
        let reset = vec![ResetPartition {
            partition: 2,
            previous: None,
            offset: 9,
        }];
        assert_eq!(
            rows(&reset_text("orders", &reset))[1],
            ["orders", "2", "-", "9"]
        );
        let json = reset_json("billing", "orders", true, &reset);
        assert_eq!(json["dry_run"], true);
        assert_eq!(json["partitions"][0]["previous"], serde_json::Value::Null);
        assert_eq!(json["partitions"][0]["offset"], 9);
    }
}
