"""Ryu WSGI adapter for the northbound API (logic in controller.northbound)."""

import json
import time

from ryu.app.wsgi import ControllerBase, route
from webob import Response

from controller import metrics, northbound, plan_protocol

PREFIX = "/sdncep/v1"
APP_KEY = "sdncep_app"


class NorthboundController(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    def _reply(self, req, resource, name=None):
        status, content_type, body = northbound.respond(
            self.app.view, self.app.clock(), resource, req.GET, name=name)
        return Response(status=status, content_type=content_type, charset="utf-8", text=body)

    @route("sdncep", PREFIX + "/view", methods=["GET"])
    def view(self, req, **_kwargs):
        return self._reply(req, "view")

    @route("sdncep", PREFIX + "/view.xml", methods=["GET"])
    def view_xml(self, req, **_kwargs):
        return self._reply(req, "view.xml")

    @route("sdncep", PREFIX + "/links", methods=["GET"])
    def links(self, req, **_kwargs):
        return self._reply(req, "links")

    @route("sdncep", PREFIX + "/nodes", methods=["GET"])
    def nodes(self, req, **_kwargs):
        return self._reply(req, "nodes")

    @route("sdncep", PREFIX + "/nodes/{name}", methods=["GET"])
    def node(self, req, name, **_kwargs):
        return self._reply(req, "node", name=name)

    @route("sdncep", PREFIX + "/plan", methods=["POST"])
    def plan(self, req, **_kwargs):
        received_at = time.time()
        try:
            body = json.loads(req.body or b"null")
            request = plan_protocol.PlanRequest.from_mapping(body)
        except (ValueError, plan_protocol.PlanProtocolError) as exc:
            return Response(status=400, content_type="application/json", charset="utf-8",
                            text=json.dumps({"error": f"bad plan request: {exc}"}))
        reply = self.app.plan(request, received_at)
        return Response(status=200 if reply["ok"] else 409, content_type="application/json",
                        charset="utf-8", text=json.dumps(reply))

    @route("sdncep", PREFIX + "/measure", methods=["POST"])
    def measure(self, req, **_kwargs):
        """Link rates were changed by hand: probe them again soon (``?link=a-b``: the
        link between switches a and b, both ways; without it every switch link)."""
        try:
            links = northbound.links_named(self.app.view, req.GET.get("link"))
        except ValueError as exc:
            return Response(status=400, content_type="application/json", charset="utf-8",
                            text=json.dumps({"error": str(exc)}))
        self.app.probe_schedule.hurry(self.app.clock(), links)
        return Response(status=202, content_type="application/json", charset="utf-8",
                        text=json.dumps({"probing": "every switch link" if links is None else req.GET["link"]}))

    @route("sdncep", PREFIX + "/calibration", methods=["GET"])
    def calibration(self, req, **_kwargs):
        return Response(status=200, content_type="application/json", charset="utf-8",
                        text=json.dumps(self.app.planner.calibration.as_dict()))

    @route("sdncep", PREFIX + "/calibration", methods=["PUT"])
    def set_calibration(self, req, **_kwargs):
        from agents.world import Calibration
        try:
            self.app.planner.calibration = Calibration.from_mapping(json.loads(req.body or b"null"))
        except ValueError as exc:
            return Response(status=400, content_type="application/json", charset="utf-8",
                            text=json.dumps({"error": f"bad calibration: {exc}"}))
        return Response(status=200, content_type="application/json", charset="utf-8",
                        text=json.dumps(self.app.planner.calibration.as_dict()))

    @route("sdncep", "/metrics", methods=["GET"])
    def metrics(self, req, **_kwargs):
        # the node and link gauges as of this scrape, not of the last poll
        self.app.metrics.observe_view(self.app.view, self.app.clock())
        return Response(status=200, content_type=metrics.CONTENT_TYPE.split(";")[0], charset="utf-8",
                        body=self.app.metrics.render())
