//! The native client: what the `sluice` command and the bench use to talk to
//! a broker.
//!
//! A [`Client`] is one connection with many requests in flight; responses
//! may come back in any order and are paired with their requests by
//! correlation id. It lives on one glommio executor (it is `!Send`): a
//! thread-per-core program opens one per thread. Cloning it is cheap and
//! shares the connection.
//!
//! * Admin calls: [`Client::create_topic`], [`Client::delete_topic`],
//!   [`Client::list_topics`], [`Client::describe_topics`],
//!   [`Client::alter_configs`], [`Client::metadata`],
//!   [`Client::list_offset`], [`Client::describe_cluster`].
//! * Consumer groups: [`Client::list_groups`], [`Client::describe_group`],
//!   [`Client::reset_group_offsets`], [`Client::delete_group`].
//! * Transactions: [`Client::list_transactions`] (of every node),
//!   [`Client::describe_transaction`] and [`Client::abort_transaction`]
//!   (on the id's coordinator), [`Client::abort_partition_transaction`]
//!   (on the partition's leader).
//! * Produce: [`Client::produce_batch`] sends one ready batch; a
//!   [`Producer`] gathers records into batches per partition (by size and
//!   linger) and tells each record's offset when its batch is stored.
//! * Consume: [`Client::consume`] is a stream of records from one partition,
//!   fetched with long polling; [`Client::consume_partitions`] reads several
//!   partitions of a topic with one fetch each round.
//!
//! In a cluster, partition requests (produce, fetch, list offsets, a
//! topic's per-partition stats) go to each partition's leader, over one
//! connection per node opened when first needed; a transactional id's
//! requests to the node that coordinates it; admin and group requests go
//! to the connected node, which forwards what needs the controller. A
//! request refused as `NotLeader` is sent again to the leader the connected
//! node names, a bounded number of times (see the `routing` module).
//!
//! What it does not do: reconnect to the node it connected to, or retry a
//! request whose outcome is unknown. A call that fails says why in a
//! [`ClientError`]; the connection to the connected node, once failed,
//! stays failed.

mod admin;
mod connection;
mod consumer;
mod error;
mod partitioner;
mod produce;
mod producer;
mod routing;
mod sync;
mod transactions;

use std::{rc::Rc, time::Duration};

pub use connection::BrokerIdentity;
pub use consumer::{ConsumeOptions, ConsumedRecord, PartitionRange, RecordStream, StartOffset};
pub use error::{ClientError, ProtocolError};
pub use partitioner::partition_for_key;
pub use producer::{Delivery, Producer, ProducerOptions, RecordMetadata};
pub use routing::{LEADER_BACKOFF, LEADER_RETRIES_MAX};
pub use transactions::TransactionList;

pub use crate::native::messages::{Acks, OffsetSpec, ResetTo};

use crate::native::messages::{ApiKey, Message};
use connection::Connection;

/// How a client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent in the handshake; the broker logs it.
    pub client_id: String,
    pub connect_timeout: Duration,
    /// How long a request may wait for its response (a fetch waits its
    /// `max_wait` on top of this).
    pub request_timeout: Duration,
    /// Requests in flight on the connection at once; more wait their turn.
    /// The broker's own cap (`in_flight_per_connection_max`) is 128 by
    /// default: more would only queue there.
    pub in_flight_max: usize,
    /// TLS (a native listener of `SSL://`): every connection, to the
    /// leaders too, is made with this configuration, to a certificate for
    /// the host dialled; `None`: plaintext.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: format!("sluice-client/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            in_flight_max: 128,
            tls: None,
        }
    }
}

/// A connection to one broker, and to the leaders of the partitions it
/// asks about. See the module documentation.
#[derive(Clone)]
pub struct Client {
    /// The connected node: admin requests, and partitions it leads.
    connection: Rc<Connection>,
    options: Rc<ClientOptions>,
    routing: Rc<routing::Routing>,
}

impl Client {
    /// Connects to the first broker of `brokers` (`HOST:PORT[,HOST:PORT]...`)
    /// that answers and speaks a version of every API this client uses.
    /// Must be called inside a glommio executor.
    pub async fn connect(brokers: &str) -> Result<Client, ClientError> {
        Client::connect_with(brokers, ClientOptions::default()).await
    }

    pub async fn connect_with(
        brokers: &str,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let addresses: Vec<&str> = brokers
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .collect();
        if addresses.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "no broker address in {brokers:?}; expected HOST:PORT[,HOST:PORT]"
            )));
        }
        let mut failures = Vec::new();
        for address in &addresses {
            match Connection::open(address, &options).await {
                Ok(connection) => {
                    return Ok(Client {
                        connection: Rc::new(connection),
                        options: Rc::new(options),
                        routing: Rc::default(),
                    })
                }
                Err(error) => {
                    tracing::debug!(address, %error, "could not connect");
                    failures.push((address.to_string(), error));
                }
            }
        }
        if failures.len() == 1 {
            let (address, error) = failures.pop().expect("one failure");
            return Err(match error {
                ClientError::Io(error) => ClientError::Connect {
                    brokers: address,
                    reasons: error.to_string(),
                },
                error => error,
            });
        }
        Err(ClientError::Connect {
            brokers: brokers.to_string(),
            reasons: failures
                .iter()
                .map(|(address, error)| format!("{address}: {error}"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// The broker this client is connected to, as it described itself.
    pub fn broker(&self) -> &BrokerIdentity {
        self.connection.identity()
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Sends `body` as an `api` request to the connected node and decodes
    /// the response as `R`.
    pub async fn request<R: Message>(
        &self,
        api: ApiKey,
        body: &impl Message,
    ) -> Result<R, ClientError> {
        self.request_within(api, body, self.options.request_timeout)
            .await
    }

    pub(crate) async fn request_within<R: Message>(
        &self,
        api: ApiKey,
        body: &impl Message,
        timeout: Duration,
    ) -> Result<R, ClientError> {
        call_on(&self.connection, api, body, timeout).await
    }
}

/// Sends `body` as an `api` request on `connection` and decodes the
/// response as `R`.
pub(crate) async fn call_on<R: Message>(
    connection: &Connection,
    api: ApiKey,
    body: &impl Message,
    timeout: Duration,
) -> Result<R, ClientError> {
    let bytes = connection.call(api, body, true, timeout).await?;
    Ok(R::from_bytes(bytes)?)
}

#[cfg(test)]
mod tests;
