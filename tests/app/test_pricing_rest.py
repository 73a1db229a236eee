"""The job network endpoint (controller/pricing_rest.py): through Ryu's WSGI router, with
the SDN-CEP app's view and fake switches: meters and metered flows sent, idempotent puts,
clear refusals."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryu.app.wsgi import WSGIApplication
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3_parser as parser
from webob.request import Request

from controller import pricing_rest  # before the app fixture parses Ryu's options
from protocol.heartbeat import Heartbeat
from controller.job_flows import JOB_COOKIE
from controller.probe import LinkKey
from controller.rest import VERBS
from tests.app.conftest import FakeDatapath
from tests.app.test_rest_fuzz import SCALE, bodies, json_values

PS, W1 = "10.0.0.5", "10.0.0.1"
BODY = {"ps": PS, "port": 7105, "workers": [W1, PS], "worker_mbps": 20, "ps_mbps": 40}


@pytest.fixture
def rest(app, monkeypatch):
    return pricing_world(app, monkeypatch)


def pricing_world(app, monkeypatch):
    """(wsgi, the SDN-CEP app, {dpid: fake switch}) on a1(1) -- c1(2) -- l2(4), 50 Mbit/s."""
    switches = {dpid: FakeDatapath(dpid) for dpid in (1, 2, 4)}
    app.datapaths.update(switches)
    for dpid in switches:
        app.view.add_switch(dpid, 0.0)
    for key in (LinkKey(1, 1, 2, 1), LinkKey(2, 1, 1, 1), LinkKey(2, 2, 4, 1), LinkKey(4, 1, 2, 2)):
        app.view.add_link(key, 0.0)
        app.view.update_capacity(key, 50e6, 0.0)
    app.view.update_heartbeat(Heartbeat("e1", "edge", W1, 1, 1, 0, 0, 0), "00:00:00:00:00:01", 1, 3, 0.0)
    app.view.update_heartbeat(Heartbeat("e2", "edge", PS, 1, 1, 0, 0, 0), "00:00:00:00:00:05", 4, 3, 0.0)
    monkeypatch.setattr(pricing_rest, "sdncep_app", lambda: app)
    monkeypatch.setattr(pricing_rest, "SETTLING_S", 0.0)
    installer = app._install_and_fence

    def install_without_barriers(rules):      # fake switches never answer a barrier
        done, keys = installer(rules)
        done.set()
        return done, keys
    monkeypatch.setattr(app, "_install_and_fence", install_without_barriers)
    wsgi = WSGIApplication()
    pricing_rest.PricingNetworkApp(wsgi=wsgi)
    return wsgi, app, switches


def call(wsgi, method, path, body=None):
    req = Request.blank(path, method=method)
    if body is not None:
        req.body = json.dumps(body).encode()
    reply = req.get_response(wsgi)
    return reply.status_int, json.loads(reply.text)


def sent(switches, cls):
    return {dpid: [m for m in sw.sent if isinstance(m, cls)] for dpid, sw in switches.items()}


def test_a_job_gets_metered_rules_on_its_path_and_a_second_put_sends_nothing(rest):
    wsgi, _app, switches = rest
    status, reply = call(wsgi, "PUT", "/sdncep/v1/pricing/jobs/5", BODY)
    assert status == 200 and reply["changed"] and reply["remote_workers"] == 1
    assert reply["reserved_mbps"] and all(v == 20.0 for v in reply["reserved_mbps"].values())
    meters = sent(switches, parser.OFPMeterMod)
    assert meters[1] and meters[4] and not meters[2]                 # the worker's and the PS's switch
    assert {m.bands[0].rate for m in meters[1]} == {20_000} and {m.bands[0].rate for m in meters[4]} == {40_000}
    flows = sent(switches, parser.OFPFlowMod)
    assert all(f.cookie == JOB_COOKIE | 5 for fs in flows.values() for f in fs)
    assert all(any(isinstance(i, parser.OFPInstructionMeter) for i in f.instructions) for f in flows[1] + flows[4])
    assert len(flows[2]) == 2                                        # the middle switch: both ways, unmetered
    before = sum(len(sw.sent) for sw in switches.values())
    status, reply = call(wsgi, "PUT", "/sdncep/v1/pricing/jobs/5", BODY)
    assert status == 200 and not reply["changed"] and sum(len(sw.sent) for sw in switches.values()) == before
    status, summary = call(wsgi, "GET", "/sdncep/v1/pricing/jobs")
    assert status == 200 and [j["jid"] for j in summary["jobs"]] == [5]


def test_removing_a_job_deletes_its_rules_and_meters(rest):
    wsgi, _app, switches = rest
    call(wsgi, "PUT", "/sdncep/v1/pricing/jobs/5", BODY)
    for sw in switches.values():
        sw.sent.clear()
    status, reply = call(wsgi, "DELETE", "/sdncep/v1/pricing/jobs/5")
    assert status == 200 and reply == {"jid": 5, "removed": True}
    deletes = [f for fs in sent(switches, parser.OFPFlowMod).values() for f in fs]
    assert len(deletes) == 3 and all(f.cookie == JOB_COOKIE | 5 and f.command == 3 for f in deletes)
    assert all(m.command == 2 for ms in sent(switches, parser.OFPMeterMod).values() for m in ms)
    assert call(wsgi, "GET", "/sdncep/v1/pricing/jobs")[1]["jobs"] == []


@pytest.mark.parametrize("method, path, body, status, message", [
    ("PUT", "/sdncep/v1/pricing/jobs/5", {**BODY, "workers": [W1, W1, W1]}, 409, r"\(1k\)"),
    ("PUT", "/sdncep/v1/pricing/jobs/5", {**BODY, "worker_mbps": 30, "ps_mbps": 60, "workers": [W1, W1]}, 409,
     "Mbit/s measured"),
    ("PUT", "/sdncep/v1/pricing/jobs/5", {**BODY, "workers": ["10.0.0.9"]}, 409, "10.0.0.9"),
    ("PUT", "/sdncep/v1/pricing/jobs/5", {**BODY, "ps_mbps": True}, 400, "ps_mbps must be a number"),
    ("PUT", "/sdncep/v1/pricing/jobs/x", BODY, 400, "job id"),
    ("DELETE", "/sdncep/v1/pricing/jobs/-3", None, 400, "job id"),
    ("POST", "/sdncep/v1/pricing/jobs/5", BODY, 405, "not allowed"),
])
def test_bad_or_unplaceable_jobs_get_a_clear_answer(rest, method, path, body, status, message):
    import re
    got, reply = call(rest[0], method, path, body)
    assert got == status and re.search(message, reply["error"]), reply


def _fuzz_world():
    """One app and pricing endpoint for the whole fuzz (hypothesis reruns the test body)."""
    from tests.app.conftest import make_app
    app = make_app()
    patch = pytest.MonkeyPatch()
    wsgi, _app, _switches = pricing_world(app, patch)
    return wsgi


FUZZ = {}
PRICING_PATHS = ["/sdncep/v1/pricing/jobs", "/sdncep/v1/pricing/jobs/5", "/sdncep/v1/pricing/jobs/4294967295",
                 "/sdncep/v1/pricing/jobs/4294967296", "/sdncep/v1/pricing/jobs/%ff", "/sdncep/v1/pricing/jobs/-1",
                 "/sdncep/v1/pricing/jobs/5/x"]
near_job = st.fixed_dictionaries(
    {"ps": st.sampled_from([PS, W1, "10.0.0.9", "", "::1", 5]), "workers": st.lists(
        st.sampled_from([W1, PS, "10.0.0.9", None, 1.5]), max_size=70) | json_values},
    optional={"port": json_values | st.integers(-5, 70000), "worker_mbps": json_values | st.floats(),
              "ps_mbps": json_values | st.floats(), "x": json_values})


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(verb=st.sampled_from(VERBS), path=st.sampled_from(PRICING_PATHS),
       body=bodies | near_job.map(lambda v: json.dumps(v).encode()))
def test_fuzzed_job_requests_get_no_5xx_and_never_a_traceback(verb, path, body):
    if "wsgi" not in FUZZ:
        FUZZ["wsgi"] = _fuzz_world()
    req = Request.blank(path, method=verb)
    if verb not in ("GET", "HEAD"):
        req.body = body
    reply = req.get_response(FUZZ["wsgi"])
    assert reply.status_int < 500 or reply.status_int == 503, (verb, path, body[:80], reply.text[:300])
    assert "Traceback" not in reply.text


def test_too_many_puts_at_once_are_refused_with_a_retry(rest, monkeypatch):
    monkeypatch.setattr(pricing_rest, "MAX_CONCURRENT_PUTS", 0)
    req = Request.blank("/sdncep/v1/pricing/jobs/5", method="PUT")
    req.body = json.dumps(BODY).encode()
    reply = req.get_response(rest[0])
    assert reply.status_int == 503 and reply.headers["Retry-After"] == "1" and "overloaded" in reply.json["error"]


def test_a_view_being_rebuilt_answers_not_ready(rest, monkeypatch):
    monkeypatch.setattr(pricing_rest, "SETTLING_S", 60.0)        # as just after a (re)start
    status, reply = call(rest[0], "PUT", "/sdncep/v1/pricing/jobs/5", {**BODY, "workers": ["10.0.0.9"]})
    assert status == 503 and "10.0.0.9" in reply["error"]
    # a delete is done, and to be sent again: switches may still be reconnecting
    switches = rest[2]
    status, reply = call(rest[0], "DELETE", "/sdncep/v1/pricing/jobs/5")
    assert status == 503 and "delete the job again" in reply["error"]
    assert all(sw.of_type(parser.OFPFlowMod)[-1].command == 3 for sw in switches.values())


def test_a_put_the_switches_did_not_confirm_is_not_committed(rest, monkeypatch):
    wsgi, app, switches = rest
    unconfirmed = type("Never", (), {"wait": lambda self, timeout: False})()
    monkeypatch.setattr(app, "_install_and_fence", lambda rules: (unconfirmed, []))
    status, reply = call(wsgi, "PUT", "/sdncep/v1/pricing/jobs/5", BODY)
    assert status == 503 and "confirm" in reply["error"]
    assert call(wsgi, "GET", "/sdncep/v1/pricing/jobs")[1]["jobs"] == []


def _slow_barriers(app, monkeypatch):
    def install_slowly(rules):            # barriers that take a moment, as on real switches
        done = hub.Event()
        hub.spawn_after(0.05, done.set)
        return done, []
    monkeypatch.setattr(app, "_install_and_fence", install_slowly)


def test_puts_at_once_never_book_a_link_twice(rest, monkeypatch):
    wsgi, app, _switches = rest
    _slow_barriers(app, monkeypatch)
    body = {"ps": PS, "port": 7105, "workers": [W1], "worker_mbps": 30, "ps_mbps": 30}    # two cannot fit in 50
    threads = [hub.spawn(call, wsgi, "PUT", f"/sdncep/v1/pricing/jobs/{j}", body) for j in (1, 2)]
    assert sorted(t.wait()[0] for t in threads) == [200, 409]


def test_a_delete_during_a_put_leaves_no_job(rest, monkeypatch):
    wsgi, app, _switches = rest
    _slow_barriers(app, monkeypatch)
    body = {"ps": PS, "port": 7105, "workers": [W1], "worker_mbps": 20, "ps_mbps": 20}
    call(wsgi, "PUT", "/sdncep/v1/pricing/jobs/1", body)
    put = hub.spawn(call, wsgi, "PUT", "/sdncep/v1/pricing/jobs/1", {**body, "worker_mbps": 10})
    hub.sleep(0.01)
    assert call(wsgi, "DELETE", "/sdncep/v1/pricing/jobs/1")[0] == 200
    put.wait()
    assert call(wsgi, "GET", "/sdncep/v1/pricing/jobs")[1]["jobs"] == []
