//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554), as
//! `kafka-configs.sh --alter --add-config SCRAM-SHA-512=[...]` and admin
//! clients send them. A credential is stored in the replicated metadata as
//! the server keeps it (salt, iterations, StoredKey, ServerKey), made from
//! the salted password the client sends: the password never reaches the
//! broker. SCRAM authentications then find it on every node; it wins over
//! a credential made from the users file.
//!
//! Each user is answered once, as Kafka does: DUPLICATE_RESOURCE for a
//! user/mechanism named twice, UNSUPPORTED_SASL_MECHANISM,
//! UNACCEPTABLE_CREDENTIAL (iterations outside 4096 to 16384, an empty
//! name, salt or salted password), RESOURCE_NOT_FOUND (deleting or
//! describing a user without credentials).

use std::{collections::BTreeMap, rc::Rc};

use kafka_protocol::{
    messages::{
        describe_user_scram_credentials_response::{
            CredentialInfo, DescribeUserScramCredentialsResult,
        },
        AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
        DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    },
    protocol::StrBytes,
};

use super::{
    admin::{controller, stopped},
    error_code, str_bytes,
};
use crate::{
    cluster_metadata::check_credential,
    controller::ControllerOp,
    sasl::scram::{Credential, Hash},
    shard::Shard,
};

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const RESOURCE_NOT_FOUND: i16 = 91;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;

type Answer = (i16, Option<String>);

pub async fn describe(
    shard: &Rc<Shard>,
    request: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> DescribeUserScramCredentialsResponse {
    let metadata = shard.metadata();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, hash), credential) in metadata.scram.iter() {
        by_user.entry(user).or_default().push(
            CredentialInfo::default()
                .with_mechanism(hash.code())
                .with_iterations(credential.iterations as i32),
        );
    }
    let result = |user: &str, answer: Answer, infos: Vec<CredentialInfo>| {
        DescribeUserScramCredentialsResult::default()
            .with_user(str_bytes(user))
            .with_error_code(answer.0)
            .with_error_message(answer.1.map(str_bytes))
            .with_credential_infos(infos)
    };
    let results = match request.users.filter(|users| !users.is_empty()) {
        // Every user with a credential.
        None => by_user
            .iter()
            .map(|(user, infos)| result(user, (0, None), infos.clone()))
            .collect(),
        Some(named) => {
            let mut seen = std::collections::HashMap::<&str, usize>::new();
            for user in &named {
                *seen.entry(user.name.as_str()).or_default() += 1;
            }
            named
                .iter()
                .map(|user| {
                    let name = user.name.as_str();
                    if seen[name] > 1 {
                        let message = format!("user {name} is named more than once");
                        return result(name, (DUPLICATE_RESOURCE, Some(message)), Vec::new());
                    }
                    match by_user.get(name) {
                        Some(infos) => result(name, (0, None), infos.clone()),
                        None => {
                            let message = format!("user {name} has no SCRAM credential");
                            result(name, (RESOURCE_NOT_FOUND, Some(message)), Vec::new())
                        }
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// One change asked for: the user, the mechanism and the credential to
/// store (`None`: delete), or why it is refused.
type Change = (String, Result<(Hash, Option<Credential>), Answer>);

fn mechanism(code: i8) -> Result<Hash, Answer> {
    Hash::from_code(code).ok_or_else(|| {
        (
            UNSUPPORTED_SASL_MECHANISM,
            Some(format!(
                "mechanism {code} is neither SCRAM-SHA-256 (1) nor SCRAM-SHA-512 (2)"
            )),
        )
    })
}

pub async fn alter(
    shard: &Rc<Shard>,
    request: AlterUserScramCredentialsRequest,
    _version: i16,
) -> AlterUserScramCredentialsResponse {
    let metadata = shard.metadata();
    let mut changes: Vec<Change> = Vec::new();
    for deletion in &request.deletions {
        let user = deletion.name.to_string();
        let change = mechanism(deletion.mechanism).and_then(|hash| {
            if metadata.scram.contains_key(&(user.clone(), hash)) {
                Ok((hash, None))
            } else {
                let message = format!("user {user} has no {} credential", hash.mechanism());
                Err((RESOURCE_NOT_FOUND, Some(message)))
            }
        });
        changes.push((user, change));
    }
    for upsertion in &request.upsertions {
        let user = upsertion.name.to_string();
        let change = mechanism(upsertion.mechanism).and_then(|hash| {
            let unacceptable = |reason: String| (UNACCEPTABLE_CREDENTIAL, Some(reason));
            if upsertion.salted_password.is_empty() {
                return Err(unacceptable("an empty salted password".to_string()));
            }
            let iterations = u32::try_from(upsertion.iterations)
                .map_err(|_| unacceptable(format!("{} iterations", upsertion.iterations)))?;
            let credential = Credential::from_salted(
                hash,
                &upsertion.salted_password,
                upsertion.salt.to_vec(),
                iterations,
            );
            check_credential(&user, hash, &credential)
                .map_err(|refused| unacceptable(refused.to_string()))?;
            Ok((hash, Some(credential)))
        });
        changes.push((user, change));
    }
    // A user/mechanism named twice is refused, and so is the rest of that
    // user's changes: each user is answered once.
    let mut named = std::collections::HashMap::<(String, Hash), usize>::new();
    for (user, change) in &changes {
        if let Ok((hash, _)) = change {
            *named.entry((user.clone(), *hash)).or_default() += 1;
        }
    }
    let mut answers: BTreeMap<String, Answer> = BTreeMap::new();
    for (user, change) in &changes {
        let refusal = match change {
            Err(answer) => Some(answer.clone()),
            Ok((hash, _)) if named[&(user.clone(), *hash)] > 1 => Some((
                DUPLICATE_RESOURCE,
                Some(format!(
                    "user {user}'s {} is changed more than once",
                    hash.mechanism()
                )),
            )),
            Ok(_) => None,
        };
        let answer = answers.entry(user.clone()).or_insert((0, None));
        if let (Some(refusal), 0) = (refusal, answer.0) {
            *answer = refusal;
        }
    }
    let accepted: Vec<(String, Hash, Option<Credential>)> = changes
        .into_iter()
        .filter(|(user, _)| answers[user].0 == 0)
        .filter_map(|(user, change)| {
            change
                .ok()
                .map(|(hash, credential)| (user, hash, credential))
        })
        .collect();
    if !accepted.is_empty() {
        let users: Vec<String> = accepted.iter().map(|(user, ..)| user.clone()).collect();
        let outcomes = controller(shard, |reply| ControllerOp::AlterScramCredentials {
            changes: accepted,
            reply,
        })
        .await
        .unwrap_or_else(|| vec![Err(stopped()); users.len()]);
        for (user, outcome) in users.into_iter().zip(outcomes) {
            if let Err(failure) = outcome {
                let answer = answers.entry(user).or_insert((0, None));
                if answer.0 == 0 {
                    *answer = (error_code(failure.kind), Some(failure.message));
                }
            }
        }
        tracing::info!(users = answers.len(), "SCRAM credentials altered");
    }
    let results = answers
        .into_iter()
        .map(|(user, (code, message))| {
            kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user))
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
