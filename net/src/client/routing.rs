//! Following partition leaders across the nodes of a cluster.
//!
//! Every partition lives on one node, its leader; a node asked about a
//! partition it does not hold answers `NotLeader`. The client keeps what it
//! learned of the cluster, all on its executor:
//!
//! * each topic's partition leaders, from DescribeTopics (version 1 and
//!   later say where partitions live), asked of the connected node;
//! * each node's native address, from DescribeCluster, asked of the
//!   connected node;
//! * one connection per node, opened when a request first needs it and
//!   kept while it works.
//!
//! A partition request goes to the partition's leader as far as the client
//! knows, and to the connected node when it knows nothing of the topic yet:
//! on a single node (or a broker that does not say where partitions live)
//! that is always right and costs nothing more than before. When the answer
//! is `NotLeader`, or the leader's connection cannot be opened, the client
//! asks again where the partition lives and resends the request, at most
//! [`LEADER_RETRIES_MAX`] times with a backoff that doubles from
//! [`LEADER_BACKOFF`]. Reads (fetch, list offsets, describe) are resent
//! also after their connection failed mid-request, as reading twice changes
//! nothing; a produce only when it surely was not stored (see
//! [`Client::produce_batch`]).

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    future::Future,
    rc::Rc,
    time::Duration,
};

use super::{connection::Connection, Client, ClientError};
use crate::native::{
    messages::{ApiKey, DescribeTopicsRequest, DescribeTopicsResponse, TopicDescription},
    ErrorCode,
};

/// A partition request is resent at most this many times after its
/// partition's leader moved or could not be reached. With the doubling
/// backoff from [`LEADER_BACKOFF`] the tries span about 1.6 s: long enough
/// for a node to learn a just-created topic's metadata, short enough that a
/// partition with no live leader fails soon with a clear error.
pub const LEADER_RETRIES_MAX: u32 = 6;

/// The wait before the first resend; each further one waits twice as long.
pub const LEADER_BACKOFF: Duration = Duration::from_millis(25);

/// What the client learned of the cluster. Lives on the client's executor,
/// shared by its clones.
#[derive(Default)]
pub(crate) struct Routing {
    /// Native `HOST:PORT` of every alive node, by node id.
    addresses: RefCell<HashMap<u32, String>>,
    /// Open connections to nodes other than the connected one, by node id.
    connections: RefCell<HashMap<u32, Rc<Connection>>>,
    /// Each topic's partition leaders, by partition; `None` where the
    /// answering node knew of no live leader.
    leaders: RefCell<HashMap<String, Vec<Option<u32>>>>,
}

/// Whether `error` says the request was sent to a node that does not hold
/// the partition (so it was refused unread).
pub(crate) fn is_not_leader(error: &ClientError) -> bool {
    error.code() == Some(ErrorCode::NotLeader)
}

/// Whether `error` says the node could not be reached or stopped answering:
/// a connection that failed, timed out or was never opened.
pub(crate) fn is_unreachable(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Io(_)
            | ClientError::Closed { .. }
            | ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::UnknownNode { .. }
    )
}

/// Waits before resend number `tries` (from 0).
pub(crate) async fn backoff(tries: u32) {
    glommio::timer::sleep(LEADER_BACKOFF * 2u32.saturating_pow(tries.min(16))).await;
}

/// Runs `futures` at once, each on its own task of this executor, and
/// returns their outputs in order.
pub(crate) async fn join_all<T: 'static>(
    futures: impl IntoIterator<Item = impl Future<Output = T> + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.into_iter().map(glommio::spawn_local).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await);
    }
    outputs
}

impl Client {
    /// The id of the node this client is connected to.
    pub(crate) fn home(&self) -> u32 {
        self.connection.identity().broker_id
    }

    /// The node that leads `partition` of `topic`, as far as this client
    /// knows: the connected node when it knows nothing of it.
    pub fn leader_of(&self, topic: &str, partition: u32) -> u32 {
        self.routing
            .leaders
            .borrow()
            .get(topic)
            .and_then(|leaders| leaders.get(partition as usize).copied().flatten())
            .unwrap_or_else(|| self.home())
    }

    /// Whether the client has learned where `topic`'s partitions live.
    pub(crate) fn knows_leaders(&self, topic: &str) -> bool {
        self.routing.leaders.borrow().contains_key(topic)
    }

    /// Groups `items` by the leader of the partition `partition_of` names.
    pub(crate) fn by_leader<T>(
        &self,
        topic: &str,
        items: impl IntoIterator<Item = T>,
        partition_of: impl Fn(&T) -> u32,
    ) -> BTreeMap<u32, Vec<T>> {
        let mut groups: BTreeMap<u32, Vec<T>> = BTreeMap::new();
        for item in items {
            let leader = self.leader_of(topic, partition_of(&item));
            groups.entry(leader).or_default().push(item);
        }
        groups
    }

