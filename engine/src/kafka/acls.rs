//! CreateAcls, DescribeAcls and DeleteAcls, as `kafka-acls.sh` and admin
//! clients send them. The bindings live in the replicated metadata
//! ([`crate::acl`]): a creation or deletion is answered once its record is
//! committed and applied on this node. A broker without an authorizer
//! answers SECURITY_DISABLED, as Kafka's does, so that nobody believes an
//! ACL protects anything there.

use std::rc::Rc;

use kafka_protocol::{
    error::ResponseError,
    messages::{
        create_acls_response::AclCreationResult,
        delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl},
        describe_acls_response::{AclDescription, DescribeAclsResource},
        CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
        DescribeAclsRequest, DescribeAclsResponse,
    },
    protocol::StrBytes,
};

use super::{
    admin::{controller, stopped},
    error_code, str_bytes,
};
use crate::{
    acl::{AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType},
    controller::ControllerOp,
    shard::Shard,
};

/// Kafka's code for "any" in a filter.
const ANY: i8 = 1;
/// Kafka's pattern type filter MATCH.
const MATCH: i8 = 2;

fn disabled() -> (i16, Option<StrBytes>) {
    (
        ResponseError::SecurityDisabled.code(),
        Some(str_bytes(
            "no authorizer is configured on this broker (authorizer = \"acl\" enables one)",
        )),
    )
}

fn invalid(message: String) -> (i16, Option<StrBytes>) {
    (
        ResponseError::InvalidRequest.code(),
        Some(str_bytes(message)),
    )
}

/// A binding from its wire fields, or why it is not one.
fn binding(
    resource_type: i8,
    resource_name: &StrBytes,
    pattern_type: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("resource type {resource_type} is not one a binding names"))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type).ok_or_else(|| {
            format!("pattern type {pattern_type} is neither LITERAL nor PREFIXED")
        })?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation)
            .ok_or_else(|| format!("operation {operation} is not one a binding names"))?,
        permission: Permission::from_code(permission)
            .ok_or_else(|| format!("permission {permission} is neither DENY nor ALLOW"))?,
    };
    binding.check().map_err(|error| error.to_string())?;
    Ok(binding)
}

/// A filter from its wire fields (ANY is 1 in every code), or why it is
/// not one.
fn filter(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    fn code<T>(code: i8, what: &str, known: fn(i8) -> Option<T>) -> Result<Option<T>, String> {
        match code {
            ANY => Ok(None),
            code => known(code)
                .map(Some)
                .ok_or_else(|| format!("{what} {code} is not one Kafka filters by")),
        }
    }
    let pattern = match pattern_type {
        ANY => PatternFilter::Any,
        MATCH => PatternFilter::Match,
        code => PatternFilter::Exactly(
            PatternType::from_code(code)
                .ok_or_else(|| format!("pattern type {code} is not one Kafka filters by"))?,
        ),
    };
    Ok(AclFilter {
        resource_type: code(resource_type, "resource type", ResourceType::from_code)?,
        resource_name: resource_name.map(|name| name.to_string()),
        pattern,
        principal: principal.map(|principal| principal.to_string()),
        host: host.map(|host| host.to_string()),
        operation: code(operation, "operation", Operation::from_code)?,
        permission: code(permission, "permission", Permission::from_code)?,
    })
}

