"""The agent contract: an agent trained for N edge slots serves any live topology with
at most N edge nodes (missing or down nodes are masked, never a reason to fall back);
more nodes than slots is an explicit, counted error; and a reply labelled sdn-cep
only ever carries a plan the agent chose."""
from pathlib import Path

import numpy as np
import pytest

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.decision import FALLBACK_POLICY, NodeState, Snapshot, Task, decide, view_from_snapshot
from agents.dqn import PerModelPolicy
from agents.features import SlotError, action_mask, edge_slots, observe, slot_names
from protocol.plan_request import PlanRequest
from controller.planner import Planner, PlanningError
from tests.unit.test_world_parity import heartbeats, measured_view
from topologies.spec import TopologySpec

AGENT = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet.pt"
pytestmark = pytest.mark.skipif(not AGENT.exists(), reason="no trained agent checkpoint")
STORE = ProfileStore()


@pytest.fixture(scope="module")
def policy():
    return PerModelPolicy.load([str(AGENT)], use_gate=False, top_k=5).policies["alexnet"]


def planner_for(spec):
    planner = Planner.from_files(agent_checkpoint=str(AGENT), agent_top_k=5, worker_port=9000)
    view, hosts, attach = measured_view(spec)
    return planner, view, hosts, attach


def plan_tasks(planner, view, hosts, attach, count=20, rate=8.0, beat=None, start=0.5):
    """Two devices' tasks planned by sdn-cep from ``start``; ``beat(now)`` sends the heartbeats."""
    replies = []
    for i, now in enumerate(np.arange(count) / rate + start):
        (beat or (lambda t: heartbeats(view, hosts, attach, t)))(now)
        device = ("d1", "d2")[i % 2]
        request = PlanRequest(f"t{i}", "alexnet", "sdn-cep", hosts[device][2], q=0.0)
        replies.append(planner.plan(view, request, float(now)).reply)
    return replies


def test_two_edge_nodes_under_an_agent_trained_for_three():
    assert len(PerModelPolicy.load([str(AGENT)]).policies["alexnet"].agent.edge_names) == 3
    planner, view, hosts, attach = planner_for(TopologySpec(edges=2, wan_mbit=10.0))
    replies = plan_tasks(planner, view, hosts, attach)
    used = {h["node"] for r in replies for h in r["hops"]}
    assert used <= {"e1", "e2", "cloud"} and used & {"e1", "e2"}
    assert all(r["policy"] == "sdn-cep" and r["fallback"] is None for r in replies)


def test_an_edge_node_that_stops_sending_heartbeats_is_planned_around():
    planner, view, hosts, attach = planner_for(TopologySpec(wan_mbit=10.0))

    def all_but_e2(now):   # e2 stopped sending at 2.5 s: stale 3 s later
        heartbeats(view, {n: h for n, h in hosts.items() if n != "e2"}, attach, now)

    before = plan_tasks(planner, view, hosts, attach, count=16)
    assert "e2" in {h["node"] for r in before for h in r["hops"]}     # e2 is worth using
    planner.world = type(planner.world)()
    after = plan_tasks(planner, view, hosts, attach, count=40, beat=all_but_e2, start=10.0)
    used = {h["node"] for r in after for h in r["hops"]}
    assert "e2" not in used and used & {"e1", "e3"}
    assert all(r["policy"] == "sdn-cep" and r["fallback"] is None for r in after)


def test_more_edge_nodes_than_slots_is_an_explicit_error():
    planner, view, hosts, attach = planner_for(TopologySpec(edges=4, access_switches=2, wan_mbit=10.0))
    heartbeats(view, hosts, attach, 0.5)
    with pytest.raises(PlanningError, match="4 edge nodes .* trained for 3") as refused:
        planner.plan(view, PlanRequest("t", "alexnet", "sdn-cep", hosts["d1"][2]), 0.5)
    assert refused.value.reason == "agent_mismatch"
    # the baselines serve the same view
    assert planner.plan(view, PlanRequest("t", "alexnet", "dpto", hosts["d1"][2]), 0.5).reply["hops"]


def _random_snapshot(rng):
    edges = []
    for name in rng.permutation(["e1", "e2", "e3", "x7"])[:rng.integers(0, 4)]:
        edges.append(NodeState(str(name), "edge", float(rng.choice([0.1, 0.15, 0.2])), 0.0, int(rng.integers(0, 3)),
                               float(rng.choice([4e9, 1e8])), float(rng.uniform(1e6, 1e8)), 1e8,
                               backlog_s=float(rng.uniform(0, 2)) if rng.random() < 0.5 else None))
    cloud = NodeState("cloud", "cloud", 0.35, 0.0, 0, None, 0.0, float(rng.uniform(1e6, 1e8)))
    return Snapshot(tuple(edges) + (cloud,), now=0.0)


def test_a_reply_labelled_sdn_cep_carries_a_plan_from_the_agent(policy):
    rng = np.random.default_rng(7)
    cost = CostConfig()
    for _ in range(200):
        snapshot = _random_snapshot(rng)
        plan = decide(policy, snapshot, Task("alexnet", q=0.0), STORE, cost)
        view = view_from_snapshot(snapshot, "alexnet", STORE)
        slots = edge_slots(view, policy.agent.edge_names)
        mask = action_mask(view, "alexnet", policy.agent.codec, STORE, cost, slots=slots)
        chosen = {policy.agent.codec.plan(a, "alexnet", slot_names(slots)).hops
                  for a in policy.agent.shortlist(observe(view, "alexnet", STORE, slots), mask, policy.top_k)}
        if plan.policy == "sdn-cep":
            assert plan.hops in chosen and plan.fallback is None
        else:
            assert plan.policy == FALLBACK_POLICY and plan.fallback


def test_slots_keep_trained_names_and_refuse_a_fourth_node(policy):
    snapshot = Snapshot((NodeState("e3", "edge", 0.1, 0, 0, None, 1e7, 1e8),
                         NodeState("x9", "edge", 0.2, 0, 0, None, 1e7, 1e8),
                         NodeState("cloud", "cloud", 0.35, 0, 0, None, 0, 1e7)), now=0.0)
    view = view_from_snapshot(snapshot, "alexnet", STORE)
    slots = edge_slots(view, ("e1", "e2", "e3"))
    assert [n.name if n else None for n in slots] == ["x9", None, "e3"]   # e3 keeps its slot
    mask = action_mask(view, "alexnet", policy.agent.codec, STORE, CostConfig(), slots=slots)
    codec = policy.agent.codec
    assert not any(mask[codec.encode(p, 1)] for p in range(1, 12))          # the empty slot
    assert mask[codec.encode(11, 2)] and mask[codec.encode(11, 0)]
    crowded = Snapshot(snapshot.nodes[:2] + (NodeState("e1", "edge", 0.1, 0, 0, None, 1e7, 1e8),
                                             NodeState("e2", "edge", 0.1, 0, 0, None, 1e7, 1e8)) + snapshot.nodes[2:],
                       now=0.0)
    with pytest.raises(SlotError, match="4 edge nodes"):
        edge_slots(view_from_snapshot(crowded, "alexnet", STORE), ("e1", "e2", "e3"))
