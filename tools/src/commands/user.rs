//! `sluice user`: create, list, delete: users' SCRAM credentials, kept in
//! the cluster's metadata, through the broker's Kafka listener
//! (AlterUserScramCredentials, DescribeUserScramCredentials), as the SASL
//! user given. Creating and deleting need ALTER on the cluster, listing
//! DESCRIBE; a super user has both.
//!
//! The new password is read from [`NEW_PASSWORD_ENV`] or standard input,
//! never from the command line, and never leaves this process: the broker
//! is sent a random salt and `PBKDF2(password, salt, iterations)`, from
//! which it keeps what SCRAM needs.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion},
        describe_user_scram_credentials_request::UserName,
        AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
    },
    protocol::StrBytes,
};
use sluice_engine::{
    acl::Operation,
    sasl::scram::{self, Hash},
};

use super::kafka_admin;
use crate::{
    cli::{Format, KafkaConnect, MechanismArg, UserCommand},
    kafka_client::{message_text, KafkaCode, KafkaConnection},
    output::{self, UserCredential},
    runtime::{CliError, CliResult},
};

/// The version of DescribeUserScramCredentials and
/// AlterUserScramCredentials sent: the only one there is (Kafka 2.7).
const SCRAM_VERSION: i16 = 0;

/// Where the new password is read from, if set; else from the first line
/// of standard input.
pub const NEW_PASSWORD_ENV: &str = "SLUICE_NEW_PASSWORD";

/// The longest password taken: a passphrase is far shorter, and a line
/// without an end is not read whole.
const PASSWORD_BYTES_MAX: usize = 1024;

/// The salt drawn for each credential: 256 random bits, so that no two
/// credentials share one; the broker takes up to `scram::SALT_BYTES_MAX`.
const SALT_BYTES: usize = 32;
const _: () = assert!(SALT_BYTES <= scram::SALT_BYTES_MAX);

pub fn run(command: UserCommand) -> CliResult<()> {
    match command {
        UserCommand::Create {
            name,
            mechanism,
            iterations,
            connect,
        } => {
            let what = format!("store the SCRAM credentials of {}", shown(&name));
            check_iterations(&what, iterations)?;
            let password = new_password(&name)?;
            create(
                &name,
                &to_create(&mechanism),
                iterations,
                &password,
                &what,
                connect,
            )
        }
        UserCommand::List {
            names,
            format,
            connect,
        } => list(&names, format, connect),
        UserCommand::Delete {
            name,
            mechanism,
            format,
            connect,
        } => delete(&name, &named(&mechanism), format, connect),
    }
}

/// A user's name in messages; the empty name is shown as `""`.
fn shown(name: &str) -> &str {
    if name.is_empty() {
        "\"\""
    } else {
        name
    }
}

/// The mechanisms named, each once, in order.
fn named(mechanisms: &[MechanismArg]) -> Vec<Hash> {
    let mut hashes: Vec<Hash> = Vec::with_capacity(mechanisms.len());
    for hash in mechanisms.iter().copied().map(Hash::from) {
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
    }
    hashes
}

/// The mechanisms a credential is created for: those named, or both.
fn to_create(mechanisms: &[MechanismArg]) -> Vec<Hash> {
    if mechanisms.is_empty() {
        return vec![Hash::Sha256, Hash::Sha512];
    }
    named(mechanisms)
}

/// Iterations outside Kafka's bounds are refused here, as the broker
/// would refuse them, before a password is asked for or derived.
fn check_iterations(what: &str, iterations: u32) -> CliResult<()> {
    if (scram::ITERATIONS_MIN..=scram::ITERATIONS_MAX).contains(&iterations) {
        return Ok(());
    }
    Err(CliError(format!(
        "cannot {what}: {}: {iterations} iterations; \
         --iterations takes {} to {}",
        KafkaCode::UNACCEPTABLE_CREDENTIAL,
        scram::ITERATIONS_MIN,
        scram::ITERATIONS_MAX
    )))
}

/// The new password: from [`NEW_PASSWORD_ENV`] if set, else asked for on
/// a terminal (without echo, twice), else the first line of standard
/// input. Refused empty, over [`PASSWORD_BYTES_MAX`] or not UTF-8.
fn new_password(name: &str) -> CliResult<String> {
    let password = match std::env::var_os(NEW_PASSWORD_ENV) {
        Some(value) => value
            .into_string()
            .map_err(|_| CliError(format!("{NEW_PASSWORD_ENV} is not UTF-8")))?,
        None if io::stdin().is_terminal() => {
            let password = ask(&format!("new password for {}: ", shown(name)))?;
            if !password.is_empty() && ask("again: ")? != password {
                return Err(CliError("the passwords differ".to_string()));
            }
            password
        }
        None => password_line(&mut io::stdin().lock())?.ok_or_else(|| {
            CliError(format!(
                "no password: set {NEW_PASSWORD_ENV}, or write it on standard input"
            ))
        })?,
    };
    if password.is_empty() {
        return Err(CliError("refusing an empty password".to_string()));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(CliError(format!(
            "a password of {} bytes, over the {PASSWORD_BYTES_MAX} taken",
            password.len()
        )));
    }
    Ok(password)
}

