"""The one cost model: latency, money and reward of a partition plan.

Used unchanged by the simulator (which commits the returned reservations to its
queues), by the Oracle and baselines (which only read the numbers) and by the live
decision path (:func:`agents.decision.decide`).  Formulas (5)-(13) of the paper are
implemented here; their reconstruction is documented in docs/decision_core.md.

World model (a star around the access switch):

* a device sends its raw input either to an edge node ``ES_j`` over that node's access
  link (``bw_from_device_bps``; resource ``acc``, the device's one uplink) or to the cloud over
  its uplink and the WAN (the cloud's ``bw_from_device_bps``; resources ``acc`` and ``wan``);
* an edge node forwards an intermediate tensor ``D_p`` to the cloud over the WAN at its
  ``bw_to_cloud_bps`` (resource ``wan``) or to another edge node over the LAN at
  ``NetView.lan_bps`` (resource ``lan``);
* every node and link is a FIFO server: a stage starts when both its input has arrived
  and the resource is free (``backlog_s`` says how long until it is).  This is what
  makes latency grow with the number of tasks.  The live planner splits the WAN into
  one lane per sender (``NetView.wan_lanes``): senders share it fairly, each sender's
  own transfers queue in its lane.

A plan is an ordered tuple of hops ``(node, start_point, end_point)`` covering points
0..m contiguously; at most one hop is on the cloud and it must be the last one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .calibration import ProfileStore
from .config import CostConfig

Hop = tuple[str, int, int]
WAN = "wan"
LAN = "lan"


# The device's one uplink: its transfers to any edge node or to the cloud queue
# behind each other (measured so on the testbed).
ACC = "acc"


@dataclass(frozen=True)
class NodeView:
    """What the cost model needs to know about one node now."""
    name: str
    role: str                          # "edge" | "cloud"
    cpu_share: float                   # cores
    backlog_s: float = 0.0             # seconds until the node's queue is empty
    queue_len: int = 0                 # tasks queued or running
    mem_free_bytes: float | None = None
    bw_to_cloud_bps: float = 0.0       # this node -> cloud (edge nodes)
    bw_from_device_bps: float = 0.0    # device -> this node
    # Work already planned on the node, as (start, end) seconds from now, when known
    # (the live planner's ledger). Planned tasks arrive over time, so the node has
    # idle gaps between them; a task that gets there in a gap long enough is served
    # in it. Without it the node is busy for backlog_s from now.
    reserved: tuple[tuple[float, float], ...] = ()
    distance: int | None = None        # switches between the requesting device and the node

    def start_of(self, arrival_s: float, service_s: float) -> float:
        """When a task arriving at ``arrival_s`` needing ``service_s`` starts computing."""
        if not self.reserved:
            return max(arrival_s, self.backlog_s)
        start = arrival_s
        for begin, end in sorted(self.reserved):
            if begin >= start + service_s:
                break
            start = max(start, end)
        return start


@dataclass(frozen=True)
class NetView:
    """The network view handed to policies: nodes, LAN rate, link backlogs."""
    nodes: tuple[NodeView, ...]
    now: float = 0.0
    lan_bps: float = 1e9
    link_backlog_s: tuple[tuple[str, float], ...] = ()
    # The WAN as fair-shared lanes, one per sender ("wan@acc" the device, "wan@<node>"
    # an edge node), instead of one FIFO: TCP flows from different senders share it
    # at once (the live planner sets the per-sender rates); each sender's own
    # transfers still queue behind each other.
    wan_lanes: bool = False

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node names in view: {names}")
        if sum(n.role == "cloud" for n in self.nodes) != 1:
            raise ValueError("view must contain exactly one node with role 'cloud'")
        for n in self.nodes:
            if n.role not in ("edge", "cloud"):
                raise ValueError(f"node {n.name}: role must be 'edge' or 'cloud', got {n.role!r}")

    def node(self, name: str) -> NodeView:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r} in view")

    @property
    def cloud(self) -> NodeView:
        return next(n for n in self.nodes if n.role == "cloud")

    @property
    def edges(self) -> tuple[NodeView, ...]:
        return tuple(n for n in self.nodes if n.role == "edge")

    @property
    def bandwidth_bps(self) -> float:
        """B of the paper: the device -> cloud (WAN) rate."""
        return self.cloud.bw_from_device_bps

    def wan(self, sender: str) -> str:
        """The resource a WAN transfer from ``sender`` (ACC: the device) holds."""
        return f"{WAN}@{sender}" if self.wan_lanes else WAN

    def link_backlog(self, link: str) -> float:
        for k, v in self.link_backlog_s:
            if k == link:
                return v
        return 0.0


@dataclass(frozen=True)
class Latency:
    """Latency breakdown of one image (seconds); queueing included in each term."""
    edge_s: float = 0.0     # T_edge: waiting + computing on edge nodes
    cloud_s: float = 0.0    # T_cloud: waiting + computing on the cloud
    trans_s: float = 0.0    # T_trans: waiting + sending input and intermediate tensors
    wait_s: float = 0.0     # part of the three above spent queueing
    compute_s: float = 0.0  # part of edge_s and cloud_s spent computing

    @property
    def total_s(self) -> float:
        return self.edge_s + self.cloud_s + self.trans_s


@dataclass(frozen=True)
class Cost:
    exe: float = 0.0        # C_exe = sum over nodes of unit price x compute time
    trans: float = 0.0      # C_trans = bytes x unit price per byte

    @property
    def total(self) -> float:
        return self.exe + self.trans


@dataclass(frozen=True)
class Plan:
    """A partition/offloading plan; ``hops`` cover points 0..m contiguously."""
    model: str
    hops: tuple[Hop, ...]
    latency: Latency | None = None
    cost: Cost | None = None
    reward: float | None = None
    action: int | None = None
    policy: str | None = None     # who produced it (agents.decision.decide fills it in)
    fallback: str | None = None   # why the policy's own plan was replaced, if it was

    def __post_init__(self) -> None:
        hops = tuple((str(n), int(s), int(e)) for n, s, e in self.hops)
        object.__setattr__(self, "hops", hops)
        if not hops:
            raise ValueError("plan needs at least one hop")
        if hops[0][1] != 0:
            raise ValueError(f"plan must start at point 0, got {hops}")
        for (_, _, e0), (_, s1, _) in zip(hops, hops[1:]):
            if s1 != e0:
                raise ValueError(f"plan hops are not contiguous: {hops}")
        for n, s, e in hops:
            if e <= s:
                raise ValueError(f"hop {n} must run at least one segment: {hops}")

    @property
    def m(self) -> int:
        return self.hops[-1][2]

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for n, _, _ in self.hops)


@dataclass(frozen=True)
class Evaluation:
    latency: Latency
    cost: Cost
    reward: float
    reservations: tuple[tuple[str, float, float], ...] = ()   # (resource, start, end), relative to now


def reward_of(latency_s: float, cost: float, w: float) -> float:
    """Formula (2): r = -((1 - w) T_all + w C_all)."""
    return -((1.0 - w) * latency_s + w * cost)


def cloud_only(model: str, m: int, cloud: str = "cloud") -> Plan:
    return Plan(model, ((cloud, 0, m),))


def _in_links(view: NetView, prev: NodeView | None, node: NodeView) -> tuple[tuple[str, ...], float]:
    """The resources a transfer into ``node`` holds, and its rate."""
    if prev is None:
        return ((ACC, view.wan(ACC)) if node.role == "cloud" else (ACC,)), node.bw_from_device_bps
    if node.role == "cloud":
        return (view.wan(prev.name),), prev.bw_to_cloud_bps
    return (LAN,), view.lan_bps


def check_plan(plan: Plan, view: NetView, store: ProfileStore, cfg: CostConfig) -> tuple[str, ...]:
    """Constraints of formula (9); returns the reasons the plan is infeasible (empty = ok).

    C1 memory: parameters of the segments an edge node runs plus its largest tensor
    must fit in ``mem_free_bytes``.  C2 CPU: the node must have CPU (share > 0) and less
    than ``max_backlog_s`` of queued work.  C3 tasks: fewer than ``max_queue`` tasks.
    Also: known nodes, links with bandwidth, cloud only as the last hop.
    """
    prof = store.reference(plan.model)
    m = prof.m
    why: list[str] = []
    if plan.m != m:
        return (f"plan ends at point {plan.m} but {plan.model} has m={m}",)
    seen: set[str] = set()
    prev: NodeView | None = None
    pbytes = prof.param_bytes
    obytes = prof.out_bytes
    for i, (name, s, e) in enumerate(plan.hops):
        try:
            node = view.node(name)
        except KeyError:
            return (f"unknown node {name!r}",)
        if name in seen:
            why.append(f"node {name} used twice")
        seen.add(name)
        if node.role == "cloud" and i != len(plan.hops) - 1:
            why.append("cloud hop must be last")
        _, bw = _in_links(view, prev, node)
        if not bw > 0:
            why.append(f"no bandwidth into {name}")
        if node.cpu_share <= 0:
            why.append(f"C2: {name} has no CPU")
        if node.role == "edge":
            if node.mem_free_bytes is not None:
                need = float(pbytes[s:e].sum() + obytes[s:e + 1].max())
                if need > node.mem_free_bytes:
                    why.append(f"C1: {name} needs {need / 1e6:.1f} MB, has {node.mem_free_bytes / 1e6:.1f} MB")
            if node.backlog_s >= cfg.max_backlog_s:
                why.append(f"C2: {name} has {node.backlog_s:.1f}s of queued work")
            if node.queue_len >= cfg.max_queue:
                why.append(f"C3: {name} runs {node.queue_len} tasks (max {cfg.max_queue})")
        prev = node
    return tuple(why)


def evaluate(plan: Plan, view: NetView, store: ProfileStore, cfg: CostConfig,
             link_free: Mapping[str, float] | None = None,
             node_free: Mapping[str, float] | None = None) -> Evaluation:
    """Latency, cost and reward of one image through ``plan``, starting now (t = 0).

    ``link_free``/``node_free`` (seconds from now until free) override the backlogs in
    ``view``; :func:`batch_cost` uses them to chain images through the same queues.
    """
    prof = store.reference(plan.model)
    obytes = prof.out_bytes
    prices = cfg.prices
    t = 0.0
    edge_s = cloud_s = trans_s = wait_s = compute_s = 0.0
    exe = tcost = 0.0
    res: list[tuple[str, float, float]] = []
    prev: NodeView | None = None
    for name, s, e in plan.hops:
        node = view.node(name)
        # ---- transfer D_s into the node (raw input when s == 0) ----
        if prev is None or prev.name != node.name:
            links, bw = _in_links(view, prev, node)
            nbytes = float(obytes[s])
            dur = 8.0 * nbytes / bw if bw > 0 else float("inf")
            start = max([t] + [(link_free or {}).get(link, view.link_backlog(link)) for link in links])
            wait_s += start - t
            trans_s += (start - t) + dur
            t = start + dur
            res += [(link, start, t) for link in links]
            tcost += nbytes * (prices.wan_per_byte if node.role == "cloud" else prices.lan_per_byte)
        # ---- compute segments s+1..e ----
        svc = float(store.seg_times(plan.model, node.cpu_share)[s:e].sum())
        free = (node_free or {}).get(name)
        start = node.start_of(t, svc) if free is None else max(t, free)
        w = start - t
        wait_s += w
        if node.role == "cloud":
            cloud_s += w + svc
        else:
            edge_s += w + svc
        t = start + svc
        compute_s += svc
        res.append((name, start, t))
        exe += prices.per_s(name, node.role) * svc
        prev = node
    lat = Latency(edge_s, cloud_s, trans_s, wait_s, compute_s)
    cost = Cost(exe, tcost)
    return Evaluation(lat, cost, reward_of(lat.total_s, cost.total, cfg.weight), tuple(res))


def priced(plan: Plan, view: NetView, store: ProfileStore, cfg: CostConfig,
           action: int | None = None) -> Plan:
    """``plan`` with its predicted latency, cost and reward filled in."""
    ev = evaluate(plan, view, store, cfg)
    return Plan(plan.model, plan.hops, ev.latency, ev.cost, ev.reward,
                plan.action if action is None else action)


@dataclass(frozen=True)
class BatchCost:
    """Formulas (5)-(13) for a batch T of k images, i of them on the edge plan."""
    t_edge: float
    t_cloud: float
    t_trans: float
    c_exe: float
    c_trans: float
    makespan_s: float
    reward: float

    @property
    def t_k(self) -> float:      # formula (5)
        return self.t_edge + self.t_cloud + self.t_trans

    @property
    def c_all(self) -> float:    # formula (13)
        return self.c_exe + self.c_trans


def batch_cost(edge_plan: Plan, k: int, i: int, view: NetView, store: ProfileStore,
               cfg: CostConfig, queued: bool = False) -> BatchCost:
    """Cost of a batch of ``k`` images: ``i`` follow ``edge_plan``, ``k - i`` go to the cloud.

    With ``queued=False`` every image sees the current backlogs only (the paper's
    additive formulas (5)-(8)); with ``queued=True`` the images are sent one after the
    other through the same FIFO resources, so later ones wait for earlier ones.
    """
    if not 0 <= i <= k:
        raise ValueError(f"need 0 <= i <= k, got i={i}, k={k}")
    m = store.reference(edge_plan.model).m
    cplan = cloud_only(edge_plan.model, m, view.cloud.name)
    node_free = {n.name: n.backlog_s for n in view.nodes}
    link_free = dict(view.link_backlog_s)
    te = tc = tt = ce = ct = 0.0
    end = 0.0
    for j in range(k):
        plan = edge_plan if j < i else cplan
        ev = evaluate(plan, view, store, cfg,
                      link_free if queued else None, node_free if queued else None)
        te += ev.latency.edge_s
        tc += ev.latency.cloud_s
        tt += ev.latency.trans_s
        ce += ev.cost.exe
        ct += ev.cost.trans
        if queued:
            for r, _, e in ev.reservations:
                (node_free if r in node_free else link_free)[r] = e
        end = max(end, max(e for _, _, e in ev.reservations))
    w = cfg.weight
    return BatchCost(te, tc, tt, ce, ct, end, reward_of(te + tc + tt, ce + ct, w))


def all_plans(model: str, m: int, view: NetView, two_hop: bool = False) -> list[Plan]:
    """Every plan over cuts x edge nodes (x second edge node); index order is stable."""
    cloud = view.cloud.name
    edges = [n.name for n in view.edges]
    plans = [cloud_only(model, m, cloud)]
    for p in range(1, m + 1):
        for j in edges:
            plans.append(Plan(model, ((j, 0, p),) if p == m else ((j, 0, p), (cloud, p, m))))
    if two_hop:
        for p in range(1, m):
            for q in range(p + 1, m + 1):
                for j in edges:
                    for k in edges:
                        if j == k:
                            continue
                        hops = [(j, 0, p), (k, p, q)]
                        if q < m:
                            hops.append((cloud, q, m))
                        plans.append(Plan(model, tuple(hops)))
    return plans


def best_plan(plans: Iterable[Plan], view: NetView, store: ProfileStore, cfg: CostConfig,
              feasible_only: bool = True) -> Plan:
    """The plan of highest reward under the true cost model (ties: first)."""
    best: Plan | None = None
    best_r = -np.inf
    for plan in plans:
        if feasible_only and check_plan(plan, view, store, cfg):
            continue
        ev = evaluate(plan, view, store, cfg)
        if ev.reward > best_r:
            best_r = ev.reward
            best = Plan(plan.model, plan.hops, ev.latency, ev.cost, ev.reward, plan.action)
    if best is None:
        raise RuntimeError("no feasible plan")
    return best


def per_point_sums(times: Sequence[float]) -> np.ndarray:
    """Prefix sums: element p = time of segments 1..p (p = 0..m)."""
    return np.concatenate([[0.0], np.cumsum(np.asarray(times, dtype=float))])
