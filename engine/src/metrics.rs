//! The broker's figures in the Prometheus text format (version 0.0.4).
//!
//! A scrape asks every shard for a [`ShardSample`] (each shard reads only its
//! own state, on its own core: its partitions' logs, its connection and
//! request counts), and every group's committed offsets with their lag from
//! [`group_lag`] (a group's coordinator shard and its partitions' owners may
//! differ); [`render`] writes them out where the scrape arrived.
//!
//! Nothing here is on the produce or fetch path: figures are read when a
//! scrape asks, from what the shards keep anyway.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
    rc::Rc,
};

use sluice_storage::TopicId;

use crate::{
    coordinator::lag::{group_lag, PartitionLag},
    replica::figures::{LeaderFigures, ReplicaCounts},
    request_latency::{Histogram, RequestKind, BUCKET_BOUNDS_US},
    shard::Shard,
};

/// One partition's figures, read on its owner shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSample {
    pub topic: String,
    pub partition: u32,
    pub shard: usize,
    pub log_start_offset: u64,
    /// The visible end: the high watermark.
    pub log_end_offset: u64,
    /// The end of what this replica stored; past the high watermark by
    /// what the in-sync replicas do not all hold yet.
    pub stored_end_offset: u64,
    pub size_bytes: u64,
    pub segments: u64,
    /// Its leader epoch, as the controller records it: each election adds
    /// one.
    pub leader_epoch: u64,
    pub replicas: u64,
    pub in_sync_replicas: u64,
    /// The partition as its leader sees it, on its leader (of a partition
    /// of several replicas): its followers' lag.
    pub leader: Option<LeaderFigures>,
}

/// What one shard reports to a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSample {
    pub shard: usize,
    pub connections: usize,
    pub requests_in_flight: usize,
    pub partitions: Vec<PartitionSample>,
    /// How long the requests that arrived on the shard took to serve.
    pub request_latencies: Vec<(RequestKind, Histogram)>,
    /// Its replication's counters.
    pub replication: ReplicaCounts,
}

/// The controller quorum and the brokers, as this node sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControllerSample {
    /// The controller leader's node id, if one is known.
    pub leader: Option<i32>,
    pub term: u64,
    /// The last metadata log index this node applied.
    pub applied_index: u64,
    /// The highest metadata log index this node knows committed.
    pub committed_index: u64,
    /// Registered brokers whose lease ran out.
    pub brokers_fenced: u64,
    /// Partitions with no live leader.
    pub partitions_offline: u64,
    /// Partitions with fewer replicas in sync than they have.
    pub partitions_under_replicated: u64,
    /// Partitions with fewer replicas in sync than their
    /// `min.insync.replicas`: they refuse `acks=all` writes.
    pub partitions_under_min_in_sync: u64,
}

/// The controller's figures, from the node's quorum view and this shard's
/// metadata image.
pub fn sample_controller(shard: &Shard) -> ControllerSample {
    let quorum = crate::cluster_view::quorum(shard);
    let metadata = shard.metadata();
    let mut sample = ControllerSample {
        leader: quorum.leader.map(|node| node.0),
        term: quorum.term,
        applied_index: quorum.applied,
        committed_index: quorum.committed,
        brokers_fenced: metadata.brokers.values().filter(|b| b.fenced).count() as u64,
        ..ControllerSample::default()
    };
    for topic in metadata.topics.values() {
        let min_in_sync = topic.control_config().min_in_sync;
        for partition in 0..topic.partition_count() {
            let placement =
                crate::cluster_view::placement(&metadata, shard.config.node_id, topic, partition);
            sample.partitions_offline += u64::from(placement.leader.is_none());
            sample.partitions_under_replicated +=
                u64::from(placement.in_sync.len() < placement.replicas.len());
            sample.partitions_under_min_in_sync += u64::from(placement.in_sync.len() < min_in_sync);
        }
    }
    sample
}

/// What a scrape reports.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub shards: Vec<ShardSample>,
    /// Every committed offset of every group, with its lag.
    pub groups: Vec<PartitionLag>,
    pub controller: ControllerSample,
}