/// The first line of `input` without its line break (`\n` or `\r\n`), or
/// `None` if `input` is empty. Reads no more than a line over
/// [`PASSWORD_BYTES_MAX`] could hold.
fn password_line(input: &mut impl BufRead) -> CliResult<Option<String>> {
    let mut line = Vec::new();
    Read::take(input, PASSWORD_BYTES_MAX as u64 + 2).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > PASSWORD_BYTES_MAX {
        return Err(CliError(format!(
            "the password line is over the {PASSWORD_BYTES_MAX} bytes taken"
        )));
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| CliError("the password read is not UTF-8".to_string()))
}

/// One line asked for on the terminal of standard input, `prompt` on
/// standard error, what is typed not echoed.
fn ask(prompt: &str) -> CliResult<String> {
    let mut stderr = io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let line = {
        let _echo_off = EchoOff::new();
        password_line(&mut io::stdin().lock())?
    };
    stderr.write_all(b"\n")?;
    Ok(line.unwrap_or_default())
}

/// The terminal of standard input without echo, while this lives.
struct EchoOff {
    /// The terminal's settings before; `None` if they could not be read
    /// (then echo was not turned off).
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: termios is plain data, filled by tcgetattr before it is
        // read; both calls are about this process's standard input.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut settings) != 0 {
                return EchoOff { saved: None };
            }
            let saved = settings;
            settings.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &settings) != 0 {
                return EchoOff { saved: None };
            }
            EchoOff { saved: Some(saved) }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: settings tcgetattr gave, back on the same terminal.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}

/// `SALT_BYTES` from the operating system's secure random source (the
/// one rustls draws from).
fn salt() -> CliResult<Vec<u8>> {
    let mut salt = vec![0u8; SALT_BYTES];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut salt)
        .map_err(|_| CliError("no random bytes for a salt".to_string()))?;
    Ok(salt)
}

