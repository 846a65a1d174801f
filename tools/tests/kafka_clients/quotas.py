"""Client quotas as a librdkafka producer meets them (confluent-kafka).

    python3 quotas.py BOOTSTRAP TOPIC flood CLIENT_ID SECONDS [SETTLE]
        sends 1 KiB records as fast as the broker lets it for SECONDS, and
        prints `rate BYTES_PER_S`: the bytes acknowledged after SETTLE
        seconds (default 0) over the time from then. (A quota lets a new
        client burst a window's worth first, as Kafka's does; SETTLE leaves
        that out and measures the rate it is held to.)
    python3 quotas.py BOOTSTRAP TOPIC probe CLIENT_ID SECONDS
        sends one record every 10 ms, each awaited, for SECONDS, and prints
        `p99 MS` of the acknowledgements
"""
import sys
import time

from confluent_kafka import Producer

BOOTSTRAP, TOPIC, MODE, CLIENT_ID, SECONDS = sys.argv[1:6]
SECONDS = float(SECONDS)
SETTLE = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0

if MODE == "flood":
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": CLIENT_ID, "acks": "1",
                         "linger.ms": 5, "batch.size": 16384,
                         "queue.buffering.max.kbytes": 256})
    acknowledged = [0]
    started = time.monotonic()

    def delivered(error, message):
        if error is None and time.monotonic() - started >= SETTLE:
            acknowledged[0] += len(message.value())

    value = b"q" * 1024
    while time.monotonic() - started < SECONDS:
        try:
            producer.produce(TOPIC, value, partition=0, on_delivery=delivered)
        except BufferError:
            producer.poll(0.01)
            continue
        producer.poll(0)
    # What is acknowledged by the deadline counts; the rest is dropped.
    producer.poll(0)
    elapsed = time.monotonic() - started - SETTLE
    print(f"rate {acknowledged[0] / elapsed:.0f}", flush=True)
    producer.purge()
elif MODE == "probe":
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": CLIENT_ID, "acks": "all",
                         "linger.ms": 0})
    latencies = []
    started = time.monotonic()
    while time.monotonic() - started < SECONDS:
        sent = time.monotonic()
        producer.produce(TOPIC, b"probe", partition=0)
        producer.flush(10)
        latencies.append((time.monotonic() - sent) * 1000)
        time.sleep(0.01)
    latencies.sort()
    print(f"p99 {latencies[int(len(latencies) * 0.99)]:.2f} n={len(latencies)}", flush=True)
else:
    raise SystemExit(f"unknown mode {MODE}")
