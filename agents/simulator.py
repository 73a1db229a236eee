"""The simulator's half of the one world: readings from the configuration.

The live planner reads its nodes and links from the controller's measurements; the
simulator reads them from a :class:`~agents.config.SimConfig` (and a bandwidth
trace). Both then plan in the same :class:`~agents.world.World`: the ledger of
reservations, the WAN's fair sharing between senders, and the rule that frees what
is held for a device with nothing in flight. :func:`replay` runs any policy over
given arrivals (how a live run is replayed in simulation) and then executes the
plans together (agents.execution): what each task really got, beside what was
predicted for it when it arrived.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from protocol.heartbeat import BUSY_WINDOW_S, INTERVAL_S

from .calibration import ProfileStore
from .config import CostConfig, SimConfig
from .cost import Plan
from .decision import Policy, Snapshot, Task, decide
from .execution import ComputeSpan, execute, execute_traced, stages_of
from .world import Calibration, NodeReading, World

MBPS = 1e6


@dataclass(frozen=True)
class Arrival:
    """One task: when it arrives, from which device, for which model."""
    time_s: float
    device: str
    model: str
    task_id: str = ""
    q: float | None = None


@dataclass(frozen=True)
class Observed:
    """What the executing world has told the planner by ``now``: each node's last
    heartbeat (busy fraction, tasks queued) and each device's tasks in flight."""
    nodes: dict = field(default_factory=dict)        # name -> (busy, queue_len)
    in_flight: dict = field(default_factory=dict)    # device -> tasks not yet back


@dataclass(frozen=True)
class Heartbeats:
    """The live planner's feedback, as the simulator gives it (``replay(feedback=...)``).

    Live, a node reports every ``period_s`` the share of the last ``window_s`` it
    computed and how many tasks wait in its queue (runtime.worker's load, sent by
    runtime.host_agent), and a device says how many of its tasks are still out; the
    planner plans from those and its ledger. Open loop (no feedback) the simulator's
    planner knows only its ledger's predictions, and a device is done when its
    predicted ends have passed: where predictions run late, it plans as if the nodes
    were freer than they are.
    """
    period_s: float = INTERVAL_S
    window_s: float = BUSY_WINDOW_S

    def observe(self, spans: list[ComputeSpan], ends: list[float], devices: list[str], now: float) -> Observed:
        """What the planner knows at ``now`` of the tasks executed so far (``spans`` and
        ``ends`` from agents.execution.execute_traced, ``devices`` per task)."""
        beat = math.floor(now / self.period_s + 1e-9) * self.period_s
        lo = beat - self.window_s
        busy, queued = {}, {}
        for span in spans:
            busy[span.node] = busy.get(span.node, 0.0) + max(0.0, min(span.end, beat) - max(span.start, lo))
            queued[span.node] = queued.get(span.node, 0) + (span.ready <= beat < span.start)
        nodes = {n: (min(1.0, busy[n] / self.window_s), queued[n]) for n in busy}
        in_flight = {}
        for device, end in zip(devices, ends):
            in_flight[device] = in_flight.get(device, 0) + (end > now)
        return Observed(nodes, in_flight)


