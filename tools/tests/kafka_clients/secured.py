"""What tls.py and sasl.py share: a round trip of each client (create a
topic, produce RECORDS records with acks=all, read them back from
partition 0) with the client settings given, and the check that a client
is refused (no metadata). Each step prints how long into the run it
ended."""
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import kafka

RECORDS = 200
STARTED = time.monotonic()


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def confluent_round_trip(settings, label):
    topic = f"secured-confluent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({**settings, "acks": "all"})
    sent = [f"confluent {index}".encode() for index in range(RECORDS)]
    failures = []
    for value in sent:
        producer.produce(topic, value, partition=0,
                         on_delivery=lambda error, _: error and failures.append(error))
    assert producer.flush(30) == 0, "records left unsent"
    assert not failures, failures
    consumer = Consumer({**settings, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and not message.error():
            read.append(message.value())
    consumer.close()
    assert read == sent, f"confluent-kafka read {len(read)} of {RECORDS}"
    say(f"confluent-kafka: {RECORDS} records, {label}")


def kafka_python_round_trip(settings, label):
    topic = f"secured-python-{uuid.uuid4().hex[:8]}"
    admin = kafka.KafkaAdminClient(**settings)
    admin.create_topics([kafka.admin.NewTopic(topic, 1, 1)])
    admin.close()
    producer = kafka.KafkaProducer(acks="all", **settings)
    sent = [f"python {index}".encode() for index in range(RECORDS)]
    for value in sent:
        producer.send(topic, value, partition=0)
    producer.flush(30)
    producer.close()
    consumer = kafka.KafkaConsumer(**settings, auto_offset_reset="earliest")
    consumer.assign([kafka.TopicPartition(topic, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        for messages in consumer.poll(timeout_ms=1000).values():
            read.extend(message.value for message in messages)
    consumer.close()
    assert read == sent, f"kafka-python read {len(read)} of {RECORDS}"
    say(f"kafka-python: {RECORDS} records, {label}")


def confluent_refused(settings, what):
    admin = AdminClient({**settings, "socket.timeout.ms": 3000})
    try:
        admin.list_topics(timeout=5)
    except KafkaException as error:
        say(f"confluent-kafka, {what}: refused ({error})")
        return
    raise AssertionError(f"confluent-kafka, {what}: got metadata")


def python_refused(settings, what):
    try:
        # A consumer gives up its bootstrap after 3 s.
        consumer = kafka.KafkaConsumer(**settings, bootstrap_timeout_ms=3000)
        consumer.topics()
    except kafka.errors.KafkaConfigurationError:
        raise  # the test's own mistake, not a refusal
    except Exception as error:  # kafka-python raises several kinds
        say(f"kafka-python, {what}: refused ({type(error).__name__}: {error})")
        return
    raise AssertionError(f"kafka-python, {what}: got metadata")
