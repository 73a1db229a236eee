import numpy as np
import pytest

from agents.baselines import DPTO, Neurosurgeon, OnlyCloud, OnlyEdge, Oracle, RandomPolicy, nearest_edge
from agents.calibration import ProfileStore
from agents.config import CostConfig, SimConfig
from agents.registry import build_baselines
from agents.cost import evaluate
from agents.decision import DecisionContext
from agents.sim_env import EdgeCloudEnv


@pytest.fixture(scope="module")
def store():
    return ProfileStore(root=None)


def _ctx(env, store):
    return DecisionContext(env.view(), env.model, store, env.cost, env.task_q)


def test_simple_baselines(store):
    env = EdgeCloudEnv(SimConfig(bw_mbps=10, bw_range_mbps=None), store=store)
    env.reset(seed=0)
    ctx = _ctx(env, store)
    assert OnlyCloud().decide(ctx).hops == (("cloud", 0, 11),)
    # nearest = highest access bandwidth (es3, 400 Mbit/s), but es3 cannot hold fc6 (C1)
    assert nearest_edge(ctx.view).name == "es3"
    oe = OnlyEdge().decide(ctx)
    assert oe.hops[0][0] == "es3" and oe.hops[0][2] == 8
    assert OnlyEdge({"es1": 1.0, "es3": 9.0}).decide(ctx).hops == (("es1", 0, 11),)
    assert DPTO().decide(ctx).hops[0][0] in ("es1", "cloud")
    ns = Neurosurgeon(store).decide(ctx)
    assert ns.hops[0][0] in ("es3", "cloud")


def test_oracle_dominates_every_baseline_per_decision(store):
    rng = np.random.default_rng(0)
    cost = CostConfig()
    pols = [p for n, p in build_baselines(store).items() if not n.startswith("oracle")]
    for seed in range(6):
        env = EdgeCloudEnv(SimConfig(bw_mbps=float(rng.uniform(1, 100)), bw_range_mbps=None, n_tasks=60),
                           cost, store)
        env.reset(seed=seed)
        for _ in range(int(rng.integers(0, 50))):      # load the queues with random plans
            env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        ctx = _ctx(env, store)
        best = Oracle().decide(ctx).reward
        best2 = Oracle(two_hop=True).decide(ctx).reward
        assert best2 >= best - 1e-12
        for p in pols:
            assert evaluate(p.decide(ctx), ctx.view, store, cost).reward <= best + 1e-12, p.name


def test_random_is_seeded_and_feasible(store):
    env = EdgeCloudEnv(SimConfig(bw_range_mbps=None), store=store)
    env.reset(seed=3)
    ctx = _ctx(env, store)
    a = [RandomPolicy(5).decide(ctx).hops for _ in range(3)]
    r = RandomPolicy(5)
    b = [r.decide(ctx).hops for _ in range(20)]
    assert a[0] == b[0] and len(set(b)) > 1
