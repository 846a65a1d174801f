"""kcat (Debian's, on its older librdkafka) against a Sluice broker: produce
10,000 keyed records with headers to a topic that does not exist yet (the
broker creates it, with its default partition count), list and describe
it, read everything back and compare byte for byte.

usage: kcat_client.py BOOTSTRAP TOPIC PARTITIONS
"""

import json
import subprocess
import sys

import records

CLIENT = "kcat"
# kcat gives every record of a run the same headers, and takes records as
# lines: a kcat record is text.
HEADERS = [("client", b"kcat"), ("run", b"1")]


def index_from(record_value: bytes, _headers) -> int:
    return int(record_value.split(b"|")[0].split(b"-")[1])


def kcat(*arguments, stdin=None) -> bytes:
    run = subprocess.run(["kcat", *arguments], input=stdin, capture_output=True, timeout=300)
    if run.returncode != 0:
        sys.stderr.write(run.stderr.decode(errors="replace"))
        raise SystemExit(f"kcat {' '.join(arguments)} exited with {run.returncode}")
    return run.stdout


def main() -> None:
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check = records.Check(
        CLIENT,
        value_of=lambda index, _: records.kcat_value(index),
        headers_of=lambda _index, _client: HEADERS,
        index_from=index_from,
    )
    common = ["-b", bootstrap, "-X", "broker.address.family=v4"]

    check.step("produce, creating the topic")
    lines = b"".join(
        records.key(index) + b"\t" + records.kcat_value(index) + b"\n" for index in range(records.RECORDS)
    )
    kcat(*common, "-P", "-t", topic, "-K", "\t", "-z", "snappy",
         "-H", "client=kcat", "-H", "run=1",
         "-X", "enable.idempotence=true", stdin=lines)

    check.step("list and describe")
    listed = json.loads(kcat(*common, "-L", "-J"))
    names = [entry["topic"] for entry in listed["topics"]]
    check.expect(topic in names, f"{topic} not listed: {names}")
    check.expect(len(listed["brokers"]) == 1, f"brokers {listed['brokers']}")
    described = json.loads(kcat(*common, "-L", "-J", "-t", topic))
    entry = described["topics"][0]
    check.expect(entry["topic"] == topic and "error" not in entry, f"described {entry}")
    check.expect(len(entry["partitions"]) == partitions,
                 f"{len(entry['partitions'])} partitions, the default is {partitions}")
    broker_id = listed["brokers"][0]["id"] if listed["brokers"] else None
    for partition in entry["partitions"]:
        check.expect(partition["leader"] == broker_id, f"partition {partition}")

    check.step("consume")
    consumed = []
    output = kcat(*common, "-C", "-t", topic, "-o", "beginning", "-e", "-J")
    for line in output.splitlines():
        message = json.loads(line)
        pairs = message.get("headers") or []
        record_headers = [(pairs[i], pairs[i + 1].encode()) for i in range(0, len(pairs), 2)]
        consumed.append((message["partition"], message["offset"], message["key"].encode(),
                         message["payload"].encode(), record_headers))
    check.compare(consumed)

    check.step("offsets by time")
    # Every record's CreateTime is recent: the first one at or after the
    # epoch is each partition's offset 0.
    answer = kcat(*common, "-Q", "-t", f"{topic}:0:1").decode()
    check.expect(f"{topic} [0] offset 0" in answer, f"kcat -Q: {answer!r}")
    check.finish()


if __name__ == "__main__":
    main()
