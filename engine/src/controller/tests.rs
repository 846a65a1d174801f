//! The controller over shards on one executor: topics and partitions made,
//! placed, opened and replayed.

use std::path::Path;

use glommio::{LocalExecutorBuilder, Placement};

use super::*;
use crate::partition::PartitionKey;
use crate::BrokerConfig;

const CLUSTER_ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        data_dir: dir.to_path_buf(),
        ..BrokerConfig::default()
    }
}

/// The metadata a start over `dir` replays.
fn replayed(dir: &Path) -> Metadata {
    open::open(&config(dir), CLUSTER_ID).unwrap().image
}

/// Shards on one executor, and the controller's tasks.
struct Cluster {
    shards: Vec<Rc<Shard>>,
    tasks: Vec<glommio::task::JoinHandle<()>>,
}

impl std::ops::Deref for Cluster {
    type Target = Vec<Rc<Shard>>;
    fn deref(&self) -> &Vec<Rc<Shard>> {
        &self.shards
    }
}

/// `shard_count` shards on this one executor, over the controller quorum's
/// log in `dir`: shard 0 with the controller (a quorum of this node alone)
/// and its tasks, the others serving their inboxes (partition ops and
/// metadata) as a broker's shards do.
fn shards(dir: &Path, shard_count: usize) -> Cluster {
    let start = open::open(&config(dir), CLUSTER_ID).unwrap();
    let metadata = Arc::new(start.image.clone());
    let mut controller = Some(start.into_controller(NodeId(0)).unwrap());
    let (peers, inboxes): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| async_channel::bounded(64)).unzip();
    let shards: Vec<Rc<Shard>> = (0..shard_count)
        .map(|id| {
            Rc::new(Shard::new(
                id,
                config(dir),
                CLUSTER_ID.into(),
                peers.clone(),
                metadata.clone(),
                controller.take(),
                crate::shard::NodeShared {
                    quorum_view: Default::default(),
                    log_dirs: Arc::new(crate::log_dirs::LogDirs::new(vec![dir.to_path_buf()])),
                    quota_meters: Default::default(),
                },
            ))
        })
        .collect();
    let mut tasks = vec![
        glommio::spawn_local(driver::drive(shards[0].clone())).detach(),
        glommio::spawn_local(driver::carry_out_effects(shards[0].clone())).detach(),
    ];
    for (shard, inbox) in shards.iter().zip(inboxes).skip(1) {
        let shard = shard.clone();
        tasks.push(
            glommio::spawn_local(async move {
                let shutdown = crate::shard::pump(&shard, inbox).await;
                assert!(shutdown.is_none(), "not sent in these tests");
            })
            .detach(),
        );
    }
    Cluster { shards, tasks }
}

/// Ends the tasks `cluster` started, as a kill would.
fn stop(cluster: Cluster) {
    for task in &cluster.tasks {
        task.cancel();
    }
    for peer in &cluster.shards[0].peers {
        peer.close();
    }
}

/// What kind of failure `result` is, if it is one.
fn code(result: Result<(), Failure>) -> Result<(), ErrorKind> {
    result.map_err(|failure| failure.kind)
}

async fn create_topic(shard: &Rc<Shard>, name: &str, partitions: u32) -> Result<(), ErrorKind> {
    let (reply, answer) = oneshot::channel();
    let topic = NewTopicSpec {
        name: name.to_string(),
        partitions,
        configs: [("segment.bytes".to_string(), (1 << 20).to_string())].into(),
        replication_factor: 0,
        assignment: None,
    };
    let op = ControllerOp::CreateTopics {
        topics: vec![topic],
        reply,
    };
    run(shard, op).await;
    let mut outcomes = answer.await.unwrap();
    assert_eq!(outcomes.len(), 1);
    let outcome = outcomes.remove(0);
    assert_eq!(outcome.name, name);
    code(outcome.result)
}

async fn create_partitions(
    shard: &Rc<Shard>,
    name: &str,
    count: u32,
    validate_only: bool,
) -> Result<(), ErrorKind> {
    let (reply, answer) = oneshot::channel();
    let op = ControllerOp::CreatePartitions {
        assignment: None,
        topic: name.to_string(),
        count,
        validate_only,
        reply,
    };
    run(shard, op).await;
    code(answer.await.unwrap())
}

