"""agents.gym_env: the training distribution as one Gymnasium env, its registration and wrappers."""
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agents.gym_env as ge
from agents.calibration import ProfileStore
from agents.config import CostConfig, SimConfig, load_config
from agents.sim_env import EdgeCloudEnv

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "testbed_sim.yaml")
STORE = ProfileStore(root=None)


def _rollout(env, seed=None, steps=30):
    """Observations, rewards and infos of ``steps`` steps choosing the feasible action (i * 7) mod n."""
    obs, info = env.reset(seed=seed)
    out = [(obs, None, info["action_mask"])]
    for i in range(steps):
        allowed = np.flatnonzero(info["action_mask"])
        obs, r, done, _, info = env.step(int(allowed[(7 * i) % len(allowed)]))
        out.append((obs, r, info["action_mask"]))
        if done:
            obs, info = env.reset()
    return out


def _same(a, b):
    return all(np.array_equal(x[0], y[0]) and x[1] == y[1] and np.array_equal(x[2], y[2]) for x, y in zip(a, b))


# --------------------------------------------------------------------------- registration
def test_make_with_yaml_path():
    env = gym.make(ge.ENV_ID, config=CONFIG, seed=3)
    dist = env.unwrapped
    assert isinstance(dist, ge.TrainingDistribution)
    cfg = load_config(CONFIG)
    assert dist.edge_names == ("e1", "e2", "e3") and dist.model == "alexnet" and dist.cost == cfg.cost
    assert dist.traces == ge.TRACES
    for sub, trace in zip(dist.envs, ge.TRACES):      # the config, with the DQN's distribution on top
        assert sub.sim == cfg.sim.replace(bw_trace=trace, bw_range_mbps=ge.BW_RANGE_MBPS,
                                          n_tasks_range=ge.TASKS_RANGE)
    obs, info = env.reset()
    assert env.observation_space.contains(obs) and env.action_space.n == dist.codec.n == 34
    mask = env.get_wrapper_attr("action_masks")()
    assert np.array_equal(mask, info["action_mask"]) and mask[0] == 1
    assert info["trace"] in ge.TRACES and 1.0 <= info["bw_mean_mbps"] <= 100.0
    # keyword arguments: model, two_hop, profiles
    other = gym.make(ge.ENV_ID, config=CONFIG, model="resnet18", two_hop=True, profiles="synthetic")
    assert other.unwrapped.model == "resnet18" and other.unwrapped.codec.two_hop
    assert other.unwrapped.store.root is None


def test_registered_on_import_and_by_module_path():
    assert ge.ENV_ID in gym.registry
    ge.register()                                      # again: a no-op
    env = gym.make("agents.gym_env:sdncep/EdgeCloud-v0")
    assert isinstance(env.unwrapped, ge.TrainingDistribution)


def test_importing_agents_does_not_import_torch():
    code = "import sys, agents, agents.registry; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# --------------------------------------------------------------------------- gymnasium's checker
def test_check_env():
    check_env(ge.TrainingDistribution(SimConfig(), store=STORE, n_tasks_range=(5, 20)), skip_render_check=True)
    check_env(gym.make(ge.ENV_ID, config=CONFIG, n_tasks_range=(5, 20)).unwrapped, skip_render_check=True)
    # the wrappers record their arguments, so the checker can rebuild the env from its spec
    with pytest.warns(UserWarning, match="different from the unwrapped"):
        check_env(ge.MaskInfeasible(ge.LogReward(gym.make(ge.ENV_ID, config=CONFIG, n_tasks_range=(5, 20)))),
                  skip_render_check=True)


# --------------------------------------------------------------------------- seeding
def test_seeding_is_reproducible():
    a = _rollout(gym.make(ge.ENV_ID, config=CONFIG), seed=11, steps=250)
    b = _rollout(gym.make(ge.ENV_ID, config=CONFIG), seed=11, steps=250)
    assert _same(a, b)
    # a constructor seed is the seed of the first reset
    c = _rollout(gym.make(ge.ENV_ID, config=CONFIG, seed=11), steps=250)
    assert _same(a, c)
    d = _rollout(gym.make(ge.ENV_ID, config=CONFIG), seed=12, steps=250)
    assert not _same(a, d)


def test_one_episode_distribution_per_reset():
    env = ge.TrainingDistribution(SimConfig(), store=STORE, seed=0, n_tasks_range=(3, 40))
    seen_traces, ks, bws = set(), set(), []
    for _ in range(40):
        _, info = env.reset()
        seen_traces.add(info["trace"])
        ks.add(env.current.k)
        bws.append(info["bw_mean_mbps"])
        assert env.current is env.envs[ge.TRACES.index(info["trace"])]
    assert seen_traces == set(ge.TRACES)
    assert min(ks) >= 3 and max(ks) <= 40 and len(ks) > 10
    assert 1.0 <= min(bws) and max(bws) <= 100.0 and max(bws) / min(bws) > 5


