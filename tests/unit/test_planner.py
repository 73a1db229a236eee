"""The planner against a synthetic view: snapshot, methods, routing, errors."""

import pytest

from agents.world import World
from protocol.heartbeat import Heartbeat
from protocol.plan_request import PlanRequest
from controller.planner import Planner, PlanningError
from controller.probe import LinkKey
from controller.rates import PortRate
from controller.view import GlobalView

# a1(1) - l1(2) - c1(4) - g1(5);  l1 - l2(3) via c1;  d1 on a1, e1 on l1, e2 on l2, cloud on g1
LINKS = ((1, 1, 2, 1, 50e6), (2, 2, 4, 1, 100e6), (3, 1, 4, 2, 100e6), (4, 3, 5, 1, 20e6))
HOSTS = (("d1", "device", 1, 2, 2.0), ("e1", "edge", 2, 3, 0.5), ("e2", "edge", 3, 3, 0.35),
         ("cloud", "cloud", 5, 2, 1.0))


@pytest.fixture
def view():
    v = GlobalView()
    for dpid, name in ((1, "a1"), (2, "l1"), (3, "l2"), (4, "c1"), (5, "g1")):
        v.add_switch(dpid, 0.0, name=name)
    for a, pa, b, pb, bps in LINKS:
        for key in (LinkKey(a, pa, b, pb), LinkKey(b, pb, a, pa)):
            v.add_link(key, 0.0)
            v.update_capacity(key, bps, 0.0)
    for i, (name, role, dpid, port, cores) in enumerate(HOSTS, start=1):
        v.update_heartbeat(Heartbeat(name, role, f"10.0.0.{i}", 1, cores, 0.0, 0, 8 << 30),
                           f"00:00:00:00:00:0{i}", dpid, port, 0.0)
    return v


@pytest.fixture(scope="module")
def planner():
    return Planner.from_files(worker_port=9000, stats_lag_s=1.0)


def request(method="oracle", **kw):
    return PlanRequest("t1", "alexnet", method, "10.0.0.1", **kw)


def test_snapshot_uses_measured_widest_paths(view, planner):
    snap = planner.snapshot(view, "10.0.0.1", now=0.5)
    nodes = {n.name: n for n in snap.nodes}
    assert set(nodes) == {"e1", "e2", "cloud"}
    assert nodes["e1"].bw_from_device_bps == 50e6 and nodes["e1"].bw_to_cloud_bps == 20e6
    assert nodes["cloud"].bw_from_device_bps == 20e6
    assert nodes["e2"].cpu_share == 0.35


@pytest.mark.parametrize("method", ["only-cloud", "only-edge", "neurosurgeon", "dpto", "oracle"])
def test_every_method_gives_a_routed_priced_plan(view, planner, method):
    planned = planner.plan(view, request(method, reply_port=40000), now=0.5)
    reply = planned.reply
    hops = reply["hops"]
    assert hops[0]["start"] == 0 and all(a["end"] == b["start"] for a, b in zip(hops, hops[1:]))
    assert all(h["port"] == 9000 and h["ip"].startswith("10.0.0.") for h in hops)
    assert reply["predicted"]["latency_s"] > 0
    distinct = sum(1 for a, b in zip(hops, hops[1:]) if a["ip"] != b["ip"])
    assert len(planned.transfers) == 1 + distinct + 1  # device leg, hop legs, result leg
    assert planned.transfers[0].switches[0] == 1


def test_only_cloud_route_crosses_wan(view, planner):
    planned = planner.plan(view, request("only-cloud"), now=0.5)
    assert [h["node"] for h in planned.reply["hops"]] == ["cloud"]
    assert planned.reply["paths"][0]["switches"] == ["a1", "l1", "c1", "g1"]


def test_fixed_plan_is_checked(view, planner):
    planned = planner.plan(view, request("fixed", hops=(("e2", 0, 5), ("cloud", 5, 11))), now=0.5)
    assert [h["node"] for h in planned.reply["hops"]] == ["e2", "cloud"]
    with pytest.raises(PlanningError, match="fixed plan"):
        planner.plan(view, request("fixed", hops=(("cloud", 0, 5), ("e1", 5, 11))), now=0.5)


