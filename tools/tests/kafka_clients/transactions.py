#!/usr/bin/env python3
"""Kafka transactions through a Python client: confluent-kafka (librdkafka)
or kafka-python, named by the first argument; the broker's Kafka address is
the second.

Each case runs on topics of its own and checks what consumers read:

- commit: a transaction's records are read by read_committed consumers;
- abort: an aborted transaction's records are read by read_uncommitted
  consumers only, and the same producer then commits another;
- offsets: a consume-transform-produce step commits its group's offsets in
  the transaction (send_offsets_to_transaction): the group's committed
  offsets move only when the transaction commits, not when it aborts;
- zombie: a second producer with the same transactional.id fences the first,
  whose commit fails and whose records no read_committed consumer reads;
- timeout: a transaction left open past transaction.timeout.ms is aborted by
  the coordinator: its records are never read committed, later records of
  other producers are, and the producer's commit fails.

Prints one line per case and exits non-zero at the first failure.
"""

import sys
import time
import uuid

CLIENT, BOOTSTRAP = sys.argv[1], sys.argv[2]
RUN = uuid.uuid4().hex[:8]
# How long a read waits for records that do not come.
IDLE_SECONDS = 3.0


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED ({CLIENT}): {what}")


class Confluent:
    def __init__(self):
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        self.ck = confluent_kafka
        self.admin = AdminClient({"bootstrap.servers": BOOTSTRAP})

    def create_topic(self, name, partitions):
        from confluent_kafka.admin import NewTopic

        for future in self.admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result()

    def producer(self, transactional_id, timeout_ms=60000):
        return ConfluentProducer(self.ck, transactional_id, timeout_ms)

    def consumer(self, group, committed):
        return self.ck.Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed" if committed else "read_uncommitted",
            }
        )

    def read(self, topic, partitions, committed):
        consumer = self.consumer(f"reader-{uuid.uuid4().hex}", committed)
        consumer.assign(
            [self.ck.TopicPartition(topic, p, self.ck.OFFSET_BEGINNING) for p in range(partitions)]
        )
        values, idle_since = [], time.time()
        while time.time() - idle_since < IDLE_SECONDS:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            values.append(message.value().decode())
            idle_since = time.time()
        consumer.close()
        return values

    def committed(self, group, topic, partitions):
        consumer = self.consumer(group, True)
        offsets = consumer.committed(
            [self.ck.TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        consumer.close()
        return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}

    def group_consumer(self, group, topic, partitions):
        consumer = self.consumer(group, True)
        consumer.assign([self.ck.TopicPartition(topic, p, 0) for p in range(partitions)])
        return consumer

    def poll_values(self, consumer, count):
        values = []
        deadline = time.time() + 30
        while len(values) < count and time.time() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                values.append((message.partition(), message.offset(), message.value().decode()))
        return values


class ConfluentProducer:
    def __init__(self, ck, transactional_id, timeout_ms):
        self.ck = ck
        self.inner = ck.Producer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "transactional.id": transactional_id,
                "transaction.timeout.ms": timeout_ms,
            }
        )

    def init(self):
        self.inner.init_transactions(30)

    def begin(self):
        self.inner.begin_transaction()

    def send(self, topic, partition, value):
        self.inner.produce(topic, value=value.encode(), partition=partition)
        self.inner.poll(0)

    def flush(self):
        self.inner.flush(30)

    def commit(self):
        self.inner.commit_transaction(30)

    def abort(self):
        self.inner.abort_transaction(30)

    def send_offsets(self, consumer, topic, offsets):
        tps = [self.ck.TopicPartition(topic, p, o) for p, o in offsets.items()]
        self.inner.send_offsets_to_transaction(tps, consumer.consumer_group_metadata(), 30)


