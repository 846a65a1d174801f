#!/usr/bin/env python3
"""What TLS costs on the Kafka listener: a fresh `sluice serve --cores 1`
per round, in the clear (PLAINTEXT) and over TLS (SSL://, a certificate of
a CA made for the run), alternated round by round; one confluent-kafka
producer (librdkafka: its I/O and TLS in C threads) sends as fast as it
can, acks=all, records of 100 B. Per mode, the medians over the rounds of
records/s, the acknowledgement latency p50 / p99 / p99.9 (send to delivery
report), and the broker's CPU time per record (from /proc).

    python3 bench/peers/tls-cost.py SLUICE [RECORDS] [ROUNDS]

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
PORT = 18692
TICKS = os.sysconf("SC_CLK_TCK")


def certificates(dir):
    run = lambda *args: subprocess.run(args, check=True, capture_output=True, cwd=dir)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=broker")
    with open(os.path.join(dir, "san.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")


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


def one_round(tls, certs):
    data = tempfile.mkdtemp(prefix="tls-cost-")
    env = dict(os.environ)
    addr = f"127.0.0.1:{PORT}"
    client = {"bootstrap.servers": addr}
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
    try:
        wait_for_port(broker)
        admin = AdminClient(client)
        for future in admin.create_topics([NewTopic("tls-cost", 1, 1)]).values():
            future.result(30)
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
print(f"{RECORDS} records of 100 B, acks=all, one partition, {ROUNDS} rounds alternated; medians\n")
print("| listener | records/s | ack p50 / p99 / p99.9 (ms) | broker CPU per record (µs) |")
print("|---|---|---|---|")
for tls in (False, True):
    rs = results[tls]
    print(f"| {'SSL' if tls else 'PLAINTEXT'} | {med(rs, 'rate'):.0f} | {med(rs, 'p50'):.1f} / "
          f"{med(rs, 'p99'):.1f} / {med(rs, 'p999'):.1f} | {med(rs, 'cpu_us'):.2f} |")
print(f"\nTLS / plaintext records/s: {med(results[True], 'rate') / med(results[False], 'rate'):.2f}; "
      f"CPU per record: {med(results[True], 'cpu_us') / med(results[False], 'cpu_us'):.2f}x")
