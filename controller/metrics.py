"""Prometheus metrics of the controller, in one class with an injectable registry.

Tests pass their own ``CollectorRegistry`` and read ``registry.get_sample_value``;
the app serves ``render()`` at ``GET /metrics``.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
DECISION_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


class ControllerMetrics:
    def __init__(self, registry=None):
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter("sdncep_decisions", "Plans answered, by method",
                                 ["method"], registry=self.registry)
        self.decision_errors = Counter("sdncep_decision_errors", "Plan requests refused, by reason",
                                       ["reason"], registry=self.registry)
        self.decision_seconds = Histogram("sdncep_decision_seconds",
                                          "Plan request to flows installed, seconds",
                                          buckets=DECISION_BUCKETS, registry=self.registry)
        self.link_utilisation = Gauge("sdncep_link_utilisation", "Measured link utilisation (0..1)",
                                      ["src", "dst"], registry=self.registry)
        self.link_capacity = Gauge("sdncep_link_capacity_bps", "Measured link capacity, bits/s",
                                   ["src", "dst"], registry=self.registry)
        self.node_busy = Gauge("sdncep_node_busy", "Busy fraction of a node's CPU share",
                               ["node", "role"], registry=self.registry)
        self.node_queue = Gauge("sdncep_node_queue_len", "Queue length reported by a node",
                                ["node", "role"], registry=self.registry)

    def observe_view(self, view, now):
        """Copy the view's link and node figures into the gauges."""
        for link in view.links(now):
            if link["kind"] != "switch":
                continue
            labels = (link["src"], link["dst"])
            if link["utilisation"] is not None:
                self.link_utilisation.labels(*labels).set(link["utilisation"])
            if link["capacity_mbps"] is not None:
                self.link_capacity.labels(*labels).set(link["capacity_mbps"] * 1e6)
        for node in view.nodes(now):
            if node["load"] is not None:
                self.node_busy.labels(node["name"], node["role"]).set(node["load"]["busy"])
                self.node_queue.labels(node["name"], node["role"]).set(node["load"]["queue_len"])

    def render(self):
        return generate_latest(self.registry)