/// A block of producer ids, as (first, count).
async fn allocate(shard: &Rc<Shard>) -> (i64, i64) {
    let (reply, answer) = oneshot::channel();
    run(shard, ControllerOp::AllocateProducerIds { reply }).await;
    let block = answer.await.unwrap().unwrap();
    assert_eq!(block.ids(), block.first.0..block.first.0 + block.count);
    (block.first.0, block.count)
}

/// Whether partition `partition` of `topic` is open on its owner.
async fn is_open(shard: &Rc<Shard>, topic: &TopicMeta, partition: u32) -> bool {
    ask(shard, Route::of(shard, topic, partition), |reply| {
        PartitionOp::Stats { reply }
    })
    .await
    .is_ok()
}

fn on_executor(test: impl std::future::Future<Output = ()> + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts")
        .run(test);
}

#[test]
fn partitions_are_added_placed_opened_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    on_executor(async move {
        let cluster = shards(&path, 2);
        let controller = &cluster[0];
        assert_eq!(create_topic(controller, "events", 3).await, Ok(()));
        assert_eq!(create_topic(controller, "other", 1).await, Ok(()));
        // Placed so far: events [0, 1, 0], other [1]; load [2, 2].

        // Checked, not done.
        assert_eq!(
            create_partitions(controller, "events", 6, true).await,
            Ok(())
        );
        assert_eq!(
            controller
                .metadata()
                .topic("events")
                .unwrap()
                .partition_count(),
            3
        );

        assert_eq!(
            create_partitions(controller, "events", 6, false).await,
            Ok(())
        );
        for shard in cluster.iter() {
            let events = shard.metadata().topic("events").unwrap().clone();
            assert_eq!(events.shards, [0, 1, 0, 0, 1, 0].map(ShardId));
            assert_eq!(events.configs["segment.bytes"], (1 << 20).to_string());
        }
        let events = controller.metadata().topic("events").unwrap().clone();
        for partition in 0..6 {
            assert!(
                is_open(controller, &events, partition).await,
                "partition {partition}"
            );
        }
        // Each on its owner, and only there.
        for (partition, owner) in events.shards.iter().enumerate() {
            for shard in cluster.iter() {
                let key = PartitionKey::new(events.id, partition as u32);
                let here = shard.partitions.borrow().contains_key(&key);
                assert_eq!(
                    here,
                    shard.id == owner.0 as usize,
                    "{key:?} on {}",
                    shard.id
                );
            }
        }

        assert_eq!(replayed(&path), *controller.metadata());
        stop(cluster);
    });
}

#[test]
fn partitions_that_cannot_be_added() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    on_executor(async move {
        let cluster = shards(&path, 2);
        let controller = &cluster[0];
        assert_eq!(create_topic(controller, "events", 3).await, Ok(()));
        let before = controller.metadata();
        for validate_only in [false, true] {
            let cases = [
                ("events", 3, Err(ErrorKind::InvalidPartitions)),
                ("events", 2, Err(ErrorKind::InvalidPartitions)),
                ("events", 0, Err(ErrorKind::InvalidPartitions)),
                (
                    "events",
                    PARTITIONS_PER_TOPIC_MAX + 1,
                    Err(ErrorKind::InvalidPartitions),
                ),
                ("nope", 4, Err(ErrorKind::UnknownTopic)),
            ];
            for (name, count, error) in cases {
                assert_eq!(
                    create_partitions(controller, name, count, validate_only).await,
                    error,
                    "{name} to {count}, validate only {validate_only}"
                );
            }
        }
        assert_eq!(controller.metadata(), before);
        assert_eq!(replayed(&path), *before);
        // The most there can be is fine.
        assert_eq!(
            create_partitions(controller, "events", PARTITIONS_PER_TOPIC_MAX, true).await,
            Ok(())
        );
        stop(cluster);
    });
}

