//! `sluice acl`: add, list, remove: Kafka's ACL bindings, through the
//! broker's Kafka listener (CreateAcls, DescribeAcls, DeleteAcls), as the
//! SASL user given. Adding and removing need ALTER on the cluster, listing
//! DESCRIBE; a super user has both.

use kafka_protocol::{
    messages::{
        create_acls_request::AclCreation, delete_acls_request::DeleteAclsFilter, CreateAclsRequest,
        DeleteAclsRequest, DescribeAclsRequest,
    },
    protocol::StrBytes,
};
use sluice_engine::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};

use super::kafka_admin;
use crate::{
    cli::{AclCommand, AclFilterArgs, AclResource, Format, KafkaConnect, OperationArg},
    kafka_client::{message_text, KafkaCode},
    output,
    runtime::{CliError, CliResult},
};

/// The version of CreateAcls, DescribeAcls and DeleteAcls sent: the
/// newest (flexible, and with Kafka's USER resource type), which Kafka
/// serves since 2.8 and Sluice serves.
const ACLS_VERSION: i16 = 3;

/// Kafka's code for "any" in a filter's resource type, pattern type,
/// operation and permission.
const ANY: i8 = 1;
/// Kafka's pattern type filter MATCH: every binding that applies to the
/// name.
const MATCH: i8 = 2;

pub fn run(command: AclCommand) -> CliResult<()> {
    match command {
        AclCommand::Add {
            principal,
            host,
            operation,
            resource,
            prefixed,
            deny,
            connect,
        } => {
            let bindings = bindings_to_add(principal, host, &operation, &resource, prefixed, deny)?;
            add(&bindings, connect)
        }
        AclCommand::List {
            filter,
            format,
            connect,
        } => list(&filter, format, connect),
        AclCommand::Remove {
            filter,
            all,
            format,
            connect,
        } => {
            if filter.is_empty() && !all {
                return Err(CliError(
                    "refusing to remove every ACL binding: name the bindings to remove \
                     (--principal, --host, --operation, --topic, --group, --cluster, \
                     --transactional-id, --allow, --deny), or say --all"
                        .to_string(),
                ));
            }
            remove(&filter, format, connect)
        }
    }
}

