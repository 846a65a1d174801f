"""kafka-python's idempotent acks=all producer writing to partition 0 of a
replicated topic for a while, one record every 2 ms, while the test kills
the partition's leader: prints the outcome of every record, for the test to
read every acknowledged one back.

usage: kafka_python_failover.py BOOTSTRAP TOPIC SECONDS

Output, one line each: `ack INDEX PARTITION OFFSET` for a record the broker
acknowledged, `err INDEX ERROR` for one the producer gave up on, and at the
end `sent COUNT`. Record INDEX has the value `v<INDEX>`.
"""

import sys
import time

from kafka import KafkaProducer

CLIENT = "kafka-python-failover"
SEND_INTERVAL_S = 0.002
FLUSH_TIMEOUT_S = 90


def main() -> None:
    bootstrap, topic, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id=CLIENT,
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        # The leader's loss is noticed by the failed request; metadata is
        # asked again at once after it, and often besides.
        metadata_max_age_ms=1000,
        request_timeout_ms=10000,
        delivery_timeout_ms=60000,
        retry_backoff_ms=100,
    )
    futures = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        futures.append(producer.send(topic, partition=0, value=f"v{len(futures)}".encode()))
        time.sleep(SEND_INTERVAL_S)
    producer.flush(timeout=FLUSH_TIMEOUT_S)
    for index, future in enumerate(futures):
        if not future.is_done:
            print(f"err {index} not done after the flush", flush=False)
            continue
        if future.succeeded():
            metadata = future.value
            print(f"ack {index} {metadata.partition} {metadata.offset}")
        else:
            print(f"err {index} {future.exception!r}")
    print(f"sent {len(futures)}", flush=True)
    producer.close(timeout=10)


if __name__ == "__main__":
    main()
