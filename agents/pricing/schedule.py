"""Admission and placement: the text's problems (6) and (7), vectorised.

For a job, every worker type w, PS type p, non-dominated (n workers, k slots) and start
slot a (completion inside the utility's horizon) is priced with numpy:

* the charge of the i-th extra worker (PS) on a server over the interval comes from prefix
  sums over slots (:meth:`PriceBook.levels`); free nodes over the interval are a sliding
  minimum; a server gets workers only once the job's data reached it (a >= r_j + delay_js);
* centralised: the cheapest server with n free workers and a free PS;
* distributed: workers by ascending price (the cheapest n worker units over all servers),
  then for every candidate PS server s, moving workers next to the PS: with r remote
  workers s needs z(r) = max(1, ceil(r b_w / b_p)) PS nodes (1k); moving m workers costs
  the next m units on s minus the m dearest remote units and may save PS nodes.  For a
  target z the fewest moves m(z) = max(0, r0 - floor(z b_p / b_w)) are best (the extra
  worker cost is non-decreasing in m), so only z = 1..z(r0) are tried.  This is the exact
  optimum for that PS server (the text's claim that the placement is optimal).

``mu = f_j(d) - cost`` is maximised; the job is admitted iff ``mu > 0`` and pays the cost.
Options are visited by decreasing upper bound (utility minus a lower bound of the cost
from the cheapest node of each slot) and the search stops when no bound can beat the
best ``mu``.  Ties: earlier completion, then centralised, then lower server index.

:func:`best_schedule` runs this search compiled (:mod:`.fast`, one start slot at a time) by
default; the numpy functions below are its reference (``compiled=False``, and the tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cluster import Schedule

_EPS = 1e-9


@dataclass(frozen=True)
class Placement:
    """How placements are searched (the method's knobs)."""
    move: bool = True           #: try moving workers next to the PS (the text's step)
    centralised: bool = True    #: also search one-server placements
    max_wait: int | None = 24   #: start at most this many slots after arrival (None: any slot)


def window_min(x: np.ndarray, k: int) -> np.ndarray:
    """out[..., a] = min(x[..., a:a + k]) for a = 0..T-k (doubling, O(T log k))."""
    out, span = x, 1
    while span * 2 <= k:
        out = np.minimum(out[..., :-span], out[..., span:])
        span *= 2
    if span < k:
        out = np.minimum(out[..., :out.shape[-1] - (k - span)], out[..., k - span:])
    return out


class _Ctx:
    """Per-decision caches over reduced server sets: servers with type w (workers), type p (PS)."""

    def __init__(self, job, cluster, usage, book):
        self.job, self.cl = job, cluster
        self.gw, self.gp = book.levels(usage)                         # (S, W, Iw, T+1), (S, P, Ip, T+1)
        self.usage = usage
        self.ready = job.arrival + job.delay
        self.sw = [np.flatnonzero(cluster.worker_cap[:, w] > 0) for w in range(cluster.n_worker_types)]
        self.sp = [np.flatnonzero(cluster.ps_cap[:, p] > 0) for p in range(cluster.n_ps_types)]
        self._w, self._p, self._maps, self._lb = {}, {}, {}, {}

    def lower_bound(self, kind, t, k, st):
        """(A,) the cheapest first-node charge over [a, a+k) on any server having the type."""
        hit = self._lb.get((kind, t, k))
        if hit is None:
            g = self.gw[self.sw[t], t, 0] if kind == "w" else self.gp[self.sp[t], t, 0]
            full = self.starts(k, min(self.job.utility.deadline - k, self.cl.slots - k - self.job.arrival) + 1)
            hit = (g[:, full + k] - g[:, full]).min(axis=0)
            self._lb[(kind, t, k)] = hit
        return hit[st - self.job.arrival]

    def starts(self, k, A):
        return np.arange(self.job.arrival, self.job.arrival + A)

    def worker_side(self, w, k, A):
        """CC (A, Sw+1, Iw+1): cost of the first i extra workers on each server (last row: a
        null server), F (A, Sw+1) free workers, the cheapest d_j units (A, d_j), their owners
        (positions in Sw), units available (A,)."""
        hit = self._w.get((w, k))
        if hit is None or hit[0].shape[0] < A:
            st = self.starts(k, A)
            srv = self.sw[w]
            g = self.gw[srv, w]                                                      # (Sw, I, T+1)
            Cl = (g[:, :, st + k] - g[:, :, st]).transpose(2, 0, 1)                  # (A, Sw, I)
            Sn, I = Cl.shape[1], Cl.shape[2]
            free = self.cl.worker_cap[srv, w, None] - self.usage.q[srv, w]
            F = window_min(free, k)[:, st].T
            F = np.where(st[:, None] >= self.ready[srv][None, :], np.minimum(F, I), 0)
            CC = np.full((A, Sn + 1, I + 1), np.inf)
            CC[:, :, 0] = 0.0
            np.cumsum(Cl, axis=2, out=CC[:, :Sn, 1:])
            F = np.concatenate([F, np.zeros((A, 1), dtype=F.dtype)], axis=1)
            valid = np.arange(I)[None, None, :] < F[:, :Sn, None]
            flat = np.where(valid, Cl, np.inf).reshape(A, Sn * I)
            N = min(self.job.chunks, Sn * I)
            order = flat + np.arange(Sn * I) * 1e-12                                  # ties: lower server
            idx = np.argpartition(order, N - 1, axis=1)[:, :N] if N < Sn * I else np.broadcast_to(
                np.arange(Sn * I), flat.shape)
            idx = np.take_along_axis(idx, np.argsort(np.take_along_axis(order, idx, 1), axis=1), 1)
            units = np.take_along_axis(flat, idx, 1)
            avail = np.isfinite(units).sum(axis=1)
            units = np.where(np.isfinite(units), units, 0.0)
            owners = idx // I
            if N < self.job.chunks:
                units = np.pad(units, ((0, 0), (0, self.job.chunks - N)))
                owners = np.pad(owners, ((0, 0), (0, self.job.chunks - N)), constant_values=Sn)
            hit = (CC, F, units, owners, avail)
            self._w[(w, k)] = hit
        return tuple(x[:A] for x in hit)

    def ps_side(self, p, k, A):
        """PC (A, Sp+1, Ip+1) cost of z PS nodes on each server (last row null), FP (A, Sp+1)."""
        hit = self._p.get((p, k))
        if hit is None or hit[0].shape[0] < A:
            st = self.starts(k, A)
            srv = self.sp[p]
            g = self.gp[srv, p]
            Pl = (g[:, :, st + k] - g[:, :, st]).transpose(2, 0, 1)
            Sn, I = Pl.shape[1], Pl.shape[2]
            PC = np.full((A, Sn + 1, I + 1), np.inf)
            PC[:, :, 0] = 0.0
            np.cumsum(Pl, axis=2, out=PC[:, :Sn, 1:])
            free = self.cl.ps_cap[srv, p, None] - self.usage.h[srv, p]
            FP = np.minimum(window_min(free, k)[:, st].T, I)
            FP = np.concatenate([FP, np.zeros((A, 1), dtype=FP.dtype)], axis=1)
            hit = (PC, FP)
            self._p[(p, k)] = hit
        return tuple(x[:A] for x in hit)

    def maps(self, w, p):
        """Position of each PS server in the worker set and back (-1 -> the null row)."""
        hit = self._maps.get((w, p))
        if hit is None:
            sw, sp = self.sw[w], self.sp[p]
            pos_w = np.full(self.cl.n_servers, len(sw), dtype=np.int64)
            pos_w[sw] = np.arange(len(sw))
            pos_p = np.full(self.cl.n_servers, len(sp), dtype=np.int64)
            pos_p[sp] = np.arange(len(sp))
            hit = (pos_w[sp], np.append(pos_p[sw], len(sp)))    # p->w (Sp,), w->p (Sw+1,)
            self._maps[(w, p)] = hit
        return hit


def _centralised(n, CC, F, PC, FP, p2w):
    """(A,) best cost and PS-set position of one-server placements (n workers + 1 PS)."""
    if n >= CC.shape[2]:
        return np.full(CC.shape[0], np.inf), np.zeros(CC.shape[0], dtype=np.int64)
    tot = CC[:, p2w, n] + PC[:, :-1, 1]
    tot = np.where((F[:, p2w] >= n) & (FP[:, :-1] >= 1), tot, np.inf)
    j = tot.argmin(axis=1)
    return tot[np.arange(len(j)), j], j


def _distributed(n, w, p, cl, CC, F, units, owners, avail, PC, FP, p2w, w2p, move):
    """(A,) best cost of distributed placements; decoder a -> (PS position in Sp, z, moves)."""
    A = F.shape[0]
    u, O = units[:, :n], owners[:, :n]                          # ascending units, owners in Sw
    B = np.where(avail >= n, u.sum(axis=1), np.inf)             # the cheapest fill
    zmax = int(cl.ps_needed(n, w, p))
    zs = np.arange(1, zmax + 1) if move else np.array([zmax])
    rmax = np.floor(zs * (cl.ps_bw[p] / cl.worker_bw[w]) + _EPS).astype(np.int64)
    Iw, Ip = CC.shape[2] - 1, PC.shape[2] - 1
    # PS on a server holding none of the fill's workers: r0 = n
    suf = np.zeros((A, n + 1))
    suf[:, 1:] = np.cumsum(u[:, ::-1], axis=1)                  # the m dearest units
    m_g = np.maximum(0, n - rmax) if move else np.zeros(1, dtype=np.int64)
    CCp = CC[:, p2w]                                            # (A, Sp, Iw+1)
    tot_g = (B[:, None, None] + CCp[:, :, np.minimum(m_g, Iw)] - suf[:, m_g][:, None, :]
             + PC[:, :-1, np.minimum(zs, Ip)])
    tot_g = np.where(m_g[None, None, :] > Iw, np.inf, tot_g)
    feas = (m_g[None, None, :] <= F[:, p2w, None]) & (zs[None, None, :] <= FP[:, :-1, None])
    tot_g = np.where(feas, tot_g, np.inf)
    own_p = w2p[O]                                              # owners' positions in Sp (Sp: none)
    rows = np.repeat(np.arange(A), n)
    keep = own_p.ravel() < PC.shape[1] - 1
    tot_g[rows[keep], own_p.ravel()[keep], :] = np.inf          # owners are handled below
    # PS on a server holding y0 of the fill's workers
    eq = O[:, :, None] == O[:, None, :]
    y0 = eq.sum(axis=2)
    r0 = n - y0
    vals = -np.sort(-np.where(eq, 0.0, u[:, None, :]), axis=2)
    sufo = np.zeros((A, n, n + 1))
    sufo[:, :, 1:] = np.cumsum(vals, axis=2)
    if move:
        m_o = np.maximum(0, r0[:, :, None] - rmax[None, None, :])
        z_o = np.broadcast_to(zs[None, None, :], m_o.shape)
    else:
        m_o = np.zeros((A, n, 1), dtype=np.int64)
        z_o = np.asarray(cl.ps_needed(r0, w, p))[:, :, None]
    CCo = np.take_along_axis(CC, O[:, :, None], 1)              # (A, n, Iw+1)
    PCo = np.take_along_axis(PC, own_p[:, :, None], 1)          # (A, n, Ip+1), null row if no PS
    Fo = np.take_along_axis(F, O, 1)[:, :, None]
    FPo = np.take_along_axis(FP, own_p, 1)[:, :, None]
    hi = np.minimum(y0[:, :, None] + m_o, Iw)
    move_cost = np.take_along_axis(CCo, hi, 2) - np.take_along_axis(CCo, np.minimum(y0, Iw)[:, :, None], 2)
    tot_o = (B[:, None, None] + move_cost - np.take_along_axis(sufo, m_o, 2)
             + np.take_along_axis(PCo, np.minimum(z_o, Ip), 2))
    feas_o = (m_o <= Fo - y0[:, :, None]) & (z_o <= FPo) & (m_o <= r0[:, :, None])
    with np.errstate(invalid="ignore"):
        tot_o = np.where(feas_o, tot_o, np.inf)
    g_flat, o_flat = tot_g.reshape(A, -1), tot_o.reshape(A, -1)
    gi, oi = g_flat.argmin(axis=1), o_flat.argmin(axis=1)
    g_best, o_best = g_flat[np.arange(A), gi], o_flat[np.arange(A), oi]
    use_o = o_best <= g_best
    best = np.where(use_o, o_best, g_best)
    Zg, Zo = tot_g.shape[2], tot_o.shape[2]

    def how(a):
        if use_o[a]:
            i, zi = divmod(int(oi[a]), Zo)
            return int(own_p[a, i]), int(z_o[a, i, zi]), int(m_o[a, i, zi])
        j, zi = divmod(int(gi[a]), Zg)
        return int(j), int(zs[zi]), int(m_g[min(zi, len(m_g) - 1)])
    return best, how


def _build_distributed(job, cl, w, p, a, k, n, units, owners, how, cost, util, sw, sp):
    j, z, m = how
    s = int(sp[j])
    y = np.zeros(cl.n_servers, dtype=np.int64)
    O = sw[owners[:n]]
    keep = np.ones(n, dtype=bool)
    dropped = 0
    for i in range(n - 1, -1, -1):                              # drop the m dearest remote units
        if dropped == m:
            break
        if O[i] != s:
            keep[i] = False
            dropped += 1
    np.add.at(y, O[keep], 1)
    y[s] += m
    kind = "centralised" if y[s] == n else "distributed"
    return Schedule(job.jid, w, p, a, a + k - 1, y, s, z, float(cost), float(util), kind, {"moves": m})


def load_compiled_search(job, cluster, placement: Placement = Placement()) -> None:
    """Decide ``job`` once on the idle cluster, untimed, and throw the answer away: that loads
    the compiled kernels (agents.pricing.fast), or compiles them, a few seconds the first time
    after a change or in a fresh checkout, before any decision that is timed or on a clock."""
    from .cluster import Usage
    from .prices import PriceBook, PriceConfig
    best_schedule(job, cluster, Usage(cluster), PriceBook(cluster, PriceConfig()), placement)


def best_schedule(job, cluster, usage, book, placement: Placement = Placement(),
                  floor: float | None = 0.0, compiled: bool = True) -> Schedule | None:
    """The schedule maximising mu = f_j - cost over types, (n, k), start slots and placements,
    among those with mu > ``floor`` (0: only admissible ones; None: the best whatever mu).
    ``compiled``: the numba search (agents.pricing.fast); False: this module's numpy search,
    its reference."""
    utab = np.asarray(job.utility(np.arange(cluster.slots + 1)), dtype=float)    # f(d), d = 0..T
    opts = _options(job, cluster, placement, utab)
    if compiled:
        return _compiled_search(job, cluster, usage, book, placement, floor, opts, utab)
    ctx = _Ctx(job, cluster, usage, book)
    state = {"best": None, "key": None}
    for umax, w, p, n, k, A in opts:
        thresh = _threshold(state["key"], floor)
        if umax <= thresh:
            break
        _evaluate(job, cluster, ctx, placement, w, p, n, k, A, thresh, state, floor, utab)
    return state["best"]


def _options(job, cluster, placement, utab):
    """(f(k), w, p, n, k, starts) of every option, by decreasing utility (then k, w, p)."""
    T, r, H = cluster.slots, job.arrival, job.utility.deadline
    opts = []
    for w in range(cluster.n_worker_types):
        if not cluster.worker_cap[:, w].any():
            continue
        for p in range(cluster.n_ps_types):
            if not cluster.ps_cap[:, p].any():
                continue
            for n, k in job.options(w, p, cluster.slot_s):
                A = min(r + H - k, T - k) - r + 1
                if placement.max_wait is not None:
                    A = min(A, placement.max_wait + 1)
                if A >= 1:
                    opts.append((float(utab[k]), w, p, n, k, A))
    opts.sort(key=lambda o: (-o[0], o[4], o[1], o[2]))
    return opts


def _compiled_search(job, cluster, usage, book, placement, floor, opts, utab):
    from .fast import search
    if not opts:
        return None
    gw, gp = book.levels(usage)
    sw, sw_at, pos_w, sp, sp_at, pos_p = cluster.type_servers
    table = np.array([o[1:] for o in opts], dtype=np.int64)
    umax = np.array([o[0] for o in opts])
    o, a, is_c, s, z, m, cost, util, y = search(
        job.arrival, table, umax, utab, gw, gp, usage.q, usage.h, cluster.worker_cap, cluster.ps_cap,
        job.arrival + job.delay, sw, sw_at, sp, sp_at, pos_w, pos_p, cluster.worker_bw, cluster.ps_bw,
        _threshold(None, floor), floor is not None, 0.0 if floor is None else float(floor),
        placement.move, placement.centralised)
    if o < 0:
        return None
    _, w, p, n, k, _ = opts[o]
    if is_c:
        return Schedule(job.jid, w, p, a, a + k - 1, y, s, 1, cost, util, "centralised")
    kind = "centralised" if y[s] == n else "distributed"
    return Schedule(job.jid, w, p, a, a + k - 1, y, s, z, cost, util, kind, {"moves": m})


def _threshold(key, floor):
    if key is not None:
        return key[0] + _EPS
    return -np.inf if floor is None else floor + _EPS


def _evaluate(job, cluster, ctx, placement, w, p, n, k, A, thresh, state, floor, utab):
    r = job.arrival
    st = np.arange(r, r + A)
    util = utab[k:k + A]
    ub = util - (n * ctx.lower_bound("w", w, k, st) + ctx.lower_bound("p", p, k, st))
    live = np.flatnonzero(ub > thresh)
    if not len(live):
        return
    A = int(live[-1]) + 1                                    # rows beyond cannot win
    CC, F, units, owners, avail = ctx.worker_side(w, k, A)
    PC, FP = ctx.ps_side(p, k, A)
    util, starts = util[:A], st[:A]
    # tighter bound: the n cheapest free worker units and the cheapest free PS
    lb = (np.where(avail >= n, units[:, :n].sum(axis=1), np.inf)
          + np.where(FP[:, :-1] >= 1, PC[:, :-1, 1], np.inf).min(axis=1, initial=np.inf))
    live = np.flatnonzero(util - lb > thresh)
    if not len(live):
        return
    if len(live) < A:
        A = int(live[-1]) + 1
        CC, F, units, owners, avail, PC, FP = (x[:A] for x in (CC, F, units, owners, avail, PC, FP))
        util, starts = util[:A], starts[:A]
    p2w, w2p = ctx.maps(w, p)
    cands = []
    if placement.centralised:
        cc, cj = _centralised(n, CC, F, PC, FP, p2w)
        cands.append(("c", cc, cj))
    dc, dhow = _distributed(n, w, p, cluster, CC, F, units, owners, avail, PC, FP, p2w, w2p, placement.move)
    cands.append(("d", dc, dhow))
    for tag, cost, where in cands:
        mu = util - cost
        if not np.isfinite(mu).any():
            continue
        ai = int(np.argmax(np.where(np.isfinite(mu), mu, -np.inf)))
        key = (float(mu[ai]), float(util[ai]), tag == "c")
        if floor is not None and key[0] <= floor + _EPS:
            continue
        if state["key"] is not None and not _better(key, state["key"]):
            continue
        a = int(starts[ai])
        if tag == "c":
            s = int(ctx.sp[p][where[ai]])
            y = np.zeros(cluster.n_servers, dtype=np.int64)
            y[s] = n
            sched = Schedule(job.jid, w, p, a, a + k - 1, y, s, 1, float(cost[ai]), float(util[ai]),
                             "centralised")
        else:
            sched = _build_distributed(job, cluster, w, p, a, k, n, units[ai], owners[ai], where(ai),
                                       cost[ai], util[ai], ctx.sw[w], ctx.sp[p])
        state["best"], state["key"] = sched, key


def _better(key, ref) -> bool:
    if key[0] > ref[0] + _EPS:
        return True
    if key[0] < ref[0] - _EPS:
        return False
    return key[1:] > ref[1:]