pub async fn create_acls(
    shard: &Rc<Shard>,
    request: CreateAclsRequest,
    _version: i16,
) -> CreateAclsResponse {
    let results = |answers: Vec<(i16, Option<StrBytes>)>| {
        CreateAclsResponse::default().with_results(
            answers
                .into_iter()
                .map(|(code, message)| {
                    AclCreationResult::default()
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect(),
        )
    };
    if shard.config.authorizer.is_none() {
        return results(vec![disabled(); request.creations.len()]);
    }
    let parsed: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|creation| {
            binding(
                creation.resource_type,
                &creation.resource_name,
                creation.resource_pattern_type,
                &creation.principal,
                &creation.host,
                creation.operation,
                creation.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBinding> = parsed
        .iter()
        .filter_map(|parsed| parsed.as_ref().ok().cloned())
        .collect();
    let outcome = if valid.is_empty() {
        Ok(())
    } else {
        let answer = controller(shard, |reply| ControllerOp::CreateAcls {
            bindings: valid,
            reply,
        })
        .await;
        answer.unwrap_or_else(|| Err(stopped()))
    };
    let answers = parsed
        .into_iter()
        .map(|parsed| match (parsed, &outcome) {
            (Err(message), _) => invalid(message),
            (Ok(_), Ok(())) => (0, None),
            (Ok(_), Err(failure)) => (
                error_code(failure.kind),
                Some(str_bytes(failure.message.clone())),
            ),
        })
        .collect();
    let created = outcome.is_ok();
    if created {
        tracing::info!(count = request.creations.len(), "ACL bindings created");
    }
    results(answers)
}

pub async fn describe_acls(
    shard: &Rc<Shard>,
    request: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    if shard.config.authorizer.is_none() {
        let (code, message) = disabled();
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(message);
    }
    let filter = match filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => {
            let (code, message) = invalid(message);
            return DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(message);
        }
    };
    let metadata = shard.metadata();
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    // The bindings are sorted by resource first: one entry per resource.
    for binding in metadata.acls.matching(&filter) {
        let same = resources.last().is_some_and(|last| {
            last.resource_type == binding.resource_type as i8
                && *last.resource_name == *binding.resource_name
                && last.pattern_type == binding.pattern_type as i8
        });
        if !same {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(binding.resource_type as i8)
                    .with_resource_name(str_bytes(binding.resource_name.clone()))
                    .with_pattern_type(binding.pattern_type as i8),
            );
        }
        let resource = resources.last_mut().expect("pushed");
        resource.acls.push(
            AclDescription::default()
                .with_principal(str_bytes(binding.principal.clone()))
                .with_host(str_bytes(binding.host.clone()))
                .with_operation(binding.operation as i8)
                .with_permission_type(binding.permission as i8),
        );
    }
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete_acls(
    shard: &Rc<Shard>,
    request: DeleteAclsRequest,
    _version: i16,
) -> DeleteAclsResponse {
    let failed = |(code, message): (i16, Option<StrBytes>)| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(message)
    };
    if shard.config.authorizer.is_none() {
        return DeleteAclsResponse::default()
            .with_filter_results(vec![failed(disabled()); request.filters.len()]);
    }
    let metadata = shard.metadata();
    let matched: Vec<Result<Vec<AclBinding>, String>> = request
        .filters
        .iter()
        .map(|wire| {
            let filter = filter(
                wire.resource_type_filter,
                wire.resource_name_filter.as_ref(),
                wire.pattern_type_filter,
                wire.principal_filter.as_ref(),
                wire.host_filter.as_ref(),
                wire.operation,
                wire.permission_type,
            )?;
            Ok(metadata.acls.matching(&filter).cloned().collect())
        })
        .collect();
    let mut doomed: Vec<AclBinding> = matched
        .iter()
        .filter_map(|matched| matched.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    doomed.sort();
    doomed.dedup();
    let outcome = if doomed.is_empty() {
        Ok(())
    } else {
        let count = doomed.len();
        let answer = controller(shard, |reply| ControllerOp::DeleteAcls {
            bindings: doomed,
            reply,
        })
        .await;
        let outcome = answer.unwrap_or_else(|| Err(stopped()));
        if outcome.is_ok() {
            tracing::info!(count, "ACL bindings deleted");
        }
        outcome
    };
    let results = matched
        .into_iter()
        .map(|matched| match (matched, &outcome) {
            (Err(message), _) => failed(invalid(message)),
            (Ok(_), Err(failure)) => failed((
                error_code(failure.kind),
                Some(str_bytes(failure.message.clone())),
            )),
            (Ok(bindings), Ok(())) => DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .map(|binding| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(binding.resource_type as i8)
                            .with_resource_name(str_bytes(binding.resource_name))
                            .with_pattern_type(binding.pattern_type as i8)
                            .with_principal(str_bytes(binding.principal))
                            .with_host(str_bytes(binding.host))
                            .with_operation(binding.operation as i8)
                            .with_permission_type(binding.permission as i8)
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
