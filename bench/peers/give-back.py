#!/usr/bin/env python3
"""Removes a file the way the broker's deleter does, to measure it beside a
run: truncates it from the end STEP_MB at a time, fdatasync after each
step, at MB_PER_S, then unlinks it. `give-back.py FILE 0 0` unlinks at once.

    bench/peers/give-back.py FILE STEP_MB MB_PER_S
"""
import os
import sys
import time

path, step_mb, mb_per_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if step_mb > 0 and mb_per_s > 0:
    step = step_mb << 20
    fd = os.open(path, os.O_WRONLY)
    size = os.fstat(fd).st_size
    due = time.monotonic()
    while size > 0:
        size = max(0, size - step)
        os.ftruncate(fd, size)
        os.fdatasync(fd)
        due += step / (mb_per_s * 1e6)
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    os.close(fd)
os.unlink(path)
