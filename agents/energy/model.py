"""The system model: one instance (devices, their tasks, the network) and its cost tables.

An :class:`Instance` is D devices, each with one task T_n = (i_n bytes, c_n cycles,
t_n^max) and attached to one AP.  :func:`build_tables` computes, once per instance, the
cost of every device in every situation it can be in:

* local (d_i = 0): independent of the others, with the closed-form frequency f*;
* offloaded (d_i = 1): depends only on k, the number of devices offloading through
  the same AP (its share W / k of the band and c / k of the wired link), and K, the
  number offloaded in total (its share f_EC / K of the edge CPU), with the best
  transmit power p* for that (k, K).

so that the cost of any decision vector, or of 2^D of them at once, is a table
look-up (:func:`evaluate`).  Formulas: docs/energy.md (equations E1-E14).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import SystemParams
from .resources import (
    local_cost,
    local_frequency,
    power_for_energy,
    power_for_rate,
    power_stationary,
    rate,
)

#: extra cost per violated constraint when an objective must rank infeasible schedules
PENALTY = 1000.0


@dataclass(frozen=True, eq=False)
class Instance:
    """D devices with one task each (arrays of length D) and the shared system."""
    input_bytes: np.ndarray   #: i_n
    cycles: np.ndarray        #: c_n
    t_max: np.ndarray         #: t_n^max, seconds
    f_max: np.ndarray         #: Hz
    kappa: np.ndarray         #: J / (cycle Hz^2)
    p_max: np.ndarray         #: W
    gain: np.ndarray          #: h_i, channel power gain (linear)
    e_total: np.ndarray       #: P_total, J
    e_remain: np.ndarray      #: P_remain, J
    ap: np.ndarray            #: index of the AP the device is attached to (0-based)
    system: SystemParams = SystemParams()

    def __post_init__(self) -> None:
        n = len(self.cycles)
        for name in ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a <= 0):
                raise ValueError(f"Instance.{name} must be {n} finite positive numbers")
            object.__setattr__(self, name, a)
        ap = np.asarray(self.ap, dtype=np.int64)
        if ap.shape != (n,) or np.any(ap < 0) or np.any(ap >= self.system.n_aps):
            raise ValueError(f"Instance.ap must be {n} AP indices in 0..{self.system.n_aps - 1}")
        object.__setattr__(self, "ap", ap)
        if np.any(self.e_remain > self.e_total * (1 + 1e-12)):
            raise ValueError("Instance.e_remain must not exceed e_total")

    @property
    def n(self) -> int:
        return len(self.cycles)

    @property
    def battery_ratio(self) -> np.ndarray:
        """r^p_i = P_remain / P_total (E5)."""
        return self.e_remain / self.e_total

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(lambda_t', lambda_e'): lambda_t' = lambda_t r^p, lambda_e' = 1 - lambda_t' (E6)."""
        lt = self.system.lambda_t * self.battery_ratio
        return lt, 1.0 - lt

    def with_battery_ratio(self, ratio: float | np.ndarray) -> Instance:
        return replace(self, e_remain=np.broadcast_to(np.asarray(ratio, dtype=np.float64), (self.n,)) * self.e_total)

    def with_system(self, **kw) -> Instance:
        return replace(self, system=replace(self.system, **kw))

    def subset(self, idx) -> Instance:
        idx = np.asarray(idx)
        return replace(self, **{f: getattr(self, f)[idx] for f in
                                ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain",
                                 "e_total", "e_remain", "ap")})


@dataclass(frozen=True, eq=False)
class Tables:
    """Per-device costs.  Local arrays have shape (D,); offload arrays (D, D+1, D+1) indexed
    [device, k = offloaders on its AP (itself included), K = offloaders in total]."""
    inst: Instance
    lt: np.ndarray
    le: np.ndarray
    f_loc: np.ndarray
    t_loc: np.ndarray
    e_loc: np.ndarray
    c_loc: np.ndarray
    ok_loc: np.ndarray
    p_off: np.ndarray
    t_off: np.ndarray
    e_off: np.ndarray
    c_off: np.ndarray
    ok_off: np.ndarray
    ap_onehot: np.ndarray     #: (D, n_aps)


