#!/usr/bin/env python3
"""What transactions cost, through confluent-kafka (librdkafka): a
transactional producer against an idempotent one at the same records per
step, alternating rounds, medians; the commit call; and end-to-end latency
of read_committed against read_uncommitted consumers of the same topic.
The same measurement as `sluice-bench txn`, through another librdkafka
build (see bench/RESULTS.md for why both).

    python3 bench/peers/txn-cost.py BOOTSTRAP [RECORDS] [SECONDS] [ROUNDS]
"""
import statistics
import struct
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
RECORDS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 10
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else 0.0


def consume(topic, isolation, stop, out):
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"cost-{isolation}",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(topic, 0, -1)])  # from the end
    while not stop.is_set():
        message = consumer.poll(0.05)
        if message is not None and not message.error():
            sent = struct.unpack("<d", message.value()[:8])[0]
            out.append((time.time() - sent) * 1000)
    consumer.close()


def one_round(topic, transactional):
    settings = {"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True,
                "linger.ms": 1}
    if transactional:
        settings["transactional.id"] = f"txn-cost-{time.time()}"
    producer = Producer(settings)
    if transactional:
        producer.init_transactions(30)
    stop = threading.Event()
    e2e = {"read_committed": [], "read_uncommitted": []}
    readers = [threading.Thread(target=consume, args=(topic, iso, stop, e2e[iso])) for iso in e2e]
    for reader in readers:
        reader.start()
    time.sleep(2)
    steps, commits, sent = [], [], 0
    end = time.time() + SECONDS
    began = time.time()
    while time.time() < end:
        step = time.time()
        if transactional:
            producer.begin_transaction()
        for _ in range(RECORDS):
            producer.produce(topic, struct.pack("<d", time.time()) + b"x" * 92, partition=0)
        producer.flush(30)
        if transactional:
            committing = time.time()
            producer.commit_transaction(30)
            commits.append((time.time() - committing) * 1000)
        steps.append((time.time() - step) * 1000)
        sent += RECORDS
    rate = sent / (time.time() - began)
    time.sleep(1)
    stop.set()
    for reader in readers:
        reader.join()
    return rate, steps, commits, e2e


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topics = {False: "txn-cost-idempotent", True: "txn-cost-transactional"}
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        try:
            future.result()
        except Exception:
            pass
    rounds = {False: [], True: []}
    for number in range(ROUNDS):
        for transactional in (False, True):
            result = one_round(topics[transactional], transactional)
            rounds[transactional].append(result)
            print(f"round {number + 1} {'transactional' if transactional else 'idempotent'}: "
                  f"{result[0]:.0f} records/s, step p50 {statistics.median(result[1]):.2f} ms",
                  file=sys.stderr, flush=True)
    med = lambda rs, f: statistics.median(f(r) for r in rs)
    three = lambda rs, f: " / ".join(f"{med(rs, lambda r, p=p: pct(f(r), p)):.2f}" for p in (50, 99, 99.9))
    print(f"{RECORDS} records of 100 B per step, 1 partition, {ROUNDS} rounds of {SECONDS:.0f} s each way (medians)\n")
    print("| | records/s | step p50 / p99 / p99.9 (ms) | commit call p50 / p99 / p99.9 (ms) | e2e read_committed p50 / p99 / p99.9 (ms) | e2e read_uncommitted p50 / p99 / p99.9 (ms) |")
    print("|---|---|---|---|---|---|")
    for transactional in (False, True):
        rs = rounds[transactional]
        commit = three(rs, lambda r: r[2]) if transactional else "-"
        print(f"| {'transactional' if transactional else 'idempotent'} | {med(rs, lambda r: r[0]):.0f} | "
              f"{three(rs, lambda r: r[1])} | {commit} | {three(rs, lambda r: r[3]['read_committed'])} | "
              f"{three(rs, lambda r: r[3]['read_uncommitted'])} |")
    ratio = med(rounds[True], lambda r: r[0]) / med(rounds[False], lambda r: r[0])
    print(f"\ntransactional / idempotent records/s: {ratio:.2f}")


main()
