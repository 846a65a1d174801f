//! A data directory given relative to where the broker starts works, across
//! a restart, as the README's tour uses it.

mod common;

use common::*;

#[test]
fn a_relative_data_directory_works_across_a_restart() {
    let working_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start_relative(working_dir.path(), "./data", 2);
    let created = broker.cli(&["topic", "create", "clicks", "--partitions", "4"], None);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let produced = broker.cli(
        &["produce", "clicks", "--key-separator", ":"],
        Some(b"user1:home\nuser2:cart\n"),
    );
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    broker.restart();
    let consumed = broker.cli(&["consume", "clicks", "--offset", "earliest"], None);
    assert!(
        consumed.status.success(),
        "{}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let mut values: Vec<&str> = std::str::from_utf8(&consumed.stdout)
        .unwrap()
        .lines()
        .collect();
    values.sort();
    assert_eq!(values, vec!["cart", "home"]);
    assert!(working_dir.path().join("data/metadata/quorum").exists());
}
