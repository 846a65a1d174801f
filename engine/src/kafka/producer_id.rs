//! InitProducerId for idempotent producers: a producer id never handed out
//! before (from this shard's block, a new block from the controller when it
//! runs out), epoch 0; or, for a producer that gives its id and epoch back
//! (KIP-360), the same id with the next epoch. A transactional id's is its
//! coordinator's ([`super::transactions::init_producer_id`]).

use std::rc::Rc;

use futures_channel::oneshot;
use kafka_protocol::{
    error::ResponseError,
    messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId},
};

use super::failure_code;
use crate::{
    controller::{to_controller, ControllerOp},
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        return super::transactions::init_producer_id(shard, request, version).await;
    }
    let response = InitProducerIdResponse::default();
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch + 1);
    }
    match next_id(shard).await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(code) => response
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

async fn next_id(shard: &Rc<Shard>) -> Result<i64, i16> {
    loop {
        ensure_ids(shard).await?;
        if let Some(id) = shard.producer_ids.borrow_mut().next() {
            return Ok(id);
        }
    }
}

/// Makes sure this shard has a producer id to hand out: a new block from
/// the controller if its own is used up.
pub(crate) async fn ensure_ids(shard: &Rc<Shard>) -> Result<(), i16> {
    while shard.producer_ids.borrow().is_empty() {
        let (reply, answer) = oneshot::channel();
        to_controller(shard, ControllerOp::AllocateProducerIds { reply }).await;
        let block = answer
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable.code())?
            .map_err(|failure| failure_code(&failure))?;
        let mut ids = shard.producer_ids.borrow_mut();
        // Another request may have fetched a block meanwhile: keep the
        // newer, lose nothing that matters (ids are plentiful).
        if ids.is_empty() {
            *ids = block.ids();
        }
    }
    Ok(())
}
