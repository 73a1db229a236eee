"""The app's Prometheus metrics, scraped through GET /metrics: node liveness, fallbacks,
and no series left behind by switches, links and nodes that left the view."""

from prometheus_client.parser import text_string_to_metric_families
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER
from webob.request import Request

from agents.cost import Plan
from protocol.heartbeat import Heartbeat
from protocol.plan_request import PlanRequest
from controller.probe import LinkKey
from controller.view import HEARTBEAT_STALE_AFTER
from tests.app.test_controller_app import connect, heartbeat_frame, packet_in
from tests.app.test_rest_wsgi import _wsgi
from tests.unit.test_planner import HOSTS, LINKS


def scrape(app):
    """{(sample name, labels as a sorted tuple): value} from GET /metrics."""
    reply = Request.blank("/metrics").get_response(app.wsgi_app)
    assert reply.status_int == 200 and reply.content_type == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def alive(samples, node="e1", role="edge"):
    return samples.get(("sdncep_node_alive", (("node", node), ("role", role))))


def test_node_alive_goes_to_zero_when_heartbeats_stop(app):
    app.wsgi_app = _wsgi(app)
    dp = connect(app, 1)
    now = app.clock()
    app.clock = lambda: now
    packet_in(app, dp, 3, heartbeat_frame(busy=0.7))
    samples = scrape(app)
    assert alive(samples) == 1
    assert samples[("sdncep_node_busy", (("node", "e1"), ("role", "edge")))] == 0.7
    app.clock = lambda: now + HEARTBEAT_STALE_AFTER + 0.5              # e1 went quiet
    assert alive(scrape(app)) == 0
    app.clock = lambda: now + 10.0
    packet_in(app, dp, 3, heartbeat_frame(busy=0.1))                     # and came back
    assert alive(scrape(app)) == 1


def test_a_removed_switch_takes_its_node_and_link_series_with_it(app):
    app.wsgi_app = _wsgi(app)
    _, dp2 = connect(app, 1), connect(app, 2)
    for link in (LinkKey(1, 1, 2, 1), LinkKey(2, 1, 1, 1)):
        app.view.add_link(link, app.clock())
        app.view.update_capacity(link, 20e6, app.clock())
    packet_in(app, dp2, 3, heartbeat_frame())                            # e1 behind switch 2
    samples = scrape(app)
    assert alive(samples) == 1 and len([k for k in samples if k[0] == "sdncep_link_capacity_bps"]) == 2
    state = ofp_event.EventOFPStateChange(dp2)
    state.state = DEAD_DISPATCHER
    app._state_change(state)                                             # switch 2 disconnected
    reply = Request.blank("/metrics").get_response(app.wsgi_app).text
    assert 'node="e1"' not in reply and "sdncep_link_capacity_bps{" not in reply
    assert "sdncep_link_utilisation{" not in reply and "# TYPE sdncep_node_alive gauge" in reply


class _Infeasible:
    """Serves method ``dpto`` with a plan on a node that is not in the view."""

    name = "dpto"

    def decide(self, ctx):
        return Plan(ctx.model, (("ghost", 0, ctx.store.reference(ctx.model).m),))


def _planning_view(app):
    now = app.clock()
    for dpid, name in ((1, "a1"), (2, "l1"), (3, "l2"), (4, "c1"), (5, "g1")):
        app.view.add_switch(dpid, now, name=name)
    for a, pa, b, pb, bps in LINKS:
        for key in (LinkKey(a, pa, b, pb), LinkKey(b, pb, a, pa)):
            app.view.add_link(key, now)
            app.view.update_capacity(key, bps, now)
    for i, (name, role, dpid, port, cores) in enumerate(HOSTS, start=1):
        app.view.update_heartbeat(Heartbeat(name, role, f"10.0.0.{i}", 1, cores, 0.0, 0, 8 << 30),
                                  f"00:00:00:00:00:0{i}", dpid, port, now)


def test_fallback_plans_are_counted_by_method_and_reason(app):
    app.wsgi_app = _wsgi(app)
    assert app.planner is not None
    _planning_view(app)
    app.planner.policies["dpto"] = _Infeasible()
    reply = app.plan(PlanRequest("t1", "alexnet", "dpto", "10.0.0.1"), app.clock())
    assert reply["ok"] and reply["policy"] == "all-cloud-fallback" and "infeasible" in reply["fallback"]
    reply = app.plan(PlanRequest("t2", "alexnet", "only-cloud", "10.0.0.1"), app.clock())
    assert reply["ok"] and reply["fallback"] is None
    samples = scrape(app)
    assert samples[("sdncep_decision_fallbacks_total", (("method", "dpto"), ("reason", "infeasible")))] == 1
    assert not [k for k in samples if k[0] == "sdncep_decision_fallbacks_total" and ("method", "only-cloud") in k[1]]
    assert samples[("sdncep_decisions_total", (("method", "dpto"),))] == 1
    assert samples[("sdncep_decisions_total", (("method", "only-cloud"),))] == 1
    assert samples[("sdncep_predicted_latency_seconds_count", (("method", "dpto"),))] == 1
    assert samples[("sdncep_decision_seconds_count", ())] == 2
