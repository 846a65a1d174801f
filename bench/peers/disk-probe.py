#!/usr/bin/env python3
"""The disk's own floor for durable appends, with no broker in the way.

    bench/peers/disk-probe.py [--dir D] [--mb-per-s R] [--write-kib K]
                              [--seconds S] [--mode extend|fallocate|written]
                              [--beside-mb-per-s B] [--beside-kib C]
                              [--beside-cpu N]

Appends K KiB at a time to a new file opened with O_DIRECT, at R MB/s on a
schedule, each write followed by fdatasync (what a durable log does per
group commit), and prints the percentiles of write+fdatasync and how the
worst ones were spread in time. `extend` grows the file with each write (as
Sluice's log does by default); `fallocate` allocates the whole file first
(fallocate'd extents are unwritten until written); `written` fills the whole
file with zeros first, so that each write overwrites written blocks inside
the file (what a log does in a segment prepared ahead). `--beside-mb-per-s`
meanwhile fills a second file with zeros at B MB/s, C KiB a write, from
another process (at nice 19, on CPU N if given): what preparing the next
segment costs the appends. Run it
pinned where the broker would run: `taskset -c 0 bench/peers/disk-probe.py`.
"""

import argparse
import mmap
import os
import signal
import sys
import tempfile
import time


def fill_zeros(fd: int, start: int, length: int, chunk: int, rate: float) -> None:
    """Writes zeros over [start, start+length) of fd (O_DIRECT), chunk bytes a
    write, at `rate` bytes/s on a schedule (flat out when 0), then syncs."""
    zeros = mmap.mmap(-1, chunk)  # page-aligned and zeroed
    began = time.monotonic()
    offset = 0
    while offset < length:
        if rate:
            due = began + offset / rate
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
        os.pwrite(fd, zeros, start + offset)
        offset += chunk
    os.fdatasync(fd)


def fill_beside(path: str, length: int, rate: float, chunk: int, cpu: int) -> int:
    """Forks a process that fills the file at `path` with zeros at `rate`;
    returns its pid. The caller kills it and removes the file, after the
    appends are measured: removing a file costs a discard on some mounts."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.nice(19)
        if cpu >= 0:
            os.sched_setaffinity(0, {cpu})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
        fill_zeros(fd, 0, length, chunk, rate)
    finally:
        os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--mb-per-s", type=float, default=100.0)
    parser.add_argument("--write-kib", type=int, default=112)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=["extend", "fallocate", "written"], default="extend")
    parser.add_argument("--beside-mb-per-s", type=float, default=0.0)
    parser.add_argument("--beside-kib", type=int, default=256)
    parser.add_argument("--beside-cpu", type=int, default=-1)
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
        if args.mode == "written":
            fill_zeros(fd, 0, int(rate * args.seconds) + size, 1024 * 1024, 0)
            os.fsync(fd)
        beside = None
        if args.beside_mb_per_s:
            beside_rate = args.beside_mb_per_s * 1e6
            beside = fill_beside(
                path + ".beside",
                int(beside_rate * args.seconds) // (1 << 20) * (1 << 20),
                beside_rate,
                args.beside_kib * 1024,
                args.beside_cpu,
            )
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
        if beside:
            os.kill(beside, signal.SIGKILL)
            os.waitpid(beside, 0)
            os.unlink(path + ".beside")
        os.close(fd)
        os.unlink(path)
    latencies.sort()

    def at(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1e3

    print(
        f"disk-probe {args.mode}: {len(latencies)} appends of {args.write_kib} KiB at "
        f"{args.mb_per_s:g} MB/s in {args.dir}"
        + (
            f", zeros beside at {args.beside_mb_per_s:g} MB/s ({args.beside_kib} KiB writes)"
            if args.beside_mb_per_s
            else ""
        )
        + "; write+fdatasync ms: "
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
