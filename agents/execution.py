"""What the simulated world does with the plans made: each task's realized latency.

A plan's predicted latency (agents.cost) is made when the task arrives, from the
reservations of the plans before it. Later tasks can still slow it down: a transfer
that starts while this one is under way shares its links. Executing every plan
together, as the testbed does, gives the latency each task really gets in the
simulated world; :func:`agents.simulator.replay` reports both.

The world executed is the testbed's transport:

* every node serves one stage at a time, in the order the stages become ready (FIFO);
* a transfer goes over one connection (sender, receiver), which carries its frames in
  order, as TCP does;
* the transfers under way share every link they cross (the device's uplink, the LAN,
  the WAN, and the receiving edge node's own access link) max-min fairly, each also
  held to its own path rate;
* a device's send returns once its frame is in the socket buffer (a 0.6 MB input fits
  Linux's autotuned buffer), so its transfers to different nodes overlap on its uplink.

Measured on two full live runs (docs/live.md): a device's inputs to different edge
nodes did overlap on the wire (a frame's last byte arrived a median 35 ms after the
next frame's send began). Replaying the runs' own plans, the simulator's medians are
within 10 % of the testbed's in 389 of 392 method-cells with this transport, and in
379 when each device's sends were serialised and an input to the cloud held the
uplink while it crossed the WAN (the model before).
"""
from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from .calibration import ProfileStore
from .cost import ACC, LAN, Plan

EPS = 1e-12
WAN = "wan"


@dataclass(frozen=True)
class Transfer:
    """A frame over the connection ``connection``, crossing ``links`` ((name, bit/s) each)."""
    connection: tuple[str, str]
    links: tuple[tuple[str, float], ...]
    bits: float
    rate_bps: float                 # its path's own rate (what the planner gave it)


@dataclass(frozen=True)
class Compute:
    node: str
    seconds: float


def stages_of(plan: Plan, readings, lan_bps: float, device: str, store: ProfileStore) -> list:
    """The plan as stages (:class:`Transfer` and :class:`Compute`). ``readings`` are the
    nodes as configured ({name: agents.world.NodeReading}): path rates before sharing,
    and CPU shares. The device's uplink carries the fastest of its paths' rates."""
    out_bytes = store.reference(plan.model).out_bytes
    uplink = (f"{ACC}@{device}", max(n.from_device_bps for n in readings.values()))
    stages, prev = [], None
    for name, start, end in plan.hops:
        node = readings[name]
        bits = 8.0 * float(out_bytes[start])
        into = (f"{ACC}@{name}", node.access_bps or node.from_device_bps)   # two senders to one node share it
        if prev is None:
            links = (uplink, (WAN, node.from_device_bps)) if node.role == "cloud" else (uplink, into)
            stages.append(Transfer((device, name), links, bits, node.from_device_bps))
        elif node.role == "cloud":
            stages.append(Transfer((prev.name, name), ((WAN, prev.to_cloud_bps),), bits, prev.to_cloud_bps))
        else:
            stages.append(Transfer((prev.name, name), ((LAN, lan_bps), into), bits, lan_bps))
        stages.append(Compute(name, float(store.seg_times(plan.model, node.cpu_share)[start:end].sum())))
        prev = node
    return stages


@dataclass
class _Flow:
    task: int
    transfer: Transfer
    bits_left: float


def max_min_rates(flows: list[_Flow], capacity: dict[str, float]) -> list[float]:
    """Progressive filling: every flow's rate grows together until a link it crosses is
    full or its own rate is reached; then the others go on."""
    rate = [0.0] * len(flows)
    left = dict(capacity)
    active = set(range(len(flows)))
    while active:
        users = defaultdict(list)
        for k in active:
            for link, _ in flows[k].transfer.links:
                users[link].append(k)
        step = min([left[link] / len(ks) for link, ks in users.items()]
                   + [flows[k].transfer.rate_bps - rate[k] for k in active])
        step = max(step, 0.0)
        for k in active:
            rate[k] += step
            for link, _ in flows[k].transfer.links:
                left[link] -= step
        done = {k for k in active if rate[k] >= flows[k].transfer.rate_bps * (1 - 1e-9)}
        for link, ks in users.items():
            if left[link] <= capacity[link] * 1e-9:
                done.update(ks)
        active -= done
    return rate


@dataclass(frozen=True)
class ComputeSpan:
    """One compute stage as executed: when it reached the node, started and ended."""
    task: int
    node: str
    ready: float
    start: float
    end: float


def execute(tasks, wan_bps: float) -> list[float]:
    """End time of each task, given as (arrival, stages) with :func:`stages_of`'s stages;
    the WAN carries ``wan_bps`` in all."""
    return execute_traced(tasks, wan_bps)[0]


def execute_traced(tasks, wan_bps: float) -> tuple[list[float], list[ComputeSpan]]:
    """:func:`execute`, and every compute stage's :class:`ComputeSpan` (what a node's
    heartbeats would have reported, agents.simulator.Heartbeats)."""
    stages = [list(s) for _, s in tasks]
    step = [0] * len(tasks)
    done: list[float | None] = [None] * len(tasks)
    queues: dict[str, list] = defaultdict(list)        # node -> heap of (ready, order, task)
    busy: dict[str, int | None] = {}                   # node -> the task computing
    connections: dict[tuple, list[_Flow]] = defaultdict(list)   # frames in order; the head moves
    capacity: dict[str, float] = {WAN: wan_bps}
    order = itertools.count()
    ready = [(float(arrival), next(order), i) for i, (arrival, _) in enumerate(tasks)]
    heapq.heapify(ready)
    computing = []                                     # heap of (end, order, node)
    spans: list[ComputeSpan] = []
    queued_at: dict[int, float] = {}                   # task -> when its compute stage became ready
    now = 0.0

    def advance(i):
        step[i] += 1
        if step[i] == len(stages[i]):
            done[i] = now
        else:
            heapq.heappush(ready, (now, next(order), i))

    while ready or computing or any(connections.values()):
        moving = [frames[0] for frames in connections.values() if frames]
        rates = max_min_rates(moving, capacity)
        next_end = min((now + f.bits_left / max(r, EPS) for f, r in zip(moving, rates)), default=float("inf"))
        until = max(min(next_end, ready[0][0] if ready else float("inf"),
                        computing[0][0] if computing else float("inf")), now)
        for f, r in zip(moving, rates):
            f.bits_left -= r * (until - now)
        now = until
        for frames in connections.values():
            if frames and frames[0].bits_left <= 1e-3:     # bits: a rounding residue
                advance(frames.pop(0).task)
        while computing and computing[0][0] <= now + EPS:
            _, _, node = heapq.heappop(computing)
            i, busy[node] = busy[node], None
            advance(i)
        while ready and ready[0][0] <= now + EPS:
            _, _, i = heapq.heappop(ready)
            stage = stages[i][step[i]]
            if isinstance(stage, Transfer):
                for link, bps in stage.links:
                    capacity.setdefault(link, bps)
                connections[stage.connection].append(_Flow(i, stage, stage.bits))
            else:
                queued_at[i] = now
                heapq.heappush(queues[stage.node], (now, next(order), i))
        for node, queue in queues.items():
            if busy.get(node) is None and queue:
                _, _, i = heapq.heappop(queue)
                busy[node] = i
                end = now + stages[i][step[i]].seconds
                spans.append(ComputeSpan(i, node, queued_at.pop(i), now, end))
                heapq.heappush(computing, (end, next(order), node))
    return done, spans