#[test]
fn producer_ids_are_never_handed_out_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    on_executor(async move {
        let cluster = shards(&path, 2);
        assert_eq!(
            allocate(&cluster[0]).await,
            (PRODUCER_ID_FIRST.0, PRODUCER_IDS_PER_BLOCK)
        );
        let second = PRODUCER_ID_FIRST.0 + PRODUCER_IDS_PER_BLOCK;
        assert_eq!(
            allocate(&cluster[0]).await,
            (second, PRODUCER_IDS_PER_BLOCK)
        );
        let next = second + PRODUCER_IDS_PER_BLOCK;
        for shard in cluster.iter() {
            assert_eq!(shard.metadata().producer_id_next, ProducerId(next));
        }
        // No shutdown: what an answered allocation leaves on disk is all
        // a restart has, as after kill -9.
        stop(cluster);
        let cluster = shards(&path, 1);
        assert_eq!(cluster[0].metadata().producer_id_next, ProducerId(next));
        assert_eq!(allocate(&cluster[0]).await, (next, PRODUCER_IDS_PER_BLOCK));
        stop(cluster);
    });
}

#[test]
fn producer_ids_run_out_at_the_end_of_i64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    {
        // A single node's log of a release before cluster mode, imported
        // at the first start.
        let (mut log, _) = crate::cluster_metadata::MetadataLog::open(&path).unwrap();
        let last = i64::MAX - PRODUCER_IDS_PER_BLOCK;
        log.append(&MetadataRecord::ProducerIdsAllocated {
            first: None,
            next: ProducerId(last),
        })
        .unwrap();
    }
    on_executor(async move {
        let cluster = shards(&path, 1);
        let last = i64::MAX - PRODUCER_IDS_PER_BLOCK;
        assert_eq!(allocate(&cluster[0]).await, (last, PRODUCER_IDS_PER_BLOCK));
        let (reply, answer) = oneshot::channel();
        run(&cluster[0], ControllerOp::AllocateProducerIds { reply }).await;
        let failure = answer.await.unwrap().unwrap_err();
        assert_eq!(failure.kind, ErrorKind::Internal);
        assert_eq!(cluster[0].metadata().producer_id_next, ProducerId(i64::MAX));
        stop(cluster);
    });
}

#[test]
fn a_single_nodes_metadata_log_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let metadata_dir = dir.path().join("metadata");
    std::fs::create_dir_all(&metadata_dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata-v1.log");
    std::fs::copy(&fixture, metadata_dir.join("metadata.log")).unwrap();
    let config = BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        node_id: NodeId(4),
        ..BrokerConfig::default()
    };
    let imported = open::open(&config, CLUSTER_ID).unwrap().image;
    let names: Vec<&str> = imported.topics.keys().map(String::as_str).collect();
    assert_eq!(names, ["__consumer_offsets", "audit", "events", "orders"]);
    for topic in imported.topics.values() {
        assert_eq!(topic.replicas.len(), topic.shards.len(), "{}", topic.name);
        assert!(
            topic.replicas.iter().all(|nodes| nodes == &[NodeId(4)]),
            "{}: every partition is this node's",
            topic.name
        );
    }
    assert_eq!(imported.producer_id_next, ProducerId(2000));
    assert!(!metadata_dir.join("metadata.log").exists());
    assert!(metadata_dir.join("metadata.log.imported").exists());
    // The next start replays the quorum's log, the same image.
    let again = open::open(&config, CLUSTER_ID).unwrap().image;
    assert_eq!(again, imported);
    // A single node's metadata cannot be brought into a quorum of several.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("metadata")).unwrap();
    std::fs::copy(&fixture, other.path().join("metadata/metadata.log")).unwrap();
    let voters =
        crate::Voter::parse_list("4@127.0.0.1:9193,5@127.0.0.1:9194,6@127.0.0.1:9195").unwrap();
    let clustered = BrokerConfig {
        data_dir: other.path().to_path_buf(),
        node_id: NodeId(4),
        voters,
        ..BrokerConfig::default()
    };
    let error = open::open(&clustered, CLUSTER_ID).err().unwrap();
    assert!(
        matches!(
            error,
            open::ControllerStartError::LegacyInCluster { voters: 3, .. }
        ),
        "{error}"
    );
}

