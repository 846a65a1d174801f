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

from secured import (confluent_refused, confluent_round_trip, kafka_python_round_trip,
                     python_refused)

BOOTSTRAP, CASE = sys.argv[1], sys.argv[2]
CA = sys.argv[3] if len(sys.argv) > 3 else None
MECHANISM = os.environ.get("SASL_MECHANISM", "PLAIN")


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


LABEL = f"as alice ({MECHANISM})"
if CASE == "plain":
    confluent_round_trip(confluent_settings(), LABEL)
    kafka_python_round_trip(python_settings(), LABEL)
elif CASE == "refused":
    confluent_refused(confluent_settings(password="wrong"), "a wrong password")
    python_refused(python_settings(password="wrong"), "a wrong password")
    confluent_refused(confluent_settings(user="mallory"), "an unknown user")
    confluent_refused(confluent_settings(sasl=False), "no SASL")
    confluent_round_trip(confluent_settings(), f"{LABEL}, after the refusals")
else:
    raise SystemExit(f"unknown case {CASE}")
