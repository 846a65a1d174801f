//! Black box: the built `sluice` binary on a free port. Records go in
//! through `sluice produce` and through the client library, the broker is
//! stopped and started again, and `sluice consume` reads back every record,
//! byte for byte, in order within each partition.

mod common;

use std::collections::HashMap;

use common::Broker;
use sluice_net::client::{Client, Producer, ProducerOptions};

const PARTITIONS: u32 = 8;
const RECORDS_EACH_WAY: usize = 50_000;

fn produce_with_the_client(address: &str) {
    let address = address.to_string();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("executor")
        .run(async move {
            let client = Client::connect(&address).await.expect("connect");
            let producer = Producer::new(client, ProducerOptions::default());
            let mut deliveries = Vec::new();
            for index in 0..RECORDS_EACH_WAY {
                let value = format!("client-{index}");
                let partition = index as u32 % PARTITIONS;
                producer.ready().await;
                deliveries.push(producer.send("rt", Some(partition), None, value.as_bytes(), &[]));
            }
            producer.flush().await.expect("flush");
            for delivery in deliveries {
                delivery.await.expect("stored");
            }
        });
}

#[test]
fn records_survive_a_restart_byte_for_byte_and_in_order() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut broker = Broker::start(data_dir.path(), 2);

    let created = broker.cli(
        &[
            "topic",
            "create",
            "rt",
            "--partitions",
            &PARTITIONS.to_string(),
        ],
        None,
    );
    assert!(created.status.success(), "{created:?}");

    // Lines with bytes that matter: tabs, quotes, non-ASCII, empty lines.
    let lines: Vec<String> = (0..RECORDS_EACH_WAY)
        .map(|index| match index % 5 {
            0 => String::new(),
            1 => format!("line-{index}\twith \"quotes\""),
            2 => format!("line-{index} ünïcödé"),
            _ => format!("line-{index}"),
        })
        .collect();
    let mut input = lines.join("\n").into_bytes();
    input.push(b'\n');
    let produced = broker.cli(&["produce", "rt"], Some(&input));
    assert!(produced.status.success(), "{produced:?}");
    assert!(
        produced.stdout.is_empty(),
        "produce prints nothing on stdout"
    );

    produce_with_the_client(&broker.addr);

    // SIGTERM (asserting a clean exit) and start again.
    broker.restart();

    let consumed = broker.cli(&["consume", "rt", "--format", "json"], None);
    assert!(consumed.status.success(), "{consumed:?}");
    let text = String::from_utf8(consumed.stdout).expect("json is UTF-8");
    let mut per_partition: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("one object per line");
        per_partition
            .entry(record["partition"].as_u64().unwrap())
            .or_default()
            .push((
                record["offset"].as_u64().unwrap(),
                record["value"].as_str().expect("UTF-8 values").to_string(),
            ));
    }
    assert_eq!(per_partition.len(), PARTITIONS as usize);

    let line_index: HashMap<&str, usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| (line.as_str(), index))
        .collect();
    let mut cli_seen = 0;
    let mut client_seen = 0;
    for (partition, records) in &per_partition {
        let offsets: Vec<u64> = records.iter().map(|(offset, _)| *offset).collect();
        let dense: Vec<u64> = (0..records.len() as u64).collect();
        assert_eq!(
            offsets, dense,
            "partition {partition}: offsets from 0, no gap"
        );
        let mut last_line = None;
        let mut last_client = None;
        for (_, value) in records {
            if let Some(index) = value.strip_prefix("client-") {
                let index: usize = index.parse().unwrap();
                assert_eq!(index as u64 % u64::from(PARTITIONS), *partition);
                assert!(last_client < Some(index), "client records out of order");
                last_client = Some(index);
                client_seen += 1;
            } else {
                cli_seen += 1;
                if value.is_empty() {
                    continue;
                }
                let index = *line_index.get(value.as_str()).unwrap_or_else(|| {
                    panic!("partition {partition} holds a line never sent: {value:?}")
                });
                assert!(last_line < Some(index), "lines out of order in {partition}");
                last_line = Some(index);
            }
        }
    }
    assert_eq!(cli_seen, RECORDS_EACH_WAY);
    assert_eq!(client_seen, RECORDS_EACH_WAY);

    // The text format gives back the very bytes of the input's lines.
    let consumed = broker.cli(&["consume", "rt"], None);
    assert!(consumed.status.success());
    let client_values: Vec<String> = (0..RECORDS_EACH_WAY)
        .map(|index| format!("client-{index}"))
        .collect();
    let mut expected: Vec<&[u8]> = input.split(|&byte| byte == b'\n').collect();
    expected.pop();
    expected.extend(client_values.iter().map(|value| value.as_bytes()));
    let mut got: Vec<&[u8]> = consumed.stdout.split(|&byte| byte == b'\n').collect();
    got.pop();
    expected.sort_unstable();
    got.sort_unstable();
    assert!(
        got == expected,
        "consumed bytes differ from the produced ones"
    );

    broker.stop();
}
