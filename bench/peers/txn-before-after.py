#!/usr/bin/env python3
"""Two broker builds side by side on what transactions cost: each round
starts a fresh `sluice serve --cores 1` of build A, then of build B
(alternating, A B A B ...), runs one round of txn-cost.py against it and
stops it. Prints, per build, the medians over its rounds of the
transactional and idempotent records/s, their ratio, and the
transactional step's and commit call's p50 / p99.

    python3 bench/peers/txn-before-after.py SLUICE_A SLUICE_B [RECORDS] [SECONDS] [ROUNDS]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

A, B = sys.argv[1], sys.argv[2]
RECORDS = sys.argv[3] if len(sys.argv) > 3 else "100"
SECONDS = sys.argv[4] if len(sys.argv) > 4 else "8"
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 3
HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 18392


def wait_for_port(port, process):
    import socket
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the broker exited: {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the broker did not listen")


def one_round(binary):
    data = tempfile.mkdtemp(prefix="txn-ab-")
    broker = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--kafka-addr", f"127.0.0.1:{PORT}",
         "--native-addr", f"127.0.0.1:{PORT + 100}", "--admin-addr", "off", "--cores", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(PORT, broker)
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "txn-cost.py"), f"127.0.0.1:{PORT}", RECORDS,
             SECONDS, "1"], capture_output=True, text=True, check=True).stdout
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(data, ignore_errors=True)
    rows = {}
    for line in out.splitlines():
        match = re.match(r"\| (idempotent|transactional) \| (\d+) \| ([^|]+) \| ([^|]+) \|", line)
        if match:
            step = [float(x) for x in match.group(3).split(" / ")]
            commit = [float(x) for x in match.group(4).split(" / ")] if "/" in match.group(4) else []
            rows[match.group(1)] = (int(match.group(2)), step, commit)
    return rows


results = {A: [], B: []}
for number in range(ROUNDS):
    for binary in (A, B):
        rows = one_round(binary)
        results[binary].append(rows)
        print(f"round {number + 1} {binary}: transactional {rows['transactional'][0]} rec/s, "
              f"idempotent {rows['idempotent'][0]} rec/s", file=sys.stderr, flush=True)

print(f"{RECORDS} records of 100 B per transaction, {ROUNDS} rounds of {SECONDS} s per mode, alternated; medians\n")
print("| build | transactional rec/s | idempotent rec/s | ratio | txn step p50 / p99 (ms) | commit call p50 / p99 (ms) |")
print("|---|---|---|---|---|---|")
for binary in (A, B):
    rs = results[binary]
    med = lambda f: statistics.median(f(r) for r in rs)
    txn = med(lambda r: r["transactional"][0])
    idem = med(lambda r: r["idempotent"][0])
    print(f"| {binary} | {txn:.0f} | {idem:.0f} | {txn / idem:.2f} | "
          f"{med(lambda r: r['transactional'][1][0]):.2f} / {med(lambda r: r['transactional'][1][1]):.2f} | "
          f"{med(lambda r: r['transactional'][2][0]):.2f} / {med(lambda r: r['transactional'][2][1]):.2f} |")
