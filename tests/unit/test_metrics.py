from prometheus_client import CollectorRegistry, generate_latest

from agents.calibration import ProfileStore
from protocol.heartbeat import Heartbeat
from controller.metrics import ControllerMetrics, fallback_reason
from controller.probe import LinkKey
from controller.view import HEARTBEAT_STALE_AFTER, GlobalView

STORE = ProfileStore()


def test_metrics_follow_view_and_decisions():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    view = GlobalView()
    view.add_switch(1, 0.0, name="c1")
    view.add_switch(2, 0.0, name="g1")
    view.add_link(LinkKey(1, 1, 2, 1), 0.0)
    view.update_capacity(LinkKey(1, 1, 2, 1), 50e6, 0.0)
    view.update_heartbeat(Heartbeat("e1", "edge", "10.0.0.4", 1, 0.5, 0.75, 2, 0), "00:00:00:00:00:04", 1, 3, 0.0)
    metrics.observe_view(view, 0.5)
    metrics.decisions.labels("sdncep").inc()
    metrics.decision_seconds.observe(0.0004)
    assert registry.get_sample_value("sdncep_link_capacity_bps", {"src": "c1", "dst": "g1"}) == 50e6
    assert registry.get_sample_value("sdncep_link_utilisation", {"src": "c1", "dst": "g1"}) == 0.0
    assert registry.get_sample_value("sdncep_node_busy", {"node": "e1", "role": "edge"}) == 0.75
    assert registry.get_sample_value("sdncep_decisions_total", {"method": "sdncep"}) == 1
    assert registry.get_sample_value("sdncep_decision_seconds_bucket", {"le": "0.0005"}) == 1
    assert b"sdncep_node_queue_len" in metrics.render()


def _view_with_node(now=0.0):
    view = GlobalView()
    view.add_switch(1, now, name="c1")
    view.add_switch(2, now, name="g1")
    view.add_link(LinkKey(1, 1, 2, 1), now)
    view.update_capacity(LinkKey(1, 1, 2, 1), 50e6, now)
    view.update_heartbeat(Heartbeat("e1", "edge", "10.0.0.4", 1, 0.5, 0.75, 2, 0), "00:00:00:00:00:04", 2, 3, now)
    return view


def test_node_alive_follows_the_view_and_devices_have_no_series():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    view = _view_with_node()
    view.learn_host("00:00:00:00:00:01", 1, 3, 0.0, ip="10.0.0.1")     # a device: no heartbeats
    metrics.observe_view(view, 1.0)
    assert registry.get_sample_value("sdncep_node_alive", {"node": "e1", "role": "edge"}) == 1
    metrics.observe_view(view, 1.0 + HEARTBEAT_STALE_AFTER)             # heartbeats stopped
    assert registry.get_sample_value("sdncep_node_alive", {"node": "e1", "role": "edge"}) == 0
    assert b'node="h:00:00:00:00:00:01"' not in metrics.render()


def test_series_of_removed_nodes_and_links_disappear():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    view = _view_with_node()
    view.add_switch(3, 0.0, name="l1")
    view.add_link(LinkKey(1, 2, 3, 1), 0.0)
    view.update_capacity(LinkKey(1, 2, 3, 1), 100e6, 0.0)
    metrics.observe_view(view, 0.5)
    text = generate_latest(registry).decode()
    assert 'node="e1"' in text and 'dst="g1"' in text and 'dst="l1"' in text
    view.remove_link(LinkKey(1, 2, 3, 1))
    view.remove_switch(2)                                               # takes e1 with it
    metrics.observe_view(view, 1.0)
    text = generate_latest(registry).decode()
    for gone in ('node="e1"', 'dst="g1"', 'dst="l1"'):
        assert gone not in text
    for family in ("sdncep_node_alive", "sdncep_node_busy", "sdncep_node_queue_len",
                   "sdncep_link_utilisation", "sdncep_link_capacity_bps"):
        assert f"# TYPE {family} gauge" in text                         # the family stays, empty


def test_a_renamed_switch_leaves_no_series_under_its_old_name():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    view = GlobalView()
    view.add_switch(1, 0.0)
    view.add_switch(2, 0.0, name="g1")
    view.add_link(LinkKey(1, 1, 2, 1), 0.0)
    metrics.observe_view(view, 0.5)
    assert registry.get_sample_value("sdncep_link_utilisation", {"src": "s:0000000000000001", "dst": "g1"}) is None
    view.update_capacity(LinkKey(1, 1, 2, 1), 10e6, 0.0)
    metrics.observe_view(view, 0.5)
    assert registry.get_sample_value("sdncep_link_utilisation", {"src": "s:0000000000000001", "dst": "g1"}) == 0
    view.add_switch(1, 1.0, name="c1")                                  # its port description came in
    metrics.observe_view(view, 1.5)
    assert registry.get_sample_value("sdncep_link_utilisation", {"src": "s:0000000000000001", "dst": "g1"}) is None
    assert registry.get_sample_value("sdncep_link_capacity_bps", {"src": "c1", "dst": "g1"}) == 10e6


def test_plans_count_fallbacks_with_a_bounded_reason_and_their_predicted_latency():
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    metrics.observe_plan("dpto", {"fallback": None, "predicted": {"latency_s": 0.15}})
    metrics.observe_plan("dpto", {"fallback": "dpto's plan (('e9', 0, 3),) is infeasible: unknown node 'e9'",
                                  "predicted": {"latency_s": 0.4}})
    metrics.observe_plan("dpto", {"fallback": "dpto found no plan: nothing fits", "predicted": {"latency_s": 0.4}})
    assert registry.get_sample_value("sdncep_decisions_total", {"method": "dpto"}) == 3
    fallbacks = {reason: registry.get_sample_value("sdncep_decision_fallbacks_total",
                                                   {"method": "dpto", "reason": reason})
                 for reason in ("infeasible", "no_plan")}
    assert fallbacks == {"infeasible": 1, "no_plan": 1}
    assert registry.get_sample_value("sdncep_predicted_latency_seconds_count", {"method": "dpto"}) == 3
    assert registry.get_sample_value("sdncep_predicted_latency_seconds_bucket",
                                     {"method": "dpto", "le": "0.2"}) == 1


class _Broken:
    """A policy whose own plan is infeasible (``plan``) or that finds none (``None``)."""

    def __init__(self, plan):
        self.name, self.plan = "broken", plan

    def decide(self, ctx):
        if self.plan is None:
            raise RuntimeError("nothing fits")
        return self.plan


def test_fallback_reasons_match_what_decide_writes():
    """fallback_reason reads agents.decision.decide's wording: pin it to the real text."""
    from agents.cost import Plan
    from agents.decision import FALLBACK_POLICY, NodeState, Snapshot, Task, decide

    snapshot = Snapshot((NodeState("e1", "edge", 0.5, 0.0, 0, None, 1e8, 1e8),
                         NodeState("cloud", "cloud", 1.0, 0.0, 0, None, 1e7, 1e8)), now=0.0)
    m = STORE.reference("alexnet").m
    for policy, reason in ((_Broken(Plan("alexnet", (("ghost", 0, m),))), "infeasible"),
                           (_Broken(None), "no_plan")):
        plan = decide(policy, snapshot, Task("alexnet", q=0.0), STORE)
        assert plan.policy == FALLBACK_POLICY and fallback_reason(plan.fallback) == reason
    assert fallback_reason("something new") == "other"
