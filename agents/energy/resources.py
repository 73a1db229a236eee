"""Closed-form resource choices of one device: local CPU frequency f and transmit power p.

Both are per-device, per-load problems (the load fixes the device's share of the AP band):

* local cost  ``L(f) = lt * c / f + le * kappa * f**2 * c``  is convex on f > 0; its
  stationary point is ``f' = (lt / (2 le kappa)) ** (1/3)`` (eq. E7 of docs/energy.md),
  and the optimum on the feasible interval ``[c / t_max, min(f_max, sqrt(E / (kappa c)))]``
  (deadline C1, battery C2, C3) is f' clipped to it (:func:`local_frequency`);
* offload cost of the radio hop ``i * (lt + le * p) / r(p)``, ``r(p) = w log2(1 + g p)``,
  is quasi-convex in p (a positive affine function over a positive concave one); its
  stationary point solves ``le (1+gp) ln(1+gp) = g lt + le g p`` and has the closed form
  ``p' = (exp(W0((g lt / le - 1) / e) + 1) - 1) / g`` with W0 the principal Lambert W
  (:func:`power_stationary`); the optimum on ``[p_lo, p_hi]`` is p' clipped to it.

Everything is vectorised over numpy arrays.
"""
from __future__ import annotations

import numpy as np
from scipy.special import lambertw


def local_frequency_stationary(lt, le, kappa):
    """f' = (lt / (2 le kappa))^(1/3); +inf where le == 0 (latency only: run as fast as allowed)."""
    lt, le, kappa = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (lt, le, kappa)))
    with np.errstate(divide="ignore"):
        return np.where(le > 0, np.cbrt(lt / np.maximum(2.0 * le * kappa, 1e-300)), np.inf)


def local_bounds(cycles, t_max, f_max, kappa, e_remain):
    """(f_lo, f_hi): C1 needs f >= c / t_max; C3 f <= f_max; C2 kappa f^2 c <= E_remain."""
    f_lo = np.asarray(cycles, dtype=np.float64) / np.asarray(t_max, dtype=np.float64)
    f_hi = np.minimum(f_max, np.sqrt(np.asarray(e_remain, dtype=np.float64) / (np.asarray(kappa) * cycles)))
    return f_lo, f_hi


def local_frequency(lt, le, cycles, t_max, f_max, kappa, e_remain):
    """(f*, feasible): f' clipped to [f_lo, f_hi]; where the interval is empty, f* = f_hi
    (the least-violating choice, used only for penalised costs) and feasible is False."""
    f_lo, f_hi = local_bounds(cycles, t_max, f_max, kappa, e_remain)
    f_stat = local_frequency_stationary(lt, le, kappa)
    f = np.minimum(np.maximum(f_stat, f_lo), f_hi)
    return f, f_lo <= f_hi * (1 + 1e-12)


def local_cost(f, lt, le, cycles, kappa):
    return lt * cycles / f + le * kappa * f * f * cycles


def power_stationary(lt, le, g, p_max):
    """Unconstrained minimiser p' of (lt + le p) / log2(1 + g p) (closed form, Lambert W);
    p_max where le == 0 (then the cost only falls with p)."""
    lt, le, g, p_max = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (lt, le, g, p_max)))
    safe_le = np.where(le > 0, le, 1.0)
    z = (g * lt / safe_le - 1.0) / np.e                 # >= -1/e since g lt >= 0
    u = np.real(lambertw(np.maximum(z, -1.0 / np.e)))
    p = np.expm1(u + 1.0) / g                          # (exp(u + 1) - 1) / g
    return np.where(le > 0, p, np.inf)


def rate(w, g, p):
    """Shannon rate w log2(1 + g p) in bit/s (g = h / (N0 w), the SNR per watt)."""
    return w * np.log2(1.0 + g * p)


def power_for_rate(w, g, r):
    """Smallest p with rate(w, g, p) >= r."""
    return np.expm1(np.asarray(r, dtype=np.float64) / w * np.log(2.0)) / g


def power_for_energy(bits, w, g, p_max, e_budget):
    """Largest p in [0, p_max] whose radio energy ``p * bits / r(p)`` stays <= e_budget (C2).

    The energy rises with p (``p / ln(1 + g p)`` is increasing) from ``bits ln2 / (w g)``
    at p -> 0; -1 where even that exceeds the budget.  With x = g p and
    ``s = g e_budget w / (bits ln2)`` the boundary solves ``x / ln(1 + x) = s``, i.e.
    ``1 + x = -s W_{-1}(-e^{-1/s} / s)`` (the non-trivial Lambert-W branch; W0 gives x = 0).
    """
    bits, w, g, p_max, e_budget = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (bits, w, g, p_max, e_budget)))
    s = g * e_budget * w / (bits * np.log(2.0))
    ok = s > 1.0
    s_safe = np.where(ok, s, 2.0)
    z = np.maximum(-np.exp(-1.0 / s_safe) / s_safe, -1.0 / np.e)
    y = -s_safe * np.real(lambertw(z, k=-1))
    p = np.minimum(p_max, np.maximum(y - 1.0, 0.0) / g)
    return np.where(ok, p, -1.0)
