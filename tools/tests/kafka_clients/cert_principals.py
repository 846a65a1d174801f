"""Mutual TLS: a client certificate's subject is the principal ACLs name
(`User:CN=writer`), through confluent-kafka (librdkafka's OpenSSL).

    python3 cert_principals.py BOOTSTRAP CERTS_DIR

CERTS_DIR holds ca.pem and NAME.pem / NAME.key for admin (a super user:
User:CN=admin), writer and reader, all of ca.pem.
"""
import os
import sys
import time
import uuid

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

BOOTSTRAP, CERTS = sys.argv[1], sys.argv[2]
STARTED = time.monotonic()


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def settings(name):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SSL",
            "ssl.ca.location": os.path.join(CERTS, "ca.pem"),
            "ssl.certificate.location": os.path.join(CERTS, f"{name}.pem"),
            "ssl.key.location": os.path.join(CERTS, f"{name}.key")}


def produce(name, topic):
    producer = Producer({**settings(name), "acks": "all", "message.timeout.ms": 10000})
    errors = []
    producer.produce(topic, b"signed", partition=0,
                     on_delivery=lambda error, _: error and errors.append(error.code()))
    producer.flush(20)
    return errors


topic = f"certified-{uuid.uuid4().hex[:6]}"
admin = AdminClient(settings("admin"))
for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
    future.result(30)
for future in admin.create_acls([AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:CN=writer", "*",
        AclOperation.WRITE, AclPermissionType.ALLOW)]).values():
    future.result(30)
say("admin (User:CN=admin, a super user by its certificate) granted User:CN=writer WRITE")
assert produce("writer", topic) == [], "the writer's certificate"
say("writer's certificate: produce served")
assert produce("reader", topic) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
say("reader's certificate: produce refused TOPIC_AUTHORIZATION_FAILED")