/// The upsertion of `name`'s `hash` credential for `password`, salted
/// with `salt`: what the broker needs, and not the password.
fn upsertion(
    name: &str,
    hash: Hash,
    password: &str,
    salt: Vec<u8>,
    iterations: u32,
) -> ScramCredentialUpsertion {
    assert!(
        (scram::ITERATIONS_MIN..=scram::ITERATIONS_MAX).contains(&iterations),
        "iterations unchecked: {iterations}"
    );
    let salted = scram::salted_password(hash, password.as_bytes(), &salt, iterations);
    ScramCredentialUpsertion::default()
        .with_name(text(name))
        .with_mechanism(hash.code())
        .with_iterations(iterations as i32)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn print_credentials(credentials: &[UserCredential], format: Format) {
    match format {
        Format::Text => print!("{}", output::user_credentials_text(credentials)),
        Format::Json => println!("{}", output::user_credentials_json(credentials)),
    }
}

/// "1 SCRAM credential", "2 SCRAM credentials".
fn counted(count: usize) -> String {
    match count {
        1 => "1 SCRAM credential".to_string(),
        count => format!("{count} SCRAM credentials"),
    }
}

/// AlterUserScramCredentials of one user's `deletions` or `upsertions`:
/// the broker answers that user once, for all of them.
fn alter(
    connection: &mut KafkaConnection,
    name: &str,
    request: AlterUserScramCredentialsRequest,
    what: &str,
) -> CliResult<()> {
    let answer = connection.call(SCRAM_VERSION, &request)?;
    let [result] = answer.results.as_slice() else {
        return Err(CliError(format!(
            "the broker answered {} results about one user",
            answer.results.len()
        )));
    };
    if result.user.as_str() != name {
        return Err(CliError(format!(
            "the broker answered about user {}, not {}",
            shown(&result.user),
            shown(name)
        )));
    }
    let code = KafkaCode(result.error_code);
    if !code.is_ok() {
        return Err(kafka_admin::refused(
            what,
            Operation::Alter,
            code,
            message_text(&result.error_message),
        ));
    }
    Ok(())
}

fn create(
    name: &str,
    hashes: &[Hash],
    iterations: u32,
    password: &str,
    what: &str,
    connect: KafkaConnect,
) -> CliResult<()> {
    let mut upsertions = Vec::with_capacity(hashes.len());
    for hash in hashes {
        upsertions.push(upsertion(name, *hash, password, salt()?, iterations));
    }
    let mut connection = kafka_admin::connect(connect)?;
    alter(
        &mut connection,
        name,
        AlterUserScramCredentialsRequest::default().with_upsertions(upsertions),
        what,
    )?;
    let stored: Vec<UserCredential> = hashes
        .iter()
        .map(|hash| UserCredential {
            user: name.to_string(),
            mechanism: hash.code(),
            iterations: iterations as i32,
        })
        .collect();
    print_credentials(&stored, Format::Text);
    eprintln!("stored {} of {}", counted(stored.len()), shown(name));
    Ok(())
}

/// A user's credentials as the broker answered them, or why it did not.
type Described = (
    String,
    Result<Vec<UserCredential>, (KafkaCode, Option<String>)>,
);

/// DescribeUserScramCredentials of `names` (every user with a credential
/// if none): each user's credentials, sorted by mechanism, or why that
/// user is not described. A refusal of the whole request is an error
/// saying what could not be done (`what`) and that it takes `needs`.
fn describe(
    connection: &mut KafkaConnection,
    names: &[String],
    what: &str,
    needs: Operation,
) -> CliResult<Vec<Described>> {
    let users = (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|name| UserName::default().with_name(text(name)))
            .collect()
    });
    let answer = connection.call(
        SCRAM_VERSION,
        &DescribeUserScramCredentialsRequest::default().with_users(users),
    )?;
    let code = KafkaCode(answer.error_code);
    if !code.is_ok() {
        return Err(kafka_admin::refused(
            what,
            needs,
            code,
            message_text(&answer.error_message),
        ));
    }
    Ok(answer
        .results
        .iter()
        .map(|result| {
            let user = result.user.to_string();
            let code = KafkaCode(result.error_code);
            if !code.is_ok() {
                return (user, Err((code, message_text(&result.error_message))));
            }
            let mut credentials: Vec<UserCredential> = result
                .credential_infos
                .iter()
                .map(|info| UserCredential {
                    user: user.clone(),
                    mechanism: info.mechanism,
                    iterations: info.iterations,
                })
                .collect();
            credentials.sort();
            (user, Ok(credentials))
        })
        .collect())
}

fn list(names: &[String], format: Format, connect: KafkaConnect) -> CliResult<()> {
    // A user named twice is listed once (the broker refuses a repeat).
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(name) {
            unique.push(name.clone());
        }
    }
    let mut connection = kafka_admin::connect(connect)?;
    let described = describe(
        &mut connection,
        &unique,
        "list SCRAM credentials",
        Operation::Describe,
    )?;
    let mut credentials = Vec::new();
    let mut failures = Vec::new();
    for (user, outcome) in described {
        match outcome {
            Ok(listed) => credentials.extend(listed),
            Err((code, message)) => failures.push((user, code, message)),
        }
    }
    credentials.sort();
    // One user named and not described: said once, as an error.
    if let ([(user, code, message)], []) = (failures.as_slice(), credentials.as_slice()) {
        return Err(kafka_admin::refused(
            &format!("list the SCRAM credentials of {}", shown(user)),
            Operation::Describe,
            *code,
            message.clone(),
        ));
    }
    print_credentials(&credentials, format);
    for (user, code, message) in &failures {
        let message = message
            .as_ref()
            .map(|text| format!(": {text}"))
            .unwrap_or_default();
        eprintln!("not listed: {}: {code}{message}", shown(user));
    }
    if !failures.is_empty() {
        return Err(CliError(format!(
            "{} of {} users named were not listed",
            failures.len(),
            unique.len()
        )));
    }
    Ok(())
}

