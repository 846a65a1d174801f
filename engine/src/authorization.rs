//! Authorization of one request, for the protocol adapters: who sends it
//! ([`Requester`]), the authorizer's settings and the ACL bindings of the
//! metadata the request meets. Each adapter decides which operations its
//! APIs need (`kafka/authorize.rs`, `native/authorize.rs`, the admin
//! HTTP API); the decisions and the audit of refusals are made here, the
//! same for all.

use std::{fmt::Debug, rc::Rc, sync::Arc};

use uuid::Uuid;

use crate::{
    acl::{
        Acls, Authorizer, AuthorizerSettings, Operation, Requester, ResourceType, CLUSTER_NAME,
        DENIALS,
    },
    cluster_metadata::Metadata,
    shard::Shard,
};

/// Who sends a request, and what decides it.
pub struct Access<'a> {
    pub requester: Rc<Requester>,
    settings: Option<&'a AuthorizerSettings>,
    /// The metadata the request meets: its ACLs decide.
    pub metadata: Arc<Metadata>,
    /// The API asked, for the audit log.
    api: &'a dyn Debug,
    /// The broker's `auto_create_topics`: a Metadata request then needs
    /// CREATE for a topic it would create.
    pub auto_create_topics: bool,
}

impl<'a> Access<'a> {
    /// The access of a request to `api` from `requester` (asked only when
    /// the broker has an authorizer: without one, nothing is decided and
    /// nothing is allocated).
    pub fn new(
        shard: &'a Shard,
        requester: impl FnOnce() -> Rc<Requester>,
        api: &'a dyn Debug,
    ) -> Access<'a> {
        let metadata = shard.metadata();
        let settings = shard.config.authorizer.as_ref();
        let requester = match settings {
            Some(_) => requester(),
            None => Rc::new(Requester {
                principal: String::new(),
                host: String::new(),
            }),
        };
        Access {
            requester,
            settings,
            metadata,
            api,
            auto_create_topics: shard.config.auto_create_topics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    pub fn authorizer(&self) -> Authorizer<'_> {
        Authorizer {
            settings: self.settings,
            acls: &self.metadata.acls,
        }
    }

    /// Whether the requester may do `operation` to `name`; a refusal is
    /// counted and logged (rate-limited).
    pub fn allows(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        let allowed = self.permits(operation, kind, name);
        if !allowed {
            self.denied(operation, kind, name);
        }
        allowed
    }

    /// [`Access::allows`] without counting a refusal: for what a listing
    /// leaves out, or a first choice that has a second.
    pub fn permits(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        self.authorizer()
            .authorize(&self.requester, operation, kind, name)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    /// WRITE on the transactional id, as every change of a transaction
    /// needs.
    pub fn transactional_id(&self, name: &str) -> bool {
        self.allows(Operation::Write, ResourceType::TransactionalId, name)
    }

    /// Kafka's `authorized_operations` bits for `name`.
    pub fn operations(&self, kind: ResourceType, name: &str) -> i32 {
        self.authorizer()
            .authorized_operations(&self.requester, kind, name)
    }

    /// CREATE on the cluster, or on the topic.
    pub fn may_create(&self, name: &str) -> bool {
        self.permits(Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
            || self.topic(Operation::Create, name)
    }

    /// An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on
    /// some topic (Kafka 2.8 on).
    pub fn may_write_idempotently(&self) -> bool {
        let allowed = self.permits(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) || self.authorizer().authorize_any(
            &self.requester,
            Operation::Write,
            ResourceType::Topic,
        );
        if !allowed {
            self.denied(
                Operation::IdempotentWrite,
                ResourceType::Cluster,
                CLUSTER_NAME,
            );
        }
        allowed
    }

    /// The name of the topic whose id is `id`.
    pub fn topic_name_of(&self, id: Uuid) -> Option<String> {
        self.metadata
            .topics
            .values()
            .find(|meta| Uuid::from_u128(meta.id.0) == id)
            .map(|meta| meta.name.clone())
    }

    /// The decisions of this access, owned: for what is filtered once the
    /// handler has answered.
    pub fn decider(&self) -> Decider {
        Decider {
            requester: self.requester.clone(),
            settings: self.settings.cloned(),
            acls: self.metadata.acls.clone(),
        }
    }

    /// Counts a refusal and logs it: the first hundred, then once per
    /// power of two, so that a client that insists does not fill the log.
    fn denied(&self, operation: Operation, kind: ResourceType, name: &str) {
        let count = DENIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if count <= 100 || count.is_power_of_two() {
            tracing::info!(
                principal = %self.requester.principal,
                host = %self.requester.host,
                api = ?self.api,
                ?operation,
                resource = ?kind,
                name,
                denials = count,
                "authorization denied"
            );
        }
    }
}

/// [`Access`]'s decisions without its borrows.
pub struct Decider {
    requester: Rc<Requester>,
    settings: Option<AuthorizerSettings>,
    acls: Arc<Acls>,
}

impl Decider {
    pub fn permits(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        self.authorizer()
            .authorize(&self.requester, operation, kind, name)
    }

    pub fn operations(&self, kind: ResourceType, name: &str) -> i32 {
        self.authorizer()
            .authorized_operations(&self.requester, kind, name)
    }

    fn authorizer(&self) -> Authorizer<'_> {
        Authorizer {
            settings: self.settings.as_ref(),
            acls: &self.acls,
        }
    }
}
