"""Every term of the cost model against hand-computed values (tiny 2-segment model).

Numbers: D_0 = 1000 B, D_1 = 500 B, D_2 = 8 B; cloud times 0.1 s and 0.2 s at 1 core,
e1 has 0.5 core (0.2 s, 0.4 s), device->e1 80 kbit/s (1000 B = 0.1 s), e1->cloud and
device->cloud 8 kbit/s (500 B = 0.5 s, 1000 B = 1 s), edge LAN 16 kbit/s.
Prices: edge 1/s, cloud 2/s, WAN 1e-3/B, LAN 1e-4/B; w = 0.25.
"""
import math

import pytest

from agents.config import CostConfig
from agents.cost import Plan, batch_cost, check_plan, cloud_only, evaluate, reward_of
from agents.testing import tiny_cost, tiny_store, tiny_view


@pytest.fixture
def store(tmp_path):
    return tiny_store(tmp_path)


def approx(x):
    return pytest.approx(x, abs=1e-9)


def test_cut_plan_terms(store):
    ev = evaluate(Plan("tiny", (("e1", 0, 1), ("cloud", 1, 2))), tiny_view(), store, tiny_cost())
    assert ev.latency.trans_s == approx(0.1 + 0.5)   # raw input to e1, D_1 to the cloud
    assert ev.latency.edge_s == approx(0.2)          # segment 1 at 0.5 core
    assert ev.latency.cloud_s == approx(0.2)         # segment 2 at 1 core
    assert ev.latency.total_s == approx(1.0)
    assert ev.latency.wait_s == approx(0.0)
    assert ev.cost.exe == approx(1.0 * 0.2 + 2.0 * 0.2)
    assert ev.cost.trans == approx(1000 * 1e-4 + 500 * 1e-3)
    assert ev.reward == approx(-(0.75 * 1.0 + 0.25 * 1.2))


def test_cloud_only_and_edge_only(store):
    cfg = tiny_cost()
    c = evaluate(cloud_only("tiny", 2), tiny_view(), store, cfg)
    assert (c.latency.trans_s, c.latency.cloud_s, c.latency.edge_s) == (approx(1.0), approx(0.3), approx(0.0))
    assert (c.cost.exe, c.cost.trans) == (approx(0.6), approx(1.0))
    e = evaluate(Plan("tiny", (("e1", 0, 2),)), tiny_view(), store, cfg)
    assert (e.latency.trans_s, e.latency.edge_s, e.latency.cloud_s) == (approx(0.1), approx(0.6), approx(0.0))
    assert (e.cost.exe, e.cost.trans) == (approx(0.6), approx(0.1))


def test_two_edge_cut(store):
    ev = evaluate(Plan("tiny", (("e1", 0, 1), ("e2", 1, 2))), tiny_view(), store, tiny_cost())
    # 0.1 s in, 0.2 s on e1, 500 B over the 16 kbit/s LAN = 0.25 s, segment 2 at 0.25 core = 0.8 s
    assert ev.latency.trans_s == approx(0.1 + 0.25)
    assert ev.latency.edge_s == approx(0.2 + 0.8)
    assert ev.cost.trans == approx(1000 * 1e-4 + 500 * 1e-4)
    assert ev.cost.exe == approx(1.0 * (0.2 + 0.8))


def test_queueing_at_busy_node_and_link(store):
    cfg = tiny_cost()
    ev = evaluate(Plan("tiny", (("e1", 0, 1), ("cloud", 1, 2))), tiny_view(e1_backlog=0.5), store, cfg)
    assert ev.latency.wait_s == approx(0.4)          # input arrives at 0.1, e1 free at 0.5
    assert ev.latency.edge_s == approx(0.4 + 0.2)
    assert ev.latency.total_s == approx(1.4)
    c = evaluate(cloud_only("tiny", 2), tiny_view(wan_backlog=2.0), store, cfg)
    assert c.latency.trans_s == approx(2.0 + 1.0)
    assert c.cost.total == approx(1.6)               # waiting costs time, not money


