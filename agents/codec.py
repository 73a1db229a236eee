"""One ``Discrete`` action <-> (partition point x edge node [x second edge node]).

Index layout (``m`` segments, ``n`` edge nodes):

* ``0``                         : p = 0, everything in the cloud;
* ``1 + (p - 1) * n + j``        : p in 1..m on edge node j (p = m: all on the edge);
* with ``two_hop``, then for 1 <= p < q <= m and j != k (in that loop order):
  ES_j runs 1..p, ES_k runs p+1..q, the cloud runs the rest (none if q = m).

The layout is the same as :func:`agents.cost.all_plans`, so ``all_plans(...)[a]``
is the plan of action ``a``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cost import Plan


@dataclass(frozen=True)
class ActionCodec:
    m: int
    n_edge: int
    two_hop: bool = False
    _pairs: tuple[tuple[int, int, int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.m < 1 or self.n_edge < 1:
            raise ValueError(f"codec needs m >= 1 and n_edge >= 1, got m={self.m}, n_edge={self.n_edge}")
        pairs: list[tuple[int, int, int, int]] = []
        if self.two_hop and self.n_edge >= 2:
            for p in range(1, self.m):
                for q in range(p + 1, self.m + 1):
                    for j in range(self.n_edge):
                        for k in range(self.n_edge):
                            if j != k:
                                pairs.append((p, q, j, k))
        object.__setattr__(self, "_pairs", tuple(pairs))

    @property
    def n_single(self) -> int:
        return 1 + self.m * self.n_edge

    @property
    def n(self) -> int:
        return self.n_single + len(self._pairs)

    def encode(self, p: int, j: int | None = None, q: int | None = None, k: int | None = None) -> int:
        """Action of cut ``p`` on edge ``j`` (and ``p..q`` on edge ``k``)."""
        if p == 0:
            return 0
        if not 1 <= p <= self.m or j is None or not 0 <= j < self.n_edge:
            raise ValueError(f"bad action p={p}, j={j} for m={self.m}, n={self.n_edge}")
        if q is None:
            return 1 + (p - 1) * self.n_edge + j
        try:
            return self.n_single + self._pairs.index((p, q, j, int(k)))  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"bad two-hop action p={p}, q={q}, j={j}, k={k}") from None

    def decode(self, a: int) -> tuple[int, int | None, int | None, int | None]:
        """(p, j, q, k); j is None for all-cloud, q/k are None for single-node cuts."""
        a = int(a)
        if not 0 <= a < self.n:
            raise ValueError(f"action {a} outside 0..{self.n - 1}")
        if a == 0:
            return 0, None, None, None
        if a < self.n_single:
            p, j = divmod(a - 1, self.n_edge)
            return p + 1, j, None, None
        p, q, j, k = self._pairs[a - self.n_single]
        return p, j, q, k

    def hops(self, a: int, edge_names: tuple[str, ...] | list[str], cloud: str = "cloud") -> tuple[tuple[str, int, int], ...]:
        p, j, q, k = self.decode(a)
        m = self.m
        if p == 0:
            return ((cloud, 0, m),)
        first = (edge_names[j], 0, p)  # type: ignore[index]
        if q is None:
            return (first,) if p == m else (first, (cloud, p, m))
        second = (edge_names[k], p, q)  # type: ignore[index]
        return (first, second) if q == m else (first, second, (cloud, q, m))

    def plan(self, a: int, model: str, edge_names: tuple[str, ...] | list[str], cloud: str = "cloud") -> Plan:
        return Plan(model, self.hops(a, edge_names, cloud), action=int(a))

    def action_of(self, plan: Plan, edge_names: tuple[str, ...] | list[str]) -> int:
        """Inverse of :meth:`plan` (raises if the plan is outside this action space)."""
        idx = {n: i for i, n in enumerate(edge_names)}
        edge_hops = [h for h in plan.hops if h[0] in idx]
        if not edge_hops:
            return 0
        if len(edge_hops) == 1:
            return self.encode(edge_hops[0][2], idx[edge_hops[0][0]])
        (j, _, p), (k, _, q) = edge_hops[0], edge_hops[1]
        return self.encode(p, idx[j], q, idx[k])

    def pair_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(p, q, j, k) of the two-hop actions as four integer arrays, in index order."""
        a = np.array(self._pairs, dtype=np.int64).reshape(-1, 4)
        return a[:, 0], a[:, 1], a[:, 2], a[:, 3]

    def cloud_only_mask(self) -> np.ndarray:
        mask = np.zeros(self.n, dtype=np.int8)
        mask[0] = 1
        return mask
