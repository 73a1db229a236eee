"""The energy decision endpoint (controller/energy_rest.py) through Ryu's WSGI router, no switch."""
import json
from types import SimpleNamespace

import numpy as np
from webob.request import Request

from agents.energy.instances import draw_instance
from agents.energy.service import decide, default_policies

FIELDS = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")
POLICIES = default_policies()


def _wsgi(attachment):
    from ryu.app.wsgi import WSGIApplication

    from controller.energy_rest import APP_KEY, EnergyRest
    fake = SimpleNamespace(decide=lambda payload: decide(payload, attachment, POLICIES))
    wsgi = WSGIApplication()
    wsgi.register(EnergyRest, {APP_KEY: fake})
    return wsgi


def _post(wsgi, body):
    req = Request.blank("/sdncep/v1/energy/decide", method="POST")
    req.body = json.dumps(body).encode()
    return req.get_response(wsgi)


def test_decide_answers_with_the_policys_decisions():
    inst = draw_instance(np.random.default_rng(2), n=4)
    attachment = {f"d{i + 1}": f"a{i % 2 + 1}" for i in range(4)}
    body = {"method": "dqn", "devices": [{"name": f"d{i + 1}", **{f: float(getattr(inst, f)[i]) for f in FIELDS}}
                                         for i in range(4)]}
    reply = _post(_wsgi(attachment), body)
    assert reply.status_int == 200, reply.text
    data = json.loads(reply.text)
    assert data["method"] == "dqn" and len(data["devices"]) == 4 and data["feasible"]
    assert {d["ap"] for d in data["devices"]} == {"a1", "a2"}


def test_bad_requests_are_400_with_a_message():
    wsgi = _wsgi({})
    for body in ({"devices": []}, {"method": "x"}, [1, 2]):
        reply = _post(wsgi, body)
        assert reply.status_int == 400 and "error" in json.loads(reply.text), reply.text


def test_attachment_comes_from_the_sdncep_apps_view(monkeypatch):
    from ryu.base import app_manager

    from controller.energy_rest import EnergyDecisionApp
    view = SimpleNamespace(nodes=lambda now: [{"name": "d1", "role": "device", "switch": "a2"},
                                              {"name": "e1", "role": "edge", "switch": "l1"}])
    monkeypatch.setattr(app_manager, "lookup_service_brick",
                        lambda name: SimpleNamespace(view=view) if name == "SdnCepController" else None)
    assert EnergyDecisionApp.attachment(None) == {"d1": "a2"}
