//! The bytes of a metadata log frame's body, versioned.
//!
//! A body is one entry: a type byte, then the entry's fields, little-endian;
//! a string or a list is a `u32` count and then its bytes or entries.
//!
//! Version 2 (written by this release):
//!
//! | type | entry | fields |
//! |---|---|---|
//! | 0 | format version | `u16` version |
//! | 1 | [`MetadataRecord::TopicCreated`] | `u128` topic id, name, `u32` shard list, replicas, configs |
//! | 2 | [`MetadataRecord::TopicDeleted`] | `u128` topic id |
//! | 3 | [`MetadataRecord::ConfigsAltered`] | `u128` topic id, configs |
//! | 4 | [`MetadataRecord::PartitionsAdded`] | `u128` topic id, `u32` first partition, `u32` shard list, replicas |
//! | 5 | [`MetadataRecord::ProducerIdsAllocated`] | `i64` first producer id, `i64` next producer id |
//! | 6 | [`MetadataRecord::BrokerRegistered`] | registration |
//! | 7 | [`MetadataRecord::BrokerFenced`] | `i32` node, `u64` broker epoch |
//! | 8 | [`MetadataRecord::BrokerUnfenced`] | `i32` node, `u64` broker epoch |
//! | 9 | [`MetadataRecord::BrokerState`] | registration, `u64` broker epoch, `u8` fenced |
//! | 10 | [`MetadataRecord::InSyncAltered`] | `u128` topic id, `u32` partition, `i32` leader, `u32` leader epoch, `u32` partition epoch, node list |
//! | 11 | [`MetadataRecord::PartitionState`] | `u128` topic id, `u32` partition, `i32` leader (-1: none), `u32` leader epoch, `u32` partition epoch, node list (in sync), node list (eligible) |
//!
//! | 12 | [`MetadataRecord::LeaderElected`] | `u128` topic id, `u32` partition, `u8` election (0 preferred, 1 unclean) |
//! | 13 | [`MetadataRecord::ReassignmentStarted`] | `u128` topic id, `u32` partition, node list (target), `u64` throttle bytes per second |
//! | 14 | [`MetadataRecord::ReassignmentCancelled`] | `u128` topic id, `u32` partition |
//! | 15 | [`MetadataRecord::ReassignmentState`] | `u128` topic id, `u32` partition, node list (original), node list (target), `u64` throttle bytes per second |
//! | 16 | [`MetadataRecord::BrokerConfigsAltered`] | `i32` node (-1: the cluster-wide defaults), configs |
//! | 17 | [`MetadataRecord::AclsCreated`] | binding list |
//! | 18 | [`MetadataRecord::AclsDeleted`] | binding list |
//! | 19 | [`MetadataRecord::ScramCredentialAltered`] | user, `u8` mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512), `u8` 1 and a credential or `u8` 0 (deleted) |
//! | 20 | [`MetadataRecord::ClientQuotasAltered`] | entity, list of (key, `f64` value as its IEEE 754 bits in a `u64`) |
//! | 21 | [`MetadataRecord::BrokerRegistered`] | registration with listeners |
//! | 22 | [`MetadataRecord::BrokerState`] | registration with listeners, `u64` broker epoch, `u8` fenced |
//!
//! A binding is `u8` resource type, resource name, `u8` pattern type,
//! principal, host, `u8` operation, `u8` permission (Kafka's codes). A
//! credential is its salt, `u32` iterations, StoredKey and ServerKey, the
//! three byte runs written as strings are (a `u32` length and the bytes).
//! A quota entity is its user, client id and IP address in turn, each `u8`
//! 0 (absent), 1 (the default) or 2 and a name.
//!
//! Types 10 and 11, then 12, then 13 to 15, then 16, then 17 and 18, then
//! 19, then 20, then 21 and 22 came after the others in
//! version 2; a release before them stops at one with "unknown record
//! type" rather than misread it. This release writes a registration as
//! types 21 and 22 only, and reads 6 and 9 from the logs of the releases
//! before.
//!
//! Configs are a list of (name, value) string pairs; replicas a list (one
//! per partition) of lists of `i32` node ids; a registration is `i32` node,
//! `u128` incarnation, `u8` 1 and a rack string or `u8` 0, then the Kafka,
//! native, peer and admin addresses as strings. A registration with
//! listeners has, in place of the Kafka address, a list (at most
//! [`KAFKA_LISTENERS_MAX`]) of Kafka listeners: name, `u8` security
//! protocol (Kafka's code), advertised address.
//!
//! Version 1 (read, to import the log of a release before cluster mode)
//! has types 1 to 5 only, without replicas, first partition or first
//! producer id.
//!
//! **Versions.** A format version entry (type 0, encoded the same in every
//! version, so that any release can read it) says how the entries after it
//! are encoded, until the next one. A log starts with one; a log with none
//! was written before logs declared their version and is version 1
//! ([`FORMAT_VERSION_UNDECLARED`]), which is what this release writes
//! ([`FORMAT_VERSION`]). A release that changes an entry's bytes raises the
//! version and writes a version entry before its first entry in the new
//! encoding; a release that meets a version it does not know stops with an
//! error instead of misreading what follows.
//!
//! Every count read is checked against its cap and against the bytes that
//! remain before anything is allocated.

use std::collections::BTreeMap;

use sluice_storage::{NodeId, ProducerId, ShardId, TopicId};

use crate::{
    acl::{AclBinding, Operation, PatternType, Permission, ResourceType},
    quota::{Entity, Name, Rate},
    sasl::scram::{Credential, Hash},
    security_protocol::SecurityProtocol,
};

use super::{
    image::PRODUCER_ID_FIRST,
    records::{BrokerRegistration, Election, Endpoint, MetadataRecord, PartitionRecord},
};

/// The format version this release writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 2;

/// The version of a log with no format version entry: logs written before
/// they declared their version are version 1.
pub const FORMAT_VERSION_UNDECLARED: u16 = 1;

/// A string is at most this long: topic names are at most 249 bytes and
/// config names and values are short. As the version 1 reader allowed, so
/// every log written before still replays.
pub const STRING_BYTES_MAX: usize = 32 * 1024;

/// A list has at most this many entries: a topic has at most 10,000
/// partitions, and far fewer configs. As the version 1 reader allowed, so
/// every log written before still replays.
pub const LIST_ENTRIES_MAX: usize = 100_000;

