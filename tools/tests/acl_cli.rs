//! Black box: `sluice acl add | list | remove` against the built `sluice`
//! binary, through the Kafka listener with SASL (and TLS): a super user
//! grants alice a topic and her produce is served, lists the bindings
//! (literal, prefixed, matching a name), removes them and she is refused
//! again; a user who may not, a wrong password, a missing password, a
//! listener without SASL named as one and a removal of everything without
//! --all are refused with messages that say why; a broker without an
//! authorizer says so; SASL_SSL with the broker's authority, and without.

mod common;
mod kafka_raw;

use std::process::{Command, Output, Stdio};

use common::{
    certs::{pairs, Authority, BrokerTls},
    Broker, SLUICE,
};
use kafka_raw::{create_topic, login, produce_one as produce, sasl_broker as broker, users_file};

const TOPIC_DENIED: i16 = 29;

const ADMIN: Option<(&str, &str)> = Some(("admin", "admin-secret"));
const ALICE: Option<(&str, &str)> = Some(("alice", "alice-secret"));

/// The settings of a broker with the ACL authorizer and the super user
/// admin.
const AUTHORIZER: [(&str, &str); 2] = [
    ("SLUICE_AUTHORIZER", "acl"),
    ("SLUICE_SUPER_USERS", "User:admin"),
];

const HEADER: &str = "RESOURCE-TYPE  NAME    PATTERN  PRINCIPAL   HOST  OPERATION  PERMISSION\n";

fn sasl_plaintext(broker: &Broker) -> String {
    format!("SASL_PLAINTEXT://{}", broker.kafka_addr)
}

/// `sluice acl ARGS` with `bootstrap` and, if given, a user and password,
/// in the environment as a script would set them; nothing else of the
/// test's environment about the connection.
fn acl(bootstrap: &str, credentials: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut command = Command::new(SLUICE);
    command
        .arg("acl")
        .args(args)
        .env("SLUICE_BOOTSTRAP", bootstrap)
        .env_remove("SLUICE_USER")
        .env_remove("SLUICE_PASSWORD")
        .env_remove("SLUICE_CA")
        .stdin(Stdio::null());
    if let Some((user, password)) = credentials {
        command
            .env("SLUICE_USER", user)
            .env("SLUICE_PASSWORD", password);
    }
    command.output().expect("sluice runs")
}

/// Standard output of a command that must succeed.
fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "sluice acl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Standard error of a command that must fail (exit code 1, a refusal
/// at run time), with nothing on standard output.
fn failed(args: &[&str], output: Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "sluice acl {args:?} did not fail as it should: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{args:?}");
    stderr
}

fn acl_ok(bootstrap: &str, credentials: Option<(&str, &str)>, args: &[&str]) -> String {
    succeeded(args, acl(bootstrap, credentials, args))
}

fn acl_failed(bootstrap: &str, credentials: Option<(&str, &str)>, args: &[&str]) -> String {
    failed(args, acl(bootstrap, credentials, args))
}

