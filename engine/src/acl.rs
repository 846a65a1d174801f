//! Access control lists and the authorizer, in Kafka's model.
//!
//! An ACL binding allows or denies one principal (`User:alice`, or `User:*`
//! for everyone), from one host (or `*`), one operation on the resources a
//! pattern names: a literal name (`*` is every resource of the type) or a
//! prefix. The bindings live in the replicated metadata
//! ([`crate::cluster_metadata`]), so every node authorizes alike.
//!
//! [`Authorizer::authorize`] decides as Kafka's does:
//! - a super user may do anything;
//! - a matching DENY wins over any ALLOW;
//! - an ALLOW of the operation, of ALL, or of an operation that implies it
//!   (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
//!   DESCRIBE_CONFIGS) allows;
//! - a resource no binding names at all is allowed only with
//!   `allow_everyone_if_no_acl_found` (off by default), otherwise denied.

use std::collections::{BTreeSet, HashMap};

/// What a binding is about. The numbers are Kafka's on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

/// How a binding names its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    /// The name itself; `*` names every resource of the type.
    Literal = 3,
    /// Every resource whose name starts with it.
    Prefixed = 4,
}

/// What a principal does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

/// Operations the authorizer refused since the process started
/// (`/metrics`).
pub static DENIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The one cluster resource's name, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The principal of a connection that has not authenticated.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The longest principal, host or resource name a binding may hold.
pub const NAME_BYTES_MAX: usize = 4096;

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why a binding cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBinding {
    #[error("the resource name is empty")]
    EmptyName,
    #[error("the principal {0:?} is not TYPE:NAME")]
    Principal(String),
    #[error("the host is empty")]
    EmptyHost,
    #[error("a name is over {NAME_BYTES_MAX} bytes")]
    TooLong,
    #[error("the cluster resource is named {CLUSTER_NAME}, literally")]
    ClusterName,
    #[error("operation {0:?} does not apply to a {1:?}")]
    Operation(Operation, ResourceType),
}

impl AclBinding {
    /// Whether the binding can be stored: a principal `TYPE:NAME`, names
    /// within their cap, the cluster named as Kafka names it, and an
    /// operation that applies to the resource type.
    pub fn check(&self) -> Result<(), InvalidBinding> {
        if self.resource_name.is_empty() {
            return Err(InvalidBinding::EmptyName);
        }
        if [&self.resource_name, &self.principal, &self.host]
            .iter()
            .any(|name| name.len() > NAME_BYTES_MAX)
        {
            return Err(InvalidBinding::TooLong);
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return Err(InvalidBinding::Principal(self.principal.clone())),
        }
        if self.host.is_empty() {
            return Err(InvalidBinding::EmptyHost);
        }
        if self.resource_type == ResourceType::Cluster
            && (self.resource_name != CLUSTER_NAME || self.pattern_type != PatternType::Literal)
        {
            return Err(InvalidBinding::ClusterName);
        }
        if !self.operation.applies_to(self.resource_type) {
            return Err(InvalidBinding::Operation(
                self.operation,
                self.resource_type,
            ));
        }
        Ok(())
    }

    /// Whether the binding names resource `name` of its type.
    fn names(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == "*",
            PatternType::Prefixed => name.starts_with(&self.resource_name),
        }
    }

    /// Whether the binding is about `principal` connected from `host`.
    fn concerns(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == host || self.host == "*")
    }
}

impl Operation {
    /// Whether an ALLOW of `self` allows `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }

    /// Whether a DENY of `self` denies `wanted`.
    fn denies(self, wanted: Operation) -> bool {
        self == wanted || self == Operation::All
    }

