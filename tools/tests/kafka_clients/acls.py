"""ACLs through confluent-kafka (librdkafka), as an operator and its
applications meet them: a broker on SASL_PLAINTEXT with the ACL
authorizer, the super user admin, and the users alice and bob (their
passwords are NAME-secret).

    python3 acls.py BOOTSTRAP

Each step prints how long into the run it ended. A failed check raises.
"""
import sys
import time
import uuid

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

BOOTSTRAP = sys.argv[1]
STARTED = time.monotonic()
RUN = uuid.uuid4().hex[:6]


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def settings(user):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user,
            "sasl.password": f"{user}-secret"}


admin = AdminClient(settings("admin"))


def allow(principal, resource, name, operation, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW):
    return AclBinding(resource, name, pattern, principal, "*", operation, permission)


def create_acls(bindings, client=admin):
    for future in client.create_acls(bindings).values():
        future.result(30)


def produce(user, topic, count=10, **more):
    """Sends count records; the delivery errors (codes), or none."""
    producer = Producer({**settings(user), "acks": "all", "enable.idempotence": False,
                         "message.timeout.ms": 10000, **more})
    errors = []
    for index in range(count):
        producer.produce(topic, f"{user} {index}".encode(), partition=0,
                         on_delivery=lambda error, _: error and errors.append(error.code()))
    producer.flush(20)
    return errors


def consume(user, topic, group, count):
    """Reads from the start with group `group` and commits: the records
    read, or the error that stopped it."""
    consumer = Consumer({**settings(user), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read = []
    deadline = time.time() + 20
    try:
        while len(read) < count and time.time() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            if message.error():
                return message.error().code()
            read.append(message.value())
        if read:
            consumer.commit(asynchronous=False)
        return read
    except KafkaException as error:
        return error.args[0].code()
    finally:
        consumer.close()


orders, payments, payroll = f"orders-{RUN}", f"payments-eu-{RUN}", f"payroll-{RUN}"
for future in admin.create_topics([NewTopic(topic, 1, 1)
                                   for topic in (orders, payments, payroll)]).values():
    future.result(30)
say("admin (a super user) created the topics")

# No ACL: everything is denied, and the topics are not even listed.
assert produce("alice", orders, 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED], "no ACL"
listed = AdminClient(settings("alice")).list_topics(timeout=10).topics
assert orders not in listed, f"alice lists {orders} without DESCRIBE"
assert orders in admin.list_topics(timeout=10).topics
say("alice without ACLs: produce refused TOPIC_AUTHORIZATION_FAILED, topics unlisted")

# A user who is not a super user cannot grant itself anything.
try:
    create_acls([allow("User:alice", ResourceType.TOPIC, orders, AclOperation.ALL)],
                AdminClient(settings("alice")))
    raise AssertionError("alice created an ACL")
except KafkaException as error:
    assert error.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, error
say("alice cannot create ACLs: CLUSTER_AUTHORIZATION_FAILED")

create_acls([
    allow("User:alice", ResourceType.TOPIC, orders, AclOperation.WRITE),
    allow("User:alice", ResourceType.TOPIC, "payments-", AclOperation.ALL,
          ResourcePatternType.PREFIXED),
    allow("User:alice", ResourceType.TOPIC, "payroll", AclOperation.ALL,
          ResourcePatternType.PREFIXED),
    allow("User:alice", ResourceType.TOPIC, payroll, AclOperation.READ,
          permission=AclPermissionType.DENY),
    allow("User:alice", ResourceType.GROUP, f"g-{RUN}", AclOperation.READ),
])
found = admin.describe_acls(AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY,
    AclPermissionType.ANY)).result(30)
assert len(found) == 5, found
matching = admin.describe_acls(AclBindingFilter(
    ResourceType.TOPIC, payments, ResourcePatternType.MATCH, None, None, AclOperation.ANY,
    AclPermissionType.ANY)).result(30)
assert [binding.name for binding in matching] == ["payments-"], matching
say("admin granted alice five bindings; DescribeAcls finds them, MATCH finds the prefix")

assert produce("alice", orders) == [], "WRITE on orders"
assert consume("alice", orders, f"g-{RUN}", 10) == KafkaError.TOPIC_AUTHORIZATION_FAILED
say("alice writes orders, cannot read it (WRITE only)")

assert produce("alice", payments) == [], "the prefix allows ALL"
read = consume("alice", payments, f"g-{RUN}", 10)
assert isinstance(read, list) and len(read) == 10, read
assert consume("alice", payments, f"other-{RUN}", 10) == KafkaError.GROUP_AUTHORIZATION_FAILED
say("alice reads payments-eu through the prefix, in her group; another group is refused")

assert produce("alice", payroll) == [], "the prefix allows WRITE"
assert consume("alice", payroll, f"g-{RUN}", 10) == KafkaError.TOPIC_AUTHORIZATION_FAILED
say("deny wins: alice writes payroll (prefix ALL) but cannot read it (literal DENY READ)")

# Idempotence: WRITE on some topic is enough (Kafka 2.8 on); bob has none.
assert produce("alice", orders, 5, **{"enable.idempotence": True}) == [], "idempotent"
errors = produce("bob", orders, 1, **{"enable.idempotence": True})
assert errors and errors[0] in (KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                                KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                KafkaError._FATAL), errors
say(f"idempotent producers: alice (WRITE on a topic) served, bob refused ({errors[0]})")

# Transactions: the transactional id needs WRITE.
transactional = {**settings("alice"), "transactional.id": f"tx-{RUN}",
                 "transaction.timeout.ms": 10000}
try:
    Producer(transactional).init_transactions(20)
    raise AssertionError("a transactional id without WRITE")
except KafkaException as error:
    assert error.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, error
create_acls([allow("User:alice", ResourceType.TRANSACTIONAL_ID, f"tx-{RUN}",
                   AclOperation.WRITE)])
producer = Producer(transactional)
producer.init_transactions(20)
producer.begin_transaction()
producer.produce(orders, b"in a transaction", partition=0)
producer.commit_transaction(20)
say("alice's transactional id: refused, then served once granted WRITE")

# Removing ACLs: alice loses WRITE on orders.
# (The futures' map must stay whole: its futures are completed through it.)
futures = admin.delete_acls([AclBindingFilter(
    ResourceType.TOPIC, orders, ResourcePatternType.LITERAL, "User:alice", None,
    AclOperation.ANY, AclPermissionType.ANY)])
deleted = list(futures.values())[0].result(30)
assert len(deleted) == 1, deleted
assert produce("alice", orders, 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
say("DeleteAcls removed alice's WRITE on orders: refused again")
