//! Starting and stopping the broker: the shards, their channels, the
//! listeners, recovery of every partition, and shutdown on a signal.

use std::{
    rc::Rc,
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use futures_channel::oneshot;
use glommio::{net::TcpListener, LocalExecutorBuilder, Placement};
use sluice_storage::log::Log;

use crate::{
    cluster_metadata::Metadata,
    listeners::{ListenAddrs, Listeners, ReadyFile},
    node_identity::{IdentityError, NodeIdentity},
    partition::PartitionKey,
    server,
    shard::{self, Shard, ShardMessage},
    topic_config::log_config,
    BrokerConfig,
};

/// Messages a shard's inbox holds before senders wait: bounds the memory
/// one busy shard can make the others pile up.
const SHARD_INBOX_MAX: usize = 4096;

/// How long shutdown waits for requests in flight before closing the logs.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Controller(#[from] crate::controller::open::ControllerStartError),
    #[error("OAUTHBEARER keys (the JWKS): {0}; the broker does not serve without them")]
    Jwks(#[from] crate::sasl::jwks::JwksError),
    #[error("shard {shard} could not start: {reason}")]
    ShardStart { shard: usize, reason: String },
    #[error("{cores} cores asked for; between 1 and {available} can be used")]
    Cores { cores: usize, available: usize },
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    #[error("data directory {path} is in use by another broker (its lock is held)")]
    DataDirLocked { path: std::path::PathBuf },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("log directory {path} is given twice (or is the data directory)")]
    LogDirTwice { path: std::path::PathBuf },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Quorum(#[from] crate::config::VotersError),
    #[error("ready file {path}: {source}")]
    ReadyFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What a shard reports once it has opened its partitions and listens.
struct Ready {
    shard: usize,
    partitions: usize,
    opened_in: Duration,
}

/// A running broker: its shards' inboxes and threads.
pub struct Broker {
    inboxes: Vec<async_channel::Sender<ShardMessage>>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
    addrs: ListenAddrs,
    /// Held while the broker runs: one broker per data directory (and
    /// per log directory).
    _locks: Vec<std::fs::File>,
}

/// Takes the data directory's lock (an exclusive `flock` on `.lock`), so that
/// two brokers never share a directory.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, EngineError> {
    use std::os::fd::AsRawFd;
    let io_error = |source| EngineError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    let path = data_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(EngineError::DataDirLocked {
            path: data_dir.to_path_buf(),
        });
    }
    Ok(file)
}