const TYPE_FORMAT_VERSION: u8 = 0;
const TYPE_TOPIC_CREATED: u8 = 1;
const TYPE_TOPIC_DELETED: u8 = 2;
const TYPE_CONFIGS_ALTERED: u8 = 3;
const TYPE_PARTITIONS_ADDED: u8 = 4;
const TYPE_PRODUCER_IDS_ALLOCATED: u8 = 5;
const TYPE_BROKER_REGISTERED: u8 = 6;
const TYPE_BROKER_FENCED: u8 = 7;
const TYPE_BROKER_UNFENCED: u8 = 8;
const TYPE_BROKER_STATE: u8 = 9;
const TYPE_IN_SYNC_ALTERED: u8 = 10;
const TYPE_PARTITION_STATE: u8 = 11;
const TYPE_LEADER_ELECTED: u8 = 12;
const TYPE_REASSIGNMENT_STARTED: u8 = 13;
const TYPE_REASSIGNMENT_CANCELLED: u8 = 14;
const TYPE_REASSIGNMENT_STATE: u8 = 15;
const TYPE_BROKER_CONFIGS_ALTERED: u8 = 16;
const TYPE_ACLS_CREATED: u8 = 17;
const TYPE_ACLS_DELETED: u8 = 18;
const TYPE_SCRAM_CREDENTIAL_ALTERED: u8 = 19;
const TYPE_CLIENT_QUOTAS_ALTERED: u8 = 20;
const TYPE_BROKER_REGISTERED_LISTENERS: u8 = 21;
const TYPE_BROKER_STATE_LISTENERS: u8 = 22;

/// Kafka listeners of one broker's registration, at most.
pub const KAFKA_LISTENERS_MAX: usize = 16;

/// A binding takes at least its four codes and three strings' counts.
const BINDING_BYTES_MIN: usize = 16;

/// A partition has at most this many replicas (Kafka allows as many as
/// brokers; a quorum bounds a useful count far lower).
pub const REPLICAS_PER_PARTITION_MAX: usize = 16;

/// A shard id takes 4 bytes; a config at least two empty strings' counts.
const SHARD_BYTES: usize = 4;
/// A partition's replica list takes at least its count.
const REPLICA_LIST_BYTES_MIN: usize = 4;
const CONFIG_BYTES_MIN: usize = 8;

/// Why a body did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{field} needs {needed} bytes, {available} remain")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{field} declares {declared}, over the cap of {max}")]
    OverCap {
        field: &'static str,
        declared: usize,
        max: usize,
    },
    #[error("{field} is not UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("{field} has invalid value {value}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("record type {record_type} is not one of format version {version}")]
    UnknownType { record_type: u8, version: u16 },
    #[error("format version {version} is not one this release reads (1 to {FORMAT_VERSION})")]
    UnsupportedVersion { version: u16 },
    #[error("{remaining} bytes left over after the record")]
    TrailingBytes { remaining: usize },
}

/// What one frame's body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The entries after this one are in this format version.
    FormatVersion(u16),
    Record(MetadataRecord),
}

/// The body of a format version entry saying `version`.
pub fn encode_version(version: u16) -> Vec<u8> {
    let mut out = Writer::default();
    out.u8(TYPE_FORMAT_VERSION);
    out.u16(version);
    out.bytes
}

/// The body of `record`, in [`FORMAT_VERSION`].
pub fn encode_record(record: &MetadataRecord) -> Vec<u8> {
    let mut out = Writer::default();
    match record {
        MetadataRecord::TopicCreated {
            topic_id,
            name,
            shards,
            replicas,
            configs,
        } => {
            out.u8(TYPE_TOPIC_CREATED);
            out.u128(topic_id.0);
            out.string(name);
            out.shards(shards);
            out.replicas(replicas);
            out.configs(configs);
        }
        MetadataRecord::TopicDeleted { topic_id } => {
            out.u8(TYPE_TOPIC_DELETED);
            out.u128(topic_id.0);
        }
        MetadataRecord::ConfigsAltered { topic_id, configs } => {
            out.u8(TYPE_CONFIGS_ALTERED);
            out.u128(topic_id.0);
            out.configs(configs);
        }
        MetadataRecord::PartitionsAdded {
            topic_id,
            first,
            shards,
            replicas,
        } => {
            out.u8(TYPE_PARTITIONS_ADDED);
            out.u128(topic_id.0);
            out.u32(first.unwrap_or(u32::MAX));
            out.shards(shards);
            out.replicas(replicas);
        }
        MetadataRecord::ProducerIdsAllocated { first, next } => {
            out.u8(TYPE_PRODUCER_IDS_ALLOCATED);
            out.i64(first.map_or(-1, |first| first.0));
            out.i64(next.0);
        }
        MetadataRecord::BrokerRegistered(registration) => {
            out.u8(TYPE_BROKER_REGISTERED_LISTENERS);
            out.registration(registration);
        }
        MetadataRecord::BrokerFenced { node, epoch } => {
            out.u8(TYPE_BROKER_FENCED);
            out.i32(node.0);
            out.u64(*epoch);
        }
        MetadataRecord::BrokerUnfenced { node, epoch } => {
            out.u8(TYPE_BROKER_UNFENCED);
            out.i32(node.0);
            out.u64(*epoch);
        }
        MetadataRecord::BrokerState {
            registration,
            epoch,
            fenced,
        } => {
            out.u8(TYPE_BROKER_STATE_LISTENERS);
            out.registration(registration);
            out.u64(*epoch);
            out.u8(u8::from(*fenced));
        }
        MetadataRecord::InSyncAltered {
            topic_id,
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            in_sync,
        } => {
            out.u8(TYPE_IN_SYNC_ALTERED);
            out.u128(topic_id.0);
            out.u32(*partition);
            out.i32(leader.0);
            out.u32(*leader_epoch);
            out.u32(*partition_epoch);
            out.nodes(in_sync);
        }
        MetadataRecord::PartitionState(state) => {
            out.u8(TYPE_PARTITION_STATE);
            out.u128(state.topic_id.0);
            out.u32(state.partition);
            out.i32(state.leader.map_or(-1, |leader| leader.0));
            out.u32(state.leader_epoch);
            out.u32(state.partition_epoch);
            out.nodes(&state.in_sync);
            out.nodes(&state.eligible);
        }
        MetadataRecord::LeaderElected {
            topic_id,
            partition,
            election,
        } => {
            out.u8(TYPE_LEADER_ELECTED);
            out.u128(topic_id.0);
            out.u32(*partition);
            out.u8(election.code());
        }
        MetadataRecord::ReassignmentStarted {
            topic_id,
            partition,
            target,
            throttle_bytes_per_s,
        } => {
            out.u8(TYPE_REASSIGNMENT_STARTED);
            out.u128(topic_id.0);
            out.u32(*partition);
            out.nodes(target);
            out.u64(*throttle_bytes_per_s);
        }
        MetadataRecord::ReassignmentCancelled {
            topic_id,
            partition,
        } => {
            out.u8(TYPE_REASSIGNMENT_CANCELLED);
            out.u128(topic_id.0);
            out.u32(*partition);
        }
        MetadataRecord::ReassignmentState {
            topic_id,
            partition,
            original,
            target,
            throttle_bytes_per_s,
        } => {
            out.u8(TYPE_REASSIGNMENT_STATE);
            out.u128(topic_id.0);
            out.u32(*partition);
            out.nodes(original);
            out.nodes(target);
            out.u64(*throttle_bytes_per_s);
        }
        MetadataRecord::BrokerConfigsAltered { node, configs } => {
            out.u8(TYPE_BROKER_CONFIGS_ALTERED);
            out.i32(node.map_or(-1, |node| node.0));
            out.configs(configs);
        }
        MetadataRecord::AclsCreated(bindings) => {
            out.u8(TYPE_ACLS_CREATED);
            out.bindings(bindings);
        }
        MetadataRecord::AclsDeleted(bindings) => {
            out.u8(TYPE_ACLS_DELETED);
            out.bindings(bindings);
        }
        MetadataRecord::ScramCredentialAltered {
            user,
            hash,
            credential,
        } => {
            out.u8(TYPE_SCRAM_CREDENTIAL_ALTERED);
            out.string(user);
            out.u8(hash.code() as u8);
            match credential {
                None => out.u8(0),
                Some(credential) => {
                    out.u8(1);
                    out.run(&credential.salt);
                    out.u32(credential.iterations);
                    out.run(&credential.stored_key);
                    out.run(&credential.server_key);
                }
            }
        }
        MetadataRecord::ClientQuotasAltered { entity, values } => {
            out.u8(TYPE_CLIENT_QUOTAS_ALTERED);
            for name in [&entity.user, &entity.client_id, &entity.ip] {
                match name {
                    None => out.u8(0),
                    Some(Name::Default) => out.u8(1),
                    Some(Name::Named(name)) => {
                        out.u8(2);
                        out.string(name);
                    }
                }
            }
            out.count(values.len(), LIST_ENTRIES_MAX);
            for (key, value) in values {
                out.string(key);
                out.u64(value.0.to_bits());
            }
        }
    }
    out.bytes
}

