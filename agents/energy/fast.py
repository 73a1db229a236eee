"""The claim-2 rounds with N = 1 as one compiled loop (numba).

:meth:`agents.energy.policy.DqnPolicy.raw` with ``n_exec = 1`` runs ten rounds for ten
devices; in numpy each round is some thirty calls on arrays of ten rows, and their
per-call overhead, not the arithmetic, made a decision take 0.6 ms (p99 1.2 ms). This
kernel does the same rounds on the arrays :class:`~agents.energy.mdp.OffloadState`
prepares: the same observation (:meth:`OffloadState.features`, column for column), the
same masked argmax of Q and the same first-lowest marginal cost. The network's forward
pass sums in another order than numpy's BLAS, so Q can differ in the last float32 bit;
``tests/unit/test_energy_policy.py`` checks that the decisions are the numpy path's.
"""
from __future__ import annotations

import numba
import numpy as np

from .mdp import COST_CAP, OBS_DIM, OffloadState


@numba.njit(cache=True)
def _forward(obs, w1, b1, w2, b2, w3, b3):
    h1 = np.maximum(obs @ w1 + b1, np.float32(0.0))
    h2 = np.maximum(h1 @ w2 + b2, np.float32(0.0))
    return h2 @ w3 + b3


@numba.njit(cache=True)
def _others_delta(off, n_off, ap, k_ap, big_k, flat_off, s1, n_aps):
    """(n_aps,): added cost on the devices already offloaded if one more offloads via AP j."""
    out = np.zeros(n_aps)
    if n_off == 0:
        return out
    before = 0.0
    after_other = 0.0
    for m in range(n_off):
        i = off[m]
        base = i * s1 * s1 + k_ap[ap[i]] * s1 + big_k
        before += flat_off[base]
        after_other += flat_off[base + 1]
    for m in range(n_off):
        i = off[m]
        base = i * s1 * s1 + k_ap[ap[i]] * s1 + big_k
        out[ap[i]] += flat_off[base + s1 + 1] - flat_off[base + 1]
    return out + (after_other - before)


@numba.njit(cache=True)
def claim2_rounds(n, n_aps, ap, u_ap0, grid, template, flat_off, w1, b1, w2, b2, w3, b3):
    """Decisions (bool, n) of N = 1 rounds: each round, every pending device's masked
    argmax action; the lowest marginal cost among them is executed."""
    x = np.full(n, -1, np.int8)
    k_ap = np.zeros(n_aps, np.int64)
    u_ap = u_ap0.copy()
    off = np.empty(n, np.int64)
    n_off = 0
    big_k = 0
    s1 = n + 1
    others = _others_delta(off, n_off, ap, k_ap, big_k, flat_off, s1, n_aps)
    obs = np.empty((n, OBS_DIM), np.float32)
    marginal = np.empty((n, 2))
    mask = np.empty((n, 2), np.bool_)
    pending = np.arange(n)
    left = n
    while left > 0:
        u = left - 1
        big_now = big_k + 1
        for r in range(left):
            i = pending[r]
            j = ap[i]
            kj = k_ap[j]
            obs[r] = template[i]
            for c in range(3):
                obs[r, 8 + c] = grid[i, kj + 1, big_now, c]
            kp, bp = min(kj + u_ap[j], n), min(big_now + u, n)
            obs[r, 11] = grid[i, kp, bp, 0]
            obs[r, 12] = grid[i, kp, bp, 1]
            obs[r, 13] = min(others[j], COST_CAP)
            obs[r, 14] = k_ap[j] / n
            obs[r, 15] = big_k / n
            obs[r, 16] = (u_ap[j] - 1) / n
            obs[r, 17] = u / n
            obs[r, 19] = min(max(grid[i, kj + 1, big_now, 7] + others[j], -COST_CAP), COST_CAP)
            mask[r, 0] = grid[i, kj + 1, big_now, 5] > 0
            mask[r, 1] = grid[i, kj + 1, big_now, 6] > 0
            marginal[r, 0] = grid[i, kj + 1, big_now, 3]
            marginal[r, 1] = grid[i, kj + 1, big_now, 4] + others[j]
        q = _forward(obs[:left], w1, b1, w2, b2, w3, b3)
        best, best_cost, best_act = 0, np.inf, 0
        for r in range(left):
            q0 = q[r, 0] if mask[r, 0] else -np.inf
            q1 = q[r, 1] if mask[r, 1] else -np.inf
            act = 1 if q1 > q0 else 0
            if marginal[r, act] < best_cost:
                best, best_cost, best_act = r, marginal[r, act], act
        i = pending[best]
        x[i] = best_act
        u_ap[ap[i]] -= 1
        if best_act == 1:
            off[n_off] = i
            n_off += 1
            k_ap[ap[i]] += 1
            big_k += 1
            others = _others_delta(off, n_off, ap, k_ap, big_k, flat_off, s1, n_aps)
        pending[best:left - 1] = pending[best + 1:left].copy()
        left -= 1
    return x == 1


def fast_raw(state: OffloadState, layers) -> np.ndarray:
    """:func:`claim2_rounds` on a fresh state; ``layers``: the agent's (w, b) pairs."""
    (w1, b1), (w2, b2), (w3, b3) = layers
    return claim2_rounds(state.n, state.n_aps, state.ap, state.u_ap, state.grid, state.template, state.flat_off,
                         w1, b1, w2, b2, w3, b3)