impl Broker {
    /// Starts every shard, recovers every partition (in parallel across
    /// shards), and returns once all shards listen.
    pub fn start(config: BrokerConfig) -> Result<Broker, EngineError> {
        let available = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let shard_count = config.cores.unwrap_or(available);
        if shard_count == 0 || shard_count > available.max(1) * 4 {
            return Err(EngineError::Cores {
                cores: shard_count,
                available,
            });
        }
        crate::config::check_quorum(&config)?;
        let started = Instant::now();
        // OAUTHBEARER's keys, shared by every shard: read or fetched
        // before anything else, so that a broker without them changes
        // nothing and says why.
        let oauth_keys = match config
            .kafka_sasl
            .as_ref()
            .and_then(|sasl| sasl.oauthbearer.as_ref())
        {
            Some(settings) => Some(crate::sasl::jwks::start(&settings.jwks)?),
            None => None,
        };
        let mut locks = vec![lock_data_dir(&config.data_dir)?];
        // Partition directories hang off it: make it absolute once.
        let mut config = config;
        let absolute = |dir: &std::path::Path| {
            std::path::absolute(dir).map_err(|source| EngineError::DataDir {
                path: dir.to_path_buf(),
                source,
            })
        };
        config.data_dir = absolute(&config.data_dir)?;
        let identity = NodeIdentity::load_or_create(
            &config.data_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )?;
        // Each log directory is this node's, of this cluster, and locked.
        let mut dirs = vec![config.data_dir.clone()];
        for dir in &config.log_dirs {
            let dir = absolute(dir)?;
            if dirs.contains(&dir) {
                return Err(EngineError::LogDirTwice { path: dir });
            }
            locks.push(lock_data_dir(&dir)?);
            NodeIdentity::load_or_create(&dir, config.node_id, Some(&identity.cluster_id))?;
            dirs.push(dir);
        }
        config.log_dirs = dirs[1..].to_vec();
        let mut listeners = Listeners::resolve(&mut config)?;
        let start = crate::controller::open::open(&config, &identity.cluster_id)?;
        sluice_storage::deleter::set_pace(config.delete_bytes_per_s);
        sluice_storage::log::set_cleaner_pace(config.cleaner_bytes_per_s);
        // A node that starts empty and is caught up later does not know
        // yet which topics it holds: nothing is deleted until then.
        if start.applied > 0 {
            for dir in &dirs {
                delete_what_no_topic_owns(dir, &start.image);
            }
        }
        let log_dirs = Arc::new(crate::log_dirs::LogDirs::new(dirs));
        let metadata = Arc::new(start.image.clone());
        let cluster_id: Arc<str> = identity.cluster_id.into();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shard_count)
            .map(|_| async_channel::bounded(SHARD_INBOX_MAX))
            .unzip();
        let (ready_sender, ready) = mpsc::channel::<Result<Ready, EngineError>>();
        let mut start = Some(start);
        // A node of a cluster (other voters, or not a voter itself) takes
        // no writes as a leader until the controller leader renews its
        // lease, which it does once this node has caught up with the
        // metadata.
        let in_cluster = config
            .voters
            .iter()
            .any(|voter| voter.node_id != config.node_id);
        let quorum_view = Arc::new(crate::shard::QuorumView::new(in_cluster));
        let quota_meters = Arc::new(crate::quota::Meters::default());
        let mut threads = Vec::new();
        for (id, inbox) in receivers.into_iter().enumerate() {
            let config = config.clone();
            let cluster_id = cluster_id.clone();
            let peers = senders.clone();
            let metadata = metadata.clone();
            let controller_start = if id == 0 { start.take() } else { None };
            let quorum_view = quorum_view.clone();
            let log_dirs = log_dirs.clone();
            let quota_meters = quota_meters.clone();
            let admin = if id == 0 {
                listeners.take_admin()
            } else {
                None
            };
            let ready = ready_sender.clone();
            let oauth_keys = oauth_keys.clone();
            let spawned = LocalExecutorBuilder::new(Placement::Fixed(id % available))
                .name(&format!("shard-{id}"))
                .spawn(move || async move {
                    let controller = match controller_start
                        .map(|start| start.into_controller(config.node_id))
                    {
                        Some(Err(reason)) => {
                            let _ = ready.send(Err(EngineError::ShardStart { shard: id, reason }));
                            return;
                        }
                        Some(Ok(controller)) => Some(controller),
                        None => None,
                    };
                    let shard = Rc::new(Shard::new(
                        id,
                        config,
                        cluster_id,
                        peers,
                        metadata,
                        controller,
                        crate::shard::NodeShared {
                            quorum_view,
                            log_dirs,
                            quota_meters,
                        },
                    ));
                    shard_main(shard, inbox, admin, oauth_keys, ready).await;
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    return Err(EngineError::ShardStart {
                        shard: id,
                        reason: error.to_string(),
                    })
                }
            }
        }
        drop(ready_sender);
        let broker = Broker {
            inboxes: senders,
            threads,
            addrs: listeners.addrs.clone(),
            _locks: locks,
        };
        let mut partitions = 0;
        for _ in 0..shard_count {
            match ready.recv() {
                Ok(Ok(report)) => {
                    tracing::info!(
                        shard = report.shard,
                        partitions = report.partitions,
                        opened_in_ms = report.opened_in.as_millis() as u64,
                        "shard ready"
                    );
                    partitions += report.partitions;
                }
                Ok(Err(error)) => {
                    broker.stop();
                    return Err(error);
                }
                Err(_) => {
                    broker.stop();
                    return Err(EngineError::ShardStart {
                        shard: 0,
                        reason: "a shard stopped while starting".into(),
                    });
                }
            }
        }
        tracing::info!(
            native_addr = %config.native_addr,
            kafka_listeners = %crate::listeners::describe_kafka(&config.kafka_listeners),
            admin_addr = config.admin_addr.as_deref().unwrap_or("off"),
            shards = shard_count,
            partitions,
            recovered_in_ms = started.elapsed().as_millis() as u64,
            "sluice is serving"
        );
        // Every shard has bound the ports that were held for them.
        drop(listeners);
        Ok(broker)
    }

    /// The addresses the broker listens on, ports of 0 resolved.
    pub fn addrs(&self) -> &ListenAddrs {
        &self.addrs
    }

    /// Graceful shutdown: in a cluster the broker first has itself fenced
    /// when its leadership can move (controlled shutdown, see
    /// `controller::cluster::leave`); then every shard stops accepting,
    /// lets requests in flight finish, and closes its logs; then the
    /// threads end.
    pub fn stop(self) {
        if let Some(first) = self.inboxes.first() {
            let (left, leaving) = oneshot::channel::<()>();
            let leave: Box<dyn FnOnce(Rc<Shard>) + Send> = Box::new(move |shard| {
                glommio::spawn_local(async move {
                    crate::controller::cluster::leave(&shard).await;
                    let _ = left.send(());
                })
                .detach();
            });
            if first.send_blocking(ShardMessage::Run(leave)).is_ok() {
                let _ = futures_lite::future::block_on(leaving);
            }
        }
        let mut acks = Vec::new();
        for inbox in &self.inboxes {
            let (ack, acked) = oneshot::channel();
            if inbox.send_blocking(ShardMessage::Shutdown(ack)).is_ok() {
                acks.push(acked);
            }
        }
        for acked in acks {
            let _ = futures_lite::future::block_on(acked);
        }
        drop(self.inboxes);
        for thread in self.threads {
            let _ = thread.join();
        }
        tracing::info!("sluice stopped");
    }
}

