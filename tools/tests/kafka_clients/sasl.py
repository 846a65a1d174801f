"""Kafka clients authenticating with SASL: confluent-kafka (librdkafka)
and kafka-python, with the mechanism of SASL_MECHANISM in the
environment (PLAIN unless given; SCRAM-SHA-256, SCRAM-SHA-512).

    python3 sasl.py BOOTSTRAP CASE [CA]

With CA (the PEM file of the broker certificate's authority) the listener
is SASL_SSL, else SASL_PLAINTEXT. The broker's users file holds
alice:alice-secret. CASE:

- plain: both clients, as alice, produce and read back;
- refused: a wrong password, an unknown user and a client without SASL
  are refused (no metadata), and alice still works after them.
"""
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import kafka

BOOTSTRAP, CASE = sys.argv[1], sys.argv[2]
CA = sys.argv[3] if len(sys.argv) > 3 else None
RECORDS = 200
MECHANISM = os.environ.get("SASL_MECHANISM", "PLAIN")
STARTED = time.monotonic()


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def confluent_settings(user="alice", password="alice-secret", sasl=True):
    settings = {"bootstrap.servers": BOOTSTRAP}
    if sasl:
        settings.update({"security.protocol": "SASL_SSL" if CA else "SASL_PLAINTEXT",
                         "sasl.mechanisms": MECHANISM, "sasl.username": user,
                         "sasl.password": password})
    elif CA:
        settings["security.protocol"] = "SSL"
    if CA:
        settings["ssl.ca.location"] = CA
    return settings


def python_settings(user="alice", password="alice-secret"):
    settings = {"bootstrap_servers": BOOTSTRAP,
                "security_protocol": "SASL_SSL" if CA else "SASL_PLAINTEXT",
                "sasl_mechanism": MECHANISM, "sasl_plain_username": user,
                "sasl_plain_password": password}
    if CA:
        settings["ssl_cafile"] = CA
    return settings


def confluent_round_trip():
    topic = f"sasl-confluent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(confluent_settings())
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({**confluent_settings(), "acks": "all"})
    sent = [f"confluent {index}".encode() for index in range(RECORDS)]
    for value in sent:
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0, "records left unsent"
    consumer = Consumer({**confluent_settings(), "group.id": topic,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and not message.error():
            read.append(message.value())
    consumer.close()
    assert read == sent, f"confluent-kafka read {len(read)} of {RECORDS}"
    say(f"confluent-kafka: {RECORDS} records as alice ({MECHANISM})")


def kafka_python_round_trip():
    topic = f"sasl-python-{uuid.uuid4().hex[:8]}"
    admin = kafka.KafkaAdminClient(**python_settings())
    admin.create_topics([kafka.admin.NewTopic(topic, 1, 1)])
    admin.close()
    producer = kafka.KafkaProducer(acks="all", **python_settings())
    sent = [f"python {index}".encode() for index in range(RECORDS)]
    for value in sent:
        producer.send(topic, value, partition=0)
    producer.flush(30)
    producer.close()
    consumer = kafka.KafkaConsumer(**python_settings(), auto_offset_reset="earliest")
    consumer.assign([kafka.TopicPartition(topic, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        for messages in consumer.poll(timeout_ms=1000).values():
            read.extend(message.value for message in messages)
    consumer.close()
    assert read == sent, f"kafka-python read {len(read)} of {RECORDS}"
    say(f"kafka-python: {RECORDS} records as alice ({MECHANISM})")


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
        consumer = kafka.KafkaConsumer(**settings, bootstrap_timeout_ms=3000)
        consumer.topics()
    except kafka.errors.KafkaConfigurationError:
        raise
    except Exception as error:
        say(f"kafka-python, {what}: refused ({type(error).__name__}: {error})")
        return
    raise AssertionError(f"kafka-python, {what}: got metadata")


if CASE == "plain":
    confluent_round_trip()
    kafka_python_round_trip()
elif CASE == "refused":
    confluent_refused(confluent_settings(password="wrong"), "a wrong password")
    python_refused(python_settings(password="wrong"), "a wrong password")
    confluent_refused(confluent_settings(user="mallory"), "an unknown user")
    confluent_refused(confluent_settings(sasl=False), "no SASL")
    confluent_round_trip()
else:
    raise SystemExit(f"unknown case {CASE}")
