"""kafka-python (pure Python) against a Sluice broker: create a topic with
the admin API, produce 10,000 keyed records with headers, read them back by
assignment (no consumer group) and compare byte for byte; list and describe
the topic.

usage: kafka_python_client.py BOOTSTRAP TOPIC PARTITIONS
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

import records

CLIENT = "kafka-python"
TIMEOUT_S = 30


def main() -> None:
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check = records.Check(CLIENT)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT)
    check.step(f"create topic {topic} with {partitions} partitions")
    admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"retention.ms": "3600000"})],
                        timeout_ms=TIMEOUT_S * 1000)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=TIMEOUT_S * 1000)
        check.expect(False, "creating an existing topic succeeded")
    except TopicAlreadyExistsError:
        pass

    check.step("produce")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT,
        acks="all",
        compression_type="gzip",
        linger_ms=5,
    )
    futures = []
    for index in range(records.RECORDS):
        futures.append(producer.send(
            topic,
            key=records.key(index),
            value=records.value(index, CLIENT),
            headers=records.headers(index, CLIENT),
        ))
    producer.flush(timeout=120)
    delivered = {}
    for index, future in enumerate(futures):
        try:
            metadata = future.get(timeout=TIMEOUT_S)
            delivered[index] = (metadata.partition, metadata.offset)
        except Exception as error:  # any failure is reported, the rest checked
            check.expect(False, f"record {index}: {error!r}")
            if len(check.failures) > 5:
                break
    producer.close()

    check.step("list and describe")
    listed = admin.list_topics()
    check.expect(topic in listed, f"{topic} not listed: {listed}")
    described = admin.describe_topics([topic])
    check.expect(len(described) == 1, f"described {described}")
    if described:
        check.expect(described[0].get("error_code", 0) == 0, f"described {described[0]}")
        check.expect(len(described[0]["partitions"]) == partitions,
                     f"described {len(described[0]['partitions'])} partitions")
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    check.expect("3600000" in repr(configs), f"retention.ms not in {configs!r}"[:500])
    admin.close()

    check.step("consume by assignment")
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    ends = consumer.end_offsets(assigned)
    per_partition = {}
    for partition, _ in delivered.values():
        per_partition[partition] = per_partition.get(partition, 0) + 1
    for assignment, end in ends.items():
        check.expect(end == per_partition.get(assignment.partition, 0),
                     f"end offset of {assignment.partition}: {end}")
    consumed = []
    deadline = time.monotonic() + 120
    while any(consumer.position(tp) < ends[tp] for tp in assigned) and time.monotonic() < deadline:
        for tp, messages in consumer.poll(timeout_ms=500).items():
            for message in messages:
                consumed.append((tp.partition, message.offset, message.key, message.value,
                                 list(message.headers)))
    consumer.close()
    check.compare(consumed, delivered)
    check.finish()


if __name__ == "__main__":
    main()