/// Runs the broker until SIGINT or SIGTERM, then shuts it down gracefully.
pub fn run(config: BrokerConfig) -> Result<(), EngineError> {
    use signal_hook::{
        consts::{SIGINT, SIGTERM},
        iterator::Signals,
    };
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(EngineError::Signals)?;
    let ready_file = ReadyFile::clear(config.ready_file.clone())?;
    let broker = Broker::start(config)?;
    if let Err(error) = ready_file.write(broker.addrs()) {
        broker.stop();
        return Err(error);
    }
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "shutting down");
    }
    // Gone before the listeners close: the file says the broker serves.
    drop(ready_file);
    broker.stop();
    Ok(())
}

async fn shard_main(
    shard: Rc<Shard>,
    inbox: async_channel::Receiver<ShardMessage>,
    admin: Option<std::net::TcpListener>,
    oauth_keys: Option<crate::sasl::jwks::Keys>,
    ready: mpsc::Sender<Result<Ready, EngineError>>,
) {
    let started = Instant::now();
    let opened = match open_partitions(&shard).await {
        Ok(opened) => opened,
        Err(reason) => {
            let _ = ready.send(Err(EngineError::ShardStart {
                shard: shard.id,
                reason,
            }));
            return;
        }
    };
    // Replicated partitions show readers nothing past their high
    // watermark, from before the first request on.
    crate::replica::roles::on_metadata(
        &shard.replicas,
        &shard.metadata(),
        &shard.partitions,
        (shard.config.node_id, shard.id),
    );
    // The groups of the offsets partitions this node leads, by the
    // metadata it starts with; later changes are the hold loop's.
    match crate::coordinator::hold(&shard).await {
        Ok(0) => {}
        Ok(records) => tracing::info!(
            shard = shard.id,
            records,
            "consumer group offsets recovered"
        ),
        Err(reason) => {
            let _ = ready.send(Err(EngineError::ShardStart {
                shard: shard.id,
                reason,
            }));
            return;
        }
    }
    let listener = match TcpListener::bind(shard.config.native_addr.as_str()) {
        Ok(listener) => listener,
        Err(error) => {
            let reason = format!("cannot listen on {}: {error}", shard.config.native_addr);
            let _ = ready.send(Err(EngineError::ShardStart {
                shard: shard.id,
                reason,
            }));
            return;
        }
    };
    // A node of a cluster listens for the other nodes (shard 0 only).
    let peer_addr = shard.config.peer_addr.as_str();
    let clustered = shard.controller.is_some() && crate::controller::cluster::clustered(&shard);
    let peer_listener = match clustered.then(|| TcpListener::bind(peer_addr)) {
        None => None,
        Some(Ok(listener)) => Some(listener),
        Some(Err(error)) => {
            let reason = format!("cannot listen on {peer_addr} (--peer-addr): {error}");
            let _ = ready.send(Err(EngineError::ShardStart {
                shard: shard.id,
                reason,
            }));
            return;
        }
    };
    let mut kafka_listeners = Vec::new();
    for listener in &shard.config.kafka_listeners {
        match TcpListener::bind(&listener.addr) {
            Ok(bound) => kafka_listeners.push((listener, bound)),
            Err(error) => {
                let reason = format!(
                    "cannot listen on {} (Kafka listener {}): {error}",
                    listener.addr, listener.name
                );
                let _ = ready.send(Err(EngineError::ShardStart {
                    shard: shard.id,
                    reason,
                }));
                return;
            }
        }
    }
    // Kept, not detached: dropping them at shutdown cancels them, which
    // closes the listeners at once.
    let tls = match shard.config.tls.clone().map(crate::tls::ShardTls::new) {
        None => None,
        Some(Ok(tls)) => Some(Rc::new(tls)),
        Some(Err(error)) => {
            let reason = format!("the broker's TLS: {error}");
            let _ = ready.send(Err(EngineError::ShardStart {
                shard: shard.id,
                reason,
            }));
            return;
        }
    };
    if let Some(settings) = shard.config.peer_tls.clone() {
        match crate::tls::PeerTls::new(settings) {
            Ok(tls) => {
                let _ = shard.peer_tls.set(Rc::new(tls));
            }
            Err(error) => {
                let reason = format!("the peer port's TLS: {error}");
                let _ = ready.send(Err(EngineError::ShardStart {
                    shard: shard.id,
                    reason,
                }));
                return;
            }
        }
    }
    let kafka_sasl = match shard.config.kafka_sasl.as_ref() {
        None => None,
        Some(sasl) => match sasl
            .plain_users
            .as_deref()
            .map_or(Ok(crate::sasl::Users::default()), crate::sasl::Users::read)
        {
            Ok(mut users) => {
                if let Some(settings) = &sasl.oauthbearer {
                    let keys = oauth_keys
                        .clone()
                        .expect("the OAUTHBEARER keys are had before the shards start");
                    users.oauthbearer = Some(crate::sasl::oauthbearer::Validator::new(
                        settings.clone(),
                        keys,
                    ));
                }
                Some(Rc::new(users))
            }
            Err(error) => {
                let reason = format!("SASL users of the Kafka listener: {error}");
                let _ = ready.send(Err(EngineError::ShardStart {
                    shard: shard.id,
                    reason,
                }));
                return;
            }
        },
    };
    let acceptor = glommio::spawn_local(server::accept_loop::<crate::native::Native>(
        shard.clone(),
        listener,
        server::Security {
            tls: tls.clone().filter(|_| shard.config.native_tls),
            ..server::Security::default()
        },
    ));
    let admin_users = kafka_sasl.clone();
    let kafka_acceptors: Vec<_> = kafka_listeners
        .into_iter()
        .map(|(settings, listener)| {
            let security = server::Security {
                tls: tls.clone().filter(|_| settings.protocol.tls()),
                sasl: kafka_sasl.clone().filter(|_| settings.protocol.sasl()),
                listener: settings.name.as_str().into(),
            };
            glommio::spawn_local(server::accept_loop::<crate::kafka::Kafka>(
                shard.clone(),
                listener,
                security,
            ))
        })
        .collect();
    let admin_acceptor = admin.map(|listener| {
        let listener = crate::listeners::admin_listener(listener);
        glommio::spawn_local(crate::admin_http::accept_loop(
            shard.clone(),
            listener,
            tls.clone().filter(|_| shard.config.admin_tls),
            admin_users,
        ))
    });
    let retention = glommio::spawn_local(retention_loop(shard.clone()));
    let cleaner = spawn_cleaner(shard.clone());
    let controller_tasks = shard.controller.is_some().then(|| {
        let mut tasks = vec![
            glommio::spawn_local(crate::controller::driver::drive(shard.clone())),
            glommio::spawn_local(crate::controller::driver::carry_out_effects(shard.clone())),
        ];
        if let Some(listener) = peer_listener {
            tasks.push(glommio::spawn_local(
                crate::controller::cluster::serve_peers(shard.clone(), listener),
            ));
            tasks.push(glommio::spawn_local(
                crate::controller::cluster::register_and_heartbeat(shard.clone()),
            ));
        }
        tasks
    });
    // Every shard of a node of a cluster replicates its partitions.
    let replication = crate::controller::cluster::clustered(&shard)
        .then(|| glommio::spawn_local(crate::replica::run(shard.clone())));
    let ticking = shard.clone();
    let group_ticks =
        glommio::spawn_local(async move { crate::coordinator::tick_loop(&ticking.groups).await });
    let group_holds = glommio::spawn_local(crate::coordinator::hold_loop(shard.clone()));
    let txn_ticks = glommio::spawn_local(crate::txn::driver::tick_loop(shard.clone()));
    let txn_holds = glommio::spawn_local(crate::txn::holding::hold_loop(shard.clone()));
    let _ = ready.send(Ok(Ready {
        shard: shard.id,
        partitions: opened,
        opened_in: started.elapsed(),
    }));
    drop(ready);

    let stopped = shard::pump(&shard, inbox).await;
    drop(acceptor);
    drop(kafka_acceptors);
    drop(admin_acceptor);
    drop(retention);
    drop(cleaner);
    drop(controller_tasks);
    drop(group_ticks);
    drop(group_holds);
    drop(txn_ticks);
    drop(txn_holds);
    // Replication goes on while requests in flight finish: an acks=all
    // write waits for its followers.
    shutdown(&shard).await;
    drop(replication);
    if let Some(ack) = stopped {
        let _ = ack.send(());
    }
}

