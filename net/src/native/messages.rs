//! The requests and responses of the native protocol and their encoding.
//!
//! Every message is a struct with `encode` and `decode`; lists are a u32
//! count then the entries, strings and byte runs a u32 length then the bytes,
//! integers little-endian. Record batches travel as the stored batch bytes,
//! sliced out of the frame without a copy.

use bytes::{Bytes, BytesMut};

use super::{
    codec::{DecodeError, Reader, Writer},
    ErrorCode,
};
use sluice_storage::batch::BATCH_BYTES_MAX;

/// The APIs of the native protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    ApiVersions = 0,
    Metadata = 1,
    CreateTopics = 2,
    DeleteTopics = 3,
    Produce = 4,
    Fetch = 5,
    ListOffsets = 6,
    DescribeTopics = 7,
    AlterConfigs = 8,
    ListGroups = 9,
    DescribeGroup = 10,
    ResetGroupOffsets = 11,
    DeleteGroup = 12,
}

impl ApiKey {
    pub const ALL: [ApiKey; 13] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::DescribeTopics,
        ApiKey::AlterConfigs,
        ApiKey::ListGroups,
        ApiKey::DescribeGroup,
        ApiKey::ResetGroupOffsets,
        ApiKey::DeleteGroup,
    ];

    pub fn from_u16(key: u16) -> Option<ApiKey> {
        ApiKey::ALL.get(key as usize).copied()
    }

    /// The versions this code speaks: (min, max).
    pub fn versions(self) -> (u16, u16) {
        (0, 0)
    }
}

/// One message body of the protocol.
pub trait Message: Sized {
    fn encode(&self, out: &mut Writer<'_>);
    fn decode(input: &mut Reader) -> Result<Self, DecodeError>;

    fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::new();
        self.encode(&mut Writer::new(&mut out));
        out
    }

    /// Decodes a whole body: trailing bytes are an error.
    fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut input = Reader::new(bytes);
        let message = Self::decode(&mut input)?;
        input.finish()?;
        Ok(message)
    }
}

fn error_code(input: &mut Reader) -> Result<ErrorCode, DecodeError> {
    Ok(ErrorCode::from_u16(input.u16("error code")?))
}

fn configs(input: &mut Reader) -> Result<Vec<(String, String)>, DecodeError> {
    input.list("configs", 8, |input| {
        Ok((input.string("config name")?, input.string("config value")?))
    })
}

fn write_configs(out: &mut Writer<'_>, configs: &[(String, String)]) {
    out.list(configs, |out, (name, value)| {
        out.string(name);
        out.string(value);
    });
}

// ---- ApiVersions -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    pub client: String,
}

impl Message for ApiVersionsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(&self.client);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ApiVersionsRequest {
            client: input.string("client")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// (api key, min version, max version)
    pub versions: Vec<(u16, u16, u16)>,
    pub broker_id: u32,
    /// The shard that holds this connection.
    pub shard: u32,
    pub shards: u32,
}

impl Message for ApiVersionsResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.versions, |out, (key, min, max)| {
            out.u16(*key);
            out.u16(*min);
            out.u16(*max);
        });
        out.u32(self.broker_id);
        out.u32(self.shard);
        out.u32(self.shards);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ApiVersionsResponse {
            versions: input.list("versions", 6, |input| {
                Ok((input.u16("api key")?, input.u16("min")?, input.u16("max")?))
            })?,
            broker_id: input.u32("broker id")?,
            shard: input.u32("shard")?,
            shards: input.u32("shards")?,
        })
    }
}

// ---- Metadata ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None`: every topic.
    pub topics: Option<Vec<String>>,
}

impl Message for MetadataRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.bool(self.topics.is_some());
        if let Some(topics) = &self.topics {
            out.list(topics, |out, topic| out.string(topic));
        }
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        let topics = if input.bool("has topics")? {
            Some(input.list("topics", 4, |input| input.string("topic"))?)
        } else {
            None
        };
        Ok(MetadataRequest { topics })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: u32,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    pub leader: u32,
    pub shard: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub error: ErrorCode,
    pub topic_id: u128,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

