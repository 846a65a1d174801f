//! Produce and fetch requests as they are, for callers that build their own
//! (the bench), and [`Client::produce_batch`] for one ready batch.

use std::time::Duration;

use sluice_storage::batch::Batch;

use super::{admin::partition_message, Client, ClientError, ProtocolError};
use crate::native::messages::{
    Acks, ApiKey, FetchRequest, FetchResponse, ProducePartition, ProduceRequest, ProduceResponse,
    ProduceTopic,
};

impl Client {
    /// Appends one batch to a partition. Returns the offset the broker gave
    /// the batch's first record, or `None` with [`Acks::None`], where the
    /// broker sends no answer and the call is done once the request is
    /// written.
    pub async fn produce_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: Batch,
        acks: Acks,
    ) -> Result<Option<u64>, ClientError> {
        let request = ProduceRequest {
            acks,
            timeout_ms: duration_ms(self.options.request_timeout),
            topics: vec![ProduceTopic {
                name: topic.to_string(),
                partitions: vec![ProducePartition {
                    partition,
                    batch: batch.into_bytes(),
                }],
            }],
        };
        let Some(response) = self.produce(&request).await? else {
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

    /// Sends a produce request as it is. With [`Acks::None`] the broker
    /// does not answer and this returns `None` once the request is written;
    /// otherwise the response, whose per-partition errors are the caller's
    /// to read.
    pub async fn produce(
        &self,
        request: &ProduceRequest,
    ) -> Result<Option<ProduceResponse>, ClientError> {
        if request.acks == Acks::None {
            self.send_only(ApiKey::Produce, request).await?;
            return Ok(None);
        }
        let timeout =
            self.options.request_timeout + Duration::from_millis(u64::from(request.timeout_ms));
        let response = self
            .request_within(ApiKey::Produce, request, timeout)
            .await?;
        Ok(Some(response))
    }

    /// Sends a fetch request as it is; the per-partition errors are the
    /// caller's to read. Waits up to the request's `max_wait_ms` beyond the
    /// usual request timeout.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, ClientError> {
        let timeout =
            self.options.request_timeout + Duration::from_millis(u64::from(request.max_wait_ms));
        self.request_within(ApiKey::Fetch, request, timeout).await
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