def build_tables(inst: Instance) -> Tables:
    sysp, n = inst.system, inst.n
    lt, le = inst.weights()
    # --- local (E1, E2, E4 with f* of E8)
    f, ok_loc = local_frequency(lt, le, inst.cycles, inst.t_max, inst.f_max, inst.kappa, inst.e_remain)
    t_loc = inst.cycles / f
    e_loc = inst.kappa * f * f * inst.cycles
    c_loc = local_cost(f, lt, le, inst.cycles, inst.kappa)
    # --- offload (E9-E13) on the grid k = 0..n (AP sharers), K = 0..n (edge sharers)
    col = (slice(None), None, None)
    bits = (8.0 * inst.input_bytes)[col]
    ks = np.maximum(np.arange(n + 1, dtype=np.float64), 1.0)
    k = ks[None, :, None]
    big_k = ks[None, None, :]
    w = sysp.bandwidth_hz / k                                   # (1, n+1, 1): equal split of W
    g = inst.gain[col] / (sysp.noise_w_hz * w)                  # SNR per watt on that share
    t_wired = bits * k / sysp.ap_edge_bps
    t_edge = inst.cycles[col] * big_k / sysp.edge_hz
    t_avail = inst.t_max[col] - t_wired - t_edge               # (n, n+1, n+1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        p_lo = np.where(t_avail > 0, power_for_rate(w, g, bits / np.where(t_avail > 0, t_avail, 1.0)), np.inf)
    p_batt = power_for_energy(bits, w, g, inst.p_max[col], inst.e_remain[col])   # (n, n+1, 1)
    p_hi = np.where(p_batt >= 0, p_batt, inst.p_max[col])
    p_stat = power_stationary(lt[col], le[col], g, inst.p_max[col])
    p = np.minimum(np.maximum(p_stat, np.minimum(p_lo, p_hi)), p_hi)
    ok_off = (t_avail > 0) & (p_batt >= 0) & (p_lo <= p_hi * (1 + 1e-9))
    ok_off &= (big_k >= k) & (np.arange(n + 1)[None, :, None] >= 1)
    r = rate(w, g, p)
    t_tx = bits / r
    t_off = t_tx + t_wired + t_edge
    e_off = p * t_tx
    c_off = lt[col] * t_off + le[col] * e_off
    onehot = np.zeros((n, sysp.n_aps))
    onehot[np.arange(n), inst.ap] = 1.0
    return Tables(inst, lt, le, f, t_loc, e_loc, c_loc, ok_loc, np.broadcast_to(p, t_off.shape),
                  t_off, e_off, c_off, ok_off, onehot)


@dataclass(frozen=True, eq=False)
class Outcome:
    """The result of decision vectors X (M, D): per device and totals (arrays with a leading M)."""
    decisions: np.ndarray
    cost: np.ndarray          #: (M, D) per-device cost O_i (E14)
    latency: np.ndarray       #: (M, D)
    energy: np.ndarray        #: (M, D)
    feasible: np.ndarray      #: (M, D) C1, C2 (and C3, C4 by construction) hold for the device
    power: np.ndarray         #: (M, D) transmit power (0 where local)
    freq: np.ndarray          #: (M, D) local frequency (0 where offloaded)

    @property
    def total(self) -> np.ndarray:
        return self.cost.sum(axis=1)

    @property
    def all_feasible(self) -> np.ndarray:
        return self.feasible.all(axis=1)

    def penalised(self, penalty: float = PENALTY) -> np.ndarray:
        return self.total + penalty * (~self.feasible).sum(axis=1)


def loads(tab: Tables, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, K) for decision vectors x (M, D): offloaders on each device's AP, offloaders in total."""
    x = np.asarray(x, dtype=np.float64)
    per_ap = x @ tab.ap_onehot                                # (M, n_aps)
    k = per_ap[:, tab.inst.ap].astype(np.int64)
    big_k = x.sum(axis=1, keepdims=True).astype(np.int64)
    return k, np.broadcast_to(big_k, k.shape)


def evaluate(tab: Tables, x) -> Outcome:
    """Cost, latency, energy and feasibility of decision vectors x ((D,) or (M, D), 1 = offload)."""
    x = np.atleast_2d(np.asarray(x)).astype(bool)
    k, big_k = loads(tab, x)
    dev = np.broadcast_to(np.arange(tab.inst.n), x.shape)
    pick = (dev, k, big_k)
    cost = np.where(x, tab.c_off[pick], tab.c_loc)
    lat = np.where(x, tab.t_off[pick], tab.t_loc)
    en = np.where(x, tab.e_off[pick], tab.e_loc)
    ok = np.where(x, tab.ok_off[pick], tab.ok_loc)
    power = np.where(x, tab.p_off[pick], 0.0)
    freq = np.where(x, 0.0, tab.f_loc)
    return Outcome(x, cost, lat, en, ok, power, freq)


def all_decisions(n: int) -> np.ndarray:
    """Every decision vector of n devices, (2^n, n) bool, row m = binary digits of m."""
    if n > 20:
        raise ValueError(f"2^{n} decision vectors is too many to enumerate")
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
