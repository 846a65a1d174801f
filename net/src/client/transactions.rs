//! Transactions, for an operator: list the transactional ids of the
//! cluster, describe one, abort its ongoing transaction; abort a
//! transaction hanging on one partition.
//!
//! Each node answers only for the ids it coordinates, as Kafka's brokers
//! do, so the client does what Kafka's admin client does: a listing asks
//! every alive node and joins the answers, and a describe or an abort
//! asks the connected node which node coordinates the id
//! (FindTxnCoordinator) and sends the request there. A node that answers
//! `NotCoordinator` (the id's partition moved meanwhile) or
//! `CoordinatorNotAvailable` (it is loading) is asked again after a new
//! look-up, at most [`LEADER_RETRIES_MAX`] times with the same backoff as
//! partition requests.

use std::{future::Future, rc::Rc};

use super::{
    call_on,
    connection::Connection,
    routing::{backoff, is_unreachable, join_all},
    Client, ClientError, LEADER_RETRIES_MAX,
};
use crate::native::{
    messages::{
        AbortPartitionTransactionRequest, AbortTransactionRequest, ApiKey,
        DescribeTransactionRequest, DescribeTransactionResponse, FindTxnCoordinatorRequest,
        FindTxnCoordinatorResponse, ListTransactionsRequest, ListTransactionsResponse,
        TransactionListing, TransactionResult,
    },
    ErrorCode,
};

/// The transactional ids of a cluster, as every node listed its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionList {
    /// Sorted by transactional id.
    pub transactions: Vec<TransactionListing>,
    /// The nodes whose listing was cut at
    /// [`TRANSACTIONS_LISTED_BYTES_MAX`](crate::native::messages::TRANSACTIONS_LISTED_BYTES_MAX):
    /// more of their ids pass the filter than are listed.
    pub truncated: Vec<u32>,
}

/// Whether a transaction request refused with `error` may be sent again
/// unchanged: it was refused unread, by a node that does not (or not yet)
/// coordinate the id, or while another change of the id was in flight.
fn is_txn_retriable(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::ConcurrentTransactions
        )
    )
}

/// The broker's message, or the id's name when it gave none.
fn txn_message(transactional_id: &str, message: &str) -> String {
    if message.is_empty() {
        format!("transactional id {transactional_id}")
    } else {
        message.to_string()
    }
}

fn result_of(result: TransactionResult, what: &str) -> Result<(), ClientError> {
    match result.error {
        ErrorCode::None => Ok(()),
        code => Err(ClientError::broker(
            code,
            txn_message(what, &result.message),
        )),
    }
}

impl Client {
    /// The node that coordinates `transactional_id`, as the connected node
    /// knows it.
    pub async fn find_txn_coordinator(&self, transactional_id: &str) -> Result<u32, ClientError> {
        let request = FindTxnCoordinatorRequest {
            transactional_id: transactional_id.to_string(),
        };
        let response: FindTxnCoordinatorResponse =
            self.request(ApiKey::FindTxnCoordinator, &request).await?;
        match response.error {
            ErrorCode::None => Ok(response.node),
            code => Err(ClientError::broker(
                code,
                txn_message(transactional_id, &response.message),
            )),
        }
    }

