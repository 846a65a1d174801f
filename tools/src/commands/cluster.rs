//! `sluice cluster`: a whole cluster on loopback in one command (`local`),
//! a new cluster id (`id`), and what a running cluster looks like
//! (`describe`).
//!
//! `cluster local` starts `sluice serve` once per node, as child processes
//! of this one, each with its own data directory, ports, node id and log
//! file, all with the same voters and cluster id; waits until each serves;
//! prints every node's addresses and the bootstrap strings; and stops them
//! all on SIGINT or SIGTERM. A node that exits on its own (killed by a
//! test, say) is reported and the others keep running; the command that
//! starts it again is in its directory (`command`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sluice_engine::{node_identity, ListenAddrs};

use sluice_net::client::{Client, ClientOptions};

use crate::{
    cli::{ClusterCommand, ClusterLocalArgs, Connect, Format},
    output::{self, Applied, PartitionCounts},
    runtime::{block_on, CliError, CliResult},
};

/// Nodes `cluster local` starts at most: a loopback cluster for trying
/// and testing, not for load.
pub const LOCAL_NODES_MAX: u32 = 9;
/// Ports each node takes from the base port: Kafka, native, admin, peer.
const PORTS_PER_NODE: u16 = 10;
/// How long a node may take to start before the whole cluster is stopped.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping node may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the children are looked at.
const POLL: Duration = Duration::from_millis(100);
/// How long `cluster describe` waits for each other node to connect and
/// to answer: a node that does not is shown as unreachable rather than
/// holding up the whole answer.
const NODE_ASK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(command: ClusterCommand) -> CliResult<()> {
    match command {
        ClusterCommand::Local(args) => local(args),
        ClusterCommand::Id => {
            println!("{}", node_identity::new_cluster_id());
            Ok(())
        }
        ClusterCommand::Describe { format, connect } => describe(format, connect),
    }
}

/// Asks one node of `--brokers` for the cluster, then every other node
/// with a native address, all at once, for how far it applied the
/// metadata log.
fn describe(format: Format, connect: Connect) -> CliResult<()> {
    block_on(async move {
        let client = connect.client().await?;
        let tls = connect.options()?.tls;
        let cluster = client.describe_cluster().await?;
        let partitions = PartitionCounts::of(&client.describe_topics(&[]).await?);
        let asks: Vec<Option<glommio::task::JoinHandle<Applied>>> = cluster
            .nodes
            .iter()
            .map(|node| {
                if node.id == cluster.node_id || node.native_addr.is_empty() {
                    return None;
                }
                let (id, address) = (node.id, node.native_addr.clone());
                Some(glommio::spawn_local(applied_of(id, address, tls.clone())).detach())
            })
            .collect();
        let mut applied = Vec::with_capacity(asks.len());
        for (node, ask) in cluster.nodes.iter().zip(asks) {
            applied.push(match ask {
                Some(ask) => ask.await.unwrap_or(Applied::Unreachable),
                None if node.id == cluster.node_id => Applied::Index(cluster.applied),
                None => Applied::NoAddress,
            });
        }
        match format {
            Format::Text => print!("{}", output::cluster_text(&cluster, &applied, &partitions)),
            Format::Json => println!("{}", output::cluster_json(&cluster, &applied, &partitions)),
        }
        Ok(())
    })?
}

