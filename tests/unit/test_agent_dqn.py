"""DQN smoke run, checkpoint round trip, masking, the SDN-CEP policy and decide()."""
import numpy as np
import pytest
import torch

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.cost import check_plan
from agents.decision import NodeState, Snapshot, Task, decide, view_from_snapshot
from agents.dqn import Agent, Args, QNetwork, SdnCepPolicy, train

STORE = ProfileStore(root=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent")
    args = Args(total_episodes=6, tasks_min=20, tasks_max=30, learning_starts=32, batch_size=16,
                buffer_size=100, target_network_frequency=20, progress=False, out_dir=str(out), exp_name="smoke")
    agent, rows = train(args, CostConfig(), STORE)
    return agent, rows, out


def test_smoke_run_logs_and_learns_shape(trained):
    agent, rows, out = trained
    assert len(rows) == 6 and rows[-1]["steps"] >= 120
    assert np.isfinite(rows[-1]["td_loss"])
    assert (out / "smoke.csv").read_text().startswith("episode,")


def test_checkpoint_roundtrip_weights_only(trained):
    agent, _, out = trained
    loaded = Agent.load(out / "smoke.pt")
    sd = torch.load(out / "smoke.pt", weights_only=True)
    assert set(sd) == set(agent.q.state_dict())
    obs = np.random.default_rng(0).normal(size=agent.meta["obs_dim"]).astype(np.float32)
    assert loaded.act(obs) == agent.act(obs)


def test_act_respects_mask():
    q = QNetwork(5, 4, 8)
    with torch.no_grad():
        q.network[-1].bias.copy_(torch.tensor([0.0, 5.0, 1.0, 2.0]))
        q.network[-1].weight.zero_()
    ag = Agent(q, {"m": 3, "n_edge": 1, "obs_dim": 5, "n_actions": 4, "hidden": 8})
    obs = np.zeros(5, np.float32)
    assert ag.act(obs) == 1
    assert ag.act(obs, np.array([1, 0, 1, 1])) == 3
    assert ag.act(obs, np.array([1, 0, 0, 0])) == 0
    assert ag.shortlist(obs, np.array([1, 0, 1, 1]), 3) == [3, 2, 0]
    assert ag.shortlist(obs, np.array([0, 0, 1, 0]), 3) == [2]


def test_shortlist_reranked_by_cost_model_is_never_worse(trained):
    from agents.cost import all_plans, evaluate
    agent, _, _ = trained
    cost = CostConfig()
    alone = decide(SdnCepPolicy(agent, use_gate=False), _snapshot(), Task("alexnet"), STORE, cost)
    ranked = decide(SdnCepPolicy(agent, use_gate=False, top_k=34), _snapshot(), Task("alexnet"), STORE, cost)
    view = view_from_snapshot(_snapshot(), "alexnet", STORE)
    best = max(evaluate(p, view, STORE, cost).reward for p in all_plans("alexnet", 11, view)
               if not check_plan(p, view, STORE, cost))
    assert ranked.reward >= alone.reward and ranked.reward == pytest.approx(best)  # 34 = every action
    with pytest.raises(ValueError, match="top_k"):
        SdnCepPolicy(agent, top_k=0)


def _snapshot(bw=10e6):
    return Snapshot((NodeState("es1", "edge", 0.5, 0.0, 0, 1e9, bw, 50e6),
                     NodeState("es2", "edge", 0.35, 1.0, 3, 512e6, bw, 200e6),
                     NodeState("es3", "edge", 0.2, 0.0, 0, 128e6, bw, 400e6),
                     NodeState("cloud", "cloud", 1.0, 0.0, 0, None, 0.0, bw)), now=12.5)


def test_policy_gate_and_decide(trained):
    agent, _, _ = trained
    pol = SdnCepPolicy(agent, delta=0.6)
    cost = CostConfig()
    hard = decide(pol, _snapshot(), Task("alexnet", q=0.9), STORE, cost)
    assert hard.hops == (("cloud", 0, 11),) and hard.latency is not None and hard.reward < 0
    easy = decide(pol, _snapshot(), Task("alexnet", q=0.1), STORE, cost)
    assert easy.hops[0][1] == 0 and easy.hops[-1][2] == 11 and easy.cost is not None
    view = view_from_snapshot(_snapshot(), "alexnet", STORE)
    assert check_plan(easy, view, STORE, cost) == ()
    # es2 is busy with 3 queued tasks: its backlog estimate is (0.5 + 3) full inferences
    full = STORE.seg_times("alexnet", 0.35).sum()
    assert view.node("es2").backlog_s == pytest.approx(3.5 * full)


def test_policy_plans_over_the_nodes_a_smaller_topology_has(trained):
    agent, _, _ = trained
    snap = Snapshot((NodeState("es1", "edge", 0.5, 0.0, 0, 1e9, 1e7, 5e7),
                     NodeState("cloud", "cloud", 1.0, 0.0, 0, None, 0.0, 1e7)), now=0.0)
    # trained for three edge slots: es2 and es3's slots are empty and masked out
    plan = decide(SdnCepPolicy(agent, use_gate=False), snap, Task("alexnet", q=0.0), STORE)
    assert plan.policy == "sdn-cep" and plan.fallback is None
    assert set(plan.nodes) <= {"es1", "cloud"}


def test_policy_load_with_predictor(trained, tmp_path):
    from agents.complexity import train_predictor
    _, _, out = trained
    pred = train_predictor(seed=0)
    pred.save(tmp_path / "c.json")
    pol = SdnCepPolicy.load(out / "smoke.pt", tmp_path / "c.json", delta=0.0)
    img = np.random.default_rng(0).random((32, 32))
    plan = decide(pol, _snapshot(), Task("alexnet", image=img), STORE)   # delta 0 -> always cloud
    assert plan.hops == (("cloud", 0, 11),)


def test_numpy_forward_equals_torch(trained):
    agent, _, _ = trained
    obs = np.random.default_rng(1).normal(size=(5, agent.meta["obs_dim"])).astype(np.float32)
    with torch.no_grad():
        ref = agent.q(torch.as_tensor(obs)).numpy()
    for o, r in zip(obs, ref):
        assert np.allclose(agent.q_values(o), r, atol=1e-5)


def test_two_hop_agent_smoke_and_decide(tmp_path):
    args = Args(total_episodes=3, tasks_min=10, tasks_max=12, learning_starts=16, batch_size=8, buffer_size=64,
                two_hop=True, progress=False, out_dir=str(tmp_path), exp_name="two")
    agent, rows = train(args, CostConfig(), STORE)
    assert agent.codec.n > agent.codec.n_single and len(rows) == 3
    cost = CostConfig()
    for bw in (1e6, 1e8):
        plan = decide(SdnCepPolicy(agent, use_gate=False), _snapshot(bw), Task("alexnet", q=0.0), STORE, cost)
        assert check_plan(plan, view_from_snapshot(_snapshot(bw), "alexnet", STORE), STORE, cost) == ()
        assert plan.latency.total_s > 0