/// The resource named, if one is.
fn resource_of(resource: &AclResource) -> Option<(ResourceType, String)> {
    if let Some(topic) = &resource.topic {
        return Some((ResourceType::Topic, topic.clone()));
    }
    if let Some(group) = &resource.group {
        return Some((ResourceType::Group, group.clone()));
    }
    if resource.cluster {
        return Some((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    resource
        .transactional_id
        .as_ref()
        .map(|id| (ResourceType::TransactionalId, id.clone()))
}

/// One binding per operation (each once), checked as the broker checks
/// them, so that a binding it would refuse is not sent.
fn bindings_to_add(
    principal: String,
    host: String,
    operations: &[OperationArg],
    resource: &AclResource,
    prefixed: bool,
    deny: bool,
) -> CliResult<Vec<AclBinding>> {
    let (resource_type, resource_name) =
        resource_of(resource).expect("clap requires a resource to add bindings to");
    let mut bindings: Vec<AclBinding> = Vec::with_capacity(operations.len());
    for operation in operations {
        let binding = AclBinding {
            resource_type,
            resource_name: resource_name.clone(),
            pattern_type: if prefixed {
                PatternType::Prefixed
            } else {
                PatternType::Literal
            },
            principal: principal.clone(),
            host: host.clone(),
            operation: Operation::from(*operation),
            permission: if deny {
                Permission::Deny
            } else {
                Permission::Allow
            },
        };
        binding
            .check()
            .map_err(|error| CliError(format!("{}: {error}", binding_line(&binding))))?;
        if !bindings.contains(&binding) {
            bindings.push(binding);
        }
    }
    Ok(bindings)
}

/// A binding on one line, for messages.
fn binding_line(binding: &AclBinding) -> String {
    format!(
        "{} from {}: {} {} on {} {} ({})",
        binding.principal,
        binding.host,
        output::permission_name(binding.permission),
        output::operation_name(binding.operation),
        output::resource_type_name(binding.resource_type),
        binding.resource_name,
        output::pattern_type_name(binding.pattern_type),
    )
}

/// Why the broker refused to `what`, as [`kafka_admin::refused`] says,
/// or that it has no authorizer.
fn refused(what: &str, needs: Operation, code: KafkaCode, message: Option<String>) -> CliError {
    if code == KafkaCode::SECURITY_DISABLED {
        return CliError(
            "the broker has no authorizer (SECURITY_DISABLED): set authorizer = \"acl\" \
             (SLUICE_AUTHORIZER=acl) for ACLs to be used"
                .to_string(),
        );
    }
    kafka_admin::refused(what, needs, code, message)
}

/// "1 ACL binding", "2 ACL bindings".
fn counted(count: usize) -> String {
    match count {
        1 => "1 ACL binding".to_string(),
        count => format!("{count} ACL bindings"),
    }
}

/// A binding the broker answered, or why it is not one.
fn answered_binding(
    resource_type: i8,
    resource_name: &StrBytes,
    pattern_type: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> CliResult<AclBinding> {
    let unknown = |what: &str, code: i8| {
        CliError(format!(
            "the broker answered a binding of {what} {code}, which this sluice does not know"
        ))
    };
    Ok(AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| unknown("resource type", resource_type))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| unknown("pattern type", pattern_type))?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation)
            .ok_or_else(|| unknown("operation", operation))?,
        permission: Permission::from_code(permission)
            .ok_or_else(|| unknown("permission", permission))?,
    })
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn add(bindings: &[AclBinding], connect: KafkaConnect) -> CliResult<()> {
    let mut connection = kafka_admin::connect(connect)?;
    let creations = bindings
        .iter()
        .map(|binding| {
            AclCreation::default()
                .with_resource_type(binding.resource_type as i8)
                .with_resource_name(text(&binding.resource_name))
                .with_resource_pattern_type(binding.pattern_type as i8)
                .with_principal(text(&binding.principal))
                .with_host(text(&binding.host))
                .with_operation(binding.operation as i8)
                .with_permission_type(binding.permission as i8)
        })
        .collect();
    let answer = connection.call(
        ACLS_VERSION,
        &CreateAclsRequest::default().with_creations(creations),
    )?;
    if answer.results.len() != bindings.len() {
        return Err(CliError(format!(
            "the broker answered {} results to {} creations",
            answer.results.len(),
            bindings.len()
        )));
    }
    let mut created = Vec::new();
    let mut failures = Vec::new();
    for (binding, result) in bindings.iter().zip(&answer.results) {
        let code = KafkaCode(result.error_code);
        if code.is_ok() {
            created.push(binding.clone());
        } else {
            failures.push((binding, code, message_text(&result.error_message)));
        }
    }
    // Refused whole (no authorizer, not allowed): said once.
    if let Some((_, code, message)) = failures.first() {
        let whole = failures.len() == bindings.len()
            && failures
                .iter()
                .all(|(_, other, text)| other == code && text == message);
        if whole {
            return Err(refused(
                "create ACL bindings",
                Operation::Alter,
                *code,
                message.clone(),
            ));
        }
    }
    if !created.is_empty() {
        print!("{}", output::acls_text(&created));
    }
    for (binding, code, message) in &failures {
        let message = message
            .as_ref()
            .map(|text| format!(": {text}"))
            .unwrap_or_default();
        eprintln!("not created: {}: {code}{message}", binding_line(binding));
    }
    if !failures.is_empty() {
        return Err(CliError(format!(
            "{} of {} were not created",
            failures.len(),
            counted(bindings.len())
        )));
    }
    eprintln!("created {}", counted(created.len()));
    Ok(())
}

/// A filter as DescribeAcls and DeleteAcls carry it: a code of 1 (ANY)
/// or no string matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireFilter {
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
}

impl WireFilter {
    /// The filter of the flags: a named resource is matched LITERAL
    /// unless --prefixed or --match say otherwise; without a name, any
    /// pattern.
    fn of(filter: &AclFilterArgs) -> WireFilter {
        let resource = resource_of(&filter.resource);
        let pattern_type = match (&resource, filter.prefixed, filter.matching) {
            (None, ..) => ANY,
            (Some(_), true, _) => PatternType::Prefixed as i8,
            (Some(_), false, true) => MATCH,
            (Some(_), false, false) => PatternType::Literal as i8,
        };
        let permission = match (filter.allow, filter.deny) {
            (true, _) => Permission::Allow as i8,
            (false, true) => Permission::Deny as i8,
            (false, false) => ANY,
        };
        WireFilter {
            resource_type: resource.as_ref().map_or(ANY, |(kind, _)| *kind as i8),
            resource_name: resource.map(|(_, name)| name),
            pattern_type,
            principal: filter.principal.clone(),
            host: filter.host.clone(),
            operation: filter
                .operation
                .map_or(ANY, |operation| Operation::from(operation) as i8),
            permission,
        }
    }

    /// As DescribeAcls asks it. Every string is set, `None` too:
    /// `kafka-protocol`'s defaults are empty strings, which match nothing.
    fn describe(&self) -> DescribeAclsRequest {
        DescribeAclsRequest::default()
            .with_resource_type_filter(self.resource_type)
            .with_resource_name_filter(self.resource_name.as_deref().map(text))
            .with_pattern_type_filter(self.pattern_type)
            .with_principal_filter(self.principal.as_deref().map(text))
            .with_host_filter(self.host.as_deref().map(text))
            .with_operation(self.operation)
            .with_permission_type(self.permission)
    }

