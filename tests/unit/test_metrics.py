from prometheus_client import CollectorRegistry

from controller.heartbeat import Heartbeat
from controller.metrics import ControllerMetrics
from controller.probe import LinkKey
from controller.view import GlobalView


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
