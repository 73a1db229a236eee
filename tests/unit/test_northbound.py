import json
import xml.etree.ElementTree as ET

import pytest

from controller import northbound
from protocol.heartbeat import Heartbeat
from controller.view import GlobalView


@pytest.fixture
def view():
    v = GlobalView()
    v.add_switch(1, 0.0, name="l1")
    v.update_heartbeat(Heartbeat("e1", "edge", "10.0.0.4", 1, 0.5, 0.1, 0, 1), "00:00:00:00:00:04", 1, 2, 0.0)
    v.learn_host("00:00:00:00:00:01", 1, 3, 0.0)
    return v


def call(view, resource, query=None, name=None):
    status, ctype, body = northbound.respond(view, 1.0, resource, query, name=name)
    return status, ctype, (json.loads(body) if ctype == northbound.JSON else body)


def test_view_json_and_xml(view):
    status, ctype, body = call(view, "view")
    assert status == 200 and {"switches", "links", "nodes", "timestamp"} <= set(body)
    status, ctype, body = call(view, "view.xml")
    assert status == 200 and ctype == northbound.XML and ET.fromstring(body).tag == "globalView"


def test_filters(view):
    assert [n["name"] for n in call(view, "nodes", {"role": "edge"})[2]] == ["e1"]
    assert all(l["kind"] == "host" for l in call(view, "links", {"kind": "host"})[2])
    assert call(view, "node", name="e1")[2]["role"] == "edge"


@pytest.mark.parametrize("resource,query,name,status", [
    ("nodes", {"role": "king"}, None, 400),
    ("links", {"kind": "wifi"}, None, 400),
    ("view", {"x": "1"}, None, 400),
    ("node", None, "nobody", 404),
    ("teapot", None, None, 404),
])
def test_bad_requests_get_4xx_with_message(view, resource, query, name, status):
    got, ctype, body = call(view, resource, query, name)
    assert got == status and ctype == northbound.JSON and body["error"]
