"""Executing plans together: FIFO nodes, frames in order per connection, links shared max-min fairly."""
import pytest

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.cost import Plan
from agents.execution import Compute, ComputeSpan, Transfer, execute, execute_traced, max_min_rates, _Flow
from agents.registry import build_baselines
from agents.simulator import Arrival, Heartbeats, replay
from topologies.spec import TopologySpec

STORE = ProfileStore()


def test_a_lone_task_gets_what_was_predicted():
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    for method in ("only-cloud", "only-edge", "dpto"):
        (task,) = replay(build_baselines(STORE)[method], [Arrival(0.0, "d1", "alexnet")], sim, STORE, CostConfig())
        assert task.latency_s == pytest.approx(task.predicted_s, rel=1e-6), method


def _send(src, dst, bits, *links, rate=100.0):
    return Transfer((src, dst), tuple(links), bits, rate)


def test_two_senders_share_the_wan_and_a_node_serves_in_order():
    wan = [(0.0, [_send("d1", "cloud", 10.0, ("acc@d1", 100.0), ("wan", 10.0))]),
           (0.0, [_send("d2", "cloud", 10.0, ("acc@d2", 100.0), ("wan", 10.0))])]
    assert execute(wan, wan_bps=10.0) == pytest.approx([2.0, 2.0])            # half each
    later = [(0.0, [_send("e1", "cloud", 10.0, ("wan", 10.0))]), (1.0, [_send("e2", "cloud", 10.0, ("wan", 10.0))])]
    assert execute(later, wan_bps=10.0) == pytest.approx([1.0, 2.0])          # e1 done before e2 starts
    node = [(0.0, [Compute("e1", 0.5)]), (0.1, [Compute("e1", 0.5)])]
    assert execute(node, wan_bps=10.0) == pytest.approx([0.5, 1.0])


def test_a_devices_frames_to_two_nodes_share_its_uplink_and_to_one_node_go_in_order():
    up = ("acc@d1", 10.0)
    two_nodes = [(0.0, [_send("d1", "e1", 10.0, up)]), (0.0, [_send("d1", "e2", 10.0, up)])]
    assert execute(two_nodes, wan_bps=10.0) == pytest.approx([2.0, 2.0])
    one_node = [(0.0, [_send("d1", "e1", 10.0, up)]), (0.0, [_send("d1", "e1", 10.0, up)])]
    assert execute(one_node, wan_bps=10.0) == pytest.approx([1.0, 2.0])
    # an input to the cloud is held to the WAN; the uplink's rest goes to the edge transfer
    mixed = [(0.0, [_send("d1", "cloud", 2.0, up, ("wan", 2.0), rate=2.0)]), (0.0, [_send("d1", "e1", 8.0, up)])]
    assert execute(mixed, wan_bps=2.0) == pytest.approx([1.0, 1.0])


class _AllOn:
    """Every task whole on one node."""
    def __init__(self, node):
        self.name, self.node = f"all-on-{node}", node

    def decide(self, ctx):
        return Plan(ctx.model, ((self.node, 0, STORE.reference(ctx.model).m),))


def test_two_devices_inputs_to_one_edge_node_share_its_access_link():
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    input_s = 8.0 * float(STORE.reference("alexnet").out_bytes[0]) / (sim.edges[0].access_mbps * 1e6)
    (alone,) = replay(_AllOn("e1"), [Arrival(0.0, "d1", "alexnet")], sim, STORE, CostConfig())
    first, _ = replay(_AllOn("e1"), [Arrival(0.0, "d1", "alexnet"), Arrival(0.0, "d2", "alexnet")],
                      sim, STORE, CostConfig())
    # each device's uplink is its own, but e1's link carries both inputs: half the rate each
    assert first.latency_s == pytest.approx(alone.latency_s + input_s, rel=0.02)


def test_max_min_gives_what_a_capped_flow_leaves_to_the_others():
    flows = [_Flow(0, _send("d1", "cloud", 1.0, ("acc@d1", 10.0), ("wan", 2.0), rate=2.0), 1.0),
             _Flow(1, _send("d1", "e1", 1.0, ("acc@d1", 10.0)), 1.0),
             _Flow(2, _send("e2", "cloud", 1.0, ("wan", 2.0), rate=5.0), 1.0)]
    assert max_min_rates(flows, {"acc@d1": 10.0, "wan": 2.0}) == pytest.approx([1.0, 9.0, 1.0])


