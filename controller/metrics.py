"""Prometheus metrics of the controller, in one class with an injectable registry.

Tests pass their own ``CollectorRegistry`` and read ``registry.get_sample_value``;
the app serves ``render()`` at ``GET /metrics`` (on Ryu's WSGI port, ``wsapi_port``,
8080 unless changed; monitoring/prometheus.yml scrapes it).

The per-node and per-link gauges follow the view: ``observe_view`` sets a series for
every node and link the view has a figure for, and removes the series of nodes and
links (or figures) that are gone, so a removed switch's links or hosts do not linger
with their last value. Counters and histograms are labelled by method and reason only.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
DECISION_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# agents.decision.decide words Plan.fallback as "<policy> found no plan: ..." or
# "<policy>'s plan ... is infeasible: ..."; the free text would make a label per task.
FALLBACK_REASONS = (("found no plan", "no_plan"), ("is infeasible", "infeasible"))


def fallback_reason(text):
    """The bounded label for a plan's ``fallback`` text: no_plan, infeasible or other."""
    return next((label for marker, label in FALLBACK_REASONS if marker in text), "other")


class ControllerMetrics:
    def __init__(self, registry=None):
        self.registry = registry or CollectorRegistry()
        self.decisions = Counter("sdncep_decisions", "Plans answered, by method",
                                 ["method"], registry=self.registry)
        self.decision_errors = Counter("sdncep_decision_errors", "Plan requests refused, by reason",
                                       ["reason"], registry=self.registry)
        self.decision_fallbacks = Counter(
            "sdncep_decision_fallbacks",
            "Plans whose method's own plan was replaced by the all-cloud plan, by method and reason",
            ["method", "reason"], registry=self.registry)
        self.retries = Counter("sdncep_plan_retries",
                               "Plan requests for a task that was late or failed, by kind and answer",
                               ["kind", "answer"], registry=self.registry)
        self.reroutes = Counter("sdncep_reroutes", "Transfers moved off a link that went down",
                                registry=self.registry)
        self.decision_seconds = Histogram("sdncep_decision_seconds",
                                          "Plan request to flows installed, seconds",
                                          buckets=DECISION_BUCKETS, registry=self.registry)
        self.predicted_latency = Histogram("sdncep_predicted_latency_seconds",
                                           "Task latency the answered plan predicts, seconds, by method",
                                           ["method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.link_utilisation = Gauge("sdncep_link_utilisation", "Measured link utilisation (0..1)",
                                      ["src", "dst"], registry=self.registry)
        self.link_capacity = Gauge("sdncep_link_capacity_bps", "Measured link capacity, bits/s",
                                   ["src", "dst"], registry=self.registry)
        self.node_alive = Gauge("sdncep_node_alive",
                                "1 if the node's last heartbeat is recent enough for the view, else 0",
                                ["node", "role"], registry=self.registry)
        self.node_busy = Gauge("sdncep_node_busy", "Busy fraction of a node's CPU share",
                               ["node", "role"], registry=self.registry)
        self.node_queue = Gauge("sdncep_node_queue_len", "Queue length reported by a node",
                                ["node", "role"], registry=self.registry)
        self._series = {}  # gauge -> label tuples it holds

    def observe_plan(self, method, reply):
        """Count one answered plan (its reply dict, controller.planner)."""
        self.decisions.labels(method).inc()
        if reply.get("fallback"):
            self.decision_fallbacks.labels(method, fallback_reason(reply["fallback"])).inc()
        latency = (reply.get("predicted") or {}).get("latency_s")
        if latency is not None:
            self.predicted_latency.labels(method).observe(latency)

    def observe_view(self, view, now):
        """Copy the view's link and node figures into the gauges; drop the series of
        links and nodes the view no longer has (or no longer has a figure for)."""
        values = {gauge: {} for gauge in (self.link_utilisation, self.link_capacity,
                                          self.node_alive, self.node_busy, self.node_queue)}
        for link in view.links(now):
            if link["kind"] != "switch":
                continue
            labels = (link["src"], link["dst"])
            if link["utilisation"] is not None:
                values[self.link_utilisation][labels] = link["utilisation"]
            if link["capacity_mbps"] is not None:
                values[self.link_capacity][labels] = link["capacity_mbps"] * 1e6
        for node in view.nodes(now):
            if node["load"] is None:  # never sent a heartbeat (an end device): no liveness to follow
                continue
            labels = (node["name"], node["role"])
            values[self.node_alive][labels] = 1.0 if node["alive"] else 0.0
            values[self.node_busy][labels] = node["load"]["busy"]
            values[self.node_queue][labels] = node["load"]["queue_len"]
        for gauge, current in values.items():
            for labels, value in current.items():
                gauge.labels(*labels).set(value)
            for labels in self._series.get(gauge, set()) - current.keys():
                gauge.remove(*labels)
            self._series[gauge] = set(current)

    def render(self):
        return generate_latest(self.registry)
