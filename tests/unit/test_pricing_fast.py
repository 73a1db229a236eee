"""The compiled kernels of agents.pricing.fast.  The placement search decides as the numpy
search of agents.pricing.schedule, its reference: the same schedule, or on a tie (equal mu
and utility) an equally good one, for every method, placement knob and floor, while the
cluster fills up job by job.  The price levels are the running sums of the charges."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.pricing.baselines import methods
from agents.pricing.cluster import Usage, check_schedule
from agents.pricing.fast import _window_free
from agents.pricing.prices import PriceBook, PriceConfig
from agents.pricing.schedule import Placement, best_schedule
from agents.pricing.workload import SMALL, WorkloadConfig, make_world

METHODS = methods()


def facts(s):
    return None if s is None else (s.w, s.p, s.start, s.end, tuple(s.workers.tolist()), s.ps_server, s.ps_count,
                                   s.kind, s.extra)


def agree(job, cluster, usage, book, placement, floor):
    """Both searches' schedules for one job; assert they are equally good (and valid)."""
    fast = best_schedule(job, cluster, usage, book, placement, floor)
    ref = best_schedule(job, cluster, usage, book, placement, floor, compiled=False)
    assert (fast is None) == (ref is None), (job.jid, facts(fast), facts(ref))
    if ref is not None:
        assert np.isclose(fast.utility - fast.cost, ref.utility - ref.cost, rtol=1e-12, atol=1e-9)
        assert fast.utility == ref.utility
        check_schedule(job, fast, cluster, usage)
    return fast, ref


worlds = st.builds(lambda seed, servers, slots, jobs, wt, pt, bw, workers, chunks: (seed, SMALL.replace(
    servers=servers, slots=slots, jobs=jobs, worker_types=wt, ps_types=pt, worker_types_per_server=(1, wt),
    ps_types_per_server=(1, pt), worker_bw_mbps=(bw, 5120.0), ps_bw_mbps=(1000.0, 6000.0),
    edge_workers=(1, workers), chunks=(1, chunks))),
    st.integers(0, 10_000), st.integers(1, 10), st.integers(6, 30), st.integers(3, 25), st.integers(1, 3),
    st.integers(1, 3), st.sampled_from([100.0, 1000.0, 2000.0]), st.integers(1, 5), st.integers(1, 9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds, st.sampled_from(sorted(METHODS)), st.sampled_from([None, 24, 3]), st.booleans(),
       st.sampled_from([0.0, None]))
def test_compiled_search_decides_as_the_numpy_search(world, name, max_wait, centralised, floor):
    seed, cfg = world
    cluster, jobs = make_world(cfg, seed)
    method = METHODS[name]
    placement = replace(method.placement, max_wait=max_wait, centralised=centralised)
    usage, book = Usage(cluster), PriceBook(cluster, method.prices)
    for job in jobs:
        book.observe(job)
        _, ref = agree(job, cluster, usage, book, placement, floor)
        if ref is not None and ref.utility - ref.cost > 0:
            usage.allocate(job, ref)                    # both go on from the reference's state


def test_compiled_search_decides_as_the_numpy_search_on_a_loaded_large_cluster():
    cluster, jobs = make_world(WorkloadConfig(servers=60, slots=60, jobs=40), 11)
    rng = np.random.default_rng(4)
    usage = Usage(cluster)
    usage.q[:] = rng.binomial(cluster.worker_cap[:, :, None], 0.5, size=usage.q.shape)
    usage.h[:] = rng.binomial(cluster.ps_cap[:, :, None], 0.3, size=usage.h.shape)
    book = PriceBook(cluster, METHODS["pricing"].prices)
    for j in jobs:
        book.observe(j)
    same = 0
    for job in jobs:
        fast, ref = agree(job, cluster, usage, book, Placement(), 0.0)
        same += facts(fast) == facts(ref)
    assert same == len(jobs)


def test_window_free_is_the_least_free_count_of_each_interval():
    rng = np.random.default_rng(0)
    for _ in range(200):
        used = rng.integers(0, 6, size=int(rng.integers(1, 40)))
        k = int(rng.integers(1, len(used) + 1))
        lo = int(rng.integers(0, len(used) - k + 1))
        rows = int(rng.integers(1, len(used) - k - lo + 2))
        out = np.empty(rows, dtype=np.int64)
        _window_free(7, used, lo, rows, k, out)
        assert (out == [7 - used[lo + i:lo + i + k].max() for i in range(rows)]).all()


def direct_levels(book, usage):
    """The price levels straight from the definition: for every server, type and level i, the
    running sum over slots of the charge of a node taken at usage q + i (q for literal)."""
    cl, c = book.cluster, book.config
    out = []
    for used, cap, I in ((usage.q, cl.worker_cap, max(1, int(cl.worker_cap.max()))),
                         (usage.h, cl.ps_cap, max(1, int(cl.ps_cap.max())))):
        level = np.arange(I)[None, None, :, None] * (c.charge != "literal")
        at, cap4 = used[:, :, None, :] + level, cap[:, :, None, None]
        if c.charge == "integral":
            charge = book.unit_charges(at, at, cap4, cap4)
        else:
            charge = book.unit_prices(np.minimum(at, cap4), np.minimum(at, cap4), cap4, cap4)
        charge = charge[0] if used is usage.q else charge[1]
        out.append(np.concatenate([np.zeros(charge.shape[:3] + (1,)), np.cumsum(charge, axis=3)], axis=3))
    return out


@pytest.mark.parametrize("kind", ["exp", "oasis", "flat", "zero"])
@pytest.mark.parametrize("charge", ["left", "integral", "literal"])
def test_price_levels_are_the_running_sums_of_the_charges(kind, charge):
    cluster, jobs = make_world(WorkloadConfig(servers=12, slots=20, jobs=30), 2)
    rng = np.random.default_rng(1)
    usage = Usage(cluster)
    book = PriceBook(cluster, PriceConfig(kind=kind, charge=charge))
    for step, job in enumerate(jobs):
        book.observe(job)                                   # U (and L) move: full refreshes
        s = int(rng.integers(cluster.n_servers))            # one server changes: a partial one
        usage.q[s] = rng.binomial(cluster.worker_cap[s, :, None], 0.5, size=usage.q[s].shape)
        usage.h[s] = rng.binomial(cluster.ps_cap[s, :, None], 0.5, size=usage.h[s].shape)
        usage._log.append(np.array([s]))
        usage.version += 1
        gw, gp = book.levels(usage)
        want_w, want_p = direct_levels(book, usage)
        np.testing.assert_allclose(gw, want_w, rtol=1e-13, atol=0)
        np.testing.assert_allclose(gp, want_p, rtol=1e-13, atol=0)
