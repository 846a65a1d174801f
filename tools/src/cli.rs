//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_engine::{acl::Operation, sasl::scram::Hash};
use sluice_net::{
    client::{Acks, ResetTo, StartOffset},
    native::messages::ElectionType,
};

use crate::{
    config::{host_port, listener, ConfigError},
    kafka_client::KafkaAddr,
};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: an event streaming broker, and the commands to use it"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a broker until SIGINT or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Create, list, describe, configure and delete topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Produce one record per line of standard input.
    Produce(ProduceArgs),
    /// Print the records of a topic.
    Consume(ConsumeArgs),
    /// List, describe, reset the offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// List, describe and abort Kafka transactions.
    #[command(subcommand)]
    Txn(TxnCommand),
    /// Start a whole cluster on this machine, or make a cluster id.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Add, list and remove ACL bindings (Kafka's), through the Kafka
    /// listener: with SASL and TLS, as a user allowed to (a super user).
    #[command(subcommand)]
    Acl(AclCommand),
    /// Create, list and delete users' SCRAM credentials (SCRAM-SHA-256,
    /// SCRAM-SHA-512), kept in the cluster's metadata, through the Kafka
    /// listener: as a user allowed to (a super user).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster on loopback: one `sluice serve` per node, as child
    /// processes, stopped together on Ctrl-C or SIGTERM.
    Local(ClusterLocalArgs),
    /// Print a new cluster id (for `serve --cluster-id`).
    Id,
    /// Show the cluster's nodes (voter or broker, alive, fenced or not
    /// registered, rack, addresses, and how far each applied the metadata
    /// log, asked of each node) and the controller leader and its term.
    Describe {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(Debug, Args)]
pub struct ClusterLocalArgs {
    /// Nodes, 1 to 9, every one a broker; the first 1, 3 or 5 of them
    /// (the most, up to 5, that N allows) are also the controller voters.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Where the nodes' data directories, logs and the cluster id live.
    #[arg(long, value_name = "DIR", default_value = "./sluice-cluster")]
    pub data_dir: PathBuf,
    /// Node N listens on BASE+10N (Kafka), +1 (native), +2 (admin HTTP)
    /// and +3 (peer).
    #[arg(long, value_name = "PORT", default_value_t = 19092)]
    pub base_port: u16,
    /// Shards of each node [default: every available core].
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Once every node serves, write FILE: `key=value` lines with the
    /// bootstrap strings and each node's addresses, directory and pid.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Each node's rack (`serve --rack`), in node order, separated by
    /// commas; a node past the list or given an empty name has none.
    #[arg(long, value_name = "RACK[,RACK...]")]
    pub racks: Option<String>,
}

