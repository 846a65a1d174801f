"""confluent-kafka (librdkafka) consumer groups against a Sluice broker,
classic protocol: three consumers share a 12-partition topic, no partition
owned by two at once; one leaves (close()) and its partitions move to the
two others within the session timeout; every record is read at least once,
and a partition newly assigned starts exactly at its committed offset.

usage: confluent_kafka_groups.py BOOTSTRAP TOPIC STRATEGY
STRATEGY: "default" (librdkafka's range,roundrobin) or "cooperative-sticky"
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import group_ledger
import records
from group_ledger import Ledger

CLIENT = "confluent-kafka-groups"
PARTITIONS = 12
RECORDS_PER_PHASE = 1200
SESSION_TIMEOUT_MS = 6000
# Far above what a healthy broker needs (Kafka delays a new group's first
# rebalance by 3 s).
SETTLE_S = 30
COMMIT_RECORDS = 50
COMMIT_INTERVAL_S = 0.25


class Member:
    """A consumer of the group and what its rebalance callbacks said."""

    def __init__(self, name, common, group, strategy, topic, check):
        self.name = name
        self.check = check
        # partition -> last offset read since assigned (None: nothing yet)
        self.owned = {}
        self.callbacks = []
        self.since_commit = 0
        self.last_commit = time.monotonic()
        settings = dict(common, **{
            "group.id": group,
            "client.id": name,
            "group.protocol": "classic",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 1000,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        if strategy != "default":
            settings["partition.assignment.strategy"] = strategy
        self.consumer = Consumer(settings)
        self.consumer.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                                on_lost=self.on_revoke)

    def on_assign(self, consumer, partitions):
        self.callbacks.append(("assign", sorted(p.partition for p in partitions)))
        for p in partitions:
            self.check.expect(p.partition not in self.owned,
                              f"{self.name}: partition {p.partition} assigned while owned")
            self.owned[p.partition] = None

    def on_revoke(self, consumer, partitions):
        self.callbacks.append(("revoke", sorted(p.partition for p in partitions)))
        for p in partitions:
            self.owned.pop(p.partition, None)

    def report(self):
        return f"{self.name}: owns {sorted(self.owned)}; callbacks {self.callbacks}"


def poll(member, ledger, check):
    messages = member.consumer.consume(num_messages=500, timeout=0.01)
    for message in messages:
        if message.error():
            continue
        ledger.read(member, check, message.partition(), message.offset())


def maybe_commit(member, ledger, force=False):
    if not Ledger.commit_due(member, force, COMMIT_RECORDS, COMMIT_INTERVAL_S):
        return
    positions = [(p, last + 1) for p, last in member.owned.items() if last is not None]
    if not positions:
        return
    try:
        member.consumer.commit(offsets=[TopicPartition(ledger.topic, p, o) for p, o in positions],
                               asynchronous=False)
    except KafkaException:
        # Refused during a rebalance: Kafka's behaviour.
        ledger.commits_failed += 1
        return
    ledger.committed_at(positions)


def round_(members, ledger, check):
    for member in members:
        poll(member, ledger, check)
        maybe_commit(member, ledger)
    owners = {}
    for member in members:
        for p in member.owned:
            check.expect(p not in owners, f"partition {p} owned by {owners.get(p)} and {member.name}")
            owners[p] = member.name


def spread_evenly(members, each):
    everything = set()
    for member in members:
        owned = set(member.owned)
        assignment = {p.partition for p in member.consumer.assignment()}
        if len(owned) != each or assignment != owned:
            return False
        everything |= owned
    return everything == set(range(PARTITIONS))


def settle(members, ledger, check, each, what):
    return group_ledger.settle(members, ledger, check, each, what, round_, spread_evenly, SETTLE_S)


def produce(common, topic, phase):
    placed = []
    failed = []

    def delivered(error, message):
        if error:
            failed.append(str(error))
        else:
            placed.append((message.partition(), message.offset()))

    producer = Producer(dict(common, **{"enable.idempotence": True}))
    for index in range(RECORDS_PER_PHASE):
        producer.produce(topic, key=f"key-{phase}-{index}".encode(),
                         value=f"value-{phase}-{index}".encode(), on_delivery=delivered)
        producer.poll(0)
    producer.flush(60)
    assert not failed and len(placed) == RECORDS_PER_PHASE, f"produce: {failed[:3]}, {len(placed)} placed"
    return set(placed)


def main() -> None:
    bootstrap, topic, strategy = sys.argv[1], sys.argv[2], sys.argv[3]
    check = records.Check(CLIENT)
    common = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}
    group = f"group-{topic}"

    check.step(f"create topic {topic} with {PARTITIONS} partitions")
    admin = AdminClient(dict(common))
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)
    expected = produce(common, topic, 0)

    check.step(f"three members, assignment strategy {strategy}")
    ledger = Ledger(topic)
    members = [Member(f"{CLIENT}-{i}", common, group, strategy, topic, check) for i in range(3)]
    settle(members, ledger, check, 4, "three members")
    deadline = time.monotonic() + SETTLE_S
    while len(ledger.consumed) < RECORDS_PER_PHASE // 2 and time.monotonic() < deadline:
        round_(members, ledger, check)

    leaver = members.pop(0)
    check.step(f"{leaver.name} leaves with {sorted(leaver.owned)}")
    leaving = time.monotonic()
    leaver.consumer.close()
    moved = settle(members, ledger, check, 6, "after a member left")
    took = moved - leaving
    check.step(f"its partitions moved in {took:.2f} s")
    check.expect(took < SESSION_TIMEOUT_MS / 1000,
                 f"partitions moved after {took:.2f} s, not within the session timeout")

    expected |= produce(common, topic, 1)
    deadline = time.monotonic() + SETTLE_S
    while not expected <= ledger.consumed and time.monotonic() < deadline:
        round_(members, ledger, check)
    missing = expected - ledger.consumed
    check.expect(not missing, f"{len(missing)} records never read, e.g. {sorted(missing)[:5]}")
    for member in members:
        maybe_commit(member, ledger, force=True)
    answered = members[0].consumer.committed(
        [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    for tp in answered:
        if tp.partition in ledger.committed:
            check.expect(tp.offset == ledger.committed[tp.partition],
                         f"committed offset of {tp.partition}: {tp.offset}, "
                         f"expected {ledger.committed[tp.partition]}")
    check.step(f"{len(ledger.consumed)} records read; {ledger.commits_failed} commits refused")
    for member in members:
        member.consumer.close()
    check.finish()


if __name__ == "__main__":
    main()
