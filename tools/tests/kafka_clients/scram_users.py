"""SCRAM credentials kept in the cluster's metadata, through confluent-kafka
(librdkafka): admin (a super user of the users file) creates carol's
SCRAM-SHA-512 credential with AlterUserScramCredentials; carol then
authenticates with it, DescribeUserScramCredentials lists it, a new
password replaces the old one, and once deleted carol is refused. The
broker's SASL_PLAINTEXT listener is BOOTSTRAP.

    python3 scram_users.py BOOTSTRAP [CASE]

CASE `after-restart` checks what the first run left, after the broker
restarted: carol's second password still works.
"""
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

from secured import confluent_refused, confluent_round_trip

BOOTSTRAP = sys.argv[1]
CASE = sys.argv[2] if len(sys.argv) > 2 else "all"
STARTED = time.monotonic()


def say(text):
    print(f"{time.monotonic() - STARTED:6.1f} s  {text}", flush=True)


def settings(user, password, mechanism="SCRAM-SHA-512"):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}


admin = AdminClient(settings("admin", "admin-secret", "PLAIN"))


def alter(alterations):
    for future in admin.alter_user_scram_credentials(alterations).values():
        future.result(30)


if CASE == "after-restart":
    confluent_round_trip(settings("carol", "carol-second"), "as carol, after a restart")
    raise SystemExit(0)

confluent_refused(settings("carol", "carol-first"), "carol before her credential exists")
alter([UserScramCredentialUpsertion(
    "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-first")])
say("admin stored carol's SCRAM-SHA-512 credential (8192 iterations)")
confluent_round_trip(settings("carol", "carol-first"), "as carol (a credential in the metadata)")
confluent_refused(settings("carol", "carol-first", "SCRAM-SHA-256"),
                  "carol with SCRAM-SHA-256, which she has no credential for")

described = admin.describe_user_scram_credentials(["carol"])["carol"].result(30)
infos = [(info.mechanism, info.iterations) for info in described.scram_credential_infos]
assert infos == [(ScramMechanism.SCRAM_SHA_512, 8192)], infos
everyone = admin.describe_user_scram_credentials().result(30)
assert "carol" in everyone, everyone
try:
    admin.describe_user_scram_credentials(["nobody"])["nobody"].result(30)
    raise AssertionError("a user without credentials described")
except KafkaException as error:
    assert "RESOURCE_NOT_FOUND" in str(error) or "no SCRAM" in str(error), error
say("DescribeUserScramCredentials: carol's mechanism and iterations; nobody is not found")

alter([UserScramCredentialUpsertion(
    "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"carol-second")])
confluent_refused(settings("carol", "carol-first"), "carol's old password")
confluent_round_trip(settings("carol", "carol-second"), "as carol, with her new password")

try:
    alter([UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"dave")])
    raise AssertionError("100 iterations accepted")
except KafkaException as error:
    assert "UNACCEPTABLE_CREDENTIAL" in str(error) or "iterations" in str(error), error
say("100 iterations refused (UNACCEPTABLE_CREDENTIAL)")

# Alice (not a super user) may not alter credentials.
alice = AdminClient(settings("alice", "alice-secret", "PLAIN"))
try:
    for future in alice.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
            b"x")]).values():
        future.result(30)
    raise AssertionError("alice altered a credential")
except KafkaException as error:
    assert "CLUSTER_AUTHORIZATION_FAILED" in str(error) or "uthoriz" in str(error), error
say("alice may not alter credentials (CLUSTER_AUTHORIZATION_FAILED)")

alter([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)])
confluent_refused(settings("carol", "carol-second"), "carol once deleted")
alter([UserScramCredentialUpsertion(
    "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"carol-second")])
say("carol deleted, refused, then stored again for the restart")