#[test]
fn a_super_user_grants_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path(), &AUTHORIZER);
    let bootstrap = sasl_plaintext(&broker);
    let mut admin = login(&broker, "admin");
    assert_eq!(create_topic(&mut admin, "orders"), 0);
    let mut alice = login(&broker, "alice");
    assert_eq!(produce(&mut alice, "orders"), TOPIC_DENIED, "no ACL yet");

    // One binding per operation, printed as created.
    let added = acl_ok(
        &bootstrap,
        ADMIN,
        &[
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--operation",
            "DESCRIBE",
            "--topic",
            "orders",
        ],
    );
    let alice_orders = "\
TOPIC          orders  LITERAL  User:alice  *     WRITE      ALLOW
TOPIC          orders  LITERAL  User:alice  *     DESCRIBE   ALLOW
";
    assert_eq!(added, format!("{HEADER}{alice_orders}"));
    assert_eq!(produce(&mut alice, "orders"), 0, "WRITE on orders given");
    assert_eq!(
        acl_ok(&bootstrap, ADMIN, &["list"]),
        format!("{HEADER}{alice_orders}")
    );

    // A prefix: listed literally by its own name, or as matching a name
    // it covers.
    acl_ok(
        &bootstrap,
        ADMIN,
        &[
            "add",
            "--principal",
            "User:bob",
            "--operation",
            "read",
            "--topic",
            "logs-",
            "--prefixed",
        ],
    );
    let bob_logs = "\
RESOURCE-TYPE  NAME   PATTERN   PRINCIPAL  HOST  OPERATION  PERMISSION
TOPIC          logs-  PREFIXED  User:bob   *     READ       ALLOW
";
    let empty = "RESOURCE-TYPE  NAME  PATTERN  PRINCIPAL  HOST  OPERATION  PERMISSION\n";
    assert_eq!(
        acl_ok(&bootstrap, ADMIN, &["list", "--topic", "logs-app"]),
        empty,
        "no literal binding of logs-app"
    );
    assert_eq!(
        acl_ok(
            &bootstrap,
            ADMIN,
            &["list", "--topic", "logs-app", "--match"]
        ),
        bob_logs
    );
    assert_eq!(
        acl_ok(
            &bootstrap,
            ADMIN,
            &["list", "--topic", "logs-", "--prefixed"]
        ),
        bob_logs
    );
    assert_eq!(
        acl_ok(&bootstrap, ADMIN, &["list", "--topic", "logs-"]),
        empty,
        "literal unless --prefixed"
    );
    let listed = acl_ok(
        &bootstrap,
        ADMIN,
        &["list", "--principal", "User:bob", "--format", "json"],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "resource_type": "TOPIC",
            "name": "logs-",
            "pattern": "PREFIXED",
            "principal": "User:bob",
            "host": "*",
            "operation": "READ",
            "permission": "ALLOW",
        }])
    );
    assert_eq!(
        acl_ok(&bootstrap, ADMIN, &["list", "--operation", "describe"]),
        format!("{HEADER}TOPIC          orders  LITERAL  User:alice  *     DESCRIBE   ALLOW\n")
    );
    assert_eq!(
        acl_ok(&bootstrap, ADMIN, &["list", "--deny"]),
        empty,
        "nothing denied"
    );

    // Removed, and alice is refused again.
    let args = [
        "remove",
        "--principal",
        "User:alice",
        "--topic",
        "orders",
        "--operation",
        "write",
    ];
    let output = acl(&bootstrap, ADMIN, &args);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("removed 1 ACL binding\n"),
        "{output:?}"
    );
    assert_eq!(
        succeeded(&args, output),
        format!("{HEADER}TOPIC          orders  LITERAL  User:alice  *     WRITE      ALLOW\n")
    );
    assert_eq!(produce(&mut alice, "orders"), TOPIC_DENIED, "WRITE removed");

    // Everything, only when said so.
    let said = acl_failed(&bootstrap, ADMIN, &["remove"]);
    assert!(
        said.contains("refusing to remove every ACL binding") && said.contains("--all"),
        "{said}"
    );
    let left = acl_ok(&bootstrap, ADMIN, &["list"]);
    assert_eq!(
        left.lines().count(),
        3,
        "alice's DESCRIBE and bob's READ: {left}"
    );
    let removed = acl_ok(&bootstrap, ADMIN, &["remove", "--all"]);
    assert_eq!(removed, left, "what was left, removed");
    assert_eq!(acl_ok(&bootstrap, ADMIN, &["list"]), empty);
}

