"""Ryu WSGI adapter for the northbound API (logic in controller.northbound).

Every answer to bad input is a 4xx with a JSON ``{"error": ...}``, never a traceback:
query strings that are not UTF-8 (400), bodies over ``MAX_BODY`` (413) or slower than
``BODY_TIMEOUT_S`` to arrive (408), JSON that is not JSON or nests deeper than
``MAX_DEPTH`` (400), a verb a resource does not take (405, with ``Allow``). A fault of
ours is a 500 with a JSON message; the traceback goes to the controller log.
"""

import functools
import json
import logging
import time

from ryu.app.wsgi import ControllerBase, route
from ryu.lib import hub
from webob import Response

from controller import metrics, northbound
from protocol import plan_request

LOG = logging.getLogger(__name__)
PREFIX = "/sdncep/v1"
APP_KEY = "sdncep_app"
MAX_BODY = 64 * 1024          # a plan request is at most 1.4 kB, a calibration a few kB
BODY_TIMEOUT_S = 5.0
MAX_DEPTH = 16
VERBS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


class HttpError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _json_response(status, payload, headers=None):
    response = Response(status=status, content_type="application/json", charset="utf-8", text=json.dumps(payload))
    response.headers.update(headers or {})
    return response


def guarded(handler):
    """Bad input -> its 4xx; anything else -> a JSON 500 (traceback in the log)."""
    @functools.wraps(handler)
    def wrapper(self, req, **kwargs):
        try:
            return handler(self, req, **kwargs)
        except HttpError as exc:
            return _json_response(exc.status, {"error": str(exc)}, exc.headers)
        except Exception:  # noqa: BLE001 -- the API must answer, whatever went wrong
            LOG.exception("northbound %s %s failed", req.method, req.path)
            return _json_response(500, {"error": "internal error; see the controller log"})
    return wrapper


def query_of(req):
    try:
        return dict(req.GET)
    except UnicodeDecodeError:
        raise HttpError(400, "the query string is not UTF-8") from None


