//! Brokers that are not controller voters (observers, as Kafka's KRaft
//! calls them): they follow the metadata log without voting in it.
//!
//! An observer fetches the committed entries after the last one it
//! applied from a voter (the leader when it knows it, else each voter in
//! turn), applies them to its image as a voter does, carries out their
//! effects (its partitions opened and removed), and keeps the image on its
//! disk, so that it starts again from there. A voter answers at once when
//! it has applied entries the observer has not, else holds the fetch for
//! up to [`FETCH_WAIT`] and answers as soon as it applies one: an observer
//! sees a change within a round trip of its voter applying it. A voter
//! keeps the entries it applied lately ([`RECENT_ENTRIES_MAX`](super::state::RECENT_ENTRIES_MAX),
//! [`RECENT_BYTES_MAX`](super::state::RECENT_BYTES_MAX)); an observer further behind gets the voter's
//! whole image (a snapshot) instead. An observer's changes (its
//! registration, topics created through it) are forwarded to the leader,
//! as a follower voter's are.
//!
//! On the wire (see `cluster` for the framing), a fetch is controller
//! request 3: `i32` node, `u128` incarnation, `u64` applied index, `u16`
//! length and the observer's peer address (where the answer goes). The
//! answer, a controller reply: `u8` kind (1 entries, 2 snapshot), `u64` the
//! index the fetch named, `i32` the leader the voter knows (-1: none),
//! `u64` its term, `u64` its applied index; then for entries a `u32` count
//! and each entry's `u64` index, `u32` length and bytes; for a snapshot,
//! its `u64` index, `u32` length and bytes. Every length is checked against
//! what the frame holds before it is used; a reply from a node that is not
//! a voter, or to a fetch not outstanding, changes nothing.

use std::{
    io::Write,
    path::Path,
    rc::Rc,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use sluice_storage::NodeId;

use super::{
    cluster::{self, held_by_another},
    driver::{apply, controller, install},
    open::ControllerStartError,
    state::{Controller, Observer, Waiting},
};
use crate::{
    cluster_metadata::{
        entries::{decode_snapshot, encode_snapshot},
        Metadata,
    },
    peer::MessageKind,
    shard::Shard,
};

/// An observer's copy of the image, in its data directory's `metadata`.
pub const IMAGE_FILE: &str = "observed-image";
/// `SLOI`, then a `u32` format version.
const IMAGE_MAGIC: &[u8; 4] = b"SLOI";
const IMAGE_VERSION: u32 = 1;
/// Magic, version, index, checksum, length.
const IMAGE_HEADER_BYTES: usize = 4 + 4 + 8 + 4 + 4;

/// A voter holds an observer's fetch this long when it has nothing new.
pub const FETCH_WAIT: Duration = Duration::from_millis(500);
/// An observer that has no answer this long asks another voter.
const FETCH_TIMEOUT: Duration = Duration::from_millis(2000);
/// An observer that could not send a fetch tries again after this long.
const FETCH_RETRY: Duration = Duration::from_millis(100);
/// A peer address in a fetch is at most this long.
const ADDR_BYTES_MAX: usize = 255;

pub(super) const REQUEST_FETCH: u8 = 3;
const REPLY_ENTRIES: u8 = 1;
const REPLY_SNAPSHOT: u8 = 2;
const REPLY_HEADER_BYTES: usize = 1 + 8 + 4 + 8 + 8;

/// A fetch as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub node: NodeId,
    pub incarnation: u128,
    pub after: u64,
    pub peer_addr: String,
}

pub fn encode_fetch(fetch: &Fetch) -> Vec<u8> {
    let addr = &fetch.peer_addr.as_bytes()[..fetch.peer_addr.len().min(ADDR_BYTES_MAX)];
    let mut out = Vec::with_capacity(1 + 4 + 16 + 8 + 2 + addr.len());
    out.put_u8(REQUEST_FETCH);
    out.put_i32_le(fetch.node.0);
    out.put_u128_le(fetch.incarnation);
    out.put_u64_le(fetch.after);
    out.put_u16_le(addr.len() as u16);
    out.extend_from_slice(addr);
    out
}