/// Hands to the deleter what a deletion cut short by a stop left under the
/// data directory: topic directories already renamed `*.deleted`, and the
/// directory of a topic the metadata no longer has (deleted from the
/// metadata, stopped before its directory was renamed). Best effort: what
/// is not deleted now is at the next start.
fn delete_what_no_topic_owns(data_dir: &std::path::Path, metadata: &Metadata) {
    use sluice_storage::deleter;
    let topics = data_dir.join("topics");
    let Ok(entries) = std::fs::read_dir(&topics) else {
        return;
    };
    if let Err(error) = deleter::delete_leftovers(&topics) {
        tracing::warn!(dir = %topics.display(), %error, "leftover deletions not resumed");
    }
    let owned: std::collections::HashSet<std::path::PathBuf> = metadata
        .topics
        .values()
        .map(|topic| topic.topic_dir(data_dir))
        .collect();
    for path in entries.filter_map(|entry| Some(entry.ok()?.path())) {
        let renamed = path
            .extension()
            .is_some_and(|ext| ext == deleter::DELETED_SUFFIX);
        if renamed || !path.is_dir() || owned.contains(&path) {
            continue;
        }
        tracing::info!(dir = %path.display(), "deleting the files of a topic that no longer exists");
        if let Err(error) = deleter::delete(&path, std::time::Duration::ZERO) {
            tracing::warn!(dir = %path.display(), %error, "not deleted");
        }
    }
}