    /// As DeleteAcls asks it (the same care with strings).
    fn delete(&self) -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(self.resource_type)
            .with_resource_name_filter(self.resource_name.as_deref().map(text))
            .with_pattern_type_filter(self.pattern_type)
            .with_principal_filter(self.principal.as_deref().map(text))
            .with_host_filter(self.host.as_deref().map(text))
            .with_operation(self.operation)
            .with_permission_type(self.permission)
    }
}

fn print_bindings(bindings: &[AclBinding], format: Format) {
    match format {
        Format::Text => print!("{}", output::acls_text(bindings)),
        Format::Json => println!("{}", output::acls_json(bindings)),
    }
}

fn list(filter: &AclFilterArgs, format: Format, connect: KafkaConnect) -> CliResult<()> {
    let mut connection = kafka_admin::connect(connect)?;
    let answer = connection.call(ACLS_VERSION, &WireFilter::of(filter).describe())?;
    let code = KafkaCode(answer.error_code);
    if !code.is_ok() {
        return Err(refused(
            "list ACL bindings",
            Operation::Describe,
            code,
            message_text(&answer.error_message),
        ));
    }
    let mut bindings = Vec::new();
    for resource in &answer.resources {
        for acl in &resource.acls {
            bindings.push(answered_binding(
                resource.resource_type,
                &resource.resource_name,
                resource.pattern_type,
                &acl.principal,
                &acl.host,
                acl.operation,
                acl.permission_type,
            )?);
        }
    }
    bindings.sort();
    print_bindings(&bindings, format);
    Ok(())
}

