"""Observation vector and action mask, shared by the simulator and the live path.

(park's lesson: one definition of the spaces, used by both the env and the system.)

State S = {B, ES_1..ES_n, D_1..D_m} of the paper, normalised:

* B as log10(Mbit/s)/2, the backlog of the device's WAN lane and of its uplink;
* D_p for p = 0..m both relative to the input (D_p / D_0) and as its transfer time
  over the current WAN rate (8 D_p / B, squashed) -- "D normalised by B";
* the cloud's backlog and queue length;
* per edge slot: CPU share, backlog, queue length, free memory, access and uplink rates.

An agent is trained for ``n`` edge *slots* (its checkpoint names them). A view's
edge nodes fill them by name, unknown names in order into the free slots
(:func:`edge_slots`); a slot with no node (missing from the topology, or down) has
all-zero features and every action on it is masked out. A view with more edge
nodes than slots cannot be served: :class:`SlotError`.

Times are squashed with ``log1p(t / 10 ms) / 5`` (0 -> 0, 1 s -> 0.92, 60 s -> 1.74).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .calibration import ProfileStore
from .codec import ActionCodec
from .config import CostConfig
from .cost import ACC, NetView, NodeView, Plan, check_plan
from .decision import DecisionError

OBS_LOW, OBS_HIGH = -10.0, 10.0
EDGE_FEATURES = 7

Slots = tuple[NodeView | None, ...]


class SlotError(DecisionError):
    """The view has more edge nodes than the agent has slots."""


def edge_slots(view: NetView, names: Sequence[str]) -> Slots:
    """The view's edge nodes in the slots ``names`` (an agent's trained edge names).

    A node whose name is a slot's takes that slot; the others take the free slots in
    name order; slots left over are ``None`` (masked out).
    """
    by_name = {e.name: e for e in view.edges}
    slots: list[NodeView | None] = [by_name.pop(name, None) for name in names]
    for node in sorted(by_name.values(), key=lambda n: n.name):
        if None not in slots:
            raise SlotError(f"the view has {len(view.edges)} edge nodes ({', '.join(e.name for e in view.edges)}) "
                            f"but the agent was trained for {len(names)} ({', '.join(names)})")
        slots[slots.index(None)] = node
    return tuple(slots)


def slot_names(slots: Slots) -> list[str]:
    """Node names for the codec; an empty slot gets a name no node has (its actions are masked)."""
    return [n.name if n is not None else f"<empty slot {i}>" for i, n in enumerate(slots)]


def squash(t: float) -> float:
    return math.log1p(max(t, 0.0) / 0.01) / 5.0


def _lg(bps: float, div: float) -> float:
    return math.log10(max(bps, 1.0) / 1e6) / div


def obs_dim(m: int, n_edge: int) -> int:
    return 3 + 2 * (m + 1) + 2 + EDGE_FEATURES * n_edge


def observe(view: NetView, model: str, store: ProfileStore, slots: Slots | None = None) -> np.ndarray:
    """The state vector; ``slots`` (default: the view's edge nodes in order) as :func:`edge_slots`."""
    prof = store.reference(model)
    d = prof.out_bytes
    b = view.bandwidth_bps
    f = [_lg(b, 2.0), squash(view.link_backlog(view.wan(ACC))), squash(view.link_backlog(ACC))]
    f += list(d / d[0])
    f += [squash(8.0 * x / b) if b > 0 else 2.0 for x in d]
    c = view.cloud
    f += [squash(c.backlog_s), c.queue_len / 10.0]
    full = float(prof.seg_times.sum())
    for e in (view.edges if slots is None else slots):
        if e is None:
            f += [0.0] * EDGE_FEATURES
            continue
        f += [e.cpu_share, squash(e.backlog_s), e.queue_len / 10.0,
              1.0 if e.mem_free_bytes is None else min(e.mem_free_bytes / 1e9, 4.0),
              _lg(e.bw_from_device_bps, 3.0), _lg(e.bw_to_cloud_bps, 2.0),
              squash(full / max(e.cpu_share, 1e-3))]
    return np.clip(np.asarray(f, dtype=np.float32), OBS_LOW, OBS_HIGH)


_NEED: dict[int, tuple[object, np.ndarray]] = {}


def _need(prof) -> np.ndarray:
    """need[s, e] = parameter bytes of segments s+1..e + largest tensor among points s..e."""
    hit = _NEED.get(id(prof))
    if hit is not None and hit[0] is prof:
        return hit[1]
    m = prof.m
    pb = np.concatenate([[0.0], np.cumsum(prof.param_bytes)])
    ob = prof.out_bytes
    need = np.full((m + 1, m + 1), np.inf)
    for s in range(m):
        mx = ob[s]
        for e in range(s + 1, m + 1):
            mx = max(mx, ob[e])
            need[s, e] = pb[e] - pb[s] + mx
    _NEED[id(prof)] = (prof, need)
    return need


def action_mask(view: NetView, model: str, codec: ActionCodec, store: ProfileStore,
                cfg: CostConfig, gated: bool = False, slots: Slots | None = None) -> np.ndarray:
    """1 for feasible actions (constraints C1-C3), 0 otherwise; gated -> cloud only.

    The all-cloud action is always allowed so that the mask is never empty; actions
    on an empty slot never are.  Vectorised over the codec; equal to
    :func:`action_mask_slow` (which calls ``check_plan`` per action) -- a unit test
    holds the two together.
    """
    if gated:
        return codec.cloud_only_mask()
    prof = store.reference(model)
    m = prof.m
    edges = view.edges if slots is None else slots
    if len(edges) != codec.n_edge or m != codec.m:
        raise ValueError(f"codec (m={codec.m}, n={codec.n_edge}) does not fit view/model (m={m}, n={len(edges)})")
    need = _need(prof)
    alive = np.array([e is not None and e.cpu_share > 0 and e.backlog_s < cfg.max_backlog_s
                      and e.queue_len < cfg.max_queue for e in edges])
    first = alive & np.array([e is not None and e.bw_from_device_bps > 0 for e in edges])
    up = np.array([e is not None and e.bw_to_cloud_bps > 0 for e in edges])
    mem = np.array([0.0 if e is None else np.inf if e.mem_free_bytes is None else e.mem_free_bytes
                    for e in edges])
    fits = need[None, :, :] <= mem[:, None, None]            # [j, s, e]
    p = np.arange(1, m + 1)
    single = first[None, :] & fits[:, 0, p].T & ((p == m)[:, None] | up[None, :])   # [p-1, j]
    mask = np.zeros(codec.n, dtype=np.int8)
    mask[0] = 1
    mask[1:codec.n_single] = single.reshape(-1)
    if codec.n > codec.n_single:
        P, Q, J, K = codec.pair_arrays()
        ok = (first[J] & alive[K] & fits[J, 0, P] & fits[K, P, Q] & (view.lan_bps > 0)
              & ((Q == m) | up[K]))
        mask[codec.n_single:] = ok
    return mask


def action_mask_slow(view: NetView, model: str, codec: ActionCodec, store: ProfileStore,
                     cfg: CostConfig, gated: bool = False, slots: Slots | None = None) -> np.ndarray:
    """Reference implementation of :func:`action_mask` through ``check_plan``."""
    if gated:
        return codec.cloud_only_mask()
    names = [e.name for e in view.edges] if slots is None else slot_names(slots)
    cloud = view.cloud.name
    mask = np.zeros(codec.n, dtype=np.int8)
    mask[0] = 1
    for a in range(1, codec.n):
        plan = Plan(model, codec.hops(a, names, cloud))
        if not check_plan(plan, view, store, cfg):
            mask[a] = 1
    return mask
