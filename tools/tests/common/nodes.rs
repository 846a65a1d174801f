//! A cluster of `sluice serve` processes started one by one, each with
//! settings of its own (several listeners, certificates), where
//! `sluice cluster local` gives every node the same ones.
//!
//! Node N has [`Nodes::ports_per_node`] ports from a block found free:
//! offset 0 is its peer port, 1 its native port; the test gives the
//! others their meaning. Every node is a voter.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{cluster::free_ports, SLUICE};

/// The cluster id every node is started with.
const CLUSTER_ID: &str = "BwcHBwcHBwcHBwcHBwcHBw";

/// How long a node may take to serve.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The nodes, killed (SIGKILL) on drop.
pub struct Nodes {
    children: Vec<Option<Child>>,
    base: u16,
    ports_per_node: u16,
    dir: tempfile::TempDir,
}

impl Nodes {
    /// `count` nodes of `ports_per_node` ports each, not started yet.
    pub fn new(count: u16, ports_per_node: u16) -> Nodes {
        assert!(ports_per_node >= 2, "a peer port and a native port");
        Nodes {
            children: (0..count).map(|_| None).collect(),
            base: free_ports(count * ports_per_node),
            ports_per_node,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn port(&self, node: u16, offset: u16) -> u16 {
        assert!(offset < self.ports_per_node);
        self.base + node * self.ports_per_node + offset
    }

    /// A directory for the test's files (certificates, users).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn node_dir(&self, node: u16) -> PathBuf {
        self.dir.path().join(format!("node-{node}"))
    }

    /// Starts node `node` with `env` besides its identity, the voters and
    /// its peer and native addresses, and waits until it serves.
    pub fn start(&mut self, node: u16, env: &[(&str, String)]) {
        assert!(self.children[node as usize].is_none(), "node {node} runs");
        let voters = (0..self.children.len() as u16)
            .map(|voter| format!("{voter}@127.0.0.1:{}", self.port(voter, 0)))
            .collect::<Vec<_>>()
            .join(",");
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).unwrap();
        let ready = dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .unwrap();
        let mut child = Command::new(SLUICE)
            .args(["serve", "--cores", "1", "--admin-addr", "off", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--ready-file")
            .arg(&ready)
            .env("SLUICE_NODE_ID", node.to_string())
            .env("SLUICE_CLUSTER_ID", CLUSTER_ID)
            .env("SLUICE_VOTERS", voters)
            .env(
                "SLUICE_PEER_ADDR",
                format!("127.0.0.1:{}", self.port(node, 0)),
            )
            .env(
                "SLUICE_NATIVE_ADDR",
                format!("127.0.0.1:{}", self.port(node, 1)),
            )
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sluice serve starts");
        let deadline = Instant::now() + START_TIMEOUT;
        while !ready.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "node {node} exited while starting ({status}): {}",
                    self.log(node)
                );
            }
            assert!(Instant::now() < deadline, "node {node} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children[node as usize] = Some(child);
    }

    /// SIGKILL.
    pub fn kill(&mut self, node: u16) {
        if let Some(mut child) = self.children[node as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What node `node` logged (its standard error), every run of it.
    pub fn log(&self, node: u16) -> String {
        std::fs::read_to_string(self.node_dir(node).join("log")).unwrap_or_default()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in 0..self.children.len() as u16 {
            self.kill(node);
        }
    }
}
