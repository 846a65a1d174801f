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
//! * Produce: [`Client::produce_batch`] sends one ready batch; a
//!   [`Producer`] gathers records into batches per partition (by size and
//!   linger) and tells each record's offset when its batch is stored.
//! * Consume: [`Client::consume`] is a stream of records from one partition,
//!   fetched with long polling; [`Client::consume_partitions`] reads several
//!   partitions of a topic with one fetch each round.
//!
//! What it does not do: reconnect, follow a partition's leader to another
//! broker, or retry a request whose outcome is unknown. A call that fails
//! says why in a [`ClientError`]; a connection that failed stays failed.

mod admin;
mod connection;
mod consumer;
mod error;
mod partitioner;
mod produce;
mod producer;
mod sync;

use std::{rc::Rc, time::Duration};

use bytes::Bytes;

pub use connection::BrokerIdentity;
pub use consumer::{ConsumeOptions, ConsumedRecord, PartitionRange, RecordStream, StartOffset};
pub use error::{ClientError, ProtocolError};
pub use partitioner::partition_for_key;
pub use producer::{Delivery, Producer, ProducerOptions, RecordMetadata};

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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: format!("sluice-client/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            in_flight_max: 128,
        }
    }
}

/// A connection to one broker. See the module documentation.
#[derive(Clone)]
pub struct Client {
    connection: Rc<Connection>,
    options: Rc<ClientOptions>,
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

    /// Sends `body` as an `api` request and decodes the response as `R`.
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
        let bytes = self.connection.call(api, body, true, timeout).await?;
        Ok(R::from_bytes(bytes)?)
    }

    /// Sends a request that has no response; done once it is written.
    pub(crate) async fn send_only(
        &self,
        api: ApiKey,
        body: &impl Message,
    ) -> Result<Bytes, ClientError> {
        self.connection
            .call(api, body, false, self.options.request_timeout)
            .await
    }
}

#[cfg(test)]
mod tests;
