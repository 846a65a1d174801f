//! Consumer groups: the groups Kafka clients form, seen and managed by an
//! operator. List them, describe one (members, committed offsets and lag),
//! reset its offsets while it has no members, delete it.

use bytes::Bytes;

use super::Message;
use crate::native::{
    codec::{DecodeError, Reader, Writer},
    wire::{wire_struct, Capped, Wire},
    ErrorCode,
};

/// A member's assignment is at most this long: Kafka's assignors write a
/// few bytes per partition, and a frame caps the whole response anyway.
pub const GROUP_ASSIGNMENT_BYTES_MAX: usize = 1024 * 1024;

wire_struct! {
    /// Every group of the broker; the body is empty.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ListGroupsRequest {}
}

impl Message for ListGroupsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupListing {
        pub group: String,
        /// Kafka's name of the state: `Empty`, `Stable`, `PreparingRebalance`...
        pub state: String,
        /// `consumer` for Kafka consumers; empty when no member ever joined.
        pub protocol_type: String,
        pub members: u32,
    }
}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListGroupsResponse {
        /// Sorted by group id.
        pub groups: Vec<GroupListing>,
    }
}

impl Message for ListGroupsResponse {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeGroupRequest {
        pub group: String,
    }
}

impl Message for DescribeGroupRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupMemberDescription {
        pub member_id: String,
        /// `group.instance.id` of a static member.
        pub instance_id: Option<String>,
        pub client_id: String,
        pub client_host: String,
        /// What the leader assigned, as the group's protocol encodes it (for
        /// `consumer` groups: see [`GroupMemberDescription::consumer_assignment`]).
        pub assignment: Bytes as Capped<GROUP_ASSIGNMENT_BYTES_MAX>,
    }
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

wire_struct! {
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
        /// The partition's last stable offset (the log end but for open
        /// transactions), `None` with the log end. `None` too from a
        /// broker of version 0. Since version 1.
        pub last_stable: Option<u64>,
    }
}

impl GroupOffsetDescription {
    /// Records not yet consumed: last stable offset − committed, since a
    /// `read_committed` consumer never reads past it (and the broker does
    /// not know the group's isolation); log end − committed from a broker
    /// of version 0, which does not say. Negative when the committed
    /// offset is past it (a transaction is open, or the log was truncated
    /// after the commit).
    pub fn lag(&self) -> Option<i64> {
        self.last_stable
            .or(self.log_end)
            .map(|end| end as i64 - self.committed as i64)
    }
}

wire_struct! {
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
        /// The bits of the i32 on the wire, taken back as they are.
        pub generation: i32,
        pub members: Vec<GroupMemberDescription>,
        /// Sorted by topic, then partition.
        pub offsets: Vec<GroupOffsetDescription>,
    }
}

impl Message for DescribeGroupResponse {}

/// The version of DescribeGroup whose offsets carry their partition's last
/// stable offset.
pub const DESCRIBE_GROUP_STABLE_VERSION: u16 = 1;

impl DescribeGroupResponse {
    /// Reads an answer of `version`; one of version 0 reads with no last
    /// stable offsets.
    pub fn from_version_bytes(
        version: u16,
        bytes: Bytes,
    ) -> Result<DescribeGroupResponse, DecodeError> {
        if version >= DESCRIBE_GROUP_STABLE_VERSION {
            DescribeGroupResponse::from_bytes(bytes)
        } else {
            DescribeGroupResponseV0::from_bytes(bytes).map(DescribeGroupResponse::from)
        }
    }
}

wire_struct! {
    /// A committed offset as version 0 describes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupOffsetDescriptionV0 {
        pub topic: String,
        pub partition: u32,
        pub committed: u64,
        pub log_end: Option<u64>,
        pub metadata: String,
    }
}

