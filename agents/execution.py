"""What the simulated world does with the plans made: each task's realized latency.

A plan's predicted latency (agents.cost) is made when the task arrives, from the
reservations of the plans before it. Later tasks can still slow it down: a
transfer from another device that starts while this one crosses the WAN takes
half of it (the testbed shares the WAN fairly between senders). Executing every
plan together, as the testbed does, gives the latency each task really gets in the
simulated world; :func:`agents.simulator.replay` reports both.

The world executed is the cost model's: each device's uplink, the LAN and every
node serve one stage at a time in the order the stages become ready (FIFO); the
WAN is shared equally between the senders with a transfer under way (fluid), each
sender's own transfers crossing one after the other; a device's input to the
cloud holds its uplink while it crosses the WAN.
"""
from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from .calibration import ProfileStore
from .cost import ACC, LAN, Plan

EPS = 1e-12


@dataclass
class _Fifo:
    busy: int | None = None                     # the task using it
    queue: list = field(default_factory=list)   # heap of (ready, order, task index)


def stages_of(plan: Plan, readings, lan_bps: float, device: str, store: ProfileStore) -> list:
    """The plan as stages: ("fifo", resource, seconds) or ("wan", sender, bits, cap, gate),
    where a device's input to the cloud passes its uplink (``gate``) and holds it.
    ``readings`` are the nodes as configured ({name: agents.world.NodeReading}): path
    rates before the WAN's sharing, and CPU shares."""
    out_bytes = store.reference(plan.model).out_bytes
    uplink = f"{ACC}@{device}"
    stages, prev = [], None
    for name, start, end in plan.hops:
        node = readings[name]
        bits = 8.0 * float(out_bytes[start])
        if node.role == "cloud":
            if prev is None:
                stages.append(("wan", uplink, bits, node.from_device_bps, uplink))
            else:
                stages.append(("wan", prev.name, bits, prev.to_cloud_bps, None))
        elif prev is None:
            stages.append(("fifo", uplink, bits / node.from_device_bps))
        else:
            stages.append(("fifo", LAN, bits / lan_bps))
        stages.append(("fifo", f"node@{name}", float(store.seg_times(plan.model, node.cpu_share)[start:end].sum())))
        prev = node
    return stages


def execute(tasks, wan_bps: float) -> list[float]:
    """End time of each task, given as (arrival, stages) with :func:`stages_of`'s stages.

    A WAN transfer gets an equal share of ``wan_bps`` with the other senders'
    transfers under way, or its own cap (what the planner gave that sender) if lower.
    """
    stages = [list(s) for _, s in tasks]
    step = [0] * len(tasks)
    done: list[float | None] = [None] * len(tasks)
    fifos: dict[str, _Fifo] = defaultdict(_Fifo)
    lanes: dict[str, list] = defaultdict(list)   # sender -> [[task, bits left, cap, gate]], in order
    order = itertools.count()
    ready = [(float(arrival), next(order), i) for i, (arrival, _) in enumerate(tasks)]
    heapq.heapify(ready)
    running = []                                 # heap of (end, order, fifo name)
    now = 0.0

    def advance(i):
        step[i] += 1
        if step[i] == len(stages[i]):
            done[i] = now
        else:
            heapq.heappush(ready, (now, next(order), i))

    def rate_of(job, share):
        return min(share, job[2]) if job[2] else share

    while ready or running or any(lanes.values()):
        heads = [jobs[0] for jobs in lanes.values() if jobs]
        share = wan_bps / len(heads) if heads else 0.0
        wan_next = min((now + job[1] / max(rate_of(job, share), EPS) for job in heads), default=float("inf"))
        until = max(min(wan_next, ready[0][0] if ready else float("inf"),
                        running[0][0] if running else float("inf")), now)
        for job in heads:
            job[1] -= rate_of(job, share) * (until - now)
        now = until
        for jobs in lanes.values():
            while jobs and jobs[0][1] <= 1e-3:   # bits: a rounding residue
                i, _, _, gate = jobs.pop(0)
                if gate:
                    fifos[gate].busy = None
                advance(i)
        while running and running[0][0] <= now + EPS:
            _, _, name = heapq.heappop(running)
            i, fifos[name].busy = fifos[name].busy, None
            advance(i)
        while ready and ready[0][0] <= now + EPS:
            _, _, i = heapq.heappop(ready)
            stage = stages[i][step[i]]
            if stage[0] == "wan" and stage[4] is None:
                lanes[stage[1]].append([i, stage[2], stage[3], None])
            else:
                heapq.heappush(fifos[stage[1] if stage[0] == "fifo" else stage[4]].queue, (now, next(order), i))
        for name, fifo in fifos.items():
            if fifo.busy is None and fifo.queue:
                _, _, i = heapq.heappop(fifo.queue)
                fifo.busy = i
                stage = stages[i][step[i]]
                if stage[0] == "wan":   # holds the uplink until it has crossed the WAN
                    lanes[stage[1]].append([i, stage[2], stage[3], name])
                else:
                    heapq.heappush(running, (now + stage[2], next(order), name))
    return done
