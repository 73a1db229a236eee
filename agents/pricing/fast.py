"""The compiled kernels (numba) of a pricing decision: problem (7)'s search and the price levels.

:func:`search` is the numpy search of :mod:`.schedule`, row by row.  The numpy search
prices one option (w, p, n, k) for all start slots at once in some forty array calls; at
300 servers their overhead and the arrays of every start, server and level (most of them
cut by the bounds afterwards) made a decision take up to 50 ms of CPU.  This kernel visits
the same options in the same order with the same bounds, but per start slot, so a start the
bound rules out costs two minima and nothing else.  Per start it does what
:class:`.schedule._Ctx` and ``_centralised`` / ``_distributed`` do: the cheapest ``n`` free
worker units (in the numpy search's order: charge + 1e-12 x unit index), one PS server with
``n`` workers, every other PS server with the fewest moves for each PS count z, and the
owners of the fill's units.  Ties are broken by the same rules (first start, first server,
first z, centralised before distributed within an option); the fill's sum may round in
another order than numpy's pairwise sum, so equal-cost schedules could swap.
``tests/unit/test_pricing_fast.py`` checks the decisions against the numpy search.

:func:`charge_prefix_sums` is :meth:`.prices.PriceBook.levels`' running sums over slots,
from a table of the charge per (type, capacity, usage).
"""
from __future__ import annotations

import numba
import numpy as np

_EPS = 1e-9


@numba.njit(cache=True)
def _window_free(cap, used, lo, rows, k, out):
    """out[i] = cap - max(used[lo + i : lo + i + k]) for i < rows (van Herk/Gil-Werman, O(rows + k))."""
    m = rows + k - 1
    pre = np.empty(m, np.int64)              # running max from each block's start
    suf = np.empty(m, np.int64)              # running max to each block's end
    for t in range(m):
        v = used[lo + t]
        pre[t] = v if t % k == 0 or v > pre[t - 1] else pre[t - 1]
    for t in range(m - 1, -1, -1):
        v = used[lo + t]
        suf[t] = v if t == m - 1 or (t + 1) % k == 0 or v > suf[t + 1] else suf[t + 1]
    for i in range(rows):
        out[i] = cap - max(suf[i], pre[i + k - 1])


@numba.njit(cache=True)
def _ps_needed(remote, bw_w, bw_p):
    return max(1, int(np.ceil(remote * bw_w / bw_p - 1e-9)))


