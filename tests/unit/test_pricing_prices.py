"""Prices of agents.pricing: zero when idle, rising with utilisation, above every job's
value per unit at full use (the text's eta lower bounds), and config validation."""

from itertools import pairwise

import numpy as np
import pytest

from agents.config import ConfigError
from agents.pricing.cluster import Usage
from agents.pricing.jobs import Utility
from agents.pricing.prices import PriceBook, PriceConfig
from agents.pricing.schedule import best_schedule
from agents.pricing.workload import SMALL, WorkloadConfig, make_world


@pytest.fixture(scope="module")
def world():
    return make_world(WorkloadConfig(servers=8, slots=30, jobs=60), 3)


@pytest.mark.parametrize("kind", ["exp", "oasis"])
def test_price_rises_with_utilisation_and_exp_is_zero_when_idle(world, kind):
    cluster, jobs = world
    book = PriceBook(cluster, PriceConfig(kind=kind))
    for j in jobs:
        book.observe(j)
    cap = cluster.worker_cap[:, :, None]
    prices = [book.unit_prices(np.full(cap.shape, q) * (cap > 0), np.zeros((cluster.n_servers, cluster.n_ps_types, 1)))[0]
              for q in range(int(cap.max()) + 1)]
    has = (cap > 0)[:, :, 0]
    if kind == "exp":
        assert np.all(prices[0][has] == 0.0)
    else:
        assert np.all(prices[0][has] > 0.0)                    # OASiS: L when idle
    for q in range(1, len(prices)):
        grew = cap[:, :, 0] >= q
        assert np.all(prices[q][:, :, 0][grew] > prices[q - 1][:, :, 0][grew])


def test_full_use_price_exceeds_every_jobs_value_per_unit(world):
    cluster, jobs = world
    book = PriceBook(cluster, PriceConfig())
    for j in jobs:
        book.observe(j)
    alpha, beta = book.full_use_prices()
    wmax = max(j.utility.peak / j.min_worker_slots(cluster.slot_s) for j in jobs)
    pmax = max(j.utility.peak / j.min_ps_slots(cluster.slot_s) for j in jobs)
    assert alpha[cluster.worker_cap > 0].min() > wmax
    assert beta[cluster.ps_cap > 0].min() > pmax
    c = book.config
    assert book.eta_w == pytest.approx(1 + (1 + c.margin) * book.U_w / book.L_w)


@pytest.mark.parametrize("refused", [0, 30, 60])
def test_learned_scale_keeps_prices_zero_when_idle_rising_and_above_every_value_at_full_use(world, refused):
    """Must-show 4 with L learned online, however many bids were refused so far."""
    cluster, jobs = world
    book = PriceBook(cluster, PriceConfig(low="learned"))
    for i, j in enumerate(jobs):
        book.observe(j)
        book.decided_on(i >= refused)
    cap = cluster.worker_cap[:, :, None]
    has = cap[:, :, 0] > 0
    none_p = np.zeros((cluster.n_servers, cluster.n_ps_types, 1))
    prices = [book.unit_prices(np.full(cap.shape, q) * (cap > 0), none_p)[0][:, :, 0] for q in range(int(cap.max()) + 1)]
    assert np.all(prices[0][has] == 0.0)
    for q in range(1, len(prices)):
        grew = cap[:, :, 0] >= q
        assert np.all(prices[q][grew] > prices[q - 1][grew])
    alpha, beta = book.full_use_prices()
    assert alpha[has].min() > max(j.utility.peak / j.min_worker_slots(cluster.slot_s) for j in jobs)
    assert beta[cluster.ps_cap > 0].min() > max(j.utility.peak / j.min_ps_slots(cluster.slot_s) for j in jobs)


def test_learned_scale_follows_the_refused_fraction_up_to_the_lowest_density(world):
    cluster, jobs = world
    book = PriceBook(cluster, PriceConfig(low="learned", low_density=0.3))
    assert book.L_w == 0.3                                    # the prior before any bid
    for j in jobs:
        book.observe(j)
    lowest = min(j.utility.peak / j.min_worker_slots(cluster.slot_s) for j in jobs)
    seen = []
    for admitted in [True] * 20 + [False] * 200:
        book.decided_on(admitted)
        seen.append(book.L_w)
    assert seen[19] < seen[0] < lowest                        # every bid fitted: L falls
    assert all(b >= a for a, b in pairwise(seen[20:]))          # refusals: L rises ...
    assert 0.7 * lowest < seen[-1] <= lowest                  # ... towards the lowest density (201/222)
    assert all(np.log2(x) * 4 == pytest.approx(round(np.log2(x) * 4)) for x in seen)   # on the grid
    assert len(set(seen)) < 40                                # so prices are refreshed rarely