impl Message for MetadataResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.brokers, |out, broker| {
            out.u32(broker.id);
            out.string(&broker.host);
            out.u16(broker.port);
        });
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.u16(topic.error as u16);
            out.u128(topic.topic_id);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.u32(partition.leader);
                out.u32(partition.shard);
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(MetadataResponse {
            brokers: input.list("brokers", 10, |input| {
                Ok(BrokerInfo {
                    id: input.u32("broker id")?,
                    host: input.string("host")?,
                    port: input.u16("port")?,
                })
            })?,
            topics: input.list("topics", 26, |input| {
                Ok(TopicInfo {
                    name: input.string("topic")?,
                    error: error_code(input)?,
                    topic_id: input.u128("topic id")?,
                    partitions: input.list("partitions", 12, |input| {
                        Ok(PartitionInfo {
                            partition: input.u32("partition")?,
                            leader: input.u32("leader")?,
                            shard: input.u32("shard")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

// ---- CreateTopics / DeleteTopics ---------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// 0: the broker's default partition count.
    pub partitions: u32,
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    pub topics: Vec<NewTopic>,
}

impl Message for CreateTopicsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.u32(topic.partitions);
            write_configs(out, &topic.configs);
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreateTopicsRequest {
            topics: input.list("topics", 12, |input| {
                Ok(NewTopic {
                    name: input.string("topic")?,
                    partitions: input.u32("partitions")?,
                    configs: configs(input)?,
                })
            })?,
        })
    }
}

/// The outcome of an operation on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    pub name: String,
    pub error: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResults {
    pub topics: Vec<TopicResult>,
}

impl Message for TopicResults {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.u16(topic.error as u16);
            out.string(&topic.message);
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(TopicResults {
            topics: input.list("topics", 10, |input| {
                Ok(TopicResult {
                    name: input.string("topic")?,
                    error: error_code(input)?,
                    message: input.string("message")?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    pub names: Vec<String>,
}

impl Message for DeleteTopicsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.names, |out, name| out.string(name));
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteTopicsRequest {
            names: input.list("topics", 4, |input| input.string("topic"))?,
        })
    }
}

// ---- Produce ----------------------------------------------------------

/// How much of the write a producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No response at all.
    None,
    /// The leader stored the batch (under its flush policy).
    Leader,
    /// Every in-sync replica stored it. On one broker, the same as `Leader`.
    All,
}

impl Acks {
    fn to_i8(self) -> i8 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
    fn from_i8(value: i8) -> Result<Acks, DecodeError> {
        match value {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            -1 => Ok(Acks::All),
            value => Err(DecodeError::InvalidValue {
                field: "acks",
                value: i64::from(value),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartition {
    pub partition: u32,
    /// One stored-format batch (header and payload).
    pub batch: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    pub acks: Acks,
    pub timeout_ms: u32,
    pub topics: Vec<ProduceTopic>,
}

impl Message for ProduceRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.i8(self.acks.to_i8());
        out.u32(self.timeout_ms);
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.bytes(&partition.batch);
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ProduceRequest {
            acks: Acks::from_i8(input.i8("acks")?)?,
            timeout_ms: input.u32("timeout")?,
            topics: input.list("topics", 8, |input| {
                Ok(ProduceTopic {
                    name: input.string("topic")?,
                    partitions: input.list("partitions", 8, |input| {
                        Ok(ProducePartition {
                            partition: input.u32("partition")?,
                            batch: input.bytes("batch", BATCH_BYTES_MAX)?,
                        })
                    })?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    pub partition: u32,
    pub error: ErrorCode,
    pub message: String,
    pub base_offset: u64,
    pub log_start: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceTopicResponse {
    pub name: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopicResponse>,
}

impl Message for ProduceResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.u16(partition.error as u16);
                out.string(&partition.message);
                out.u64(partition.base_offset);
                out.u64(partition.log_start);
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ProduceResponse {
            topics: input.list("topics", 8, |input| {
                Ok(ProduceTopicResponse {
                    name: input.string("topic")?,
                    partitions: input.list("partitions", 26, |input| {
                        Ok(ProducePartitionResponse {
                            partition: input.u32("partition")?,
                            error: error_code(input)?,
                            message: input.string("message")?,
                            base_offset: input.u64("base offset")?,
                            log_start: input.u64("log start")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

// ---- Fetch -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: u32,
    pub offset: u64,
    pub max_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// How long to wait for `min_bytes` when there is less.
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    /// The whole response's budget; the first batch is always returned.
    pub max_bytes: u32,
    pub topics: Vec<FetchTopic>,
}

impl Message for FetchRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.u32(self.max_wait_ms);
        out.u32(self.min_bytes);
        out.u32(self.max_bytes);
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.u64(partition.offset);
                out.u32(partition.max_bytes);
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FetchRequest {
            max_wait_ms: input.u32("max wait")?,
            min_bytes: input.u32("min bytes")?,
            max_bytes: input.u32("max bytes")?,
            topics: input.list("topics", 8, |input| {
                Ok(FetchTopic {
                    name: input.string("topic")?,
                    partitions: input.list("partitions", 16, |input| {
                        Ok(FetchPartition {
                            partition: input.u32("partition")?,
                            offset: input.u64("offset")?,
                            max_bytes: input.u32("partition max bytes")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    pub partition: u32,
    pub error: ErrorCode,
    pub message: String,
    pub high_watermark: u64,
    pub log_start: u64,
    /// Whole stored batches, back to back on the wire. A broker fills it
    /// with the batches as they are (no copy until the frame is encoded); a
    /// decoded response holds one run of bytes.
    pub batches: Vec<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopicResponse {
    pub name: String,
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub topics: Vec<FetchTopicResponse>,
}

impl FetchPartitionResponse {
    /// The batches as one run of bytes: as they are when decoded (one
    /// part), joined otherwise.
    pub fn batch_bytes(&self) -> Bytes {
        match self.batches.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

/// A fetch response carries at most this many bytes of batches per
/// partition: a client's whole budget, and the first batch always fits.
pub const FETCH_PARTITION_BYTES_MAX: usize = 64 * 1024 * 1024;

impl Message for FetchResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.u16(partition.error as u16);
                out.string(&partition.message);
                out.u64(partition.high_watermark);
                out.u64(partition.log_start);
                let total: usize = partition.batches.iter().map(Bytes::len).sum();
                out.count(total);
                for batch in &partition.batches {
                    out.raw(batch);
                }
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FetchResponse {
            topics: input.list("topics", 8, |input| {
                Ok(FetchTopicResponse {
                    name: input.string("topic")?,
                    partitions: input.list("partitions", 30, |input| {
                        Ok(FetchPartitionResponse {
                            partition: input.u32("partition")?,
                            error: error_code(input)?,
                            message: input.string("message")?,
                            high_watermark: input.u64("high watermark")?,
                            log_start: input.u64("log start")?,
                            batches: vec![input.bytes("batches", FETCH_PARTITION_BYTES_MAX)?],
                        })
                    })?,
                })
            })?,
        })
    }
}

// ---- ListOffsets -------------------------------------------------------

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first record with a timestamp at or after this (ms since epoch).
    Timestamp(i64),
    /// The first record with the largest timestamp.
    MaxTimestamp,
}

impl OffsetSpec {
    fn to_i64(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(timestamp) => timestamp,
            OffsetSpec::MaxTimestamp => -3,
        }
    }
    fn from_i64(value: i64) -> Result<OffsetSpec, DecodeError> {
        match value {
            -2 => Ok(OffsetSpec::Earliest),
            -1 => Ok(OffsetSpec::Latest),
            -3 => Ok(OffsetSpec::MaxTimestamp),
            value if value >= 0 => Ok(OffsetSpec::Timestamp(value)),
            value => Err(DecodeError::InvalidValue {
                field: "offset spec",
                value,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// (topic, [(partition, spec)])
    pub topics: Vec<(String, Vec<(u32, OffsetSpec)>)>,
}

impl Message for ListOffsetsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, (name, partitions)| {
            out.string(name);
            out.list(partitions, |out, (partition, spec)| {
                out.u32(*partition);
                out.i64(spec.to_i64());
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListOffsetsRequest {
            topics: input.list("topics", 8, |input| {
                Ok((
                    input.string("topic")?,
                    input.list("partitions", 12, |input| {
                        Ok((
                            input.u32("partition")?,
                            OffsetSpec::from_i64(input.i64("spec")?)?,
                        ))
                    })?,
                ))
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    pub partition: u32,
    pub error: ErrorCode,
    pub message: String,
    /// `None` when no record is at or after the timestamp.
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    pub topics: Vec<(String, Vec<ListedOffset>)>,
}

impl Message for ListOffsetsResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, (name, partitions)| {
            out.string(name);
            out.list(partitions, |out, listed| {
                out.u32(listed.partition);
                out.u16(listed.error as u16);
                out.string(&listed.message);
                out.bool(listed.offset.is_some());
                out.u64(listed.offset.unwrap_or(0));
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListOffsetsResponse {
            topics: input.list("topics", 8, |input| {
                Ok((
                    input.string("topic")?,
                    input.list("partitions", 19, |input| {
                        let partition = input.u32("partition")?;
                        let error = error_code(input)?;
                        let message = input.string("message")?;
                        let present = input.bool("has offset")?;
                        let offset = input.u64("offset")?;
                        Ok(ListedOffset {
                            partition,
                            error,
                            message,
                            offset: present.then_some(offset),
                        })
                    })?,
                ))
            })?,
        })
    }
}

// ---- DescribeTopics / AlterConfigs -------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTopicsRequest {
    /// Empty: every topic.
    pub names: Vec<String>,
}

impl Message for DescribeTopicsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.names, |out, name| out.string(name));
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeTopicsRequest {
            names: input.list("topics", 4, |input| input.string("topic"))?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: u32,
    pub shard: u32,
    pub error: ErrorCode,
    pub log_start: u64,
    pub log_end: u64,
    pub size_bytes: u64,
    pub segments: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub error: ErrorCode,
    pub message: String,
    pub topic_id: u128,
    pub configs: Vec<(String, String)>,
    pub partitions: Vec<PartitionDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTopicsResponse {
    pub topics: Vec<TopicDescription>,
}

impl Message for DescribeTopicsResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.topics, |out, topic| {
            out.string(&topic.name);
            out.u16(topic.error as u16);
            out.string(&topic.message);
            out.u128(topic.topic_id);
            write_configs(out, &topic.configs);
            out.list(&topic.partitions, |out, partition| {
                out.u32(partition.partition);
                out.u32(partition.shard);
                out.u16(partition.error as u16);
                out.u64(partition.log_start);
                out.u64(partition.log_end);
                out.u64(partition.size_bytes);
                out.u32(partition.segments);
            });
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeTopicsResponse {
            topics: input.list("topics", 30, |input| {
                Ok(TopicDescription {
                    name: input.string("topic")?,
                    error: error_code(input)?,
                    message: input.string("message")?,
                    topic_id: input.u128("topic id")?,
                    configs: configs(input)?,
                    partitions: input.list("partitions", 38, |input| {
                        Ok(PartitionDescription {
                            partition: input.u32("partition")?,
                            shard: input.u32("shard")?,
                            error: error_code(input)?,
                            log_start: input.u64("log start")?,
                            log_end: input.u64("log end")?,
                            size_bytes: input.u64("size")?,
                            segments: input.u32("segments")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsRequest {
    pub topic: String,
    pub configs: Vec<(String, String)>,
}

impl Message for AlterConfigsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(&self.topic);
        write_configs(out, &self.configs);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AlterConfigsRequest {
            topic: input.string("topic")?,
            configs: configs(input)?,
        })
    }
}

// ---- Consumer groups ---------------------------------------------------
//
// The groups Kafka clients form, seen and managed by an operator: list them,
// describe one (members, committed offsets and lag), reset its offsets while
// it has no members, delete it.

fn optional_string(input: &mut Reader, field: &'static str) -> Result<Option<String>, DecodeError> {
    let present = input.bool(field)?;
    let text = input.string(field)?;
    Ok(present.then_some(text))
}

fn write_optional_string(out: &mut Writer<'_>, text: Option<&str>) {
    out.bool(text.is_some());
    out.string(text.unwrap_or_default());
}

fn optional_u64(input: &mut Reader, field: &'static str) -> Result<Option<u64>, DecodeError> {
    let present = input.bool(field)?;
    let value = input.u64(field)?;
    Ok(present.then_some(value))
}

fn write_optional_u64(out: &mut Writer<'_>, value: Option<u64>) {
    out.bool(value.is_some());
    out.u64(value.unwrap_or(0));
}

/// A member's assignment is at most this long: Kafka's assignors write a
/// few bytes per partition, and a frame caps the whole response anyway.
pub const GROUP_ASSIGNMENT_BYTES_MAX: usize = 1024 * 1024;

/// Every group of the broker; the body is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsRequest {}

impl Message for ListGroupsRequest {
    fn encode(&self, _out: &mut Writer<'_>) {}
    fn decode(_input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListGroupsRequest {})
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// Kafka's name of the state: `Empty`, `Stable`, `PreparingRebalance`...
    pub state: String,
    /// `consumer` for Kafka consumers; empty when no member ever joined.
    pub protocol_type: String,
    pub members: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// Sorted by group id.
    pub groups: Vec<GroupListing>,
}

impl Message for ListGroupsResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.list(&self.groups, |out, group| {
            out.string(&group.group);
            out.string(&group.state);
            out.string(&group.protocol_type);
            out.u32(group.members);
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListGroupsResponse {
            groups: input.list("groups", 16, |input| {
                Ok(GroupListing {
                    group: input.string("group")?,
                    state: input.string("state")?,
                    protocol_type: input.string("protocol type")?,
                    members: input.u32("members")?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupRequest {
    pub group: String,
}

impl Message for DescribeGroupRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(&self.group);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeGroupRequest {
            group: input.string("group")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// What the leader assigned, as the group's protocol encodes it (for
    /// `consumer` groups: see [`GroupMemberDescription::consumer_assignment`]).
    pub assignment: Bytes,
}

impl GroupMemberDescription {
    /// The (topic, partitions) of a Kafka consumer's assignment; `None` if
    /// the bytes do not read as one (another protocol type, or none yet).
    pub fn consumer_assignment(&self) -> Option<Vec<(String, Vec<i32>)>> {
        use kafka_protocol::{messages::ConsumerProtocolAssignment, protocol::Decodable};
        let mut bytes = self.assignment.clone();
        if bytes.len() < 2 {
            return None;
        }
        let version = bytes::Buf::get_i16(&mut bytes);
        // A newer version starts with the fields of the older ones.
        let assignment =
            ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)).ok()?;
        Some(
            assignment
                .assigned_partitions
                .into_iter()
                .map(|topic| (topic.topic.to_string(), topic.partitions))
                .collect(),
        )
    }
}

/// One committed offset of a group, with its partition's log end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetDescription {
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    /// The partition's log end (its high watermark) when it was described;
    /// `None` when the partition cannot be read (its topic was deleted).
    pub log_end: Option<u64>,
    /// What the committer stored with the offset.
    pub metadata: String,
}

impl GroupOffsetDescription {
    /// Records not yet consumed: log end − committed. Negative when the
    /// committed offset is past the end (the log was truncated after it).
    pub fn lag(&self) -> Option<i64> {
        self.log_end.map(|end| end as i64 - self.committed as i64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupResponse {
    /// `UnknownGroup` when the group has neither members nor offsets.
    pub error: ErrorCode,
    pub message: String,
    pub group: String,
    pub state: String,
    pub protocol_type: String,
    /// The protocol chosen at the last join: the assignor, for consumers.
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<GroupMemberDescription>,
    /// Sorted by topic, then partition.
    pub offsets: Vec<GroupOffsetDescription>,
}

impl Message for DescribeGroupResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.u16(self.error as u16);
        out.string(&self.message);
        out.string(&self.group);
        out.string(&self.state);
        out.string(&self.protocol_type);
        out.string(&self.protocol);
        // The bits of the i32, which the decoder takes back as they are.
        out.u32(self.generation as u32);
        out.list(&self.members, |out, member| {
            out.string(&member.member_id);
            write_optional_string(out, member.instance_id.as_deref());
            out.string(&member.client_id);
            out.string(&member.client_host);
            out.bytes(&member.assignment);
        });
        out.list(&self.offsets, |out, offset| {
            out.string(&offset.topic);
            out.u32(offset.partition);
            out.u64(offset.committed);
            write_optional_u64(out, offset.log_end);
            out.string(&offset.metadata);
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeGroupResponse {
            error: error_code(input)?,
            message: input.string("message")?,
            group: input.string("group")?,
            state: input.string("state")?,
            protocol_type: input.string("protocol type")?,
            protocol: input.string("protocol")?,
            generation: input.u32("generation")? as i32,
            members: input.list("members", 21, |input| {
                Ok(GroupMemberDescription {
                    member_id: input.string("member id")?,
                    instance_id: optional_string(input, "instance id")?,
                    client_id: input.string("client id")?,
                    client_host: input.string("client host")?,
                    assignment: input.bytes("assignment", GROUP_ASSIGNMENT_BYTES_MAX)?,
                })
            })?,
            offsets: input.list("offsets", 29, |input| {
                Ok(GroupOffsetDescription {
                    topic: input.string("topic")?,
                    partition: input.u32("partition")?,
                    committed: input.u64("committed")?,
                    log_end: optional_u64(input, "log end")?,
                    metadata: input.string("offset metadata")?,
                })
            })?,
        })
    }
}

/// Where a reset moves a group's committed offsets, in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start.
    Earliest,
    /// The log end: nothing left to read.
    Latest,
    /// This offset, brought into [log start, log end] as Kafka's tool does.
    Offset(u64),
    /// The first record with a timestamp at or after this (ms since
    /// epoch); the log end when every record is older.
    Timestamp(i64),
}

impl ResetTo {
    fn encode(self, out: &mut Writer<'_>) {
        let (tag, value) = match self {
            ResetTo::Earliest => (0, 0),
            ResetTo::Latest => (1, 0),
            ResetTo::Offset(offset) => (2, offset as i64),
            ResetTo::Timestamp(timestamp) => (3, timestamp),
        };
        out.u8(tag);
        out.i64(value);
    }
    fn decode(input: &mut Reader) -> Result<ResetTo, DecodeError> {
        let tag = input.u8("reset to")?;
        let value = input.i64("reset value")?;
        match tag {
            0 => Ok(ResetTo::Earliest),
            1 => Ok(ResetTo::Latest),
            2 if value >= 0 => Ok(ResetTo::Offset(value as u64)),
            3 if value >= 0 => Ok(ResetTo::Timestamp(value)),
            2 | 3 => Err(DecodeError::InvalidValue {
                field: "reset value",
                value,
            }),
            tag => Err(DecodeError::InvalidValue {
                field: "reset to",
                value: i64::from(tag),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetGroupOffsetsRequest {
    pub group: String,
    pub topic: String,
    /// Empty: every partition of the topic.
    pub partitions: Vec<u32>,
    pub to: ResetTo,
    /// Work out the new offsets and answer them, but commit nothing.
    pub dry_run: bool,
}

impl Message for ResetGroupOffsetsRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(&self.group);
        out.string(&self.topic);
        out.list(&self.partitions, |out, partition| out.u32(*partition));
        self.to.encode(out);
        out.bool(self.dry_run);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ResetGroupOffsetsRequest {
            group: input.string("group")?,
            topic: input.string("topic")?,
            partitions: input.list("partitions", 4, |input| input.u32("partition"))?,
            to: ResetTo::decode(input)?,
            dry_run: input.bool("dry run")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPartition {
    pub partition: u32,
    /// The offset committed before; `None` when there was none.
    pub previous: Option<u64>,
    pub offset: u64,
}

/// All partitions reset, or none: an error leaves every offset as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetGroupOffsetsResponse {
    /// `GroupNotEmpty` while the group has members.
    pub error: ErrorCode,
    pub message: String,
    /// In partition order.
    pub partitions: Vec<ResetPartition>,
}

impl Message for ResetGroupOffsetsResponse {
    fn encode(&self, out: &mut Writer<'_>) {
        out.u16(self.error as u16);
        out.string(&self.message);
        out.list(&self.partitions, |out, reset| {
            out.u32(reset.partition);
            write_optional_u64(out, reset.previous);
            out.u64(reset.offset);
        });
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ResetGroupOffsetsResponse {
            error: error_code(input)?,
            message: input.string("message")?,
            partitions: input.list("partitions", 21, |input| {
                Ok(ResetPartition {
                    partition: input.u32("partition")?,
                    previous: optional_u64(input, "previous offset")?,
                    offset: input.u64("offset")?,
                })
            })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupRequest {
    pub group: String,
}

impl Message for DeleteGroupRequest {
    fn encode(&self, out: &mut Writer<'_>) {
        out.string(&self.group);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteGroupRequest {
            group: input.string("group")?,
        })
    }
}

/// The outcome of an operation on one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResult {
    pub error: ErrorCode,
    pub message: String,
}

impl Message for GroupResult {
    fn encode(&self, out: &mut Writer<'_>) {
        out.u16(self.error as u16);
        out.string(&self.message);
    }
    fn decode(input: &mut Reader) -> Result<Self, DecodeError> {
        Ok(GroupResult {
            error: error_code(input)?,
            message: input.string("message")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;

    /// Encodes, decodes, and checks the message came back whole; and that
    /// every cut of its bytes is an error, not a panic or a wrong message.
    fn round_trip<M: Message + PartialEq + Debug>(message: &M) {
        let bytes = message.to_bytes().freeze();
        let decoded = M::from_bytes(bytes.clone()).expect("decodes");
        assert_eq!(&decoded, message);
        for cut in 0..bytes.len() {
            assert!(
                M::from_bytes(bytes.slice(..cut)).is_err(),
                "{cut} of {} bytes decoded",
                bytes.len()
            );
        }
        let mut longer = BytesMut::from(&bytes[..]);
        longer.extend_from_slice(&[0]);
        assert!(M::from_bytes(longer.freeze()).is_err(), "a trailing byte");
    }

    fn consumer_assignment(topics: &[(&str, &[i32])]) -> Bytes {
        use kafka_protocol::{
            messages::{consumer_protocol_assignment::TopicPartition, ConsumerProtocolAssignment},
            protocol::{Encodable, StrBytes},
        };
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    TopicPartition::default()
                        .with_topic(StrBytes::from_string(topic.to_string()).into())
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        );
        let mut out = BytesMut::new();
        out.extend_from_slice(&1i16.to_be_bytes());
        assignment.encode(&mut out, 1).unwrap();
        out.freeze()
    }

    #[test]
    fn group_requests_round_trip() {
        round_trip(&ListGroupsRequest {});
        round_trip(&DescribeGroupRequest {
            group: "payments".to_string(),
        });
        round_trip(&DeleteGroupRequest {
            group: "ünïcödé group".to_string(),
        });
        for to in [
            ResetTo::Earliest,
            ResetTo::Latest,
            ResetTo::Offset(42),
            ResetTo::Timestamp(1_700_000_000_000),
        ] {
            round_trip(&ResetGroupOffsetsRequest {
                group: "g".to_string(),
                topic: "orders".to_string(),
                partitions: vec![0, 3],
                to,
                dry_run: to == ResetTo::Latest,
            });
        }
    }

    #[test]
    fn group_responses_round_trip() {
        round_trip(&ListGroupsResponse {
            groups: vec![
                GroupListing {
                    group: "a".to_string(),
                    state: "Empty".to_string(),
                    protocol_type: String::new(),
                    members: 0,
                },
                GroupListing {
                    group: "b".to_string(),
                    state: "Stable".to_string(),
                    protocol_type: "consumer".to_string(),
                    members: 3,
                },
            ],
        });
        round_trip(&DescribeGroupResponse {
            error: ErrorCode::None,
            message: String::new(),
            group: "g".to_string(),
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            generation: 7,
            members: vec![
                GroupMemberDescription {
                    member_id: "c-1".to_string(),
                    instance_id: Some("i-1".to_string()),
                    client_id: "c".to_string(),
                    client_host: "/127.0.0.1".to_string(),
                    assignment: consumer_assignment(&[("orders", &[0, 2])]),
                },
                GroupMemberDescription {
                    member_id: "c-2".to_string(),
                    instance_id: None,
                    client_id: "c".to_string(),
                    client_host: "/127.0.0.1".to_string(),
                    assignment: Bytes::new(),
                },
            ],
            offsets: vec![
                GroupOffsetDescription {
                    topic: "orders".to_string(),
                    partition: 0,
                    committed: 5,
                    log_end: Some(9),
                    metadata: "m".to_string(),
                },
                GroupOffsetDescription {
                    topic: "gone".to_string(),
                    partition: 1,
                    committed: 5,
                    log_end: None,
                    metadata: String::new(),
                },
            ],
        });
        round_trip(&DescribeGroupResponse {
            error: ErrorCode::UnknownGroup,
            message: "no group g".to_string(),
            group: "g".to_string(),
            state: String::new(),
            protocol_type: String::new(),
            protocol: String::new(),
            generation: -1,
            members: Vec::new(),
            offsets: Vec::new(),
        });
        round_trip(&ResetGroupOffsetsResponse {
            error: ErrorCode::None,
            message: String::new(),
            partitions: vec![
                ResetPartition {
                    partition: 0,
                    previous: Some(3),
                    offset: 0,
                },
                ResetPartition {
                    partition: 1,
                    previous: None,
                    offset: 12,
                },
            ],
        });
        round_trip(&GroupResult {
            error: ErrorCode::GroupNotEmpty,
            message: "the group has members".to_string(),
        });
    }

    #[test]
    fn a_reset_to_a_negative_offset_or_an_unknown_kind_does_not_decode() {
        let request = |tag: u8, value: i64| {
            let mut out = BytesMut::new();
            let mut writer = Writer::new(&mut out);
            writer.string("g");
            writer.string("t");
            writer.list(&[] as &[u32], |out, partition| out.u32(*partition));
            writer.u8(tag);
            writer.i64(value);
            writer.bool(false);
            ResetGroupOffsetsRequest::from_bytes(out.freeze())
        };
        assert!(request(2, 5).is_ok());
        assert!(request(2, -1).is_err());
        assert!(request(3, -5).is_err());
        assert!(request(4, 0).is_err());
    }

    #[test]
    fn lag_is_log_end_minus_committed() {
        let offset = |committed, log_end| GroupOffsetDescription {
            topic: "t".to_string(),
            partition: 0,
            committed,
            log_end,
            metadata: String::new(),
        };
        assert_eq!(offset(3, Some(10)).lag(), Some(7));
        assert_eq!(offset(10, Some(10)).lag(), Some(0));
        assert_eq!(offset(12, Some(10)).lag(), Some(-2));
        assert_eq!(offset(3, None).lag(), None);
    }

    #[test]
    fn a_consumer_assignment_reads_as_topic_partitions() {
        let member = |assignment| GroupMemberDescription {
            member_id: "m".to_string(),
            instance_id: None,
            client_id: "c".to_string(),
            client_host: "h".to_string(),
            assignment,
        };
        assert_eq!(
            member(consumer_assignment(&[("a", &[0, 1]), ("b", &[4])])).consumer_assignment(),
            Some(vec![
                ("a".to_string(), vec![0, 1]),
                ("b".to_string(), vec![4])
            ])
        );
        assert_eq!(member(Bytes::new()).consumer_assignment(), None);
        assert_eq!(
            member(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).consumer_assignment(),
            None
        );
    }
}
