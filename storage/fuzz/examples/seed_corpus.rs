//! Writes the seed corpora for `batch_validate` and `kafka_from`: a few
//! batches made by [`BatchBuilder`], one file each, into the directory given
//! (by default `corpus/batch_validate` under the current directory), each
//! also as a Kafka batch (`Batch::write_kafka`) into the second directory
//! given (by default `corpus/kafka_from`), and as a Sluice batch with that
//! kafka payload (`Batch::from_kafka`) into the first.
//!
//! From empty inputs the fuzzer reaches the header checks within seconds but,
//! in minutes, never a valid rkyv archive; from these seeds it starts inside
//! the archive checks. The seeds are made rather than kept in the repository
//! so that they follow the format when it changes.

use std::path::PathBuf;

use bytes::BytesMut;

use sluice_storage::{
    batch::{Batch, BatchBuilder},
    Offset,
};

/// One record to push: (timestamp, key, value, headers).
type Record<'a> = (
    i64,
    Option<&'a [u8]>,
    &'a [u8],
    &'a [(&'a [u8], Option<&'a [u8]>)],
);

fn main() -> std::io::Result<()> {
    let directory = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/batch_validate"));
    std::fs::create_dir_all(&directory)?;
    let kafka_directory = std::env::args()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/kafka_from"));
    std::fs::create_dir_all(&kafka_directory)?;

    let seeds: Vec<(&str, Batch)> = vec![
        ("one-value", build(&[(1_000, None, b"v", &[])])),
        ("one-keyed", build(&[(1_000, Some(b"key"), b"value", &[])])),
        ("empty-value", build(&[(0, Some(b""), b"", &[])])),
        (
            "headers",
            build(&[(
                1_000,
                Some(b"k"),
                b"value",
                &[(b"trace", Some(b"abc")), (b"empty", None), (b"", Some(b""))],
            )]),
        ),
        (
            "mixed",
            build(&[
                (1_000, None, b"first", &[]),
                (999, Some(b"k2"), b"second", &[(b"h", None)]),
                (2_000, Some(b"k3"), b"", &[]),
                (
                    i64::MIN,
                    None,
                    b"x",
                    &[(b"a", Some(b"b")), (b"c", Some(b"d"))],
                ),
            ]),
        ),
        ("many", build_many(64)),
        (
            "producer",
            build_with(
                BatchBuilder::default().producer(42, 3, 1_000),
                &[(5, Some(b"k"), b"v", &[])],
            ),
        ),
        (
            "assigned",
            build(&[(1, Some(b"k"), b"v", &[]), (2, None, b"w", &[])]).assign(Offset(1 << 40), 9),
        ),
    ];
    for (name, batch) in &seeds {
        std::fs::write(directory.join(name), batch.as_bytes())?;
        let mut kafka = BytesMut::new();
        batch.write_kafka(&mut kafka).expect("a built batch");
        std::fs::write(kafka_directory.join(name), &kafka)?;
        let stored = Batch::from_kafka(&kafka).expect("a written kafka batch");
        std::fs::write(directory.join(format!("kafka-{name}")), stored.as_bytes())?;
    }
    println!(
        "wrote {} seeds to {} and {} to {}",
        2 * seeds.len(),
        directory.display(),
        seeds.len(),
        kafka_directory.display()
    );
    Ok(())
}

fn build(records: &[Record<'_>]) -> Batch {
    build_with(BatchBuilder::default(), records)
}

fn build_with(mut builder: BatchBuilder, records: &[Record<'_>]) -> Batch {
    for (timestamp, key, value, headers) in records {
        builder.push(*timestamp, *key, value, headers);
    }
    builder.finish()
}

fn build_many(count: usize) -> Batch {
    let mut builder = BatchBuilder::default();
    for index in 0..count {
        let key = index.to_le_bytes();
        let value = vec![index as u8; index % 17];
        builder.push(index as i64, Some(&key), &value, &[]);
    }
    builder.finish()
}
