//! `sluice serve`: the broker's settings from flags, environment, file and
//! defaults, then the broker until a signal stops it.

use std::collections::HashMap;

use crate::{
    cli::ServeArgs,
    config::{broker_config, ConfigLayer, ENV_PREFIX},
    runtime::CliResult,
};

pub fn run(args: ServeArgs) -> CliResult<()> {
    let flags = ConfigLayer {
        data_dir: args.data_dir,
        log_dirs: args.log_dirs,
        node_id: args.node_id,
        peer_addr: args.peer_addr,
        voters: args.voters,
        cluster_id: args.cluster_id,
        rack: args.rack,
        native_addr: args.native_addr,
        kafka_addr: args
            .kafka_addr
            .or_else(|| (!args.kafka_listener.is_empty()).then(|| args.kafka_listener.join(","))),
        kafka_advertised_addr: args.kafka_advertised_addr,
        admin_addr: args.admin_addr,
        cores: args.cores,
        default_replication_factor: args.default_replication_factor,
        min_insync_replicas: args.min_insync_replicas,
        replica_selector: args.replica_selector,
        ready_file: args.ready_file,
        ..ConfigLayer::default()
    };
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    let mut config = broker_config(flags, &env, args.config.as_deref())?;
    config.rejoin = args.rejoin;
    tracing::info!(?config, "starting");
    sluice_engine::run(config)?;
    Ok(())
}