/// Opens every partition this shard owns, all at once.
async fn open_partitions(shard: &Rc<Shard>) -> Result<usize, String> {
    let metadata: Arc<Metadata> = shard.metadata();
    let mut tasks = Vec::new();
    for topic in metadata.topics.values() {
        let config = log_config(&topic.effective_configs())
            .map_err(|error| format!("topic {}: {error}", topic.name))?;
        for (partition, owner) in topic.shards.iter().enumerate() {
            if shard.owner(*owner) != shard.id
                || !topic.is_replica(partition as u32, shard.config.node_id)
            {
                continue;
            }
            let dir = shard.log_dirs.place(topic, partition as u32);
            let key = PartitionKey::new(topic.id, partition as u32);
            let config = config.clone();
            tasks.push(glommio::spawn_local(async move {
                Log::open(&dir, config)
                    .await
                    .map(|log| (key, log))
                    .map_err(|error| format!("{}: {error}", dir.display()))
            }));
        }
    }
    let mut opened = 0;
    for task in tasks {
        let (key, log) = task.await?;
        shard.partitions.borrow_mut().insert(key, Rc::new(log));
        opened += 1;
    }
    Ok(opened)
}

async fn retention_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.config.retention_check_interval).await;
        let logs: Vec<Rc<Log>> = shard.partitions.borrow().values().cloned().collect();
        for log in logs {
            if let Err(error) = log.apply_retention().await {
                tracing::warn!(log = %log.dir().display(), %error, "retention failed");
            }
        }
    }
}

/// The shard's cleaner loop, in a task queue of its own with a small share
/// of the shard's time: what it does on the shard (planning a pass,
/// swapping segments) waits behind appends and reads. The cleaning itself
/// runs on a thread of its own (see `sluice_storage::log::Log::compact`).
fn spawn_cleaner(shard: Rc<Shard>) -> glommio::Task<()> {
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(10),
        glommio::Latency::NotImportant,
        "cleaner",
    );
    glommio::spawn_local_into(cleaner_loop(shard.clone()), queue)
        .unwrap_or_else(|_| glommio::spawn_local(cleaner_loop(shard)))
}

async fn cleaner_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.config.cleaner_check_interval).await;
        let logs: Vec<Rc<Log>> = shard.partitions.borrow().values().cloned().collect();
        for log in logs {
            if !log.config().cleanup_policy.compact {
                continue;
            }
            match log.compact().await {
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(log = %log.dir().display(), %error, "compaction failed")
                }
            }
        }
    }
}

async fn shutdown(shard: &Rc<Shard>) {
    shard.shutting_down.set(true);
    let deadline = Instant::now() + SHUTDOWN_DRAIN_MAX;
    while shard.in_flight.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let logs: Vec<Rc<Log>> = shard.partitions.borrow().values().cloned().collect();
    for log in logs {
        if let Err(failure) = log.close().await {
            tracing::error!(log = %log.dir().display(), %failure, "log closed with a failure");
        }
    }
}