/// A fetch request's body (its type byte first).
pub fn decode_fetch(body: &[u8]) -> Result<Fetch, &'static str> {
    let mut buf = body;
    if buf.len() < 1 + 4 + 16 + 8 + 2 || buf.get_u8() != REQUEST_FETCH {
        return Err("a fetch that is too short");
    }
    let node = NodeId(buf.get_i32_le());
    let incarnation = buf.get_u128_le();
    let after = buf.get_u64_le();
    let length = usize::from(buf.get_u16_le());
    if length > ADDR_BYTES_MAX || length != buf.len() {
        return Err("a fetch whose address length is not what it holds");
    }
    let peer_addr = std::str::from_utf8(buf)
        .ok()
        .filter(|addr| {
            addr.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        })
        .ok_or("a fetch whose address is not HOST:PORT")?
        .to_string();
    Ok(Fetch {
        node,
        incarnation,
        after,
        peer_addr,
    })
}

/// What a voter answers a fetch with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Entries(Vec<(u64, Bytes)>),
    Snapshot { index: u64, state: Bytes },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The index the fetch named.
    pub after: u64,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// The voter's applied index.
    pub applied: u64,
    pub content: Content,
}

pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_u8(match reply.content {
        Content::Entries(_) => REPLY_ENTRIES,
        Content::Snapshot { .. } => REPLY_SNAPSHOT,
    });
    out.put_u64_le(reply.after);
    out.put_i32_le(reply.leader.map_or(-1, |leader| leader.0));
    out.put_u64_le(reply.term);
    out.put_u64_le(reply.applied);
    match &reply.content {
        Content::Entries(entries) => {
            out.put_u32_le(u32::try_from(entries.len()).expect("a bounded batch"));
            for (index, payload) in entries {
                out.put_u64_le(*index);
                out.put_u32_le(u32::try_from(payload.len()).expect("a bounded entry"));
                out.extend_from_slice(payload);
            }
        }
        Content::Snapshot { index, state } => {
            out.put_u64_le(*index);
            out.put_u32_le(u32::try_from(state.len()).expect("a bounded snapshot"));
            out.extend_from_slice(state);
        }
    }
    out
}

/// A reply's body: every count and length checked against what it holds;
/// entries' indexes must rise.
pub fn decode_reply(body: &Bytes) -> Result<Reply, &'static str> {
    let mut buf = body.clone();
    if buf.len() < REPLY_HEADER_BYTES {
        return Err("a reply that is too short");
    }
    let kind = buf.get_u8();
    let after = buf.get_u64_le();
    let leader = match buf.get_i32_le() {
        leader if leader >= 0 => Some(NodeId(leader)),
        -1 => None,
        _ => return Err("a reply naming a negative leader"),
    };
    let term = buf.get_u64_le();
    let applied = buf.get_u64_le();
    let take = |buf: &mut Bytes| -> Result<(u64, Bytes), &'static str> {
        if buf.len() < 12 {
            return Err("a reply cut short");
        }
        let index = buf.get_u64_le();
        let length = buf.get_u32_le() as usize;
        if length > buf.len() {
            return Err("a reply whose length is past its end");
        }
        Ok((index, buf.split_to(length)))
    };
    let content = match kind {
        REPLY_ENTRIES => {
            if buf.len() < 4 {
                return Err("a reply cut short");
            }
            let count = buf.get_u32_le() as usize;
            // Each entry takes 12 bytes at least: a count past what the
            // body can hold allocates nothing.
            if count > buf.len() / 12 {
                return Err("a reply counting more entries than it holds");
            }
            let mut entries = Vec::with_capacity(count);
            let mut last = after;
            for _ in 0..count {
                let (index, payload) = take(&mut buf)?;
                if index <= last {
                    return Err("a reply whose entries do not rise past the fetch");
                }
                last = index;
                entries.push((index, payload));
            }
            Content::Entries(entries)
        }
        REPLY_SNAPSHOT => {
            let (index, state) = take(&mut buf)?;
            Content::Snapshot { index, state }
        }
        _ => return Err("a reply of an unknown kind"),
    };
    if !buf.is_empty() {
        return Err("a reply with bytes past its end");
    }
    Ok(Reply {
        after,
        leader,
        term,
        applied,
        content,
    })
}

