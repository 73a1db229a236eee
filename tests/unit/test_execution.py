"""Executing plans together: FIFO uplinks and nodes, the WAN shared fairly between senders."""
import pytest

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.execution import execute
from agents.registry import build_baselines
from agents.simulator import Arrival, replay
from topologies.spec import TopologySpec

STORE = ProfileStore()


def test_a_lone_task_gets_what_was_predicted():
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    for method in ("only-cloud", "only-edge", "dpto"):
        (task,) = replay(build_baselines(STORE)[method], [Arrival(0.0, "d1", "alexnet")], sim, STORE, CostConfig())
        assert task.latency_s == pytest.approx(task.predicted_s, rel=1e-6), method


def test_two_senders_share_the_wan_and_a_node_serves_in_order():
    wan = [(0.0, [("wan", "acc@d1", 10.0, 100.0, "acc@d1")]), (0.0, [("wan", "acc@d2", 10.0, 100.0, "acc@d2")])]
    assert execute(wan, wan_bps=10.0) == pytest.approx([2.0, 2.0])            # half each
    later = [(0.0, [("wan", "e1", 10.0, None, None)]), (1.0, [("wan", "e2", 10.0, None, None)])]
    assert execute(later, wan_bps=10.0) == pytest.approx([1.0, 2.0])          # e1 done before e2 starts
    node = [(0.0, [("fifo", "node@e1", 0.5)]), (0.1, [("fifo", "node@e1", 0.5)])]
    assert execute(node, wan_bps=10.0) == pytest.approx([0.5, 1.0])


def test_an_input_to_the_cloud_holds_its_uplink_while_it_crosses_the_wan():
    tasks = [(0.0, [("wan", "acc@d1", 10.0, 100.0, "acc@d1")]), (0.0, [("fifo", "acc@d1", 0.1)])]
    assert execute(tasks, wan_bps=10.0) == pytest.approx([1.0, 1.1])


def test_a_later_sender_slows_a_transfer_already_planned():
    sim = TopologySpec(wan_mbit=10.0).sim_config()
    arrivals = [Arrival(0.0, "d1", "alexnet"), Arrival(0.05, "d2", "alexnet")]
    first, second = replay(build_baselines(STORE)["only-cloud"], arrivals, sim, STORE, CostConfig())
    # d1's input was planned alone on the WAN; d2's arrived 50 ms later and took half of it
    assert first.latency_s > 1.5 * first.predicted_s
    assert second.latency_s == pytest.approx(second.predicted_s, rel=0.05)
