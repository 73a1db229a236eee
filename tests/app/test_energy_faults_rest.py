"""Faults at the energy decision endpoint (controller/energy_rest.py), no switch: refusals
that go away are 503s with a retry time, and the edge servers come from the SDN-CEP
app's global view (alive, reachable, held down once a device reports them unreachable)."""
import json
import time
from types import SimpleNamespace

from webob.request import Request

from protocol.heartbeat import Heartbeat
from controller.view import GlobalView


def _post(app, body):
    from ryu.app.wsgi import WSGIApplication

    from controller.energy_rest import APP_KEY, EnergyRest
    wsgi = WSGIApplication()
    wsgi.register(EnergyRest, {APP_KEY: app})
    req = Request.blank("/sdncep/v1/energy/decide", method="POST")
    req.body = json.dumps(body).encode()
    return req.get_response(wsgi)


def test_too_many_decisions_at_once_are_refused_with_a_retry_time():
    from controller.energy_rest import MAX_CONCURRENT_DECISIONS
    app = SimpleNamespace(decide=lambda payload: {"devices": []}, in_flight=MAX_CONCURRENT_DECISIONS)
    reply = _post(app, {"devices": []})
    body = json.loads(reply.text)
    assert reply.status_int == 503 and body["reason"] == "overloaded" and body["retry_after_s"] > 0
    assert reply.headers["Retry-After"] and app.in_flight == MAX_CONCURRENT_DECISIONS
    app.in_flight = 0
    assert _post(app, {"devices": []}).status_int == 200 and app.in_flight == 0


def test_a_view_not_ready_is_a_503_and_bad_input_stays_a_400():
    from agents.energy.service import NotReady, RequestError

    def not_ready(_payload):
        raise NotReady("device d1: the controller's view does not know where it is (yet)")

    def bad(_payload):
        raise RequestError("devices must be a list")
    reply = _post(SimpleNamespace(decide=not_ready, in_flight=0), {})
    assert reply.status_int == 503 and json.loads(reply.text)["reason"] == "not_ready"
    assert _post(SimpleNamespace(decide=bad, in_flight=0), {}).status_int == 400


def _host(view, name, role, dpid, port, now):
    mac, ip = f"00:00:00:00:00:{dpid:x}{port:x}", f"10.0.{dpid}.{port}"
    view.update_heartbeat(Heartbeat(name=name, role=role, ip=ip, seq=1, cpu_share=1.0, busy=0.0, queue_len=0,
                                    mem_free_bytes=1 << 30), mac, dpid, port, now)


def test_edge_servers_come_from_the_view_and_a_reported_one_is_held_down(monkeypatch):
    from ryu.base import app_manager

    from controller.energy_rest import EnergyDecisionApp
    view, now = GlobalView(), time.time()
    view.add_switch(1, now, "a1")
    view.add_switch(2, now, "a2")       # no link between the two: a2's devices cannot reach e1
    _host(view, "d1", "device", 1, 1, now)
    _host(view, "e1", "edge", 1, 2, now)
    _host(view, "d2", "device", 2, 1, now)
    monkeypatch.setattr(app_manager, "lookup_service_brick",
                        lambda name: SimpleNamespace(view=view) if name == "SdnCepController" else None)
    [edge], reachable = EnergyDecisionApp.edges(None, [])
    assert edge.name == "e1" and edge.alive and reachable("d1", "e1") and not reachable("d2", "e1")
    [edge], _ = EnergyDecisionApp.edges(None, ["e1"])
    assert not edge.alive and "unreachable" in edge.why_down
    _host(view, "e1", "edge", 1, 2, time.time())            # its next heartbeat: it is back
    [edge], _ = EnergyDecisionApp.edges(None, [])
    assert edge.alive
    view.set_port_down(1, 2, True)
    [edge], _ = EnergyDecisionApp.edges(None, [])
    assert not edge.alive and edge.why_down == "its switch port is down"


def test_a_bad_request_reporting_an_edge_unreachable_holds_nothing_down(monkeypatch):
    import pytest
    from ryu.base import app_manager

    from agents.energy.service import RequestError
    from controller.energy_rest import EnergyDecisionApp
    view, now = GlobalView(), time.time()
    view.add_switch(1, now, "a1")
    _host(view, "d1", "device", 1, 1, now)
    _host(view, "e1", "edge", 1, 2, now)
    monkeypatch.setattr(app_manager, "lookup_service_brick",
                        lambda name: SimpleNamespace(view=view) if name == "SdnCepController" else None)
    app = SimpleNamespace(policies={"optimum": None}, attachment=lambda: EnergyDecisionApp.attachment(None),
                          edges=lambda unreachable: EnergyDecisionApp.edges(None, unreachable))
    with pytest.raises(RequestError):
        EnergyDecisionApp.decide(app, {"method": "optimum", "devices": "nope", "unreachable": ["e1"]})
    assert view.host_alive(view.host_by_name("e1"), time.time())


def test_a_device_the_settled_view_does_not_know_is_bad_input():
    from agents.energy.service import NotReady

    def not_ready(_payload):
        raise NotReady("device dx: the controller's view does not know where it is (yet)")
    settled = SimpleNamespace(decide=not_ready, in_flight=0, started=time.monotonic() - 60)
    reply = _post(settled, {})
    assert reply.status_int == 400 and "check the device's name" in json.loads(reply.text)["error"]