@pytest.mark.parametrize("req,needle", [
    (PlanRequest("t", "alexnet", "oracle", "10.9.9.9"), "not in the view"),
    (PlanRequest("t", "lenet", "oracle", "10.0.0.1"), "no profile"),
    (PlanRequest("t", "alexnet", "sdn-cep", "10.0.0.1"), "not available"),
])
def test_refusals_are_clear(view, planner, req, needle):
    with pytest.raises(PlanningError, match=needle):
        planner.plan(view, req, now=0.5)


def test_stale_nodes_are_not_planned_on(view, planner):
    with pytest.raises(PlanningError, match="no live cloud"):
        planner.snapshot(view, "10.0.0.1", now=100.0)


def test_ledger_makes_back_to_back_tasks_queue(view, planner):
    planner.world = World()
    first = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    second = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    assert second["wait_s"] > 0 and second["latency_s"] > first["latency_s"] + 0.9 * first["trans_s"]
    later = planner.plan(view, request("only-cloud"), now=2.5)  # queues drained meanwhile
    assert later.reply["predicted"]["wait_s"] == 0


def test_calibration_slows_nodes_and_links(view, planner):
    from agents.world import Calibration
    planner.world = World()
    base = planner.snapshot(view, "10.0.0.1", now=0.5)
    planner.calibration = Calibration((("e1", 2.0),), network=1.25)
    try:
        tuned = {n.name: n for n in planner.snapshot(view, "10.0.0.1", now=0.5).nodes}
    finally:
        planner.calibration = Calibration()
    before = {n.name: n for n in base.nodes}
    assert tuned["e1"].cpu_share == before["e1"].cpu_share / 2 and tuned["e2"].cpu_share == before["e2"].cpu_share
    assert tuned["cloud"].bw_from_device_bps == before["cloud"].bw_from_device_bps / 1.25
    with pytest.raises(ValueError):
        Calibration((("e1", 50.0),))


def test_device_uplink_is_one_resource(view, planner):
    planner.world = World()
    planner.plan(view, request("fixed", hops=(("e1", 0, 11),)), now=0.5)
    second = planner.plan(view, request("fixed", hops=(("e2", 0, 11),)), now=0.5).reply["predicted"]
    assert second["wait_s"] > 0  # e2's input waits for e1's on the device's uplink
    third = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    assert third["wait_s"] > second["wait_s"]  # so does the cloud's, behind both


def test_each_device_has_its_own_uplink(view, planner):
    view.update_heartbeat(Heartbeat("d2", "device", "10.0.0.9", 1, 2.0, 0.0, 0, 8 << 30),
                          "00:00:00:00:00:09", 1, 3, 0.0)
    planner.world = World()
    first = planner.plan(view, request("fixed", hops=(("e1", 0, 11),)), now=0.5).reply["predicted"]
    other_node = PlanRequest("t2", "alexnet", "fixed", "10.0.0.9", hops=(("e2", 0, 11),))
    assert planner.plan(view, other_node, now=0.5).reply["predicted"]["wait_s"] == 0
    planner.world = World()
    planner.plan(view, request("fixed", hops=(("e1", 0, 11),)), now=0.5)
    same_node = PlanRequest("t3", "alexnet", "fixed", "10.0.0.9", hops=(("e1", 0, 11),))
    predicted = planner.plan(view, same_node, now=0.5).reply["predicted"]
    # d2's input arrives while e1 still computes d1's task: it waits for e1's CPU
    # (a compute time), not behind d1's transfer on an uplink
    assert predicted["wait_s"] == pytest.approx(first["edge_s"], rel=0.01)


def test_counters_showing_our_own_finished_transfer_do_not_cut_bandwidth(view, planner):
    planner.world = World()
    planned = planner.plan(view, request("fixed", hops=(("e1", 0, 11),)), now=0.5)
    done = 0.5 + planned.reply["predicted"]["trans_s"]
    view.update_port_rate(1, 1, PortRate(0, 45e6, 0, 3800, 0, 1.0), done + 0.2)  # still shows that transfer
    after = {n.name: n for n in planner.snapshot(view, "10.0.0.1", now=done + 0.2).nodes}
    assert after["e1"].bw_from_device_bps == 50e6
    later = {n.name: n for n in planner.snapshot(view, "10.0.0.1", now=done + planner.stats_lag_s + 0.1).nodes}
    assert later["e1"].bw_from_device_bps < 50e6  # after the counters' lag: someone else's traffic