    /// A working connection to node `node`: the client's own for the
    /// connected node, else the one opened before, else a new one (asking
    /// the connected node for the node's address if need be).
    pub(crate) async fn connection_to(&self, node: u32) -> Result<Rc<Connection>, ClientError> {
        if node == self.home() {
            return Ok(self.connection.clone());
        }
        if let Some(connection) = self.routing.connections.borrow().get(&node) {
            if !connection.is_failed() {
                return Ok(connection.clone());
            }
        }
        let known = self.routing.addresses.borrow().get(&node).cloned();
        let address = match known {
            Some(address) => address,
            None => {
                self.refresh_nodes().await?;
                let found = self.routing.addresses.borrow().get(&node).cloned();
                found.ok_or(ClientError::UnknownNode { node })?
            }
        };
        let connection = Connection::open(&address, &self.options)
            .await
            .map_err(|error| match error {
                ClientError::Io(error) => ClientError::Connect {
                    brokers: address.clone(),
                    reasons: error.to_string(),
                },
                error => error,
            })?;
        let answered = connection.identity().broker_id;
        if answered != node {
            // The address is stale: another node serves there now.
            self.forget_node(node);
            return Err(ClientError::Connect {
                brokers: address,
                reasons: format!("node {answered} answers there, not node {node}"),
            });
        }
        tracing::debug!(node, address, "connected to a partition leader");
        let connection = Rc::new(connection);
        let mut connections = self.routing.connections.borrow_mut();
        // Another task may have opened one meanwhile: keep a single one.
        match connections.get(&node) {
            Some(open) if !open.is_failed() => Ok(open.clone()),
            _ => {
                connections.insert(node, connection.clone());
                Ok(connection)
            }
        }
    }

    /// Forgets node `node`'s connection and address, after it could not be
    /// reached: the next request asks where it is anew.
    pub(crate) fn forget_node(&self, node: u32) {
        self.routing.connections.borrow_mut().remove(&node);
        self.routing.addresses.borrow_mut().remove(&node);
    }

    /// The ids of every alive node with a native address, as the connected
    /// node knows them (asked anew), in order; the connected node always
    /// among them.
    pub(crate) async fn alive_nodes(&self) -> Result<Vec<u32>, ClientError> {
        self.refresh_nodes().await?;
        let mut nodes: Vec<u32> = self.routing.addresses.borrow().keys().copied().collect();
        nodes.push(self.home());
        nodes.sort_unstable();
        nodes.dedup();
        Ok(nodes)
    }

    /// Asks the connected node for every alive node's native address.
    async fn refresh_nodes(&self) -> Result<(), ClientError> {
        let cluster = self.describe_cluster().await?;
        let mut addresses = self.routing.addresses.borrow_mut();
        addresses.clear();
        for node in cluster.nodes {
            if node.alive && !node.native_addr.is_empty() {
                addresses.insert(node.id, node.native_addr);
            }
        }
        Ok(())
    }

    /// Asks the connected node where `topic`'s partitions live. A failure is
    /// logged and leaves the topic unknown (its requests go to the connected
    /// node, whose answer then says what is wrong).
    pub(crate) async fn refresh_leaders(&self, topic: &str) {
        match self
            .describe_on(&self.connection, &[topic.to_string()])
            .await
        {
            Ok(response) => {
                for description in &response.topics {
                    self.learn_leaders(description);
                }
            }
            Err(error) => {
                tracing::debug!(topic, %error, "could not learn the topic's leaders");
                self.routing.leaders.borrow_mut().remove(topic);
            }
        }
    }

    /// Keeps the leaders a topic description names.
    pub(crate) fn learn_leaders(&self, description: &TopicDescription) {
        if !description.error.is_ok() {
            self.routing.leaders.borrow_mut().remove(&description.name);
            return;
        }
        let count = description
            .partitions
            .iter()
            .map(|partition| partition.partition as usize + 1)
            .max()
            .unwrap_or(0);
        let mut leaders = vec![None; count];
        for partition in &description.partitions {
            leaders[partition.partition as usize] = partition.leader;
        }
        self.routing
            .leaders
            .borrow_mut()
            .insert(description.name.clone(), leaders);
    }

    /// DescribeTopics on `connection`, read in the layout of the version it
    /// speaks.
    pub(crate) async fn describe_on(
        &self,
        connection: &Connection,
        names: &[String],
    ) -> Result<DescribeTopicsResponse, ClientError> {
        let request = DescribeTopicsRequest {
            names: names.to_vec(),
        };
        let version = connection.version(ApiKey::DescribeTopics);
        let bytes = connection
            .call(
                ApiKey::DescribeTopics,
                &request,
                true,
                self.options.request_timeout,
            )
            .await?;
        Ok(DescribeTopicsResponse::from_version_bytes(version, bytes)?)
    }

    /// Sends a request about one partition of `topic` to its leader with
    /// `call`, and again (see the module documentation) when the answer is
    /// `NotLeader` or the leader could not be reached. With `resend_unknown`
    /// false, a request whose connection failed after it was sent is not
    /// resent: its outcome is unknown.
    pub(crate) async fn on_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: u32,
        resend_unknown: bool,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Rc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut tries = 0;
        loop {
            let node = self.leader_of(topic, partition);
            let error = match self.connection_to(node).await {
                Err(error) => {
                    // Nothing was sent.
                    self.forget_node(node);
                    error
                }
                Ok(connection) => match call(connection).await {
                    Err(error) if is_not_leader(&error) => error,
                    Err(error) if resend_unknown && is_unreachable(&error) => {
                        self.forget_node(node);
                        error
                    }
                    result => return result,
                },
            };
            if tries >= LEADER_RETRIES_MAX {
                return Err(error);
            }
            tracing::debug!(topic, partition, node, %error, tries, "following the leader");
            backoff(tries).await;
            tries += 1;
            self.refresh_leaders(topic).await;
        }
    }
}
