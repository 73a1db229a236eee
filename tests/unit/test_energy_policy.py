"""Energy-aware offloading: the trained DQN (criterion 1, 2), claim-2 execution order,
checkpoint round trip, the Gymnasium env and a training smoke run."""
import gymnasium
import numpy as np
import torch

from agents.energy.baselines import AllLocal, AllOffload, Exhaustive, RandomPolicy
from agents.energy.config import EnergyConfig, TrainArgs
from agents.energy.dqn import EnergyAgent, train
from agents.energy.env import ENV_ID, EnergyOffloadEnv
from agents.energy.instances import draw_instance
from agents.energy.mdp import OBS_DIM, OffloadState
from agents.energy.model import build_tables, evaluate
from agents.energy.policy import DEFAULT_CHECKPOINT, DqnPolicy

POLICY = DqnPolicy.load()


def _total(tab, policy):
    return evaluate(tab, policy.decide(tab).x).penalised()[0]


def test_dqn_within_5_percent_of_optimum_and_beats_simple_baselines():
    rng = np.random.default_rng(2024)
    tabs = [build_tables(draw_instance(rng)) for _ in range(50)]
    opt = np.array([_total(t, Exhaustive()) for t in tabs])
    dqn = np.array([_total(t, POLICY) for t in tabs])
    assert np.all(dqn >= opt - 1e-9)
    assert (dqn / opt).mean() <= 1.05
    for base in (AllLocal(), AllOffload(), RandomPolicy(0)):
        assert dqn.mean() < np.mean([_total(t, base) for t in tabs]), base.name


def _battery_sweep(policy, inst):
    shares, energy = [], []
    for r in (1.0, 0.1):
        tab = build_tables(inst.with_battery_ratio(r))
        out = evaluate(tab, policy.decide(tab).x)
        shares.append(out.decisions.mean())
        energy.append(out.energy.sum())
    return shares, energy


def test_low_battery_offloads_more_and_spends_less_energy():
    inst = draw_instance(np.random.default_rng(11), n=10)
    for policy in (POLICY, Exhaustive()):
        (share_full, share_low), (e_full, e_low) = _battery_sweep(policy, inst)
        assert share_low > share_full, policy.name
        assert e_low < e_full, policy.name


def test_checkpoint_roundtrip_weights_only(tmp_path):
    sd = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert set(sd) == set(POLICY.agent.q.state_dict())
    path = POLICY.agent.save(tmp_path, "e")
    again = EnergyAgent.load(path)
    obs = np.random.default_rng(0).normal(size=(5, OBS_DIM)).astype(np.float32)
    with torch.no_grad():
        ref = POLICY.agent.q(torch.as_tensor(obs)).numpy()
    assert np.allclose(again.q_values(obs), ref, atol=1e-5)


class _AlwaysOffload:
    meta = {"reward_a": 2.0, "penalty": 5.0}

    def q_values(self, obs):
        return np.tile([0.0, 1.0], (len(obs), 1))


def test_claim2_order_executes_the_highest_reward_task_first(monkeypatch):
    tab = build_tables(draw_instance(np.random.default_rng(4), n=6))
    order = []
    real_apply = OffloadState.apply

    def spy(self, i, a):
        order.append((i, self.features([i])[2][0, a]))
        real_apply(self, i, a)

    monkeypatch.setattr(OffloadState, "apply", spy)
    policy = DqnPolicy(_AlwaysOffload())
    policy.rounds(OffloadState(tab, policy.penalty))
    assert sorted(i for i, _ in order) == list(range(6))
    # at every round the executed task had the least marginal cost (= highest reward A - cost)
    state = OffloadState(tab, 5.0)
    for i, _ in order:
        pend = state.pending
        _, mask, marg = state.features(pend)
        act = np.where(mask[:, 1], 1, 0)
        best = pend[np.argmin(marg[np.arange(len(pend)), act])]
        assert i == best
        real_apply(state, i, int(act[list(pend).index(i)]))


def test_the_compiled_rounds_decide_as_the_numpy_rounds():
    rng = np.random.default_rng(21)
    for _ in range(300):
        tab = build_tables(draw_instance(rng, n=int(rng.integers(1, 11))))
        assert (POLICY.raw(tab) == POLICY.rounds(OffloadState(tab, POLICY.penalty))).all()


def test_n_exec_all_is_one_round_from_the_initial_state():
    tab = build_tables(draw_instance(np.random.default_rng(9), n=7))
    x = DqnPolicy(POLICY.agent, n_exec=7).raw(tab)
    state = OffloadState(tab, POLICY.penalty)
    obs, mask, _ = state.features(state.pending)
    q = np.where(mask, POLICY.agent.q_values(obs), -np.inf)
    assert (x == (q.argmax(axis=1) == 1)).all()


def test_gym_env_contract_and_registration():
    from gymnasium.utils.env_checker import check_env
    env = gymnasium.make(ENV_ID, seed=3)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert obs.shape == (OBS_DIM,) and info["action_mask"].shape == (2,)
    total, done = 0.0, False
    n = env.unwrapped.tab.inst.n
    while not done:
        obs, r, done, _, info = env.step(int(np.flatnonzero(info.get("action_mask", [1, 1]))[-1]))
        total += r
    # rewards telescope: sum(A - marginal) = n A - total penalised cost
    a = env.unwrapped.cfg.train.reward_a
    pen = env.unwrapped.cfg.train.penalty
    x = env.unwrapped.state.decisions()
    out = evaluate(env.unwrapped.tab, x)
    assert np.isclose(total, n * a - out.penalised(pen)[0])


def test_training_smoke_run():
    cfg = EnergyConfig(train=TrainArgs(episodes=40, learning_starts=32, batch_size=16, buffer_size=200,
                                       target_every=20))
    agent, rows = train(cfg, log_every=20)
    assert len(rows) == 2 and rows[-1]["steps"] > 40 and np.isfinite(rows[-1]["td_loss"])
    assert agent.meta["obs_dim"] == OBS_DIM
    EnergyOffloadEnv(cfg).reset(seed=0)