#[test]
fn refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path(), &AUTHORIZER);
    let bootstrap = sasl_plaintext(&broker);
    let grant = [
        "add",
        "--principal",
        "User:alice",
        "--operation",
        "all",
        "--topic",
        "t",
    ];

    // alice is no super user, and holds no ALTER on the cluster.
    let said = acl_failed(&bootstrap, ALICE, &grant);
    assert!(
        said.contains("cannot create ACL bindings: CLUSTER_AUTHORIZATION_FAILED"),
        "{said}"
    );
    let said = acl_failed(&bootstrap, ALICE, &["list"]);
    assert!(
        said.contains("cannot list ACL bindings: CLUSTER_AUTHORIZATION_FAILED")
            && said.contains("DESCRIBE on the cluster"),
        "{said}"
    );
    let said = acl_failed(&bootstrap, ALICE, &["remove", "--all"]);
    assert!(said.contains("CLUSTER_AUTHORIZATION_FAILED"), "{said}");

    let said = acl_failed(&bootstrap, Some(("admin", "wrong")), &["list"]);
    assert!(
        said.contains("SASL authentication failed as admin: SASL_AUTHENTICATION_FAILED"),
        "{said}"
    );
    let said = acl_failed(&bootstrap, None, &["list"]);
    assert!(
        said.contains("SASL_PLAINTEXT:// needs a SASL user and password"),
        "{said}"
    );
    let output = Command::new(SLUICE)
        .args(["acl", "list", "--user", "admin", "--bootstrap", &bootstrap])
        .env_remove("SLUICE_PASSWORD")
        .output()
        .unwrap();
    let said = failed(&["list", "--user", "admin"], output);
    assert!(
        said.contains("SASL user admin") && said.contains("SLUICE_PASSWORD"),
        "{said}"
    );
    // The listener named without its protocol: ApiVersions is answered,
    // the request after it closes the connection.
    let said = acl_failed(&broker.kafka_addr, None, &["list"]);
    assert!(
        said.contains("closed the connection") && said.contains("SASL_PLAINTEXT://"),
        "{said}"
    );

    // Nothing was created by any of this.
    let listed = acl_ok(&bootstrap, ADMIN, &["list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    // A binding the broker would refuse is not sent.
    let said = acl_failed(
        &bootstrap,
        ADMIN,
        &[
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--cluster",
        ],
    );
    assert!(said.contains("does not apply"), "{said}");
}

#[test]
fn without_an_authorizer_the_broker_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path(), &[]);
    let bootstrap = sasl_plaintext(&broker);
    for args in [
        &["list"][..],
        &[
            "add",
            "--principal",
            "User:bob",
            "--operation",
            "read",
            "--group",
            "g",
        ][..],
        &["remove", "--principal", "User:bob"][..],
    ] {
        let said = acl_failed(&bootstrap, ALICE, args);
        assert!(
            said.contains("the broker has no authorizer (SECURITY_DISABLED)")
                && said.contains("authorizer = \"acl\""),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn over_sasl_ssl_with_the_brokers_authority() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let tls = BrokerTls::new(dir.path());
    let mut more = vec![("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap())];
    more.extend_from_slice(&AUTHORIZER);
    let env = tls.env("SASL_SSL", &more);
    let broker = Broker::start_with(&dir.path().join("data"), 2, &pairs(&env));
    let bootstrap = format!("SASL_SSL://{}", broker.kafka_addr);
    let ca = tls.ca.to_str().unwrap();

    acl_ok(
        &bootstrap,
        ADMIN,
        &[
            "add",
            "--principal",
            "User:alice",
            "--operation",
            "write",
            "--transactional-id",
            "pay",
            "--ca",
            ca,
        ],
    );
    // The authority from SLUICE_CA, as a script would give it.
    let args = ["list", "--transactional-id", "pay"];
    let output = Command::new(SLUICE)
        .arg("acl")
        .args(args)
        .env("SLUICE_BOOTSTRAP", &bootstrap)
        .env("SLUICE_USER", "admin")
        .env("SLUICE_PASSWORD", "admin-secret")
        .env("SLUICE_CA", ca)
        .output()
        .unwrap();
    assert_eq!(
        succeeded(&args, output),
        "\
RESOURCE-TYPE     NAME  PATTERN  PRINCIPAL   HOST  OPERATION  PERMISSION
TRANSACTIONAL_ID  pay   LITERAL  User:alice  *     WRITE      ALLOW
"
    );

    let said = acl_failed(&bootstrap, ADMIN, &["list"]);
    assert!(
        said.contains("SASL_SSL:// needs the authority of the broker's certificate"),
        "{said}"
    );
    let stranger = dir.path().join("stranger.pem");
    std::fs::write(&stranger, Authority::new("another CA").pem()).unwrap();
    let said = acl_failed(
        &bootstrap,
        ADMIN,
        &["list", "--ca", stranger.to_str().unwrap()],
    );
    assert!(
        said.contains("TLS with") && said.contains("certificate"),
        "{said}"
    );
    // Plaintext spoken to a TLS listener: it answers with a TLS alert.
    let said = acl_failed(
        &format!("SASL_PLAINTEXT://{}", broker.kafka_addr),
        ADMIN,
        &["list"],
    );
    assert!(
        said.contains("answered in TLS: is the address SSL:// or SASL_SSL://?"),
        "{said}"
    );
}