/// On a voter: an observer's fetch, answered at once if this node has
/// applied entries it has not, else held (see [`serve_waiting`]).
pub(super) fn on_fetch(
    shard: &Rc<Shard>,
    controller: &Controller,
    from: NodeId,
    body: &[u8],
) -> Result<(), &'static str> {
    let fetch = decode_fetch(body)?;
    if fetch.node != from {
        return Err("a fetch in another node's name");
    }
    if controller.quorum().is_none() {
        return Err("a fetch sent to a broker that is not a voter");
    }
    if shard
        .config
        .voters
        .iter()
        .any(|voter| voter.node_id == from)
    {
        return Err("a fetch from a voter");
    }
    if held_by_another(shard, controller, from, fetch.incarnation) {
        tracing::error!(
            node = %from,
            "a second process claims node {from}, which a live process holds: its fetches are refused (give each node its own --node-id)"
        );
        return Err("a fetch from a node a live process holds");
    }
    if let Some(network) = controller.network.borrow().as_ref() {
        network.set_address(from, fetch.peer_addr);
    }
    controller
        .served
        .fetched
        .borrow_mut()
        .insert(from, fetch.after);
    let mut waiting = controller.served.waiting.borrow_mut();
    waiting.retain(|held| held.node != from);
    if fetch.after < controller.applied.get() {
        drop(waiting);
        answer(controller, from, fetch.after);
    } else {
        waiting.push(Waiting {
            node: from,
            after: fetch.after,
            since: Instant::now(),
        });
    }
    Ok(())
}

/// On a voter, after it applied entries and on each tick: answers the
/// held fetches it has something new for, or held [`FETCH_WAIT`].
pub(super) fn serve_waiting(_shard: &Rc<Shard>, controller: &Controller) {
    let applied = controller.applied.get();
    let due: Vec<(NodeId, u64)> = {
        let mut waiting = controller.served.waiting.borrow_mut();
        if waiting.is_empty() {
            return;
        }
        let mut due = Vec::new();
        waiting.retain(|held| {
            let ready = held.after < applied || held.since.elapsed() >= FETCH_WAIT;
            if ready {
                due.push((held.node, held.after));
            }
            !ready
        });
        due
    };
    for (node, after) in due {
        answer(controller, node, after);
    }
}

/// Sends node `to` what it lacks after `after`: the entries, or the image
/// if this node no longer keeps them all.
fn answer(controller: &Controller, to: NodeId, after: u64) {
    let applied = controller.applied.get();
    let content = if after >= applied {
        Content::Entries(Vec::new())
    } else {
        match controller.served.after(after) {
            Some(entries) => Content::Entries(entries),
            None => Content::Snapshot {
                index: applied,
                state: encode_snapshot(&controller.image.borrow()).into(),
            },
        }
    };
    let term = controller
        .quorum()
        .map_or(0, |quorum| quorum.borrow().term());
    let reply = Reply {
        after,
        leader: controller.leader(),
        term,
        applied,
        content,
    };
    cluster::send(
        controller,
        to,
        MessageKind::ControllerReply,
        encode_reply(&reply).into(),
    );
}

/// On an observer, until the shard stops: fetches from the voters and
/// applies what they answer.
pub async fn follow(shard: Rc<Shard>) {
    let controller = controller(&shard);
    let observer = controller.observer().expect("an observer follows");
    let replies = observer.replies.1.clone();
    let mut turn = 0;
    loop {
        let target = match observer.leader.get() {
            Some(leader) if observer.voters.contains(&leader) => leader,
            _ => {
                turn += 1;
                observer.voters[turn % observer.voters.len()]
            }
        };
        let after = controller.applied.get();
        let fetch = Fetch {
            node: controller.node_id,
            incarnation: controller.incarnation,
            after,
            peer_addr: shard.config.peer_addr.clone(),
        };
        if !cluster::send(
            controller,
            target,
            MessageKind::ControllerRequest,
            encode_fetch(&fetch).into(),
        ) {
            observer.leader.set(None);
            glommio::timer::sleep(FETCH_RETRY).await;
            continue;
        }
        let deadline = Instant::now() + FETCH_TIMEOUT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let next = futures_lite::future::or(async { replies.recv().await.ok() }, async {
                glommio::timer::sleep(wait).await;
                None
            })
            .await;
            let Some((from, body)) = next else {
                tracing::debug!(voter = %target, "no answer to a metadata fetch; asking another voter");
                observer.leader.set(None);
                break;
            };
            if !observer.voters.contains(&from) {
                tracing::warn!(%from, "a metadata reply from a node that is not a voter; dropped");
                continue;
            }
            match decode_reply(&body) {
                Ok(reply) if from == target && reply.after == after => {
                    take(&shard, controller, observer, reply);
                    break;
                }
                Ok(_) => {}
                Err(reason) => tracing::warn!(%from, reason, "metadata reply refused"),
            }
        }
    }
}

