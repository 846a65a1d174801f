//! `sluice txn`: list, describe, abort.

use sluice_net::native::messages::{AbortPartitionTransactionRequest, ListTransactionsRequest};

use crate::{
    cli::{Format, TxnCommand},
    output,
    runtime::{block_on, CliResult},
};

pub fn run(command: TxnCommand) -> CliResult<()> {
    block_on(async move {
        match command {
            TxnCommand::List {
                state,
                producer_id,
                running_longer_than,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let listed = client
                    .list_transactions(ListTransactionsRequest {
                        states: state,
                        producer_ids: producer_id,
                        running_at_least_ms: running_longer_than,
                    })
                    .await?;
                match format {
                    Format::Text => print!("{}", output::txns_text(&listed.transactions)),
                    Format::Json => println!("{}", output::txns_json(&listed.transactions)),
                }
                for node in &listed.truncated {
                    eprintln!(
                        "node {node} listed only part of its transactional ids: narrow the listing with --state, --producer-id or --running-longer-than"
                    );
                }
            }
            TxnCommand::Describe {
                transactional_id,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let described = client.describe_transaction(&transactional_id).await?;
                match format {
                    Format::Text => print!("{}", output::txn_text(&described, output::now_ms())),
                    Format::Json => println!("{}", output::txn_json(&described)),
                }
            }
            TxnCommand::Abort {
                transactional_id,
                topic,
                partition,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                connect,
            } => {
                let client = connect.client().await?;
                match (transactional_id, topic, partition, producer_id, producer_epoch) {
                    (Some(id), None, ..) => {
                        let node = client.abort_transaction(&id).await?;
                        eprintln!(
                            "aborted the transaction of {id} (its coordinator, node {node}, writes the abort markers)"
                        );
                    }
                    (None, Some(topic), Some(partition), Some(producer_id), Some(producer_epoch)) => {
                        let node = client
                            .abort_partition_transaction(AbortPartitionTransactionRequest {
                                topic: topic.clone(),
                                partition,
                                producer_id,
                                producer_epoch,
                                coordinator_epoch: coordinator_epoch.unwrap_or(0),
                            })
                            .await?;
                        eprintln!(
                            "wrote an abort marker of producer {producer_id} (epoch {producer_epoch}) on {topic}/{partition}, led by node {node}"
                        );
                    }
                    _ => unreachable!("clap requires a transactional id, or a topic with a partition, producer id and epoch"),
                }
            }
        }
        Ok(())
    })?
}