/// The entry in `body`, read as format version `version` (the one in force
/// where the body is). A format version entry reads the same in every
/// version; whether this release reads the version it names is the
/// caller's to check.
pub fn decode(body: &[u8], version: u16) -> Result<Entry, DecodeError> {
    let mut input = Reader::new(body);
    let record_type = input.u8("record type")?;
    if record_type == TYPE_FORMAT_VERSION {
        let version = input.u16("format version")?;
        input.finish()?;
        return Ok(Entry::FormatVersion(version));
    }
    let record = match version {
        1 => decode_v1(record_type, &mut input)?,
        2 => decode_v2(record_type, &mut input)?,
        version => return Err(DecodeError::UnsupportedVersion { version }),
    };
    input.finish()?;
    Ok(Entry::Record(record))
}

fn decode_v1(record_type: u8, input: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    Ok(match record_type {
        TYPE_TOPIC_CREATED => MetadataRecord::TopicCreated {
            topic_id: input.topic_id()?,
            name: input.string("name")?,
            shards: input.shards()?,
            replicas: Vec::new(),
            configs: input.configs()?,
        },
        TYPE_TOPIC_DELETED => MetadataRecord::TopicDeleted {
            topic_id: input.topic_id()?,
        },
        TYPE_CONFIGS_ALTERED => MetadataRecord::ConfigsAltered {
            topic_id: input.topic_id()?,
            configs: input.configs()?,
        },
        TYPE_PARTITIONS_ADDED => MetadataRecord::PartitionsAdded {
            topic_id: input.topic_id()?,
            first: None,
            shards: input.shards()?,
            replicas: Vec::new(),
        },
        TYPE_PRODUCER_IDS_ALLOCATED => MetadataRecord::ProducerIdsAllocated {
            first: None,
            next: input.producer_id("next producer id")?,
        },
        record_type => {
            return Err(DecodeError::UnknownType {
                record_type,
                version: 1,
            })
        }
    })
}

