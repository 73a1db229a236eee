"""Regression tests for the northbound API's answers to bad input (issue 16): each one
used to be a 500 with a traceback, accepted, or held open."""

import json

import pytest
from webob.request import Request

from tests.app.test_metrics_app import _planning_view
from tests.app.test_rest_wsgi import _wsgi

PLAN = {"task_id": "t1", "model": "alexnet", "method": "dpto", "device_ip": "10.0.0.1"}


@pytest.fixture
def api(app):
    app.wsgi_app = _wsgi(app)
    _planning_view(app)

    def call(path, method="GET", body=None, **kwargs):
        req = Request.blank(path, method=method, **kwargs)
        if body is not None:
            req.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = req.get_response(app.wsgi_app)
        assert "Traceback" not in reply.text
        return reply
    call.app = app
    return call


def error_of(reply):
    assert reply.content_type == "application/json", reply.text
    return json.loads(reply.text)["error"]


def test_a_query_string_that_is_not_utf8_is_a_400(api):
    for path in ("/sdncep/v1/view?x=%ff", "/sdncep/v1/links?kind=%ff", "/sdncep/v1/measure?link=%ff"):
        reply = api(path, method="POST" if "measure" in path else "GET")
        assert reply.status_int == 400 and "UTF-8" in error_of(reply)


@pytest.mark.parametrize("field, value", [("features", 3), ("features", {"a": 1}), ("hops", "e1:0-5"),
                                          ("q", True), ("reply_port", True), ("hops", [["e1", True, 3]])])
def test_plan_fields_of_the_wrong_type_are_a_400(api, field, value):
    reply = api("/sdncep/v1/plan", "POST", dict(PLAN, **{field: value}))
    assert reply.status_int == 400 and "bad plan request" in error_of(reply)


def test_deeply_nested_json_is_a_400_and_a_huge_body_a_413(api):
    reply = api("/sdncep/v1/plan", "POST", b"[" * 100_000 + b"]" * 100_000)
    assert reply.status_int == 413
    reply = api("/sdncep/v1/plan", "POST", b"[" * 5_000 + b"]" * 5_000)
    assert reply.status_int == 400 and "nested deeper" in error_of(reply)
    reply = api("/sdncep/v1/calibration", "PUT", b'{"network": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}')
    assert reply.status_int == 400


def test_calibration_bad_shapes_booleans_and_too_many_nodes_are_400(api):
    for body in ({"compute": [1, 2]}, {"compute": {"e1": True}}, {"network": True}, {"overhead_s": False},
                 {"compute": {f"n{i}": 1.0 for i in range(200_0)}}, "text", [1]):
        reply = api("/sdncep/v1/calibration", "PUT", body)
        assert reply.status_int == 400 and "bad calibration" in error_of(reply), body
    assert api("/sdncep/v1/calibration", "PUT", {"compute": {"e1": 1.2}}).status_int == 200


def test_a_body_announced_too_big_is_a_413_and_one_cut_short_a_400(api):
    reply = api("/sdncep/v1/plan", "POST", headers={"Content-Length": str(1 << 30)})
    assert reply.status_int == 413
    req = Request.blank("/sdncep/v1/plan", method="POST")
    req.body = b"{}"
    req.content_length = 100            # announces more than it sends: not waited for forever
    reply = req.get_response(api.app.wsgi_app)
    assert reply.status_int in (400, 408) and "Traceback" not in reply.text


def test_a_body_that_stops_arriving_is_a_408(api, monkeypatch):
    from controller import rest
    monkeypatch.setattr(rest, "BODY_TIMEOUT_S", 0.2)

    class Stalled:
        def read(self, *_):
            from ryu.lib import hub
            hub.sleep(5)
            return b""
    req = Request.blank("/sdncep/v1/plan", method="POST")
    req.content_length = 10
    req.body_file_raw = Stalled()
    reply = req.get_response(api.app.wsgi_app)
    assert reply.status_int == 408 and "did not arrive" in error_of(reply)


def test_wrong_verbs_are_405_with_allow(api):
    reply = api("/sdncep/v1/view", "POST")
    assert reply.status_int == 405 and reply.headers["Allow"] == "GET" and "POST" in error_of(reply)
    reply = api("/sdncep/v1/plan", "GET")
    assert reply.status_int == 405 and reply.headers["Allow"] == "POST"
    reply = api("/sdncep/v1/calibration", "DELETE")
    assert reply.status_int == 405 and reply.headers["Allow"] == "GET, PUT"
    assert api("/sdncep/v1/nowhere").status_int == 404
