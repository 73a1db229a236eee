"""Baseline policies and the Oracle; all share ``decide(ctx) -> Plan``.

* :class:`OnlyCloud`  (OC) -- everything in the cloud (p = 0).
* :class:`OnlyEdge`   (OE) -- everything on the *nearest* edge node (p = m); nearest =
  smallest ``distance`` if a per-node distance map is given, else fewest switches from
  the device (the view's ``distance``), then highest device -> node bandwidth, then
  name.  If the whole model does not fit (C1), the deepest cut that does.
* :class:`Neurosurgeon` (NN) -- layer times predicted by a linear regression on
  (FLOPs, params, in/out bytes) fitted to the profiles; best cut for the current
  bandwidth on the nearest edge node; no knowledge of queues.
* :class:`DPTO` (DP) -- always the edge node with the most compute; best cut on it
  with the true cost model including that node's queue (a greedy stand-in for its DRL).
* :class:`RandomPolicy` -- uniform over the feasible actions.
* :class:`Oracle` -- exhaustive over cuts x nodes (x second edge node if ``two_hop``)
  with the true cost model and current queues (myopic: best for this task).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .calibration import MODELS, ProfileStore
from .codec import ActionCodec
from .cost import NetView, NodeView, Plan, all_plans, best_plan, check_plan, cloud_only
from .decision import DecisionContext
from .features import action_mask


def _m(ctx: DecisionContext) -> int:
    return ctx.store.reference(ctx.model).m


def nearest_edge(view: NetView, distance: Mapping[str, float] | None = None) -> NodeView:
    edges = view.edges
    if not edges:
        raise RuntimeError("no edge node in view")
    if distance:
        return min(edges, key=lambda n: (distance.get(n.name, np.inf), n.name))
    return min(edges, key=lambda n: (np.inf if n.distance is None else n.distance, -n.bw_from_device_bps, n.name))


def _cut_plan(model: str, m: int, node: str, p: int, cloud: str) -> Plan:
    if p == 0:
        return cloud_only(model, m, cloud)
    return Plan(model, ((node, 0, p),) if p == m else ((node, 0, p), (cloud, p, m)))


class OnlyCloud:
    name = "only-cloud"

    def decide(self, ctx: DecisionContext) -> Plan:
        return cloud_only(ctx.model, _m(ctx), ctx.view.cloud.name)


@dataclass
class OnlyEdge:
    distance: Mapping[str, float] | None = None
    name: str = "only-edge"

    def decide(self, ctx: DecisionContext) -> Plan:
        node = nearest_edge(ctx.view, self.distance)
        m = _m(ctx)
        for p in range(m, 0, -1):
            plan = _cut_plan(ctx.model, m, node.name, p, ctx.view.cloud.name)
            if not check_plan(plan, ctx.view, ctx.store, ctx.cost):
                return plan
        return cloud_only(ctx.model, m, ctx.view.cloud.name)


class LayerTimeRegressor:
    """t(segment, share) ~ (X . beta) / share, X = [flops, params, in_bytes, out_bytes, 1].

    Fitted by least squares on every (model, host class) profile the store knows, as
    Neurosurgeon does with its per-layer-type regressions.
    """

    def __init__(self, store: ProfileStore, models: tuple[str, ...] = MODELS):
        from .calibration import HOST_CLASSES
        xs, ys = [], []
        for model in models:
            for share in HOST_CLASSES.values():
                prof = store.get(model, share)
                for s in prof.segments:
                    xs.append(self._x(s))
                    ys.append(s.median_s * share)
        self.beta, *_ = np.linalg.lstsq(np.array(xs), np.array(ys), rcond=None)

    @staticmethod
    def _x(s) -> list[float]:
        return [s.flops, float(s.params), float(s.in_bytes), float(s.out_bytes), 1.0]

    def predict(self, prof, share: float) -> np.ndarray:
        x = np.array([self._x(s) for s in prof.segments])
        return np.maximum(x @ self.beta, 1e-5) / share


@dataclass
class Neurosurgeon:
    store: ProfileStore
    distance: Mapping[str, float] | None = None
    name: str = "neurosurgeon"
    _reg: LayerTimeRegressor | None = field(default=None, init=False, repr=False)

    def decide(self, ctx: DecisionContext) -> Plan:
        if self._reg is None:
            self._reg = LayerTimeRegressor(self.store)
        view = ctx.view
        node = nearest_edge(view, self.distance)
        cloud = view.cloud
        prof = ctx.store.reference(ctx.model)
        m = prof.m
        te = np.concatenate([[0.0], np.cumsum(self._reg.predict(prof, node.cpu_share))])
        tc = np.concatenate([[0.0], np.cumsum(self._reg.predict(prof, cloud.cpu_share))])
        d = prof.out_bytes
        best, best_t = 0, np.inf
        for p in range(0, m + 1):
            if p == 0:
                t = 8 * d[0] / cloud.bw_from_device_bps + tc[m]
            else:
                t = 8 * d[0] / node.bw_from_device_bps + te[p]
                if p < m:
                    t += 8 * d[p] / node.bw_to_cloud_bps + tc[m] - tc[p]
            if t < best_t and not check_plan(_cut_plan(ctx.model, m, node.name, p, cloud.name),
                                             view, ctx.store, ctx.cost):
                best, best_t = p, t
        return _cut_plan(ctx.model, m, node.name, best, cloud.name)


@dataclass
class DPTO:
    name: str = "dpto"

    def decide(self, ctx: DecisionContext) -> Plan:
        view = ctx.view
        node = max(view.edges, key=lambda n: (n.cpu_share, n.name))
        m = _m(ctx)
        plans = [_cut_plan(ctx.model, m, node.name, p, view.cloud.name) for p in range(0, m + 1)]
        return best_plan(plans, view, ctx.store, ctx.cost)


@dataclass
class RandomPolicy:
    seed: int = 0
    two_hop: bool = False
    name: str = "random"

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def decide(self, ctx: DecisionContext) -> Plan:
        m = _m(ctx)
        codec = ActionCodec(m, len(ctx.view.edges), self.two_hop)
        mask = ctx.mask if ctx.mask is not None and len(ctx.mask) == codec.n else \
            action_mask(ctx.view, ctx.model, codec, ctx.store, ctx.cost)
        a = int(self.rng.choice(np.flatnonzero(mask)))
        return codec.plan(a, ctx.model, [e.name for e in ctx.view.edges], ctx.view.cloud.name)


@dataclass
class Oracle:
    two_hop: bool = False
    name: str = "oracle"

    def decide(self, ctx: DecisionContext) -> Plan:
        plans = all_plans(ctx.model, _m(ctx), ctx.view, self.two_hop)
        return best_plan(plans, ctx.view, ctx.store, ctx.cost)
