"""Training jobs: utility of the completion time, work, and the schedules a job may take.

A job ``j`` (the text's b_j) arrives at slot ``r_j`` with ``d_j`` data chunks of ``m_j``
mini-batches each and trains at most ``e_j`` epochs.  With worker type ``w`` and PS type
``p`` one mini-batch takes ``tau[w, p]`` seconds on one worker, so the job needs
``W_req = ceil(e_j d_j m_j tau[w, p] / slot_s)`` worker-slots (constraint 1g).  Each chunk
is trained by at most one worker, so at most ``d_j`` workers (1b).  Workers are never
pre-empted (1c): ``n`` workers hold their nodes over the whole interval of ``k`` slots,
hence ``n k >= W_req``.  For one ``n`` the shortest interval ``k_n = ceil(W_req / n)`` is the
only one worth considering: a longer one with the same ``n`` uses more node-slots (prices
are >= 0) and finishes later (utility non-increasing), so it is dominated.

The utility ``f_j(d)`` is of the job's duration ``d = end - r_j + 1`` slots (arrival to the
end of its last slot), non-negative and non-increasing, and 0 after ``deadline`` slots.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from agents.config import ConfigError

UTILITY_KINDS = ("linear", "sigmoid", "step")


@dataclass(frozen=True)
class Utility:
    """f(d): ``value`` at the shortest durations, falling to 0 after ``deadline`` slots.

    linear:  value * (deadline - d + 1) / deadline for 1 <= d <= deadline
    sigmoid: value / (1 + exp(steep * (d - 0.6 deadline) / deadline)), cut to 0 after deadline
    step:    value for d <= deadline
    """
    kind: str
    value: float
    deadline: int
    steep: float = 8.0

    def __post_init__(self) -> None:
        if self.kind not in UTILITY_KINDS:
            raise ConfigError(f"utility.kind must be one of {', '.join(UTILITY_KINDS)}, got {self.kind!r}")
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and self.value >= 0):
            raise ConfigError(f"utility.value must be a finite number >= 0, got {self.value!r}")
        if int(self.deadline) != self.deadline or self.deadline < 1:
            raise ConfigError(f"utility.deadline must be an integer >= 1 (slots), got {self.deadline!r}")
        if not (math.isfinite(self.steep) and self.steep > 0):
            raise ConfigError(f"utility.steep must be > 0, got {self.steep!r}")

    def __call__(self, d):
        d = np.asarray(d, dtype=float)
        if self.kind == "linear":
            v = self.value * (self.deadline - d + 1) / self.deadline
        elif self.kind == "sigmoid":
            v = self.value / (1.0 + np.exp(self.steep * (d - 0.6 * self.deadline) / self.deadline))
        else:
            v = np.full(d.shape, float(self.value))
        v = np.where((d >= 1) & (d <= self.deadline), v, 0.0)
        return v if v.ndim else float(v)

    @property
    def peak(self) -> float:
        """The largest value f can take (at d = 1)."""
        return float(self(1))


@dataclass(frozen=True, eq=False)
class Job:
    """One training job as submitted.  Arrays: ``tau_s[w, p]`` seconds per mini-batch
    (``inf``: the pair cannot run it), ``delay[s]`` slots until its data reach server ``s``
    (0 at the server next to its source)."""
    jid: int
    arrival: int
    utility: Utility
    chunks: int                 #: d_j
    minibatches: int            #: m_j, per chunk
    epochs: int                 #: e_j
    tau_s: np.ndarray           #: (W, P) seconds per mini-batch on one worker
    grad_bytes: float           #: gradient (= parameter) size, bytes
    delay: np.ndarray           #: (S,) data transfer delay to each server, slots
    origin: int = 0             #: server next to the job's data
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("chunks", "minibatches", "epochs"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ConfigError(f"job {self.jid}: {name} must be an integer >= 1, got {v!r}")
        if int(self.arrival) != self.arrival or self.arrival < 0:
            raise ConfigError(f"job {self.jid}: arrival must be a slot >= 0, got {self.arrival!r}")
        tau = np.asarray(self.tau_s, dtype=float)
        if tau.ndim != 2 or np.any(np.isnan(tau)) or np.any(tau <= 0):
            raise ConfigError(f"job {self.jid}: tau_s must be a (W, P) array of times > 0 (inf: unusable)")
        delay = np.asarray(self.delay)
        if delay.ndim != 1 or np.any(delay < 0) or np.any(delay != np.round(delay)):
            raise ConfigError(f"job {self.jid}: delay must be a (S,) array of whole slots >= 0")
        if not (math.isfinite(self.grad_bytes) and self.grad_bytes > 0):
            raise ConfigError(f"job {self.jid}: grad_bytes must be > 0")
        object.__setattr__(self, "tau_s", tau)
        object.__setattr__(self, "delay", delay.astype(np.int64))

    @property
    def minibatches_total(self) -> int:
        return self.epochs * self.chunks * self.minibatches

    def worker_slots(self, slot_s: float) -> np.ndarray:
        """W_req[w, p]: worker-slots the job needs (a large sentinel where tau is inf)."""
        with np.errstate(invalid="ignore"):
            need = np.ceil(self.minibatches_total * self.tau_s / slot_s - 1e-9)
        return np.where(np.isfinite(need), need, np.iinfo(np.int32).max).astype(np.int64)

    def options(self, w: int, p: int, slot_s: float) -> list[tuple[int, int]]:
        """Non-dominated (n workers, k slots) for types (w, p), k ascending.

        Only durations with positive utility (k <= deadline) are kept.
        """
        cache = self.__dict__.setdefault("_options_cache", {})
        key = (w, p, slot_s)
        if key not in cache:
            cache[key] = self._options(w, p, slot_s)
        return cache[key]

    def _options(self, w: int, p: int, slot_s: float) -> list[tuple[int, int]]:
        if not np.isfinite(self.tau_s[w, p]):
            return []
        need = int(self.worker_slots(slot_s)[w, p])
        out, last_k = [], None
        for n in range(1, self.chunks + 1):
            k = max(1, -(-need // n))
            if last_k is None or k < last_k:
                out.append((n, k))
                last_k = k
        return sorted((nk for nk in out if nk[1] <= self.utility.deadline), key=lambda nk: nk[1])

    def min_worker_slots(self, slot_s: float) -> int:
        """The fewest worker-slots any schedule of this job uses (min over types of W_req)."""
        return int(self.worker_slots(slot_s).min())

    def min_ps_slots(self, slot_s: float) -> int:
        """The fewest PS-slots any schedule uses: >= 1 PS over >= ceil(W_req / d_j) slots (1f)."""
        return max(1, -(-self.min_worker_slots(slot_s) // self.chunks))
