"""SASL OAUTHBEARER with signed JSON Web Tokens: an identity provider of
the test's own (an ES256 and an RS256 key; the broker reads the public
half from a JWKS file), confluent-kafka (librdkafka, tokens from its
oauth_cb) and kafka-python (a token provider).

    python3 oauthbearer.py keygen DIR
        writes DIR/jwks.json (public keys) and DIR/es256.pem, DIR/rs256.pem
    python3 oauthbearer.py run BOOTSTRAP DIR
        both clients authenticate with tokens for alice (issuer
        https://idp.test, audience sluice) and produce and read back;
        an expired token, another audience, another issuer, a key the
        JWKS does not hold and an unsigned token are refused; a producer
        whose tokens last 6 s keeps producing past their expiry (it
        authenticates again with a fresh one)
"""
import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

ISSUER, AUDIENCE = "https://idp.test", "sluice"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(length, "big"))


def keygen(dir):
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for name, key in (("es256", es), ("rs256", rs)):
        with open(os.path.join(dir, f"{name}.pem"), "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    ep, rp = es.public_key().public_numbers(), rs.public_key().public_numbers()
    keys = [{"kty": "EC", "crv": "P-256", "kid": "es-1", "use": "sig",
             "x": number(ep.x, 32), "y": number(ep.y, 32)},
            {"kty": "RSA", "kid": "rs-1", "use": "sig", "n": number(rp.n), "e": number(rp.e)}]
    with open(os.path.join(dir, "jwks.json"), "w") as out:
        json.dump({"keys": keys}, out)


def load(dir, name):
    with open(os.path.join(dir, f"{name}.pem"), "rb") as key:
        return serialization.load_pem_private_key(key.read(), None)


def token(key, kid, lifetime=600, **claims):
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    now = int(time.time())
    body = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + lifetime}
    body.update(claims)
    signed = f"{b64(json.dumps({'alg': alg, 'kid': kid, 'typ': 'JWT'}).encode())}." \
             f"{b64(json.dumps(body).encode())}"
    if alg == "ES256":
        r, s = utils.decode_dss_signature(key.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{b64(signature)}", body["exp"]


def run(bootstrap, dir):
    import kafka
    from kafka.net.sasl.oauth import AbstractTokenProvider
    from confluent_kafka import Producer
    from secured import (confluent_refused, confluent_round_trip, kafka_python_round_trip, say)

    es, rs = load(dir, "es256"), load(dir, "rs256")

    def confluent(make):
        return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "OAUTHBEARER", "oauth_cb": lambda _config: make()}

    confluent_round_trip(confluent(lambda: token(es, "es-1")), "with an ES256 token")

    class Provider(AbstractTokenProvider):
        def token(self):
            return token(rs, "rs-1")[0]

    kafka_python_round_trip({"bootstrap_servers": bootstrap, "security_protocol": "SASL_PLAINTEXT",
                             "sasl_mechanism": "OAUTHBEARER",
                             "sasl_oauth_token_provider": Provider()},
                            "with an RS256 token (kafka-python)")

    other = ec.generate_private_key(ec.SECP256R1())
    unsigned = f"{b64(json.dumps({'alg': 'none'}).encode())}." \
               f"{b64(json.dumps({'sub': 'alice', 'exp': int(time.time()) + 600}).encode())}."
    for label, make in [
            # (librdkafka would not use a token it knows expired: it is
            # told a later expiry than the token's own.)
            ("an expired token",
             lambda: (token(es, "es-1", lifetime=-120)[0], time.time() + 600)),
            ("another audience", lambda: token(es, "es-1", aud="elsewhere")),
            ("another issuer", lambda: token(es, "es-1", iss="https://evil.test")),
            ("a key the JWKS does not hold", lambda: token(other, "es-1")),
            ("an unsigned token", lambda: (unsigned, time.time() + 600))]:
        confluent_refused(confluent(make), label)

    # Tokens of 6 s: the session ends with the token, and the client goes
    # on with a fresh one.
    producer = Producer({**confluent(lambda: token(es, "es-1", lifetime=6)), "acks": "all"})
    failures = []
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 12:
        producer.produce("oauth-renewal", b"renewed", partition=0,
                         on_delivery=lambda error, _: error and failures.append(error))
        sent += 1
        producer.flush(15)
        time.sleep(0.5)
    assert not failures, failures
    say(f"confluent-kafka: {sent} records over 12 s with tokens of 6 s")


if sys.argv[1] == "keygen":
    keygen(sys.argv[2])
elif sys.argv[1] == "run":
    run(sys.argv[2], sys.argv[3])
else:
    raise SystemExit(f"unknown command {sys.argv[1]}")