fn decode_v2(record_type: u8, input: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    Ok(match record_type {
        TYPE_TOPIC_CREATED => {
            let topic_id = input.topic_id()?;
            let name = input.string("name")?;
            let shards = input.shards()?;
            let replicas = input.replicas(shards.len())?;
            MetadataRecord::TopicCreated {
                topic_id,
                name,
                shards,
                replicas,
                configs: input.configs()?,
            }
        }
        TYPE_TOPIC_DELETED | TYPE_CONFIGS_ALTERED => decode_v1(record_type, input)?,
        TYPE_PARTITIONS_ADDED => {
            let topic_id = input.topic_id()?;
            let first = input.u32("first partition")?;
            let shards = input.shards()?;
            let replicas = input.replicas(shards.len())?;
            MetadataRecord::PartitionsAdded {
                topic_id,
                first: (first != u32::MAX).then_some(first),
                shards,
                replicas,
            }
        }
        TYPE_PRODUCER_IDS_ALLOCATED => {
            let first = match input.i64("first producer id")? {
                -1 => None,
                first if first >= PRODUCER_ID_FIRST.0 => Some(ProducerId(first)),
                first => {
                    return Err(DecodeError::InvalidValue {
                        field: "first producer id",
                        value: first,
                    })
                }
            };
            MetadataRecord::ProducerIdsAllocated {
                first,
                next: input.producer_id("next producer id")?,
            }
        }
        TYPE_BROKER_REGISTERED => MetadataRecord::BrokerRegistered(input.registration(false)?),
        TYPE_BROKER_REGISTERED_LISTENERS => {
            MetadataRecord::BrokerRegistered(input.registration(true)?)
        }
        TYPE_BROKER_FENCED => MetadataRecord::BrokerFenced {
            node: input.node()?,
            epoch: input.u64("broker epoch")?,
        },
        TYPE_BROKER_UNFENCED => MetadataRecord::BrokerUnfenced {
            node: input.node()?,
            epoch: input.u64("broker epoch")?,
        },
        TYPE_BROKER_STATE => input.broker_state(false)?,
        TYPE_BROKER_STATE_LISTENERS => input.broker_state(true)?,
        TYPE_IN_SYNC_ALTERED => MetadataRecord::InSyncAltered {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
            leader: input.node()?,
            leader_epoch: input.u32("leader epoch")?,
            partition_epoch: input.u32("partition epoch")?,
            in_sync: input.nodes("in-sync set")?,
        },
        TYPE_PARTITION_STATE => MetadataRecord::PartitionState(PartitionRecord {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
            leader: match i32::from_le_bytes(input.array("leader")?) {
                -1 => None,
                leader if leader >= 0 => Some(NodeId(leader)),
                leader => {
                    return Err(DecodeError::InvalidValue {
                        field: "leader",
                        value: i64::from(leader),
                    })
                }
            },
            leader_epoch: input.u32("leader epoch")?,
            partition_epoch: input.u32("partition epoch")?,
            in_sync: input.nodes("in-sync set")?,
            eligible: input.nodes("eligible leader replicas")?,
        }),
        TYPE_LEADER_ELECTED => MetadataRecord::LeaderElected {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
            election: {
                let code = input.u8("election")?;
                Election::from_code(code).ok_or(DecodeError::InvalidValue {
                    field: "election",
                    value: i64::from(code),
                })?
            },
        },
        TYPE_REASSIGNMENT_STARTED => MetadataRecord::ReassignmentStarted {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
            target: input.nodes("target replicas")?,
            throttle_bytes_per_s: input.u64("throttle")?,
        },
        TYPE_REASSIGNMENT_CANCELLED => MetadataRecord::ReassignmentCancelled {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
        },
        TYPE_REASSIGNMENT_STATE => MetadataRecord::ReassignmentState {
            topic_id: input.topic_id()?,
            partition: input.u32("partition")?,
            original: input.nodes("original replicas")?,
            target: input.nodes("target replicas")?,
            throttle_bytes_per_s: input.u64("throttle")?,
        },
        TYPE_BROKER_CONFIGS_ALTERED => MetadataRecord::BrokerConfigsAltered {
            node: match i32::from_le_bytes(input.array("node id")?) {
                -1 => None,
                node if node >= 0 => Some(NodeId(node)),
                node => {
                    return Err(DecodeError::InvalidValue {
                        field: "node",
                        value: i64::from(node),
                    })
                }
            },
            configs: input.configs()?,
        },
        TYPE_ACLS_CREATED => MetadataRecord::AclsCreated(input.bindings()?),
        TYPE_ACLS_DELETED => MetadataRecord::AclsDeleted(input.bindings()?),
        TYPE_SCRAM_CREDENTIAL_ALTERED => {
            let user = input.string("user")?;
            let code = input.u8("mechanism")?;
            let hash = i8::try_from(code).ok().and_then(Hash::from_code).ok_or(
                DecodeError::InvalidValue {
                    field: "mechanism",
                    value: i64::from(code),
                },
            )?;
            let credential = match input.u8("credential present")? {
                0 => None,
                1 => Some(Credential {
                    salt: input.run("salt")?,
                    iterations: input.u32("iterations")?,
                    stored_key: input.run("stored key")?,
                    server_key: input.run("server key")?,
                }),
                other => {
                    return Err(DecodeError::InvalidValue {
                        field: "credential present",
                        value: i64::from(other),
                    })
                }
            };
            MetadataRecord::ScramCredentialAltered {
                user,
                hash,
                credential,
            }
        }
        TYPE_CLIENT_QUOTAS_ALTERED => {
            let mut name = |field| -> Result<Option<Name>, DecodeError> {
                Ok(match input.u8(field)? {
                    0 => None,
                    1 => Some(Name::Default),
                    2 => Some(Name::Named(input.string(field)?)),
                    other => {
                        return Err(DecodeError::InvalidValue {
                            field,
                            value: i64::from(other),
                        })
                    }
                })
            };
            let entity = Entity {
                user: name("user")?,
                client_id: name("client id")?,
                ip: name("ip")?,
            };
            // A key and a value take at least 12 bytes.
            let count = input.count("quota values", 12)?;
            let values = (0..count)
                .map(|_| {
                    Ok((
                        input.string("quota key")?,
                        Rate(f64::from_bits(input.u64("quota value")?)),
                    ))
                })
                .collect::<Result<_, DecodeError>>()?;
            MetadataRecord::ClientQuotasAltered { entity, values }
        }
        record_type => {
            return Err(DecodeError::UnknownType {
                record_type,
                version: 2,
            })
        }
    })
}