def test_a_later_sender_slows_a_transfer_already_planned():
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    arrivals = [Arrival(0.0, "d1", "alexnet"), Arrival(0.05, "d2", "alexnet")]
    first, second = replay(build_baselines(STORE)["only-cloud"], arrivals, sim, STORE, CostConfig())
    # d1's input was planned alone on the WAN; d2's arrived 50 ms later and took half of it
    assert first.latency_s > 1.5 * first.predicted_s
    assert second.latency_s == pytest.approx(second.predicted_s, rel=0.05)


def test_the_trace_says_when_each_compute_reached_started_and_ended():
    node = [(0.0, [Compute("e1", 0.5)]), (0.1, [Compute("e1", 0.5)])]
    ends, spans = execute_traced(node, wan_bps=10.0)
    assert ends == pytest.approx([0.5, 1.0])
    assert spans == [ComputeSpan(0, "e1", 0.0, 0.0, 0.5), ComputeSpan(1, "e1", 0.1, 0.5, 1.0)]


def test_heartbeats_report_the_last_beat_not_the_present():
    spans = [ComputeSpan(0, "e1", 0.0, 0.0, 0.8), ComputeSpan(1, "e1", 0.2, 0.8, 1.6)]
    beats = Heartbeats(period_s=0.5, window_s=1.0)
    at = beats.observe(spans, ends=[0.8, 1.6], devices=["d1", "d2"], now=0.7)   # last beat at 0.5
    assert at.nodes["e1"] == (pytest.approx(0.5), 1)                              # busy 0-0.5, one queued
    assert at.in_flight == {"d1": 1, "d2": 1}
    later = beats.observe(spans, ends=[0.8, 1.6], devices=["d1", "d2"], now=1.2)  # beat at 1.0
    assert later.nodes["e1"] == (pytest.approx(1.0), 0)
    assert later.in_flight == {"d1": 0, "d2": 1}


def test_closed_loop_the_planner_sees_the_heartbeats_where_its_ledger_is_empty():
    from agents.simulator import Observed, Simulator
    simulator = Simulator(TopologySpec(wan_mbit=10.0).sim_config(), STORE, CostConfig())

    def e1():
        snap = simulator.snapshot("d1", 0.0, 10e6, "alexnet")
        return next(n for n in snap.nodes if n.name == "e1")
    assert (e1().busy, e1().queue_len) == (0.0, 0)                 # open loop: only the (empty) ledger
    simulator.observed = Observed({"e1": (1.0, 3)}, {"d1": 1})
    assert (e1().busy, e1().queue_len) == (1.0, 3)
    assert simulator.in_flight("d1", 0.0) == 1 and simulator.in_flight("d2", 0.0) == 0


def test_closed_loop_replay_plans_from_what_was_executed():
    """Two devices at 8 tasks/s over a 10 Mbit/s WAN: transfers that start later slow the
    ones under way, so the nodes compute later than the ledger predicted; closed loop,
    the Oracle hears it in the heartbeats and plans some tasks elsewhere. A lone task
    meets an idle world either way."""
    import random
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    rng, arrivals = random.Random(0), []
    for device in ("d1", "d2"):
        t = 0.0
        for _ in range(30):
            t += rng.expovariate(8.0)
            arrivals.append(Arrival(t, device, "alexnet"))
    oracle = build_baselines(STORE)["oracle"]
    open_loop = replay(oracle, arrivals, sim, STORE, CostConfig())
    closed = replay(oracle, arrivals, sim, STORE, CostConfig(), feedback=Heartbeats())
    assert len(closed) == 60 and all(t.latency_s > 0 for t in closed)
    assert sum(a.plan.hops != b.plan.hops for a, b in zip(open_loop, closed)) >= 3
    (alone,) = replay(oracle, [min(arrivals, key=lambda a: a.time_s)], sim, STORE, CostConfig(), feedback=Heartbeats())
    assert alone.plan.hops == open_loop[0].plan.hops and alone.latency_s == pytest.approx(alone.predicted_s)
