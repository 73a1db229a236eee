"""The one world model: what the plans already made hold, and how a new task sees it.

The live planner (:mod:`controller.planner`) and the simulator
(:mod:`agents.simulator`) both plan in a :class:`World`. They differ only in where
the readings of the nodes and links come from: the controller's measurements, or
the simulator's configuration. Everything after that is here:

* the :class:`Ledger` of reservations the cost model returned for the plans made so
  far: intervals of compute on each node (gaps included: tasks planned back to back
  reach a node at different times), when the LAN and each device's own uplink are
  next free, and the WAN as one lane per sender that the senders share fairly
  (:class:`agents.wan_share.FairShareLink`, the testbed's per-sender htb leaves);
* how a new task from a device sees the nodes: its input crossing the WAN at the
  rate the fair-sharing replay gives it, an edge node's tensor at the capacity
  divided by 1 + the other busy lanes, each node's reserved intervals;
* committing a plan's reservations, and releasing what is held for a device that
  says it has nothing in flight (its predicted ends were late).

Pure: no clock reads (``now`` is an argument), no Ryu, no Mininet.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Iterable

from .calibration import ProfileStore
from .config import CostConfig
from .cost import ACC, WAN, Plan, evaluate
from .decision import NodeState, Snapshot, view_from_snapshot
from .wan_share import FairShareLink

DEVICE_LANE = f"{WAN}@{ACC}"


@dataclass(frozen=True)
class NodeReading:
    """One edge or cloud node as measured (live) or configured (simulator), before the ledger.

    ``from_device_bps`` is the path rate from the requesting device to the node,
    ``to_cloud_bps`` from the node to the cloud (edge nodes only), both before the
    WAN's fair sharing between senders. ``access_bps``: the node's own link into the
    network, which every transfer to it crosses (the simulator's execution shares it
    between senders; None: the path rate from the device).
    """
    name: str
    role: str
    cpu_share: float
    from_device_bps: float
    to_cloud_bps: float = 0.0
    busy: float = 0.0
    queue_len: int = 0
    mem_free_bytes: float | None = None
    distance: int | None = None   # switches between the requesting device and the node
    access_bps: float | None = None


def _number(value):
    """A real number; JSON's true/false are not numbers here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Calibration:
    """Live corrections of the cost model's inputs (fed back by scripts.bench_live; the
    simulator applies the same ones to replay a live run).

    ``compute[node]``: measured / profiled compute time on that node (the node is then
    costed as having cpu_share / factor cores); ``network``: measured / predicted
    transfer time (bandwidths are divided by it); ``overhead_s``: what a task costs
    beyond its transfers and compute (plan round trip, connections, framing), added
    to every predicted latency.
    """

    compute: tuple = ()
    network: float = 1.0
    overhead_s: float = 0.0

    MAX_NODES = 256          # compute factors kept: a testbed has a handful of nodes

    def __post_init__(self):
        factors = dict(self.compute)
        if len(factors) > self.MAX_NODES:
            raise ValueError(f"at most {self.MAX_NODES} compute factors, got {len(factors)}")
        if not all(isinstance(k, str) and 0 < len(k) <= 64 and _number(v) and 0.2 <= v <= 5
                   for k, v in factors.items()):
            raise ValueError("compute factors must map node names (1-64 characters) to numbers in [0.2, 5]")
        if not (_number(self.network) and 0.2 <= self.network <= 5):
            raise ValueError("network factor must be a number in [0.2, 5]")
        if not (_number(self.overhead_s) and 0 <= self.overhead_s <= 1):
            raise ValueError("overhead_s must be a number of seconds in [0, 1]")
        object.__setattr__(self, "compute", tuple(sorted(factors.items())))

    @classmethod
    def from_mapping(cls, fields):
        if not isinstance(fields, dict) or set(fields) - {"compute", "network", "overhead_s"}:
            raise ValueError("calibration must be an object with 'compute', 'network' and/or 'overhead_s'")
        compute = fields.get("compute", {})
        if not isinstance(compute, dict):
            raise ValueError("compute must be an object of node name -> factor")
        return cls(tuple(compute.items()), fields.get("network", 1.0), fields.get("overhead_s", 0.0))

    def as_dict(self):
        return {"compute": dict(self.compute), "network": self.network, "overhead_s": self.overhead_s}

    def share(self, node: str, cpu_share: float) -> float:
        """The cores ``node`` is costed with: its share over its compute factor."""
        return cpu_share / dict(self.compute).get(node, 1.0)