/// Reads fields from a body, every length checked before it is used.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// The next `count` bytes.
    fn take(&mut self, field: &'static str, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError::Truncated {
                field,
                needed: count,
                available: self.bytes.len(),
            });
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(field, N)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn producer_id(&mut self, field: &'static str) -> Result<ProducerId, DecodeError> {
        let id = self.i64(field)?;
        if id < PRODUCER_ID_FIRST.0 {
            return Err(DecodeError::InvalidValue { field, value: id });
        }
        Ok(ProducerId(id))
    }

    fn node(&mut self) -> Result<NodeId, DecodeError> {
        let node = i32::from_le_bytes(self.array("node id")?);
        if node < 0 {
            return Err(DecodeError::InvalidValue {
                field: "node id",
                value: i64::from(node),
            });
        }
        Ok(NodeId(node))
    }

    /// A list of at most [`REPLICAS_PER_PARTITION_MAX`] node ids.
    fn nodes(&mut self, field: &'static str) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.count(field, 4)?;
        if count > REPLICAS_PER_PARTITION_MAX {
            return Err(DecodeError::OverCap {
                field,
                declared: count,
                max: REPLICAS_PER_PARTITION_MAX,
            });
        }
        (0..count).map(|_| self.node()).collect()
    }

    /// One replica list per partition, `partitions` of them, or none.
    fn replicas(&mut self, partitions: usize) -> Result<Vec<Vec<NodeId>>, DecodeError> {
        let count = self.count("replicas", REPLICA_LIST_BYTES_MIN)?;
        // None: written where a single node's log was imported unplaced.
        if count != partitions && count != 0 {
            return Err(DecodeError::InvalidValue {
                field: "replica lists",
                value: count as i64,
            });
        }
        (0..count)
            .map(|_| {
                let nodes = self.count("replica list", 4)?;
                if nodes > REPLICAS_PER_PARTITION_MAX {
                    return Err(DecodeError::OverCap {
                        field: "replica list",
                        declared: nodes,
                        max: REPLICAS_PER_PARTITION_MAX,
                    });
                }
                (0..nodes).map(|_| self.node()).collect()
            })
            .collect()
    }

    fn broker_state(&mut self, listeners: bool) -> Result<MetadataRecord, DecodeError> {
        Ok(MetadataRecord::BrokerState {
            registration: self.registration(listeners)?,
            epoch: self.u64("broker epoch")?,
            fenced: match self.u8("fenced")? {
                0 => false,
                1 => true,
                other => {
                    return Err(DecodeError::InvalidValue {
                        field: "fenced",
                        value: i64::from(other),
                    })
                }
            },
        })
    }

    /// A registration: with its listener list (`listeners`, types 21 and
    /// 22) or the one Kafka address of types 6 and 9.
    fn registration(&mut self, listeners: bool) -> Result<BrokerRegistration, DecodeError> {
        let node = self.node()?;
        let incarnation = u128::from_le_bytes(self.array("incarnation")?);
        let rack = match self.u8("rack present")? {
            0 => None,
            1 => Some(self.string("rack")?),
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "rack present",
                    value: i64::from(other),
                })
            }
        };
        let kafka_listeners = if listeners {
            let count = self.count("listener list", 9)?;
            if count > KAFKA_LISTENERS_MAX {
                return Err(DecodeError::OverCap {
                    field: "listener list",
                    declared: count,
                    max: KAFKA_LISTENERS_MAX,
                });
            }
            (0..count)
                .map(|_| self.endpoint())
                .collect::<Result<_, _>>()?
        } else {
            // A release before named listeners: one address, served to
            // the clients of every listener.
            let addr = self.string("kafka address")?;
            (!addr.is_empty())
                .then(|| Endpoint {
                    name: String::new(),
                    protocol: SecurityProtocol::Plaintext,
                    addr,
                })
                .into_iter()
                .collect()
        };
        Ok(BrokerRegistration {
            node,
            incarnation,
            rack,
            kafka_listeners,
            native_addr: self.string("native address")?,
            peer_addr: self.string("peer address")?,
            admin_addr: self.string("admin address")?,
        })
    }

    fn endpoint(&mut self) -> Result<Endpoint, DecodeError> {
        let name = self.string("listener name")?;
        let code = self.u8("security protocol")?;
        let protocol = SecurityProtocol::from_code(code).ok_or(DecodeError::InvalidValue {
            field: "security protocol",
            value: i64::from(code),
        })?;
        let addr = self.string("listener address")?;
        if name.is_empty() || addr.is_empty() {
            return Err(DecodeError::InvalidValue {
                field: "listener name or address length",
                value: 0,
            });
        }
        Ok(Endpoint {
            name,
            protocol,
            addr,
        })
    }

    fn topic_id(&mut self) -> Result<TopicId, DecodeError> {
        Ok(TopicId(u128::from_le_bytes(self.array("topic id")?)))
    }

    /// A list's entry count, checked against [`LIST_ENTRIES_MAX`] and
    /// against the bytes left (each entry takes at least `entry_bytes_min`).
    fn count(&mut self, field: &'static str, entry_bytes_min: usize) -> Result<usize, DecodeError> {
        let declared = self.u32(field)? as usize;
        if declared > LIST_ENTRIES_MAX {
            return Err(DecodeError::OverCap {
                field,
                declared,
                max: LIST_ENTRIES_MAX,
            });
        }
        let needed = declared * entry_bytes_min;
        if self.bytes.len() < needed {
            return Err(DecodeError::Truncated {
                field,
                needed,
                available: self.bytes.len(),
            });
        }
        Ok(declared)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let declared = self.u32(field)? as usize;
        if declared > STRING_BYTES_MAX {
            return Err(DecodeError::OverCap {
                field,
                declared,
                max: STRING_BYTES_MAX,
            });
        }
        let bytes = self.take(field, declared)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { field })
    }

    fn shards(&mut self) -> Result<Vec<ShardId>, DecodeError> {
        let count = self.count("shards", SHARD_BYTES)?;
        (0..count)
            .map(|_| Ok(ShardId(self.u32("shard")?)))
            .collect()
    }

    /// Configs in the order written; a name given twice keeps its last
    /// value (no writer gives one twice).
    fn configs(&mut self) -> Result<BTreeMap<String, String>, DecodeError> {
        let count = self.count("configs", CONFIG_BYTES_MIN)?;
        (0..count)
            .map(|_| Ok((self.string("config name")?, self.string("config value")?)))
            .collect()
    }

    /// A run of bytes, written as a string is: at most
    /// [`STRING_BYTES_MAX`].
    fn run(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let declared = self.u32(field)? as usize;
        if declared > STRING_BYTES_MAX {
            return Err(DecodeError::OverCap {
                field,
                declared,
                max: STRING_BYTES_MAX,
            });
        }
        Ok(self.take(field, declared)?.to_vec())
    }

    fn bindings(&mut self) -> Result<Vec<AclBinding>, DecodeError> {
        let count = self.count("ACL bindings", BINDING_BYTES_MIN)?;
        (0..count).map(|_| self.binding()).collect()
    }

    fn binding(&mut self) -> Result<AclBinding, DecodeError> {
        fn code<T>(
            field: &'static str,
            code: u8,
            known: impl Fn(i8) -> Option<T>,
        ) -> Result<T, DecodeError> {
            i8::try_from(code)
                .ok()
                .and_then(known)
                .ok_or(DecodeError::InvalidValue {
                    field,
                    value: i64::from(code),
                })
        }
        let resource_type = self.u8("resource type")?;
        Ok(AclBinding {
            resource_type: code("resource type", resource_type, ResourceType::from_code)?,
            resource_name: self.string("resource name")?,
            pattern_type: code(
                "pattern type",
                self.u8("pattern type")?,
                PatternType::from_code,
            )?,
            principal: self.string("principal")?,
            host: self.string("host")?,
            operation: code("operation", self.u8("operation")?, Operation::from_code)?,
            permission: code("permission", self.u8("permission")?, Permission::from_code)?,
        })
    }

    /// Fails unless every byte was read.
    fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { remaining }),
        }
    }
}