fn remove(filter: &AclFilterArgs, format: Format, connect: KafkaConnect) -> CliResult<()> {
    let mut connection = kafka_admin::connect(connect)?;
    let answer = connection.call(
        ACLS_VERSION,
        &DeleteAclsRequest::default().with_filters(vec![WireFilter::of(filter).delete()]),
    )?;
    let [result] = answer.filter_results.as_slice() else {
        return Err(CliError(format!(
            "the broker answered {} filter results to one filter",
            answer.filter_results.len()
        )));
    };
    let code = KafkaCode(result.error_code);
    if !code.is_ok() {
        return Err(refused(
            "remove ACL bindings",
            Operation::Alter,
            code,
            message_text(&result.error_message),
        ));
    }
    let mut removed = Vec::new();
    let mut failed = 0;
    for matching in &result.matching_acls {
        let binding = answered_binding(
            matching.resource_type,
            &matching.resource_name,
            matching.pattern_type,
            &matching.principal,
            &matching.host,
            matching.operation,
            matching.permission_type,
        )?;
        let code = KafkaCode(matching.error_code);
        if code.is_ok() {
            removed.push(binding);
        } else {
            failed += 1;
            let message = message_text(&matching.error_message)
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            eprintln!("not removed: {}: {code}{message}", binding_line(&binding));
        }
    }
    removed.sort();
    print_bindings(&removed, format);
    if failed > 0 {
        return Err(CliError(format!(
            "{failed} of {} matched were not removed",
            counted(result.matching_acls.len())
        )));
    }
    eprintln!("removed {}", counted(removed.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> AclResource {
        AclResource {
            topic: Some(name.to_string()),
            ..AclResource::default()
        }
    }

    #[test]
    fn a_filter_matches_a_named_resource_literally_unless_told() {
        let any = WireFilter::of(&AclFilterArgs::default());
        assert_eq!(
            any,
            WireFilter {
                resource_type: ANY,
                resource_name: None,
                pattern_type: ANY,
                principal: None,
                host: None,
                operation: ANY,
                permission: ANY,
            }
        );
        let request = any.describe();
        assert_eq!(
            (
                &request.resource_name_filter,
                &request.principal_filter,
                &request.host_filter
            ),
            (&None, &None, &None),
            "absent strings are null, not empty"
        );
        let delete = any.delete();
        assert_eq!(
            (
                &delete.resource_name_filter,
                &delete.principal_filter,
                &delete.host_filter
            ),
            (&None, &None, &None)
        );

        let literal = WireFilter::of(&AclFilterArgs {
            resource: topic("orders"),
            principal: Some("User:alice".to_string()),
            operation: Some(OperationArg::Write),
            deny: true,
            ..AclFilterArgs::default()
        });
        assert_eq!(
            literal,
            WireFilter {
                resource_type: 2,
                resource_name: Some("orders".to_string()),
                pattern_type: 3,
                principal: Some("User:alice".to_string()),
                host: None,
                operation: 4,
                permission: 2,
            }
        );
        let prefixed = WireFilter::of(&AclFilterArgs {
            resource: topic("logs-"),
            prefixed: true,
            allow: true,
            ..AclFilterArgs::default()
        });
        assert_eq!((prefixed.pattern_type, prefixed.permission), (4, 3));
        let matching = WireFilter::of(&AclFilterArgs {
            resource: topic("logs-app"),
            matching: true,
            ..AclFilterArgs::default()
        });
        assert_eq!(matching.pattern_type, MATCH);
        let cluster = WireFilter::of(&AclFilterArgs {
            resource: AclResource {
                cluster: true,
                ..AclResource::default()
            },
            ..AclFilterArgs::default()
        });
        assert_eq!(
            (cluster.resource_type, cluster.resource_name.as_deref()),
            (4, Some("kafka-cluster"))
        );
        let transactional = WireFilter::of(&AclFilterArgs {
            resource: AclResource {
                transactional_id: Some("pay".to_string()),
                ..AclResource::default()
            },
            host: Some("10.0.0.1".to_string()),
            ..AclFilterArgs::default()
        });
        assert_eq!(transactional.resource_type, 5);
        assert_eq!(
            transactional.describe().host_filter.as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn bindings_to_add_are_one_per_operation_and_checked() {
        let bindings = bindings_to_add(
            "User:alice".to_string(),
            "*".to_string(),
            &[
                OperationArg::Read,
                OperationArg::Describe,
                OperationArg::Read,
            ],
            &AclResource {
                group: Some("app".to_string()),
                ..AclResource::default()
            },
            true,
            false,
        )
        .unwrap();
        assert_eq!(bindings.len(), 2, "READ once");
        assert_eq!(bindings[0].resource_type, ResourceType::Group);
        assert_eq!(bindings[0].pattern_type, PatternType::Prefixed);
        assert_eq!(bindings[0].permission, Permission::Allow);
        assert_eq!(bindings[1].operation, Operation::Describe);

        let cluster = AclResource {
            cluster: true,
            ..AclResource::default()
        };
        let denied = bindings_to_add(
            "User:bob".to_string(),
            "10.0.0.1".to_string(),
            &[OperationArg::IdempotentWrite],
            &cluster,
            false,
            true,
        )
        .unwrap();
        assert_eq!(denied[0].resource_name, "kafka-cluster");
        assert_eq!(denied[0].permission, Permission::Deny);

        let refused = |principal: &str, operation, resource: &AclResource, prefixed| {
            bindings_to_add(
                principal.to_string(),
                "*".to_string(),
                &[operation],
                resource,
                prefixed,
                false,
            )
            .unwrap_err()
            .0
        };
        let message = refused("alice", OperationArg::Read, &topic("t"), false);
        assert!(message.contains("TYPE:NAME"), "{message}");
        let message = refused("User:alice", OperationArg::Write, &cluster, false);
        assert!(message.contains("does not apply"), "{message}");
        let message = refused("User:alice", OperationArg::Alter, &cluster, true);
        assert!(message.contains("kafka-cluster"), "{message}");
    }

    #[test]
    fn refusals_say_what_to_do() {
        let disabled = refused(
            "list ACL bindings",
            Operation::Describe,
            KafkaCode::SECURITY_DISABLED,
            None,
        );
        assert!(
            disabled.0.contains("SECURITY_DISABLED") && disabled.0.contains("authorizer = \"acl\""),
            "{disabled}"
        );
        let denied = refused(
            "create ACL bindings",
            Operation::Alter,
            KafkaCode::CLUSTER_AUTHORIZATION_FAILED,
            None,
        );
        assert!(
            denied.0.contains("CLUSTER_AUTHORIZATION_FAILED") && denied.0.contains("ALTER"),
            "{denied}"
        );
        let explained = refused(
            "list ACL bindings",
            Operation::Describe,
            KafkaCode::CLUSTER_AUTHORIZATION_FAILED,
            Some("DESCRIBE on the cluster is needed to list ACLs".to_string()),
        );
        assert_eq!(
            explained.0,
            "cannot list ACL bindings: CLUSTER_AUTHORIZATION_FAILED: DESCRIBE on the cluster is needed to list ACLs"
        );
        assert_eq!(counted(1), "1 ACL binding");
        assert_eq!(counted(0), "0 ACL bindings");
        let invalid = refused(
            "remove ACL bindings",
            Operation::Alter,
            KafkaCode(42),
            Some("pattern type 9".to_string()),
        );
        assert_eq!(
            invalid.0,
            "cannot remove ACL bindings: INVALID_REQUEST: pattern type 9"
        );
    }
}