class Ledger:
    """What the plans already made hold, and when.

    Heartbeats lag by up to half a second, so tasks planned in quick succession
    would not see each other in a measured view. The ledger keeps the reservations
    the cost model returned for every plan and hands them to the next decision: for
    the links ('lan', each sender's WAN lane 'wan@<sender>', and each device's uplink
    'acc' and WAN lane 'wan@acc'), when each is next free; for the nodes, the
    intervals they compute in. It also remembers when it last used each link: port
    counters show our own transfers for a while after they end.

    Its ends are the cost model's predictions. A device that says it has no task in
    flight gets what the ledger still holds for it freed (:meth:`release`), so a
    prediction that was too late does not delay its next tasks.
    """

    RETAIN_S = 60.0
    PER_DEVICE = (ACC, DEVICE_LANE)   # stored as '<name>@<device>'

    def __init__(self):
        self._free_at = {}
        self._computing = {}  # node -> [(start, end, device)], absolute times
        self.wan = FairShareLink()
        self.wan_bps = 1e9  # the WAN's capacity, as last given to World.snapshot

    def backlog(self, resource, now):
        return max(self._free_at.get(resource, now) - now, 0.0)

    def used_within(self, resource, now, window_s):
        return self._free_at.get(resource, -float("inf")) > now - window_s

    def wan_used_within(self, now, window_s):
        return any(self.used_within(r, now, window_s) for r in self._free_at if r.startswith(f"{WAN}@"))

    def busy_wan_lanes(self, now):
        return {r for r, t in self._free_at.items() if r.startswith(f"{WAN}@") and t > now}

    @staticmethod
    def of_device(resource, device):
        return f"{resource}@{device}"

    def links(self, now, device):
        """Backlogs of the shared links and of this device's own ones, as the cost model names them."""
        mine = {self.of_device(r, device): r for r in self.PER_DEVICE}
        busy = {}
        for resource in self._free_at:
            if any(resource.startswith(f"{r}@") for r in self.PER_DEVICE) and resource not in mine:
                continue  # another device's
            if (backlog := self.backlog(resource, now)) > 0:
                busy[mine.get(resource, resource)] = backlog
        return tuple(sorted(busy.items()))

    def node_reserved(self, name, now):
        """The node's planned compute still to come, as (start, end) seconds from now."""
        return tuple((max(start - now, 0.0), end - now) for start, end, _ in self._computing.get(name, ()) if end > now)

    def commit(self, reservations, node_names, device, now, wan_bits=()):
        """Record a plan's reservations; ``wan_bits`` gives the size of each of its WAN
        transfers as (lane, bits), lanes named as in the reservations."""
        wan_bps = self.wan_bps
        bits = dict(wan_bits)
        for resource, start, end in reservations:
            if resource in node_names:
                self._computing.setdefault(resource, []).append((now + start, now + end, device))
                continue
            key = self.of_device(resource, device) if resource in self.PER_DEVICE else resource
            if resource in bits:  # a WAN lane: when it empties comes from the replay below
                self.wan.add(key, now + start, bits[resource])
            else:
                self._free_at[key] = max(self._free_at.get(key, now), now + end)
        for lane, ends in self.wan.ends(wan_bps).items():
            self._free_at[lane] = ends[-1]
        self.wan.forget_before(now, wan_bps)
        self._free_at = {k: t for k, t in self._free_at.items() if t > now - self.RETAIN_S}
        self._computing = {n: sorted(i for i in spans if i[1] > now) for n, spans in self._computing.items()}

    def release(self, device, now):
        """The device has no task in flight: what is held for it has ended by ``now``."""
        for resource in self.PER_DEVICE:
            key = self.of_device(resource, device)
            if key in self._free_at:
                self._free_at[key] = min(self._free_at[key], now)
        self.wan.drop(self.of_device(DEVICE_LANE, device))
        self._computing = {n: [i for i in spans if i[2] != device or i[1] <= now]
                           for n, spans in self._computing.items()}