/// Writes fields into a body.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn replicas(&mut self, replicas: &[Vec<NodeId>]) {
        self.count(replicas.len(), LIST_ENTRIES_MAX);
        for nodes in replicas {
            self.count(nodes.len(), REPLICAS_PER_PARTITION_MAX);
            for node in nodes {
                self.i32(node.0);
            }
        }
    }

    fn nodes(&mut self, nodes: &[NodeId]) {
        self.count(nodes.len(), REPLICAS_PER_PARTITION_MAX);
        for node in nodes {
            self.i32(node.0);
        }
    }

    fn registration(&mut self, registration: &BrokerRegistration) {
        self.i32(registration.node.0);
        self.u128(registration.incarnation);
        match &registration.rack {
            None => self.u8(0),
            Some(rack) => {
                self.u8(1);
                self.string(rack);
            }
        }
        self.count(registration.kafka_listeners.len(), KAFKA_LISTENERS_MAX);
        for endpoint in &registration.kafka_listeners {
            self.string(&endpoint.name);
            self.u8(endpoint.protocol.code());
            self.string(&endpoint.addr);
        }
        self.string(&registration.native_addr);
        self.string(&registration.peer_addr);
        self.string(&registration.admin_addr);
    }

    fn u128(&mut self, value: u128) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A count, checked against the cap a reader holds it to: what is
    /// written must read back.
    fn count(&mut self, count: usize, max: usize) {
        assert!(count <= max, "a count of {count}, over the cap of {max}");
        self.u32(count as u32);
    }

    fn string(&mut self, value: &str) {
        self.count(value.len(), STRING_BYTES_MAX);
        self.bytes.extend_from_slice(value.as_bytes());
    }

    fn shards(&mut self, shards: &[ShardId]) {
        self.count(shards.len(), LIST_ENTRIES_MAX);
        for shard in shards {
            self.u32(shard.0);
        }
    }

    fn run(&mut self, bytes: &[u8]) {
        self.count(bytes.len(), STRING_BYTES_MAX);
        self.bytes.extend_from_slice(bytes);
    }

    fn bindings(&mut self, bindings: &[AclBinding]) {
        self.count(bindings.len(), LIST_ENTRIES_MAX);
        for binding in bindings {
            self.u8(binding.resource_type as u8);
            self.string(&binding.resource_name);
            self.u8(binding.pattern_type as u8);
            self.string(&binding.principal);
            self.string(&binding.host);
            self.u8(binding.operation as u8);
            self.u8(binding.permission as u8);
        }
    }

    fn configs(&mut self, configs: &BTreeMap<String, String>) {
        self.count(configs.len(), LIST_ENTRIES_MAX);
        for (name, value) in configs {
            self.string(name);
            self.string(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b' ').collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// Every record's bytes as version 1 wrote them: logs written then
    /// must still load (to be imported into the controller quorum's log).
    #[test]
    fn version_1_records_still_read() {
        let created = MetadataRecord::TopicCreated {
            topic_id: TopicId(0x0102),
            name: "t".to_string(),
            shards: vec![ShardId(0), ShardId(1)],
            replicas: Vec::new(),
            configs: [("k".to_string(), "v".to_string())].into(),
        };
        let deleted = MetadataRecord::TopicDeleted {
            topic_id: TopicId(0x0102),
        };
        let altered = MetadataRecord::ConfigsAltered {
            topic_id: TopicId(0x0102),
            configs: BTreeMap::new(),
        };
        let added = MetadataRecord::PartitionsAdded {
            topic_id: TopicId(0x0102),
            first: None,
            shards: vec![ShardId(2)],
            replicas: Vec::new(),
        };
        let allocated = MetadataRecord::ProducerIdsAllocated {
            first: None,
            next: ProducerId(2000),
        };
        // Little-endian integers; strings and lists after a u32 count.
        let golden = [
            (
                &created,
                "01 02010000000000000000000000000000 01000000 74 02000000 00000000 01000000 01000000 01000000 6b 01000000 76",
            ),
            (&deleted, "02 02010000000000000000000000000000"),
            (&altered, "03 02010000000000000000000000000000 00000000"),
            (&added, "04 02010000000000000000000000000000 01000000 02000000"),
            (&allocated, "05 d007000000000000"),
        ];
        for (record, bytes) in golden {
            assert_eq!(
                decode(&unhex(bytes), 1),
                Ok(Entry::Record(record.clone())),
                "{record:?}"
            );
        }
    }

    fn registration() -> BrokerRegistration {
        BrokerRegistration {
            node: NodeId(3),
            incarnation: 0x0a,
            rack: Some("r".to_string()),
            kafka_listeners: vec![Endpoint {
                name: "K".to_string(),
                protocol: SecurityProtocol::SaslSsl,
                addr: "k".to_string(),
            }],
            native_addr: "n".to_string(),
            peer_addr: "p".to_string(),
            admin_addr: String::new(),
        }
    }

    /// A registration of a release before named listeners (types 6 and
    /// 9) has one Kafka address, told to the clients of every listener.
    #[test]
    fn a_registration_of_one_kafka_address_serves_every_listener() {
        let legacy = BrokerRegistration {
            kafka_listeners: vec![Endpoint {
                name: String::new(),
                protocol: SecurityProtocol::Plaintext,
                addr: "k".to_string(),
            }],
            ..registration()
        };
        let registered = "06 03000000 0a000000000000000000000000000000 01 01000000 72 01000000 6b 01000000 6e 01000000 70 00000000";
        let state = "09 03000000 0a000000000000000000000000000000 01 01000000 72 01000000 6b 01000000 6e 01000000 70 00000000 0900000000000000 01";
        assert_eq!(
            decode(&unhex(registered), FORMAT_VERSION).unwrap(),
            Entry::Record(MetadataRecord::BrokerRegistered(legacy.clone()))
        );
        assert_eq!(
            decode(&unhex(state), FORMAT_VERSION).unwrap(),
            Entry::Record(MetadataRecord::BrokerState {
                registration: legacy.clone(),
                epoch: 9,
                fenced: true,
            })
        );
        let endpoint = legacy.endpoint("SASL_SSL").unwrap();
        assert_eq!(endpoint.addr, "k");
        assert_eq!(legacy.kafka_listeners_text(), "k");
        // Without a Kafka address: no listener.
        let none = "06 03000000 0a000000000000000000000000000000 00 00000000 01000000 6e 01000000 70 00000000";
        let Entry::Record(MetadataRecord::BrokerRegistered(none)) =
            decode(&unhex(none), FORMAT_VERSION).unwrap()
        else {
            panic!("a registration");
        };
        assert!(none.kafka_listeners.is_empty());
    }

    #[test]
    fn a_listener_list_is_capped_and_its_entries_checked() {
        let registration = |count: u32, entry: &str| {
            format!(
                "15 03000000 0a000000000000000000000000000000 00 {} {} 01000000 6e 01000000 70 00000000",
                hex(&count.to_le_bytes()),
                entry
            )
        };
        let entry = "01000000 4b 03 01000000 6b";
        let over = (0..=KAFKA_LISTENERS_MAX)
            .map(|_| entry)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(matches!(
            decode(
                &unhex(&registration(KAFKA_LISTENERS_MAX as u32 + 1, &over)),
                FORMAT_VERSION
            ),
            Err(DecodeError::OverCap {
                field: "listener list",
                ..
            })
        ));
        // A protocol code Kafka does not have.
        assert!(matches!(
            decode(
                &unhex(&registration(1, "01000000 4b 07 01000000 6b")),
                FORMAT_VERSION
            ),
            Err(DecodeError::InvalidValue {
                field: "security protocol",
                value: 7
            })
        ));
        // A listener without a name.
        assert!(decode(
            &unhex(&registration(1, "00000000 03 01000000 6b")),
            FORMAT_VERSION
        )
        .is_err());
        let two = registration(2, "01000000 4b 03 01000000 6b 01000000 4c 00 01000000 6c");
        let Entry::Record(MetadataRecord::BrokerRegistered(two)) =
            decode(&unhex(&two), FORMAT_VERSION).unwrap()
        else {
            panic!("a registration");
        };
        assert_eq!(two.endpoint("L").unwrap().addr, "l");
        assert_eq!(
            two.endpoint("K").unwrap().protocol,
            SecurityProtocol::SaslSsl
        );
        assert!(two.endpoint("M").is_none());
        assert_eq!(two.kafka_listeners_text(), "K://k,L://l");
    }

    /// Every record's bytes in version 2, which this release writes.
    fn partition_state() -> PartitionRecord {
        PartitionRecord {
            topic_id: TopicId(0x0102),
            partition: 3,
            leader: None,
            leader_epoch: 4,
            partition_epoch: 5,
            in_sync: Vec::new(),
            eligible: vec![NodeId(2)],
        }
    }

    #[test]
    fn records_keep_their_version_2_encoding() {
        let golden = [
            (
                MetadataRecord::TopicCreated {
                    topic_id: TopicId(0x0102),
                    name: "t".to_string(),
                    shards: vec![ShardId(1)],
                    replicas: vec![vec![NodeId(2)]],
                    configs: BTreeMap::new(),
                },
                "01 02010000000000000000000000000000 01000000 74 01000000 01000000 01000000 01000000 02000000 00000000",
            ),
            (
                MetadataRecord::TopicDeleted {
                    topic_id: TopicId(0x0102),
                },
                "02 02010000000000000000000000000000",
            ),
            (
                MetadataRecord::PartitionsAdded {
                    topic_id: TopicId(0x0102),
                    first: Some(4),
                    shards: vec![ShardId(2)],
                    replicas: vec![vec![NodeId(1)]],
                },
                "04 02010000000000000000000000000000 04000000 01000000 02000000 01000000 01000000 01000000",
            ),
            (
                MetadataRecord::ProducerIdsAllocated {
                    first: Some(ProducerId(1000)),
                    next: ProducerId(2000),
                },
                "05 e803000000000000 d007000000000000",
            ),
            (
                MetadataRecord::BrokerRegistered(registration()),
                "15 03000000 0a000000000000000000000000000000 01 01000000 72 01000000 01000000 4b 03 01000000 6b 01000000 6e 01000000 70 00000000",
            ),
            (
                MetadataRecord::BrokerFenced {
                    node: NodeId(3),
                    epoch: 9,
                },
                "07 03000000 0900000000000000",
            ),
            (
                MetadataRecord::BrokerUnfenced {
                    node: NodeId(3),
                    epoch: 9,
                },
                "08 03000000 0900000000000000",
            ),
            (
                MetadataRecord::BrokerState {
                    registration: registration(),
                    epoch: 9,
                    fenced: true,
                },
                "16 03000000 0a000000000000000000000000000000 01 01000000 72 01000000 01000000 4b 03 01000000 6b 01000000 6e 01000000 70 00000000 0900000000000000 01",
            ),
            (
                MetadataRecord::InSyncAltered {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                    leader: NodeId(1),
                    leader_epoch: 4,
                    partition_epoch: 5,
                    in_sync: vec![NodeId(1), NodeId(2)],
                },
                "0a 02010000000000000000000000000000 03000000 01000000 04000000 05000000 02000000 01000000 02000000",
            ),
            (
                MetadataRecord::PartitionState(partition_state()),
                "0b 02010000000000000000000000000000 03000000 ffffffff 04000000 05000000 00000000 01000000 02000000",
            ),
            (
                MetadataRecord::LeaderElected {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                    election: Election::Preferred,
                },
                "0c 02010000000000000000000000000000 03000000 00",
            ),
            (
                MetadataRecord::LeaderElected {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                    election: Election::Unclean,
                },
                "0c 02010000000000000000000000000000 03000000 01",
            ),
            (
                MetadataRecord::ReassignmentStarted {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                    target: vec![NodeId(2), NodeId(4)],
                    throttle_bytes_per_s: 0x0500,
                },
                "0d 02010000000000000000000000000000 03000000 02000000 02000000 04000000 0005000000000000",
            ),
            (
                MetadataRecord::ReassignmentCancelled {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                },
                "0e 02010000000000000000000000000000 03000000",
            ),
            (
                MetadataRecord::ReassignmentState {
                    topic_id: TopicId(0x0102),
                    partition: 3,
                    original: vec![NodeId(1)],
                    target: vec![NodeId(2)],
                    throttle_bytes_per_s: 0,
                },
                "0f 02010000000000000000000000000000 03000000 01000000 01000000 01000000 02000000 0000000000000000",
            ),
            (
                MetadataRecord::BrokerConfigsAltered {
                    node: None,
                    configs: [("log.retention.ms".to_string(), "5".to_string())].into(),
                },
                "10 ffffffff 01000000 10000000 6c6f672e726574656e74696f6e2e6d73 01000000 35",
            ),
            (
                MetadataRecord::BrokerConfigsAltered {
                    node: Some(NodeId(2)),
                    configs: BTreeMap::new(),
                },
                "10 02000000 00000000",
            ),
            (
                MetadataRecord::AclsCreated(vec![AclBinding {
                    resource_type: ResourceType::Topic,
                    resource_name: "t".to_string(),
                    pattern_type: PatternType::Prefixed,
                    principal: "User:a".to_string(),
                    host: "*".to_string(),
                    operation: Operation::Write,
                    permission: Permission::Allow,
                }]),
                "11 01000000 02 01000000 74 04 06000000 557365723a61 01000000 2a 04 03",
            ),
            (
                MetadataRecord::AclsDeleted(vec![AclBinding {
                    resource_type: ResourceType::Cluster,
                    resource_name: "c".to_string(),
                    pattern_type: PatternType::Literal,
                    principal: "User:b".to_string(),
                    host: "h".to_string(),
                    operation: Operation::Alter,
                    permission: Permission::Deny,
                }]),
                "12 01000000 04 01000000 63 03 06000000 557365723a62 01000000 68 07 02",
            ),
        ];
        for (record, bytes) in golden {
            assert_eq!(
                hex(&encode_record(&record)),
                bytes.replace(' ', ""),
                "{record:?}"
            );
            assert_eq!(
                decode(&unhex(bytes), 2),
                Ok(Entry::Record(record.clone())),
                "{record:?}"
            );
        }
        assert_eq!(
            decode(&unhex("0c 02010000000000000000000000000000 03000000 02"), 2),
            Err(DecodeError::InvalidValue {
                field: "election",
                value: 2
            }),
            "an election type no release writes"
        );
        assert_eq!(
            decode(
                &unhex("11 01000000 09 01000000 74 04 06000000 557365723a61 01000000 2a 04 03"),
                2
            ),
            Err(DecodeError::InvalidValue {
                field: "resource type",
                value: 9
            }),
            "a resource type Kafka does not have"
        );
    }

    #[test]
    fn scram_credentials_read_back_and_a_bad_mechanism_is_an_error() {
        let set = MetadataRecord::ScramCredentialAltered {
            user: "carol".to_string(),
            hash: Hash::Sha512,
            credential: Some(Credential {
                salt: vec![1, 2, 3],
                iterations: 8192,
                stored_key: vec![7; 64],
                server_key: vec![9; 64],
            }),
        };
        let deleted = MetadataRecord::ScramCredentialAltered {
            user: "carol".to_string(),
            hash: Hash::Sha256,
            credential: None,
        };
        for record in [set, deleted] {
            let body = encode_record(&record);
            assert_eq!(decode(&body, 2), Ok(Entry::Record(record.clone())));
            for cut in 0..body.len() {
                assert!(decode(&body[..cut], 2).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(
            hex(&encode_record(&MetadataRecord::ScramCredentialAltered {
                user: "c".to_string(),
                hash: Hash::Sha256,
                credential: None,
            })),
            "1301000000630100"
        );
        assert_eq!(
            decode(&unhex("13 01000000 63 03 00"), 2),
            Err(DecodeError::InvalidValue {
                field: "mechanism",
                value: 3
            })
        );
    }

    /// Every cut of a record's body, and every body with one byte
    /// changed, is an error or another record: never a panic.
    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let record = MetadataRecord::TopicCreated {
            topic_id: TopicId(u128::MAX),
            name: "orders".to_string(),
            shards: vec![ShardId(0), ShardId(7)],
            replicas: vec![vec![NodeId(0)], vec![NodeId(1), NodeId(2)]],
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        };
        let altered = MetadataRecord::InSyncAltered {
            topic_id: TopicId(7),
            partition: 1,
            leader: NodeId(0),
            leader_epoch: 2,
            partition_epoch: 3,
            in_sync: vec![NodeId(0), NodeId(4)],
        };
        let state = MetadataRecord::PartitionState(PartitionRecord {
            leader: Some(NodeId(4)),
            ..partition_state()
        });
        let elected = MetadataRecord::LeaderElected {
            topic_id: TopicId(7),
            partition: 1,
            election: Election::Unclean,
        };
        let moved = MetadataRecord::ReassignmentState {
            topic_id: TopicId(7),
            partition: 1,
            original: vec![NodeId(0), NodeId(1)],
            target: vec![NodeId(2), NodeId(3)],
            throttle_bytes_per_s: 1 << 20,
        };
        let defaults = MetadataRecord::BrokerConfigsAltered {
            node: Some(NodeId(3)),
            configs: [("log.cleanup.policy".to_string(), "compact".to_string())].into(),
        };
        for record in [
            record,
            defaults,
            MetadataRecord::BrokerRegistered(registration()),
            altered,
            state,
            elected,
            moved,
        ] {
            let body = encode_record(&record);
            for end in 0..body.len() {
                assert!(decode(&body[..end], 2).is_err(), "cut at {end}");
            }
            for at in 0..body.len() {
                for value in [0x00, 0x7f, 0x80, 0xff] {
                    let mut changed = body.clone();
                    changed[at] = value;
                    let _ = decode(&changed, 2);
                }
            }
            assert_eq!(decode(&body, 2), Ok(Entry::Record(record)));
        }
    }

    #[test]
    fn a_format_version_entry_reads_the_same_in_any_version() {
        let body = encode_version(1);
        assert_eq!(hex(&body), "000100");
        assert_eq!(decode(&body, 1), Ok(Entry::FormatVersion(1)));
        // A later version's entry is read, so that it can be refused.
        let later = encode_version(7);
        assert_eq!(decode(&later, 1), Ok(Entry::FormatVersion(7)));
        // Its records are not misread as version 1's.
        assert_eq!(
            decode(&unhex("02 02010000000000000000000000000000"), 7),
            Err(DecodeError::UnsupportedVersion { version: 7 })
        );
    }

    #[test]
    fn bodies_that_do_not_decode() {
        let cases: [(&str, DecodeError); 7] = [
            (
                "",
                DecodeError::Truncated {
                    field: "record type",
                    needed: 1,
                    available: 0,
                },
            ),
            (
                "06",
                DecodeError::UnknownType {
                    record_type: 6,
                    version: 1,
                },
            ),
            (
                "02 0201",
                DecodeError::Truncated {
                    field: "topic id",
                    needed: 16,
                    available: 2,
                },
            ),
            (
                "02 02010000000000000000000000000000 00",
                DecodeError::TrailingBytes { remaining: 1 },
            ),
            // A producer id block below the first id.
            (
                "05 e703000000000000",
                DecodeError::InvalidValue {
                    field: "next producer id",
                    value: 999,
                },
            ),
            // A million shards declared in a few bytes: refused before any
            // allocation.
            (
                "04 02010000000000000000000000000000 40420f00 00000000",
                DecodeError::OverCap {
                    field: "shards",
                    declared: 1_000_000,
                    max: LIST_ENTRIES_MAX,
                },
            ),
            (
                "04 02010000000000000000000000000000 03000000 00000000",
                DecodeError::Truncated {
                    field: "shards",
                    needed: 12,
                    available: 4,
                },
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode(&unhex(bytes), 1), Err(error), "{bytes}");
        }
        let long_name = format!(
            "01 {:032x} {:08x}",
            0,
            (STRING_BYTES_MAX as u32 + 1).swap_bytes()
        );
        assert_eq!(
            decode(&unhex(&long_name), 1),
            Err(DecodeError::OverCap {
                field: "name",
                declared: STRING_BYTES_MAX + 1,
                max: STRING_BYTES_MAX
            })
        );
        let not_utf8 = format!("01 {:032x} 01000000 ff", 0);
        assert_eq!(
            decode(&unhex(&not_utf8), 1),
            Err(DecodeError::NotUtf8 { field: "name" })
        );
    }
}