/// This shard's figures. Partitions whose topic is not (or no longer) in
/// this shard's metadata are left out: they have no name to report.
pub fn sample_local(shard: &Shard) -> ShardSample {
    let metadata = shard.metadata();
    let topics: HashMap<TopicId, &crate::cluster_metadata::TopicMeta> = metadata
        .topics
        .values()
        .map(|topic| (topic.id, &**topic))
        .collect();
    let partitions = shard
        .partitions
        .borrow()
        .iter()
        .filter_map(|(key, log)| {
            let topic = topics.get(&key.topic)?;
            let control = topic.partition(key.partition.0)?;
            Some(PartitionSample {
                topic: topic.name.clone(),
                partition: key.partition.0,
                shard: shard.id,
                log_start_offset: log.start_offset().0,
                log_end_offset: log.visible_end().0,
                stored_end_offset: log.stored_end().0,
                size_bytes: log.size_bytes(),
                segments: log.segment_count() as u64,
                leader_epoch: u64::from(control.leader_epoch),
                replicas: control.replicas.len() as u64,
                in_sync_replicas: control.in_sync.len() as u64,
                leader: shard.replicas.leader_figures(*key, log.end_offset().0),
            })
        })
        .collect();
    ShardSample {
        shard: shard.id,
        connections: shard.connections.get(),
        requests_in_flight: shard.in_flight.get(),
        partitions,
        request_latencies: shard.request_latencies.snapshot(),
        replication: shard.replicas.counters.counts(),
    }
}

/// Every shard's figures, each read on its own shard, and every group's
/// lag. A shard that does not answer (it is stopping) is left out.
pub async fn gather(shard: &Rc<Shard>) -> Scrape {
    let mut shards = Vec::with_capacity(shard.shard_count());
    for owner in 0..shard.shard_count() {
        let sampled =
            crate::coordinator::run_on(shard, owner, |there| async move { sample_local(&there) })
                .await;
        if let Ok(sample) = sampled {
            shards.push(sample);
        }
    }
    Scrape {
        shards,
        groups: group_lag(shard).await,
        controller: sample_controller(shard),
    }
}

