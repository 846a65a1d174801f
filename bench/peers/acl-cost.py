#!/usr/bin/env python3
"""What the ACL authorizer costs on the produce path: a fresh `sluice serve
--cores 1` per round on a SASL_PLAINTEXT listener, without an authorizer
and with `authorizer = "acl"` holding BINDINGS bindings (alice's WRITE on
the topic among bindings of other users and topics, literal and
prefixed), alternated round by round. alice's confluent-kafka producer
sends one record per request (batch.num.messages=1), acks=1, so that the
broker's work per request is what is measured. Per mode, the medians over
the rounds of requests/s, the acknowledgement latency p50 / p99 / p99.9,
and the broker's CPU time per request (from /proc).

    python3 bench/peers/acl-cost.py SLUICE [REQUESTS] [ROUNDS] [BINDINGS]
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

SLUICE = sys.argv[1]
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BINDINGS = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
PORT = 18792
TICKS = os.sysconf("SC_CLK_TCK")
TOPIC = "acl-cost"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_for_port(process):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the broker exited: {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the broker did not listen")


def client(user):
    return {"bootstrap.servers": f"127.0.0.1:{PORT}", "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-pw"}


def bindings():
    """alice's WRITE on the topic, and BINDINGS - 1 others."""
    made = [AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, "User:alice",
                       "*", AclOperation.WRITE, AclPermissionType.ALLOW)]
    for number in range(BINDINGS - 1):
        pattern = ResourcePatternType.PREFIXED if number % 4 == 0 else ResourcePatternType.LITERAL
        made.append(AclBinding(ResourceType.TOPIC, f"topic-{number}", pattern,
                               f"User:user-{number % 50}", "*", AclOperation.READ,
                               AclPermissionType.ALLOW))
    return made


def one_round(acl, home):
    data = tempfile.mkdtemp(prefix="acl-cost-")
    env = dict(os.environ, SLUICE_SASL_PLAIN_USERS_FILE=os.path.join(home, "users"))
    if acl:
        env.update(SLUICE_AUTHORIZER="acl", SLUICE_SUPER_USERS="User:admin")
    broker = subprocess.Popen(
        [SLUICE, "serve", "--data-dir", data, "--kafka-addr",
         f"SASL_PLAINTEXT://127.0.0.1:{PORT}", "--native-addr", f"127.0.0.1:{PORT + 100}",
         "--admin-addr", "off", "--cores", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(broker)
        admin = AdminClient(client("admin"))
        for future in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
            future.result(30)
        if acl:
            made = bindings()
            for start in range(0, len(made), 500):
                for future in admin.create_acls(made[start:start + 500]).values():
                    future.result(60)
        producer = Producer({**client("alice"), "acks": "1", "linger.ms": 0,
                             "batch.num.messages": 1, "enable.idempotence": False,
                             "queue.buffering.max.messages": 1_000_000})
        latencies = []
        value = b"x" * 100

        def delivered(error, _message, sent):
            if error is None:
                latencies.append(time.perf_counter() - sent)

        cpu_before = cpu_seconds(broker.pid)
        began = time.perf_counter()
        for _ in range(REQUESTS):
            sent = time.perf_counter()
            while True:
                try:
                    producer.produce(TOPIC, value, partition=0,
                                     on_delivery=lambda e, m, s=sent: delivered(e, m, s))
                    break
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
        producer.flush(120)
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(broker.pid) - cpu_before
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(data, ignore_errors=True)
    if len(latencies) != REQUESTS:
        raise SystemExit(f"{len(latencies)} of {REQUESTS} delivered")
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000
    return {"rate": len(latencies) / elapsed, "p50": pct(50), "p99": pct(99), "p999": pct(99.9),
            "cpu_us": cpu / len(latencies) * 1e6}


home = tempfile.mkdtemp(prefix="acl-cost-home-")
with open(os.path.join(home, "users"), "w") as users:
    users.write("admin:admin-pw\nalice:alice-pw\n")
results = {False: [], True: []}
for number in range(ROUNDS):
    for acl in (False, True):
        result = one_round(acl, home)
        results[acl].append(result)
        print(f"round {number + 1} {'ACLs' if acl else 'no authorizer'}: "
              f"{result['rate']:.0f} req/s, p99.9 {result['p999']:.1f} ms, "
              f"{result['cpu_us']:.2f} µs CPU/request", file=sys.stderr, flush=True)
shutil.rmtree(home, ignore_errors=True)
med = lambda rs, key: statistics.median(r[key] for r in rs)
print(f"{REQUESTS} produce requests of one 100 B record, acks=1, one partition, "
      f"{ROUNDS} rounds alternated, {BINDINGS} bindings with the authorizer; medians\n")
print("| broker | requests/s | ack p50 / p99 / p99.9 (ms) | broker CPU per request (µs) |")
print("|---|---|---|---|")
for acl in (False, True):
    rs = results[acl]
    print(f"| {'authorizer, ' + str(BINDINGS) + ' bindings' if acl else 'no authorizer'} | "
          f"{med(rs, 'rate'):.0f} | {med(rs, 'p50'):.1f} / {med(rs, 'p99'):.1f} / "
          f"{med(rs, 'p999'):.1f} | {med(rs, 'cpu_us'):.2f} |")
print(f"\nwith / without the authorizer, requests/s: "
      f"{med(results[True], 'rate') / med(results[False], 'rate'):.2f}; CPU per request: "
      f"{med(results[True], 'cpu_us') / med(results[False], 'cpu_us'):.2f}x")
