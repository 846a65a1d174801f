"""The records every Python client script produces and reads back.

The same formula is in records.js and in tools/tests/kafka_clients.rs, which
checks what a script left in the topic with `sluice consume`.
"""

import sys
import time

RECORDS = 10_000
KEYS = 1_000


def key(index: int) -> bytes:
    return f"key-{index % KEYS}".encode()


def value(index: int, client: str) -> bytes:
    tail = bytes((index * 31 + offset) % 256 for offset in range(index % 100))
    return f"value-{index}-{client}|".encode() + tail


def headers(index: int, client: str) -> list:
    return [
        ("index", str(index).encode()),
        ("client", client.encode()),
        ("bin", bytes([index % 256, 0, 255])),
    ]


def index_of(record_headers) -> int:
    for name, header_value in record_headers or []:
        if name == "index":
            return int(header_value)
    raise AssertionError(f"a record without an index header: {record_headers!r}")


class Check:
    """Collects what went wrong, so a run reports every difference class."""

    def __init__(self, client: str, value_of=value, headers_of=headers, index_from=None):
        self.client = client
        self.value_of = value_of
        self.headers_of = headers_of
        # (value, headers) -> the record's index.
        self.index_from = index_from or (lambda _, record_headers: index_of(record_headers))
        self.failures = []
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"[{self.client} {time.monotonic() - self.started:6.2f}s] {text}", flush=True)

    def expect(self, condition: bool, text: str) -> None:
        if not condition:
            self.failures.append(text)
            if len(self.failures) <= 20:
                print(f"FAIL: {text}", flush=True)

    def compare(self, records, delivered=None) -> None:
        """`records`: (partition, offset, key, value, headers as (str, bytes)
        pairs) as read; `delivered`: index -> (partition, offset) as
        acknowledged, when the client reports it."""
        seen = {}
        last_index = {}
        last_offset = {}
        for partition, offset, record_key, record_value, record_headers in records:
            index = self.index_from(record_value, record_headers)
            self.expect(index not in seen, f"record {index} read twice")
            seen[index] = (partition, offset)
            self.expect(record_key == key(index), f"record {index}: key {record_key!r}")
            self.expect(
                record_value == self.value_of(index, self.client),
                f"record {index}: value differs ({len(record_value or b'')} bytes)",
            )
            self.expect(
                list(record_headers) == self.headers_of(index, self.client),
                f"record {index}: headers {record_headers!r}",
            )
            self.expect(
                last_index.get(partition, -1) < index,
                f"partition {partition}: record {index} after {last_index.get(partition)}",
            )
            self.expect(
                last_offset.get(partition, -1) < offset,
                f"partition {partition}: offset {offset} after {last_offset.get(partition)}",
            )
            last_index[partition] = index
            last_offset[partition] = offset
        missing = [index for index in range(RECORDS) if index not in seen]
        self.expect(not missing, f"{len(missing)} records not read, first {missing[:5]}")
        self.expect(len(records) == RECORDS, f"{len(records)} records read, {RECORDS} produced")
        if delivered is not None:
            moved = [
                index
                for index, place in delivered.items()
                if index in seen and seen[index] != place
            ]
            self.expect(
                not moved,
                f"{len(moved)} records not where they were acknowledged, first "
                + ", ".join(f"{i}: {delivered[i]} vs {seen[i]}" for i in moved[:3]),
            )

    def finish(self) -> None:
        if self.failures:
            print(f"{self.client}: {len(self.failures)} failures", flush=True)
            sys.exit(1)
        self.step("ok")


def kcat_value(index: int) -> bytes:
    """A value for a line-based producer: text, tabs and quotes included."""
    return f"value-{index}-kcat|a\ttab, \"quotes\", ünïcödé".encode()
