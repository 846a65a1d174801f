//! `sluice consume`: the records of one partition or of all of a topic's,
//! merged. Without `--follow` it stops at the end offsets the partitions had
//! when it started.

use std::{
    collections::HashMap,
    io::{BufWriter, Write},
};

use futures_lite::StreamExt;
use sluice_net::client::{ConsumeOptions, ConsumedRecord, OffsetSpec, PartitionRange};

use crate::{
    cli::{ConsumeArgs, Format},
    output::JsonRecord,
    runtime::{block_on, CliError, CliResult},
};

pub fn run(args: ConsumeArgs) -> CliResult<()> {
    match block_on(consume(args))? {
        // The reader went away (`| head`): not a failure.
        Err(Stop::Io(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Stop::Io(error)) => Err(CliError(format!("cannot write the output: {error}"))),
        Err(Stop::Failed(error)) => Err(error),
        Ok(()) => Ok(()),
    }
}

enum Stop {
    Io(std::io::Error),
    Failed(CliError),
}

impl<E: Into<CliError>> From<E> for Stop {
    fn from(error: E) -> Stop {
        Stop::Failed(error.into())
    }
}

async fn consume(args: ConsumeArgs) -> Result<(), Stop> {
    let client = args.connect.client().await?;
    let topic = client.topic_metadata(&args.topic).await?;
    let mut partitions: Vec<u32> = topic.partitions.iter().map(|info| info.partition).collect();
    partitions.sort_unstable();
    if let Some(partition) = args.partition {
        if !partitions.contains(&partition) {
            return Err(Stop::Failed(CliError(format!(
                "topic {} has no partition {partition} (it has {})",
                args.topic,
                partitions.len()
            ))));
        }
        partitions = vec![partition];
    }
    let ends: HashMap<u32, u64> = if args.follow {
        HashMap::new()
    } else {
        let specs: Vec<(u32, OffsetSpec)> = partitions
            .iter()
            .map(|partition| (*partition, OffsetSpec::Latest))
            .collect();
        client
            .list_offsets(&args.topic, &specs)
            .await?
            .into_iter()
            .map(|listed| (listed.partition, listed.offset.unwrap_or(0)))
            .collect()
    };
    let ranges = partitions
        .iter()
        .map(|partition| PartitionRange {
            partition: *partition,
            start: args.offset,
            end: if args.follow {
                None
            } else {
                Some(ends.get(partition).copied().unwrap_or(0))
            },
        })
        .collect();
    if args.count == Some(0) {
        return Ok(());
    }
    let mut records = client.consume_partitions(&args.topic, ranges, ConsumeOptions::default());
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut printed = 0;
    while let Some(record) = records.next().await {
        let record = record?;
        write_record(&mut out, &record, args.format, separator).map_err(Stop::Io)?;
        printed += 1;
        if args.count.is_some_and(|count| printed >= count) {
            break;
        }
        if args.follow {
            out.flush().map_err(Stop::Io)?;
        }
    }
    out.flush().map_err(Stop::Io)?;
    Ok(())
}

/// One record on one line: the value (after the key and `separator`, when
/// there is a separator and a key) as it is, or a JSON object.
fn write_record(
    out: &mut impl Write,
    record: &ConsumedRecord,
    format: Format,
    separator: Option<&[u8]>,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            if let (Some(separator), Some(key)) = (separator, &record.key) {
                out.write_all(key)?;
                out.write_all(separator)?;
            }
            out.write_all(&record.value)?;
        }
        Format::Json => {
            serde_json::to_writer(&mut *out, &JsonRecord(record)).map_err(std::io::Error::from)?;
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(key: Option<&'static str>, value: &'static str) -> ConsumedRecord {
        ConsumedRecord {
            partition: 0,
            offset: 7,
            timestamp: 1,
            key: key.map(|key| Bytes::from_static(key.as_bytes())),
            value: Bytes::from_static(value.as_bytes()),
            headers: Vec::new(),
        }
    }

    fn text(record: &ConsumedRecord, format: Format, separator: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        write_record(&mut out, record, format, separator).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_the_value_per_line_with_the_key_when_asked() {
        assert_eq!(text(&record(Some("k"), "v"), Format::Text, None), "v\n");
        assert_eq!(
            text(&record(Some("k"), "v"), Format::Text, Some(b"\t")),
            "k\tv\n"
        );
        assert_eq!(text(&record(None, "v"), Format::Text, Some(b"\t")), "v\n");
    }

    #[test]
    fn json_is_one_object_per_line() {
        let line = text(&record(Some("k"), "v"), Format::Json, None);
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["offset"], 7);
        assert_eq!(value["key"], "k");
        assert_eq!(value["value"], "v");
    }
}
