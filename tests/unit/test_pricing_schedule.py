"""Admission and placement of agents.pricing: constraints never violated (property test
over generated workloads), no job admitted above its utility, the payment is the priced
cost, and the placement search finds the brute-force optimum of problem (7)."""

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.pricing.baselines import methods
from agents.pricing.cluster import Usage, check_schedule
from agents.pricing.jobs import Job, Utility
from agents.pricing.online import run_online
from agents.pricing.prices import PriceBook, PriceConfig
from agents.pricing.schedule import Placement, best_schedule
from agents.pricing.workload import SMALL, make_world

METHODS = methods()


def charged(sched, book, usage):
    """The cost of a schedule recomputed from the per-node charges (independent of the search)."""
    gw, gp = book.levels(usage)
    a, e = sched.start, sched.end + 1
    cost = sum(gw[s, sched.w, :y, e].sum() - gw[s, sched.w, :y, a].sum() for s, y in enumerate(sched.workers))
    return cost + gp[sched.ps_server, sched.p, :sched.ps_count, e].sum() - gp[sched.ps_server, sched.p,
                                                                              :sched.ps_count, a].sum()


worlds = st.builds(lambda seed, servers, slots, jobs, wt, pt: (seed, SMALL.replace(
    servers=servers, slots=slots, jobs=jobs, worker_types=wt, ps_types=pt,
    worker_types_per_server=(1, wt), ps_types_per_server=(1, pt), worker_bw_mbps=(2000.0, 5120.0),
    ps_bw_mbps=(2000.0, 6000.0))),
    st.integers(0, 10_000), st.integers(1, 4), st.integers(6, 16), st.integers(3, 14), st.integers(1, 2),
    st.integers(1, 2))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds, st.sampled_from(sorted(METHODS)))
def test_constraints_hold_and_no_job_pays_more_than_its_utility(world, name):
    seed, cfg = world
    cluster, jobs = make_world(cfg, seed)
    out = run_online(jobs, cluster, METHODS[name])
    replay = Usage(cluster)
    by_id = {j.jid: j for j in jobs}
    for d in out.admitted:
        job, s = by_id[d.jid], d.schedule
        check_schedule(job, s, cluster, replay)               # (1a)-(1l) incl. bandwidth (1k)
        replay.allocate(job, s)
        assert s.remote_workers * cluster.worker_bw[s.w] <= s.ps_count * cluster.ps_bw[s.p] * (1 + 1e-9)
        assert d.payment < d.utility + 1e-9 and d.payment >= 0
        assert d.utility == job.utility(s.end - job.arrival + 1)
    replay.check()
    assert np.array_equal(replay.q, out.usage.q) and np.array_equal(replay.h, out.usage.h)


def test_payment_is_the_priced_cost_at_admission():
    cluster, jobs = make_world(SMALL.replace(jobs=14), 5)
    usage, book = Usage(cluster), PriceBook(cluster, PriceConfig())
    admitted = 0
    for job in jobs:
        book.observe(job)
        s = best_schedule(job, cluster, usage, book)
        if s is None:
            continue
        assert np.isclose(s.cost, charged(s, book, usage))
        assert s.utility - s.cost > 0
        usage.allocate(job, s)
        admitted += 1
    assert admitted >= 3


def brute_force(job, cluster, usage, book, move=True):
    """max mu over every option, start slot, worker vector and PS server (problem (7))."""
    gw, gp = book.levels(usage)
    best = -np.inf
    S = cluster.n_servers
    for w, p in itertools.product(range(cluster.n_worker_types), range(cluster.n_ps_types)):
        for n, k in job.options(w, p, cluster.slot_s):
            for a in range(job.arrival, cluster.slots - k + 1):
                f = job.utility(a - job.arrival + k)
                if f <= 0:
                    continue
                free_w = (cluster.worker_cap[:, w, None] - usage.q[:, w, a:a + k]).min(axis=1)
                free_w = np.where(a >= job.arrival + job.delay, free_w, 0)
                free_p = (cluster.ps_cap[:, p, None] - usage.h[:, p, a:a + k]).min(axis=1)
                for y in itertools.product(*(range(min(int(f_), n) + 1) for f_ in free_w)):
                    if sum(y) != n:
                        continue
                    wc = sum(gw[s, w, :y[s], a + k].sum() - gw[s, w, :y[s], a].sum() for s in range(S))
                    for ps in range(S):
                        z = cluster.ps_needed(n - y[ps], w, p)
                        if z > free_p[ps]:
                            continue
                        pc = gp[ps, p, :z, a + k].sum() - gp[ps, p, :z, a].sum()
                        best = max(best, f - wc - pc)
    return best


def test_placement_search_is_optimal_against_brute_force():
    cfg = SMALL.replace(servers=3, cloud=False, slots=8, jobs=12, worker_types=1, ps_types=1,
                        worker_types_per_server=(1, 1), ps_types_per_server=(1, 1), edge_workers=(1, 3),
                        edge_ps=(1, 2), chunks=(2, 5), worker_bw_mbps=(5120.0, 5120.0),
                        ps_bw_mbps=(5120.0, 5120.0), epochs=(2, 6))
    checked = 0
    for seed in range(6):
        cluster, jobs = make_world(cfg, seed)
        rng = np.random.default_rng(seed)
        usage = Usage(cluster)
        usage.q[:] = rng.binomial(cluster.worker_cap[:, :, None], 0.4, size=usage.q.shape)
        usage.h[:] = rng.binomial(cluster.ps_cap[:, :, None], 0.3, size=usage.h.shape)
        usage.version += 1
        book = PriceBook(cluster, PriceConfig(low_density=0.5))
        for j in jobs:
            book.observe(j)
        for job in jobs:
            s = best_schedule(job, cluster, usage, book, Placement(max_wait=None), floor=None)
            ref = brute_force(job, cluster, usage, book)
            if s is None:
                assert ref == -np.inf
                continue
            assert np.isclose(s.utility - s.cost, ref), (seed, job.jid)
            assert np.isclose(s.cost, charged(s, book, usage))
            check_schedule(job, s, cluster, usage)
            checked += 1
    assert checked >= 20