class KafkaPython:
    def __init__(self):
        import kafka
        from kafka.admin import KafkaAdminClient

        self.kafka = kafka
        self.admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)

    def create_topic(self, name, partitions):
        from kafka.admin import NewTopic

        self.admin.create_topics([NewTopic(name, partitions, 1)])

    def producer(self, transactional_id, timeout_ms=60000):
        return KafkaPythonProducer(self.kafka, transactional_id, timeout_ms)

    def consumer(self, group, committed):
        return self.kafka.KafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if committed else "read_uncommitted",
        )

    def read(self, topic, partitions, committed):
        consumer = self.consumer(None, committed)
        tps = [self.kafka.TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        values, idle_since = [], time.time()
        while time.time() - idle_since < IDLE_SECONDS:
            for batch in consumer.poll(timeout_ms=200).values():
                for message in batch:
                    values.append(message.value.decode())
                    idle_since = time.time()
        consumer.close()
        return values

    def committed(self, group, topic, partitions):
        consumer = self.consumer(group, True)
        offsets = {}
        for p in range(partitions):
            offset = consumer.committed(self.kafka.TopicPartition(topic, p))
            if offset is not None and offset >= 0:
                offsets[p] = offset
        consumer.close()
        return offsets

    def group_consumer(self, group, topic, partitions):
        consumer = self.consumer(group, True)
        tps = [self.kafka.TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return consumer

    def poll_values(self, consumer, count):
        values = []
        deadline = time.time() + 30
        while len(values) < count and time.time() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for message in batch:
                    values.append((message.partition, message.offset, message.value.decode()))
        return values


class KafkaPythonProducer:
    def __init__(self, kafka, transactional_id, timeout_ms):
        self.kafka = kafka
        self.inner = kafka.KafkaProducer(
            bootstrap_servers=BOOTSTRAP,
            transactional_id=transactional_id,
            transaction_timeout_ms=timeout_ms,
        )

    def init(self):
        self.inner.init_transactions()

    def begin(self):
        self.inner.begin_transaction()

    def send(self, topic, partition, value):
        self.inner.send(topic, value=value.encode(), partition=partition)

    def flush(self):
        self.inner.flush(timeout=30)

    def commit(self):
        self.inner.commit_transaction()

    def abort(self):
        self.inner.abort_transaction()

    def send_offsets(self, consumer, topic, offsets):
        from kafka.structs import OffsetAndMetadata

        committed = {
            self.kafka.TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in offsets.items()
        }
        self.inner.send_offsets_to_transaction(committed, consumer.config["group_id"])


def fails(action):
    """Whether `action` raises (a fenced or aborted producer's commit)."""
    try:
        action()
    except Exception as error:  # each client has its own exception types
        return str(error) or type(error).__name__
    return None


def case_commit(client):
    topic = f"txn-commit-{RUN}"
    client.create_topic(topic, 3)
    producer = client.producer(f"commit-{RUN}")
    producer.init()
    producer.begin()
    for i in range(300):
        producer.send(topic, i % 3, f"c-{i}")
    producer.commit()
    read = client.read(topic, 3, committed=True)
    check(sorted(read) == sorted(f"c-{i}" for i in range(300)), f"commit: read {len(read)} of 300")


def case_abort(client):
    topic = f"txn-abort-{RUN}"
    client.create_topic(topic, 2)
    producer = client.producer(f"abort-{RUN}")
    producer.init()
    producer.begin()
    for i in range(100):
        producer.send(topic, i % 2, f"a-{i}")
    producer.flush()
    producer.abort()
    producer.begin()
    for i in range(50):
        producer.send(topic, i % 2, f"r-{i}")
    producer.commit()
    committed = client.read(topic, 2, committed=True)
    check(
        sorted(committed) == sorted(f"r-{i}" for i in range(50)),
        f"abort: read_committed read {len(committed)} records, "
        f"{sum(v.startswith('a-') for v in committed)} of them aborted",
    )
    uncommitted = client.read(topic, 2, committed=False)
    check(len(uncommitted) == 150, f"abort: read_uncommitted read {len(uncommitted)} of 150")


def case_offsets(client):
    source, sink, group = f"txn-in-{RUN}", f"txn-out-{RUN}", f"txn-group-{RUN}"
    client.create_topic(source, 2)
    client.create_topic(sink, 2)
    feeder = client.producer(f"feed-{RUN}")
    feeder.init()
    feeder.begin()
    for i in range(40):
        feeder.send(source, i % 2, f"in-{i}")
    feeder.commit()
    consumer = client.group_consumer(group, source, 2)
    producer = client.producer(f"transform-{RUN}")
    producer.init()
    # First the step is aborted: neither its output nor its offsets count.
    for outcome in ("abort", "commit"):
        taken = client.poll_values(consumer, 40)
        check(len(taken) == 40, f"offsets: the step read {len(taken)} of 40 inputs")
        producer.begin()
        for partition, _, value in taken:
            producer.send(sink, partition, value.replace("in-", "out-"))
        ends = {}
        for partition, offset, _ in taken:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        producer.send_offsets(consumer, source, ends)
        if outcome == "abort":
            producer.abort()
            check(
                client.committed(group, source, 2) == {},
                "offsets: an aborted transaction's offsets were committed",
            )
            consumer.close()
            consumer = client.group_consumer(group, source, 2)
        else:
            producer.commit()
    check(
        client.committed(group, source, 2) == {0: 20, 1: 20},
        f"offsets: committed {client.committed(group, source, 2)}, not 20 and 20",
    )
    out = client.read(sink, 2, committed=True)
    check(
        sorted(out) == sorted(f"out-{i}" for i in range(40)),
        f"offsets: the output holds {len(out)} records, not each of the 40 once",
    )
    consumer.close()


def case_zombie(client):
    topic = f"txn-zombie-{RUN}"
    client.create_topic(topic, 1)
    zombie = client.producer(f"zombie-{RUN}")
    zombie.init()
    zombie.begin()
    for i in range(20):
        zombie.send(topic, 0, f"z-{i}")
    zombie.flush()
    successor = client.producer(f"zombie-{RUN}")
    successor.init()
    successor.begin()
    for i in range(10):
        successor.send(topic, 0, f"s-{i}")
    successor.commit()
    check(fails(zombie.commit), "zombie: the fenced producer's commit succeeded")
    read = client.read(topic, 1, committed=True)
    check(
        sorted(read) == sorted(f"s-{i}" for i in range(10)),
        f"zombie: read_committed read {read}",
    )


def case_timeout(client):
    topic = f"txn-timeout-{RUN}"
    client.create_topic(topic, 1)
    slow = client.producer(f"slow-{RUN}", timeout_ms=2000)
    slow.init()
    slow.begin()
    for i in range(10):
        slow.send(topic, 0, f"t-{i}")
    slow.flush()
    # Past its timeout, the coordinator aborts it: the partition's last
    # stable offset moves on, so another producer's later commit is read.
    time.sleep(6)
    other = client.producer(f"other-{RUN}")
    other.init()
    other.begin()
    for i in range(5):
        other.send(topic, 0, f"o-{i}")
    other.commit()
    read = client.read(topic, 1, committed=True)
    check(
        sorted(read) == sorted(f"o-{i}" for i in range(5)),
        f"timeout: read_committed read {read}",
    )
    check(fails(slow.commit), "timeout: the timed-out producer's commit succeeded")


CLIENTS = {"confluent-kafka": Confluent, "kafka-python": KafkaPython}
CASES = [case_commit, case_abort, case_offsets, case_zombie, case_timeout]

if __name__ == "__main__":
    chosen = sys.argv[3:] or [case.__name__[5:] for case in CASES]
    client = CLIENTS[CLIENT]()
    for case in CASES:
        if case.__name__[5:] in chosen:
            started = time.time()
            case(client)
            print(f"{CLIENT} {case.__name__[5:]}: ok in {time.time() - started:.1f} s", flush=True)