class Simulator:
    """Nodes and links as configured, stepped through the world model.

    ``calibration`` applies the corrections a live run measured (compute factors per
    node, a network factor, the per-task overhead), so that a replay of that run
    costs plans as its planner did. ``up`` names the edge nodes that are up
    (default: all).
    """

    def __init__(self, sim: SimConfig, store: ProfileStore, cost: CostConfig,
                 calibration: Calibration | None = None, up: Iterable[str] | None = None):
        self.sim, self.store, self.cost = sim, store, cost
        self.calibration = calibration or Calibration()
        self.up = frozenset(e.name for e in sim.edges) if up is None else frozenset(up)
        self.world = World()
        self._ends: dict[str, list[float]] = {}   # device -> predicted ends of its tasks in flight
        self.observed: Observed | None = None      # closed loop: what the executing world reported

    def readings(self, bw_bps: float, device: str) -> list[NodeReading]:
        sim, cal = self.sim, self.calibration
        uplink = sim.uplink_mbps * MBPS if sim.uplink_mbps is not None else float("inf")
        distance = {node: hops for d, node, hops in sim.distances if d == device}
        nodes = [NodeReading(e.name, "edge", cal.share(e.name, e.share),
                             from_device_bps=min(e.access_mbps * MBPS, uplink) / cal.network,
                             to_cloud_bps=bw_bps / cal.network, mem_free_bytes=e.mem_bytes,
                             distance=distance.get(e.name), access_bps=e.access_mbps * MBPS / cal.network,
                             **self._heard(e.name))
                 for e in sim.edges if e.name in self.up]
        nodes.append(NodeReading("cloud", "cloud", cal.share("cloud", sim.cloud_share),
                                 from_device_bps=min(bw_bps, uplink) / cal.network, distance=distance.get("cloud"),
                                 **self._heard("cloud")))
        return nodes

    def _heard(self, node: str) -> dict:
        if self.observed is None or node not in self.observed.nodes:
            return {}
        busy, queue_len = self.observed.nodes[node]
        return {"busy": busy, "queue_len": queue_len}

    def snapshot(self, device: str, now: float, bw_bps: float, model: str) -> Snapshot:
        """What a task from ``device`` arriving at ``now`` sees (WAN at ``bw_bps``).

        As a live device does, it says whether it has a task in flight; with none,
        the world frees what it still holds for it.
        """
        if self.in_flight(device, now) == 0:
            self.world.release(device, now)
        net = self.calibration.network
        return self.world.snapshot(self.readings(bw_bps, device), device, now, bw_bps / net,
                                   self.sim.lan_mbps * MBPS / net,
                                   float(self.store.reference(model).out_bytes[0]))

    def commit(self, plan: Plan, snapshot: Snapshot, device: str, now: float) -> float:
        """Hold what ``plan`` reserves; returns its predicted latency (overhead included)."""
        self.world.commit(plan, snapshot, device, now, self.store, self.cost)
        latency = plan.latency.total_s + self.calibration.overhead_s
        self._ends[device] = [e for e in self._ends.get(device, ()) if e > now] + [now + latency]
        return latency

    def in_flight(self, device: str, now: float) -> int:
        if self.observed is not None:
            return self.observed.in_flight.get(device, 0)
        return sum(end > now for end in self._ends.get(device, ()))


@dataclass(frozen=True)
class Replayed:
    arrival: Arrival
    plan: Plan
    predicted_s: float    # what the planner predicted when the task arrived (overhead included)
    latency_s: float      # what the task got, all plans executed together (agents.execution)


def replay(policy: Policy, arrivals: Iterable[Arrival], sim: SimConfig, store: ProfileStore, cost: CostConfig,
           calibration: Calibration | None = None, feedback: Heartbeats | None = None) -> list[Replayed]:
    """Plan every arrival, in time order, with ``policy`` in the simulated world (WAN at
    ``sim.bw_mbps``), then execute all the plans together.

    With ``feedback`` the loop is closed as it is live: before each decision the plans
    made so far are executed up to that moment (a later task cannot change the past),
    and the planner hears the nodes' last heartbeats and the devices' tasks in flight
    from that execution, not from its own predictions."""
    simulator = Simulator(sim, store, cost, calibration)
    bw_bps = sim.bw_mbps * MBPS
    net, overhead = simulator.calibration.network, simulator.calibration.overhead_s
    planned = []
    for arrival in sorted(arrivals, key=lambda a: a.time_s):
        now = arrival.time_s
        if feedback is not None:
            ends, spans = execute_traced([(a.time_s, stages) for a, _, _, stages in planned], bw_bps / net)
            simulator.observed = feedback.observe(spans, [end + overhead for end in ends],
                                                  [a.device for a, _, _, _ in planned], now)
        snapshot = simulator.snapshot(arrival.device, now, bw_bps, arrival.model)
        plan = decide(policy, snapshot, Task(arrival.model, q=arrival.q, task_id=arrival.task_id), store, cost)
        predicted = simulator.commit(plan, snapshot, arrival.device, now)
        readings = {r.name: r for r in simulator.readings(bw_bps, arrival.device)}
        planned.append((arrival, plan, predicted, stages_of(plan, readings, snapshot.lan_bps, arrival.device, store)))
    ends = execute([(a.time_s, stages) for a, _, _, stages in planned], bw_bps / net)
    return [Replayed(a, plan, predicted, end - a.time_s + overhead)
            for (a, plan, predicted, _), end in zip(planned, ends)]