/// Applies an answer to the fetch after `reply.after` (this node's applied
/// index) and keeps the image it makes.
fn take(shard: &Rc<Shard>, controller: &Controller, observer: &Observer, reply: Reply) {
    if reply.term >= observer.term.get() {
        observer.term.set(reply.term);
        observer.leader.set(
            reply
                .leader
                .filter(|leader| observer.voters.contains(leader)),
        );
    }
    let before = controller.applied.get();
    match reply.content {
        Content::Entries(entries) => {
            for (index, payload) in entries {
                apply(controller, index, &payload);
            }
        }
        Content::Snapshot { index, state } if index > before => {
            install(controller, index, &state);
        }
        Content::Snapshot { .. } => {}
    }
    let applied = controller.applied.get();
    let view = &shard.quorum_view;
    view.leader.store(
        observer.leader.get().map_or(-1, |leader| leader.0),
        Ordering::Relaxed,
    );
    view.term.store(observer.term.get(), Ordering::Relaxed);
    view.committed
        .store(reply.applied.max(applied), Ordering::Relaxed);
    view.applied.store(applied, Ordering::Relaxed);
    if applied > before {
        if let Err(error) = store(&observer.image_path, &controller.image.borrow(), applied) {
            tracing::warn!(path = %observer.image_path.display(), %error, "the observed metadata was not kept on disk; a restart fetches it again");
        }
    }
}

/// This broker's copy of the image, and the index it is at; none (an
/// empty image at 0) before the first.
pub fn load(path: &Path) -> Result<(Metadata, u64), ControllerStartError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Metadata::default(), 0))
        }
        Err(source) => {
            return Err(ControllerStartError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let corrupt = |reason: String| ControllerStartError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{reason}; remove the file to fetch the metadata from the voters again"),
    };
    if bytes.len() < IMAGE_HEADER_BYTES || &bytes[..4] != IMAGE_MAGIC {
        return Err(corrupt("not an observed image".to_string()));
    }
    let mut header = &bytes[4..IMAGE_HEADER_BYTES];
    let version = header.get_u32_le();
    if version != IMAGE_VERSION {
        return Err(corrupt(format!("format version {version}")));
    }
    let index = header.get_u64_le();
    let checksum = header.get_u32_le();
    let length = header.get_u32_le() as usize;
    let state = &bytes[IMAGE_HEADER_BYTES..];
    if state.len() != length || crc32c::crc32c(state) != checksum {
        return Err(corrupt("its checksum or length does not match".to_string()));
    }
    let image = decode_snapshot(state).map_err(|error| corrupt(error.to_string()))?;
    Ok((image, index))
}

