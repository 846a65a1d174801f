//! Produce and fetch requests as they are, for callers that build their own
//! (the bench), and [`Client::produce_batch`] for one ready batch, sent to
//! its partition's leader.

use std::time::Duration;

use sluice_storage::batch::Batch;

use super::{
    admin::partition_message, call_on, connection::Connection, Client, ClientError, ProtocolError,
};
use crate::native::messages::{
    Acks, ApiKey, FetchRequest, FetchResponse, ProducePartition, ProduceRequest, ProduceResponse,
    ProduceTopic,
};

impl Client {
    /// Appends one batch to a partition, on the partition's leader. Returns
    /// the offset the broker gave the batch's first record, or `None` with
    /// [`Acks::None`], where the broker sends no answer and the call is
    /// done once the request is written.
    ///
    /// The batch is sent again (to the leader the connected node names, at
    /// most [`LEADER_RETRIES_MAX`](super::LEADER_RETRIES_MAX) times) only
    /// when it surely was not stored: the answer was `NotLeader`, or the
    /// leader's connection could not be opened. A batch whose connection
    /// failed or timed out after it was sent is not sent again: it may have
    /// been stored, and this client is not an idempotent producer, so a
    /// resend could store it twice. With [`Acks::None`] a refusal is never
    /// heard, so before its first such batch to a topic the client asks
    /// where the topic's partitions live.
    pub async fn produce_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: Batch,
        acks: Acks,
    ) -> Result<Option<u64>, ClientError> {
        if acks == Acks::None && !self.knows_leaders(topic) {
            self.refresh_leaders(topic).await;
        }
        let batch = batch.into_bytes();
        self.on_leader(topic, partition, false, |connection| {
            let request = ProduceRequest {
                acks,
                timeout_ms: duration_ms(self.options.request_timeout),
                topics: vec![ProduceTopic {
                    name: topic.to_string(),
                    partitions: vec![ProducePartition {
                        partition,
                        batch: batch.clone(),
                    }],
                }],
            };
            async move {
                let Some(response) = self.produce_on(&connection, &request).await? else {
                    return Ok(None);
                };
                let answer = response
                    .topics
                    .iter()
                    .find(|answer| answer.name == topic)
                    .and_then(|answer| {
                        answer
                            .partitions
                            .iter()
                            .find(|answer| answer.partition == partition)
                    })
                    .ok_or_else(|| {
                        ClientError::Protocol(ProtocolError::Unexpected(format!(
                            "the produce response does not mention {topic}/{partition}"
                        )))
                    })?;
                if !answer.error.is_ok() {
                    return Err(ClientError::broker(
                        answer.error,
                        partition_message(topic, partition, &answer.message),
                    ));
                }
                Ok(Some(answer.base_offset))
            }
        })
        .await
    }

    /// Sends a produce request as it is, to the connected node (a request
    /// for partitions led elsewhere gets their `NotLeader` errors). With
    /// [`Acks::None`] the broker does not answer and this returns `None`
    /// once the request is written; otherwise the response, whose
    /// per-partition errors are the caller's to read.
    pub async fn produce(
        &self,
        request: &ProduceRequest,
    ) -> Result<Option<ProduceResponse>, ClientError> {
        self.produce_on(&self.connection, request).await
    }

    async fn produce_on(
        &self,
        connection: &Connection,
        request: &ProduceRequest,
    ) -> Result<Option<ProduceResponse>, ClientError> {
        if request.acks == Acks::None {
            connection
                .call(
                    ApiKey::Produce,
                    request,
                    false,
                    self.options.request_timeout,
                )
                .await?;
            return Ok(None);
        }
        let timeout =
            self.options.request_timeout + Duration::from_millis(u64::from(request.timeout_ms));
        let response = call_on(connection, ApiKey::Produce, request, timeout).await?;
        Ok(Some(response))
    }

    /// Sends a fetch request as it is, to the connected node; the
    /// per-partition errors (`NotLeader` for partitions led elsewhere) are
    /// the caller's to read. Waits up to the request's `max_wait_ms` beyond
    /// the usual request timeout.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, ClientError> {
        self.fetch_on(&self.connection, request).await
    }

    /// A fetch on `connection`, its answer read in the layout of the
    /// version it speaks.
    pub(crate) async fn fetch_on(
        &self,
        connection: &Connection,
        request: &FetchRequest,
    ) -> Result<FetchResponse, ClientError> {
        let timeout =
            self.options.request_timeout + Duration::from_millis(u64::from(request.max_wait_ms));
        let version = connection.version(ApiKey::Fetch);
        let bytes = connection
            .call(ApiKey::Fetch, request, true, timeout)
            .await?;
        Ok(FetchResponse::from_version_bytes(version, bytes)?)
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