/// The lag as reported: never below 0 (a committed offset may be past the
/// end, after the log was truncated or when a client commits an offset it
/// made up); `None` when the partition's end is unknown.
pub fn reported_lag(lag: &PartitionLag) -> Option<u64> {
    lag.lag.map(|lag| lag.max(0) as u64)
}

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped.
pub fn escape_label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// One metric family: its help, then its samples, together (the format
/// does not allow a family's samples to be interleaved with another's).
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn gauge(out: &'a mut String, name: &'static str, help: &str) -> Family<'a> {
        Family::of_type(out, name, "gauge", help)
    }

    fn counter(out: &'a mut String, name: &'static str, help: &str) -> Family<'a> {
        Family::of_type(out, name, "counter", help)
    }

    fn histogram(out: &'a mut String, name: &'static str, help: &str) -> Family<'a> {
        Family::of_type(out, name, "histogram", help)
    }

    fn of_type(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        self.sample_of("", labels, value);
    }

    /// A sample of the family's series `name` + `suffix` (a histogram's
    /// `_bucket`, `_sum`, `_count`).
    fn sample_of(&mut self, suffix: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (name, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{name}=\"{}\"", escape_label_value(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// An API's name in a label: what its protocol calls it.
fn api_name((protocol, code): RequestKind) -> String {
    let name = match protocol {
        "native" => u16::try_from(code)
            .ok()
            .and_then(sluice_net::native::messages::ApiKey::from_u16)
            .map(|api| format!("{api:?}")),
        "kafka" => kafka_protocol::messages::ApiKey::try_from(code)
            .ok()
            .map(|api| format!("{api:?}")),
        _ => None,
    };
    name.unwrap_or_else(|| "unknown".to_string())
}

/// Microseconds as the seconds the text format wants.
fn seconds(us: u64) -> String {
    (us as f64 / 1e6).to_string()
}

/// The request latency histograms, each summed over the shards.
/// The cleaners' totals of compacted topics, over the process.
fn render_cleaner(out: &mut String) {
    let totals = sluice_storage::log::cleaner_totals();
    let counters: [(&'static str, &str, u64); 5] = [
        (
            "sluice_cleaner_passes_total",
            "Passes of the cleaner over compacted partitions.",
            totals.passes,
        ),
        (
            "sluice_cleaner_segments_cleaned_total",
            "Segments the cleaner rewrote and swapped in.",
            totals.segments_cleaned,
        ),
        (
            "sluice_cleaner_read_bytes_total",
            "Bytes of segments the cleaner read.",
            totals.bytes_read,
        ),
        (
            "sluice_cleaner_removed_bytes_total",
            "Bytes compaction gave back: the segments replaced less their cleaned versions.",
            totals.bytes_removed,
        ),
        (
            "sluice_cleaner_removed_records_total",
            "Records compaction removed (older records of a key, expired tombstones).",
            totals.records_removed,
        ),
    ];
    for (name, help, value) in counters {
        Family::counter(out, name, help).sample(&[], value);
    }
}

/// Refused TLS handshakes and SASL authentications on the Kafka
/// listener, and operations the authorizer refused, over the process.
fn render_security(out: &mut String) {
    use std::sync::atomic::Ordering;
    Family::counter(
        out,
        "sluice_tls_handshake_failures_total",
        "TLS handshakes on the Kafka listener that failed (untrusted, plaintext, malformed, too slow).",
    )
    .sample(&[], crate::tls::HANDSHAKE_FAILURES.load(Ordering::Relaxed));
    Family::counter(
        out,
        "sluice_sasl_authentication_failures_total",
        "SASL authentications on the Kafka listener that were refused.",
    )
    .sample(
        &[],
        crate::sasl::AUTHENTICATION_FAILURES.load(Ordering::Relaxed),
    );
    Family::counter(
        out,
        "sluice_oauthbearer_jwks_fetches_total",
        "Fetches of the OAUTHBEARER keys from sasl_oauthbearer_jwks_endpoint_url, at start and since.",
    )
    .sample(
        &[],
        crate::sasl::jwks::FETCHES.load(Ordering::Relaxed),
    );
    Family::counter(
        out,
        "sluice_oauthbearer_jwks_fetch_failures_total",
        "Fetches of the OAUTHBEARER keys that failed (the keys in use were kept).",
    )
    .sample(
        &[],
        crate::sasl::jwks::FETCH_FAILURES.load(Ordering::Relaxed),
    );
    Family::counter(
        out,
        "sluice_authorization_denials_total",
        "Operations the ACL authorizer refused (a request refused in part counts each refused resource).",
    )
    .sample(&[], crate::acl::DENIALS.load(Ordering::Relaxed));
    Family::counter(
        out,
        "sluice_quota_throttled_requests_total",
        "Requests answered with a throttle time: their client was over a quota.",
    )
    .sample(&[], crate::quota::THROTTLED.load(Ordering::Relaxed));
    Family::counter(
        out,
        "sluice_quota_request_time_seconds_total",
        "Time the shards spent serving the requests of clients under a request_percentage quota.",
    )
    .sample_of(
        "",
        &[],
        seconds(crate::quota::REQUEST_TIME_US.load(Ordering::Relaxed)),
    );
    Family::counter(
        out,
        "sluice_connections_refused_per_ip_total",
        "Connections refused because their address held connections_max_per_ip already.",
    )
    .sample(
        &[],
        crate::quota::REFUSED_CONNECTIONS.load(Ordering::Relaxed),
    );
}

fn render_request_latencies(out: &mut String, shards: &[&ShardSample]) {
    const NAME: &str = "sluice_request_latency_seconds";
    let mut by_kind: BTreeMap<RequestKind, Histogram> = BTreeMap::new();
    for (kind, histogram) in shards.iter().flat_map(|s| &s.request_latencies) {
        by_kind.entry(*kind).or_default().merge(histogram);
    }
    let mut family = Family::histogram(
        out,
        NAME,
        "From a request read off its connection to its response ready, by protocol and API, over all shards.",
    );
    for (kind, histogram) in &by_kind {
        let api = api_name(*kind);
        let labels = [("protocol", kind.0), ("api", api.as_str())];
        let mut cumulative = 0;
        for (bound, count) in BUCKET_BOUNDS_US.iter().zip(histogram.counts) {
            cumulative += count;
            let le = seconds(*bound);
            family.sample_of("_bucket", &[labels[0], labels[1], ("le", &le)], cumulative);
        }
        let count = histogram.count();
        family.sample_of("_bucket", &[labels[0], labels[1], ("le", "+Inf")], count);
        family.sample_of("_sum", &labels, seconds(histogram.sum_us));
        family.sample_of("_count", &labels, count);
    }
}

/// The controller quorum's gauges: one sample each, no labels.
fn render_controller(out: &mut String, controller: &ControllerSample) {
    let leader = controller.leader.map_or(-1, i64::from);
    Family::gauge(
        out,
        "sluice_controller_leader",
        "The node id of the controller quorum's leader as this node knows it; -1 while none is known.",
    )
    .sample_of("", &[], leader);
    let gauges: [(&'static str, &str, u64); 7] = [
        (
            "sluice_controller_term",
            "The controller quorum's term (the controller epoch).",
            controller.term,
        ),
        (
            "sluice_metadata_applied_index",
            "The last metadata log index this node applied.",
            controller.applied_index,
        ),
        (
            "sluice_metadata_committed_index",
            "The highest metadata log index this node knows committed.",
            controller.committed_index,
        ),
        (
            "sluice_brokers_fenced",
            "Registered brokers whose lease ran out.",
            controller.brokers_fenced,
        ),
        (
            "sluice_partitions_offline",
            "Partitions with no live leader.",
            controller.partitions_offline,
        ),
        (
            "sluice_partitions_under_replicated",
            "Partitions with fewer replicas in sync than they have.",
            controller.partitions_under_replicated,
        ),
        (
            "sluice_partitions_under_min_insync",
            "Partitions with fewer replicas in sync than min.insync.replicas: acks=all writes are refused.",
            controller.partitions_under_min_in_sync,
        ),
    ];
    for (name, help, value) in gauges {
        Family::gauge(out, name, help).sample(&[], value);
    }
}

/// What this node's leaders see of their followers, per partition and
/// follower; how many partitions it leads, under-replicated or under
/// `min.insync.replicas` as it sees them (Kafka's `LeaderCount`,
/// `UnderReplicatedPartitions`, `UnderMinIsrPartitionCount`); and the
/// replication counters summed over the shards.
fn render_replication(out: &mut String, partitions: &[&PartitionSample], shards: &[&ShardSample]) {
    let led: Vec<(&PartitionSample, &LeaderFigures)> = partitions
        .iter()
        .filter_map(|p| Some((*p, p.leader.as_ref()?)))
        .collect();
    let mut family = Family::gauge(
        out,
        "sluice_leader_in_sync_replicas",
        "The in-sync set of a partition this node leads, as its leader applies it (the leader among it).",
    );
    for (partition, figures) in &led {
        let number = partition.partition.to_string();
        family.sample(
            &[("topic", &partition.topic), ("partition", &number)],
            figures.in_sync,
        );
    }
    type Lag = fn(&crate::replica::figures::FollowerLag) -> u64;
    let lags: [(&'static str, &str, Lag); 2] = [
        (
            "sluice_follower_lag_offsets",
            "On a partition's leader, per follower: the leader's log end less the end the follower acknowledged stored.",
            |lag| lag.offsets,
        ),
        (
            "sluice_follower_lag_ms",
            "On a partition's leader, per follower: milliseconds since the follower last held all the leader had stored (0 while it does).",
            |lag| lag.ms,
        ),
    ];
    for (name, help, value) in lags {
        let mut family = Family::gauge(out, name, help);
        for (partition, figures) in &led {
            let number = partition.partition.to_string();
            for follower in &figures.followers {
                let node = follower.node.0.to_string();
                family.sample(
                    &[
                        ("topic", &partition.topic),
                        ("partition", &number),
                        ("follower", &node),
                    ],
                    value(follower),
                );
            }
        }
    }
    let count = |keep: fn(&LeaderFigures) -> bool| {
        led.iter().filter(|(_, figures)| keep(figures)).count() as u64
    };
    let gauges: [(&'static str, &str, u64); 3] = [
        (
            "sluice_leader_partitions",
            "Partitions of several replicas this node leads.",
            count(|_| true),
        ),
        (
            "sluice_leader_partitions_under_replicated",
            "Partitions this node leads with fewer replicas in sync than they have.",
            count(LeaderFigures::under_replicated),
        ),
        (
            "sluice_leader_partitions_under_min_insync",
            "Partitions this node leads with fewer replicas in sync than min.insync.replicas: they refuse acks=all writes.",
            count(LeaderFigures::under_min_in_sync),
        ),
    ];
    for (name, help, value) in gauges {
        Family::gauge(out, name, help).sample(&[], value);
    }
    let mut counts = ReplicaCounts::default();
    for shard in shards {
        counts.add(&shard.replication);
    }
    let counters: [(&'static str, &str, u64); 4] = [
        (
            "sluice_in_sync_shrinks_total",
            "In-sync set changes of partitions this node leads that left a replica out.",
            counts.in_sync_shrinks,
        ),
        (
            "sluice_in_sync_expands_total",
            "In-sync set changes of partitions this node leads that took a replica in.",
            counts.in_sync_expands,
        ),
        (
            "sluice_leaderships_taken_total",
            "Elections of this node as a partition's leader.",
            counts.leaderships_taken,
        ),
        (
            "sluice_leaderships_lost_total",
            "Partitions this node stopped leading (another leads, or none).",
            counts.leaderships_lost,
        ),
    ];
    for (name, help, value) in counters {
        Family::counter(out, name, help).sample(&[], value);
    }
    let mut family = Family::counter(
        out,
        "sluice_fetch_partition_reads_total",
        "Fetches of a partition that returned records, by the replica that served them: its leader (or only replica), or a follower (a consumer's fetch from the closest replica).",
    );
    family.sample(&[("replica", "leader")], counts.reads_as_leader);
    family.sample(&[("replica", "follower")], counts.reads_as_follower);
    Family::counter(
        out,
        "sluice_fetch_sent_to_closer_replica_total",
        "Fetches this node answered as a partition's leader by naming a follower in the consumer's rack to read from (preferred_read_replica) instead of records.",
    )
    .sample(&[], counts.sent_to_closer_replica);
}

/// A per-partition metric: its name, its help, its value.
type PartitionMetric = (&'static str, &'static str, fn(&PartitionSample) -> u64);

/// The text of a scrape. Samples are sorted (by topic and partition, by
/// shard, by group), so two scrapes of an idle broker read the same.
pub fn render(scrape: &Scrape) -> String {
    let mut partitions: Vec<&PartitionSample> =
        scrape.shards.iter().flat_map(|s| &s.partitions).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut shards: Vec<&ShardSample> = scrape.shards.iter().collect();
    shards.sort_by_key(|s| s.shard);
    let mut committed: Vec<&PartitionLag> = scrape.groups.iter().collect();
    committed
        .sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));

    let mut out = String::with_capacity(256 * (partitions.len() + committed.len() + 8));
    let per_partition: [PartitionMetric; 8] = [
        (
            "sluice_partition_log_start_offset",
            "The first offset still in the partition's log.",
            |p| p.log_start_offset,
        ),
        (
            "sluice_partition_log_end_offset",
            "The offset after the last record readers see (the high watermark).",
            |p| p.log_end_offset,
        ),
        (
            "sluice_partition_stored_end_offset",
            "The offset after the last record this replica stored: past the high watermark by what its in-sync replicas do not all hold yet; a follower's, behind its leader's by what it lacks.",
            |p| p.stored_end_offset,
        ),
        (
            "sluice_partition_size_bytes",
            "Bytes of the partition's log segments.",
            |p| p.size_bytes,
        ),
        (
            "sluice_partition_segments",
            "Segments of the partition's log.",
            |p| p.segments,
        ),
        (
            "sluice_partition_leader_epoch",
            "The partition's leader epoch: each election adds one.",
            |p| p.leader_epoch,
        ),
        (
            "sluice_partition_replicas",
            "The partition's replicas.",
            |p| p.replicas,
        ),
        (
            "sluice_partition_in_sync_replicas",
            "The partition's replicas in sync with its leader.",
            |p| p.in_sync_replicas,
        ),
    ];
    for (name, help, value) in per_partition {
        let mut family = Family::gauge(&mut out, name, help);
        for partition in &partitions {
            let number = partition.partition.to_string();
            let shard = partition.shard.to_string();
            family.sample(
                &[
                    ("topic", &partition.topic),
                    ("partition", &number),
                    ("shard", &shard),
                ],
                value(partition),
            );
        }
    }

    render_replication(&mut out, &partitions, &shards);
    render_cleaner(&mut out);
    render_security(&mut out);

    let mut family = Family::gauge(
        &mut out,
        "sluice_shard_connections",
        "Open client connections (native and Kafka) on the shard.",
    );
    for shard in &shards {
        family.sample(
            &[("shard", &shard.shard.to_string())],
            shard.connections as u64,
        );
    }
    let mut family = Family::gauge(
        &mut out,
        "sluice_shard_requests_in_flight",
        "Requests being served on the shard.",
    );
    for shard in &shards {
        family.sample(
            &[("shard", &shard.shard.to_string())],
            shard.requests_in_flight as u64,
        );
    }
    render_request_latencies(&mut out, &shards);
    render_controller(&mut out, &scrape.controller);

    let mut family = Family::gauge(
        &mut out,
        "sluice_group_committed_offset",
        "The offset a consumer group committed for a partition.",
    );
    for sample in &committed {
        let partition = sample.partition.to_string();
        family.sample(
            &[
                ("group", &sample.group),
                ("topic", &sample.topic),
                ("partition", &partition),
            ],
            sample.committed,
        );
    }
    let mut family = Family::gauge(
        &mut out,
        "sluice_group_lag",
        "Records between a group's committed offset and the partition's last stable offset (the log end but for open transactions; at least 0).",
    );
    for sample in &committed {
        // A partition whose end is unknown (its topic was deleted) has none.
        let Some(lag) = reported_lag(sample) else {
            continue;
        };
        let partition = sample.partition.to_string();
        family.sample(
            &[
                ("group", &sample.group),
                ("topic", &sample.topic),
                ("partition", &partition),
            ],
            lag,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::lag::LogEnds;

    fn partition(topic: &str, partition: u32, shard: usize, end: u64) -> PartitionSample {
        PartitionSample {
            topic: topic.to_string(),
            partition,
            shard,
            log_start_offset: 2,
            log_end_offset: end,
            stored_end_offset: end,
            size_bytes: 4096,
            segments: 1,
            leader_epoch: 3,
            replicas: 1,
            in_sync_replicas: 1,
            leader: None,
        }
    }

    fn committed(
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        end: Option<u64>,
    ) -> PartitionLag {
        let ends = end.map(|end| LogEnds {
            high_watermark: end,
            last_stable: end,
        });
        PartitionLag::new(group, &(topic.to_string(), partition), offset, ends)
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|line| !line.starts_with('#')).collect()
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("plain.topic-1"), "plain.topic-1");
        assert_eq!(
            escape_label_value("a\\b\"c\nd"),
            "a\\\\b\\\"c\\nd",
            "backslash, quote and line feed"
        );
        assert!(matches!(
            escape_label_value("no escapes"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(reported_lag(&committed("g", "t", 0, 4, Some(10))), Some(6));
        assert_eq!(reported_lag(&committed("g", "t", 0, 10, Some(10))), Some(0));
        assert_eq!(
            reported_lag(&committed("g", "t", 0, 10, Some(3))),
            Some(0),
            "a commit past the end"
        );
        assert_eq!(reported_lag(&committed("g", "t", 0, 10, None)), None);
    }

    #[test]
    fn a_scrape_reads_every_figure_sorted() {
        let scrape = Scrape {
            shards: vec![
                ShardSample {
                    shard: 1,
                    connections: 3,
                    requests_in_flight: 1,
                    partitions: vec![partition("orders", 1, 1, 7)],
                    request_latencies: Vec::new(),
                    replication: ReplicaCounts::default(),
                },
                ShardSample {
                    shard: 0,
                    connections: 2,
                    requests_in_flight: 0,
                    partitions: vec![partition("orders", 0, 0, 10)],
                    request_latencies: Vec::new(),
                    replication: ReplicaCounts::default(),
                },
            ],
            groups: vec![
                committed("billing", "orders", 0, 4, Some(10)),
                committed("billing", "gone", 0, 4, None),
                committed("audit", "orders", 1, 9, Some(7)),
            ],
            controller: ControllerSample::default(),
        };
        let text = render(&scrape);
        let lines = lines(&text);
        for expected in [
            r#"sluice_partition_log_end_offset{topic="orders",partition="0",shard="0"} 10"#,
            r#"sluice_partition_log_end_offset{topic="orders",partition="1",shard="1"} 7"#,
            r#"sluice_partition_log_start_offset{topic="orders",partition="0",shard="0"} 2"#,
            r#"sluice_partition_size_bytes{topic="orders",partition="1",shard="1"} 4096"#,
            r#"sluice_partition_segments{topic="orders",partition="1",shard="1"} 1"#,
            r#"sluice_shard_connections{shard="0"} 2"#,
            r#"sluice_shard_connections{shard="1"} 3"#,
            r#"sluice_shard_requests_in_flight{shard="1"} 1"#,
            r#"sluice_group_committed_offset{group="billing",topic="orders",partition="0"} 4"#,
            r#"sluice_group_committed_offset{group="billing",topic="gone",partition="0"} 4"#,
            r#"sluice_group_lag{group="billing",topic="orders",partition="0"} 6"#,
            r#"sluice_group_lag{group="audit",topic="orders",partition="1"} 0"#,
        ] {
            assert!(lines.contains(&expected), "{expected} missing from\n{text}");
        }
        assert!(
            !text.contains(r#"sluice_group_lag{group="billing",topic="gone""#),
            "no lag without a log end:\n{text}"
        );
        // Sorted: shard 0 before 1, audit before billing.
        let position = |line: &str| lines.iter().position(|l| *l == line).unwrap();
        assert!(
            position(r#"sluice_shard_connections{shard="0"} 2"#)
                < position(r#"sluice_shard_connections{shard="1"} 3"#)
        );
        assert!(
            position(
                r#"sluice_group_committed_offset{group="audit",topic="orders",partition="1"} 9"#
            ) < position(
                r#"sluice_group_committed_offset{group="billing",topic="gone",partition="0"} 4"#
            )
        );
    }

    #[test]
    fn every_family_has_help_and_type_once_and_its_samples_together() {
        let scrape = Scrape {
            shards: vec![ShardSample {
                shard: 0,
                partitions: vec![partition("a", 0, 0, 1), partition("b", 0, 0, 1)],
                ..ShardSample::default()
            }],
            groups: vec![committed("g", "a", 0, 1, Some(1))],
            controller: ControllerSample::default(),
        };
        let text = render(&scrape);
        let mut seen: Vec<&str> = Vec::new();
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let expected = match name {
                    "sluice_request_latency_seconds" => "histogram",
                    _ if name.ends_with("_total") => "counter",
                    _ => "gauge",
                };
                assert_eq!(kind, expected, "{name}");
                assert!(!seen.contains(&name), "{name} declared twice");
                seen.push(name);
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|family| *family == "sluice_request_latency_seconds")
                    .unwrap_or(name);
                assert_eq!(family, current, "{line} outside its family");
            }
        }
        assert_eq!(seen.len(), 46, "{seen:?}");
    }

    #[test]
    fn a_leader_shows_each_followers_lag_and_its_under_replicated_partitions() {
        use crate::replica::figures::FollowerLag;
        use sluice_storage::NodeId;
        let led = |name: &str, in_sync: u64, lags: &[(i32, u64, u64)]| PartitionSample {
            replicas: 3,
            in_sync_replicas: in_sync,
            leader: Some(LeaderFigures {
                replicas: 3,
                in_sync,
                min_in_sync: 2,
                followers: lags
                    .iter()
                    .map(|(node, offsets, ms)| FollowerLag {
                        node: NodeId(*node),
                        offsets: *offsets,
                        ms: *ms,
                    })
                    .collect(),
            }),
            ..partition(name, 0, 0, 10)
        };
        let counts = |shrinks: u64, taken: u64, follower_reads: u64| ReplicaCounts {
            in_sync_shrinks: shrinks,
            in_sync_expands: 1,
            leaderships_taken: taken,
            leaderships_lost: 0,
            reads_as_leader: 2,
            reads_as_follower: follower_reads,
            sent_to_closer_replica: 1,
        };
        let scrape = Scrape {
            shards: vec![
                ShardSample {
                    shard: 0,
                    partitions: vec![
                        led("a", 3, &[(1, 0, 0), (2, 0, 0)]),
                        partition("c", 0, 0, 1),
                    ],
                    replication: counts(1, 2, 0),
                    ..ShardSample::default()
                },
                ShardSample {
                    shard: 1,
                    partitions: vec![led("b", 1, &[(1, 40, 2_500), (2, 7, 3_000)])],
                    replication: counts(2, 1, 5),
                    ..ShardSample::default()
                },
            ],
            ..Scrape::default()
        };
        let text = render(&scrape);
        let lines = lines(&text);
        for expected in [
            r#"sluice_follower_lag_offsets{topic="a",partition="0",follower="1"} 0"#,
            r#"sluice_follower_lag_offsets{topic="b",partition="0",follower="1"} 40"#,
            r#"sluice_follower_lag_ms{topic="b",partition="0",follower="2"} 3000"#,
            r#"sluice_leader_in_sync_replicas{topic="b",partition="0"} 1"#,
            "sluice_leader_partitions 2",
            "sluice_leader_partitions_under_replicated 1",
            "sluice_leader_partitions_under_min_insync 1",
            "sluice_in_sync_shrinks_total 3",
            "sluice_in_sync_expands_total 2",
            "sluice_leaderships_taken_total 3",
            "sluice_leaderships_lost_total 0",
            r#"sluice_fetch_partition_reads_total{replica="leader"} 4"#,
            r#"sluice_fetch_partition_reads_total{replica="follower"} 5"#,
            "sluice_fetch_sent_to_closer_replica_total 2",
        ] {
            assert!(lines.contains(&expected), "{expected} missing from\n{text}");
        }
        assert!(
            !text.contains(r#"sluice_leader_in_sync_replicas{topic="c""#),
            "a partition this node does not lead has no leader figures:\n{text}"
        );
    }

    #[test]
    fn request_latencies_are_summed_over_shards_cumulative_and_named() {
        use std::time::Duration;
        let shard = |id: usize, times_us: &[u64]| {
            let mut produce = Histogram::default();
            for us in times_us {
                produce.record(Duration::from_micros(*us));
            }
            let mut unknown = Histogram::default();
            unknown.record(Duration::from_micros(10));
            ShardSample {
                shard: id,
                request_latencies: vec![
                    (("kafka", 0), produce),
                    (("native", crate::request_latency::UNKNOWN_API), unknown),
                ],
                ..ShardSample::default()
            }
        };
        let scrape = Scrape {
            shards: vec![shard(0, &[40, 900]), shard(1, &[1_400, 20_000_000])],
            groups: Vec::new(),
            controller: ControllerSample::default(),
        };
        let text = render(&scrape);
        let produce = r#"sluice_request_latency_seconds_bucket{protocol="kafka",api="Produce","#;
        let lines = lines(&text);
        let bucket = |le: &str| {
            let prefix = format!("{produce}le=\"{le}\"}} ");
            let line = lines.iter().find(|l| l.starts_with(&prefix));
            line.unwrap_or_else(|| panic!("no {prefix} in {text}"))[prefix.len()..]
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(bucket("0.00005"), 1);
        assert_eq!(bucket("0.001"), 2);
        assert_eq!(bucket("0.0015"), 3);
        assert_eq!(bucket("10"), 3);
        assert_eq!(bucket("+Inf"), 4);
        assert!(lines.contains(
            &r#"sluice_request_latency_seconds_count{protocol="kafka",api="Produce"} 4"#
        ));
        assert!(lines.contains(
            &r#"sluice_request_latency_seconds_sum{protocol="kafka",api="Produce"} 20.00234"#
        ));
        assert!(lines.contains(
            &r#"sluice_request_latency_seconds_count{protocol="native",api="unknown"} 2"#
        ));
    }

    #[test]
    fn the_controller_is_eight_gauges_leader_minus_one_when_unknown() {
        let scrape = Scrape {
            controller: ControllerSample {
                leader: Some(2),
                term: 7,
                applied_index: 40,
                committed_index: 41,
                brokers_fenced: 1,
                partitions_offline: 2,
                partitions_under_replicated: 3,
                partitions_under_min_in_sync: 4,
            },
            ..Scrape::default()
        };
        let text = render(&scrape);
        let lines = lines(&text);
        for expected in [
            "sluice_controller_leader 2",
            "sluice_controller_term 7",
            "sluice_metadata_applied_index 40",
            "sluice_metadata_committed_index 41",
            "sluice_brokers_fenced 1",
            "sluice_partitions_offline 2",
            "sluice_partitions_under_replicated 3",
            "sluice_partitions_under_min_insync 4",
        ] {
            assert!(lines.contains(&expected), "{expected} missing from\n{text}");
        }
        let unknown = render(&Scrape::default());
        assert!(
            unknown
                .lines()
                .any(|line| line == "sluice_controller_leader -1"),
            "{unknown}"
        );
    }

    #[test]
    fn hostile_names_stay_on_one_line() {
        let scrape = Scrape {
            shards: Vec::new(),
            groups: vec![committed("g\"}\n evil 1", "t", 0, 1, None)],
            controller: ControllerSample::default(),
        };
        let text = render(&scrape);
        assert!(
            text.contains(
                r#"sluice_group_committed_offset{group="g\"}\n evil 1",topic="t",partition="0"} 1"#
            ),
            "{text}"
        );
        assert!(!text.lines().any(|line| line.starts_with(" evil")));
    }
}
