"""The interface the live controller calls: ``decide(policy, snapshot, task) -> Plan``.

Pure: no Ryu, no Mininet, no clock reads -- the snapshot carries ``now``.  The
controller builds a :class:`Snapshot` from its network view, calls :func:`decide`,
and maps the node names of ``Plan.hops`` to addresses.  Training never happens here;
a policy only runs a forward pass (see :class:`agents.dqn.Agent`).

The plan :func:`decide` returns names the policy that really produced it
(``Plan.policy``). A policy that cannot serve the task at all (an agent trained for
another model, or for fewer edge nodes than the view has) raises
:class:`DecisionError`, which :func:`decide` passes on: an explicit error, never a
plan in its name. Only an infeasible plan is replaced, by the all-cloud plan, and
``Plan.fallback`` then says why.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from .calibration import ProfileStore
from .config import CostConfig
from .cost import NetView, NodeView, Plan, check_plan, cloud_only, priced


FALLBACK_POLICY = "all-cloud-fallback"


class DecisionError(RuntimeError):
    """The policy cannot serve this task (explicit error, never a silent fallback)."""


@dataclass(frozen=True)
class NodeState:
    name: str
    role: str                       # "edge" | "cloud"
    cpu_share: float                # cores allotted
    busy: float                     # utilisation of the running task, 0..1
    queue_len: int                  # tasks waiting (not counting the running one)
    mem_free_bytes: float | None
    bw_to_cloud_bps: float
    bw_from_device_bps: float
    backlog_s: float | None = None  # if the node reports it: seconds of queued work
    reserved_s: tuple[tuple[float, float], ...] = ()  # planned work, (start, end) s from now
    distance: int | None = None     # switches between the requesting device and the node

    def __post_init__(self) -> None:
        if self.role not in ("edge", "cloud"):
            raise ValueError(f"node {self.name}: role must be 'edge' or 'cloud', got {self.role!r}")
        if self.bw_to_cloud_bps < 0 or self.bw_from_device_bps < 0:
            raise ValueError(f"node {self.name}: negative bandwidth")
        if self.cpu_share < 0:
            raise ValueError(f"node {self.name}: negative cpu_share")


@dataclass(frozen=True)
class Snapshot:
    nodes: tuple[NodeState, ...]
    now: float
    lan_bps: float = 1e9            # edge <-> edge rate
    link_backlog_s: tuple[tuple[str, float], ...] = ()  # ("wan" | "lan" | "acc", seconds busy)
    wan_lanes: bool = False         # see agents.cost.NetView


@dataclass(frozen=True)
class Task:
    model: str
    q: float | None = None          # complexity score if already computed
    image: np.ndarray | None = None  # raw image, for the predictor, if q is None
    task_id: str = ""


@dataclass
class DecisionContext:
    """Everything a policy may look at (the ``state_view`` of the baselines)."""
    view: NetView
    model: str
    store: ProfileStore
    cost: CostConfig
    q: float | None = None
    obs: np.ndarray | None = None
    mask: np.ndarray | None = None


class Policy(Protocol):
    name: str

    def decide(self, ctx: DecisionContext) -> Plan: ...


def view_from_snapshot(snapshot: Snapshot, model: str, store: ProfileStore) -> NetView:
    """Turn the controller's snapshot into the cost model's view.

    A node that does not report ``backlog_s`` gets ``(busy / 2 + queue_len) x`` the
    time of one full inference of ``model`` at its CPU share (half the running task
    left on average, plus the queued ones).
    """
    nodes = []
    for n in snapshot.nodes:
        if n.backlog_s is not None:
            backlog = n.backlog_s
        else:
            full = float(store.seg_times(model, max(n.cpu_share, 1e-3)).sum())
            backlog = (0.5 * n.busy + n.queue_len) * full
        nodes.append(NodeView(n.name, n.role, n.cpu_share, backlog,
                              n.queue_len + (1 if n.busy > 0 else 0), n.mem_free_bytes,
                              n.bw_to_cloud_bps, n.bw_from_device_bps, n.reserved_s, n.distance))
    return NetView(tuple(nodes), snapshot.now, snapshot.lan_bps, tuple(snapshot.link_backlog_s),
                   snapshot.wan_lanes)


def decide(policy: Policy, snapshot: Snapshot, task: Task, store: ProfileStore | None = None,
           cost: CostConfig | None = None) -> Plan:
    """One decision: the policy's plan, priced by the cost model, never infeasible.

    If the policy's plan is infeasible (or it finds none: ``RuntimeError``), the
    all-cloud plan is returned instead, with ``policy`` = ``FALLBACK_POLICY`` and
    ``fallback`` saying why. :class:`DecisionError` is raised, not replaced.
    """
    store = store or ProfileStore()
    cost = cost or CostConfig()
    view = view_from_snapshot(snapshot, task.model, store)
    ctx = DecisionContext(view, task.model, store, cost, task.q)
    if ctx.q is None and task.image is not None and getattr(policy, "predictor", None) is not None:
        ctx.q = float(policy.predictor.predict(task.image))  # type: ignore[attr-defined]
    fallback = None
    try:
        plan = policy.decide(ctx)
    except DecisionError:
        raise
    except RuntimeError as exc:
        fallback, plan = f"{policy.name} found no plan: {exc}", None
    if plan is not None and (problems := check_plan(plan, view, store, cost)):
        fallback = f"{policy.name}'s plan {plan.hops} is infeasible: {'; '.join(problems)}"
    if fallback is not None:
        plan = cloud_only(task.model, store.reference(task.model).m, view.cloud.name)
    priced_plan = priced(plan, view, store, cost)
    return replace(priced_plan, policy=FALLBACK_POLICY if fallback else policy.name, fallback=fallback)


def seen_nodes(snapshot):
    """What a decision saw of each node (heartbeats and ledger together), as the live
    planner keeps it with the task's record, to be set beside the simulator's view of
    the same moment: {name: [busy, queued, planned work left (ms), Mbit/s from the
    device, Mbit/s to the cloud]}."""
    return {n.name: [round(n.busy, 2), n.queue_len, round(1e3 * (n.backlog_s or 0.0), 1),
                     round(n.bw_from_device_bps / 1e6, 2), round(n.bw_to_cloud_bps / 1e6, 2)]
            for n in snapshot.nodes}
