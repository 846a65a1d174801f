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

    def read(self, member, check, partition, offset):
        """`member` read `offset` of `partition`: it must own the partition
        and read on from the committed offset, or from what it read last."""
        if partition not in member.owned:
            check.expect(False, f"{member.name} read {partition}/{offset} of a partition it does not own")
            return
        last = member.owned[partition]
        expected = self.committed.get(partition, 0) if last is None else last + 1
        check.expect(offset == expected,
                     f"{member.name} partition {partition}: read {offset}, expected {expected} "
                     f"({'first since assigned' if last is None else 'after the previous'})")
        member.owned[partition] = offset
        self.consumed.add((partition, offset))
        member.since_commit += 1

    @staticmethod
    def commit_due(member, force, records, interval_s):
        """Whether `member` commits now: it read something since its last
        commit, and `force`, or `records` read, or `interval_s` passed.
        If so, its count starts again."""
        if member.since_commit == 0:
            return False
        if not (force or member.since_commit >= records
                or time.monotonic() - member.last_commit >= interval_s):
            return False
        member.since_commit = 0
        member.last_commit = time.monotonic()
        return True

    def committed_at(self, positions):
        """A commit of `positions` (partition, offset) succeeded."""
        for p, o in positions:
            self.committed[p] = max(self.committed.get(p, 0), o)


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
