//! Black box: the ACL authorizer (`authorizer = "acl"`) against the built
//! `sluice` binary, on a `SASL_PLAINTEXT://` listener with the super user
//! admin and the users alice and bob: confluent-kafka creates, describes
//! and deletes ACLs and meets them as applications do
//! (`tests/kafka_clients/acls.py`).

mod common;

use std::path::Path;

use common::{certs::run_client_script, Broker};

const USERS: &str = "admin:admin-secret\nalice:alice-secret\nbob:bob-secret\n";

/// A broker with the ACL authorizer on a SASL_PLAINTEXT listener, and
/// `super_users`.
fn acl_broker(dir: &Path, cores: usize, super_users: &str) -> Broker {
    let users = dir.join("users");
    std::fs::write(&users, USERS).unwrap();
    Broker::start_with(
        &dir.join("data"),
        cores,
        &[
            ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap()),
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", super_users),
            ("SLUICE_ADMIN_ADDR", "127.0.0.1:0"),
        ],
    )
}

#[test]
fn confluent_kafka_meets_acls_as_applications_do() {
    let dir = tempfile::tempdir().unwrap();
    let broker = acl_broker(dir.path(), 2, "User:admin");
    run_client_script("acls.py", &[std::ffi::OsStr::new(&broker.kafka_addr)], &[]);
    let admin = broker.admin_addr.as_deref().expect("an admin listener");
    let denials = common::metric_as(
        admin,
        "sluice_authorization_denials_total",
        Some(("admin", "admin-secret")),
    );
    assert!(denials >= 8, "{denials} denials counted");
}

#[test]
fn scram_credentials_live_in_the_replicated_metadata() {
    let dir = tempfile::tempdir().unwrap();
    // carol (a SCRAM user of the metadata) may do anything once in.
    let mut broker = acl_broker(dir.path(), 1, "User:admin;User:carol");
    let bootstrap = std::ffi::OsStr::new(&broker.kafka_addr).to_owned();
    run_client_script("scram_users.py", &[&bootstrap], &[]);
    broker.restart();
    let bootstrap = std::ffi::OsStr::new(&broker.kafka_addr).to_owned();
    run_client_script(
        "scram_users.py",
        &[&bootstrap, std::ffi::OsStr::new("after-restart")],
        &[],
    );
}

#[test]
fn a_client_certificate_subject_is_the_principal() {
    use common::certs::{pairs, BrokerTls};
    let dir = tempfile::tempdir().unwrap();
    let tls = BrokerTls::new(dir.path());
    for name in ["admin", "writer", "reader"] {
        let (certificate, key) = tls.authority.issue(name, false);
        std::fs::write(dir.path().join(format!("{name}.pem")), certificate).unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), key).unwrap();
    }
    let mut env = tls.mutual_env();
    env.push(("SLUICE_AUTHORIZER".into(), "acl".into()));
    env.push(("SLUICE_SUPER_USERS".into(), "User:CN=admin".into()));
    let broker = Broker::start_with(&dir.path().join("data"), 1, &pairs(&env));
    run_client_script(
        "cert_principals.py",
        &[
            std::ffi::OsStr::new(&broker.kafka_addr),
            dir.path().as_os_str(),
        ],
        &[],
    );
}
