"""Ryu adapter of the energy-aware offloading policy (logic in agents.energy.service).

A second Ryu app, loaded beside ``controller.app`` (``ryu-manager ... controller.energy_rest
controller.app``); it shares the WSGI server and reads the SDN-CEP app's global view for
which access switch (AP) each device is attached to::

    POST /sdncep/v1/energy/decide     body: agents.energy.service request -> decisions

Only serialisation here, as in controller.rest (whose body reader and error guard it uses).
"""

import json
import logging
import time

from ryu.app.wsgi import ControllerBase, WSGIApplication, route
from ryu.base import app_manager
from webob import Response

from controller.rest import PREFIX, HttpError, guarded, json_body

LOG = logging.getLogger(__name__)
APP_KEY = "sdncep_energy_app"


class EnergyDecisionApp(app_manager.RyuApp):
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from agents.energy.service import default_policies
        self.policies = default_policies()
        kwargs["wsgi"].register(EnergyRest, {APP_KEY: self})

    def attachment(self):
        """{device name: access switch} from the SDN-CEP app's global view (empty without it)."""
        main = app_manager.lookup_service_brick("SdnCepController")
        if main is None:
            return {}
        return {n["name"]: n["switch"] for n in main.view.nodes(time.time()) if n["role"] == "device"}

    def decide(self, payload):
        from agents.energy.service import decide
        return decide(payload, self.attachment(), self.policies)


class EnergyRest(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    @route("sdncep-energy", PREFIX + "/energy/decide", methods=["POST"])
    @guarded
    def decide(self, req, **_kwargs):
        from agents.energy.service import RequestError
        try:
            reply = self.app.decide(json_body(req))
        except RequestError as exc:
            raise HttpError(400, f"bad energy request: {exc}") from None
        return Response(status=200, content_type="application/json", charset="utf-8", text=json.dumps(reply))
