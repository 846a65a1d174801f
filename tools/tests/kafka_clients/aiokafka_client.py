"""aiokafka (asyncio) against a Sluice broker: create a topic with the admin
API, produce 10,000 keyed records with headers, read them back by assignment
(no consumer group) and compare byte for byte; list and describe the topic.

usage: aiokafka_client.py BOOTSTRAP TOPIC PARTITIONS
"""

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import records

CLIENT = "aiokafka"


async def main() -> None:
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check = records.Check(CLIENT)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT)
    await admin.start()
    check.step(f"create topic {topic} with {partitions} partitions")
    await admin.create_topics([NewTopic(topic, partitions, 1)])

    check.step("produce")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT,
        enable_idempotence=True,
        compression_type="gzip",
        linger_ms=5,
    )
    await producer.start()
    futures = []
    for index in range(records.RECORDS):
        futures.append(await producer.send(
            topic,
            key=records.key(index),
            value=records.value(index, CLIENT),
            headers=records.headers(index, CLIENT),
        ))
    delivered = {}
    results = await asyncio.gather(*futures, return_exceptions=True)
    for index, result in enumerate(results):
        if isinstance(result, BaseException):
            check.expect(False, f"record {index}: {result!r}")
        else:
            delivered[index] = (result.partition, result.offset)
    await producer.stop()

    check.step("list and describe")
    listed = await admin.list_topics()
    check.expect(topic in listed, f"{topic} not listed: {listed}")
    described = await admin.describe_topics([topic])
    check.expect(len(described) == 1, f"described {described}")
    if described:
        check.expect(len(described[0]["partitions"]) == partitions,
                     f"described {described[0]}"[:500])
    cluster = await admin.describe_cluster()
    check.expect(len(cluster["brokers"]) == 1, f"cluster {cluster}")
    await admin.close()

    check.step("consume by assignment")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    await consumer.seek_to_beginning(*assigned)
    ends = await consumer.end_offsets(assigned)
    consumed = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        positions = [await consumer.position(tp) for tp in assigned]
        if all(position >= ends[tp] for position, tp in zip(positions, assigned)):
            break
        batches = await consumer.getmany(timeout_ms=500)
        for tp, messages in batches.items():
            for message in messages:
                consumed.append((tp.partition, message.offset, message.key, message.value,
                                 list(message.headers)))
    await consumer.stop()
    check.compare(consumed, delivered)
    check.finish()


if __name__ == "__main__":
    asyncio.run(main())
