"""Fuzzing every northbound endpoint through Ryu's WSGI stack: random verbs, paths,
query strings, headers and bodies (JSON that almost fits the schemas, and raw bytes).
No answer is a 5xx or carries a traceback, every 4xx is a JSON error, the controller
keeps planning afterwards.

The suite runs a small sample; ``SDNCEP_FUZZ_SCALE=50`` runs 50 times as many
(the figures in the closing note), e.g.::

    SDNCEP_FUZZ_SCALE=50 .venv/bin/python -m pytest -q tests/app/test_rest_fuzz.py tests/unit/test_fuzz.py
"""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob.request import Request

from protocol.plan_request import PlanRequest
from controller.rest import VERBS
from tests.app.conftest import make_app
from tests.app.test_metrics_app import _planning_view
from tests.app.test_rest_wsgi import _wsgi

SCALE = int(os.environ.get("SDNCEP_FUZZ_SCALE", "1"))
PATHS = ["/sdncep/v1/view", "/sdncep/v1/view.xml", "/sdncep/v1/links", "/sdncep/v1/nodes", "/sdncep/v1/nodes/e1",
         "/sdncep/v1/nodes/%ff", "/sdncep/v1/plan", "/sdncep/v1/measure", "/sdncep/v1/calibration", "/metrics",
         "/sdncep/v1/", "/sdncep/v2/view", "/"]
FIELDS = ["task_id", "model", "method", "device_ip", "features", "q", "reply_port", "hops", "in_flight",
          "compute", "network", "overhead_s", "x"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30) | st.sampled_from(["alexnet", "dpto", "sdn-cep", "10.0.0.1", "e1", "x:y", "a.b:C"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10) | st.sampled_from(FIELDS),
                                                                inner, max_size=6),
    max_leaves=20)
near_plan = st.fixed_dictionaries(
    {"task_id": st.text(max_size=70) | st.just("t1"), "model": st.sampled_from(["alexnet", "vgg16", "nope", ""]),
     "device_ip": st.sampled_from(["10.0.0.1", "10.0.0.999", "", "::1"])},
    optional={k: json_values for k in FIELDS if k not in ("task_id", "model", "device_ip")})
bodies = (json_values.map(lambda v: json.dumps(v).encode()) | near_plan.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=300))
queries = st.lists(st.tuples(st.sampled_from(["kind", "role", "link", "x", "%ff", ""]),
                             st.sampled_from(["switch", "host", "edge", "c1-g1", "a-b", "%ff", "", "%00"])),
                   max_size=3)


def _app():
    app = make_app()
    app.wsgi_app = _wsgi(app)
    _planning_view(app)
    return app


APP = None


def app_once():
    global APP
    if APP is None:
        APP = _app()
    return APP


@settings(max_examples=600 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(verb=st.sampled_from(VERBS + ("TRACE",)), path=st.sampled_from(PATHS), query=queries, body=bodies,
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]))
def test_no_request_gets_a_5xx_or_a_traceback(verb, path, query, body, content_type):
    app = app_once()
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    req = Request.blank(url, method=verb)
    if verb not in ("GET", "HEAD"):
        req.body = body
        if content_type:
            req.content_type = content_type
    reply = req.get_response(app.wsgi_app)
    assert reply.status_int < 500, (verb, url, body[:80], reply.text[:300])
    assert "Traceback" not in reply.text
    if 400 <= reply.status_int < 500 and reply.status_int != 404 and path.startswith("/sdncep/v1/") and verb != "HEAD":
        assert "error" in json.loads(reply.text), reply.text[:200]


def test_the_controller_still_plans_after_the_fuzz():
    app = app_once()
    _planning_view(app)              # fresh heartbeats: the fuzz took longer than they stay live
    reply = app.plan(PlanRequest("after-fuzz", "alexnet", "dpto", "10.0.0.1"), app.clock())
    assert reply["ok"], reply
