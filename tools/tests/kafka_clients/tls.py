"""Kafka clients over TLS against an SSL:// listener: confluent-kafka
(librdkafka's OpenSSL) and kafka-python (Python's ssl module), two TLS
stacks other than the broker's.

    python3 tls.py BOOTSTRAP CERTS_DIR CASE

CERTS_DIR holds ca.pem (the broker's CA), other-ca.pem (a CA the broker's
certificate does not chain to), client.pem and client.key (a client
certificate of ca.pem). CASE:

- trusted: both clients produce and read back over TLS;
- client-certificate: the same, presenting client.pem;
- refused: a client trusting other-ca.pem, a plaintext client, and (for a
  broker that requires client certificates) a client without one all fail
  to get metadata, and a trusted client still works after them.
"""
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import kafka

BOOTSTRAP, CERTS, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
CA = os.path.join(CERTS, "ca.pem")
OTHER_CA = os.path.join(CERTS, "other-ca.pem")
CLIENT_CERT = os.path.join(CERTS, "client.pem")
CLIENT_KEY = os.path.join(CERTS, "client.key")
RECORDS = 200
STARTED = time.monotonic()


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def confluent_settings(ca=CA, certificate=False, protocol="SSL"):
    settings = {"bootstrap.servers": BOOTSTRAP, "security.protocol": protocol}
    if protocol == "SSL":
        settings["ssl.ca.location"] = ca
        # The broker's certificate names 127.0.0.1 and localhost.
        settings["ssl.endpoint.identification.algorithm"] = "https"
    if certificate:
        settings["ssl.certificate.location"] = CLIENT_CERT
        settings["ssl.key.location"] = CLIENT_KEY
    return settings


def python_settings(ca=CA, certificate=False):
    settings = {"bootstrap_servers": BOOTSTRAP, "security_protocol": "SSL", "ssl_cafile": ca,
                "ssl_check_hostname": True}
    if certificate:
        settings["ssl_certfile"] = CLIENT_CERT
        settings["ssl_keyfile"] = CLIENT_KEY
    return settings


def confluent_round_trip(certificate):
    topic = f"tls-confluent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(confluent_settings(certificate=certificate))
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({**confluent_settings(certificate=certificate), "acks": "all"})
    sent = [f"confluent {index}".encode() for index in range(RECORDS)]
    failures = []
    for value in sent:
        producer.produce(topic, value, partition=0,
                         on_delivery=lambda error, _: error and failures.append(error))
    assert producer.flush(30) == 0, "records left unsent"
    assert not failures, failures
    consumer = Consumer({**confluent_settings(certificate=certificate), "group.id": topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and not message.error():
            read.append(message.value())
    consumer.close()
    assert read == sent, f"confluent-kafka read {len(read)} of {RECORDS}"
    say(f"confluent-kafka: {RECORDS} records over TLS (client certificate: {certificate})")


def kafka_python_round_trip(certificate):
    topic = f"tls-python-{uuid.uuid4().hex[:8]}"
    admin = kafka.KafkaAdminClient(**python_settings(certificate=certificate))
    admin.create_topics([kafka.admin.NewTopic(topic, 1, 1)])
    admin.close()
    producer = kafka.KafkaProducer(acks="all", **python_settings(certificate=certificate))
    sent = [f"python {index}".encode() for index in range(RECORDS)]
    for value in sent:
        producer.send(topic, value, partition=0)
    producer.flush(30)
    producer.close()
    consumer = kafka.KafkaConsumer(**python_settings(certificate=certificate),
                                   auto_offset_reset="earliest")
    consumer.assign([kafka.TopicPartition(topic, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < RECORDS and time.time() < deadline:
        for messages in consumer.poll(timeout_ms=1000).values():
            read.extend(message.value for message in messages)
    consumer.close()
    assert read == sent, f"kafka-python read {len(read)} of {RECORDS}"
    say(f"kafka-python: {RECORDS} records over TLS (client certificate: {certificate})")


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


if CASE == "trusted":
    confluent_round_trip(certificate=False)
    kafka_python_round_trip(certificate=False)
elif CASE == "client-certificate":
    confluent_round_trip(certificate=True)
    kafka_python_round_trip(certificate=True)
elif CASE == "refused":
    confluent_refused(confluent_settings(ca=OTHER_CA), "an untrusted certificate")
    python_refused(python_settings(ca=OTHER_CA), "an untrusted certificate")
    confluent_refused(confluent_settings(protocol="PLAINTEXT"), "plaintext")
    if len(sys.argv) > 4 and sys.argv[4] == "required":
        confluent_refused(confluent_settings(), "no client certificate")
        python_refused(python_settings(), "no client certificate")
        confluent_round_trip(certificate=True)
    else:
        confluent_round_trip(certificate=False)
else:
    raise SystemExit(f"unknown case {CASE}")