/// Keeps `image`, at `index`, at `path`: written aside, synced, renamed
/// over the last.
pub fn store(path: &Path, image: &Metadata, index: u64) -> std::io::Result<()> {
    let state = encode_snapshot(image);
    let mut bytes = Vec::with_capacity(IMAGE_HEADER_BYTES + state.len());
    bytes.extend_from_slice(IMAGE_MAGIC);
    bytes.put_u32_le(IMAGE_VERSION);
    bytes.put_u64_le(index);
    bytes.put_u32_le(crc32c::crc32c(&state));
    bytes.put_u32_le(u32::try_from(state.len()).map_err(std::io::Error::other)?);
    bytes.extend_from_slice(&state);
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    let dir = path.parent().expect("the image is in a directory");
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::state::{Served, RECENT_BYTES_MAX, RECENT_ENTRIES_MAX};

    #[test]
    fn fetches_and_replies_decode_as_encoded() {
        let fetch = Fetch {
            node: NodeId(4),
            incarnation: 7 << 100,
            after: 99,
            peer_addr: "127.0.0.1:9233".to_string(),
        };
        assert_eq!(decode_fetch(&encode_fetch(&fetch)), Ok(fetch));
        let entries = Reply {
            after: 3,
            leader: Some(NodeId(1)),
            term: 5,
            applied: 9,
            content: Content::Entries(vec![
                (4, Bytes::from_static(b"four")),
                (6, Bytes::from_static(b"")),
                (9, Bytes::from_static(b"nine")),
            ]),
        };
        assert_eq!(decode_reply(&encode_reply(&entries).into()), Ok(entries));
        let snapshot = Reply {
            after: 0,
            leader: None,
            term: 1,
            applied: 12,
            content: Content::Snapshot {
                index: 12,
                state: Bytes::from_static(b"state"),
            },
        };
        assert_eq!(decode_reply(&encode_reply(&snapshot).into()), Ok(snapshot));
    }

    #[test]
    fn bad_fetches_and_replies_are_refused_and_allocate_nothing_they_claim() {
        let fetch = encode_fetch(&Fetch {
            node: NodeId(4),
            incarnation: 1,
            after: 0,
            peer_addr: "h:1".to_string(),
        });
        for cut in 0..fetch.len() {
            assert!(decode_fetch(&fetch[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_port = fetch.clone();
        no_port.truncate(fetch.len() - 2);
        no_port[1 + 4 + 16 + 8] = 1;
        assert!(decode_fetch(&no_port).is_err());

        let reply = encode_reply(&Reply {
            after: 1,
            leader: Some(NodeId(2)),
            term: 1,
            applied: 3,
            content: Content::Entries(vec![(2, Bytes::from_static(b"ab")), (3, Bytes::new())]),
        });
        for cut in 0..reply.len() {
            assert!(
                decode_reply(&Bytes::copy_from_slice(&reply[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        // A count of four billion entries in a body of a few bytes.
        let mut huge = reply.clone();
        huge[REPLY_HEADER_BYTES..REPLY_HEADER_BYTES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_reply(&huge.into()).is_err());
        // Entries that do not rise past the fetch.
        let stale = encode_reply(&Reply {
            after: 5,
            leader: None,
            term: 1,
            applied: 3,
            content: Content::Entries(vec![(2, Bytes::new())]),
        });
        assert!(decode_reply(&stale.into()).is_err());
        let mut unknown = reply.clone();
        unknown[0] = 9;
        assert!(decode_reply(&unknown.into()).is_err());
        let mut longer = reply;
        longer.push(0);
        assert!(decode_reply(&longer.into()).is_err());
    }

    #[test]
    fn a_voter_keeps_recent_entries_within_its_limits() {
        let served = Served::new(10);
        assert_eq!(served.after(10), Some(Vec::new()));
        assert_eq!(served.after(9), None, "applied before it kept any");
        for index in 11..=10 + RECENT_ENTRIES_MAX as u64 + 5 {
            served.record(index, b"x");
        }
        assert_eq!(served.after(14), None);
        let kept = served.after(15).unwrap();
        assert_eq!(kept.first().map(|e| e.0), Some(16));
        assert_eq!(kept.len(), RECENT_ENTRIES_MAX);
        served.record(1_000_000, &vec![0; RECENT_BYTES_MAX]);
        assert_eq!(
            served.after(999_999).unwrap().len(),
            1,
            "the last one stays"
        );
        served.reset(2_000_000);
        assert_eq!(served.after(1_000_000), None);
        assert_eq!(served.after(2_000_000), Some(Vec::new()));
    }

    #[test]
    fn an_observed_image_is_kept_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IMAGE_FILE);
        let (empty, index) = load(&path).unwrap();
        assert_eq!(index, 0);
        assert!(empty.topics.is_empty());
        let mut image = Metadata::default();
        image
            .apply(
                &crate::cluster_metadata::MetadataRecord::ProducerIdsAllocated {
                    first: Some(crate::cluster_metadata::PRODUCER_ID_FIRST),
                    next: sluice_storage::ProducerId(5000),
                },
                7,
            )
            .unwrap();
        store(&path, &image, 7).unwrap();
        let (loaded, index) = load(&path).unwrap();
        assert_eq!(index, 7);
        assert_eq!(loaded.producer_id_next, sluice_storage::ProducerId(5000));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("remove the file"), "{error}");
    }
}