def test_shared_generator_gives_the_dqn_episodes():
    """agents.dqn.train shares its generator: trace first, then the sub-env's seed, as before the env existed."""
    from agents.dqn import Args, make_train_env
    args = Args(tasks_min=5, tasks_max=30, two_hop=True)
    env = make_train_env(args, CostConfig(), STORE)
    assert isinstance(env, ge.LogReward)
    dist = env.unwrapped
    dist.np_random = np.random.default_rng(5)
    rng = np.random.default_rng(5)
    for _ in range(4):
        obs, _ = env.reset()
        trace = ge.TRACES[int(rng.integers(3))]
        old = EdgeCloudEnv(SimConfig(model=args.model, bw_trace=trace, bw_range_mbps=(1.0, 100.0),
                                     n_tasks_range=(5, 30), two_hop=True), CostConfig(), STORE)
        ref, _ = old.reset(seed=int(rng.integers(2 ** 31)))
        assert dist.sim == old.sim and np.array_equal(obs, ref) and dist.current.k == old.k
    assert isinstance(make_train_env(Args(reward_transform="none"), CostConfig(), STORE), ge.TrainingDistribution)


# --------------------------------------------------------------------------- LogReward
def test_log_reward_is_the_dqn_transform():
    from agents import dqn
    assert dqn.transform_reward is ge.transform_reward          # one implementation
    raw = ge.TrainingDistribution(SimConfig(), store=STORE, seed=4)
    logged = ge.LogReward(ge.TrainingDistribution(SimConfig(), store=STORE, seed=4))
    raw.reset()
    logged.reset()
    for a in (0, 1, 5, 12, 0, 3):
        _, r, *_ = raw.step(a)
        _, lr, _, _, info = logged.step(a)
        assert info["raw_reward"] == r
        assert lr == pytest.approx(float(dqn.transform_reward(r, "log")), rel=1e-12)
        assert lr == float(-np.log(max(-r, 1e-4) / 0.1))
    assert ge.transform_reward(-0.5, "none") == -0.5
    with pytest.raises(ValueError):
        ge.transform_reward(-0.5, "sqrt")


# --------------------------------------------------------------------------- MaskInfeasible
def _nearest_by_hand(codec, a, mask):
    """Fewest layers on another node than action a; ties to the lowest index."""
    def where(b):
        p, j, q, k = codec.decode(b)
        return ["cloud" if p == 0 or l >= (q or p) else (j if l < p else k) for l in range(codec.m)]
    wa = where(a)
    return min((sum(x != y for x, y in zip(where(b), wa)), b) for b in np.flatnonzero(mask))[1]


def test_infeasible_action_today_runs_all_cloud():
    env = ge.TrainingDistribution(SimConfig(), store=STORE, seed=0)
    env.reset()
    es3 = env.edge_names.index("es3")                  # 128 MB: AlexNet from fc6 on does not fit
    _, _, _, _, info = env.step(env.codec.encode(9, es3))
    assert info["invalid_action"] and info["plan"] == (("cloud", 0, 11),)


def test_mask_infeasible_maps_to_the_nearest_feasible_action():
    env = ge.MaskInfeasible(ge.TrainingDistribution(SimConfig(), store=STORE, seed=0))
    _, info = env.reset()
    codec = env.get_wrapper_attr("codec")
    es3 = env.get_wrapper_attr("edge_names").index("es3")
    mask = env.get_wrapper_attr("action_masks")()
    a = codec.encode(9, es3)
    assert not mask[a] and info["remapped_in_episode"] == 0
    assert env.nearest_feasible(a, mask) == codec.encode(8, es3)          # one layer back to the cloud
    for bad in np.flatnonzero(mask == 0):
        assert env.nearest_feasible(int(bad), mask) == _nearest_by_hand(codec, int(bad), mask)
    _, _, _, _, info = env.step(a)
    assert info["remapped"] and info["requested_action"] == a and info["action"] == codec.encode(8, es3)
    assert not info["invalid_action"] and info["plan"] == (("es3", 0, 8), ("cloud", 8, 11))
    assert info["remapped_in_episode"] == 1 and env.remapped == 1
    _, _, _, _, info = env.step(1)                                         # feasible: unchanged
    assert not info["remapped"] and info["action"] == 1 and info["remapped_in_episode"] == 1
    assert env.steps == 2
    _, info = env.reset()
    assert info["remapped_in_episode"] == 0 and env.remapped == 1


def test_mask_infeasible_two_hop_and_down_nodes():
    sim = SimConfig(two_hop=True, edge_down_prob=0.6)
    env = ge.MaskInfeasible(ge.TrainingDistribution(sim, store=STORE, seed=2, n_tasks_range=(5, 10)))
    codec = env.get_wrapper_attr("codec")
    checked = 0
    for _ in range(6):
        env.reset()
        mask = env.get_wrapper_attr("action_masks")()
        bad = np.flatnonzero(mask == 0)
        for a in bad[:: max(1, len(bad) // 25)]:
            assert env.nearest_feasible(int(a), mask) == _nearest_by_hand(codec, int(a), mask)
            checked += 1
        _, _, _, _, info = env.step(int(bad[0]) if len(bad) else 0)
        assert not info["invalid_action"]                                   # never the silent fallback
    assert checked > 50


def test_mask_infeasible_raise_mode():
    env = ge.MaskInfeasible(ge.TrainingDistribution(SimConfig(), store=STORE, seed=0), on_infeasible="raise")
    env.reset()
    es3 = env.get_wrapper_attr("edge_names").index("es3")
    with pytest.raises(ge.InfeasibleActionError, match="es3"):
        env.step(env.get_wrapper_attr("codec").encode(9, es3))
    env.step(0)
    with pytest.raises(ValueError):
        ge.MaskInfeasible(env.env, on_infeasible="cloud")
