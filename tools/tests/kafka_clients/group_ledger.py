"""What the consumer group scripts share: the ledger of what was committed
and consumed, and waiting for a group to settle."""

import time


class Ledger:
    """What a test's members committed (partition -> offset) and consumed."""

    def __init__(self, topic):
        self.topic = topic
        self.committed = {}
        self.consumed = set()
        self.commits_failed = 0


def settle(members, ledger, check, each, what, step, spread_evenly, settle_s):
    """Runs `step` rounds until `spread_evenly(members, each)`; fails the
    check after `settle_s` seconds. Returns when it settled."""
    deadline = time.monotonic() + settle_s
    while not spread_evenly(members, each):
        step(members, ledger, check)
        if time.monotonic() > deadline:
            check.expect(False, f"{what}: not {each} partitions each after {settle_s} s: "
                         + "; ".join(m.report() for m in members))
            check.finish()
    return time.monotonic()
