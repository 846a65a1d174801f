//! What the commands print: aligned tables for people, JSON for scripts.

use base64::Engine;
use bytes::Bytes;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::json;
use sluice_net::{
    client::ConsumedRecord,
    native::messages::{TopicDescription, TopicInfo},
};

/// Columns padded to their widest cell, two spaces apart; the last column is
/// not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let padding = widths[index] - cell.chars().count();
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', padding + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn topic_id(id: u128) -> String {
    format!("{id:032x}")
}

pub fn topics_text(topics: &[TopicInfo]) -> String {
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|topic| {
            vec![
                topic.name.clone(),
                topic.partitions.len().to_string(),
                topic_id(topic.topic_id),
            ]
        })
        .collect();
    table(&["NAME", "PARTITIONS", "ID"], &rows)
}

pub fn topics_json(topics: &[TopicInfo]) -> serde_json::Value {
    topics
        .iter()
        .map(|topic| {
            json!({
                "name": topic.name,
                "partitions": topic.partitions.len(),
                "id": topic_id(topic.topic_id),
            })
        })
        .collect()
}

pub fn description_text(topic: &TopicDescription) -> String {
    let mut out = table(
        &["NAME", &topic.name],
        &[
            vec!["ID".to_string(), topic_id(topic.topic_id)],
            vec!["PARTITIONS".to_string(), topic.partitions.len().to_string()],
        ],
    );
    if !topic.configs.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = topic
            .configs
            .iter()
            .map(|(name, value)| vec![name.clone(), value.clone()])
            .collect();
        out.push_str(&table(&["CONFIG", "VALUE"], &rows));
    }
    out.push('\n');
    let errors = topic
        .partitions
        .iter()
        .any(|partition| !partition.error.is_ok());
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|partition| {
            let mut row = vec![
                partition.partition.to_string(),
                partition.shard.to_string(),
                partition.log_start.to_string(),
                partition.log_end.to_string(),
                partition.size_bytes.to_string(),
                partition.segments.to_string(),
            ];
            if errors {
                row.push(if partition.error.is_ok() {
                    String::new()
                } else {
                    partition.error.to_string()
                });
            }
            row
        })
        .collect();
    let mut header = vec![
        "PARTITION",
        "SHARD",
        "LOG-START",
        "LOG-END",
        "SIZE-BYTES",
        "SEGMENTS",
    ];
    if errors {
        header.push("ERROR");
    }
    out.push_str(&table(&header, &rows));
    out
}

pub fn description_json(topic: &TopicDescription) -> serde_json::Value {
    let configs: serde_json::Map<String, serde_json::Value> = topic
        .configs
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "name": topic.name,
        "id": topic_id(topic.topic_id),
        "configs": configs,
        "partitions": topic.partitions.iter().map(|partition| {
            let mut object = json!({
                "partition": partition.partition,
                "shard": partition.shard,
                "log_start": partition.log_start,
                "log_end": partition.log_end,
                "size_bytes": partition.size_bytes,
                "segments": partition.segments,
            });
            if !partition.error.is_ok() {
                object["error"] = json!(partition.error.to_string());
            }
            object
        }).collect::<Vec<_>>(),
    })
}

/// A consumed record as one JSON object, fields in a fixed order:
/// `partition`, `offset`, `timestamp`, `key`, `value`, `headers`. Bytes
/// that are valid UTF-8 are a string; others are base64 under the field's
/// name with `_base64` appended (`"value_base64": "..."`). A missing key
/// or header value is `null`; headers are a list of `{"name", "value"}`
/// objects in the producer's order.
pub struct JsonRecord<'a>(pub &'a ConsumedRecord);

impl serde::Serialize for JsonRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("partition", &record.partition)?;
        map.serialize_entry("offset", &record.offset)?;
        map.serialize_entry("timestamp", &record.timestamp)?;
        bytes_entry(&mut map, "key", record.key.as_ref())?;
        bytes_entry(&mut map, "value", Some(&record.value))?;
        map.serialize_entry("headers", &JsonHeaders(&record.headers))?;
        map.end()
    }
}

struct JsonHeaders<'a>(&'a [(Bytes, Option<Bytes>)]);

