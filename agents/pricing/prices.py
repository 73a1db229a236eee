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
before pricing the job, so the bound holds for the job being priced).  ``L`` is the value
density at which prices start to bite, as OASiS's lower bound.  See docs/pricing.md.

Baselines: ``oasis`` -- OASiS's form ``L (U/L) ** (q/c)`` (``L`` when idle, ``U`` when full);
``flat`` -- one fixed price per node-slot; ``zero`` -- no prices (first-fit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.config import ConfigError, _nonneg, _pos

PRICE_KINDS = ("exp", "oasis", "flat", "zero")
#: integral: the mean of the price over [q, q+1] (the discrete integral); left: the price at
#: q (the i-th node a job takes at q + i); literal: the text's rule, every node at the current q
CHARGES = ("integral", "left", "literal")


@dataclass(frozen=True)
class PriceConfig:
    kind: str = "exp"
    low_density: float = 0.05      #: L_w: scale of the price (alpha = L (eta^u - 1)); tuned, docs/pricing.md
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
        self._key, self._version = None, -1
        self._gw = self._gp = None

    # -- eta (the text's lower bounds) --------------------------------------------------
    @property
    def eta_w(self) -> float:
        c = self.config
        return 1.0 + (1.0 + c.margin) * self.U_w / c.low_density

    @property
    def eta_p(self) -> float:
        c = self.config
        return 1.0 + (1.0 + c.margin) * self.U_p / c.ps_low_density

    def observe(self, job) -> None:
        """Raise U_w, U_p to this job's value densities if they exceed them."""
        slot_s = self.cluster.slot_s
        peak = job.utility.peak
        self.U_w = max(self.U_w, peak / job.min_worker_slots(slot_s))
        self.U_p = max(self.U_p, peak / job.min_ps_slots(slot_s))

    # -- per-unit prices -----------------------------------------------------------------
    def unit_prices(self, q, h, capw=None, capp=None) -> tuple[np.ndarray, np.ndarray]:
        """alpha and beta at usage q (S, W, ...), h (S, P, ...); capacities broadcast likewise."""
        cl, c = self.cluster, self.config
        capw = cl.worker_cap[:, :, None] if capw is None else capw
        capp = cl.ps_cap[:, :, None] if capp is None else capp
        uw, up = q / np.maximum(capw, 1), h / np.maximum(capp, 1)
        if c.kind == "exp":
            a, b = exp_price(uw, c.low_density, self.eta_w), exp_price(up, c.ps_low_density, self.eta_p)
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
            a = _mean_exp(u0w, u1w, c.low_density, self.eta_w) - c.low_density
            b = _mean_exp(u0p, u1p, c.ps_low_density, self.eta_p) - c.ps_low_density
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
        servers whose usage changed since the last call (all of them when U changed).
        """
        key = (id(usage), self.U_w, self.U_p)
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
        cl, c = self.cluster, self.config
        Iw, Ip = self._gw.shape[2], self._gp.shape[2]
        lw = np.arange(Iw)[None, None, :, None] if c.charge != "literal" else np.zeros((1, 1, Iw, 1))
        lp = np.arange(Ip)[None, None, :, None] if c.charge != "literal" else np.zeros((1, 1, Ip, 1))
        q = usage.q[servers][:, :, None, :] + lw
        h = usage.h[servers][:, :, None, :] + lp
        capw = cl.worker_cap[servers][:, :, None, None]
        capp = cl.ps_cap[servers][:, :, None, None]
        if c.charge == "integral":
            a, b = self.unit_charges(q, h, capw, capp)
        else:
            a, b = self.unit_prices(np.minimum(q, capw), np.minimum(h, capp), capw, capp)
        self._gw[servers, :, :, 1:] = np.cumsum(a, axis=3)     # (fancy indexing: no out=)
        self._gp[servers, :, :, 1:] = np.cumsum(b, axis=3)

    def full_use_prices(self) -> tuple[np.ndarray, np.ndarray]:
        """alpha, beta of every (server, type) at full use (for the docs and tests)."""
        cl = self.cluster
        q = cl.worker_cap[:, :, None].astype(float)
        h = cl.ps_cap[:, :, None].astype(float)
        a, b = self.unit_prices(q, h)
        return a[:, :, 0], b[:, :, 0]
