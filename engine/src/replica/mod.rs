//! Partition replication on a node: each shard drives the replication
//! crate's state machines (`sluice_replication::partition`) for the
//! replicated partitions it owns, with its logs and its peer connections.
//! Nothing here decides anything the crate decides; this is the I/O.
//!
//! - `roles.rs`: every metadata change sets each partition's role on
//!   this node from its controller record: leader (a [`LeaderState`] and
//!   its [`Pushes`]), follower (a [`FollowerState`]), or neither.
//! - `lead.rs`: a leader's rounds. After an append (woken by it) or a
//!   tick, each leader reads what each follower lacks from its log (the
//!   stored batches, as they are) and every push for one (node, shard)
//!   goes in one frame; acknowledgements move the high watermark, which
//!   caps what the log shows readers and answers `acks=all` writes; the
//!   in-sync set changes go to the controller.
//! - `follow.rs`: a follower reconciles by epoch (asks where its epoch
//!   ends, truncates), appends what is pushed as its leader wrote it, and
//!   acknowledges what it has stored.
//!
//! - `reads.rs`: which replica serves a consumer's read (KIP-392): a
//!   follower in sync, up to its high watermark, and the follower in the
//!   consumer's rack that a leader names instead of reading.
//! - `figures.rs`: what `/metrics` shows of it: each follower's lag as its
//!   leader sees it, and counters of in-sync changes and leaderships.
//!
//! A partition of one replica has no role: its log shows readers all it
//! has stored, as on a single node.

pub(crate) mod figures;
mod follow;
mod lead;
pub(crate) mod reads;
pub(crate) mod roles;
pub(crate) mod state;
mod throttle;

use std::rc::Rc;

use bytes::Bytes;
use sluice_replication::partition::{
    epochs::EpochCache,
    wire::{self, Frame, PartitionRef},
};
use sluice_storage::{log::Log, TopicId};
use state::{Following, Role};

use crate::{
    cluster_metadata::image::node,
    partition::ops::PartitionKey,
    peer::{MessageKind, PeerNetwork},
    shard::Shard,
};

fn key_of(partition: PartitionRef) -> PartitionKey {
    PartitionKey::new(TopicId(partition.topic_id), partition.partition)
}

/// Runs the shard's replication until the shard stops (the task is
/// dropped): the leaders' rounds, and the frames peers send.
pub async fn run(shard: Rc<Shard>) {
    if shard.id != 0 {
        let place = crate::peer::Place {
            node: shard.config.node_id,
            shard: shard.id as u32,
            shard_count: shard.shard_count() as u32,
        };
        let network = PeerNetwork::start_on_shard(
            place,
            shard.cluster_id.clone(),
            None,
            shard.replicas.inbox(),
            None,
            shard.peer_tls.get().cloned(),
        );
        shard.replicas.set_network(network);
    }
    let _stop = StopOnDrop(shard.clone());
    let rounds = lead::rounds(shard.clone());
    let frames = serve_frames(shard.clone());
    futures_lite::future::zip(rounds, frames).await;
}

/// Stops a shard's own network when its replication stops (shard 0's is
/// the controller's, stopped with it).
struct StopOnDrop(Rc<Shard>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.0.id != 0 {
            if let Some(network) = self.0.replicas.network.borrow().as_ref() {
                network.stop();
            }
        }
    }
}

/// Takes the frames peers send this shard, one at a time, in order.
async fn serve_frames(shard: Rc<Shard>) {
    let inbox = shard.replicas.inbox.1.clone();
    while let Ok(message) = inbox.recv().await {
        if message.kind == MessageKind::Transaction {
            crate::txn::peer::on_message(&shard, message);
            continue;
        }
        if message.kind != MessageKind::Replication {
            tracing::warn!(from = %message.from, kind = ?message.kind, shard = shard.id, "a peer message this shard does not take; dropped");
            continue;
        }
        let (header, frame) = match wire::decode(message.body) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(from = %message.from, %error, "a replication frame refused");
                continue;
            }
        };
        if header.from_node != node(message.from) {
            tracing::warn!(from = %message.from, claimed = header.from_node, "a replication frame names another sender; refused");
            continue;
        }
        let from = (node(message.from), message.from_shard);
        match frame {
            Frame::Push(pushes) => follow::on_pushes(&shard, from, pushes).await,
            Frame::Ack(acks) => lead::on_acks(&shard, from.0, acks),
            Frame::EpochEnds(asks) => lead::on_asks(&shard, from, asks),
            Frame::EpochEndAnswers(answers) => follow::on_answers(&shard, from, answers),
        }
    }
}

/// Bytes of `batches`, one after another, as stored.
fn concat(batches: &[sluice_storage::batch::Batch]) -> Bytes {
    if let [batch] = batches {
        return batch.as_bytes().clone();
    }
    let mut out = bytes::BytesMut::with_capacity(batches.iter().map(|b| b.len()).sum());
    for batch in batches {
        out.extend_from_slice(batch.as_bytes());
    }
    out.freeze()
}

/// The cache of a log's leader epochs, if they read.
fn epochs(log: &Log) -> Option<EpochCache> {
    crate::partition::owner::epoch_cache(log).ok()
}
