//! `sluice topic`: create, list, describe, alter-config, delete,
//! elect-leaders, move, moves.

use sluice_net::native::{
    messages::{ElectionTopic, NewTopic, PartitionMove},
    ErrorCode,
};

use crate::{
    cli::{Format, TopicCommand},
    output,
    runtime::{block_on, CliError, CliResult},
};

/// How often `sluice topic move --wait` asks whether the moves are done.
const MOVE_POLL: std::time::Duration = std::time::Duration::from_millis(200);

pub fn run(command: TopicCommand) -> CliResult<()> {
    block_on(async move {
        match command {
            TopicCommand::Create {
                name,
                partitions,
                replication_factor,
                replica_assignment,
                configs,
                connect,
            } => {
                let client = connect.client().await?;
                let assignment = replica_assignment.map(|a| a.0).unwrap_or_default();
                let count = match partitions {
                    Some(partitions) => Some(partitions),
                    None if !assignment.is_empty() => Some(assignment.len() as u32),
                    None => None,
                };
                // 0 asks for the broker's default.
                client
                    .create_topic_placed(NewTopic {
                        name: name.clone(),
                        partitions: count.unwrap_or(0),
                        configs,
                        replication_factor: replication_factor.unwrap_or(0),
                        assignment,
                    })
                    .await?;
                match count {
                    Some(partitions) => {
                        eprintln!("created topic {name} with {partitions} partitions")
                    }
                    None => {
                        eprintln!("created topic {name} with the broker's default partition count")
                    }
                }
            }
            TopicCommand::List { format, connect } => {
                let client = connect.client().await?;
                let topics = client.list_topics().await?;
                match format {
                    Format::Text => print!("{}", output::topics_text(&topics)),
                    Format::Json => println!("{}", output::topics_json(&topics)),
                }
            }
            TopicCommand::Describe {
                name,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let topics = client.describe_topics(std::slice::from_ref(&name)).await?;
                let topic = topics
                    .iter()
                    .find(|topic| topic.name == name)
                    .expect("describe_topics checks every named topic is there");
                match format {
                    Format::Text => print!("{}", output::description_text(topic)),
                    Format::Json => println!("{}", output::description_json(topic)),
                }
            }
            TopicCommand::AlterConfig {
                name,
                configs,
                connect,
            } => {
                let client = connect.client().await?;
                client.alter_configs(&name, &configs).await?;
                eprintln!("altered {} configs of topic {name}", configs.len());
            }
            TopicCommand::Delete { name, connect } => {
                let client = connect.client().await?;
                client.delete_topic(&name).await?;
                eprintln!("deleted topic {name}");
            }
            TopicCommand::ElectLeaders {
                topic,
                partition,
                election,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let topics = topic
                    .into_iter()
                    .map(|name| ElectionTopic {
                        name,
                        partitions: partition.clone(),
                    })
                    .collect();
                let results = client.elect_leaders(election.into(), topics).await?;
                match format {
                    Format::Text => print!("{}", output::elections_text(&results)),
                    Format::Json => println!("{}", output::elections_json(&results)),
                }
                // As Kafka's tool: an election that was not needed is no
                // failure; one that was and could not be held is.
                let failed = results
                    .iter()
                    .filter(|result| {
                        !matches!(result.error, ErrorCode::None | ErrorCode::ElectionNotNeeded)
                    })
                    .count();
                if failed > 0 {
                    return Err(CliError(format!(
                        "{failed} of {} elections could not be held",
                        results.len()
                    )));
                }
            }
            TopicCommand::Move {
                topic,
                partition,
                to,
                throttle,
                allow_replication_factor_change,
                cancel,
                wait,
                connect,
            } => {
                let client = connect.client().await?;
                let moves: Vec<PartitionMove> = partition
                    .iter()
                    .map(|partition| PartitionMove {
                        topic: topic.clone(),
                        partition: *partition,
                        replicas: (!cancel).then(|| to.clone()),
                    })
                    .collect();
                let results = client
                    .alter_reassignments(
                        moves,
                        throttle.unwrap_or(0),
                        allow_replication_factor_change,
                    )
                    .await?;
                print!("{}", output::moves_started_text(&results, cancel));
                let failed = results
                    .iter()
                    .filter(|result| !result.error.is_ok())
                    .count();
                if failed > 0 {
                    return Err(CliError(format!(
                        "{failed} of {} moves could not be {}",
                        results.len(),
                        if cancel { "cancelled" } else { "started" }
                    )));
                }
                if wait {
                    // Done when none of them is listed as moving.
                    loop {
                        let moving = client.list_reassignments(vec![topic.clone()]).await?;
                        let left = moving
                            .iter()
                            .filter(|moving| partition.contains(&moving.partition))
                            .count();
                        if left == 0 {
                            break;
                        }
                        glommio::timer::sleep(MOVE_POLL).await;
                    }
                    eprintln!("done: {} partitions moved", partition.len());
                }
            }
            TopicCommand::Moves {
                topic,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let moving = client
                    .list_reassignments(topic.into_iter().collect())
                    .await?;
                match format {
                    Format::Text => print!("{}", output::moves_text(&moving)),
                    Format::Json => println!("{}", output::moves_json(&moving)),
                }
            }
        }
        Ok(())
    })?
}
