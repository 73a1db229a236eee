"""The offline optimum (ILP, HiGHS) of agents.pricing: feasible, never below any online
method (competitive ratio >= 1), and right on a case solvable by hand."""

import numpy as np

from agents.pricing.baselines import methods
from agents.pricing.cluster import Cluster, Usage
from agents.pricing.jobs import Job, Utility
from agents.pricing.offline import alone_bound, solve_offline
from agents.pricing.online import run_online
from agents.pricing.workload import SMALL, make_world


def test_offline_optimum_is_feasible_and_beats_every_online_method():
    ms = methods()
    for seed in range(3):
        cluster, jobs = make_world(SMALL.replace(jobs=12), 50 + seed)
        off = solve_offline(jobs, cluster, time_limit=30)
        assert off.optimal
        usage = Usage(cluster)
        for job, s in off.schedules:
            usage.allocate(job, s)                     # raises if a constraint is broken
        usage.check()
        assert np.isclose(off.welfare, sum(s.utility for _, s in off.schedules))
        for m in ms.values():
            assert run_online(jobs, cluster, m).welfare <= off.welfare + 1e-6
        assert off.welfare <= alone_bound(jobs, cluster) + 1e-6    # each job alone: no one does better


def test_offline_picks_the_valuable_job_when_two_cannot_share():
    # one server, 2 workers, 1 PS, 2 slots; each job needs 2 workers x 2 slots, deadline 2
    cl = Cluster(np.array([[2]]), np.array([[1]]), np.array([1e9]), np.array([1e10]), 2, 3600.0)
    tau = np.full((1, 1), 3600.0)
    cheap = Job(0, 0, Utility("step", 5.0, 2), 2, 2, 1, tau, 1e6, np.zeros(1))
    dear = Job(1, 0, Utility("step", 9.0, 2), 2, 2, 1, tau, 1e6, np.zeros(1))
    off = solve_offline([cheap, dear], cl)
    assert off.optimal and off.welfare == 9.0 and [j.jid for j, _ in off.schedules] == [1]
    fcfs = run_online([cheap, dear], cl, methods()["fcfs"])
    assert fcfs.welfare == 5.0                          # online first-come takes the cheap one


def test_the_alone_bound_is_each_jobs_best_utility_when_it_is_alone():
    cl = Cluster(np.array([[2]]), np.array([[1]]), np.array([1e9]), np.array([1e10]), 2, 3600.0)
    tau = np.full((1, 1), 3600.0)
    cheap = Job(0, 0, Utility("step", 5.0, 2), 2, 2, 1, tau, 1e6, np.zeros(1))
    dear = Job(1, 0, Utility("step", 9.0, 2), 2, 2, 1, tau, 1e6, np.zeros(1))
    assert alone_bound([cheap, dear], cl) == 14.0       # both fit alone; together only one does
    assert alone_bound([dear], cl) == solve_offline([dear], cl).welfare
