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

from dataclasses import dataclass
from typing import Iterable

from .calibration import ProfileStore
from .config import CostConfig, SimConfig
from .cost import Plan
from .decision import Policy, Snapshot, Task, decide
from .execution import execute, stages_of
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

    def readings(self, bw_bps: float, device: str) -> list[NodeReading]:
        sim, cal = self.sim, self.calibration
        uplink = sim.uplink_mbps * MBPS if sim.uplink_mbps is not None else float("inf")
        distance = {node: hops for d, node, hops in sim.distances if d == device}
        nodes = [NodeReading(e.name, "edge", cal.share(e.name, e.share),
                             from_device_bps=min(e.access_mbps * MBPS, uplink) / cal.network,
                             to_cloud_bps=bw_bps / cal.network, mem_free_bytes=e.mem_bytes,
                             distance=distance.get(e.name))
                 for e in sim.edges if e.name in self.up]
        nodes.append(NodeReading("cloud", "cloud", cal.share("cloud", sim.cloud_share),
                                 from_device_bps=min(bw_bps, uplink) / cal.network, distance=distance.get("cloud")))
        return nodes

    def snapshot(self, device: str, now: float, bw_bps: float, model: str) -> Snapshot:
        """What a task from ``device`` arriving at ``now`` sees (WAN at ``bw_bps``).

        As a live device does, it says whether it has a task in flight; with none,
        the world frees what it still holds for it.
        """
        if not any(end > now for end in self._ends.get(device, ())):
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
        return sum(end > now for end in self._ends.get(device, ()))


@dataclass(frozen=True)
class Replayed:
    arrival: Arrival
    plan: Plan
    predicted_s: float    # what the planner predicted when the task arrived (overhead included)
    latency_s: float      # what the task got, all plans executed together (agents.execution)


def replay(policy: Policy, arrivals: Iterable[Arrival], sim: SimConfig, store: ProfileStore, cost: CostConfig,
           calibration: Calibration | None = None) -> list[Replayed]:
    """Plan every arrival, in time order, with ``policy`` in the simulated world (WAN at
    ``sim.bw_mbps``), then execute all the plans together."""
    simulator = Simulator(sim, store, cost, calibration)
    bw_bps = sim.bw_mbps * MBPS
    planned = []
    for arrival in sorted(arrivals, key=lambda a: a.time_s):
        now = arrival.time_s
        snapshot = simulator.snapshot(arrival.device, now, bw_bps, arrival.model)
        plan = decide(policy, snapshot, Task(arrival.model, q=arrival.q, task_id=arrival.task_id), store, cost)
        predicted = simulator.commit(plan, snapshot, arrival.device, now)
        readings = {r.name: r for r in simulator.readings(bw_bps, arrival.device)}
        planned.append((arrival, plan, predicted, stages_of(plan, readings, snapshot.lan_bps, arrival.device, store)))
    net = simulator.calibration.network
    ends = execute([(a.time_s, stages) for a, _, _, stages in planned], bw_bps / net)
    overhead = simulator.calibration.overhead_s
    return [Replayed(a, plan, predicted, end - a.time_s + overhead)
            for (a, plan, predicted, _), end in zip(planned, ends)]