def _nesting(data):
    """How deep JSON text nests (brackets outside strings), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:            # backslash
                escaped = True
            elif byte == 0x22:            # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):        # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def json_body(req):
    """The request's JSON body: bounded in size, depth and time to arrive."""
    length = req.content_length
    if length is not None and length > MAX_BODY:
        raise HttpError(413, f"body of {length} bytes; at most {MAX_BODY}")
    try:
        with hub.Timeout(BODY_TIMEOUT_S):
            data = req.body_file_raw.read(min(length, MAX_BODY + 1) if length is not None else MAX_BODY + 1)
    except hub.Timeout:
        raise HttpError(408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s") from None
    if len(data) > MAX_BODY:
        raise HttpError(413, f"body over {MAX_BODY} bytes")
    if length is not None and len(data) < length:
        raise HttpError(400, f"body ended after {len(data)} of the {length} bytes announced")
    if _nesting(data) > MAX_DEPTH:
        raise HttpError(400, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data or b"null")
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from None


class NorthboundController(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    def _reply(self, req, resource, name=None):
        status, content_type, body = northbound.respond(
            self.app.view, self.app.clock(), resource, query_of(req), name=name)
        return Response(status=status, content_type=content_type, charset="utf-8", text=body)

    @route("sdncep", PREFIX + "/view", methods=["GET"])
    @guarded
    def view(self, req, **_kwargs):
        return self._reply(req, "view")

    @route("sdncep", PREFIX + "/view.xml", methods=["GET"])
    @guarded
    def view_xml(self, req, **_kwargs):
        return self._reply(req, "view.xml")

    @route("sdncep", PREFIX + "/links", methods=["GET"])
    @guarded
    def links(self, req, **_kwargs):
        return self._reply(req, "links")

    @route("sdncep", PREFIX + "/nodes", methods=["GET"])
    @guarded
    def nodes(self, req, **_kwargs):
        return self._reply(req, "nodes")

    @route("sdncep", PREFIX + "/nodes/{name}", methods=["GET"])
    @guarded
    def node(self, req, name, **_kwargs):
        return self._reply(req, "node", name=name)

    @route("sdncep", PREFIX + "/plan", methods=["POST"])
    @guarded
    def plan(self, req, **_kwargs):
        received_at = time.time()
        body = json_body(req)
        try:
            request = plan_request.PlanRequest.from_mapping(body)
        except (TypeError, plan_request.PlanProtocolError) as exc:
            raise HttpError(400, f"bad plan request: {exc}") from None
        reply = self.app.plan(request, received_at)
        return Response(status=200 if reply["ok"] else 409, content_type="application/json",
                        charset="utf-8", text=json.dumps(reply))

    @route("sdncep", PREFIX + "/measure", methods=["POST"])
    @guarded
    def measure(self, req, **_kwargs):
        """Link rates were changed by hand: probe them again soon (``?link=a-b``: the
        link between switches a and b, both ways; without it every switch link)."""
        query = query_of(req)
        if set(query) - {"link"}:
            raise HttpError(400, f"unknown query parameter(s) {sorted(set(query) - {'link'})}; allowed: ['link']")
        try:
            links = northbound.links_named(self.app.view, query.get("link"))
        except ValueError as exc:
            return Response(status=400, content_type="application/json", charset="utf-8",
                            text=json.dumps({"error": str(exc)}))
        self.app.probe_schedule.hurry(self.app.clock(), links)
        return Response(status=202, content_type="application/json", charset="utf-8",
                        text=json.dumps({"probing": "every switch link" if links is None else query["link"]}))

    @route("sdncep", PREFIX + "/calibration", methods=["GET"])
    @guarded
    def calibration(self, req, **_kwargs):
        return Response(status=200, content_type="application/json", charset="utf-8",
                        text=json.dumps(self.app.planner.calibration.as_dict()))

    @route("sdncep", PREFIX + "/calibration", methods=["PUT"])
    @guarded
    def set_calibration(self, req, **_kwargs):
        from agents.world import Calibration
        body = json_body(req)
        try:
            self.app.planner.calibration = Calibration.from_mapping(body)
        except (TypeError, ValueError) as exc:
            return Response(status=400, content_type="application/json", charset="utf-8",
                            text=json.dumps({"error": f"bad calibration: {exc}"}))
        return Response(status=200, content_type="application/json", charset="utf-8",
                        text=json.dumps(self.app.planner.calibration.as_dict()))

    @route("sdncep", "/metrics", methods=["GET"])
    @guarded
    def metrics(self, req, **_kwargs):
        # the node and link gauges as of this scrape, not of the last poll
        self.app.metrics.observe_view(self.app.view, self.app.clock())
        return Response(status=200, content_type=metrics.CONTENT_TYPE.split(";")[0], charset="utf-8",
                        body=self.app.metrics.render())


def _not_allowed(allowed):
    def handler(self, req, **_kwargs):
        return _json_response(405, {"error": f"{req.method} is not allowed here; use {', '.join(allowed)}"},
                              {"Allow": ", ".join(allowed)})
    return handler


def _add_method_not_allowed(cls):
    """For each path, a route taking every other verb and answering 405 (Ryu's router
    would answer 404). Registered after the real ones (Ryu sorts handlers by name)."""
    allowed = {}
    for attr in vars(cls).values():
        info = getattr(attr, "routing_info", None)
        if info:
            allowed.setdefault(info["path"], []).extend(info["methods"])
    for number, (path, verbs) in enumerate(sorted(allowed.items())):
        others = [v for v in VERBS if v not in verbs and not (v == "HEAD" and "GET" in verbs)]
        setattr(cls, f"zz_not_allowed_{number}", route("sdncep", path, methods=others)(_not_allowed(sorted(verbs))))


_add_method_not_allowed(NorthboundController)
