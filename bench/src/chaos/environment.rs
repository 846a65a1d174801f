//! What a chaos run builds around its nodes so that it can break it: a
//! small loop-mounted filesystem per node, to fill ([`Disks`]), and a
//! network namespace per node on a bridge of its own, to cut
//! ([`Network`]). Both are made before the nodes start and removed when
//! dropped, whatever happened in between.
//!
//! A node's disk is an ext4 image of `disk_mb` MiB mounted at
//! `{dir}/disk-N`, which its start command names as `{disk}`. A full disk
//! is a filler file taking every free block, removed when the fault heals.
//!
//! A node's network namespace `sluice-chaos-T-N` (T: this run's tag) holds
//! one end of a veth pair whose other end is on the run's bridge; node N
//! has address `10.213.T'.(N+2)`, the bridge (and the clients, which stay
//! in the harness's namespace) `10.213.T'.1`. A start command names its
//! own address `{ip}` and node M's `{ipM}`, as do the workload's client
//! addresses. A partition is a set of blackhole routes between the two
//! sides, in every node's namespace: packets between them vanish, as on a
//! cut link, while every node still reaches the clients (Jepsen's model).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::BenchError;

/// Runs `program` with `args`; its failure, with what it printed, is the
/// error.
fn command(program: &str, args: &[&str]) -> Result<(), BenchError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| BenchError::Cluster(format!("{program} did not start: {error}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BenchError::Cluster(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// One small filesystem per node.
pub struct Disks {
    mounts: Vec<PathBuf>,
}

impl Disks {
    /// Makes and mounts an ext4 image of `mb` MiB for each of `nodes`
    /// under `dir` (root and a free loop device needed).
    pub fn mount(dir: &Path, nodes: usize, mb: u64) -> Result<Disks, BenchError> {
        let mut disks = Disks { mounts: Vec::new() };
        for index in 0..nodes {
            let image = dir.join(format!("disk-{index}.img"));
            let mount = dir.join(format!("disk-{index}"));
            std::fs::create_dir_all(&mount)
                .and_then(|()| std::fs::File::create(&image))
                .and_then(|file| file.set_len(mb << 20))
                .map_err(|source| BenchError::Write {
                    path: image.clone(),
                    source,
                })?;
            let (image, mount_path) = (path_str(&image)?, path_str(&mount)?);
            // No blocks kept for root (the nodes may run as root), nothing
            // initialised lazily behind the run's back.
            command(
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-m",
                    "0",
                    "-E",
                    "lazy_itable_init=0,lazy_journal_init=0",
                    image,
                ],
            )?;
            command("mount", &["-o", "loop", image, mount_path]).map_err(|error| {
                BenchError::Cluster(format!(
                    "{error} (a full-disk fault needs root and a free loop device)"
                ))
            })?;
            disks.mounts.push(mount);
        }
        Ok(disks)
    }

    /// Node `index`'s mount point.
    pub fn path(&self, index: usize) -> &Path {
        &self.mounts[index]
    }

    /// Fills node `index`'s filesystem: a filler file takes every block
    /// left.
    pub fn fill(&self, index: usize) -> Result<(), BenchError> {
        let path = self.mounts[index].join(FILLER);
        let file = std::fs::File::create(&path).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
        let mut length = 0i64;
        // The free space as the filesystem says, then what is left in
        // ever smaller steps: ext4's count is not exact to the block.
        let mut step = free_bytes(&self.mounts[index]).max(4096) as i64;
        while step >= 4096 {
            // SAFETY: a valid open descriptor for the duration of the call.
            let allocated =
                unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, length, step) };
            if allocated == 0 {
                length += step;
            } else {
                step /= 2;
            }
        }
        Ok(())
    }

    /// Frees node `index`'s filesystem: the filler removed and the
    /// filesystem committed, so that the space is free at once (ext4
    /// reuses freed blocks only after a journal commit).
    pub fn free(&self, index: usize) -> Result<(), BenchError> {
        let path = self.mounts[index].join(FILLER);
        let _ = std::fs::remove_file(&path);
        let root = std::fs::File::open(&self.mounts[index]).map_err(|source| BenchError::Read {
            path: path.clone(),
            source,
        })?;
        // SAFETY: a valid open descriptor for the duration of the call.
        unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)) };
        Ok(())
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        for mount in &self.mounts {
            let Some(path) = mount.to_str() else { continue };
            if command("umount", &[path]).is_err() {
                let _ = command("umount", &["-l", path]);
            }
            let _ = std::fs::remove_file(mount.with_extension("img"));
        }
    }
}

/// The filler file's name on a full disk.
const FILLER: &str = "chaos-filler";