@numba.njit(cache=True)
def search(r, opts, umax, utab, gw, gp, q, h, wcap, pcap, ready, sw, sw_at, sp, sp_at, pos_w, pos_p,
           wbw, pbw, thresh0, floor_on, floor_v, move, centralised):
    """Best schedule over ``opts`` (rows w, p, n, k, A; visiting order) as
    (option, start, centralised, PS server, z, moves, cost, utility, workers (S,)); option -1: none."""
    S, Iw, Ip = gw.shape[0], gw.shape[2], gp.shape[2]
    inf = np.inf
    have, b_mu, b_util, b_c = False, -inf, -inf, False
    b_o, b_a, b_s, b_z, b_m, b_cost = -1, -1, -1, 0, 0, 0.0
    b_y = np.zeros(S, np.int64)
    u = np.empty(Iw * S)
    own = np.empty(Iw * S, np.int64)
    heads = np.empty(S, np.int64)
    owner_ps = np.zeros(S, np.bool_)
    suf = np.empty(Iw * S + 1)
    sufo = np.empty(Iw * S + 1)
    c_own = np.empty(Iw * S, np.int64)
    for o in range(opts.shape[0]):
        w, p, n, k, A = opts[o, 0], opts[o, 1], opts[o, 2], opts[o, 3], opts[o, 4]
        thresh = b_mu + _EPS if have else thresh0
        if umax[o] <= thresh:
            break
        srv_w, srv_p = sw[sw_at[w]:sw_at[w + 1]], sp[sp_at[p]:sp_at[p + 1]]
        nw, np_ = len(srv_w), len(srv_p)
        # bound 1: every node at the cheapest first-node charge of its slot interval
        live = np.zeros(A, np.bool_)
        rows = 0
        for i in range(A):
            a = r + i
            lbw = inf
            for x in range(nw):
                lbw = min(lbw, gw[srv_w[x], w, 0, a + k] - gw[srv_w[x], w, 0, a])
            lbp = inf
            for j in range(np_):
                lbp = min(lbp, gp[srv_p[j], p, 0, a + k] - gp[srv_p[j], p, 0, a])
            if utab[i + k] - (n * lbw + lbp) > thresh:
                live[i] = True
                rows = i + 1
        if rows == 0:
            continue
        F = np.empty((nw, rows), np.int64)
        FP = np.empty((np_, rows), np.int64)
        for x in range(nw):
            s = srv_w[x]
            _window_free(wcap[s, w], q[s, w], r, rows, k, F[x])
            for i in range(rows):
                F[x, i] = 0 if r + i < ready[s] else min(F[x, i], Iw)
        for j in range(np_):
            s = srv_p[j]
            _window_free(pcap[s, p], h[s, p], r, rows, k, FP[j])
            for i in range(rows):
                FP[j, i] = min(FP[j, i], Ip)
        Cl = np.empty((nw, Iw))
        CC = np.empty((nw, Iw + 1))
        PC = np.empty((np_, Ip + 1))
        zmax = _ps_needed(n, wbw[w], pbw[p])
        nz = zmax if move else 1
        zs = np.arange(1, zmax + 1) if move else np.array([zmax])
        rmax = np.floor(zs * (pbw[p] / wbw[w]) + _EPS).astype(np.int64)
        c_mu, c_util, c_cost, c_a, c_s = -inf, 0.0, 0.0, -1, -1
        d_mu, d_util, d_cost, d_a, d_s, d_z, d_m = -inf, 0.0, 0.0, -1, -1, 0, 0
        for i in range(rows):
            if not live[i]:
                continue
            a, util = r + i, utab[i + k]
            for x in range(nw):                          # charges of the first F free levels
                s = srv_w[x]
                CC[x, 0] = 0.0
                for lev in range(F[x, i]):
                    Cl[x, lev] = gw[s, w, lev, a + k] - gw[s, w, lev, a]
                    CC[x, lev + 1] = Cl[x, lev] if lev == 0 else CC[x, lev] + Cl[x, lev]
            got = 0                                      # the n cheapest free units (ties: lower server)
            heads[:nw] = 0
            while got < n:
                v, bx = inf, -1
                for x in range(nw):
                    lev = heads[x]
                    if lev < F[x, i]:
                        key = Cl[x, lev] + (x * Iw + lev) * 1e-12    # the numpy search's order
                        if key < v:
                            v, bx = key, x
                if bx < 0:
                    break
                u[got], own[got] = Cl[bx, heads[bx]], bx
                heads[bx] += 1
                got += 1
            if got < n:
                continue
            B = 0.0
            for t in range(n):
                B += u[t]
            lbp = inf
            for j in range(np_):
                s = srv_p[j]
                PC[j, 0] = 0.0
                for lev in range(FP[j, i]):
                    c = gp[s, p, lev, a + k] - gp[s, p, lev, a]
                    PC[j, lev + 1] = c if lev == 0 else PC[j, lev] + c
                if FP[j, i] >= 1:
                    lbp = min(lbp, PC[j, 1])
            if util - (B + lbp) <= thresh:               # bound 2: the fill and the cheapest PS
                continue
            if centralised and n <= Iw:
                best, bj = inf, -1
                for j in range(np_):
                    x = pos_w[w, srv_p[j]]
                    if x >= 0 and F[x, i] >= n and FP[j, i] >= 1:
                        tot = CC[x, n] + PC[j, 1]
                        if tot < best:
                            best, bj = tot, j
                if bj >= 0 and util - best > c_mu:
                    c_mu, c_util, c_cost, c_a, c_s = util - best, util, best, a, srv_p[bj]
            # distributed: the fill, then each PS server with the fewest moves per PS count z
            suf[0] = 0.0
            for m in range(1, n + 1):
                suf[m] = suf[m - 1] + u[n - m]
            for t in range(n):
                jp = pos_p[p, srv_w[own[t]]]
                if jp >= 0:
                    owner_ps[jp] = True
            g_best, g_s, g_z, g_m = inf, -1, 0, 0
            for j in range(np_):
                if owner_ps[j]:
                    continue
                x = pos_w[w, srv_p[j]]
                fx = F[x, i] if x >= 0 else 0
                for zi in range(nz):
                    z = zs[zi]
                    m = max(0, n - rmax[zi]) if move else 0
                    if m > Iw or m > fx or z > FP[j, i]:
                        continue
                    tot = B + (CC[x, m] if x >= 0 else 0.0) - suf[m] + PC[j, min(z, Ip)]
                    if tot < g_best:
                        g_best, g_s, g_z, g_m = tot, srv_p[j], z, m
            for t in range(n):
                jp = pos_p[p, srv_w[own[t]]]
                if jp >= 0:
                    owner_ps[jp] = False
            o_best, o_s, o_z, o_m = inf, -1, 0, 0
            for t in range(n):                           # the PS next to y0 of the fill's units
                x = own[t]
                y0 = 0
                for t2 in range(n):
                    y0 += own[t2] == x
                r0 = n - y0
                jp = pos_p[p, srv_w[x]]
                if jp < 0:
                    continue
                sufo[0] = 0.0
                cnt = 0
                for t2 in range(n - 1, -1, -1):
                    if own[t2] != x:
                        sufo[cnt + 1] = sufo[cnt] + u[t2]
                        cnt += 1
                for zi in range(nz):
                    m = max(0, r0 - rmax[zi]) if move else 0
                    z = zs[zi] if move else _ps_needed(r0, wbw[w], pbw[p])
                    if m > F[x, i] - y0 or z > FP[jp, i] or m > r0:
                        continue
                    cost_move = CC[x, min(y0 + m, Iw)] - CC[x, min(y0, Iw)]
                    tot = B + cost_move - sufo[m] + PC[jp, min(z, Ip)]
                    if tot < o_best:
                        o_best, o_s, o_z, o_m = tot, srv_w[x], z, m
            best, bs, bz, bm = (o_best, o_s, o_z, o_m) if o_best <= g_best else (g_best, g_s, g_z, g_m)
            if bs >= 0 and util - best > d_mu:
                d_mu, d_util, d_cost, d_a, d_s, d_z, d_m = util - best, util, best, a, bs, bz, bm
                for t in range(n):
                    c_own[t] = srv_w[own[t]]
        for kind in range(2):                            # centralised first, as the numpy search
            if kind == 0:
                if c_a < 0:
                    continue
                mu, util, is_c = c_mu, c_util, True
            else:
                if d_a < 0:
                    continue
                mu, util, is_c = d_mu, d_util, False
            if floor_on and mu <= floor_v + _EPS:
                continue
            if have and not (mu > b_mu + _EPS or (mu >= b_mu - _EPS and
                                                  (util > b_util or (util == b_util and is_c and not b_c)))):
                continue
            have, b_mu, b_util, b_c, b_o = True, mu, util, is_c, o
            b_y[:] = 0
            if is_c:
                b_a, b_s, b_z, b_m, b_cost = c_a, c_s, 1, 0, c_cost
                b_y[c_s] = n
            else:
                b_a, b_s, b_z, b_m, b_cost = d_a, d_s, d_z, d_m, d_cost
                dropped = 0
                for t in range(n - 1, -1, -1):           # drop the m dearest remote units
                    if dropped < d_m and c_own[t] != d_s:
                        dropped += 1
                    else:
                        b_y[c_own[t]] += 1
                b_y[d_s] += d_m
    return b_o, b_a, b_c, b_s, b_z, b_m, b_cost, b_util, b_y


@numba.njit(cache=True)
def charge_prefix_sums(out, used, cap, table, servers, step):
    """out[s, t, i, 1 + u] = sum over slots <= u of table[t, cap[s, t], used[s, t, slot] + i * step]
    for every s in ``servers`` (:meth:`agents.pricing.prices.PriceBook.levels`)."""
    top = table.shape[2] - 1
    for s in servers:
        for t in range(out.shape[1]):
            row = table[t, cap[s, t]]
            for i in range(out.shape[2]):
                acc = 0.0
                for slot in range(used.shape[2]):
                    acc += row[min(max(used[s, t, slot] + i * step, 0), top)]
                    out[s, t, i, slot + 1] = acc
