"""The offline optimum of problem (1) on small instances, as an ILP (scipy ``milp``, HiGHS).

It knows every job in advance and picks at most one schedule per job from the same space
the online mechanism searches -- types (w, p), non-dominated (n workers, k slots), start
slot a, workers per server y_s (only where the data have arrived), one PS server (u_s) with
z_s PS nodes -- maximising the sum of utilities subject to capacity (1i, 1j) in every slot
and the bandwidth constraint (1k) ``b_w (n - y_s) <= b_p z_s`` on the PS server.
The competitive ratio of an online method is ``OPT / its welfare`` (>= 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .cluster import Schedule


@dataclass
class OfflineResult:
    welfare: float            #: best integer solution found
    bound: float              #: proven upper bound (== welfare when optimal)
    optimal: bool
    schedules: list
    variables: int
    seconds: float


def solve_offline(jobs, cluster, time_limit: float = 30.0) -> OfflineResult:
    import time
    t0 = time.perf_counter()
    S, T = cluster.n_servers, cluster.slots
    cols_lo, cols_hi, cols_int, obj = [], [], [], []
    rows, cols, vals, row_lo, row_hi = [], [], [], [], []
    nrow = [0]

    def var(lo, hi, c=0.0):
        cols_lo.append(lo)
        cols_hi.append(hi)
        obj.append(c)
        cols_int.append(1)
        return len(obj) - 1

    def row(entries, lo, hi):
        r = nrow[0]
        nrow[0] += 1
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        row_lo.append(lo)
        row_hi.append(hi)
        return r

    cap_entries = {}
    decode = []                                              # per option: (job, w, p, n, k, a, x, ys, us, zs)
    for job in jobs:
        r, H = job.arrival, job.utility.deadline
        xs = []
        for w in range(cluster.n_worker_types):
            for p in range(cluster.n_ps_types):
                ps_servers = np.flatnonzero(cluster.ps_cap[:, p] > 0)
                if not len(ps_servers):
                    continue
                for n, k in job.options(w, p, cluster.slot_s):
                    for a in range(r, min(r + H - k, T - k) + 1):
                        f = float(job.utility(a - r + k))
                        if f <= 0:
                            continue
                        wservers = np.flatnonzero((cluster.worker_cap[:, w] > 0) & (a >= r + job.delay))
                        if cluster.worker_cap[wservers, w].sum() < n:
                            continue
                        x = var(0, 1, -f)
                        xs.append(x)
                        ys = {int(s): var(0, min(n, int(cluster.worker_cap[s, w]))) for s in wservers}
                        us = {int(s): var(0, 1) for s in ps_servers}
                        zs = {int(s): var(0, int(cluster.ps_cap[s, p])) for s in ps_servers}
                        row([(y, 1.0) for y in ys.values()] + [(x, -float(n))], 0, 0)
                        row([(u, 1.0) for u in us.values()] + [(x, -1.0)], 0, 0)
                        bw, bp = float(cluster.worker_bw[w]), float(cluster.ps_bw[p])
                        M = bw * n
                        for s in ps_servers:
                            s = int(s)
                            row([(zs[s], 1.0), (us[s], -1.0)], 0, np.inf)                   # z >= u
                            row([(zs[s], 1.0), (us[s], -float(cluster.ps_cap[s, p]))], -np.inf, 0)
                            ent = [(x, bw * n / M), (zs[s], -bp / M), (us[s], 1.0)]
                            if s in ys:
                                ent.append((ys[s], -bw / M))
                            row(ent, -np.inf, 1.0)                                          # (1k)
                        for t in range(a, a + k):
                            for s, y in ys.items():
                                cap_entries.setdefault(("w", s, w, t), []).append(y)
                            for s, z in zs.items():
                                cap_entries.setdefault(("p", s, p, t), []).append(z)
                        decode.append((job, w, p, n, k, a, x, ys, us, zs, f))
        if xs:
            row([(x, 1.0) for x in xs], 0, 1)
    for (kind, s, typ, t), vs in cap_entries.items():
        cap = cluster.worker_cap[s, typ] if kind == "w" else cluster.ps_cap[s, typ]
        row([(v, 1.0) for v in vs], -np.inf, float(cap))
    nv = len(obj)
    if nv == 0:
        return OfflineResult(0.0, 0.0, True, [], 0, time.perf_counter() - t0)
    A = coo_matrix((vals, (rows, cols)), shape=(nrow[0], nv)).tocsr()
    res = milp(np.array(obj), constraints=LinearConstraint(A, np.array(row_lo), np.array(row_hi)),
               integrality=np.array(cols_int), bounds=Bounds(np.array(cols_lo, float), np.array(cols_hi, float)),
               options={"time_limit": time_limit, "disp": False, "mip_rel_gap": 1e-6})
    if res.x is None:
        raise RuntimeError(f"offline ILP found no solution: {res.message}")
    xv = np.round(res.x).astype(np.int64)
    scheds = []
    for job, w, p, n, k, a, x, ys, us, zs, f in decode:
        if xv[x] == 1:
            y = np.zeros(S, dtype=np.int64)
            for s, v in ys.items():
                y[s] = xv[v]
            ps = next(s for s, u in us.items() if xv[u] == 1)
            scheds.append((job, Schedule(job.jid, w, p, a, a + k - 1, y, ps, int(xv[zs[ps]]), 0.0, f,
                                         "centralised" if y[ps] == n else "distributed")))
    welfare = float(-res.fun)
    bound = float(-res.mip_dual_bound) if getattr(res, "mip_dual_bound", None) is not None else welfare
    return OfflineResult(welfare, max(bound, welfare), res.status == 0, scheds, nv, time.perf_counter() - t0)


def alone_bound(jobs, cluster) -> float:
    """An upper bound on the welfare of any schedule of ``jobs``, at any size: the sum of
    each job's best utility with the cluster to itself (the schedules the methods search;
    other jobs only take capacity away). Where online methods come close to it, nearly
    every job got its best schedule and no method can do much better."""
    from .cluster import Usage
    from .prices import PriceBook, PriceConfig
    from .schedule import Placement, best_schedule
    idle, free = Usage(cluster), PriceBook(cluster, PriceConfig(kind="zero"))
    total = 0.0
    for job in jobs:
        best = best_schedule(job, cluster, idle, free, Placement())
        total += best.utility if best is not None else 0.0
    return float(total)