def test_moving_workers_next_to_the_ps_lowers_the_cost():
    """1 Gbit/s workers and 1 Gbit/s PS nodes: every remote worker needs its own PS node,
    so putting the workers next to the PS must win over spreading them."""
    cfg = SMALL.replace(servers=3, cloud=False, slots=8, jobs=30, worker_types=1, ps_types=1,
                        worker_types_per_server=(1, 1), ps_types_per_server=(1, 1), edge_workers=(3, 3),
                        edge_ps=(3, 3), chunks=(3, 3), worker_bw_mbps=(1000.0, 1000.0),
                        ps_bw_mbps=(1000.0, 1000.0))
    cluster, _ = make_world(cfg, 0)
    # a job that must run 3 workers for one slot (deadline 1): spread over 3 idle servers
    # the PS server would need 2 PS nodes; moving the other 2 workers next to it needs 1
    job = Job(999, 0, Utility("step", 1e6, 1), 3, 1, 1, np.full((1, 1), 3 * cluster.slot_s / 3.0 / 1.0),
              1e6, np.zeros(cluster.n_servers, dtype=np.int64))
    assert job.options(0, 0, cluster.slot_s)[0] == (3, 1)
    usage, book = Usage(cluster), PriceBook(cluster, PriceConfig(ps_low_density=5.0, ps_high_density=50.0))
    book.observe(job)
    s_move = best_schedule(job, cluster, usage, book, Placement(move=True, centralised=False), floor=None)
    s_stay = best_schedule(job, cluster, usage, book, Placement(move=False, centralised=False), floor=None)
    assert s_stay.n_workers == 3 and s_stay.ps_count >= 2
    assert s_move.cost < s_stay.cost and s_move.ps_count < s_stay.ps_count
    assert s_move.extra["moves"] >= 1


def test_first_fit_on_an_idle_cluster_finishes_as_early_as_possible():
    cluster, jobs = make_world(SMALL, 2)
    usage, book = Usage(cluster), PriceBook(cluster, PriceConfig(kind="zero"))
    for job in jobs[:5]:
        s = best_schedule(job, cluster, usage, book)
        fastest = min(k for w in range(cluster.n_worker_types) for p in range(cluster.n_ps_types)
                      for n, k in job.options(w, p, cluster.slot_s))
        if s is not None:
            assert s.end - job.arrival + 1 <= fastest + int(job.delay.max())


def _moving_world():
    from agents.pricing.cluster import Cluster, Schedule, Usage
    cluster = Cluster(np.array([[2], [2], [1]]), np.array([[1], [1], [1]]), np.array([10e6]), np.array([20e6]),
                      10, 1.0, ("a", "b", "c"))
    usage = Usage(cluster)
    sched = Schedule(0, 0, 0, 0, 5, np.array([2, 0, 0]), 0, 1)
    usage.active[0] = sched                       # as allocated (the job's own checks aside)
    usage.q[0, 0, 0:6] += 2
    usage.h[0, 0, 0:6] += 1
    return usage


def test_a_failed_node_moves_to_a_free_one_and_capacity_holds():
    import pytest as _pytest

    from agents.pricing.cluster import ScheduleError
    usage = _moving_world()
    moved = usage.move(0, "worker", 0, 2, from_slot=3)
    assert moved.workers.tolist() == [1, 0, 1] and usage.q[2, 0, 3:6].tolist() == [1, 1, 1]
    assert usage.q[0, 0, :].tolist()[:6] == [2, 2, 2, 1, 1, 1] and usage.q[2, 0, :3].tolist() == [0, 0, 0]
    assert not usage.can_move(0, "worker", 0, 2, from_slot=3)     # c has one worker node, now taken
    with _pytest.raises(ScheduleError, match="cannot move"):
        usage.move(0, "worker", 0, 2, from_slot=3)
    moved = usage.move(0, "ps", 0, 1, from_slot=4)
    assert moved.ps_server == 1 and usage.h[1, 0, 4:6].tolist() == [1, 1] and usage.h[0, 0, 4:6].tolist() == [0, 0]
    usage.check()


def test_a_move_needs_a_free_node_in_every_remaining_slot():
    usage = _moving_world()
    usage.q[1, 0, 4] = 2                          # b is full in slot 4 only
    assert not usage.can_move(0, "worker", 0, 1, from_slot=3)
    assert usage.can_move(0, "worker", 0, 1, from_slot=5)


def test_a_move_that_breaks_1k_is_refused():
    usage = _moving_world()                       # b_w 10, b_p 20: one PS node carries 2 remote workers
    usage.active[0] = usage.active[0].__class__(0, 0, 0, 0, 5, np.array([2, 1, 0]), 0, 1)
    usage.q[1, 0, 0:6] += 1
    assert usage.can_move(0, "worker", 0, 2, from_slot=3)         # remote 1 -> 2: fits
    usage.move(0, "worker", 0, 2, from_slot=3)
    assert not usage.can_move(0, "worker", 0, 1, from_slot=3)     # remote 2 -> 3: one PS node is too few