def test_measured_overhead_is_added_to_predictions(view, planner):
    from agents.world import Calibration
    planner.world = World()
    base = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    planner.world = World()
    planner.calibration = Calibration(overhead_s=0.01)
    try:
        tuned = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    finally:
        planner.calibration = Calibration()
    assert tuned["latency_s"] == pytest.approx(base["latency_s"] + 0.01) and tuned["overhead_s"] == 0.01
    with pytest.raises(ValueError):
        Calibration.from_mapping({"overhead_s": -1})


def test_complexity_from_device_features(view):
    from pathlib import Path
    predictor = Path(__file__).resolve().parents[2] / "checkpoints" / "complexity.json"
    if not predictor.exists():
        pytest.skip("no trained predictor checkpoint")
    planner = Planner.from_files(predictor_path=str(predictor))
    q = planner.complexity(request(features=tuple([0.5] * 12)))
    assert 0.0 <= q <= 1.0


def test_agent_served_alone_and_reranked(view):
    from pathlib import Path
    agent = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet.pt"
    planner = Planner.from_files(agent_checkpoint=str(agent), agent_top_k=5)
    assert planner.policies["sdn-cep"].policies["alexnet"].top_k == 5
    assert planner.policies["sdn-cep-dqn"].policies["alexnet"].top_k == 1
    for method in ("sdn-cep", "sdn-cep-dqn"):
        assert planner.plan(view, request(method), now=0.5).reply["hops"]
    assert "sdn-cep-dqn" not in Planner.from_files(agent_checkpoint=str(agent)).policies


def test_sdn_cep_refuses_a_model_it_has_no_agent_for(view):
    from pathlib import Path
    agent = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet.pt"
    planner = Planner.from_files(agent_checkpoint=f"{agent}, ", agent_top_k=5)
    other = PlanRequest("t9", "vgg16", "sdn-cep", "10.0.0.1")
    with pytest.raises(PlanningError, match="no agent trained for model 'vgg16'"):
        planner.plan(view, other, now=0.5)  # not a silent all-cloud plan
    assert planner.plan(view, PlanRequest("t9", "vgg16", "oracle", "10.0.0.1"), now=0.5).reply["hops"]
    with pytest.raises(ValueError, match="two agent checkpoints for model 'alexnet'"):
        Planner.from_files(agent_checkpoint=f"{agent},{agent}")


def test_devices_share_the_wan_fairly_not_first_come_first_served(view, planner):
    view.update_heartbeat(Heartbeat("d2", "device", "10.0.0.9", 1, 2.0, 0.0, 0, 8 << 30),
                          "00:00:00:00:00:09", 1, 3, 0.0)
    planner.world = World()
    alone = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    other = PlanRequest("t2", "alexnet", "only-cloud", "10.0.0.9")
    shared = planner.plan(view, other, now=0.5).reply["predicted"]
    # d2's input does not wait for d1's to cross the WAN; it crosses at half the rate
    assert shared["wait_s"] == 0
    assert shared["trans_s"] == pytest.approx(2 * alone["trans_s"], rel=0.05)
    again = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    # d1's own lane is FIFO, and its first input now shares the WAN with d2's: it ends at 2T
    assert again["wait_s"] == pytest.approx(2 * alone["trans_s"], rel=0.05)


def test_a_task_reaching_a_node_in_a_gap_does_not_wait_for_work_planned_later(view, planner):
    view.update_heartbeat(Heartbeat("d2", "device", "10.0.0.9", 1, 2.0, 0.0, 0, 8 << 30),
                          "00:00:00:00:00:09", 1, 3, 0.0)
    planner.world = World()
    for _ in range(4):  # d1's inputs queue on its WAN lane: the cloud computes them late
        last = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    other = PlanRequest("t2", "alexnet", "fixed", "10.0.0.9", hops=(("cloud", 0, 11),))
    mine = planner.plan(view, other, now=0.5).reply["predicted"]
    # d2's input reaches the cloud between d1's tasks: it waits for one of them at
    # most, not for the last of d1's (which ends after last["latency_s"])
    assert mine["cloud_s"] <= 2.01 * last["cloud_s"]
    assert mine["latency_s"] < 0.75 * last["latency_s"]  # (behind them all: about as late as the last)


