//! The authorizer's decision, the part of a request's cost the ACLs add:
//! `Authorizer::authorize` of a principal's WRITE on a topic, with 1,000
//! and 100,000 bindings (literal and prefixed, of other users and
//! topics), against the same call without an authorizer in the same run.
//! The cases: allowed by a literal binding, allowed by a prefix, refused
//! by a DENY over an ALLOW, and refused for want of any binding.
//!
//! Run: `cargo bench -p sluice-engine --bench authorizer -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_engine::acl::{
    AclBinding, Acls, Authorizer, AuthorizerSettings, Operation, PatternType, Permission,
    Requester, ResourceType,
};

fn binding(
    name: &str,
    pattern: PatternType,
    principal: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.to_string(),
        pattern_type: pattern,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation,
        permission,
    }
}

/// `count` bindings: alice's WRITE on `orders`, WRITE on the prefix
/// `pay`, a DENY of `payroll`, and others of other users and topics.
fn acls(count: usize) -> Acls {
    let mut acls = Acls::default();
    acls.insert([
        binding(
            "orders",
            PatternType::Literal,
            "User:alice",
            Operation::Write,
            Permission::Allow,
        ),
        binding(
            "pay",
            PatternType::Prefixed,
            "User:alice",
            Operation::Write,
            Permission::Allow,
        ),
        binding(
            "payroll",
            PatternType::Literal,
            "User:alice",
            Operation::Write,
            Permission::Deny,
        ),
    ]);
    acls.insert((3..count).map(|number| {
        let pattern = if number % 4 == 0 {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        };
        binding(
            &format!("topic-{number}"),
            pattern,
            &format!("User:user-{}", number % 50),
            Operation::Read,
            Permission::Allow,
        )
    }));
    acls
}

fn authorize(c: &mut Criterion) {
    let requester = Requester {
        principal: "User:alice".to_string(),
        host: "10.0.0.1".to_string(),
    };
    let settings = AuthorizerSettings {
        super_users: vec!["User:admin".to_string()],
        allow_everyone_if_no_acl_found: false,
    };
    let mut group = c.benchmark_group("authorize");
    let none = Acls::default();
    let off = Authorizer {
        settings: None,
        acls: &none,
    };
    group.bench_function("no_authorizer", |b| {
        b.iter(|| {
            off.authorize(
                black_box(&requester),
                Operation::Write,
                ResourceType::Topic,
                black_box("orders"),
            )
        })
    });
    for count in [1_000, 100_000] {
        let acls = acls(count);
        let on = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        for (case, topic, expected) in [
            ("literal", "orders", true),
            ("prefix", "payments-eu", true),
            ("deny", "payroll", false),
            ("no_binding", "elsewhere", false),
        ] {
            assert_eq!(
                on.authorize(&requester, Operation::Write, ResourceType::Topic, topic),
                expected,
                "{case}"
            );
            group.bench_function(format!("{count}_bindings/{case}"), |b| {
                b.iter(|| {
                    on.authorize(
                        black_box(&requester),
                        Operation::Write,
                        ResourceType::Topic,
                        black_box(topic),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