impl serde::Serialize for JsonHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&JsonHeader(name, value.as_ref()))?;
        }
        seq.end()
    }
}

struct JsonHeader<'a>(&'a Bytes, Option<&'a Bytes>);

impl serde::Serialize for JsonHeader<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        bytes_entry(&mut map, "name", Some(self.0))?;
        bytes_entry(&mut map, "value", self.1)?;
        map.end()
    }
}

fn bytes_entry<M: SerializeMap>(
    map: &mut M,
    name: &'static str,
    bytes: Option<&Bytes>,
) -> Result<(), M::Error> {
    match bytes {
        None => map.serialize_entry(name, &()),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => map.serialize_entry(name, text),
            Err(_) => map.serialize_entry(
                &format!("{name}_base64"),
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::native::{
        messages::{PartitionDescription, PartitionInfo},
        ErrorCode,
    };

    fn record(key: Option<&'static [u8]>, value: &'static [u8]) -> ConsumedRecord {
        ConsumedRecord {
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: key.map(Bytes::from_static),
            value: Bytes::from_static(value),
            headers: vec![
                (
                    Bytes::from_static(b"trace"),
                    Some(Bytes::from_static(b"abc")),
                ),
                (Bytes::from_static(b"empty"), None),
                (
                    Bytes::from_static(b"bin"),
                    Some(Bytes::from_static(&[0xff, 0x00])),
                ),
            ],
        }
    }

    #[test]
    fn a_record_is_one_json_object_in_field_order() {
        let line = serde_json::to_string(&JsonRecord(&record(Some(b"k\"1"), b"hello\n"))).unwrap();
        assert_eq!(
            line,
            r#"{"partition":2,"offset":41,"timestamp":1700000000000,"key":"k\"1","value":"hello\n","headers":[{"name":"trace","value":"abc"},{"name":"empty","value":null},{"name":"bin","value_base64":"/wA="}]}"#
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64_with_a_marker() {
        let value = serde_json::to_value(JsonRecord(&record(None, &[0xc3, 0x28, 0x01]))).unwrap();
        assert_eq!(value["key"], serde_json::Value::Null);
        assert_eq!(value["value_base64"], "wygB");
        assert!(value.get("value").is_none());
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "LONGER"],
            &[
                vec!["wide cell".to_string(), "x".to_string()],
                vec!["b".to_string(), "y".to_string()],
            ],
        );
        assert_eq!(text, "A          LONGER\nwide cell  x\nb          y\n");
    }

    fn description() -> TopicDescription {
        TopicDescription {
            name: "orders".to_string(),
            error: ErrorCode::None,
            message: String::new(),
            topic_id: 0xab,
            configs: vec![("retention.ms".to_string(), "1000".to_string())],
            partitions: vec![PartitionDescription {
                partition: 0,
                shard: 1,
                error: ErrorCode::None,
                log_start: 5,
                log_end: 10,
                size_bytes: 4096,
                segments: 1,
            }],
        }
    }

    #[test]
    fn describe_shows_every_partition_with_its_shard_offsets_and_size() {
        let text = description_text(&description());
        assert!(text.contains("retention.ms  1000"), "{text}");
        let last = text.lines().last().unwrap();
        let cells: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(cells, ["0", "1", "5", "10", "4096", "1"], "{text}");
        let json = description_json(&description());
        assert_eq!(json["configs"]["retention.ms"], "1000");
        assert_eq!(json["partitions"][0]["log_end"], 10);
        assert_eq!(json["partitions"][0]["shard"], 1);
        assert_eq!(json["id"], "000000000000000000000000000000ab");
    }

    #[test]
    fn topic_list_in_both_formats() {
        let topics = vec![TopicInfo {
            name: "orders".to_string(),
            error: ErrorCode::None,
            topic_id: 1,
            partitions: vec![
                PartitionInfo {
                    partition: 0,
                    leader: 0,
                    shard: 0,
                };
                3
            ],
        }];
        assert!(topics_text(&topics)
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("orders  3"));
        assert_eq!(topics_json(&topics)[0]["partitions"], 3);
    }
}