/// How far node `id`, at native address `address`, applied the metadata
/// log, as it says; unreachable if it does not answer within
/// [`NODE_ASK_TIMEOUT`] or another node answers there.
async fn applied_of(
    id: u32,
    address: String,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Applied {
    let options = ClientOptions {
        connect_timeout: NODE_ASK_TIMEOUT,
        request_timeout: NODE_ASK_TIMEOUT,
        tls,
        ..ClientOptions::default()
    };
    let answer = async {
        let client = Client::connect_with(&address, options).await?;
        client.describe_cluster().await
    };
    match answer.await {
        Ok(cluster) if cluster.node_id == id => Applied::Index(cluster.applied),
        Ok(cluster) => {
            tracing::warn!(node = id, %address, answered = cluster.node_id, "another node answered");
            Applied::Unreachable
        }
        Err(error) => {
            tracing::debug!(node = id, %address, %error, "no answer");
            Applied::Unreachable
        }
    }
}

/// One node of a local cluster.
struct LocalNode {
    id: u32,
    voter: bool,
    dir: PathBuf,
    kafka_addr: String,
    native_addr: String,
    admin_addr: String,
    peer_addr: String,
    args: Vec<String>,
}

/// How many of `nodes` are voters: all of 1, 3 or 5; else the largest odd
/// count below, at most 5.
fn voter_count(nodes: u32) -> u32 {
    match nodes {
        1..=2 => 1,
        3..=4 => 3,
        _ => 5,
    }
}

fn plan(args: &ClusterLocalArgs, cluster_id: &str, executable: &Path) -> Vec<LocalNode> {
    let voters = voter_count(args.nodes);
    let port = |node: u32, offset: u16| {
        let port = u32::from(args.base_port) + node * u32::from(PORTS_PER_NODE) + u32::from(offset);
        format!("127.0.0.1:{port}")
    };
    let voter_list = (0..voters)
        .map(|node| format!("{node}@{}", port(node, 3)))
        .collect::<Vec<_>>()
        .join(",");
    (0..args.nodes)
        .map(|id| {
            let dir = args.data_dir.join(format!("node-{id}"));
            let mut node = LocalNode {
                id,
                voter: id < voters,
                kafka_addr: port(id, 0),
                native_addr: port(id, 1),
                admin_addr: port(id, 2),
                peer_addr: port(id, 3),
                args: Vec::new(),
                dir,
            };
            let mut command = vec![
                executable.display().to_string(),
                "serve".to_string(),
                "--node-id".to_string(),
                id.to_string(),
                // One argument: an id may start with `-` (it is URL-safe
                // base64), which would read as an option of its own.
                format!("--cluster-id={cluster_id}"),
                "--data-dir".to_string(),
                node.dir.join("data").display().to_string(),
                "--kafka-addr".to_string(),
                node.kafka_addr.clone(),
                "--native-addr".to_string(),
                node.native_addr.clone(),
                "--admin-addr".to_string(),
                node.admin_addr.clone(),
                "--peer-addr".to_string(),
                node.peer_addr.clone(),
                "--voters".to_string(),
                voter_list.clone(),
                "--ready-file".to_string(),
                node.dir.join("ready").display().to_string(),
            ];
            if let Some(cores) = args.cores {
                command.push("--cores".to_string());
                command.push(cores.to_string());
            }
            let rack = args
                .racks
                .as_deref()
                .and_then(|racks| racks.split(',').nth(id as usize))
                .map(str::trim)
                .filter(|rack| !rack.is_empty());
            if let Some(rack) = rack {
                command.push(format!("--rack={rack}"));
            }
            // Three nodes or more: topics get three replicas, two of them
            // in sync for acks=all, as a production cluster would.
            if args.nodes >= 3 {
                command.extend(
                    [
                        "--default-replication-factor",
                        "3",
                        "--min-insync-replicas",
                        "2",
                    ]
                    .map(String::from),
                );
            }
            node.args = command;
            node
        })
        .collect()
}

/// The cluster id of `data_dir` (`cluster.id`), made the first time.
fn cluster_id(data_dir: &Path) -> CliResult<String> {
    let path = data_dir.join("cluster.id");
    match std::fs::read_to_string(&path) {
        Ok(text) if node_identity::is_cluster_id(text.trim()) => Ok(text.trim().to_string()),
        Ok(text) => Err(CliError(format!(
            "{} holds {text:?}, not a cluster id",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = node_identity::new_cluster_id();
            std::fs::write(&path, format!("{id}\n"))?;
            Ok(id)
        }
        Err(error) => Err(error.into()),
    }
}

fn local(args: ClusterLocalArgs) -> CliResult<()> {
    if args.nodes == 0 || args.nodes > LOCAL_NODES_MAX {
        return Err(CliError(format!(
            "--nodes {}: a local cluster has 1 to {LOCAL_NODES_MAX} nodes",
            args.nodes
        )));
    }
    let last_port = u32::from(args.base_port) + args.nodes * u32::from(PORTS_PER_NODE);
    if last_port > u32::from(u16::MAX) {
        return Err(CliError(format!(
            "--base-port {}: {} nodes need ports up to {last_port}",
            args.base_port, args.nodes
        )));
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let data_dir = std::path::absolute(&args.data_dir)?;
    let args = ClusterLocalArgs { data_dir, ..args };
    let cluster_id = cluster_id(&args.data_dir)?;
    let executable = std::env::current_exe()?;
    let nodes = plan(&args, &cluster_id, &executable);

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut children: Vec<Option<Child>> = Vec::new();
    for node in &nodes {
        std::fs::create_dir_all(&node.dir)?;
        let _ = std::fs::remove_file(node.dir.join("ready"));
        std::fs::write(node.dir.join("command"), shell_line(&node.args) + "\n")?;
        let log = std::fs::File::create(node.dir.join("log"))?;
        let child = Command::new(&node.args[0])
            .args(&node.args[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn();
        match child {
            Ok(child) => children.push(Some(child)),
            Err(error) => {
                stop_all(&mut children);
                return Err(CliError(format!("node {} did not start: {error}", node.id)));
            }
        }
    }
    if let Err(error) = wait_ready(&nodes, &mut children, &stop) {
        stop_all(&mut children);
        return Err(error);
    }
    let summary = summary(&nodes, &children, &cluster_id);
    print!("{summary}");
    if let Some(path) = &args.ready_file {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        std::fs::write(&temporary, ready_text(&nodes, &children, &cluster_id))?;
        std::fs::rename(&temporary, path)?;
    }
    while !stop.load(Ordering::Relaxed) {
        for (node, slot) in nodes.iter().zip(children.iter_mut()) {
            let exited = slot
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                eprintln!(
                    "node {} exited ({status}); start it again with: {}",
                    node.id,
                    node.dir.join("command").display()
                );
                *slot = None;
            }
        }
        std::thread::sleep(POLL);
    }
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("stopping {} nodes", nodes.len());
    stop_all(&mut children);
    Ok(())
}

/// Waits until every node's ready file is there; fails if a node exits,
/// a signal comes, or [`START_TIMEOUT`] passes.
fn wait_ready(
    nodes: &[LocalNode],
    children: &mut [Option<Child>],
    stop: &AtomicBool,
) -> CliResult<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    for (node, slot) in nodes.iter().zip(children.iter_mut()) {
        let ready = node.dir.join("ready");
        while ListenAddrs::read_ready_file(&ready).is_err() {
            if let Some(status) = slot.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = node.dir.join("log");
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let last = tail.lines().rev().take(5).collect::<Vec<_>>();
                let last: Vec<&str> = last.into_iter().rev().collect();
                return Err(CliError(format!(
                    "node {} exited while starting ({status}); {}:\n{}",
                    node.id,
                    log.display(),
                    last.join("\n")
                )));
            }
            if stop.load(Ordering::Relaxed) {
                return Err(CliError("stopped while starting".to_string()));
            }
            if Instant::now() > deadline {
                return Err(CliError(format!(
                    "node {} did not serve within {START_TIMEOUT:?}: see {}",
                    node.id,
                    node.dir.join("log").display()
                )));
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

/// SIGTERM to every child still running, then each waited for (killed
/// after [`STOP_TIMEOUT`]).
fn stop_all(children: &mut [Option<Child>]) {
    for child in children.iter().flatten() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: a signal to a child this process started and has
            // not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for child in children.iter_mut().flatten() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(POLL),
            }
        }
    }
}

fn bootstrap(nodes: &[LocalNode], addr: impl Fn(&LocalNode) -> &str) -> String {
    nodes.iter().map(addr).collect::<Vec<_>>().join(",")
}

fn summary(nodes: &[LocalNode], children: &[Option<Child>], cluster_id: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cluster {cluster_id}: {} nodes", nodes.len());
    let _ = writeln!(
        out,
        "{:<5} {:<7} {:<16} {:<16} {:<16} {:<16} PID",
        "NODE", "ROLE", "KAFKA", "NATIVE", "ADMIN", "PEER"
    );
    for (node, child) in nodes.iter().zip(children) {
        let _ = writeln!(
            out,
            "{:<5} {:<7} {:<16} {:<16} {:<16} {:<16} {}",
            node.id,
            if node.voter { "voter" } else { "broker" },
            node.kafka_addr,
            node.native_addr,
            node.admin_addr,
            node.peer_addr,
            child.as_ref().map_or(0, Child::id)
        );
    }
    let _ = writeln!(
        out,
        "bootstrap (Kafka):  {}",
        bootstrap(nodes, |n| &n.kafka_addr)
    );
    let _ = writeln!(
        out,
        "brokers (native):   {}",
        bootstrap(nodes, |n| &n.native_addr)
    );
    let _ = writeln!(out, "stop with Ctrl-C");
    out
}

/// `key=value` lines: the bootstrap strings, then each node's addresses,
/// data directory and process id.
fn ready_text(nodes: &[LocalNode], children: &[Option<Child>], cluster_id: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cluster_id={cluster_id}");
    let _ = writeln!(out, "nodes={}", nodes.len());
    let _ = writeln!(
        out,
        "kafka_bootstrap={}",
        bootstrap(nodes, |n| &n.kafka_addr)
    );
    let _ = writeln!(
        out,
        "native_bootstrap={}",
        bootstrap(nodes, |n| &n.native_addr)
    );
    for (node, child) in nodes.iter().zip(children) {
        let id = node.id;
        let _ = writeln!(out, "node.{id}.voter={}", node.voter);
        let _ = writeln!(out, "node.{id}.kafka_addr={}", node.kafka_addr);
        let _ = writeln!(out, "node.{id}.native_addr={}", node.native_addr);
        let _ = writeln!(out, "node.{id}.admin_addr={}", node.admin_addr);
        let _ = writeln!(out, "node.{id}.peer_addr={}", node.peer_addr);
        let _ = writeln!(out, "node.{id}.dir={}", node.dir.display());
        let _ = writeln!(out, "node.{id}.pid={}", child.as_ref().map_or(0, Child::id));
    }
    out
}

/// `args` as one shell line, each quoted where it needs to be.
fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_are_an_odd_count_of_at_most_five() {
        let counts: Vec<u32> = (1..=9).map(voter_count).collect();
        assert_eq!(counts, [1, 1, 3, 3, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn every_node_gets_its_ports_directory_and_the_same_voters() {
        let args = ClusterLocalArgs {
            nodes: 4,
            data_dir: PathBuf::from("/c"),
            base_port: 20000,
            cores: Some(1),
            ready_file: None,
            racks: Some("east,,west".to_string()),
        };
        // An id may start with `-`: it stays the option's value.
        let nodes = plan(&args, "-uAAAAAAAAAAAAAAAAAAAA", Path::new("/bin/sluice"));
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[1].kafka_addr, "127.0.0.1:20010");
        assert_eq!(nodes[1].native_addr, "127.0.0.1:20011");
        assert_eq!(nodes[3].peer_addr, "127.0.0.1:20033");
        assert_eq!(
            nodes.iter().map(|n| n.voter).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        let line = shell_line(&nodes[3].args);
        assert!(line.starts_with("/bin/sluice serve --node-id 3 --cluster-id=-uAAAAAAAAAAAAAAAAAAAA --data-dir /c/node-3/data"), "{line}");
        assert!(
            line.contains("--voters 0@127.0.0.1:20003,1@127.0.0.1:20013,2@127.0.0.1:20023"),
            "{line}"
        );
        assert!(line.contains("--cores 1"), "{line}");
        let racks: Vec<bool> = nodes
            .iter()
            .map(|node| shell_line(&node.args).contains("--rack="))
            .collect();
        assert_eq!(racks, [true, false, true, false], "east, none, west, none");
        assert!(shell_line(&nodes[2].args).contains("--rack=west"));
        assert!(
            line.ends_with("--default-replication-factor 3 --min-insync-replicas 2"),
            "{line}"
        );
        assert_eq!(
            shell_line(&["a b".into(), "it's".into()]),
            "'a b' 'it'\\''s'"
        );
    }
}