def test_batch_formulas_5_to_8(store):
    cfg = tiny_cost()
    plan = Plan("tiny", (("e1", 0, 1), ("cloud", 1, 2)))
    b = batch_cost(plan, k=3, i=2, view=tiny_view(), store=store, cfg=cfg)
    assert b.t_edge == approx(2 * 0.2)                       # (6) compute part, i images
    assert b.t_cloud == approx(2 * 0.2 + 1 * 0.3)            # (7)
    assert b.t_trans == approx(2 * (0.1 + 0.5) + 1 * 1.0)    # (8) + D_p / B of (6)
    assert b.t_k == approx(3.3)                              # (5)
    assert b.c_exe == approx(2 * 0.6 + 0.6)                  # (10)-(11)
    assert b.c_trans == approx(2 * 0.6 + 1.0)                # (12)
    assert b.c_all == approx(b.c_exe + b.c_trans)            # (13)
    assert b.reward == approx(reward_of(3.3, b.c_all, 0.25))  # (2)


def test_batch_queued_makespan(store):
    plan = Plan("tiny", (("e1", 0, 1), ("cloud", 1, 2)))
    b = batch_cost(plan, 3, 2, tiny_view(), store, tiny_cost(), queued=True)
    # image 2 waits 0.1 s for the access link, 0.1 s for e1 and 0.3 s for the WAN;
    # image 3 waits 1.3 s for the WAN
    assert b.makespan_s == approx(2.6)
    assert b.t_k == approx(3.3 + 0.1 + 0.1 + 0.3 + 1.3)


def test_reward_weight_from_bounds():
    assert CostConfig(t_upper_s=1.0, c_upper=4.0).weight == approx(0.25)
    assert CostConfig(w=0.7).weight == approx(0.7)
    assert reward_of(2.0, 4.0, 0.0) == -2.0
    assert reward_of(2.0, 4.0, 1.0) == -4.0


def test_constraints(store):
    cfg = tiny_cost()
    cut = Plan("tiny", (("e1", 0, 1), ("cloud", 1, 2)))
    assert check_plan(cut, tiny_view(mem=2000), store, cfg) == ()
    why = check_plan(cut, tiny_view(mem=1000), store, cfg)          # needs 400 + 1000 B
    assert len(why) == 1 and why[0].startswith("C1")
    why = check_plan(cut, tiny_view(queue_len=cfg.max_queue), store, cfg)
    assert any(w.startswith("C3") for w in why)
    why = check_plan(cut, tiny_view(e1_backlog=cfg.max_backlog_s), store, cfg)
    assert any(w.startswith("C2") for w in why)
    assert check_plan(cloud_only("tiny", 2), tiny_view(mem=1, queue_len=999), store, cfg) == ()
    bad = Plan("tiny", (("cloud", 0, 1), ("e1", 1, 2)))
    assert "cloud hop must be last" in check_plan(bad, tiny_view(), store, cfg)
    assert check_plan(Plan("tiny", (("nope", 0, 2),)), tiny_view(), store, cfg)


def test_plan_validation():
    with pytest.raises(ValueError, match="contiguous"):
        Plan("tiny", (("e1", 0, 1), ("cloud", 2, 3)))
    with pytest.raises(ValueError, match="point 0"):
        Plan("tiny", (("e1", 1, 2),))
    with pytest.raises(ValueError, match="at least one segment"):
        Plan("tiny", (("e1", 0, 0), ("cloud", 0, 2)))


def test_synthetic_profiles_scale_with_share():
    from agents.calibration import ProfileStore, synthetic_profile
    p = synthetic_profile("alexnet", "edge-small")
    assert p.m == 11 and p.out_bytes[0] == 602112 and len(p.points) == 12
    s = ProfileStore(root=None)
    t1, t2 = s.seg_times("resnet18", 1.0).sum(), s.seg_times("resnet18", 0.25).sum()
    assert math.isclose(t2, 4 * t1, rel_tol=1e-9)
    with pytest.raises(ValueError, match="unknown model"):
        s.get("lenet", 1.0)