fn delete(name: &str, hashes: &[Hash], format: Format, connect: KafkaConnect) -> CliResult<()> {
    let what = format!("delete the SCRAM credentials of {}", shown(name));
    let mut connection = kafka_admin::connect(connect)?;
    // What the user has: the mechanisms to delete unless named, and what
    // is printed. ALTER on the cluster, which deleting takes, implies
    // DESCRIBE.
    let described = describe(
        &mut connection,
        &[name.to_string()],
        &what,
        Operation::Alter,
    )?;
    let had = match described.as_slice() {
        [(user, Ok(had))] if user == name => had.clone(),
        [(user, Err((code, message)))] if user == name => {
            return Err(kafka_admin::refused(
                &what,
                Operation::Alter,
                *code,
                message.clone(),
            ))
        }
        _ => {
            return Err(CliError(format!(
                "the broker answered {} results about user {}",
                described.len(),
                shown(name)
            )))
        }
    };
    // Named mechanisms the user lacks are sent all the same: the broker
    // refuses them (RESOURCE_NOT_FOUND), and deletes none of the user's.
    let codes: Vec<i8> = if hashes.is_empty() {
        had.iter().map(|credential| credential.mechanism).collect()
    } else {
        hashes.iter().map(|hash| hash.code()).collect()
    };
    let deletions = codes
        .iter()
        .map(|code| {
            ScramCredentialDeletion::default()
                .with_name(text(name))
                .with_mechanism(*code)
        })
        .collect();
    alter(
        &mut connection,
        name,
        AlterUserScramCredentialsRequest::default().with_deletions(deletions),
        &what,
    )?;
    let deleted: Vec<UserCredential> = had
        .into_iter()
        .filter(|credential| codes.contains(&credential.mechanism))
        .collect();
    print_credentials(&deleted, format);
    eprintln!("deleted {} of {}", counted(deleted.len()), shown(name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use sluice_engine::sasl::scram::Credential;

    use super::*;

    #[test]
    fn created_for_both_mechanisms_unless_named_and_each_once() {
        assert_eq!(to_create(&[]), [Hash::Sha256, Hash::Sha512]);
        assert_eq!(named(&[]), [], "deleted: what the user has");
        assert_eq!(to_create(&[MechanismArg::ScramSha512]), [Hash::Sha512]);
        assert_eq!(
            named(&[
                MechanismArg::ScramSha512,
                MechanismArg::ScramSha512,
                MechanismArg::ScramSha256
            ]),
            [Hash::Sha512, Hash::Sha256]
        );
    }

    #[test]
    fn iterations_outside_kafkas_bounds_are_refused_by_name() {
        assert!(check_iterations("x", 4096).is_ok());
        assert!(check_iterations("x", 16384).is_ok());
        let refused = check_iterations("store the SCRAM credentials of carol", 100).unwrap_err();
        assert_eq!(
            refused.0,
            "cannot store the SCRAM credentials of carol: UNACCEPTABLE_CREDENTIAL: \
             100 iterations; --iterations takes 4096 to 16384"
        );
        assert!(check_iterations("x", 16385).is_err());
    }

    #[test]
    fn an_upsertion_carries_the_salted_password_not_the_password() {
        let salt = vec![7u8; SALT_BYTES];
        for hash in [Hash::Sha256, Hash::Sha512] {
            let upsertion = upsertion("carol", hash, "carol-secret", salt.clone(), 8192);
            assert_eq!(upsertion.name.as_str(), "carol");
            assert_eq!(upsertion.mechanism, hash.code());
            assert_eq!(upsertion.iterations, 8192);
            assert_eq!(upsertion.salt.as_ref(), salt.as_slice());
            assert_eq!(upsertion.salted_password.len(), hash.output_len());
            assert!(!upsertion
                .salted_password
                .windows(12)
                .any(|window| window == b"carol-secret"));
            // The broker's credential of it is the password's.
            assert_eq!(
                Credential::from_salted(hash, &upsertion.salted_password, salt.clone(), 8192),
                Credential::new(hash, b"carol-secret", salt.clone(), 8192)
            );
        }
    }

    #[test]
    fn salts_are_random() {
        let (first, second) = (salt().unwrap(), salt().unwrap());
        assert_eq!(first.len(), SALT_BYTES);
        assert_ne!(first, second);
    }

    #[test]
    fn the_password_is_the_first_line_without_its_break() {
        let line = |input: &[u8]| password_line(&mut io::Cursor::new(input.to_vec()));
        assert_eq!(line(b"s3cret\nsecond").unwrap().as_deref(), Some("s3cret"));
        assert_eq!(line(b"s3cret\r\n").unwrap().as_deref(), Some("s3cret"));
        assert_eq!(
            line(b" spaced out ").unwrap().as_deref(),
            Some(" spaced out "),
            "no end of line, and spaces kept"
        );
        assert_eq!(line(b"\n").unwrap().as_deref(), Some(""));
        assert_eq!(line(b"").unwrap(), None);
        let longest = vec![b'a'; PASSWORD_BYTES_MAX];
        assert_eq!(line(&longest).unwrap().map(|text| text.len()), Some(1024));
        let mut crlf = longest.clone();
        crlf.extend_from_slice(b"\r\n");
        assert_eq!(line(&crlf).unwrap().map(|text| text.len()), Some(1024));
        let too_long = vec![b'a'; 10 * PASSWORD_BYTES_MAX];
        assert!(line(&too_long).unwrap_err().0.contains("over the 1024"));
        assert!(line(b"\xff\xfe\n").unwrap_err().0.contains("not UTF-8"));
    }
}
