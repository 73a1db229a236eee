"""monitoring/: the Grafana dashboard only queries metrics the controller defines, and
the Prometheus config scrapes the port and path the controller serves them on."""

import json
import re
from pathlib import Path

import yaml

from controller.metrics import ControllerMetrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "live.md"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
            "histogram": ("_bucket", "_count", "_sum", "_created")}
# PromQL words that are neither metrics nor functions (functions are followed by "(")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan"}


def defined_series():
    """Every sample name ControllerMetrics can expose."""
    names = set()
    for family in ControllerMetrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects (also label_values(metric, label))."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # string literals
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                     # Grafana variables ($__rate_interval...)
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"(label_values\s*\([^,]+),[^)]*\)", r"\1)", expr)   # label_values(metric, label)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        word, call = match.groups()
        if not call and word.lower() not in KEYWORDS:
            names.add(word)
    return names


def dashboard_queries(dashboard):
    queries = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            queries += [t["expr"] for t in inner.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def test_metric_name_extraction():
    expr = ('histogram_quantile(0.95, sum by (method, le) (rate(sdncep_x_bucket{method=~"$method"}'
            '[$__rate_interval]))) / clamp_min(sum(increase(sdncep_y_total[5m])), 1)')
    assert metric_names(expr) == {"sdncep_x_bucket", "sdncep_y_total"}
    assert metric_names("label_values(sdncep_z_total, method)") == {"sdncep_z_total"}


def test_dashboard_queries_only_metrics_the_controller_defines():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 36
    datasource = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert datasource["name"] == "DS_PROMETHEUS" and datasource["query"] == "prometheus"
    queries = dashboard_queries(dashboard)
    used = set().union(*map(metric_names, queries))
    defined = defined_series()
    assert used and used <= defined, f"not defined in controller/metrics.py: {sorted(used - defined)}"
    # every family is on the dashboard, and every panel asks the templated data source
    families = {family.name for family in ControllerMetrics().registry.collect()}
    assert {f for f in families if any(name.startswith(f) for name in used)} == families
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_prometheus_scrapes_the_documented_port_and_path():
    from ryu.app.wsgi import DEFAULT_WSGI_PORT

    from controller.rest import NorthboundController

    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    target = job["static_configs"][0]["targets"][0]
    host, port = target.rsplit(":", 1)
    assert int(port) == DEFAULT_WSGI_PORT == 8080           # Ryu's default WSGI port
    assert host == "127.0.0.1"                               # controller.config binds REST to loopback
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert NorthboundController.metrics.routing_info["path"] == "/metrics"
    assert f"127.0.0.1:{port}/metrics" in DOCS.read_text()
