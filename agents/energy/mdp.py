"""The MDP of the text: state o_l = <D, U_cpu, P_trans>, action offload-or-not, reward A - cost.

:class:`OffloadState` is the state after some devices have been decided: D (the decisions
so far, summarised per AP as the text's "offload situation"), U_cpu (each device's usable
CPU frequency f*), P_trans (its transmit power budget).  :meth:`OffloadState.features`
turns it into the observation of any pending device, vectorised over all pending devices
at once (the execution order of claim 2 scores them all each round), together with the
action mask and the marginal cost of each action (the reward is ``A - marginal cost``;
summed over an episode the marginal costs telescope to the schedule's total cost).

Observation (``OBS_DIM`` floats, costs capped at ``COST_CAP``), for pending device i on AP j;
columns 0-7 depend on the device alone (computed once per instance), 8-19 on the state:

====  =====================================================================
0-2   lambda_t', lambda_e', battery ratio r^p_i
3-4   local cost of i (with f*), local feasible (C1, C2)
5     U_cpu: f*_i / f_max_i
6     P_trans: p_max_i / 0.5 W
7     local time / t_max
8-10  own offload cost at the current load (k_j + 1, K + 1), feasible, offload time / t_max
11-12 own offload cost if every pending device also offloads, feasible
13    extra cost the move puts on the devices already offloaded
14-18 k_j / D, K / D, pending on AP j / D, pending in all / D, D / 10   (the D part)
19    (offload marginal - local marginal) cost
====  =====================================================================
"""
from __future__ import annotations

import numpy as np

from .model import Tables

OBS_DIM = 20
COST_CAP = 10.0
P_SCALE_W = 0.5


class OffloadState:
    """Decisions so far (``x``: -1 pending, 0 local, 1 offload) and the loads they imply."""

    def __init__(self, tab: Tables, penalty: float):
        self.tab = tab
        inst = tab.inst
        self.n, self.ap, self.n_aps = inst.n, inst.ap, inst.system.n_aps
        self.x = np.full(self.n, -1, np.int8)
        self.k_ap = np.zeros(self.n_aps, np.int64)
        self.big_k = 0
        self.u_ap = np.bincount(self.ap, minlength=self.n_aps).astype(np.int64)
        self.pc_loc = tab.c_loc + penalty * ~tab.ok_loc
        self.pc_off = tab.c_off + penalty * ~tab.ok_off
        self.static = np.stack([tab.lt, tab.le, inst.battery_ratio, np.minimum(self.pc_loc, COST_CAP),
                                tab.ok_loc, tab.f_loc / inst.f_max, inst.p_max / P_SCALE_W,
                                np.minimum(tab.t_loc / inst.t_max, COST_CAP)], axis=1).astype(np.float32)
        # (n, n+1, n+1, 8) per (device, k, K): offload cost (penalised, capped), feasible, time / t_max,
        # local cost, offload cost, the action mask (local, offload), offload - local cost
        shape = self.pc_off.shape
        loc = np.broadcast_to(self.pc_loc[:, None, None], shape)
        ok_loc = np.broadcast_to(tab.ok_loc[:, None, None], shape)
        self.grid = np.stack([np.minimum(self.pc_off, COST_CAP), tab.ok_off,
                              np.minimum(tab.t_off / inst.t_max[:, None, None], COST_CAP), loc, self.pc_off,
                              ok_loc | ~tab.ok_off, tab.ok_off | ~ok_loc, self.pc_off - loc], axis=-1)
        self.ok_loc = tab.ok_loc
        self._others: np.ndarray | None = None
        self.template = np.zeros((self.n, OBS_DIM), np.float32)
        self.template[:, 0:8] = self.static
        self.template[:, 18] = self.n / 10.0
        self.flat_off = np.ascontiguousarray(self.pc_off).reshape(-1)
        self.off: list[int] = []          # devices decided to offload, in decision order
        self.todo: list[int] = list(range(self.n))

    @property
    def pending(self) -> np.ndarray:
        return np.array(self.todo, dtype=np.int64)

    def _others_delta(self) -> np.ndarray:
        """(n_aps,): added cost on the devices already offloaded if one more offloads via AP j."""
        if not self.off:
            return np.zeros(self.n_aps)
        off = np.asarray(self.off)
        ap_m = self.ap[off]
        k_m = self.k_ap[ap_m]
        s1 = self.n + 1
        base = off * (s1 * s1) + k_m * s1 + self.big_k
        before = self.flat_off[base]
        after_other = self.flat_off[base + 1]              # same k, K + 1
        after_same = self.flat_off[base + s1 + 1]          # k + 1, K + 1
        return (after_other.sum() - before.sum()) + np.bincount(ap_m, after_same - after_other, self.n_aps)

    def features(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs (P, OBS_DIM) float32, mask (P, 2) bool, marginal cost (P, 2)) of devices ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        n = self.n
        j = self.ap[idx]
        kj = self.k_ap[j]
        u = len(self.todo) - 1
        k_now, big_now = kj + 1, self.big_k + 1
        now = self.grid[idx, k_now, big_now]                                   # (P, 8)
        pess = self.grid[idx, np.minimum(kj + self.u_ap[j], n), min(big_now + u, n)]
        if self._others is None:                 # changes only when an offload is executed
            self._others = self._others_delta()
            self._per_ap = np.empty((self.n_aps, 5), np.float32)   # columns 13-17, per AP
            self._per_ap[:, 0] = np.minimum(self._others, COST_CAP)
            self._per_ap[:, 1] = self.k_ap / n
            self._per_ap[:, 2] = self.big_k / n
        per_ap = self._per_ap
        per_ap[:, 3] = (self.u_ap - 1) / n
        per_ap[:, 4] = u / n
        others = self._others[j]
        obs = self.template[idx]
        obs[:, 8:11] = now[:, :3]
        obs[:, 11:13] = pess[:, :2]
        obs[:, 13:18] = per_ap[j]
        obs[:, 19] = np.minimum(np.maximum(now[:, 7] + others, -COST_CAP), COST_CAP)
        mask = now[:, 5:7] > 0                   # nothing feasible for a device now: both allowed
        marginal = now[:, 3:5].copy()
        marginal[:, 1] += others
        return obs, mask, marginal

    def apply(self, i: int, a: int) -> None:
        if self.x[i] >= 0:
            raise ValueError(f"device {i} already decided")
        self.x[i] = a
        self.todo.remove(i)
        self.u_ap[self.ap[i]] -= 1
        if a:
            self.off.append(i)
            self._others = None
            self.k_ap[self.ap[i]] += 1
            self.big_k += 1

    @property
    def done(self) -> bool:
        return bool((self.x >= 0).all())

    def decisions(self) -> np.ndarray:
        return self.x == 1
