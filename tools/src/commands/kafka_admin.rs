//! What the commands that speak Kafka's protocol (`sluice acl`, `sluice
//! user`) share: the connection settings of their flags and environment,
//! and refusals told by Kafka's names.

use sluice_engine::acl::Operation;

use crate::{
    cli::KafkaConnect,
    kafka_client::{self, Credentials, KafkaCode, KafkaConnection, KafkaSettings},
    output,
    runtime::{CliError, CliResult},
};

/// Where the SASL password is read from: never a flag, which anyone on
/// the machine could read in the process list.
pub const PASSWORD_ENV: &str = "SLUICE_PASSWORD";

/// The connection settings, with the password from [`PASSWORD_ENV`] if the
/// listener asks for SASL.
fn settings(connect: KafkaConnect) -> CliResult<KafkaSettings> {
    let protocol = connect.bootstrap.protocol;
    let credentials = match connect.user {
        Some(user) if protocol.sasl() => {
            let password = std::env::var(PASSWORD_ENV).map_err(|_| {
                CliError(format!(
                    "SASL user {user}: its password is read from {PASSWORD_ENV}, which is not set"
                ))
            })?;
            Some(Credentials { user, password })
        }
        Some(user) => {
            tracing::warn!(
                "user {user} is not used: {} has no SASL (SASL_PLAINTEXT:// and SASL_SSL:// have)",
                connect.bootstrap
            );
            None
        }
        None => None,
    };
    if connect.ca.is_some() && !protocol.tls() {
        tracing::warn!(
            "the CA file is not used: {} has no TLS (SSL:// and SASL_SSL:// have)",
            connect.bootstrap
        );
    }
    Ok(KafkaSettings {
        addr: connect.bootstrap,
        credentials,
        ca: connect.ca,
        cert: connect.cert,
        key: connect.key,
    })
}

/// A connection as the flags say, authenticated if the listener asks.
pub fn connect(connect: KafkaConnect) -> CliResult<KafkaConnection> {
    Ok(kafka_client::connect(&settings(connect)?)?)
}

/// Why the broker refused to `what`, in Kafka's name, with the broker's
/// message or, where it gave none and the code is about authorization,
/// what to do. `needs` is the operation on the cluster that the request
/// takes.
pub fn refused(what: &str, needs: Operation, code: KafkaCode, message: Option<String>) -> CliError {
    match (code, message) {
        (code, Some(message)) => CliError(format!("cannot {what}: {code}: {message}")),
        (KafkaCode::CLUSTER_AUTHORIZATION_FAILED, None) => CliError(format!(
            "cannot {what}: CLUSTER_AUTHORIZATION_FAILED: it takes {} on the cluster, which super users have",
            output::operation_name(needs)
        )),
        (code, None) => CliError(format!("cannot {what}: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_code_and_what_it_takes() {
        assert_eq!(
            refused(
                "delete carol's SCRAM credentials",
                Operation::Alter,
                KafkaCode::CLUSTER_AUTHORIZATION_FAILED,
                None
            )
            .0,
            "cannot delete carol's SCRAM credentials: CLUSTER_AUTHORIZATION_FAILED: \
             it takes ALTER on the cluster, which super users have"
        );
        assert_eq!(
            refused(
                "list SCRAM credentials",
                Operation::Describe,
                KafkaCode(91),
                Some("user nobody has no SCRAM credential".to_string())
            )
            .0,
            "cannot list SCRAM credentials: RESOURCE_NOT_FOUND: user nobody has no SCRAM credential"
        );
        assert_eq!(
            refused("x", Operation::Alter, KafkaCode(93), None).0,
            "cannot x: UNACCEPTABLE_CREDENTIAL"
        );
    }
}