    /// Whether the operation means something for resources of `kind`
    /// (ALL always does).
    pub fn applies_to(self, kind: ResourceType) -> bool {
        use Operation::*;
        self == All
            || match kind {
                ResourceType::Topic => matches!(
                    self,
                    Read | Write
                        | Create
                        | Delete
                        | Alter
                        | Describe
                        | DescribeConfigs
                        | AlterConfigs
                ),
                ResourceType::Group => matches!(self, Read | Delete | Describe),
                ResourceType::Cluster => matches!(
                    self,
                    Create
                        | Alter
                        | Describe
                        | ClusterAction
                        | DescribeConfigs
                        | AlterConfigs
                        | IdempotentWrite
                        | CreateTokens
                        | DescribeTokens
                ),
                ResourceType::TransactionalId => matches!(self, Write | Describe),
                ResourceType::DelegationToken => matches!(self, Describe),
                ResourceType::User => matches!(self, CreateTokens | DescribeTokens),
            }
    }

    /// The operations Kafka reports as authorized for a resource of `kind`
    /// (`authorized_operations`), in its order.
    pub fn of(kind: ResourceType) -> impl Iterator<Item = Operation> {
        use Operation::*;
        [
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            CreateTokens,
            DescribeTokens,
        ]
        .into_iter()
        .filter(move |operation| operation.applies_to(kind))
    }

    pub fn from_code(code: i8) -> Option<Operation> {
        use Operation::*;
        Some(match code {
            2 => All,
            3 => Read,
            4 => Write,
            5 => Create,
            6 => Delete,
            7 => Alter,
            8 => Describe,
            9 => ClusterAction,
            10 => DescribeConfigs,
            11 => AlterConfigs,
            12 => IdempotentWrite,
            13 => CreateTokens,
            14 => DescribeTokens,
            _ => return None,
        })
    }
}

impl ResourceType {
    pub fn from_code(code: i8) -> Option<ResourceType> {
        Some(match code {
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => return None,
        })
    }
}

impl PatternType {
    pub fn from_code(code: i8) -> Option<PatternType> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }
}

impl Permission {
    pub fn from_code(code: i8) -> Option<Permission> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }
}

/// How a filter matches a binding's pattern (Kafka's pattern type filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    Any,
    /// Every binding that names the filter's resource name: a literal
    /// equal to it, the literal `*`, or a prefix of it.
    Match,
    Exactly(PatternType),
}

/// Which bindings a DescribeAcls or DeleteAcls names: `None` fields match
/// anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// Every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: None,
            resource_name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        let name_matches = match (&self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => binding.names(name),
            (PatternFilter::Match, None) => true,
            (PatternFilter::Exactly(kind), name) => {
                binding.pattern_type == *kind
                    && name
                        .as_ref()
                        .is_none_or(|name| *name == binding.resource_name)
            }
            (PatternFilter::Any, name) => name
                .as_ref()
                .is_none_or(|name| *name == binding.resource_name),
        };
        name_matches
            && self
                .resource_type
                .is_none_or(|kind| kind == binding.resource_type)
            && self
                .principal
                .as_ref()
                .is_none_or(|principal| *principal == binding.principal)
            && self.host.as_ref().is_none_or(|host| *host == binding.host)
            && self
                .operation
                .is_none_or(|operation| operation == binding.operation)
            && self
                .permission
                .is_none_or(|permission| permission == binding.permission)
    }
}

/// Every binding, as the metadata holds them, and indexed by resource
/// type and name, so that an authorization looks its resource up (its
/// name, `*`, each prefix of its name) without a scan or an allocation.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
    by_name: HashMap<ResourceType, HashMap<String, Vec<AclBinding>>>,
}

/// Equal when they hold the same bindings (the index follows them).
impl PartialEq for Acls {
    fn eq(&self, other: &Acls) -> bool {
        self.bindings == other.bindings
    }
}

impl Eq for Acls {}

/// The most bindings the metadata holds.
pub const BINDINGS_MAX: usize = 100_000;

/// The most bindings one metadata record holds (a CreateAcls or a
/// snapshot of more is written as several).
pub const BINDINGS_PER_RECORD: usize = 1000;

