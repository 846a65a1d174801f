"""confluent-kafka (librdkafka) against a Sluice broker: create a topic with
the admin API, produce 10,000 keyed records with headers, read them back by
assignment (no consumer group) and compare byte for byte; list, describe
and configure the topic; offsets by spec.

usage: confluent_kafka_client.py BOOTSTRAP TOPIC PARTITIONS
"""

import sys
import time

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
    OFFSET_BEGINNING,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

import records

CLIENT = "confluent-kafka"
TIMEOUT = 30


def main() -> None:
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check = records.Check(CLIENT)
    common = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}

    admin = AdminClient(dict(common))
    check.step(f"create topic {topic} with {partitions} partitions")
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1,
                  config={"retention.ms": "3600000"})],
        operation_timeout=TIMEOUT,
    )
    futures[topic].result(TIMEOUT)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(TIMEOUT)
        check.expect(False, "creating an existing topic succeeded")
    except KafkaException as error:
        check.expect(
            error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS,
            f"creating an existing topic: {error}",
        )

    check.step("produce")
    producer = Producer(dict(common, **{
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 60000,
    }))
    delivered = {}
    errors = []

    def on_delivery(error, message, index):
        if error is not None:
            errors.append((index, str(error)))
        else:
            delivered[index] = (message.partition(), message.offset())

    for index in range(records.RECORDS):
        while True:
            try:
                producer.produce(
                    topic,
                    key=records.key(index),
                    value=records.value(index, CLIENT),
                    headers=records.headers(index, CLIENT),
                    on_delivery=lambda error, message, index=index: on_delivery(error, message, index),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(120)
    check.expect(remaining == 0, f"{remaining} records not delivered")
    check.expect(not errors, f"{len(errors)} deliveries failed, first {errors[:3]}")
    check.expect(len(delivered) == records.RECORDS, f"{len(delivered)} deliveries reported")

    check.step("list and describe")
    metadata = admin.list_topics(timeout=TIMEOUT)
    check.expect(topic in metadata.topics, f"{topic} not listed: {sorted(metadata.topics)}")
    if topic in metadata.topics:
        listed = metadata.topics[topic]
        check.expect(listed.error is None, f"{topic}: {listed.error}")
        check.expect(sorted(listed.partitions) == list(range(partitions)),
                     f"partitions {sorted(listed.partitions)}")
    check.expect(len(metadata.brokers) == 1, f"brokers {metadata.brokers}")
    described = admin.describe_topics(TopicCollection([topic]))[topic].result(TIMEOUT)
    check.expect(described.name == topic, f"described {described.name}")
    check.expect(len(described.partitions) == partitions,
                 f"described {len(described.partitions)} partitions")
    cluster = admin.describe_cluster().result(TIMEOUT)
    check.expect(len(cluster.nodes) == 1, f"cluster nodes {cluster.nodes}")
    check.expect(bool(cluster.cluster_id), f"cluster id {cluster.cluster_id!r}")

    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    retention = configs.get("retention.ms")
    check.expect(retention is not None and retention.value == "3600000",
                 f"retention.ms at creation: {retention}")
    change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(TIMEOUT)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    retention = configs.get("retention.ms")
    check.expect(retention is not None and retention.value == "7200000",
                 f"retention.ms after an incremental alter: {retention}")

    check.step("offsets")
    per_partition = {}
    for partition, offset in delivered.values():
        per_partition[partition] = per_partition.get(partition, 0) + 1
    specs = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
    latest = admin.list_offsets(specs).items()
    for partition_spec, future in latest:
        answer = future.result(TIMEOUT)
        expected = per_partition.get(partition_spec.partition, 0)
        check.expect(answer.offset == expected,
                     f"latest of {partition_spec.partition}: {answer.offset}, {expected} produced")
    specs = {TopicPartition(topic, p): OffsetSpec.earliest() for p in range(partitions)}
    for partition_spec, future in admin.list_offsets(specs).items():
        check.expect(future.result(TIMEOUT).offset == 0,
                     f"earliest of {partition_spec.partition}")
    specs = {TopicPartition(topic, p): OffsetSpec.max_timestamp() for p in range(partitions)}
    for partition_spec, future in admin.list_offsets(specs).items():
        answer = future.result(TIMEOUT)
        if per_partition.get(partition_spec.partition, 0):
            check.expect(0 <= answer.offset < per_partition[partition_spec.partition],
                         f"max timestamp of {partition_spec.partition}: {answer.offset}")

    check.step("consume by assignment")
    consumer = Consumer(dict(common, **{
        "group.id": "confluent-kafka-assign",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    consumed = []
    ended = set()
    idle = 0
    while len(ended) < partitions and idle < 300:
        message = consumer.poll(0.2)
        if message is None:
            idle += 1
            continue
        idle = 0
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                ended.add(message.partition())
                continue
            check.expect(False, f"consumer error {message.error()}")
            break
        consumed.append((message.partition(), message.offset(), message.key(),
                         message.value(), [(n, v) for n, v in (message.headers() or [])]))
    check.expect(len(ended) == partitions, f"partitions read to their end: {sorted(ended)}")
    consumer.close()
    check.compare(consumed, delivered)

    check.step("grow")
    admin.create_partitions([NewPartitions(topic, partitions + 2)])[topic].result(TIMEOUT)
    # Kafka's brokers learn of new partitions from the metadata log a moment
    # after the call returns: ask again until they show, for a while.
    deadline = time.monotonic() + TIMEOUT
    while True:
        grown = admin.list_topics(topic, timeout=TIMEOUT).topics[topic]
        if len(grown.partitions) == partitions + 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check.expect(len(grown.partitions) == partitions + 2, f"grown to {len(grown.partitions)}")
    check.finish()


if __name__ == "__main__":
    main()
