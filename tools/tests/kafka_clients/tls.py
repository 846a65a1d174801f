"""Kafka clients over TLS against an SSL:// listener: confluent-kafka
(librdkafka's OpenSSL) and kafka-python (Python's ssl module), two TLS
stacks other than the broker's.

    python3 tls.py BOOTSTRAP CERTS_DIR CASE [required]

CERTS_DIR holds ca.pem (the broker's CA), other-ca.pem (a CA the broker's
certificate does not chain to), client.pem and client.key (a client
certificate of ca.pem). CASE:

- trusted: both clients produce and read back over TLS;
- client-certificate: the same, presenting client.pem;
- refused: a client trusting other-ca.pem, a plaintext client, and (for a
  broker that requires client certificates, `required`) a client without
  one all fail to get metadata, and a trusted client still works after
  them.
"""
import os
import sys

from secured import (confluent_refused, confluent_round_trip, kafka_python_round_trip,
                     python_refused)

BOOTSTRAP, CERTS, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
REQUIRED = len(sys.argv) > 4 and sys.argv[4] == "required"
CA = os.path.join(CERTS, "ca.pem")
OTHER_CA = os.path.join(CERTS, "other-ca.pem")
CLIENT_CERT = os.path.join(CERTS, "client.pem")
CLIENT_KEY = os.path.join(CERTS, "client.key")


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


if CASE in ("trusted", "client-certificate"):
    certificate = CASE == "client-certificate"
    label = f"over TLS (client certificate: {certificate})"
    confluent_round_trip(confluent_settings(certificate=certificate), label)
    kafka_python_round_trip(python_settings(certificate=certificate), label)
elif CASE == "refused":
    confluent_refused(confluent_settings(ca=OTHER_CA), "an untrusted certificate")
    python_refused(python_settings(ca=OTHER_CA), "an untrusted certificate")
    confluent_refused(confluent_settings(protocol="PLAINTEXT"), "plaintext")
    if REQUIRED:
        confluent_refused(confluent_settings(), "no client certificate")
        python_refused(python_settings(), "no client certificate")
    confluent_round_trip(confluent_settings(certificate=REQUIRED), "over TLS, after the refusals")
else:
    raise SystemExit(f"unknown case {CASE}")