class World:
    """The ledger and the rules by which a new task sees the nodes and links."""

    def __init__(self):
        self.ledger = Ledger()

    def snapshot(self, readings: Iterable[NodeReading], device: str, now: float, wan_bps: float,
                 lan_bps: float, input_bytes: float | None = None) -> Snapshot:
        """The decision core's view for a task from ``device`` arriving at ``now``.

        ``wan_bps`` is the WAN's capacity (what the fair sharing divides),
        ``lan_bps`` the rate between edge nodes. With ``input_bytes`` (the model's
        input) the device's input crossing the WAN is costed at the rate that
        replaying the lanes' planned transfers gives it; an edge node's tensor gets
        the capacity divided by 1 + the number of other busy lanes.
        """
        ledger = self.ledger
        ledger.wan_bps = wan_bps
        lanes = ledger.busy_wan_lanes(now)
        device_lane = ledger.of_device(DEVICE_LANE, device)

        def wan_share(lane):
            if lane == device_lane and input_bytes:
                start, end = ledger.wan.crossing(lane, now, 8.0 * input_bytes, wan_bps)
                if end > start:
                    return 8.0 * input_bytes / (end - start)
            return wan_bps / (1 + len(lanes - {lane}))

        nodes = []
        for r in sorted(readings, key=lambda r: (r.role != "edge", r.name)):
            reserved = ledger.node_reserved(r.name, now)
            # what the ledger knows runs and waits there, where the heartbeats lag behind
            running = any(start <= 0.0 for start, _ in reserved)
            cloud = r.role == "cloud"
            nodes.append(NodeState(
                name=r.name, role=r.role, cpu_share=r.cpu_share, busy=max(r.busy, float(running)),
                queue_len=max(r.queue_len, len(reserved) - running),
                mem_free_bytes=r.mem_free_bytes,
                bw_to_cloud_bps=0.0 if cloud else min(r.to_cloud_bps, wan_share(f"{WAN}@{r.name}")),
                bw_from_device_bps=min(r.from_device_bps, wan_share(device_lane)) if cloud else r.from_device_bps,
                backlog_s=max((end for _, end in reserved), default=None), reserved_s=reserved,
                distance=r.distance))
        return Snapshot(tuple(nodes), now, lan_bps=lan_bps, link_backlog_s=ledger.links(now, device),
                        wan_lanes=True)

    def commit(self, plan: Plan, snapshot: Snapshot, device: str, now: float, store: ProfileStore,
               cost: CostConfig) -> None:
        """Hold what ``plan`` reserves, as the cost model predicts it in ``snapshot``."""
        netview = view_from_snapshot(snapshot, plan.model, store)
        reservations = evaluate(plan, netview, store, cost).reservations
        out_bytes = store.reference(plan.model).out_bytes
        cloud = netview.cloud.name
        senders = (ACC,) + tuple(node for node, _, _ in plan.hops)
        wan_bits = [(netview.wan(sender), 8.0 * float(out_bytes[start]))
                    for sender, (node, start, _) in zip(senders, plan.hops) if node == cloud]
        self.ledger.commit(reservations, {n.name for n in snapshot.nodes}, device, now, wan_bits)

    def release(self, device: str, now: float) -> None:
        self.ledger.release(device, now)
