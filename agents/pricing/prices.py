"""Price functions of utilisation per (server, node type, slot).

The text's step 4 (its eq. (5) lost in the source) is reconstructed as

    alpha_sw(q) = L_w * (eta_w ** (q / c_sw) - 1),    beta_sp(h) = L_p * (eta_p ** (h / c_sp) - 1)

zero when idle (q = 0), exponential in utilisation, and ``L (eta - 1)`` at full use.  The
text asks that at full use no job be admitted, "even one that asks for a single node":
every schedule of job j uses at least ``W_min_j`` worker-slots (and ``K_min_j`` PS-slots), so
its cost on fully used resources is at least ``W_min_j L_w (eta_w - 1)``, which exceeds
``f_j`` for every j iff

    eta_w >= 1 + U_w / L_w,   U_w = max_j f_j^max / W_min_j      (value per worker-slot)
    eta_p >= 1 + U_p / L_p,   U_p = max_j f_j^max / K_min_j      (value per PS-slot)

We take ``eta = 1 + (1 + margin) U / L``.  U starts at a prior and grows to the largest
value density observed (step 7 updates eta when a job finishes; we also update on arrival,
before pricing the job, so the bound holds for the job being priced).

``L`` sets how early prices bite: ``L (eta^u - 1) ~ L (U/L)^u - L`` is OASiS's price shifted
to zero when idle, and OASiS takes L = the lowest value density.  The text prices "from
history and the system's state" (step 4) and updates eta as jobs finish (step 7), so by
default (``low="learned"``) L is learned online: the lowest value density seen times the
estimated probability that a bid is refused, ``(refused + 1) / (decided + 2)`` (Laplace's
rule).  While (almost) every bid fits, L -> 0 and prices stay near zero except near full use
(the text: "accept as many jobs as possible"); when capacity binds and bids are refused, L
rises towards the lowest density, as OASiS's.  L is rounded down to a power of 2^(1/4), so the
prices are recomputed a few dozen times per run, not at every job.  ``low="fixed"``: L is
``low_density`` / ``ps_low_density``.  See docs/pricing.md.

Baselines: ``oasis`` -- OASiS's form ``L (U/L) ** (q/c)`` (``L`` when idle, ``U`` when full);
``flat`` -- one fixed price per node-slot; ``zero`` -- no prices (first-fit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents.config import ConfigError, _nonneg, _pos

PRICE_KINDS = ("exp", "oasis", "flat", "zero")
#: integral: the mean of the price over [q, q+1] (the discrete integral); left: the price at
#: q (the i-th node a job takes at q + i); literal: the text's rule, every node at the current q
CHARGES = ("integral", "left", "literal")
#: learned: L = lowest value density seen x (refused + 1) / (decided + 2); fixed: low_density
LOW_RULES = ("learned", "fixed")
_GRID = 4                           #: L is rounded down to a power of 2 ** (1 / _GRID)


@dataclass(frozen=True)
class PriceConfig:
    kind: str = "exp"
    low: str = "learned"            #: how L is set: learned (online, see above) | fixed
    low_density: float = 0.05      #: L_w if low=fixed, and before the first job if learned
    ps_low_density: float = 0.05    #: L_p: same for PS nodes
    high_density: float = 20.0      #: prior of U_w (value per worker-slot)
    ps_high_density: float = 20.0   #: prior of U_p
    margin: float = 0.01            #: eta = 1 + (1 + margin) U / L: strictly above at full use
    flat_worker: float = 2.0        #: kind=flat: price of one worker-slot
    flat_ps: float = 1.0            #: kind=flat: price of one PS-slot
    oasis_low: float = 1.0          #: kind=oasis: L, the price when idle (the lowest value density)
    charge: str = "left"            #: what the node raising usage q -> q+1 pays: integral | left | literal

    def __post_init__(self) -> None:
        if self.kind not in PRICE_KINDS:
            raise ConfigError(f"prices.kind must be one of {', '.join(PRICE_KINDS)}, got {self.kind!r}")
        for f in ("low_density", "ps_low_density", "high_density", "ps_high_density"):
            _pos(f"prices.{f}", getattr(self, f))
        _pos("prices.oasis_low", self.oasis_low)
        for f in ("margin", "flat_worker", "flat_ps"):
            _nonneg(f"prices.{f}", getattr(self, f))
        if self.low not in LOW_RULES:
            raise ConfigError(f"prices.low must be one of {', '.join(LOW_RULES)}, got {self.low!r}")
        if self.charge not in CHARGES:
            raise ConfigError(f"prices.charge must be one of {', '.join(CHARGES)}, got {self.charge!r}")
        if self.high_density < self.low_density or self.ps_high_density < self.ps_low_density:
            raise ConfigError("prices: high_density must be >= low_density (U >= L)")


def exp_price(util: np.ndarray, low: float, eta: float) -> np.ndarray:
    """L (eta^u - 1) for utilisation u in [0, 1]."""
    return low * np.expm1(util * np.log(eta))


def _mean_exp(u0, u1, low, base):
    """Mean of low * base^u over [u0, u1] (u1 > u0)."""
    lb = np.log(base)
    if lb < 1e-12:
        return np.full(np.broadcast(u0, u1).shape, float(low))
    return low * (np.exp(u1 * lb) - np.exp(u0 * lb)) / ((u1 - u0) * lb)


class PriceBook:
    """Prices of one provider; prefix sums over slots, refreshed when usage changes."""

    def __init__(self, cluster, config: PriceConfig = PriceConfig()):
        self.cluster, self.config = cluster, config
        self.U_w, self.U_p = config.high_density, config.ps_high_density
        self.lowest_w = self.lowest_p = float("inf")     # the lowest value densities seen
        self.decided = self.refused = 0
        self._key, self._version = None, -1
        self._gw = self._gp = None

    # -- L and eta (the text's lower bounds) --------------------------------------------
    @property
    def L_w(self) -> float:
        return self._low(self.lowest_w, self.config.low_density)

    @property
    def L_p(self) -> float:
        return self._low(self.lowest_p, self.config.ps_low_density)

    def _low(self, lowest: float, fixed: float) -> float:
        if self.config.low == "fixed" or lowest == float("inf"):
            return fixed
        learned = lowest * (self.refused + 1) / (self.decided + 2)
        return 2.0 ** (math.floor(_GRID * math.log2(learned)) / _GRID)

    @property
    def eta_w(self) -> float:
        return 1.0 + (1.0 + self.config.margin) * self.U_w / self.L_w

    @property
    def eta_p(self) -> float:
        return 1.0 + (1.0 + self.config.margin) * self.U_p / self.L_p

    def observe(self, job) -> None:
        """Take this job's value densities into U (the highest seen) and the lowest seen."""
        slot_s = self.cluster.slot_s
        peak = job.utility.peak
        dw, dp = peak / job.min_worker_slots(slot_s), peak / job.min_ps_slots(slot_s)
        self.U_w, self.U_p = max(self.U_w, dw), max(self.U_p, dp)
        if peak > 0:                                    # a bid of 0 is never admitted: no scale
            self.lowest_w, self.lowest_p = min(self.lowest_w, dw), min(self.lowest_p, dp)

    def decided_on(self, admitted: bool) -> None:
        """Count one decision (the refused fraction of low="learned")."""
        self.decided += 1
        self.refused += not admitted

    # -- per-unit prices -----------------------------------------------------------------
    def unit_prices(self, q, h, capw=None, capp=None) -> tuple[np.ndarray, np.ndarray]:
        """alpha and beta at usage q (S, W, ...), h (S, P, ...); capacities broadcast likewise."""
        cl, c = self.cluster, self.config
        capw = cl.worker_cap[:, :, None] if capw is None else capw
        capp = cl.ps_cap[:, :, None] if capp is None else capp
        uw, up = q / np.maximum(capw, 1), h / np.maximum(capp, 1)
        if c.kind == "exp":
            a, b = exp_price(uw, self.L_w, self.eta_w), exp_price(up, self.L_p, self.eta_p)
        elif c.kind == "oasis":
            a = c.oasis_low * (self.U_w / c.oasis_low) ** uw
            b = c.oasis_low * (self.U_p / c.oasis_low) ** up
        elif c.kind == "flat":
            a, b = np.full(uw.shape, c.flat_worker), np.full(up.shape, c.flat_ps)
        else:
            a, b = np.zeros(uw.shape), np.zeros(up.shape)
        return a, b

    def unit_charges(self, q, h, capw, capp) -> tuple[np.ndarray, np.ndarray]:
        """What the node that raises usage from q to q + 1 is charged per slot: the mean of
        the price function over that step of utilisation (its discrete integral)."""
        c = self.config
        cw, cp = np.maximum(capw, 1), np.maximum(capp, 1)
        u0w, u1w = np.minimum(q, cw - 1) / cw, np.minimum(q + 1, cw) / cw
        u0p, u1p = np.minimum(h, cp - 1) / cp, np.minimum(h + 1, cp) / cp
        if c.kind == "exp":
            a = _mean_exp(u0w, u1w, self.L_w, self.eta_w) - self.L_w
            b = _mean_exp(u0p, u1p, self.L_p, self.eta_p) - self.L_p
        elif c.kind == "oasis":
            a = _mean_exp(u0w, u1w, c.oasis_low, self.U_w / c.oasis_low)
            b = _mean_exp(u0p, u1p, c.oasis_low, self.U_p / c.oasis_low)
        else:
            return self.unit_prices(q, h, capw, capp)
        return a, b

    def levels(self, usage) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative interval prices of the i-th extra node: (S, W, Iw, T+1), (S, P, Ip, T+1).

        ``GW[s, w, i, t]`` sums over slots < t the charge of one more worker when ``i`` more
        are already being taken (see ``CHARGES``).  Refreshed for the
        servers whose usage changed since the last call (all of them when U or L changed).
        """
        key = (id(usage), self.U_w, self.U_p) + ((self.L_w, self.L_p) if self.config.kind == "exp" else ())
        if key != self._key or self._gw is None:
            servers = np.arange(self.cluster.n_servers)
            cl = self.cluster
            S, T = cl.n_servers, cl.slots
            self._gw = np.zeros((S, cl.n_worker_types, max(1, int(cl.worker_cap.max())), T + 1))
            self._gp = np.zeros((S, cl.n_ps_types, max(1, int(cl.ps_cap.max())), T + 1))
        elif self._version != usage.version:
            servers = usage.changed_since(self._version)
        else:
            return self._gw, self._gp
        if len(servers):
            self._refresh(usage, servers)
        self._key, self._version = key, usage.version
        return self._gw, self._gp

    def _refresh(self, usage, servers) -> None:
        """Prefix sums over slots of the charges on ``servers``.  A charge depends only on the
        type, the capacity and the usage it is taken at, so it is evaluated once per (type,
        capacity, usage) and summed per (server, type, level) in one compiled loop: in numpy a
        full refresh at 300 servers (every U or L change) took 35-60 ms."""
        from .fast import charge_prefix_sums
        cl = self.cluster
        step = 0 if self.config.charge == "literal" else 1     # the i-th extra node is taken at q + i
        tw, tp = self._charge_tables(self._gw.shape[2], self._gp.shape[2])
        charge_prefix_sums(self._gw, usage.q, cl.worker_cap, tw, servers, step)
        charge_prefix_sums(self._gp, usage.h, cl.ps_cap, tp, servers, step)

    def _charge_tables(self, Iw: int, Ip: int) -> tuple[np.ndarray, np.ndarray]:
        """(W, Cw + 1, Cw + Iw), (P, Cp + 1, Cp + Ip): the charge of one more node taken at usage
        v on a (server, type) of capacity c, for v up to c_max + I - 1 (see ``CHARGES``)."""
        cl = self.cluster

        def grid(n_types, cap_max, levels):
            shape = (1, n_types, cap_max + 1, cap_max + levels)
            use = np.broadcast_to(np.arange(shape[3])[None, None, None, :], shape)
            cap = np.broadcast_to(np.arange(shape[2])[None, None, :, None], shape)
            return use, cap
        q, capw = grid(cl.n_worker_types, int(cl.worker_cap.max()), Iw)
        h, capp = grid(cl.n_ps_types, int(cl.ps_cap.max()), Ip)
        if self.config.charge == "integral":
            a, b = self.unit_charges(q, h, capw, capp)
        else:
            a, b = self.unit_prices(np.minimum(q, capw), np.minimum(h, capp), capw, capp)
        return (np.ascontiguousarray(np.broadcast_to(a, q.shape)[0], dtype=float),
                np.ascontiguousarray(np.broadcast_to(b, h.shape)[0], dtype=float))

    def full_use_prices(self) -> tuple[np.ndarray, np.ndarray]:
        """alpha, beta of every (server, type) at full use (for the docs and tests)."""
        cl = self.cluster
        q = cl.worker_cap[:, :, None].astype(float)
        h = cl.ps_cap[:, :, None].astype(float)
        a, b = self.unit_prices(q, h)
        return a[:, :, 0], b[:, :, 0]
