#!/usr/bin/env python3
"""The disk's own floor for durable appends, with no broker in the way.

    bench/peers/disk-probe.py [--dir D] [--mb-per-s R] [--write-kib K]
                              [--seconds S] [--mode extend|fallocate]

Appends K KiB at a time to a new file opened with O_DIRECT, at R MB/s on a
schedule, each write followed by fdatasync (what a durable log does per
group commit), and prints the percentiles of write+fdatasync and how the
worst ones were spread in time. `extend` grows the file with each write (as
Sluice's log does by default); `fallocate` allocates the whole file first
(the topic config `preallocate=true`, there in 16 MiB steps). Run it pinned
where the broker would run: `taskset -c 0 bench/peers/disk-probe.py`.
"""

import argparse
import mmap
import os
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--mb-per-s", type=float, default=100.0)
    parser.add_argument("--write-kib", type=int, default=112)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=["extend", "fallocate"], default="extend")
    args = parser.parse_args()
    if args.write_kib < 4 or args.write_kib % 4:
        parser.error("--write-kib must be a multiple of 4 (O_DIRECT alignment)")
    rate = args.mb_per_s * 1e6
    size = args.write_kib * 1024
    fd, path = tempfile.mkstemp(prefix="sluice-disk-probe.", dir=args.dir)
    os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        if args.mode == "fallocate":
            os.posix_fallocate(fd, 0, int(rate * args.seconds) + size)
            os.fsync(fd)
        buffer = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
        buffer.write(os.urandom(size))
        latencies = []
        slow = []
        offset = 0
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            due = start + offset / rate
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            began = time.monotonic()
            os.pwrite(fd, buffer, offset)
            os.fdatasync(fd)
            took = time.monotonic() - began
            latencies.append(took)
            if took > 0.002:
                slow.append((began - start, took))
            offset += size
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()

    def at(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1e3

    print(
        f"disk-probe {args.mode}: {len(latencies)} appends of {args.write_kib} KiB at "
        f"{args.mb_per_s:g} MB/s in {args.dir}; write+fdatasync ms: "
        f"p50 {at(0.5):.3f} p90 {at(0.9):.3f} p99 {at(0.99):.3f} "
        f"p99.9 {at(0.999):.3f} max {latencies[-1] * 1e3:.3f}"
    )
    print(
        f"over 2 ms: {len(slow)}"
        + "".join(f"\n  at {when:6.3f} s: {took * 1e3:.2f} ms" for when, took in slow[:20])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