fn path_str(path: &Path) -> Result<&str, BenchError> {
    path.to_str()
        .ok_or_else(|| BenchError::Cluster(format!("{} is not UTF-8", path.display())))
}

fn free_bytes(path: &Path) -> u64 {
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs fills the zeroed struct from a NUL-terminated path.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
            return 0;
        }
        stat.f_bavail * stat.f_frsize
    }
}

/// A network namespace per node on a bridge of the run's own.
pub struct Network {
    tag: u32,
    nodes: usize,
    /// The blackhole routes in place, as (in node, to node).
    cut: Vec<(usize, usize)>,
}

impl Network {
    /// Makes the namespaces, the bridge and the links for `nodes` nodes
    /// (root and iproute2 needed).
    pub fn build(nodes: usize) -> Result<Network, BenchError> {
        let tag = std::process::id() % 10_000;
        let network = Network {
            tag,
            nodes,
            cut: Vec::new(),
        };
        let bridge = network.bridge();
        command("ip", &["link", "add", &bridge, "type", "bridge"]).map_err(|error| {
            BenchError::Cluster(format!("{error} (a network fault needs root and iproute2)"))
        })?;
        command(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", network.gateway()),
                "dev",
                &bridge,
            ],
        )?;
        command("ip", &["link", "set", &bridge, "up"])?;
        for index in 0..nodes {
            let namespace = network.namespace(index);
            let (host, inside) = network.veth(index);
            command("ip", &["netns", "add", &namespace])?;
            command(
                "ip",
                &[
                    "link", "add", &host, "type", "veth", "peer", "name", &inside, "netns",
                    &namespace,
                ],
            )?;
            command("ip", &["link", "set", &host, "master", &bridge])?;
            command("ip", &["link", "set", &host, "up"])?;
            let inside_ip = format!("{}/24", network.ip(index));
            for args in [
                vec!["link", "set", "lo", "up"],
                vec!["addr", "add", &inside_ip, "dev", &inside],
                vec!["link", "set", &inside, "up"],
            ] {
                let mut full = vec!["-n", namespace.as_str()];
                full.extend(args);
                command("ip", &full)?;
            }
        }
        Ok(network)
    }

    fn bridge(&self) -> String {
        format!("scb{}", self.tag)
    }

    fn veth(&self, index: usize) -> (String, String) {
        (
            format!("scv{}h{index}", self.tag),
            format!("scv{}n{index}", self.tag),
        )
    }

    /// Node `index`'s network namespace.
    pub fn namespace(&self, index: usize) -> String {
        format!("sluice-chaos-{}-{index}", self.tag)
    }

    fn subnet(&self) -> u32 {
        self.tag % 250
    }

    /// The bridge's address, which the clients' packets come from.
    pub fn gateway(&self) -> String {
        format!("10.213.{}.1", self.subnet())
    }

    /// Node `index`'s address.
    pub fn ip(&self, index: usize) -> String {
        format!("10.213.{}.{}", self.subnet(), index + 2)
    }

    /// `text` with `{ip}` as node `own`'s address and `{ipM}` as node
    /// M's.
    pub fn expand(&self, text: &str, own: usize) -> String {
        let mut text = text.replace("{ip}", &self.ip(own));
        for index in 0..self.nodes {
            text = text.replace(&format!("{{ip{index}}}"), &self.ip(index));
        }
        text
    }

    /// Cuts `side` off from the other nodes, both ways.
    pub fn partition(&mut self, side: &[usize]) -> Result<(), BenchError> {
        for a in 0..self.nodes {
            for b in 0..self.nodes {
                if a != b && side.contains(&a) != side.contains(&b) {
                    let route = format!("{}/32", self.ip(b));
                    command(
                        "ip",
                        &[
                            "-n",
                            &self.namespace(a),
                            "route",
                            "add",
                            "blackhole",
                            &route,
                        ],
                    )?;
                    self.cut.push((a, b));
                }
            }
        }
        Ok(())
    }

    /// Every cut mended.
    pub fn heal(&mut self) -> Result<(), BenchError> {
        for (a, b) in std::mem::take(&mut self.cut) {
            let route = format!("{}/32", self.ip(b));
            command(
                "ip",
                &[
                    "-n",
                    &self.namespace(a),
                    "route",
                    "del",
                    "blackhole",
                    &route,
                ],
            )?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for index in 0..self.nodes {
            let _ = command("ip", &["netns", "del", &self.namespace(index)]);
            let _ = command("ip", &["link", "del", &self.veth(index).0]);
        }
        let _ = command("ip", &["link", "del", &self.bridge()]);
    }
}
