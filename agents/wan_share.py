"""The WAN's planned transfers as lanes that share it fairly, in a fluid model.

Pure. Each sender (a device, an edge node) has a lane; its transfers cross one after
the other, and at any moment every lane with a transfer under way gets an equal
share of the WAN (as the testbed's per-sender htb leaves give it). Replaying the
planned transfers this way says when each lane empties: a lane whose neighbour
empties early goes faster from then on, which fixing each transfer's share when it
is planned misses by up to half.
"""

import math


class FairShareLink:
    def __init__(self):
        self._lanes = {}  # lane -> [(ready_at, bits)], in the order planned

    def add(self, lane, ready_at, bits):
        if bits > 0:
            self._lanes.setdefault(lane, []).append((ready_at, bits))

    def drop(self, lane):
        """Forget what is left on ``lane`` (its sender has no transfer under way)."""
        self._lanes.pop(lane, None)

    def ends(self, capacity_bps):
        """{lane: [end time of each of its transfers]} under fair sharing."""
        return _replay(self._lanes, capacity_bps)[0]

    def crossing(self, lane, ready_at, bits, capacity_bps):
        """(start, end) of one more transfer on ``lane`` if it were planned now."""
        lanes = dict(self._lanes)
        lanes[lane] = lanes.get(lane, []) + [(ready_at, bits)]
        mine = _replay(lanes, capacity_bps)[0][lane]
        start = max(ready_at, mine[-2]) if len(mine) > 1 else ready_at
        return start, mine[-1]

    def forget_before(self, now, capacity_bps):
        """Keep only what is left at ``now``: transfers that have ended go, one under
        way keeps its remaining bits from ``now`` (the replay from there is the same)."""
        if capacity_bps > 0:
            self._lanes = _replay(self._lanes, capacity_bps, until=now)[1]


def _replay(lanes, capacity_bps, until=math.inf):
    """End times of every lane's transfers, and what is left of them at ``until``."""
    queues = {lane: list(jobs) for lane, jobs in lanes.items() if jobs}
    ends = {lane: [] for lane in queues}
    if not queues or capacity_bps <= 0:
        return {lane: [math.inf] * len(jobs) for lane, jobs in queues.items()}, queues
    left = {lane: jobs[0][1] for lane, jobs in queues.items()}
    t = min(jobs[0][0] for jobs in queues.values())
    while queues and t < until:
        active = [lane for lane, jobs in queues.items() if jobs[0][0] <= t]
        if not active:
            t = min(min(jobs[0][0] for jobs in queues.values()), until)
            continue
        rate = capacity_bps / len(active)
        next_ready = min((jobs[0][0] for lane, jobs in queues.items() if lane not in active), default=math.inf)
        step = min(min(left[lane] for lane in active) / rate, next_ready - t, until - t)
        t += step
        for lane in active:
            left[lane] -= rate * step
            if left[lane] <= 1e-6 * queues[lane][0][1]:
                ends[lane].append(t)
                queues[lane].pop(0)
                if queues[lane]:
                    left[lane] = queues[lane][0][1]
                else:
                    del queues[lane]
    rest = {lane: [(max(jobs[0][0], t), left[lane])] + jobs[1:] for lane, jobs in queues.items()}
    return ends, rest
