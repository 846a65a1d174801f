"""kafka-python (pure Python) consumer groups against a Sluice broker,
classic protocol: three consumers share a 12-partition topic, no partition
owned by two at once; one leaves (close()) and its partitions move to the
two others within the session timeout; every record is read at least once,
and a partition newly assigned starts exactly at its committed offset.

usage: kafka_python_groups.py BOOTSTRAP TOPIC STRATEGY
STRATEGY: "default" (kafka-python's range, roundrobin) or "cooperative-sticky"
"""

import sys
import threading
import time

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

import group_ledger
import records
from group_ledger import Ledger

CLIENT = "kafka-python-groups"
PARTITIONS = 12
RECORDS_PER_PHASE = 1200
SESSION_TIMEOUT_MS = 6000
# Far above what a healthy broker needs (Kafka delays a new group's first
# rebalance by 3 s).
SETTLE_S = 30
COMMIT_RECORDS = 50
COMMIT_INTERVAL_S = 0.25
# Each member polls on its own thread, as separate processes would: a
# kafka-python JoinGroup waits inside poll() for the other members, who
# must be polling meanwhile. What the members own, and the ledger, change
# under this lock only, so the main thread sees consistent states.
LOCK = threading.Lock()


class Member(ConsumerRebalanceListener):
    """A consumer of the group and what its rebalance listener said."""

    def __init__(self, name, bootstrap, group, strategy, topic, check):
        self.name = name
        self.check = check
        # partition -> last offset read since assigned (None: nothing yet)
        self.owned = {}
        self.callbacks = []
        self.since_commit = 0
        self.last_commit = time.monotonic()
        settings = dict(
            bootstrap_servers=bootstrap,
            client_id=name,
            group_id=group,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        if strategy != "default":
            settings["partition_assignment_strategy"] = (CooperativeStickyAssignor,)
        self.consumer = KafkaConsumer(**settings)
        self.consumer.subscribe([topic], listener=self)

    def on_partitions_assigned(self, assigned):
        with LOCK:
            self._assigned(assigned)

    def _assigned(self, assigned):
        self.callbacks.append(("assign", sorted(p.partition for p in assigned)))
        for p in assigned:
            self.check.expect(p.partition not in self.owned,
                              f"{self.name}: partition {p.partition} assigned while owned")
            self.owned[p.partition] = None

    def on_partitions_revoked(self, revoked):
        with LOCK:
            self.callbacks.append(("revoke", sorted(p.partition for p in revoked)))
            for p in revoked:
                self.owned.pop(p.partition, None)

    def start(self, ledger):
        self.running = True
        self.thread = threading.Thread(target=self.run, args=(ledger,), daemon=True)
        self.thread.start()

    def run(self, ledger):
        while self.running:
            poll(self, ledger, self.check)
            maybe_commit(self, ledger)

    def stop(self):
        self.running = False
        self.thread.join(30)

    def on_partitions_lost(self, lost):
        self.on_partitions_revoked(lost)

    def report(self):
        return f"{self.name}: owns {sorted(self.owned)}; callbacks {self.callbacks}"


def poll(member, ledger, check):
    batches = member.consumer.poll(timeout_ms=50, max_records=500)
    with LOCK:
        take(member, ledger, check, [m for batch in batches.values() for m in batch])


def take(member, ledger, check, messages):
    for message in messages:
        ledger.read(member, check, message.partition, message.offset)


def maybe_commit(member, ledger, force=False):
    if not Ledger.commit_due(member, force, COMMIT_RECORDS, COMMIT_INTERVAL_S):
        return
    with LOCK:
        positions = [(p, last + 1) for p, last in member.owned.items() if last is not None]
    if not positions:
        return
    try:
        member.consumer.commit({TopicPartition(ledger.topic, p): OffsetAndMetadata(o, "", -1)
                                for p, o in positions})
    except KafkaError:
        # Refused during a rebalance: Kafka's behaviour.
        ledger.commits_failed += 1
        return
    with LOCK:
        ledger.committed_at(positions)


def round_(members, ledger, check):
    time.sleep(0.01)
    with LOCK:
        owners = {}
        for member in members:
            for p in member.owned:
                check.expect(p not in owners, f"partition {p} owned by {owners.get(p)} and {member.name}")
                owners[p] = member.name


def spread_evenly(members, each):
    with LOCK:
        return spread_evenly_locked(members, each)


def spread_evenly_locked(members, each):
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


def produce(bootstrap, topic, phase):
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=CLIENT, acks="all")
    futures = [
        producer.send(topic, key=f"key-{phase}-{index}".encode(), value=f"value-{phase}-{index}".encode())
        for index in range(RECORDS_PER_PHASE)
    ]
    producer.flush(60)
    placed = {(meta.partition, meta.offset) for meta in (f.get(timeout=60) for f in futures)}
    producer.close()
    assert len(placed) == RECORDS_PER_PHASE, f"{len(placed)} placed"
    return placed


def main() -> None:
    bootstrap, topic, strategy = sys.argv[1], sys.argv[2], sys.argv[3]
    check = records.Check(CLIENT)
    group = f"group-{topic}"

    check.step(f"create topic {topic} with {PARTITIONS} partitions")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=30_000)
    admin.close()
    expected = produce(bootstrap, topic, 0)

    check.step(f"three members, assignment strategy {strategy}")
    ledger = Ledger(topic)
    members = [Member(f"{CLIENT}-{i}", bootstrap, group, strategy, topic, check) for i in range(3)]
    for member in members:
        member.start(ledger)
    settle(members, ledger, check, 4, "three members")
    deadline = time.monotonic() + SETTLE_S
    while len(ledger.consumed) < RECORDS_PER_PHASE // 2 and time.monotonic() < deadline:
        round_(members, ledger, check)

    leaver = members.pop(0)
    check.step(f"{leaver.name} leaves with {sorted(leaver.owned)}")
    leaving = time.monotonic()
    leaver.stop()
    leaver.consumer.close()
    moved = settle(members, ledger, check, 6, "after a member left")
    took = moved - leaving
    check.step(f"its partitions moved in {took:.2f} s")
    check.expect(took < SESSION_TIMEOUT_MS / 1000,
                 f"partitions moved after {took:.2f} s, not within the session timeout")

    expected |= produce(bootstrap, topic, 1)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        round_(members, ledger, check)
        with LOCK:
            if expected <= ledger.consumed:
                break
    with LOCK:
        missing = expected - ledger.consumed
    check.expect(not missing, f"{len(missing)} records never read, e.g. {sorted(missing)[:5]}")
    for member in members:
        member.stop()
        maybe_commit(member, ledger, force=True)
    for partition, offset in sorted(ledger.committed.items()):
        answered = members[0].consumer.committed(TopicPartition(topic, partition), timeout_ms=30_000)
        check.expect(answered == offset,
                     f"committed offset of {partition}: {answered}, expected {offset}")
    check.step(f"{len(ledger.consumed)} records read; {ledger.commits_failed} commits refused")
    for member in members:
        member.consumer.close()
    check.finish()


if __name__ == "__main__":
    main()