def test_node_start_fills_the_first_gap_that_fits():
    from agents.cost import NodeView
    node = NodeView("cloud", "cloud", 1.0, backlog_s=3.0, reserved=((0.0, 1.0), (1.5, 2.0), (2.5, 3.0)))
    assert node.start_of(0.2, 0.4) == 1.0   # busy until 1.0, then 0.5 s idle: fits
    assert node.start_of(0.2, 0.6) == 3.0   # no gap of 0.6 s before the end
    assert node.start_of(2.2, 0.3) == 2.2   # arrives in the last gap and fits
    assert node.start_of(5.0, 1.0) == 5.0
    assert NodeView("e1", "edge", 0.5, backlog_s=3.0).start_of(1.0, 0.1) == 3.0  # no intervals: FIFO


def test_a_lane_goes_faster_once_its_neighbour_empties(view, planner):
    view.update_heartbeat(Heartbeat("d2", "device", "10.0.0.9", 1, 2.0, 0.0, 0, 8 << 30),
                          "00:00:00:00:00:09", 1, 3, 0.0)
    planner.world = World()
    alone = planner.plan(view, PlanRequest("t0", "alexnet", "only-cloud", "10.0.0.9"), now=0.5).reply["predicted"]
    for _ in range(3):  # d1 queues three inputs while d2's one crosses
        last = planner.plan(view, request("only-cloud"), now=0.5).reply["predicted"]
    # fluid sharing: d1's first input shares the WAN with d2's for all of d2's (T at
    # full rate, so 2T shared), then d1 has it alone: d1's three end at 2T, 3T, 4T
    # (fixing each share when planned would say 2T, 4T, 6T)
    t = alone["trans_s"]
    assert last["trans_s"] == pytest.approx(4 * t, rel=0.05)


def test_a_device_with_nothing_in_flight_is_not_held_up_by_late_predictions(view, planner):
    view.update_heartbeat(Heartbeat("d2", "device", "10.0.0.9", 1, 2.0, 0.0, 0, 8 << 30),
                          "00:00:00:00:00:09", 1, 3, 0.0)
    planner.world = World()
    for _ in range(4):  # the ledger holds d1's uplink, WAN lane and cloud CPU for seconds
        planner.plan(view, request("only-cloud"), now=0.5)
    planner.plan(view, PlanRequest("t2", "alexnet", "fixed", "10.0.0.9", hops=(("e2", 0, 11),)), now=0.9)
    fresh = Planner.from_files(worker_port=9000, stats_lag_s=1.0)
    expected = fresh.plan(view, request("only-cloud"), now=1.0).reply["predicted"]["latency_s"]
    held = planner.plan(view, request("only-cloud", in_flight=3), now=1.0).reply["predicted"]
    assert held["wait_s"] > 0.3  # results still to come: the reservations stand
    # all of d1's results are in, earlier than predicted: its next task starts afresh
    freed = planner.plan(view, request("only-cloud", in_flight=0), now=1.0).reply["predicted"]
    assert freed["wait_s"] == 0 and freed["latency_s"] == pytest.approx(expected, rel=0.01)
    assert planner.world.ledger.node_reserved("e2", 1.0)  # d2's task keeps its place on e2


def test_the_reply_records_what_the_decision_saw_of_each_node(view, planner):
    planner.world = World()
    first = planner.plan(view, request("only-cloud"), now=0.5).reply["seen"]
    second = planner.plan(view, request("only-cloud"), now=0.5).reply["seen"]
    assert set(first) == {n.name for n in planner.snapshot(view, "10.0.0.1", now=0.5).nodes}
    busy, queued, backlog_ms, from_device_mbps, _ = second["cloud"]
    assert backlog_ms > first["cloud"][2]          # the first task's planned work, from the ledger
    assert from_device_mbps > 0
