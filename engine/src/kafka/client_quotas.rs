//! DescribeClientQuotas and AlterClientQuotas (KIP-546), as
//! `kafka-configs.sh --entity-type users|clients|ips` and admin clients
//! send them. The quotas live in the replicated metadata; what they mean
//! and how they are enforced is [`crate::quota`].

use std::rc::Rc;

use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};

use super::{
    admin::{controller, stopped},
    error_code, str_bytes,
};
use crate::{
    controller::ControllerOp,
    quota::{Entity, Name, Rate, CLIENT_ID, IP, USER},
    shard::Shard,
};

const INVALID_REQUEST: i16 = 42;

/// Kafka's match types of a DescribeClientQuotas component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// The slot of `entity` a component of type `kind` fills.
fn slot<'a>(entity: &'a mut Entity, kind: &str) -> Result<&'a mut Option<Name>, String> {
    match kind {
        USER => Ok(&mut entity.user),
        CLIENT_ID => Ok(&mut entity.client_id),
        IP => Ok(&mut entity.ip),
        other => Err(format!(
            "entity type {other:?} is none of {USER}, {CLIENT_ID}, {IP}"
        )),
    }
}

fn component(entity: &Entity, kind: &str) -> Option<Option<Name>> {
    match kind {
        USER => Some(entity.user.clone()),
        CLIENT_ID => Some(entity.client_id.clone()),
        IP => Some(entity.ip.clone()),
        _ => None,
    }
}

/// The wire's entity of `entity`: its components, in Kafka's order.
fn wire_entity<T: Default>(
    entity: &Entity,
    make: impl Fn(&'static str, Option<&str>) -> T,
) -> Vec<T> {
    [
        (USER, &entity.user),
        (CLIENT_ID, &entity.client_id),
        (IP, &entity.ip),
    ]
    .into_iter()
    .filter_map(|(kind, name)| Some(make(kind, name.as_ref()?.as_option())))
    .collect()
}

pub async fn describe(
    shard: &Rc<Shard>,
    request: DescribeClientQuotasRequest,
    _version: i16,
) -> DescribeClientQuotasResponse {
    let failed = |message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(INVALID_REQUEST)
            .with_error_message(Some(str_bytes(message)))
            .with_entries(None)
    };
    for part in &request.components {
        if component(&Entity::default(), &part.entity_type).is_none() {
            return failed(format!("entity type {:?} is unknown", &*part.entity_type));
        }
        if ![MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED].contains(&part.match_type) {
            return failed(format!("match type {} is unknown", part.match_type));
        }
    }
    let metadata = shard.metadata();
    let matches = |entity: &Entity| {
        let each = request.components.iter().all(|part| {
            let has = component(entity, &part.entity_type).flatten();
            match (part.match_type, has) {
                (MATCH_EXACT, Some(Name::Named(name))) => {
                    part._match.as_deref() == Some(name.as_str())
                }
                (MATCH_DEFAULT, Some(Name::Default)) => true,
                (MATCH_SPECIFIED, Some(_)) => true,
                _ => false,
            }
        });
        let strict = !request.strict || {
            let named = [&entity.user, &entity.client_id, &entity.ip]
                .iter()
                .filter(|name| name.is_some())
                .count();
            named == request.components.len()
        };
        each && strict
    };
    let entries = metadata
        .quotas
        .iter()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, values)| {
            describe_client_quotas_response::EntryData::default()
                .with_entity(wire_entity(entity, |kind, name| {
                    describe_client_quotas_response::EntityData::default()
                        .with_entity_type(str_bytes(kind))
                        .with_entity_name(name.map(str_bytes))
                }))
                .with_values(
                    values
                        .iter()
                        .map(|(key, Rate(value))| {
                            describe_client_quotas_response::ValueData::default()
                                .with_key(str_bytes(key.clone()))
                                .with_value(*value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

pub async fn alter(
    shard: &Rc<Shard>,
    request: AlterClientQuotasRequest,
    _version: i16,
) -> AlterClientQuotasResponse {
    let mut results = Vec::new();
    for entry in request.entries {
        let mut entity = Entity::default();
        let parsed = entry.entity.iter().try_for_each(|part| {
            let slot = slot(&mut entity, &part.entity_type)?;
            if slot.is_some() {
                return Err(format!("entity type {} given twice", &*part.entity_type));
            }
            *slot = Some(match &part.entity_name {
                None => Name::Default,
                Some(name) => Name::Named(name.to_string()),
            });
            Ok(())
        });
        let outcome = match parsed {
            Err(message) => Err((INVALID_REQUEST, message)),
            Ok(()) => set(shard, &entity, &entry.ops, request.validate_only).await,
        };
        let (code, message) = match outcome {
            Ok(()) => (0, None),
            Err((code, message)) => (code, Some(str_bytes(message))),
        };
        results.push(
            alter_client_quotas_response::EntryData::default()
                .with_entity(wire_entity(&entity, |kind, name| {
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(str_bytes(kind))
                        .with_entity_name(name.map(str_bytes))
                }))
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterClientQuotasResponse::default().with_entries(results)
}

/// Applies `ops` to the entity's quotas and stores the result.
async fn set(
    shard: &Rc<Shard>,
    entity: &Entity,
    ops: &[kafka_protocol::messages::alter_client_quotas_request::OpData],
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let mut values = shard
        .metadata()
        .quotas
        .get(entity)
        .cloned()
        .unwrap_or_default();
    for op in ops {
        if op.remove {
            values.remove(op.key.as_str());
        } else {
            entity
                .check(&op.key, op.value)
                .map_err(|error| (INVALID_REQUEST, error.to_string()))?;
            values.insert(op.key.to_string(), Rate(op.value));
        }
    }
    if [&entity.user, &entity.client_id, &entity.ip]
        .iter()
        .all(|name| name.is_none())
    {
        return Err((
            INVALID_REQUEST,
            "an entity names at least one component".to_string(),
        ));
    }
    if validate_only {
        return Ok(());
    }
    let entity = entity.clone();
    controller(shard, |reply| ControllerOp::SetClientQuotas {
        entity,
        values,
        reply,
    })
    .await
    .unwrap_or_else(|| Err(stopped()))
    .map_err(|failure| (error_code(failure.kind), failure.message))
}
