//! `sluice group`: list, describe, reset-offsets, delete.

use crate::{
    cli::{Format, GroupCommand},
    output,
    runtime::{block_on, CliResult},
};

pub fn run(command: GroupCommand) -> CliResult<()> {
    block_on(async move {
        match command {
            GroupCommand::List { format, connect } => {
                let client = connect.client().await?;
                let groups = client.list_groups().await?;
                match format {
                    Format::Text => print!("{}", output::groups_text(&groups)),
                    Format::Json => println!("{}", output::groups_json(&groups)),
                }
            }
            GroupCommand::Describe {
                name,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let group = client.describe_group(&name).await?;
                match format {
                    Format::Text => print!("{}", output::group_text(&group)),
                    Format::Json => println!("{}", output::group_json(&group)),
                }
            }
            GroupCommand::ResetOffsets {
                name,
                topic,
                partition,
                to,
                dry_run,
                format,
                connect,
            } => {
                let client = connect.client().await?;
                let partitions: Vec<u32> = partition.into_iter().collect();
                let reset = client
                    .reset_group_offsets(&name, &topic, &partitions, to, dry_run)
                    .await?;
                match format {
                    Format::Text => print!("{}", output::reset_text(&topic, &reset)),
                    Format::Json => {
                        println!("{}", output::reset_json(&name, &topic, dry_run, &reset))
                    }
                }
                if dry_run {
                    eprintln!("dry run: nothing committed");
                } else {
                    eprintln!(
                        "reset the offsets of group {name} in {} partitions of {topic}",
                        reset.len()
                    );
                }
            }
            GroupCommand::Delete { name, connect } => {
                let client = connect.client().await?;
                client.delete_group(&name).await?;
                eprintln!("deleted group {name}");
            }
        }
        Ok(())
    })?
}
