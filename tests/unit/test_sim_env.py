import numpy as np
from gymnasium.utils.env_checker import check_env

from agents.baselines import OnlyEdge
from agents.calibration import ProfileStore
from agents.config import CostConfig, SimConfig
from agents.evaluation import run_episode
from agents.sim_env import BandwidthTrace, EdgeCloudEnv

STORE = ProfileStore(root=None)


def test_check_env_passes():
    check_env(EdgeCloudEnv(SimConfig(n_tasks=20), store=STORE), skip_render_check=True)
    check_env(EdgeCloudEnv(SimConfig(n_tasks=20, two_hop=True, bw_trace="wifi"), store=STORE),
              skip_render_check=True)


def test_seeded_reset_is_deterministic():
    e1, e2 = EdgeCloudEnv(store=STORE), EdgeCloudEnv(store=STORE)
    o1, _ = e1.reset(seed=7)
    o2, _ = e2.reset(seed=7)
    assert np.array_equal(o1, o2) and np.array_equal(e1.arrivals, e2.arrivals)
    r1 = [e1.step(3)[1] for _ in range(5)]
    r2 = [e2.step(3)[1] for _ in range(5)]
    assert r1 == r2


def test_mask_and_gate():
    env = EdgeCloudEnv(SimConfig(use_gate=True, delta=0.0), store=STORE)
    _, info = env.reset(seed=0)
    assert info["gated"] and info["action_mask"].sum() == 1 and info["action_mask"][0] == 1
    env = EdgeCloudEnv(SimConfig(), store=STORE)
    _, info = env.reset(seed=0)
    mask = info["action_mask"]
    # es3 (128 MB) cannot hold AlexNet's fc6 -> cuts p >= 9 on es3 are masked
    es3 = env.edge_names.index("es3")
    assert mask[env.codec.encode(8, es3)] == 1 and mask[env.codec.encode(9, es3)] == 0
    _, _, _, _, info = env.step(env.codec.encode(11, es3))
    assert info["invalid_action"] and info["plan"] == (("cloud", 0, 11),)


def test_latency_grows_with_load():
    cost = CostConfig()
    lat = [run_episode(OnlyEdge(), SimConfig(bw_mbps=10, bw_range_mbps=None, n_tasks=k), cost, STORE, 1).mean_latency_s
           for k in (10, 50, 200)]
    assert lat[0] < lat[1] < lat[2]


def test_bandwidth_traces():
    rng = np.random.default_rng(0)
    for kind in ("constant", "stepped", "wifi"):
        tr = BandwidthTrace(kind, 10.0, 30.0, rng)
        v = np.array([tr.at(t) for t in np.linspace(0, 40, 100)])
        assert (v > 0).all()
        if kind == "constant":
            assert np.allclose(v, 10e6)
        else:
            assert v.std() > 0
    assert 3e6 < np.mean(BandwidthTrace("wifi", 10.0, 5000.0, rng).values_bps) < 3e7


def test_obs_in_space_over_episode():
    env = EdgeCloudEnv(SimConfig(n_tasks=50, bw_range_mbps=(1, 100)), store=STORE)
    obs, info = env.reset(seed=2)
    done = False
    while not done:
        assert env.observation_space.contains(obs)
        obs, r, done, _, info = env.step(int(np.flatnonzero(info["action_mask"])[-1]))
        assert r < 0


def test_fast_mask_equals_check_plan():
    from agents.features import action_mask, action_mask_slow
    rng = np.random.default_rng(1)
    cost = CostConfig(max_queue=5, max_backlog_s=2.0)
    for model in ("alexnet", "googlenet", "vgg16"):
        env = EdgeCloudEnv(SimConfig(model=model, two_hop=True, n_tasks=40), cost, STORE)
        env.reset(seed=int(rng.integers(100)))
        for _ in range(30):
            view = env.view()
            fast = action_mask(view, model, env.codec, STORE, cost)
            slow = action_mask_slow(view, model, env.codec, STORE, cost)
            assert np.array_equal(fast, slow)
            env.step(int(rng.choice(np.flatnonzero(fast))))
