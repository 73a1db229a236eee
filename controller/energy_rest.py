"""Ryu adapter of the energy-aware offloading policy (logic in agents.energy.service).

A second Ryu app, loaded beside ``controller.app`` (``ryu-manager ... controller.energy_rest
controller.app``); it shares the WSGI server and reads the SDN-CEP app's global view for
which access switch (AP) each device is attached to, and which edge servers are alive and
reachable from it::

    POST /sdncep/v1/energy/decide     body: agents.energy.service request -> decisions

Faults: an edge server a request reports ``unreachable`` is held down in the view until
its next heartbeat (GlobalView.suspect, as the planner does for a device's ``avoid``);
more than ``MAX_CONCURRENT_DECISIONS`` requests at once, or a view that does not place a
device yet, are refused with a 503 and ``retry_after_s`` rather than queued or failed.

Only serialisation here, as in controller.rest (whose body reader and error guard it uses).
"""

import json
import logging
import time

from ryu.app.wsgi import ControllerBase, WSGIApplication, route
from ryu.base import app_manager
from webob import Response

from controller.rest import PREFIX, HttpError, guarded, json_body
from controller.view import HEARTBEAT_STALE_AFTER

LOG = logging.getLogger(__name__)
APP_KEY = "sdncep_energy_app"
# Requests read or decided at once (each a green thread; a decision takes about 1 ms,
# a body read may wait on a slow sender); beyond, a 503 at once rather than a queue
# without bound.
MAX_CONCURRENT_DECISIONS = 32
OVERLOADED_RETRY_S = 0.2
SETTLING_S = 15.0            # after the start: a device the view does not place yet is not ready, not unknown


def why_down(view, data, now):
    """The view's reason a host is not alive ('' if it is)."""
    if view.host_alive(data, now):
        return ""
    if (data["dpid"], data["port"]) in view.down_ports:
        return "its switch port is down"
    if data.get("ip") in view.suspects:
        return "a device found it unreachable (held down until its next heartbeat)"
    return f"no heartbeat for more than {HEARTBEAT_STALE_AFTER:g} s"


def sdncep_app():
    """The SDN-CEP app (controller.app) whose global view the decisions read, or None."""
    return app_manager.lookup_service_brick("SdnCepController")


class EnergyDecisionApp(app_manager.RyuApp):
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from agents.energy.service import default_policies
        self.policies = default_policies()
        self.in_flight = 0
        self.started = time.monotonic()
        kwargs["wsgi"].register(EnergyRest, {APP_KEY: self})

    def attachment(self):
        """{device name: access switch} from the SDN-CEP app's global view (empty without it)."""
        main = sdncep_app()
        if main is None:
            return {}
        return {n["name"]: n["switch"] for n in main.view.nodes(time.time()) if n["role"] == "device"}

    def edges(self, unreachable):
        """(EdgeServers, reachable(device, edge)) from the view, after holding the
        ``unreachable`` ones down; (None, None) without the SDN-CEP app."""
        from agents.energy.edges import EdgeServer
        main = sdncep_app()
        if main is None:
            return None, None
        view, now = main.view, time.time()
        for name in unreachable:
            host = view.host_by_name(name)
            if host is not None and host["role"] == "edge" and host.get("ip"):
                view.suspect(host["ip"])
        hosts = [h for h in view.hosts() if h["role"] == "edge"]
        servers = [EdgeServer(h["name"], h.get("ip"), view.host_alive(h, now), why_down(view, h, now)) for h in hosts]

        def reachable(device, edge):
            a, b = view.host_by_name(device), view.host_by_name(edge)
            return a is not None and b is not None and view.widest_path(a["dpid"], b["dpid"])[0] is not None
        return servers, reachable

    def decide(self, payload):
        from agents.energy.service import decide, reported_unreachable, validate
        attachment = self.attachment()
        validate(payload, attachment, self.policies)       # a report is believed only in a valid request
        edges, reachable = self.edges(reported_unreachable(payload))
        return decide(payload, attachment, self.policies, edges, reachable)


class EnergyRest(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    @route("sdncep-energy", PREFIX + "/energy/decide", methods=["POST"])
    @guarded
    def decide(self, req, **_kwargs):
        from agents.energy.service import NotReady, RequestError
        busy = getattr(self.app, "in_flight", 0)
        if busy >= MAX_CONCURRENT_DECISIONS:
            return _refusal("overloaded", f"controller overloaded ({busy} energy decisions at once)",
                            OVERLOADED_RETRY_S)
        self.app.in_flight = busy + 1
        try:
            reply = self.app.decide(json_body(req))
        except NotReady as exc:
            # while the view is rebuilt (just after a start) a device it does not place yet
            # is "ask again"; later, it is a name the view does not know: bad input
            if time.monotonic() - getattr(self.app, "started", time.monotonic()) < SETTLING_S:
                return _refusal("not_ready", str(exc), exc.retry_after_s)
            raise HttpError(400, f"bad energy request: {exc}; check the device's name, or that its host "
                                 "sends heartbeats") from None
        except RequestError as exc:
            raise HttpError(400, f"bad energy request: {exc}") from None
        finally:
            self.app.in_flight -= 1
        return Response(status=200, content_type="application/json", charset="utf-8", text=json.dumps(reply))


def _refusal(reason, message, retry_after_s):
    """A 503 that says when to ask again (in the body and as Retry-After)."""
    body = {"error": message, "reason": reason, "retry_after_s": retry_after_s}
    response = Response(status=503, content_type="application/json", charset="utf-8", text=json.dumps(body))
    response.headers["Retry-After"] = str(max(1, round(retry_after_s)))
    return response