#[test]
fn a_voters_data_is_not_an_observers_and_an_observers_not_a_voters() {
    let voters =
        crate::Voter::parse_list("1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195").unwrap();
    let as_node = |dir: &Path, node: i32| BrokerConfig {
        data_dir: dir.to_path_buf(),
        node_id: NodeId(node),
        peer_addr: format!("127.0.0.1:{}", 9192 + node),
        voters: voters.clone(),
        ..BrokerConfig::default()
    };
    // Node 4 is not a voter: it starts from an empty image and keeps none
    // until it has fetched one.
    let broker = tempfile::tempdir().unwrap();
    let start = open::open(&as_node(broker.path(), 4), CLUSTER_ID).unwrap();
    assert_eq!(start.applied, 0);
    assert!(matches!(start.member, open::Member::Observer { .. }));
    observer::store(
        &broker.path().join("metadata").join(observer::IMAGE_FILE),
        &start.image,
        3,
    )
    .unwrap();
    assert_eq!(
        open::open(&as_node(broker.path(), 4), CLUSTER_ID)
            .unwrap()
            .applied,
        3
    );
    // The same directory as voter 1's: refused.
    let error = open::open(&as_node(broker.path(), 1), CLUSTER_ID)
        .err()
        .unwrap();
    assert!(
        matches!(error, open::ControllerStartError::ObserverNowVoter { .. }),
        "{error}"
    );
    // A voter's directory as a broker's: refused.
    let voter = tempfile::tempdir().unwrap();
    assert!(matches!(
        open::open(&as_node(voter.path(), 2), CLUSTER_ID)
            .unwrap()
            .member,
        open::Member::Voter { .. }
    ));
    let error = open::open(&as_node(voter.path(), 4), CLUSTER_ID)
        .err()
        .unwrap();
    assert!(
        matches!(error, open::ControllerStartError::VoterNoMore { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("not among the voters"),
        "{error}"
    );
}

async fn elect(
    shard: &Rc<Shard>,
    election: Election,
    partitions: Option<Vec<(&str, u32)>>,
) -> Vec<(String, u32, Result<(), ElectionFailure>)> {
    let (reply, answer) = oneshot::channel();
    let partitions = partitions.map(|partitions| {
        partitions
            .into_iter()
            .map(|(topic, partition)| (topic.to_string(), partition))
            .collect()
    });
    let op = ControllerOp::ElectLeaders {
        election,
        partitions,
        reply,
    };
    run(shard, op).await;
    answer
        .await
        .unwrap()
        .into_iter()
        .map(|outcome| (outcome.topic, outcome.partition, outcome.result))
        .collect()
}

#[test]
fn elections_answer_each_partition_named_in_order() {
    use sluice_replication::partition::control::ElectionError;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    on_executor(async move {
        let cluster = shards(&path, 1);
        let controller = &cluster[0];
        assert_eq!(create_topic(controller, "events", 2).await, Ok(()));
        let before = controller.metadata();
        let named = vec![("events", 1), ("gone", 0), ("events", 7), ("events", 0)];
        for election in [Election::Preferred, Election::Unclean] {
            let outcomes = elect(controller, election, Some(named.clone())).await;
            let not_needed = Err(ElectionFailure::NotHeld(ElectionError::NotNeeded(0)));
            let failed = |kind: ErrorKind| move |result: &Result<(), ElectionFailure>| matches!(result, Err(ElectionFailure::Failed(failure)) if failure.kind == kind);
            assert_eq!(
                outcomes
                    .iter()
                    .map(|(topic, partition, _)| (topic.as_str(), *partition))
                    .collect::<Vec<_>>(),
                named,
                "{election}: in the order named"
            );
            assert_eq!(
                outcomes[0].2, not_needed,
                "{election}: one replica leads already, as preferred"
            );
            assert!(
                failed(ErrorKind::UnknownTopic)(&outcomes[1].2),
                "{election}"
            );
            assert!(
                failed(ErrorKind::NoSuchPartition)(&outcomes[2].2),
                "{election}"
            );
            assert_eq!(outcomes[3].2, not_needed, "{election}");
            // Asked of every partition: those that needed no election are
            // left out.
            assert!(elect(controller, election, None).await.is_empty());
        }
        assert_eq!(controller.metadata(), before, "nothing was proposed");
        stop(cluster);
    });
}
