//! Black box: `sluice user create | list | delete` against the built
//! `sluice` binary, through a SASL_PLAINTEXT listener with the ACL
//! authorizer: the super user admin creates carol's SCRAM credentials
//! (the password from standard input, or from SLUICE_NEW_PASSWORD), lists
//! them, and carol logs in with confluent-kafka (librdkafka); a new
//! password replaces the old one, and once deleted carol is refused. A
//! user who may not, a user who has no credential, iterations out of
//! Kafka's bounds, an empty password and an empty name are refused with
//! messages that say why.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use common::{Broker, SLUICE};

const USERS: &str = "admin:admin-secret\nalice:alice-secret\n";

const ADMIN: (&str, &str) = ("admin", "admin-secret");
const ALICE: (&str, &str) = ("alice", "alice-secret");

const HEADER: &str = "USER  MECHANISM  ITERATIONS\n";

/// A broker on SASL_PLAINTEXT with the ACL authorizer, the super user
/// admin and the users of [`USERS`].
fn broker(dir: &Path) -> Broker {
    let users = dir.join("users");
    std::fs::write(&users, USERS).unwrap();
    Broker::start_with(
        &dir.join("data"),
        2,
        &[
            ("SLUICE_KAFKA_ADDR", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("SLUICE_SASL_PLAIN_USERS_FILE", users.to_str().unwrap()),
            ("SLUICE_AUTO_CREATE_TOPICS", "false"),
            ("SLUICE_AUTHORIZER", "acl"),
            ("SLUICE_SUPER_USERS", "User:admin"),
        ],
    )
}

/// Where `sluice user create` finds the new password.
#[derive(Clone, Copy)]
enum NewPassword<'a> {
    /// Nowhere: standard input is empty, SLUICE_NEW_PASSWORD unset.
    None,
    /// Written on standard input.
    Stdin(&'a str),
    /// In SLUICE_NEW_PASSWORD.
    Env(&'a str),
}

/// `sluice user ARGS` on `broker`'s listener as `(user, password)`, in the
/// environment as a script would set them; nothing else of the test's
/// environment about the connection.
fn user(
    broker: &Broker,
    (name, password): (&str, &str),
    new_password: NewPassword,
    args: &[&str],
) -> Output {
    let mut command = Command::new(SLUICE);
    command
        .arg("user")
        .args(args)
        .env(
            "SLUICE_BOOTSTRAP",
            format!("SASL_PLAINTEXT://{}", broker.kafka_addr),
        )
        .env("SLUICE_USER", name)
        .env("SLUICE_PASSWORD", password)
        .env_remove("SLUICE_CA")
        .env_remove("SLUICE_NEW_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let NewPassword::Env(new) = new_password {
        command.env("SLUICE_NEW_PASSWORD", new);
    }
    let mut child = command.spawn().expect("sluice runs");
    let mut stdin = child.stdin.take().unwrap();
    if let NewPassword::Stdin(new) = new_password {
        // A command refused before it reads has closed its end.
        if let Err(error) = stdin.write_all(new.as_bytes()) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    // Whatever happened, the new password is never shown.
    if let NewPassword::Stdin(new) | NewPassword::Env(new) = new_password {
        let new = new.trim_end();
        if !new.is_empty() {
            for shown in [&output.stdout, &output.stderr] {
                assert!(
                    !String::from_utf8_lossy(shown).contains(new),
                    "{args:?} showed the password: {output:?}"
                );
            }
        }
    }
    output
}

/// Standard output of a command that must succeed.
fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "sluice user {args:?} failed: {}",
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
        "sluice user {args:?} did not fail as it should: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn admin_ok(broker: &Broker, new_password: NewPassword, args: &[&str]) -> String {
    succeeded(args, user(broker, ADMIN, new_password, args))
}

fn refused_as(
    broker: &Broker,
    credentials: (&str, &str),
    new_password: NewPassword,
    args: &[&str],
) -> String {
    failed(args, user(broker, credentials, new_password, args))
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients/scram_login.py")
}

/// Whether confluent-kafka logs in as `name` with `password` and
/// `mechanism`: its metadata answered, or its authentication refused
/// (anything else fails the test).
fn logs_in(broker: &Broker, name: &str, password: &str, mechanism: &str) -> bool {
    let output = Command::new("python3")
        .arg(script())
        .args([broker.kafka_addr.as_str(), name, password, mechanism])
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => true,
        // A refusal, and not a script that could not run.
        Some(1) if stderr.contains("_AUTHENTICATION") => false,
        _ => panic!("scram_login.py {name} {mechanism}: {output:?}"),
    }
}

#[test]
fn an_admin_creates_lists_changes_and_deletes_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    assert!(
        !logs_in(&broker, "carol", "carol-first", "SCRAM-SHA-512"),
        "carol before she has a credential"
    );
    assert_eq!(
        admin_ok(&broker, NewPassword::None, &["list"]),
        HEADER,
        "nobody has a credential yet"
    );

    // The password from standard input; one mechanism.
    let args = ["create", "carol", "--mechanism", "SCRAM-SHA-512"];
    let output = user(&broker, ADMIN, NewPassword::Stdin("carol-first\n"), &args);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("stored 1 SCRAM credential of carol"),
        "{output:?}"
    );
    let carol_512 = "\
USER   MECHANISM      ITERATIONS
carol  SCRAM-SHA-512  8192
";
    assert_eq!(succeeded(&args, output), carol_512);
    assert_eq!(admin_ok(&broker, NewPassword::None, &["list"]), carol_512);
    assert_eq!(
        admin_ok(&broker, NewPassword::None, &["list", "carol"]),
        carol_512
    );
    let listed = admin_ok(&broker, NewPassword::None, &["list", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed).unwrap(),
        serde_json::json!([{"user": "carol", "mechanism": "SCRAM-SHA-512", "iterations": 8192}])
    );
    assert!(logs_in(&broker, "carol", "carol-first", "SCRAM-SHA-512"));
    assert!(
        !logs_in(&broker, "carol", "carol-first", "SCRAM-SHA-256"),
        "no SCRAM-SHA-256 credential"
    );
    assert!(!logs_in(&broker, "carol", "carol-wrong", "SCRAM-SHA-512"));

    // A new password from SLUICE_NEW_PASSWORD, both mechanisms (the
    // default): it replaces the old one.
    let changed = admin_ok(
        &broker,
        NewPassword::Env("carol-second"),
        &["create", "carol", "--iterations", "4096"],
    );
    let carol_both = "\
USER   MECHANISM      ITERATIONS
carol  SCRAM-SHA-256  4096
carol  SCRAM-SHA-512  4096
";
    assert_eq!(changed, carol_both);
    assert_eq!(admin_ok(&broker, NewPassword::None, &["list"]), carol_both);
    assert!(
        !logs_in(&broker, "carol", "carol-first", "SCRAM-SHA-512"),
        "the old password"
    );
    assert!(logs_in(&broker, "carol", "carol-second", "SCRAM-SHA-512"));
    assert!(logs_in(&broker, "carol", "carol-second", "SCRAM-SHA-256"));

    // One mechanism deleted, then every one carol has.
    assert_eq!(
        admin_ok(
            &broker,
            NewPassword::None,
            &["delete", "carol", "--mechanism", "SCRAM-SHA-256"]
        ),
        "USER   MECHANISM      ITERATIONS\ncarol  SCRAM-SHA-256  4096\n"
    );
    assert!(!logs_in(&broker, "carol", "carol-second", "SCRAM-SHA-256"));
    assert!(logs_in(&broker, "carol", "carol-second", "SCRAM-SHA-512"));
    let args = ["delete", "carol", "--format", "json"];
    let output = user(&broker, ADMIN, NewPassword::None, &args);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("deleted 1 SCRAM credential of carol"),
        "{output:?}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&succeeded(&args, output)).unwrap(),
        serde_json::json!([{"user": "carol", "mechanism": "SCRAM-SHA-512", "iterations": 4096}])
    );
    assert_eq!(admin_ok(&broker, NewPassword::None, &["list"]), HEADER);
    assert!(
        !logs_in(&broker, "carol", "carol-second", "SCRAM-SHA-512"),
        "carol deleted"
    );
    let said = refused_as(&broker, ADMIN, NewPassword::None, &["delete", "carol"]);
    assert!(
        said.contains(
            "cannot delete the SCRAM credentials of carol: RESOURCE_NOT_FOUND: \
             user carol has no SCRAM credential"
        ),
        "{said}"
    );
}

