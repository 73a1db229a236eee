"""The northbound API through Ryu's WSGI stack, with no switch (after test_ofctl_rest)."""

import json
import xml.etree.ElementTree as ET

from webob.request import Request

from protocol.heartbeat import Heartbeat


def get(app, path):
    return Request.blank(path).get_response(app.wsgi_app)


def test_routes_serve_json_and_xml(app):
    app.wsgi_app = _wsgi(app)
    app.view.add_switch(1, 0.0, name="l1")
    app.view.update_heartbeat(Heartbeat("e1", "edge", "10.0.0.4", 1, 0.5, 0.1, 0, 1),
                              "00:00:00:00:00:04", 1, 2, app.clock())
    reply = get(app, "/sdncep/v1/view")
    assert reply.status_int == 200 and reply.content_type == "application/json"
    assert json.loads(reply.text)["nodes"][0]["name"] == "e1"
    reply = get(app, "/sdncep/v1/view.xml")
    assert reply.status_int == 200 and ET.fromstring(reply.body).tag == "globalView"
    assert json.loads(get(app, "/sdncep/v1/nodes/e1").text)["role"] == "edge"
    assert get(app, "/sdncep/v1/links").status_int == 200


def test_malformed_requests_get_4xx(app):
    app.wsgi_app = _wsgi(app)
    reply = get(app, "/sdncep/v1/nodes?role=king")
    assert reply.status_int == 400 and "role" in json.loads(reply.text)["error"]
    assert get(app, "/sdncep/v1/nodes/ghost").status_int == 404
    assert get(app, "/sdncep/v1/nowhere").status_int == 404
    assert Request.blank("/sdncep/v1/view", method="POST").get_response(app.wsgi_app).status_int in (404, 405)


def _wsgi(app):
    from ryu.app.wsgi import WSGIApplication
    from controller.rest import APP_KEY, NorthboundController
    wsgi = WSGIApplication()
    wsgi.register(NorthboundController, {APP_KEY: app})
    return wsgi


def test_measure_hurries_the_probes_of_one_link_or_all(app):
    from controller.probe import LinkKey
    app.wsgi_app = _wsgi(app)
    for dpid, name in ((0x41, "g1"), (0x11, "c1"), (0x21, "l1")):
        app.view.add_switch(dpid, 0.0, name=name)
    wan, fabric = (LinkKey(0x11, 3, 0x41, 1), LinkKey(0x41, 1, 0x11, 3)), (LinkKey(0x21, 1, 0x11, 1),)
    for link in wan + fabric:
        app.view.add_link(link, 0.0)
    schedule = app.probe_schedule
    for link in wan + fabric:
        schedule.result(link, app.clock(), 10e6, 10e6)    # agreeing probes: the next ones seconds off
    post = lambda path: Request.blank(path, method="POST").get_response(app.wsgi_app)  # noqa: E731
    reply = post("/sdncep/v1/measure?link=c1-g1")
    assert reply.status_int == 202
    due = schedule.due(list(wan + fabric), app.clock())
    assert set(due) == set(wan)                             # the fabric link waits
    assert post("/sdncep/v1/measure?link=c1-l9").status_int == 400
    assert post("/sdncep/v1/measure").status_int == 202
    assert set(schedule.due(list(wan + fabric), app.clock())) == set(wan + fabric)