wire_struct! {
    /// The answer at version 0.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeGroupResponseV0 {
        pub error: ErrorCode,
        pub message: String,
        pub group: String,
        pub state: String,
        pub protocol_type: String,
        pub protocol: String,
        pub generation: i32,
        pub members: Vec<GroupMemberDescription>,
        pub offsets: Vec<GroupOffsetDescriptionV0>,
    }
}

impl Message for DescribeGroupResponseV0 {}

impl From<DescribeGroupResponse> for DescribeGroupResponseV0 {
    fn from(response: DescribeGroupResponse) -> DescribeGroupResponseV0 {
        DescribeGroupResponseV0 {
            error: response.error,
            message: response.message,
            group: response.group,
            state: response.state,
            protocol_type: response.protocol_type,
            protocol: response.protocol,
            generation: response.generation,
            members: response.members,
            offsets: response
                .offsets
                .into_iter()
                .map(|offset| GroupOffsetDescriptionV0 {
                    topic: offset.topic,
                    partition: offset.partition,
                    committed: offset.committed,
                    log_end: offset.log_end,
                    metadata: offset.metadata,
                })
                .collect(),
        }
    }
}

impl From<DescribeGroupResponseV0> for DescribeGroupResponse {
    fn from(response: DescribeGroupResponseV0) -> DescribeGroupResponse {
        DescribeGroupResponse {
            error: response.error,
            message: response.message,
            group: response.group,
            state: response.state,
            protocol_type: response.protocol_type,
            protocol: response.protocol,
            generation: response.generation,
            members: response.members,
            offsets: response
                .offsets
                .into_iter()
                .map(|offset| GroupOffsetDescription {
                    topic: offset.topic,
                    partition: offset.partition,
                    committed: offset.committed,
                    log_end: offset.log_end,
                    metadata: offset.metadata,
                    last_stable: None,
                })
                .collect(),
        }
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

/// A u8 tag (0 earliest, 1 latest, 2 offset, 3 timestamp), then an i64
/// value, 0 for the tags without one. A negative offset or timestamp is
/// refused.
impl Wire for ResetTo {
    const MIN_BYTES: usize = 9;
    fn encode(&self, out: &mut Writer<'_>) {
        let (tag, value) = match *self {
            ResetTo::Earliest => (0, 0),
            ResetTo::Latest => (1, 0),
            ResetTo::Offset(offset) => (2, offset as i64),
            ResetTo::Timestamp(timestamp) => (3, timestamp),
        };
        out.u8(tag);
        out.i64(value);
    }
    fn decode(input: &mut Reader, field: &'static str) -> Result<ResetTo, DecodeError> {
        let tag = input.u8(field)?;
        let value = input.i64(field)?;
        match tag {
            0 => Ok(ResetTo::Earliest),
            1 => Ok(ResetTo::Latest),
            2 if value >= 0 => Ok(ResetTo::Offset(value as u64)),
            3 if value >= 0 => Ok(ResetTo::Timestamp(value)),
            2 | 3 => Err(DecodeError::InvalidValue { field, value }),
            tag => Err(DecodeError::InvalidValue {
                field,
                value: i64::from(tag),
            }),
        }
    }
}

wire_struct! {
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
}

impl Message for ResetGroupOffsetsRequest {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ResetPartition {
        pub partition: u32,
        /// The offset committed before; `None` when there was none.
        pub previous: Option<u64>,
        pub offset: u64,
    }
}

wire_struct! {
    /// All partitions reset, or none: an error leaves every offset as it was.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ResetGroupOffsetsResponse {
        /// `GroupNotEmpty` while the group has members.
        pub error: ErrorCode,
        pub message: String,
        /// In partition order.
        pub partitions: Vec<ResetPartition>,
    }
}

impl Message for ResetGroupOffsetsResponse {}

wire_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteGroupRequest {
        pub group: String,
    }
}

impl Message for DeleteGroupRequest {}

wire_struct! {
    /// The outcome of an operation on one group.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupResult {
        pub error: ErrorCode,
        pub message: String,
    }
}

impl Message for GroupResult {}
