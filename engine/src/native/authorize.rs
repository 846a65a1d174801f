//! What each native API needs the authorizer to allow: the operations the
//! Kafka API of the same purpose needs (see `kafka/authorize.rs`). The
//! native protocol has no SASL: its requests come from the client
//! certificate's subject over mutual TLS, else from `User:ANONYMOUS` at
//! the client's address, so without mutual TLS a native client may do what
//! the ACLs grant `User:ANONYMOUS` (or `User:*`), and nothing else.
//!
//! A native request is refused whole when one resource it names is not
//! allowed: AUTHORIZATION_FAILED, with the operation and the resource in
//! the message. Listings (Metadata of every topic, ListGroups,
//! ListTransactions) leave out what the requester may not describe.

use sluice_net::native::messages as m;

use crate::{
    acl::{Operation, ResourceType, CLUSTER_NAME},
    authorization::{Access, Decider},
};

/// Why a request is refused, for the client.
fn refusal(access: &Access, operation: Operation, kind: ResourceType, name: &str) -> String {
    format!(
        "{} may not {operation:?} {kind:?} {name}",
        access.requester.principal
    )
}

fn need(
    access: &Access,
    operation: Operation,
    kind: ResourceType,
    name: &str,
) -> Result<(), String> {
    if access.allows(operation, kind, name) {
        Ok(())
    } else {
        Err(refusal(access, operation, kind, name))
    }
}

fn topics<'a>(
    access: &Access,
    operation: Operation,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    names
        .into_iter()
        .try_for_each(|name| need(access, operation, ResourceType::Topic, name))
}

fn cluster(access: &Access, operation: Operation) -> Result<(), String> {
    need(access, operation, ResourceType::Cluster, CLUSTER_NAME)
}

/// A native request the authorizer checks before its handler serves it.
pub trait Guarded {
    /// `Err` with the refusal's message when something it names is not
    /// allowed.
    fn guard(&self, access: &Access) -> Result<(), String>;
}

/// Checks `request` when the broker has an authorizer.
pub fn check(access: &Access, request: &impl Guarded) -> Result<(), String> {
    if !access.enabled() {
        return Ok(());
    }
    request.guard(access)
}

macro_rules! guarded {
    ($request:ty, |$self:ident, $access:ident| $needs:expr) => {
        impl Guarded for $request {
            fn guard(&$self, $access: &Access) -> Result<(), String> {
                $needs
            }
        }
    };
}

guarded!(m::ApiVersionsRequest, |self, _access| Ok(()));
guarded!(m::DescribeClusterRequest, |self, _access| Ok(()));
// Listings: filtered once answered.
guarded!(m::ListGroupsRequest, |self, _access| Ok(()));
guarded!(m::ListTransactionsRequest, |self, _access| Ok(()));
guarded!(m::MetadataRequest, |self, access| topics(
    access,
    Operation::Describe,
    self.topics.iter().flatten()
));
guarded!(m::CreateTopicsRequest, |self, access| self
    .topics
    .iter()
    .try_for_each(|topic| {
        if access.may_create(&topic.name) {
            Ok(())
        } else {
            Err(refusal(
                access,
                Operation::Create,
                ResourceType::Topic,
                &topic.name,
            ))
        }
    }));
guarded!(m::DeleteTopicsRequest, |self, access| topics(
    access,
    Operation::Delete,
    &self.names
));
guarded!(m::AlterConfigsRequest, |self, access| need(
    access,
    Operation::AlterConfigs,
    ResourceType::Topic,
    &self.topic
));
guarded!(m::DescribeTopicsRequest, |self, access| topics(
    access,
    Operation::Describe,
    &self.names
));
guarded!(m::ElectLeadersRequest, |self, access| cluster(
    access,
    Operation::Alter
));
guarded!(m::AlterReassignmentsRequest, |self, access| cluster(
    access,
    Operation::Alter
));
guarded!(m::ListReassignmentsRequest, |self, access| cluster(
    access,
    Operation::Describe
));
guarded!(m::ProduceRequest, |self, access| topics(
    access,
    Operation::Write,
    self.topics.iter().map(|topic| &topic.name)
));
guarded!(m::FetchRequest, |self, access| topics(
    access,
    Operation::Read,
    self.topics.iter().map(|topic| &topic.name)
));
guarded!(m::ListOffsetsRequest, |self, access| topics(
    access,
    Operation::Describe,
    self.topics.iter().map(|(name, _)| name)
));
guarded!(m::DescribeGroupRequest, |self, access| need(
    access,
    Operation::Describe,
    ResourceType::Group,
    &self.group
));
guarded!(m::ResetGroupOffsetsRequest, |self, access| {
    need(access, Operation::Read, ResourceType::Group, &self.group)?;
    need(access, Operation::Read, ResourceType::Topic, &self.topic)
});
guarded!(m::DeleteGroupRequest, |self, access| need(
    access,
    Operation::Delete,
    ResourceType::Group,
    &self.group
));
guarded!(m::FindTxnCoordinatorRequest, |self, access| need(
    access,
    Operation::Describe,
    ResourceType::TransactionalId,
    &self.transactional_id
));
guarded!(m::DescribeTransactionRequest, |self, access| need(
    access,
    Operation::Describe,
    ResourceType::TransactionalId,
    &self.transactional_id
));
// Aborting another producer's transaction is an operator's act: ALTER on
// the cluster (Kafka's tool needs CLUSTER_ACTION for its markers).
guarded!(m::AbortTransactionRequest, |self, access| cluster(
    access,
    Operation::Alter
));
guarded!(m::AbortPartitionTransactionRequest, |self, access| cluster(
    access,
    Operation::Alter
));

/// Leaves out of a Metadata answer for every topic the topics the
/// requester may not describe.
pub fn filter_topics(decider: &Decider, response: &mut m::MetadataResponse) {
    response
        .topics
        .retain(|topic| decider.permits(Operation::Describe, ResourceType::Topic, &topic.name));
}

/// Leaves out the groups the requester may not describe, unless it may
/// describe the cluster.
pub fn filter_groups(decider: &Decider, response: &mut m::ListGroupsResponse) {
    if decider.permits(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return;
    }
    response
        .groups
        .retain(|group| decider.permits(Operation::Describe, ResourceType::Group, &group.group));
}

/// Leaves out the transactions whose ids the requester may not describe.
pub fn filter_transactions(decider: &Decider, response: &mut m::ListTransactionsResponse) {
    response.transactions.retain(|transaction| {
        decider.permits(
            Operation::Describe,
            ResourceType::TransactionalId,
            &transaction.transactional_id,
        )
    });
}