impl Acls {
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.contains(binding)
    }

    /// Adds `bindings` (those already present stay as they are).
    pub fn insert(&mut self, bindings: impl IntoIterator<Item = AclBinding>) {
        for binding in bindings {
            if self.bindings.insert(binding.clone()) {
                self.by_name
                    .entry(binding.resource_type)
                    .or_default()
                    .entry(binding.resource_name.clone())
                    .or_default()
                    .push(binding);
            }
        }
    }

    pub fn remove(&mut self, binding: &AclBinding) {
        if !self.bindings.remove(binding) {
            return;
        }
        let names = self
            .by_name
            .get_mut(&binding.resource_type)
            .expect("indexed");
        let named = names.get_mut(&binding.resource_name).expect("indexed");
        named.retain(|indexed| indexed != binding);
        if named.is_empty() {
            names.remove(&binding.resource_name);
        }
    }

    /// The bindings `filter` matches.
    pub fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.bindings
            .iter()
            .filter(move |binding| filter.matches(binding))
    }

    /// The bindings that name resource `name` of type `kind`, whoever they
    /// are about: the literal name, the literal `*`, and each prefix of the
    /// name, each found by a lookup.
    fn naming<'a>(
        &'a self,
        kind: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let names = self.by_name.get(&kind);
        let named = move |wanted: &'a str, pattern: PatternType| {
            names
                .and_then(|names| names.get(wanted))
                .into_iter()
                .flatten()
                .filter(move |binding| binding.pattern_type == pattern)
        };
        let exact = (name != "*")
            .then(|| named(name, PatternType::Literal))
            .into_iter()
            .flatten();
        let prefixes = name
            .char_indices()
            .map(|(at, c)| &name[..at + c.len_utf8()])
            .flat_map(move |prefix| named(prefix, PatternType::Prefixed));
        exact
            .chain(named("*", PatternType::Literal))
            .chain(prefixes)
    }
}

/// Who asks: the principal a connection authenticated as, and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub principal: String,
    /// The client's IP address, as a binding's host names it.
    pub host: String,
}

impl Requester {
    pub fn anonymous(host: String) -> Requester {
        Requester {
            principal: ANONYMOUS.to_string(),
            host,
        }
    }
}

/// The authorizer's settings (`authorizer`, `super_users`,
/// `allow_everyone_if_no_acl_found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// Principals that may do anything, ACLs or not.
    pub super_users: Vec<String>,
    /// Whether a resource no binding names is open to everyone.
    pub allow_everyone_if_no_acl_found: bool,
}

/// Decides requests against the bindings of one metadata image; `None`
/// settings: no authorizer, everything is allowed.
pub struct Authorizer<'a> {
    pub settings: Option<&'a AuthorizerSettings>,
    pub acls: &'a Acls,
}