/// Flags win over `SLUICE_*` variables, which win over the config file,
/// which wins over the defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of broker settings (keys: data_dir, native_addr, cores,
    /// broker_id, default_partitions, ...).
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where topics and metadata live [default: ./sluice-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More directories for partitions, one per disk (Kafka's
    /// `log.dirs`): new partitions go to the directory (the data
    /// directory among them) holding the fewest.
    #[arg(long, value_name = "DIR[,DIR...]")]
    pub log_dirs: Option<String>,
    /// This node's id in its cluster (Kafka's `node.id`) [default: 0]. The
    /// data directory records it at the first start; a later start with
    /// another id is refused.
    #[arg(long, value_name = "N")]
    pub node_id: Option<u32>,
    /// Where this node listens for other nodes [default: 127.0.0.1:9193].
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: Option<String>,
    /// The controller quorum, by node id and peer address [default: this
    /// node alone]: 1, 3 or 5 voters, this node one of them. A new data
    /// directory forms the quorum with them (the same list on every
    /// voter, with the same --cluster-id).
    #[arg(long, value_name = "ID@HOST:PORT[,...]")]
    pub voters: Option<String>,
    /// The cluster a new data directory joins: 22 characters of URL-safe
    /// base64, the same on every node (`sluice cluster id` prints a new
    /// one) [default: a new cluster]. A data directory of another cluster
    /// is refused.
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
    /// This voter lost its data directory: start empty and be caught up
    /// by the quorum's leader (voting again only then), instead of forming
    /// a new quorum as a new data directory otherwise does.
    #[arg(long)]
    pub rejoin: bool,
    /// This broker's rack (Kafka's `broker.rack`), shown to clients.
    #[arg(long, value_name = "RACK")]
    pub rack: Option<String>,
    /// Where the native protocol listens [default: 127.0.0.1:9192].
    #[arg(long, value_name = "HOST:PORT")]
    pub native_addr: Option<String>,
    /// Where the Kafka protocol listens, or `off`: `[NAME://]HOST:PORT`,
    /// comma-separated for several listeners (Kafka's `listeners`)
    /// [default: 127.0.0.1:9092].
    #[arg(
        long,
        value_name = "[NAME://]HOST:PORT,...",
        conflicts_with = "kafka_listener"
    )]
    pub kafka_addr: Option<String>,
    /// A Kafka listener, `NAME://HOST:PORT` (e.g. `SASL_SSL://0.0.0.0:9093`);
    /// given again for each of several.
    #[arg(long, value_name = "NAME://HOST:PORT")]
    pub kafka_listener: Vec<String>,
    /// The addresses Kafka clients are told to connect to:
    /// `NAME://HOST:PORT` of some listeners, comma-separated (Kafka's
    /// `advertised.listeners`), or `HOST:PORT` of a lone listener
    /// [default: where each listens].
    #[arg(long, value_name = "[NAME://]HOST:PORT,...")]
    pub kafka_advertised_addr: Option<String>,
    /// Where the admin HTTP listener (Prometheus `/metrics`) listens, or
    /// `off` [default: 127.0.0.1:9644].
    #[arg(long, value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,
    /// Shards, one per core [default: every available core].
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Replicas of a topic created without a replication factor (Kafka's
    /// `default.replication.factor`) [default: 1].
    #[arg(long, value_name = "N")]
    pub default_replication_factor: Option<u16>,
    /// `min.insync.replicas` given to a topic created without it (Kafka's
    /// broker setting of that name) [default: 1].
    #[arg(long, value_name = "N")]
    pub min_insync_replicas: Option<u32>,
    /// Which replica a Kafka consumer reads from (Kafka's
    /// `replica.selector.class`): `leader`, or `rack-aware` (or Kafka's
    /// `org.apache.kafka.common.replica.RackAwareReplicaSelector`): a
    /// follower in the consumer's rack (`client.rack`) when one is in
    /// sync [default: leader].
    #[arg(long, value_name = "SELECTOR")]
    pub replica_selector: Option<String>,
    /// Once the broker serves, write the addresses it listens on to FILE
    /// (written whole, by a rename): lines `native_addr=HOST:PORT`,
    /// `kafka_addr=HOST:PORT` and `admin_addr=HOST:PORT` (`off` for a
    /// listener there is not). With a port of 0 the kernel chooses one,
    /// the same for every shard; this file says which. Removed at a
    /// graceful stop.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Connect {
    /// Brokers to connect to; the first that answers is used.
    #[arg(
        long,
        env = "SLUICE_BROKERS",
        default_value = "127.0.0.1:9192",
        value_name = "HOST:PORT[,...]"
    )]
    pub brokers: String,
    /// The authorities the broker's certificate must chain to (PEM): given,
    /// the native protocol is spoken over TLS (a native listener of
    /// `SSL://`).
    #[arg(long, env = "SLUICE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM), for a native listener of mutual TLS;
    /// its subject is the principal ACLs name.
    #[arg(long, env = "SLUICE_CERT", value_name = "FILE", requires = "ca")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "SLUICE_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl Connect {
    /// A client of the first of `brokers` that answers, over TLS with
    /// `--ca`.
    pub async fn client(&self) -> crate::runtime::CliResult<sluice_net::client::Client> {
        let options = self.options()?;
        Ok(sluice_net::client::Client::connect_with(&self.brokers, options).await?)
    }

    /// The client's options: TLS with `--ca` (and `--cert`, `--key`).
    pub fn options(&self) -> crate::runtime::CliResult<sluice_net::client::ClientOptions> {
        let tls = match &self.ca {
            None => None,
            Some(ca) => Some(crate::kafka_client::tls_config(
                ca,
                crate::kafka_client::identity(self.cert.as_deref(), self.key.as_deref())?,
            )?),
        };
        Ok(sluice_net::client::ClientOptions {
            tls,
            ..Default::default()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions [default: the broker's `default_partitions`].
        #[arg(long, short = 'p', value_name = "N")]
        partitions: Option<u32>,
        /// Replicas of each partition, placed over the live brokers
        /// (rack-aware) [default: 1].
        #[arg(long, short = 'r', value_name = "N")]
        replication_factor: Option<u16>,
        /// The nodes of each partition, as Kafka's tools write them:
        /// partitions separated by commas, a partition's nodes by colons,
        /// its leader first (`1:2,2:3,3:1`). Instead of --partitions and
        /// --replication-factor.
        #[arg(long, value_name = "NODES", value_parser = parse_assignment, conflicts_with_all = ["partitions", "replication_factor"])]
        replica_assignment: Option<ReplicaAssignment>,
        /// A topic config, such as retention.ms=86400000 (repeatable).
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        connect: Connect,
    },
    /// List topics.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show a topic's configs and, per partition, its leader, replicas,
    /// in-sync replicas and leader epoch, its shard, log start and end
    /// offsets and size.
    Describe {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Set topic configs; the others keep their values.
    AlterConfig {
        name: String,
        /// A topic config, such as retention.ms=86400000 (repeatable).
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value, required = true)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete a topic and its data.
    Delete {
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Elect partitions' leaders (Kafka's ElectLeaders): the preferred
    /// replica, the first of a partition's replicas, once it is alive and
    /// in sync; or, unclean, any alive replica of a partition that has no
    /// leader, which loses the records only the lost replicas held. Prints
    /// what happened to each partition; fails if an election that was
    /// needed could not be held.
    ElectLeaders {
        /// The topic [default: every partition of every topic, and only
        /// the partitions that needed an election are printed].
        topic: Option<String>,
        /// Only this partition of TOPIC (repeatable) [default: every
        /// partition of TOPIC].
        #[arg(long, short = 'p', value_name = "P", requires = "topic")]
        partition: Vec<u32>,
        #[arg(long = "type", value_enum, default_value_t = ElectionArg::Preferred)]
        election: ElectionArg,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Move partitions to other brokers while they serve (Kafka's
    /// partition reassignment): the new replicas copy the partition from
    /// its leader and join the in-sync set, then the replicas left out
    /// drop theirs, and a leader left out hands over to the first new
    /// replica in sync. Prints whether each move started; `sluice topic
    /// moves` shows the moves in progress.
    Move {
        topic: String,
        /// The partition to move (repeatable).
        #[arg(long, short = 'p', value_name = "P", required = true)]
        partition: Vec<u32>,
        /// The partition's new replicas, its preferred leader first
        /// (`2,3,4`).
        #[arg(
            long,
            value_name = "NODES",
            value_delimiter = ',',
            required_unless_present = "cancel",
            conflicts_with = "cancel"
        )]
        to: Vec<u32>,
        /// Each new replica is sent at most this many bytes per second
        /// while it catches up (a suffix K, M or G multiplies by 1024,
        /// 1024², 1024³) [default: unthrottled].
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        throttle: Option<u64>,
        /// The new replicas may be more or fewer than the partition has.
        #[arg(long)]
        allow_replication_factor_change: bool,
        /// Cancel the partitions' moves in progress: they go back to
        /// their original replicas.
        #[arg(long)]
        cancel: bool,
        /// Wait until the moves are done.
        #[arg(long, conflicts_with = "cancel")]
        wait: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show the partition moves in progress: every replica, the ones
    /// being added and the ones leaving, and the pace.
    Moves {
        /// Only this topic's [default: every topic's].
        topic: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
}

/// A rate in bytes per second: a count, or one with a suffix K, M or G
/// (1024, 1024², 1024³).
fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&text[..at], 1 << 20),
        Some((at, 'g' | 'G')) => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit))
        .filter(|rate| *rate > 0)
        .ok_or_else(|| format!("{text:?} is not a rate: a positive count of bytes, with K, M or G"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ElectionArg {
    /// The preferred replica, if it is alive and in sync.
    Preferred,
    /// Any alive replica of a partition without a leader.
    Unclean,
}

impl From<ElectionArg> for ElectionType {
    fn from(election: ElectionArg) -> ElectionType {
        match election {
            ElectionArg::Preferred => ElectionType::Preferred,
            ElectionArg::Unclean => ElectionType::Unclean,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups: state, protocol type, members.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show a group's state and members (with what each is assigned) and,
    /// per partition, the committed offset, the log end and the lag. The
    /// lag counts to the last stable offset, not the log end: they differ
    /// only while a transaction is open, whose records a read_committed
    /// consumer cannot read yet (the broker does not know which isolation
    /// a group's consumers use).
    Describe {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Move a group's committed offsets in a topic, in every partition (or
    /// one). Only while the group has no members: stop its consumers first.
    ResetOffsets {
        name: String,
        #[arg(long, value_name = "TOPIC")]
        topic: String,
        /// Reset only this partition [default: every partition].
        #[arg(long, short = 'p', value_name = "P")]
        partition: Option<u32>,
        /// earliest, latest, an offset (brought inside the log), or a time:
        /// time:MS (ms since the epoch) or an ISO-8601 date
        /// (2024-05-01T12:00:00Z; UTC when no zone is given) for the first
        /// record at or after it.
        #[arg(long, value_parser = parse_reset_to, value_name = "earliest|latest|OFFSET|time:MS|DATE")]
        to: ResetTo,
        /// Show the new offsets without committing them.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete a group and its committed offsets; only while it has no
    /// members.
    Delete {
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// List the transactional ids of every node: the node that coordinates
    /// each, its producer id and its state.
    List {
        /// Only ids in this state (Empty, Ongoing, PrepareCommit,
        /// PrepareAbort, CompleteCommit, CompleteAbort, ...); repeat for
        /// several.
        #[arg(long, value_name = "STATE", value_parser = parse_txn_state)]
        state: Vec<String>,
        /// Only ids of this producer id; repeat for several.
        #[arg(long, value_name = "ID")]
        producer_id: Vec<i64>,
        /// Only transactions open for at least this long.
        #[arg(long, value_name = "MS")]
        running_longer_than: Option<u64>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show a transactional id: its coordinator, state, producer id and
    /// epoch, timeout, when its transaction started and its partitions.
    Describe {
        transactional_id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: Connect,
    },
    /// Abort a transactional id's ongoing transaction (its producer is
    /// fenced); or, with --topic, a transaction left open on one partition
    /// that no coordinator knows (a hanging one), with an abort marker
    /// written by the partition's leader.
    #[command(group(
        clap::ArgGroup::new("target")
            .required(true)
            .args(["transactional_id", "topic"])
    ))]
    Abort {
        transactional_id: Option<String>,
        /// The partition's topic (`sluice txn abort --topic T --partition P
        /// --producer-id X --producer-epoch E`).
        #[arg(long, value_name = "TOPIC", requires_all = ["partition", "producer_id", "producer_epoch"])]
        topic: Option<String>,
        #[arg(long, short = 'p', value_name = "P", requires = "topic")]
        partition: Option<u32>,
        /// The producer of the transaction open on the partition (Kafka's
        /// DescribeProducers tells it).
        #[arg(long, value_name = "ID", requires = "topic")]
        producer_id: Option<i64>,
        /// The producer's epoch in that transaction.
        #[arg(long, value_name = "EPOCH", requires = "topic")]
        producer_epoch: Option<i16>,
        /// Written in the marker [default: 0].
        #[arg(long, value_name = "EPOCH", requires = "topic")]
        coordinator_epoch: Option<i32>,
        #[command(flatten)]
        connect: Connect,
    },
}

/// A transaction state by Kafka's name (`ongoing` reads as `Ongoing`);
/// the broker checks the name again.
fn parse_txn_state(text: &str) -> Result<String, String> {
    const STATES: [&str; 8] = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    STATES
        .iter()
        .find(|state| state.eq_ignore_ascii_case(text))
        .map(|state| state.to_string())
        .ok_or_else(|| format!("not a transaction state; one of {}", STATES.join(", ")))
}

/// How `sluice acl` and `sluice user` reach a broker: its Kafka listener,
/// which can ask for TLS and SASL (the native protocol has no
/// authentication).
#[derive(Debug, Args)]
pub struct KafkaConnect {
    /// The broker's Kafka listener, written as Kafka writes listeners:
    /// PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL:// before
    /// HOST:PORT (PLAINTEXT without one).
    #[arg(
        long,
        env = "SLUICE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "[PROTOCOL://]HOST:PORT",
        value_parser = parse_kafka_addr
    )]
    pub bootstrap: KafkaAddr,
    /// The SASL (PLAIN) user, for SASL_PLAINTEXT:// and SASL_SSL://. The
    /// password is read from SLUICE_PASSWORD, never from the command line.
    #[arg(long, env = "SLUICE_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// The authorities the broker's certificate must chain to (PEM), for
    /// SSL:// and SASL_SSL://.
    #[arg(long, env = "SLUICE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM), for a listener of mutual TLS; its
    /// subject is the principal ACLs name.
    #[arg(long, env = "SLUICE_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "SLUICE_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

fn parse_kafka_addr(text: &str) -> Result<KafkaAddr, String> {
    let message = |error: ConfigError| match error {
        ConfigError::Invalid { message, .. } => message.to_string(),
        error => error.to_string(),
    };
    let (protocol, addr) = listener("bootstrap", text.to_string()).map_err(message)?;
    Ok(KafkaAddr {
        protocol,
        host_port: host_port("bootstrap", addr).map_err(message)?,
    })
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Allow a principal operations on a resource (or deny them, with
    /// --deny): one binding per operation. Prints the bindings created.
    #[command(mut_group("resource", |group| group.required(true)))]
    Add {
        /// Whom the bindings are about, TYPE:NAME: `User:alice`, or
        /// `User:*` for every user.
        #[arg(long, value_name = "TYPE:NAME")]
        principal: String,
        /// The client address the bindings are about (an IP, as the broker
        /// sees it); `*` is every address.
        #[arg(long, value_name = "HOST", default_value = "*")]
        host: String,
        /// An operation, by Kafka's name (repeatable).
        #[arg(
            long,
            value_enum,
            ignore_case = true,
            value_name = "OP",
            required = true
        )]
        operation: Vec<OperationArg>,
        #[command(flatten)]
        resource: AclResource,
        /// The name is a prefix: the bindings are about every resource
        /// whose name starts with it.
        #[arg(long)]
        prefixed: bool,
        /// Deny the operations rather than allow them. A denial wins over
        /// any allowance.
        #[arg(long)]
        deny: bool,
        #[command(flatten)]
        connect: KafkaConnect,
    },
    /// List the bindings a filter matches (every binding without one).
    List {
        #[command(flatten)]
        filter: AclFilterArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: KafkaConnect,
    },
    /// Remove the bindings a filter matches; prints them. Without a
    /// filter, only with --all.
    Remove {
        #[command(flatten)]
        filter: AclFilterArgs,
        /// Remove every binding: what no filter at all means, said out
        /// loud.
        #[arg(long, conflicts_with_all = ["principal", "host", "operation", "resource", "allow", "deny"])]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: KafkaConnect,
    },
}

/// The resource of a binding or a filter: one of these.
#[derive(Debug, Default, Args)]
#[group(id = "resource", multiple = false)]
pub struct AclResource {
    /// A topic; `*` is every topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// A consumer group; `*` is every group.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// The cluster (Kafka's resource `kafka-cluster`).
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id; `*` is every one.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
}

/// Which bindings `acl list` and `acl remove` are about; a flag not given
/// matches any.
#[derive(Debug, Default, Args)]
pub struct AclFilterArgs {
    /// Only bindings of this principal (`User:*` matches the bindings of
    /// `User:*` only).
    #[arg(long, value_name = "TYPE:NAME")]
    pub principal: Option<String>,
    /// Only bindings about this client address (`*` matches the bindings
    /// of `*` only).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only bindings of this operation.
    #[arg(long, value_enum, ignore_case = true, value_name = "OP")]
    pub operation: Option<OperationArg>,
    #[command(flatten)]
    pub resource: AclResource,
    /// Only PREFIXED bindings of the name [default: LITERAL ones].
    #[arg(long, requires = "resource", conflicts_with = "matching")]
    pub prefixed: bool,
    /// Every binding that applies to the name: LITERAL ones of it or of
    /// `*`, and PREFIXED ones of its prefixes.
    #[arg(long = "match", id = "matching", requires = "resource")]
    pub matching: bool,
    /// Only bindings that allow.
    #[arg(long, conflicts_with = "deny")]
    pub allow: bool,
    /// Only bindings that deny.
    #[arg(long)]
    pub deny: bool,
}

impl AclFilterArgs {
    /// Whether the filter matches every binding.
    pub fn is_empty(&self) -> bool {
        let resource = &self.resource;
        self.principal.is_none()
            && self.host.is_none()
            && self.operation.is_none()
            && resource.topic.is_none()
            && resource.group.is_none()
            && !resource.cluster
            && resource.transactional_id.is_none()
            && !self.allow
            && !self.deny
    }
}

/// An ACL operation by Kafka's name; any case, `-` or `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OperationArg {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    #[value(name = "cluster_action", alias = "cluster-action")]
    ClusterAction,
    #[value(name = "describe_configs", alias = "describe-configs")]
    DescribeConfigs,
    #[value(name = "alter_configs", alias = "alter-configs")]
    AlterConfigs,
    #[value(name = "idempotent_write", alias = "idempotent-write")]
    IdempotentWrite,
}

impl From<OperationArg> for Operation {
    fn from(operation: OperationArg) -> Operation {
        match operation {
            OperationArg::All => Operation::All,
            OperationArg::Read => Operation::Read,
            OperationArg::Write => Operation::Write,
            OperationArg::Create => Operation::Create,
            OperationArg::Delete => Operation::Delete,
            OperationArg::Alter => Operation::Alter,
            OperationArg::Describe => Operation::Describe,
            OperationArg::ClusterAction => Operation::ClusterAction,
            OperationArg::DescribeConfigs => Operation::DescribeConfigs,
            OperationArg::AlterConfigs => Operation::AlterConfigs,
            OperationArg::IdempotentWrite => Operation::IdempotentWrite,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Store a user's SCRAM credentials, or replace them (a new
    /// password). Prints what was stored.
    ///
    /// The password is read from SLUICE_NEW_PASSWORD, or else from the
    /// first line of standard input (asked for, unechoed, on a terminal);
    /// never from the command line. The broker is sent a random salt and
    /// the salted password, not the password.
    Create {
        /// The user: the principal User:NAME once authenticated.
        name: String,
        /// A mechanism to store a credential for (repeatable) [default:
        /// SCRAM-SHA-256 and SCRAM-SHA-512].
        #[arg(long, value_enum, ignore_case = true, value_name = "MECHANISM")]
        mechanism: Vec<MechanismArg>,
        /// PBKDF2 iterations of the salted password; Kafka takes 4096 to
        /// 16384.
        #[arg(long, value_name = "N", default_value_t = 8192)]
        iterations: u32,
        #[command(flatten)]
        connect: KafkaConnect,
    },
    /// List users' SCRAM credentials: each mechanism and its iterations.
    List {
        /// Only these users [default: every user with a credential]; a
        /// user named who has none is an error.
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: KafkaConnect,
    },
    /// Delete a user's SCRAM credentials; prints them.
    Delete {
        /// The user.
        name: String,
        /// A mechanism whose credential to delete (repeatable) [default:
        /// every mechanism the user has a credential for].
        #[arg(long, value_enum, ignore_case = true, value_name = "MECHANISM")]
        mechanism: Vec<MechanismArg>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connect: KafkaConnect,
    },
}

/// A SCRAM mechanism by its SASL name; any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl From<MechanismArg> for Hash {
    fn from(mechanism: MechanismArg) -> Hash {
        match mechanism {
            MechanismArg::ScramSha256 => Hash::Sha256,
            MechanismArg::ScramSha512 => Hash::Sha512,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// Every in-sync replica stored the record.
    All,
    /// The leader stored the record.
    Leader,
    /// Do not wait for the broker at all.
    None,
}

impl From<AcksArg> for Acks {
    fn from(acks: AcksArg) -> Acks {
        match acks {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::None => Acks::None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// The text before the first SEP of a line is the record's key, the rest
    /// its value; a line without SEP has no key.
    #[arg(long, value_name = "SEP", value_parser = non_empty)]
    pub key_separator: Option<String>,
    /// Produce to this partition [default: by key, or in turn].
    #[arg(long, short = 'p', value_name = "P")]
    pub partition: Option<u32>,
    #[arg(long, value_enum, default_value_t = AcksArg::All)]
    pub acks: AcksArg,
    /// How long a batch waits for more records.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub linger_ms: u64,
    /// A batch is sent once it holds this many bytes.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    pub batch_bytes: usize,
    /// Print no summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Read only this partition [default: every partition].
    #[arg(long, short = 'p', value_name = "P")]
    pub partition: Option<u32>,
    /// Where to start in each partition: earliest, latest or an offset.
    #[arg(long, short = 'o', default_value = "earliest", value_parser = parse_start, value_name = "earliest|latest|N")]
    pub offset: StartOffset,
    /// Stop after this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Wait for new records instead of stopping at the end of the log as it
    /// was when the command started.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// In text, print a record's key and this before its value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}

/// The nodes of each partition, one list per partition, the leader first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaAssignment(pub Vec<Vec<u32>>);

/// `1:2,2:3`: partitions by commas, each one's nodes by colons.
fn parse_assignment(text: &str) -> Result<ReplicaAssignment, String> {
    text.split(',')
        .map(|partition| {
            partition
                .split(':')
                .map(|node| {
                    node.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("{node:?} in {text:?} is not a node id (partitions by commas, a partition's nodes by colons: 1:2,2:3)"))
                })
                .collect::<Result<Vec<u32>, String>>()
        })
        .collect::<Result<Vec<_>, String>>()
        .map(ReplicaAssignment)
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

fn parse_start(text: &str) -> Result<StartOffset, String> {
    match text {
        "earliest" | "beginning" | "start" => Ok(StartOffset::Earliest),
        "latest" | "end" => Ok(StartOffset::Latest),
        offset => offset
            .parse()
            .map(StartOffset::At)
            .map_err(|_| format!("expected earliest, latest or an offset, got {text:?}")),
    }
}

fn parse_reset_to(text: &str) -> Result<ResetTo, String> {
    let expected = || {
        format!(
            "expected earliest, latest, an offset, time:MS or an ISO-8601 date \
             (2024-05-01T12:00:00Z), got {text:?}"
        )
    };
    match text {
        "earliest" | "beginning" | "start" => Ok(ResetTo::Earliest),
        "latest" | "end" => Ok(ResetTo::Latest),
        _ => {
            if let Some(ms) = text.strip_prefix("time:") {
                return match ms.parse::<i64>() {
                    Ok(ms) if ms >= 0 => Ok(ResetTo::Timestamp(ms)),
                    _ => iso8601_ms(ms).map(ResetTo::Timestamp).ok_or_else(expected),
                };
            }
            if let Ok(offset) = text.parse::<u64>() {
                return Ok(ResetTo::Offset(offset));
            }
            iso8601_ms(text)
                .map(ResetTo::Timestamp)
                .ok_or_else(expected)
        }
    }
}

/// Milliseconds since the epoch of an ISO-8601 date or date and time:
/// `YYYY-MM-DD`, then optionally `THH:MM[:SS[.fraction]]` (or a space for
/// the `T`) and a zone (`Z`, `+HH:MM`, `-HHMM`); UTC when no zone is
/// given. `None` for anything else, or a time before the epoch.
fn iso8601_ms(text: &str) -> Option<i64> {
    fn number(text: &str, digits: usize, max: i64) -> Option<i64> {
        if text.len() != digits || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().filter(|value| *value <= max)
    }
    let (date, rest) = (text.get(..10)?, text.get(10..)?);
    let mut fields = date.split('-');
    let year = number(fields.next()?, 4, 9999)?;
    let month = number(fields.next()?, 2, 12)?;
    let day = number(fields.next()?, 2, 31)?;
    if fields.next().is_some() || month == 0 || day == 0 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > month_days[month as usize - 1] {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let shifted = if month <= 2 { year - 1 } else { year };
    let era = shifted.div_euclid(400);
    let year_of_era = shifted - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let mut ms = days * 86_400_000;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (clock, zone_minutes) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else if let Some(at) = rest.rfind(['+', '-']) {
            let zone = rest[at + 1..].replace(':', "");
            let minutes = match zone.len() {
                2 => number(&zone, 2, 23)? * 60,
                4 => number(&zone[..2], 2, 23)? * 60 + number(&zone[2..], 2, 59)?,
                _ => return None,
            };
            let sign = if rest[at..].starts_with('-') { -1 } else { 1 };
            (&rest[..at], sign * minutes)
        } else {
            (rest, 0)
        };
        let (clock, fraction) = match clock.split_once('.') {
            Some((_, "")) => return None,
            Some((clock, fraction)) if clock.len() == 8 => (clock, fraction),
            Some(_) => return None,
            None => (clock, ""),
        };
        if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let mut parts = clock.split(':');
        let hours = number(parts.next()?, 2, 23)?;
        let minutes = number(parts.next()?, 2, 59)?;
        let seconds = parts.next().map_or(Some(0), |s| number(s, 2, 59))?;
        if parts.next().is_some() {
            return None;
        }
        let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
        ms += ((hours * 60 + minutes - zone_minutes) * 60 + seconds) * 1000 + millis;
    }
    (ms >= 0).then_some(ms)
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config::SecurityProtocol;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("sluice").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags() {
        let Command::Serve(args) = parse(&[
            "serve",
            "--data-dir",
            "/tmp/x",
            "--native-addr",
            "0.0.0.0:9",
            "--cores",
            "2",
            "--ready-file",
            "/tmp/x/ready",
        ])
        .unwrap() else {
            panic!("not serve")
        };
        assert_eq!(args.ready_file, Some(PathBuf::from("/tmp/x/ready")));
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(args.native_addr.as_deref(), Some("0.0.0.0:9"));
        assert_eq!(args.cores, Some(2));
        assert!(parse(&["serve", "--cores", "x"]).is_err());
    }

    #[test]
    fn topic_create_takes_repeated_configs() {
        let Command::Topic(TopicCommand::Create {
            name,
            partitions,
            configs,
            connect,
            ..
        }) = parse(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "8",
            "-c",
            "retention.ms=1000",
            "-c",
            "cleanup=a=b",
            "--brokers",
            "h:1,h:2",
        ])
        .unwrap()
        else {
            panic!("not topic create")
        };
        assert_eq!(name, "orders");
        assert_eq!(partitions, Some(8));
        assert_eq!(
            configs,
            [
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup".to_string(), "a=b".to_string())
            ]
        );
        assert_eq!(connect.brokers, "h:1,h:2");
        assert!(parse(&["topic", "create", "x", "-c", "novalue"]).is_err());
        assert!(
            parse(&["topic", "alter-config", "x"]).is_err(),
            "needs a config"
        );
    }

    #[test]
    fn topic_create_takes_a_replication_factor_or_an_assignment() {
        let Command::Topic(TopicCommand::Create {
            replication_factor,
            replica_assignment,
            ..
        }) = parse(&[
            "topic",
            "create",
            "t",
            "-p",
            "3",
            "--replication-factor",
            "2",
        ])
        .unwrap()
        else {
            panic!("not topic create")
        };
        assert_eq!(replication_factor, Some(2));
        assert_eq!(replica_assignment, None);
        let Command::Topic(TopicCommand::Create {
            replica_assignment, ..
        }) = parse(&["topic", "create", "t", "--replica-assignment", "1:2, 2:3,3"]).unwrap()
        else {
            panic!("not topic create")
        };
        assert_eq!(
            replica_assignment,
            Some(ReplicaAssignment(vec![vec![1, 2], vec![2, 3], vec![3]]))
        );
        assert!(parse(&["topic", "create", "t", "--replica-assignment", "1:x"]).is_err());
        assert!(
            parse(&[
                "topic",
                "create",
                "t",
                "-p",
                "2",
                "--replica-assignment",
                "1,2"
            ])
            .is_err(),
            "a count and an assignment at once"
        );
    }

    #[test]
    fn topic_subcommands_and_formats() {
        assert!(matches!(
            parse(&["topic", "list", "--format", "json"]).unwrap(),
            Command::Topic(TopicCommand::List {
                format: Format::Json,
                ..
            })
        ));
        assert!(matches!(
            parse(&["topic", "describe", "t"]).unwrap(),
            Command::Topic(TopicCommand::Describe {
                format: Format::Text,
                ..
            })
        ));
        assert!(matches!(
            parse(&["topic", "delete", "t"]).unwrap(),
            Command::Topic(TopicCommand::Delete { .. })
        ));
        assert!(parse(&["topic", "list", "--format", "yaml"]).is_err());
    }

    #[test]
    fn topic_move_takes_partitions_replicas_and_a_throttle_or_a_cancel() {
        let Command::Topic(TopicCommand::Move {
            topic,
            partition,
            to,
            throttle,
            cancel,
            wait,
            ..
        }) = parse(&[
            "topic",
            "move",
            "orders",
            "-p",
            "0",
            "-p",
            "3",
            "--to",
            "2,4",
            "--throttle",
            "10M",
            "--wait",
        ])
        .unwrap()
        else {
            panic!("not topic move");
        };
        assert_eq!(
            (topic.as_str(), partition, to),
            ("orders", vec![0, 3], vec![2, 4])
        );
        assert_eq!((throttle, cancel, wait), (Some(10 << 20), false, true));
        let Command::Topic(TopicCommand::Move { to, cancel, .. }) =
            parse(&["topic", "move", "orders", "-p", "1", "--cancel"]).unwrap()
        else {
            panic!("not topic move");
        };
        assert!(to.is_empty() && cancel);
        for refused in [
            &["topic", "move", "orders", "-p", "1"][..],
            &["topic", "move", "orders", "--to", "1"][..],
            &[
                "topic", "move", "orders", "-p", "1", "--to", "1", "--cancel",
            ][..],
            &[
                "topic",
                "move",
                "orders",
                "-p",
                "1",
                "--to",
                "1",
                "--throttle",
                "0",
            ][..],
            &[
                "topic",
                "move",
                "orders",
                "-p",
                "1",
                "--to",
                "1",
                "--throttle",
                "9X",
            ][..],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
        assert_eq!(parse_rate("512"), Ok(512));
        assert_eq!(parse_rate("2k"), Ok(2048));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        assert!(parse_rate("99999999999999G").is_err());
    }

    #[test]
    fn topic_elect_leaders_takes_a_topic_partitions_and_a_type() {
        let Command::Topic(TopicCommand::ElectLeaders {
            topic,
            partition,
            election,
            ..
        }) = parse(&["topic", "elect-leaders", "t", "-p", "1", "--partition", "4"]).unwrap()
        else {
            panic!("not topic elect-leaders")
        };
        assert_eq!(topic.as_deref(), Some("t"));
        assert_eq!(partition, [1, 4]);
        assert_eq!(ElectionType::from(election), ElectionType::Preferred);
        let Command::Topic(TopicCommand::ElectLeaders {
            topic, election, ..
        }) = parse(&["topic", "elect-leaders", "--type", "unclean"]).unwrap()
        else {
            panic!("not topic elect-leaders")
        };
        assert_eq!(topic, None, "every partition of every topic");
        assert_eq!(ElectionType::from(election), ElectionType::Unclean);
        assert!(
            parse(&["topic", "elect-leaders", "--partition", "1"]).is_err(),
            "a partition of no topic"
        );
        assert!(parse(&["topic", "elect-leaders", "t", "--type", "clean"]).is_err());
    }

    #[test]
    fn produce_flags() {
        let Command::Produce(args) = parse(&[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--partition",
            "3",
            "--acks",
            "none",
        ])
        .unwrap() else {
            panic!("not produce")
        };
        assert_eq!(args.key_separator.as_deref(), Some(":"));
        assert_eq!(args.partition, Some(3));
        assert_eq!(Acks::from(args.acks), Acks::None);
        let Command::Produce(args) = parse(&["produce", "t"]).unwrap() else {
            panic!("not produce")
        };
        assert_eq!(Acks::from(args.acks), Acks::All);
        assert!(parse(&["produce", "t", "--acks", "some"]).is_err());
        assert!(parse(&["produce", "t", "--key-separator", ""]).is_err());
    }

    #[test]
    fn consume_offsets() {
        let offset = |text: &str| match parse(&["consume", "t", "--offset", text]) {
            Ok(Command::Consume(args)) => Ok(args.offset),
            Ok(_) => panic!("not consume"),
            Err(error) => Err(error),
        };
        assert_eq!(offset("earliest").unwrap(), StartOffset::Earliest);
        assert_eq!(offset("latest").unwrap(), StartOffset::Latest);
        assert_eq!(offset("42").unwrap(), StartOffset::At(42));
        assert!(offset("-1").is_err());
        assert!(offset("soon").is_err());
        let Command::Consume(args) = parse(&[
            "consume", "t", "-p", "1", "--count", "10", "--follow", "--format", "json",
        ])
        .unwrap() else {
            panic!("not consume")
        };
        assert_eq!(args.partition, Some(1));
        assert_eq!(args.count, Some(10));
        assert!(args.follow);
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.offset, StartOffset::Earliest);
    }

    #[test]
    fn group_subcommands() {
        assert!(matches!(
            parse(&["group", "list", "--format", "json"]).unwrap(),
            Command::Group(GroupCommand::List {
                format: Format::Json,
                ..
            })
        ));
        assert!(matches!(
            parse(&["group", "describe", "g"]).unwrap(),
            Command::Group(GroupCommand::Describe {
                format: Format::Text,
                ..
            })
        ));
        assert!(matches!(
            parse(&["group", "delete", "g"]).unwrap(),
            Command::Group(GroupCommand::Delete { .. })
        ));
        let Command::Group(GroupCommand::ResetOffsets {
            name,
            topic,
            partition,
            to,
            dry_run,
            ..
        }) = parse(&[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "-p",
            "2",
            "--to",
            "earliest",
            "--dry-run",
        ])
        .unwrap()
        else {
            panic!("not group reset-offsets")
        };
        assert_eq!((name.as_str(), topic.as_str()), ("g", "t"));
        assert_eq!(partition, Some(2));
        assert_eq!(to, ResetTo::Earliest);
        assert!(dry_run);
        assert!(
            parse(&["group", "reset-offsets", "g", "--to", "latest"]).is_err(),
            "needs a topic"
        );
        assert!(
            parse(&["group", "reset-offsets", "g", "--topic", "t"]).is_err(),
            "needs --to"
        );
    }

    #[test]
    fn txn_subcommands() {
        let Command::Txn(TxnCommand::List {
            state,
            producer_id,
            running_longer_than,
            format,
            ..
        }) = parse(&[
            "txn",
            "list",
            "--state",
            "ongoing",
            "--state",
            "PrepareAbort",
            "--producer-id",
            "7",
            "--running-longer-than",
            "60000",
            "--format",
            "json",
        ])
        .unwrap()
        else {
            panic!("not txn list")
        };
        assert_eq!(state, ["Ongoing", "PrepareAbort"]);
        assert_eq!(producer_id, [7]);
        assert_eq!(running_longer_than, Some(60_000));
        assert_eq!(format, Format::Json);
        assert!(parse(&["txn", "list", "--state", "open"]).is_err());
        assert!(matches!(
            parse(&["txn", "describe", "payments-1"]).unwrap(),
            Command::Txn(TxnCommand::Describe {
                format: Format::Text,
                ..
            })
        ));
        assert!(parse(&["txn", "describe"]).is_err(), "needs an id");

        let Command::Txn(TxnCommand::Abort {
            transactional_id,
            topic,
            ..
        }) = parse(&["txn", "abort", "payments-1"]).unwrap()
        else {
            panic!("not txn abort")
        };
        assert_eq!(transactional_id.as_deref(), Some("payments-1"));
        assert_eq!(topic, None);
        let Command::Txn(TxnCommand::Abort {
            transactional_id,
            topic,
            partition,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            ..
        }) = parse(&[
            "txn",
            "abort",
            "--topic",
            "orders",
            "-p",
            "3",
            "--producer-id",
            "1000",
            "--producer-epoch",
            "2",
        ])
        .unwrap()
        else {
            panic!("not txn abort of a partition")
        };
        assert_eq!(transactional_id, None);
        assert_eq!(topic.as_deref(), Some("orders"));
        assert_eq!(
            (partition, producer_id, producer_epoch, coordinator_epoch),
            (Some(3), Some(1000), Some(2), None)
        );
        assert!(parse(&["txn", "abort"]).is_err(), "aborts nothing");
        assert!(
            parse(&["txn", "abort", "payments-1", "--topic", "orders"]).is_err(),
            "an id and a partition"
        );
        assert!(
            parse(&[
                "txn",
                "abort",
                "--topic",
                "orders",
                "-p",
                "3",
                "--producer-id",
                "1000"
            ])
            .is_err(),
            "needs the producer's epoch"
        );
        assert!(
            parse(&["txn", "abort", "payments-1", "--producer-epoch", "2"]).is_err(),
            "a producer without a partition"
        );
    }

    #[test]
    fn acl_subcommands() {
        let Command::Acl(AclCommand::Add {
            principal,
            host,
            operation,
            resource,
            prefixed,
            deny,
            connect,
        }) = parse(&[
            "acl",
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "READ",
            "--operation",
            "cluster-action",
            "--operation",
            "Idempotent_Write",
            "--topic",
            "orders",
            "--bootstrap",
            "sasl_ssl://broker:9093",
            "--user",
            "admin",
            "--ca",
            "/etc/ca.pem",
        ])
        .unwrap()
        else {
            panic!("not acl add")
        };
        assert_eq!(principal, "User:alice");
        assert_eq!(host, "*", "every host unless told");
        assert_eq!(
            operation,
            [
                OperationArg::Read,
                OperationArg::ClusterAction,
                OperationArg::IdempotentWrite
            ]
        );
        assert_eq!(resource.topic.as_deref(), Some("orders"));
        assert!(!prefixed && !deny);
        assert_eq!(
            connect.bootstrap,
            KafkaAddr {
                protocol: SecurityProtocol::SaslSsl,
                host_port: "broker:9093".to_string()
            }
        );
        assert_eq!(connect.user.as_deref(), Some("admin"));
        assert_eq!(connect.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            Operation::from(OperationArg::DescribeConfigs),
            Operation::DescribeConfigs
        );

        let Command::Acl(AclCommand::Add {
            resource,
            prefixed,
            deny,
            host,
            ..
        }) = parse(&[
            "acl",
            "add",
            "--principal",
            "User:bob",
            "--operation",
            "all",
            "--transactional-id",
            "pay-",
            "--prefixed",
            "--deny",
            "--host",
            "10.0.0.1",
        ])
        .unwrap()
        else {
            panic!("not acl add")
        };
        assert_eq!(resource.transactional_id.as_deref(), Some("pay-"));
        assert!(prefixed && deny);
        assert_eq!(host, "10.0.0.1");
        for refused in [
            &["acl", "add", "--principal", "User:a", "--operation", "read"][..],
            &["acl", "add", "--principal", "User:a", "--topic", "t"][..],
            &["acl", "add", "--operation", "read", "--topic", "t"][..],
            &[
                "acl",
                "add",
                "--principal",
                "User:a",
                "--operation",
                "read",
                "--topic",
                "t",
                "--group",
                "g",
            ][..],
            &[
                "acl",
                "add",
                "--principal",
                "User:a",
                "--operation",
                "steal",
                "--cluster",
            ][..],
            &["acl", "list", "--bootstrap", "TLS://h:1"][..],
            &["acl", "list", "--bootstrap", "nowhere"][..],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }

        let Command::Acl(AclCommand::List {
            filter,
            format,
            connect,
        }) = parse(&["acl", "list", "--format", "json"]).unwrap()
        else {
            panic!("not acl list")
        };
        assert!(filter.is_empty());
        assert_eq!(format, Format::Json);
        assert_eq!(connect.bootstrap.protocol, SecurityProtocol::Plaintext);
        assert_eq!(connect.bootstrap.host_port, "127.0.0.1:9092");
        let Command::Acl(AclCommand::List { filter, .. }) = parse(&[
            "acl",
            "list",
            "--principal",
            "User:alice",
            "--host",
            "*",
            "--operation",
            "write",
            "--topic",
            "logs-app",
            "--match",
        ])
        .unwrap() else {
            panic!("not acl list")
        };
        assert!(!filter.is_empty());
        assert!(filter.matching && !filter.prefixed);
        assert_eq!(filter.operation, Some(OperationArg::Write));
        assert_eq!(filter.host.as_deref(), Some("*"));
        for refused in [
            &["acl", "list", "--prefixed"][..],
            &["acl", "list", "--match"][..],
            &["acl", "list", "--topic", "t", "--prefixed", "--match"][..],
            &["acl", "list", "--cluster", "--group", "g"][..],
            &["acl", "list", "--allow", "--deny"][..],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }

        let Command::Acl(AclCommand::Remove { filter, all, .. }) =
            parse(&["acl", "remove", "--principal", "User:alice", "--deny"]).unwrap()
        else {
            panic!("not acl remove")
        };
        assert!(filter.deny && !all && !filter.is_empty());
        let Command::Acl(AclCommand::Remove { filter, all, .. }) =
            parse(&["acl", "remove"]).unwrap()
        else {
            panic!("not acl remove")
        };
        assert!(
            filter.is_empty() && !all,
            "parsed; the command refuses to run"
        );
        let Command::Acl(AclCommand::Remove { all, .. }) =
            parse(&["acl", "remove", "--all"]).unwrap()
        else {
            panic!("not acl remove")
        };
        assert!(all);
        assert!(
            parse(&["acl", "remove", "--all", "--topic", "t"]).is_err(),
            "--all takes no filter"
        );
        assert!(parse(&["acl", "remove", "--all", "--cluster"]).is_err());
        assert!(
            parse(&["acl", "list", "--password", "x"]).is_err(),
            "no password on the command line"
        );
    }

    #[test]
    fn user_subcommands() {
        let Command::User(UserCommand::Create {
            name,
            mechanism,
            iterations,
            connect,
        }) = parse(&[
            "user",
            "create",
            "carol",
            "--mechanism",
            "scram-sha-512",
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "4096",
            "--bootstrap",
            "SASL_PLAINTEXT://broker:9092",
            "--user",
            "admin",
        ])
        .unwrap()
        else {
            panic!("not user create")
        };
        assert_eq!(name, "carol");
        assert_eq!(
            mechanism,
            [MechanismArg::ScramSha512, MechanismArg::ScramSha256]
        );
        assert_eq!(iterations, 4096);
        assert_eq!(
            connect.bootstrap,
            KafkaAddr {
                protocol: SecurityProtocol::SaslPlaintext,
                host_port: "broker:9092".to_string()
            }
        );
        assert_eq!(connect.user.as_deref(), Some("admin"));
        assert_eq!(Hash::from(MechanismArg::ScramSha512), Hash::Sha512);
        assert_eq!(Hash::from(MechanismArg::ScramSha256), Hash::Sha256);

        let Command::User(UserCommand::Create {
            mechanism,
            iterations,
            ..
        }) = parse(&["user", "create", "carol"]).unwrap()
        else {
            panic!("not user create")
        };
        assert!(mechanism.is_empty(), "both, decided when run");
        assert_eq!(iterations, 8192);
        // Out of Kafka's bounds, but a number: refused when run, by the
        // broker's name for it.
        assert!(parse(&["user", "create", "carol", "--iterations", "100"]).is_ok());
        for refused in [
            &["user", "create"][..],
            &["user", "create", "carol", "--mechanism", "PLAIN"][..],
            &["user", "create", "carol", "--mechanism", "SCRAM-SHA-1"][..],
            &["user", "create", "carol", "--iterations", "-1"][..],
            &["user", "create", "carol", "--password", "x"][..],
            &["user", "create", "carol", "--format", "json"][..],
            &["user", "delete"][..],
            &["user", "list", "--format", "yaml"][..],
            &["user", "rename", "carol"][..],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }

        let Command::User(UserCommand::List {
            names,
            format,
            connect,
        }) = parse(&["user", "list"]).unwrap()
        else {
            panic!("not user list")
        };
        assert!(names.is_empty(), "every user");
        assert_eq!(format, Format::Text);
        assert_eq!(connect.bootstrap.host_port, "127.0.0.1:9092");
        let Command::User(UserCommand::List { names, format, .. }) =
            parse(&["user", "list", "carol", "dave", "--format", "json"]).unwrap()
        else {
            panic!("not user list")
        };
        assert_eq!(names, ["carol", "dave"]);
        assert_eq!(format, Format::Json);

        let Command::User(UserCommand::Delete {
            name, mechanism, ..
        }) = parse(&["user", "delete", "carol"]).unwrap()
        else {
            panic!("not user delete")
        };
        assert_eq!(name, "carol");
        assert!(mechanism.is_empty(), "every mechanism carol has");
        let Command::User(UserCommand::Delete {
            mechanism, format, ..
        }) = parse(&[
            "user",
            "delete",
            "carol",
            "--mechanism",
            "SCRAM-SHA-256",
            "--format",
            "json",
        ])
        .unwrap()
        else {
            panic!("not user delete")
        };
        assert_eq!(mechanism, [MechanismArg::ScramSha256]);
        assert_eq!(format, Format::Json);
    }

    #[test]
    fn reset_targets() {
        let to = |text: &str| match parse(&[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to",
            text,
        ]) {
            Ok(Command::Group(GroupCommand::ResetOffsets { to, .. })) => Ok(to),
            Ok(_) => panic!("not reset-offsets"),
            Err(error) => Err(error),
        };
        assert_eq!(to("earliest").unwrap(), ResetTo::Earliest);
        assert_eq!(to("latest").unwrap(), ResetTo::Latest);
        assert_eq!(to("42").unwrap(), ResetTo::Offset(42));
        assert_eq!(
            to("time:1714564800000").unwrap(),
            ResetTo::Timestamp(1_714_564_800_000)
        );
        assert_eq!(
            to("2024-05-01T12:00:00Z").unwrap(),
            ResetTo::Timestamp(1_714_564_800_000)
        );
        assert_eq!(
            to("time:2024-05-01").unwrap(),
            ResetTo::Timestamp(1_714_521_600_000)
        );
        assert!(to("-1").is_err());
        assert!(to("time:-5").is_err());
        assert!(to("soon").is_err());
    }

    #[test]
    fn iso8601_dates_and_times() {
        assert_eq!(iso8601_ms("1970-01-01"), Some(0));
        assert_eq!(iso8601_ms("1970-01-01T00:00:00.001Z"), Some(1));
        assert_eq!(iso8601_ms("2024-05-01"), Some(1_714_521_600_000));
        assert_eq!(iso8601_ms("2024-05-01T12:00"), Some(1_714_564_800_000));
        assert_eq!(iso8601_ms("2024-05-01 12:00:00"), Some(1_714_564_800_000));
        assert_eq!(
            iso8601_ms("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            iso8601_ms("2024-05-01T07:30:00-0430"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            iso8601_ms("2024-05-01T13:00:00+01"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            iso8601_ms("2024-05-01T12:00:00.5Z"),
            Some(1_714_564_800_500)
        );
        assert_eq!(
            iso8601_ms("2024-05-01T12:00:00.123456Z"),
            Some(1_714_564_800_123)
        );
        assert_eq!(iso8601_ms("2000-02-29"), Some(951_782_400_000));
        for bad in [
            "2001-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-5-1",
            "2024-05-01T",
            "2024-05-01T25:00",
            "2024-05-01T12:00.5",
            "2024-05-01T12:00:00.",
            "2024-05-01T12:00:00+2",
            "2024-05-01X12:00",
            "1969-12-31",
            "20240501",
        ] {
            assert_eq!(iso8601_ms(bad), None, "{bad}");
        }
    }
}
