"""Whether a user can log in with SCRAM, as confluent-kafka (librdkafka)
does: an admin client on the SASL_PLAINTEXT listener BOOTSTRAP asks for
the cluster's metadata.

    python3 scram_login.py BOOTSTRAP USER PASSWORD MECHANISM

Exits 0 once the metadata is answered; 1, saying why on standard error,
once librdkafka reports the authentication refused, or if no metadata is
answered within 10 s.
"""
import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

BOOTSTRAP, USER, PASSWORD, MECHANISM = sys.argv[1:5]
TIMEOUT_S = 10

errors = []
admin = AdminClient({
    "bootstrap.servers": BOOTSTRAP,
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanisms": MECHANISM,
    "sasl.username": USER,
    "sasl.password": PASSWORD,
    # librdkafka retries a refused login every few ms, each logged: the
    # first refusal is what is shown.
    "log_level": 0,
    "error_cb": errors.append,
})
deadline = time.monotonic() + TIMEOUT_S
while True:
    try:
        metadata = admin.list_topics(timeout=1)
        break
    except KafkaException as error:
        # Serves error_cb: the errors met on the way.
        admin.poll(0)
        refused = [met for met in errors if met.code() == KafkaError._AUTHENTICATION]
        if refused or time.monotonic() >= deadline:
            why = refused[0] if refused else error
            print(f"{USER} ({MECHANISM}) refused: {why}", file=sys.stderr)
            sys.exit(1)
print(f"{USER} ({MECHANISM}) logged in: {len(metadata.brokers)} broker(s)")