impl Authorizer<'_> {
    /// Whether `requester` may do `operation` to resource `name` of type
    /// `kind`.
    pub fn authorize(
        &self,
        requester: &Requester,
        operation: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        let Some(settings) = self.settings else {
            return true;
        };
        if settings.super_users.contains(&requester.principal) {
            return true;
        }
        let mut named = false;
        let mut allowed = false;
        for binding in self.acls.naming(kind, name) {
            named = true;
            if !binding.concerns(&requester.principal, &requester.host) {
                continue;
            }
            match binding.permission {
                Permission::Deny if binding.operation.denies(operation) => return false,
                Permission::Allow if binding.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!named && settings.allow_everyone_if_no_acl_found)
    }

    /// Whether `requester` may do `operation` to some resource of type
    /// `kind` (Kafka's authorize by resource type: an idempotent producer
    /// needs WRITE on some topic): an ALLOW it has whose resources a DENY
    /// of the same principal does not cover whole.
    pub fn authorize_any(
        &self,
        requester: &Requester,
        operation: Operation,
        kind: ResourceType,
    ) -> bool {
        let Some(settings) = self.settings else {
            return true;
        };
        if settings.super_users.contains(&requester.principal) {
            return true;
        }
        let concerning = || {
            self.acls.iter().filter(move |binding| {
                binding.resource_type == kind
                    && binding.concerns(&requester.principal, &requester.host)
            })
        };
        let denied = |allow: &AclBinding| {
            concerning().any(|deny| {
                deny.permission == Permission::Deny
                    && deny.operation.denies(operation)
                    && match deny.pattern_type {
                        PatternType::Literal => {
                            deny.resource_name == "*"
                                || (allow.pattern_type == PatternType::Literal
                                    && deny.resource_name == allow.resource_name)
                        }
                        PatternType::Prefixed => {
                            allow.resource_name.starts_with(&deny.resource_name)
                        }
                    }
            })
        };
        concerning().any(|allow| {
            allow.permission == Permission::Allow
                && allow.operation.allows(operation)
                && !denied(allow)
        })
    }

    /// The operations `requester` may do to resource `name` of type
    /// `kind`, as Kafka's `authorized_operations` bit field (bit `n` is
    /// operation `n`).
    pub fn authorized_operations(
        &self,
        requester: &Requester,
        kind: ResourceType,
        name: &str,
    ) -> i32 {
        Operation::of(kind)
            .filter(|operation| self.authorize(requester, *operation, kind, name))
            .fold(0, |bits, operation| bits | 1 << operation as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: kind,
            resource_name: name.to_string(),
            pattern_type: pattern,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation,
            permission,
        }
    }

    fn alice() -> Requester {
        Requester {
            principal: "User:alice".into(),
            host: "10.0.0.1".into(),
        }
    }

    fn settings() -> AuthorizerSettings {
        AuthorizerSettings {
            super_users: vec!["User:admin".into()],
            allow_everyone_if_no_acl_found: false,
        }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn denies_by_default_and_allows_what_a_binding_allows() {
        let settings = settings();
        let mut acls = Acls::default();
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(!authorizer.authorize(&alice(), Write, Topic, "orders"));
        let admin = Requester {
            principal: "User:admin".into(),
            host: "h".into(),
        };
        assert!(authorizer.authorize(&admin, Write, Topic, "orders"));
        acls.insert([binding(
            Topic,
            "orders",
            Literal,
            "User:alice",
            Write,
            Allow,
        )]);
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(authorizer.authorize(&alice(), Write, Topic, "orders"));
        assert!(
            authorizer.authorize(&alice(), Describe, Topic, "orders"),
            "WRITE implies DESCRIBE"
        );
        assert!(!authorizer.authorize(&alice(), Read, Topic, "orders"));
        assert!(!authorizer.authorize(&alice(), Write, Topic, "orders2"));
        assert!(!authorizer.authorize(&alice(), Write, Group, "orders"));
        let bob = Requester {
            principal: "User:bob".into(),
            host: "10.0.0.1".into(),
        };
        assert!(!authorizer.authorize(&bob, Write, Topic, "orders"));
        let none = Authorizer {
            settings: None,
            acls: &acls,
        };
        assert!(
            none.authorize(&bob, Write, Topic, "orders"),
            "no authorizer"
        );
    }

    #[test]
    fn deny_overrides_allow_and_prefixes_and_wildcards_match() {
        let settings = settings();
        let mut acls = Acls::default();
        acls.insert([
            binding(Topic, "pay", Prefixed, "User:alice", All, Allow),
            binding(Topic, "payroll", Literal, "User:alice", Read, Deny),
            binding(Topic, "*", Literal, "User:*", Describe, Allow),
            binding(Group, "*", Literal, "User:alice", Read, Allow),
        ]);
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(authorizer.authorize(&alice(), Read, Topic, "payments"));
        assert!(authorizer.authorize(&alice(), Write, Topic, "payroll"));
        assert!(!authorizer.authorize(&alice(), Read, Topic, "payroll"));
        assert!(!authorizer.authorize(&alice(), Read, Topic, "pa"));
        assert!(authorizer.authorize(&alice(), Describe, Topic, "anything"));
        assert!(authorizer.authorize(&alice(), Read, Group, "g1"));
        assert!(!authorizer.authorize(&alice(), Delete, Group, "g1"));
        let bits = authorizer.authorized_operations(&alice(), Topic, "payroll");
        assert_eq!(bits & (1 << Read as i32), 0);
        assert_ne!(bits & (1 << Write as i32), 0);
    }

    #[test]
    fn hosts_and_the_no_acl_setting() {
        let mut settings = settings();
        let mut acls = Acls::default();
        let mut only_there = binding(Topic, "t", Literal, "User:alice", Read, Allow);
        only_there.host = "10.0.0.2".into();
        acls.insert([only_there]);
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(!authorizer.authorize(&alice(), Read, Topic, "t"));
        assert!(!authorizer.authorize(&alice(), Read, Topic, "u"));
        settings.allow_everyone_if_no_acl_found = true;
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(authorizer.authorize(&alice(), Read, Topic, "u"), "no ACL");
        assert!(!authorizer.authorize(&alice(), Read, Topic, "t"), "an ACL");
    }

    #[test]
    fn any_topic_for_idempotence() {
        let settings = settings();
        let mut acls = Acls::default();
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(!authorizer.authorize_any(&alice(), Write, Topic));
        acls.insert([binding(Topic, "t", Literal, "User:alice", Write, Allow)]);
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(authorizer.authorize_any(&alice(), Write, Topic));
        acls.insert([binding(Topic, "*", Literal, "User:alice", Write, Deny)]);
        let authorizer = Authorizer {
            settings: Some(&settings),
            acls: &acls,
        };
        assert!(!authorizer.authorize_any(&alice(), Write, Topic));
    }

    #[test]
    fn a_removed_binding_no_longer_decides() {
        let settings = settings();
        let mut acls = Acls::default();
        let write = binding(Topic, "t", Literal, "User:alice", Write, Allow);
        let prefix = binding(Topic, "t", Prefixed, "User:alice", Read, Allow);
        acls.insert([write.clone(), prefix.clone(), write.clone()]);
        assert_eq!(acls.len(), 2);
        let allows = |acls: &Acls, operation| {
            Authorizer {
                settings: Some(&settings),
                acls,
            }
            .authorize(&alice(), operation, Topic, "t")
        };
        assert!(allows(&acls, Write) && allows(&acls, Read));
        acls.remove(&write);
        assert!(!allows(&acls, Write) && allows(&acls, Read));
        acls.remove(&prefix);
        acls.remove(&prefix);
        assert!(acls.is_empty() && !allows(&acls, Read));
        let mut again = Acls::default();
        again.insert([prefix.clone(), write.clone()]);
        let mut other = Acls::default();
        other.insert([write, prefix]);
        assert_eq!(again, other, "equal whatever the order");
    }

    #[test]
    fn filters_and_checks() {
        let mut acls = Acls::default();
        acls.insert([
            binding(Topic, "pay", Prefixed, "User:alice", All, Allow),
            binding(Topic, "payroll", Literal, "User:bob", Read, Allow),
            binding(Group, "g", Literal, "User:bob", Read, Allow),
        ]);
        let mut filter = AclFilter::any();
        assert_eq!(acls.matching(&filter).count(), 3);
        filter.resource_type = Some(Topic);
        filter.resource_name = Some("payroll".into());
        assert_eq!(acls.matching(&filter).count(), 1, "literal by default");
        filter.pattern = PatternFilter::Match;
        assert_eq!(acls.matching(&filter).count(), 2, "and the prefix");
        filter.principal = Some("User:bob".into());
        assert_eq!(acls.matching(&filter).count(), 1);

        let good = binding(Cluster, CLUSTER_NAME, Literal, "User:a", Alter, Allow);
        assert_eq!(good.check(), Ok(()));
        let mut bad = good.clone();
        bad.resource_name = "other".into();
        assert_eq!(bad.check(), Err(InvalidBinding::ClusterName));
        let mut bad = good.clone();
        bad.principal = "alice".into();
        assert!(matches!(bad.check(), Err(InvalidBinding::Principal(_))));
        let bad = binding(Group, "g", Literal, "User:a", Write, Allow);
        assert!(matches!(bad.check(), Err(InvalidBinding::Operation(..))));
    }
}
