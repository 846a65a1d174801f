#!/usr/bin/env python3
"""What TLS costs on the Kafka listener: a fresh `sluice serve --cores 1`
per round, in the clear (PLAINTEXT) and over TLS (SSL://, a certificate of
a CA made for the run), alternated round by round; one confluent-kafka
producer (librdkafka: its I/O and TLS in C threads) sends as fast as it
can, acks=all, records of 100 B. Per mode, the medians over the rounds of
records/s, the acknowledgement latency p50 / p99 / p99.9 (send to delivery
report), and the broker's CPU time per record (from /proc).

    python3 bench/peers/tls-cost.py SLUICE [RECORDS] [ROUNDS] [peer]

With `peer`: what mutual TLS between nodes costs instead. Each round is a
fresh `sluice cluster local --nodes 3 --cores 1`, its peer port in the
clear or over mutual TLS (`peer_ssl_*`, one certificate for the three
nodes); the topic has three replicas, so every acknowledgement waits for
replication over the peer port; the CPU is the three nodes'.

Needs the `openssl` command for the run's certificates.
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
from confluent_kafka.admin import AdminClient, NewTopic

SLUICE = sys.argv[1]
RECORDS = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PEER = len(sys.argv) > 4 and sys.argv[4] == "peer"
PORT = 18692
TICKS = os.sysconf("SC_CLK_TCK")


def certificates(dir):
    run = lambda *args: subprocess.run(args, check=True, capture_output=True, cwd=dir)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=broker")
    with open(os.path.join(dir, "san.ext"), "w") as ext:
        # A server's and a client's: the peer port's TLS is mutual.
        ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "extendedKeyUsage=serverAuth,clientAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")


def cpu_seconds(pid):
    """The CPU time of `pid` and of its children that run (the nodes
    `cluster local` started)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / TICKS
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            total += sum(cpu_seconds(int(child)) for child in children.read().split())
    except OSError:
        pass
    return total


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


def start(tls, certs, data):
    """The broker (or, with PEER, the cluster) of a round, and its client
    settings."""
    env = dict(os.environ)
    addr = f"127.0.0.1:{PORT}"
    client = {"bootstrap.servers": addr}
    if PEER:
        if tls:
            env["SLUICE_PEER_SSL_CERTIFICATE_FILE"] = os.path.join(certs, "server.pem")
            env["SLUICE_PEER_SSL_KEY_FILE"] = os.path.join(certs, "server.key")
            env["SLUICE_PEER_SSL_CA_FILE"] = os.path.join(certs, "ca.pem")
        # `cluster local` gives node 0 the Kafka port --base-port.
        command = [SLUICE, "cluster", "local", "--nodes", "3", "--cores", "1",
                   "--base-port", str(PORT), "--data-dir", data]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL), client
    if tls:
        addr = f"SSL://{addr}"
        env["SLUICE_SSL_CERTIFICATE_FILE"] = os.path.join(certs, "server.pem")
        env["SLUICE_SSL_KEY_FILE"] = os.path.join(certs, "server.key")
        client.update({"security.protocol": "SSL",
                       "ssl.ca.location": os.path.join(certs, "ca.pem")})
    broker = subprocess.Popen(
        [SLUICE, "serve", "--data-dir", data, "--kafka-addr", addr, "--native-addr",
         f"127.0.0.1:{PORT + 100}", "--admin-addr", "off", "--cores", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return broker, client


def create_topic(client):
    admin = AdminClient(client)
    replicas = 3 if PEER else 1
    deadline = time.time() + 60
    while True:
        try:
            for future in admin.create_topics([NewTopic("tls-cost", 1, replicas)]).values():
                future.result(30)
            return
        except Exception as error:  # the cluster's brokers still registering
            if "TOPIC_ALREADY_EXISTS" in str(error):
                return
            if time.time() > deadline:
                raise
            print(f"topic not created yet: {error}", file=sys.stderr, flush=True)
            time.sleep(1)


def one_round(tls, certs):
    data = tempfile.mkdtemp(prefix="tls-cost-")
    broker, client = start(tls, certs, data)
    try:
        wait_for_port(broker)
        create_topic(client)
        producer = Producer({**client, "acks": "all", "linger.ms": 5,
                             "queue.buffering.max.messages": 1_000_000})
        latencies = []
        value = b"x" * 100

        def delivered(error, _message, sent):
            if error is None:
                latencies.append(time.perf_counter() - sent)

        cpu_before = cpu_seconds(broker.pid)
        began = time.perf_counter()
        for _ in range(RECORDS):
            sent = time.perf_counter()
            while True:
                try:
                    producer.produce("tls-cost", value, partition=0,
                                     on_delivery=lambda e, m, s=sent: delivered(e, m, s))
                    break
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
        producer.flush(60)
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(broker.pid) - cpu_before
    finally:
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(data, ignore_errors=True)
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000
    return {"rate": len(latencies) / elapsed, "p50": pct(50), "p99": pct(99), "p999": pct(99.9),
            "cpu_us": cpu / max(len(latencies), 1) * 1e6}


certs = tempfile.mkdtemp(prefix="tls-cost-certs-")
certificates(certs)
results = {False: [], True: []}
for number in range(ROUNDS):
    for tls in (False, True):
        result = one_round(tls, certs)
        results[tls].append(result)
        print(f"round {number + 1} {'TLS' if tls else 'plaintext'}: {result['rate']:.0f} rec/s, "
              f"p99.9 {result['p999']:.1f} ms, {result['cpu_us']:.2f} µs CPU/record",
              file=sys.stderr, flush=True)
shutil.rmtree(certs, ignore_errors=True)
med = lambda rs, key: statistics.median(r[key] for r in rs)
what = "three replicas, 3 nodes" if PEER else "one partition"
print(f"{RECORDS} records of 100 B, acks=all, {what}, {ROUNDS} rounds alternated; medians\n")
print(f"| {'peer port' if PEER else 'listener'} | records/s | ack p50 / p99 / p99.9 (ms) | "
      f"{'nodes' if PEER else 'broker'} CPU per record (µs) |")
print("|---|---|---|---|")
for tls in (False, True):
    rs = results[tls]
    name = ("mutual TLS" if tls else "plaintext") if PEER else ("SSL" if tls else "PLAINTEXT")
    print(f"| {name} | {med(rs, 'rate'):.0f} | {med(rs, 'p50'):.1f} / "
          f"{med(rs, 'p99'):.1f} / {med(rs, 'p999'):.1f} | {med(rs, 'cpu_us'):.2f} |")
plain_cpu = med(results[False], 'cpu_us')
cpu_ratio = f"{med(results[True], 'cpu_us') / plain_cpu:.2f}x" if plain_cpu else "n/a (too short a run)"
print(f"\nTLS / plaintext records/s: {med(results[True], 'rate') / med(results[False], 'rate'):.2f}; "
      f"CPU per record: {cpu_ratio}")