def test_a_bid_of_zero_leaves_the_learned_scale_alone():
    cluster, jobs = make_world(SMALL, 2)                      # its own jobs: one is changed
    book = PriceBook(cluster, PriceConfig(low="learned"))
    book.observe(jobs[0])
    before = book.L_w
    object.__setattr__(jobs[1], "utility", Utility("step", 0.0, jobs[1].utility.deadline))
    book.observe(jobs[1])
    assert book.L_w == before > 0 and np.isfinite(book.eta_w)


def test_fixed_scale_is_the_configured_one(world):
    cluster, jobs = world
    book = PriceBook(cluster, PriceConfig(low="fixed", low_density=0.2, ps_low_density=0.4))
    for j in jobs:
        book.observe(j)
        book.decided_on(False)
    assert (book.L_w, book.L_p) == (0.2, 0.4)


def test_prices_are_recomputed_when_the_learned_scale_moves(world):
    cluster, jobs = world
    usage = Usage(cluster)
    usage.q[:] = cluster.worker_cap[:, :, None] // 2           # half used everywhere: prices > 0
    book = PriceBook(cluster, PriceConfig(low="learned"))
    for j in jobs:
        book.observe(j)
    before = book.levels(usage)[0].copy()
    for _ in range(50):
        book.decided_on(False)
    after = book.levels(usage)[0]
    assert after[..., -1].sum() > before[..., -1].sum()       # a larger L: dearer at the same usage


def test_at_full_use_prices_no_job_is_admitted(world):
    """Charge every node at the full-use price (the text's criterion): every schedule of
    every job then costs more than its utility, so best_schedule finds none with mu > 0."""
    cluster, jobs = world

    class FullBook(PriceBook):
        def levels(self, usage):
            gw, gp = super().levels(usage)
            a, b = self.full_use_prices()
            gw = np.broadcast_to(a[:, :, None, None] * np.arange(gw.shape[3]), gw.shape).copy()
            gp = np.broadcast_to(b[:, :, None, None] * np.arange(gp.shape[3]), gp.shape).copy()
            return gw, gp

    book = FullBook(cluster, PriceConfig())
    for j in jobs:
        book.observe(j)
    usage = Usage(cluster)
    free = PriceBook(cluster, PriceConfig(kind="zero"))
    placeable = [j for j in jobs if best_schedule(j, cluster, usage, free) is not None]
    assert len(placeable) >= len(jobs) // 2                   # the control: they do fit
    for j in placeable:
        assert best_schedule(j, cluster, usage, book) is None


def test_prices_follow_usage_when_jobs_start_and_finish():
    cluster, jobs = make_world(SMALL, 1)
    usage = Usage(cluster)
    book = PriceBook(cluster, PriceConfig())
    for j in jobs:
        book.observe(j)
    before = book.levels(usage)[0].copy()
    sched = next(s for s in (best_schedule(j, cluster, usage, book) for j in jobs) if s is not None)
    job = next(j for j in jobs if j.jid == sched.jid)
    usage.allocate(job, sched)
    during = book.levels(usage)[0].copy()
    s, w = int(np.flatnonzero(sched.workers)[0]), sched.w
    assert during[s, w, 0, -1] > before[s, w, 0, -1]         # dearer while it runs
    usage.release(sched.jid, sched.start)
    assert np.allclose(book.levels(usage)[0], before)         # back when it ends


def test_utility_shapes_are_nonnegative_and_decreasing():
    for kind in ("linear", "sigmoid", "step"):
        f = Utility(kind, 10.0, 8)
        v = f(np.arange(1, 12))
        assert np.all(v >= 0) and np.all(np.diff(v) <= 1e-12) and v[-1] == 0 and v[0] > 0


@pytest.mark.parametrize("bad", [{"kind": "nope"}, {"low_density": 0}, {"margin": -1}, {"low": "guess"},
                                 {"high_density": 0.5, "low_density": 1.0}, {"charge": "yes"}])
def test_bad_price_config_is_refused(bad):
    with pytest.raises(ConfigError):
        PriceConfig(**bad)


def test_bad_workload_config_is_refused():
    from agents.pricing.config import pricing_config_from_dict
    with pytest.raises(ConfigError, match="unknown"):
        pricing_config_from_dict({"workload": {"servrs": 3}})
    with pytest.raises(ConfigError):
        pricing_config_from_dict({"workload": {"chunks": [5, 2]}})
    with pytest.raises(ConfigError):
        Utility("linear", -1.0, 3)
    cfg = pricing_config_from_dict({"workload": {"servers": 7, "chunks": [1, 3]}, "prices": {"low_density": 0.5}})
    assert cfg.workload.servers == 7 and cfg.workload.chunks == (1, 3) and cfg.prices.low_density == 0.5