    /// Every transactional id of the cluster that passes `filter`, each
    /// with the node that coordinates it: every alive node is asked for
    /// its own (at once), and a node that cannot answer fails the call.
    pub async fn list_transactions(
        &self,
        filter: ListTransactionsRequest,
    ) -> Result<TransactionList, ClientError> {
        let nodes = self.alive_nodes().await?;
        let filter = Rc::new(filter);
        let answers = join_all(nodes.into_iter().map(|node| {
            let client = self.clone();
            let filter = filter.clone();
            async move {
                let answer = client.list_transactions_of(node, &filter).await;
                (node, answer)
            }
        }))
        .await;
        let mut listed = TransactionList {
            transactions: Vec::new(),
            truncated: Vec::new(),
        };
        for (node, answer) in answers {
            let response = answer.map_err(|error| match error {
                ClientError::Broker { code, message } => {
                    ClientError::broker(code, format!("node {node}: {message}"))
                }
                error => error,
            })?;
            listed.transactions.extend(response.transactions);
            if response.truncated {
                listed.truncated.push(node);
            }
        }
        listed
            .transactions
            .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    /// One node's listing, asked again while it cannot answer (a read:
    /// asking twice changes nothing).
    async fn list_transactions_of(
        &self,
        node: u32,
        filter: &ListTransactionsRequest,
    ) -> Result<ListTransactionsResponse, ClientError> {
        let mut tries = 0;
        loop {
            let answer = match self.connection_to(node).await {
                Ok(connection) => call_on::<ListTransactionsResponse>(
                    &connection,
                    ApiKey::ListTransactions,
                    filter,
                    self.options.request_timeout,
                )
                .await
                .and_then(|response| match response.error {
                    ErrorCode::None => Ok(response),
                    code => Err(ClientError::broker(code, response.message)),
                }),
                Err(error) => Err(error),
            };
            match answer {
                Err(error)
                    if (is_unreachable(&error) || is_txn_retriable(&error))
                        && tries < LEADER_RETRIES_MAX =>
                {
                    if is_unreachable(&error) {
                        self.forget_node(node);
                    }
                    tracing::debug!(node, %error, tries, "listing transactions again");
                    backoff(tries).await;
                    tries += 1;
                }
                answer => return answer,
            }
        }
    }

    /// The state, producer, timeout, start time and partitions of
    /// `transactional_id`, from its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<DescribeTransactionResponse, ClientError> {
        let request = DescribeTransactionRequest {
            transactional_id: transactional_id.to_string(),
        };
        self.on_txn_coordinator(transactional_id, true, |connection| {
            let request = request.clone();
            let timeout = self.options.request_timeout;
            async move {
                let response: DescribeTransactionResponse =
                    call_on(&connection, ApiKey::DescribeTransaction, &request, timeout).await?;
                match response.error {
                    ErrorCode::None => Ok(response),
                    code => Err(ClientError::broker(
                        code,
                        txn_message(&request.transactional_id, &response.message),
                    )),
                }
            }
        })
        .await
    }

    /// Aborts the ongoing transaction of `transactional_id` on its
    /// coordinator, fencing its producer; answers the coordinator's node
    /// once the abort is decided (its markers follow).
    /// `InvalidTxnState` when no transaction is ongoing.
    pub async fn abort_transaction(&self, transactional_id: &str) -> Result<u32, ClientError> {
        let request = AbortTransactionRequest {
            transactional_id: transactional_id.to_string(),
        };
        self.on_txn_coordinator(transactional_id, false, |connection| {
            let request = request.clone();
            let timeout = self.options.request_timeout;
            async move {
                let node = connection.identity().broker_id;
                let result: TransactionResult =
                    call_on(&connection, ApiKey::AbortTransaction, &request, timeout).await?;
                result_of(result, &request.transactional_id).map(|()| node)
            }
        })
        .await
    }

    /// Writes an abort marker of `request`'s producer on its partition,
    /// on the partition's leader: for a transaction left open there that
    /// no coordinator will end. Answers the leader's node.
    pub async fn abort_partition_transaction(
        &self,
        request: AbortPartitionTransactionRequest,
    ) -> Result<u32, ClientError> {
        let what = format!(
            "producer {} on {}/{}",
            request.producer_id, request.topic, request.partition
        );
        let timeout = self.options.request_timeout;
        // A marker whose answer was lost is not written again: its outcome
        // is unknown, and the operator can look before asking again.
        self.on_leader(
            &request.topic,
            request.partition,
            false,
            |connection: Rc<Connection>| {
                let (request, what) = (request.clone(), what.clone());
                async move {
                    let node = connection.identity().broker_id;
                    let result: TransactionResult = call_on(
                        &connection,
                        ApiKey::AbortPartitionTransaction,
                        &request,
                        timeout,
                    )
                    .await?;
                    result_of(result, &what).map(|()| node)
                }
            },
        )
        .await
    }

    /// Sends a request about `transactional_id` with `call` to the node
    /// that coordinates it, and again after a new look-up when that node
    /// refused it unread (see the module documentation). With
    /// `resend_unknown` false, a request whose connection failed after it
    /// was sent is not resent: its outcome is unknown.
    async fn on_txn_coordinator<T, F, Fut>(
        &self,
        transactional_id: &str,
        resend_unknown: bool,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Rc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut tries = 0;
        loop {
            let error = match self.find_txn_coordinator(transactional_id).await {
                Err(error) if is_txn_retriable(&error) => error,
                Err(error) => return Err(error),
                Ok(node) => match self.connection_to(node).await {
                    Err(error) => {
                        // Nothing was sent.
                        self.forget_node(node);
                        error
                    }
                    Ok(connection) => match call(connection).await {
                        Err(error) if is_txn_retriable(&error) => error,
                        Err(error) if resend_unknown && is_unreachable(&error) => {
                            self.forget_node(node);
                            error
                        }
                        result => return result,
                    },
                },
            };
            if tries >= LEADER_RETRIES_MAX {
                return Err(error);
            }
            tracing::debug!(transactional_id, %error, tries, "following the coordinator");
            backoff(tries).await;
            tries += 1;
        }
    }
}