#[test]
fn refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());

    // alice is no super user, and holds neither ALTER nor DESCRIBE on the
    // cluster.
    let said = refused_as(
        &broker,
        ALICE,
        NewPassword::Env("carol-secret"),
        &["create", "carol"],
    );
    assert!(
        said.contains(
            "cannot store the SCRAM credentials of carol: CLUSTER_AUTHORIZATION_FAILED: \
             it takes ALTER on the cluster"
        ),
        "{said}"
    );
    let said = refused_as(&broker, ALICE, NewPassword::None, &["list"]);
    assert!(
        said.contains("cannot list SCRAM credentials: CLUSTER_AUTHORIZATION_FAILED")
            && said.contains("DESCRIBE on the cluster"),
        "{said}"
    );
    let said = refused_as(&broker, ALICE, NewPassword::None, &["delete", "admin"]);
    assert!(
        said.contains("CLUSTER_AUTHORIZATION_FAILED") && said.contains("ALTER on the cluster"),
        "{said}"
    );

    let said = refused_as(&broker, ADMIN, NewPassword::None, &["list", "nobody"]);
    assert!(
        said.contains(
            "cannot list the SCRAM credentials of nobody: RESOURCE_NOT_FOUND: \
             user nobody has no SCRAM credential"
        ),
        "{said}"
    );

    // Out of Kafka's bounds: refused before a password is read.
    for iterations in ["100", "20000"] {
        let said = refused_as(
            &broker,
            ADMIN,
            NewPassword::Env("carol-secret"),
            &["create", "carol", "--iterations", iterations],
        );
        assert!(
            said.contains(&format!(
                "cannot store the SCRAM credentials of carol: UNACCEPTABLE_CREDENTIAL: \
                 {iterations} iterations; --iterations takes 4096 to 16384"
            )),
            "{said}"
        );
    }
    // No password, or an empty one.
    let said = refused_as(&broker, ADMIN, NewPassword::None, &["create", "carol"]);
    assert!(
        said.contains("no password: set SLUICE_NEW_PASSWORD, or write it on standard input"),
        "{said}"
    );
    for empty in [NewPassword::Stdin("\n"), NewPassword::Env("")] {
        let said = refused_as(&broker, ADMIN, empty, &["create", "carol"]);
        assert!(said.contains("refusing an empty password"), "{said}");
    }
    // The broker's own refusal of a credential.
    let said = refused_as(
        &broker,
        ADMIN,
        NewPassword::Env("nameless-secret"),
        &["create", ""],
    );
    assert!(
        said.contains("cannot store the SCRAM credentials of \"\": UNACCEPTABLE_CREDENTIAL")
            && said.contains("a user name is 1 to 4096 bytes"),
        "{said}"
    );
    assert_eq!(
        admin_ok(&broker, NewPassword::None, &["list"]),
        HEADER,
        "nothing was stored by any of this"
    );

    // A mechanism dave lacks: nothing of his is deleted.
    admin_ok(
        &broker,
        NewPassword::Env("dave-secret"),
        &["create", "dave", "--mechanism", "scram-sha-512"],
    );
    let said = refused_as(
        &broker,
        ADMIN,
        NewPassword::None,
        &[
            "delete",
            "dave",
            "--mechanism",
            "SCRAM-SHA-512",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
    );
    assert!(
        said.contains(
            "cannot delete the SCRAM credentials of dave: RESOURCE_NOT_FOUND: \
             user dave has no SCRAM-SHA-256 credential"
        ),
        "{said}"
    );
    let dave = "USER  MECHANISM      ITERATIONS\ndave  SCRAM-SHA-512  8192\n";
    // Named with one who has none: dave listed, nobody said, a failure.
    let output = user(
        &broker,
        ADMIN,
        NewPassword::None,
        &["list", "dave", "nobody"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), dave);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("not listed: nobody: RESOURCE_NOT_FOUND")
            && said.contains("1 of 2 users named were not listed"),
        "{said}"
    );
    assert_eq!(admin_ok(&broker, NewPassword::None, &["list"]), dave);
    assert!(logs_in(&broker, "dave", "dave-secret", "SCRAM-SHA-512"));
}
